"""The 48-value action layout, the authors' permutation, wrist frame conversions, PCA normalisation."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from egovla_description import load_robot
from egovla_training import action_space as A

RNG = np.random.default_rng(5)


def test_names_and_indices():
    assert len(A.ACTION_NAMES) == 48 == A.STEP_SIZE
    assert A.ACTION_NAMES[:4] == ("left_wrist_x", "left_wrist_y", "left_wrist_z", "left_wrist_rot6d_0")
    assert A.ACTION_NAMES[24] == "right_wrist_x" and A.ACTION_NAMES[-1] == "right_hand_pca_14"
    assert [A.ACTION_NAMES[i] for i in A.indices("right", "pca")][:2] == ["right_hand_pca_00", "right_hand_pca_01"]


def test_authors_layout_permutation():
    """Authors' step: [transl_L, transl_R, pca_L, pca_R, rot6d_L, rot6d_R]."""
    ours = np.arange(48.0)
    theirs = A.to_authors_layout(ours)
    assert theirs[:3].tolist() == A.indices("left", "transl").tolist()
    assert theirs[3:6].tolist() == A.indices("right", "transl").tolist()
    assert theirs[6:21].tolist() == A.indices("left", "pca").tolist()
    assert theirs[36:42].tolist() == A.indices("left", "rot6d").tolist()
    batch = RNG.normal(size=(7, 30, 48))
    assert np.array_equal(A.from_authors_layout(A.to_authors_layout(batch)), batch)
    with pytest.raises(ValueError, match="48 values"):
        A.from_authors_layout(np.zeros(46))


@pytest.mark.parametrize("side", ["left", "right"])
def test_axis_change_matrices_are_rotations(side):
    a = A.AXIS_CHANGE[side]
    assert np.allclose(a @ a.T, np.eye(3)) and np.isclose(np.linalg.det(a), 1.0)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_end_effector_and_mano_round_trip(lib):
    t = np.tile(np.eye(4), (200, 1, 1))
    t[:, :3, :3] = Rotation.random(200, random_state=1).as_matrix()
    t[:, :3, 3] = RNG.normal(size=(200, 3))
    root = np.array([0.0957, 0.0064, 0.0062])
    if lib == "torch":
        t, root = torch.as_tensor(t), torch.as_tensor(root)
    for side in ("left", "right"):
        transl, rot = A.ee_pose_to_mano(t, side, root)
        back = A.mano_to_ee_pose(transl, rot, side, root)
        assert float(abs(back - t).max()) < 1e-12
        assert float(abs(transl - (t[:, :3, 3] - root)).max()) < 1e-12


def test_camera_torso_round_trip():
    robot = load_robot()
    t_torso_cam = robot.head_camera.T_parent_optical
    t = np.tile(np.eye(4), (10, 1, 1))
    t[:, :3, :3] = Rotation.random(10, random_state=2).as_matrix()
    t[:, :3, 3] = RNG.normal(size=(10, 3))
    assert np.abs(A.torso_to_camera(A.camera_to_torso(t, t_torso_cam), t_torso_cam) - t).max() < 1e-12
    # The camera's own origin is at the camera mount in the torso frame.
    assert np.allclose(A.camera_to_torso(np.eye(4), t_torso_cam)[:3, 3], [0.09, 0.0, 0.65])


def test_split_and_join_steps():
    steps = RNG.normal(size=(5, 30, 48))
    left, right = A.split_step(steps, "left"), A.split_step(steps, "right")
    rejoined = A.join_step(left, right)
    # rot6d re-encodes the decoded (orthonormalised) rotation: translation and PCA are exact.
    for side in ("left", "right"):
        for part in ("transl", "pca"):
            i = A.indices(side, part)
            assert np.array_equal(rejoined[..., i], steps[..., i])
    again = A.join_step(A.split_step(rejoined, "left"), A.split_step(rejoined, "right"))
    assert np.abs(again - rejoined).max() < 1e-12


def test_pca_normalisation_round_trip_and_serialisation():
    norm = A.PCANormalizer()
    pca = RNG.normal(size=(100, 15))
    assert np.abs(norm.denormalize(norm.normalize(pca)) - pca).max() < 1e-12
    assert np.allclose(norm.normalize(A.AUTHORS_PCA_MIN[None]), 0.0)
    assert np.allclose(norm.normalize(A.AUTHORS_PCA_MAX[None]), 1.0)
    assert A.PCANormalizer.from_dict(norm.to_dict()) == norm
    with pytest.raises(ValueError, match="exceed"):
        A.PCANormalizer((0.0, 1.0), (1.0, 1.0))
