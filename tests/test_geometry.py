"""Geometry core: round trips, agreement with SciPy, the rot6d convention, averaging, cameras; NumPy and torch."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from egovla_description import geometry as g

RNG = np.random.default_rng(1234)
N = 2000


def random_rotations(n=N, rng=RNG):
    return Rotation.random(n, random_state=rng.integers(1 << 31)).as_matrix()


@pytest.fixture(params=["numpy", "torch"])
def lib(request):
    if request.param == "numpy":
        return lambda x: np.asarray(x, dtype=np.float64), lambda x: np.asarray(x)
    return lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float64), lambda x: x.numpy()


def test_quaternion_round_trip_and_scipy_agreement(lib):
    to, back = lib
    r = random_rotations()
    q = back(g.matrix_to_quat(to(r)))
    q_scipy = g.quat_xyzw_to_wxyz(Rotation.from_matrix(r).as_quat())
    q_scipy = np.where(q_scipy[:, :1] < 0, -q_scipy, q_scipy)
    assert np.abs(q - q_scipy).max() < 1e-12
    assert (q[:, 0] >= 0).all()
    assert np.abs(back(g.quat_to_matrix(to(q))) - r).max() < 1e-12


def test_half_turns_are_exact(lib):
    """Shepperd's method stays accurate where the trace formula fails (angle = pi)."""
    to, back = lib
    axes = RNG.normal(size=(500, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    r = Rotation.from_rotvec(axes * np.pi).as_matrix()
    q = back(g.matrix_to_quat(to(r)))
    assert np.abs(back(g.quat_to_matrix(to(q))) - r).max() < 1e-12
    assert np.abs(np.abs(q[:, 0])).max() < 1e-7


def test_axis_angle_round_trip_and_scipy(lib):
    to, back = lib
    angles = np.concatenate([RNG.uniform(0, np.pi - 1e-6, N - 200), np.full(100, 1e-9), RNG.uniform(0, 1e-5, 100)])
    axes = RNG.normal(size=(N, 3))
    v = axes / np.linalg.norm(axes, axis=1, keepdims=True) * angles[:, None]
    m = back(g.axis_angle_to_matrix(to(v)))
    assert np.abs(m - Rotation.from_rotvec(v).as_matrix()).max() < 1e-12
    assert np.abs(back(g.matrix_to_axis_angle(to(m))) - v).max() < 1e-9
    # Zero rotation maps to the identity and back to zero exactly.
    assert np.abs(back(g.axis_angle_to_matrix(to(np.zeros((1, 3))))) - np.eye(3)).max() == 0.0


def test_rot6d_is_the_first_two_columns(lib):
    """EgoVLA/HMR2 convention: [R[:, 0]; R[:, 1]], decoded by Gram-Schmidt with the columns as b1, b2."""
    to, back = lib
    r = random_rotations()
    d = back(g.matrix_to_rot6d(to(r)))
    assert np.array_equal(d[:, :3], r[:, :, 0]) and np.array_equal(d[:, 3:], r[:, :, 1])
    assert np.abs(back(g.rot6d_to_matrix(to(d))) - r).max() < 1e-12
    # A known non-orthonormal input decodes as Gram-Schmidt of the two columns.
    raw = np.array([[2.0, 0.0, 0.0, 1.0, 3.0, 0.0]])
    assert np.allclose(back(g.rot6d_to_matrix(to(raw)))[0], np.eye(3))


def test_rot6d_decoding_is_continuous_where_axis_angle_jumps():
    """Along a rotation passing through a half turn, rot6d changes smoothly while axis-angle flips sign."""
    angles = np.linspace(np.pi - 0.3, np.pi + 0.3, 601)
    m = Rotation.from_rotvec(np.outer(angles, [0.0, 0.0, 1.0])).as_matrix()
    d = g.matrix_to_rot6d(m)
    assert np.linalg.norm(np.diff(d, axis=0), axis=1).max() < 2.0 * (angles[1] - angles[0])
    aa = g.matrix_to_axis_angle(m)
    assert np.linalg.norm(np.diff(aa, axis=0), axis=1).max() > 6.0  # the jump rot6d avoids
    # And the decoder is Lipschitz near any 6-vector of unit, orthogonal halves.
    d0 = g.matrix_to_rot6d(random_rotations(200))
    eps = 1e-6 * RNG.normal(size=d0.shape)
    dm = g.rot6d_to_matrix(d0 + eps) - g.rot6d_to_matrix(d0)
    assert np.abs(dm).max() < 1e-5


def test_quaternion_algebra_matches_matrices(lib):
    to, back = lib
    a, b = random_rotations(500), random_rotations(500)
    qa, qb = g.matrix_to_quat(to(a)), g.matrix_to_quat(to(b))
    assert np.abs(back(g.quat_to_matrix(g.quat_multiply(qa, qb))) - a @ b).max() < 1e-12
    v = RNG.normal(size=(500, 3))
    assert np.abs(back(g.quat_rotate(qa, to(v))) - np.einsum("nij,nj->ni", a, v)).max() < 1e-12
    assert np.abs(back(g.quat_to_matrix(g.quat_conjugate(qa))) - np.swapaxes(a, 1, 2)).max() < 1e-12


def test_rpy_matches_urdf_convention_and_scipy():
    rpy = RNG.uniform(-np.pi, np.pi, size=(N, 3))
    rpy[:, 1] = RNG.uniform(-np.pi / 2 + 1e-3, np.pi / 2 - 1e-3, N)
    m = g.rpy_to_matrix(rpy)
    # URDF: fixed axes X, Y, Z == SciPy's extrinsic "xyz".
    assert np.abs(m - Rotation.from_euler("xyz", rpy).as_matrix()).max() < 1e-12
    assert np.abs(g.matrix_to_rpy(m) - rpy).max() < 1e-9


def test_weighted_rotation_average(lib):
    to, back = lib
    base = Rotation.random(random_state=3)
    noise = Rotation.from_rotvec(RNG.normal(scale=0.2, size=(30, 3)))
    members = (base * noise).as_matrix()
    w = np.exp(-0.2 * np.arange(30))
    mean_m = back(g.average_rotations(to(members), to(w)))
    q = g.matrix_to_quat(members)
    q[::2] *= -1  # sign flips must not matter
    mean_q = back(g.average_quaternions(to(q), to(w)))
    # The chordal mean (SVD) and the quaternion eigenvector mean are the same rotation.
    assert np.abs(back(g.quat_to_matrix(to(mean_q))) - mean_m).max() < 1e-9
    # It is a rotation, and it is SciPy's mean (which minimises the same chordal cost).
    assert np.abs(mean_m @ mean_m.T - np.eye(3)).max() < 1e-12 and abs(np.linalg.det(mean_m) - 1) < 1e-12
    assert np.abs(Rotation.from_matrix(members).mean(weights=w).as_matrix() - mean_m).max() < 1e-9
    # Element-wise averaging of sign-flipped quaternions would be wrong: the result must stay near the members.
    assert g.rotation_distance(mean_m, base.as_matrix()) < 0.2


def test_average_of_identical_rotations_is_that_rotation():
    r = random_rotations(1)[0]
    assert np.abs(g.average_rotations(np.stack([r] * 5)) - r).max() < 1e-12


def test_se3_inverse_compose_and_points(lib):
    to, back = lib
    r = random_rotations(300)
    t = RNG.normal(size=(300, 3))
    T = g.make_transform(to(r), to(t))
    Ti = g.transform_inverse(T)
    assert np.abs(back(T @ Ti) - np.eye(4)).max() < 1e-12
    p = RNG.normal(size=(300, 3))
    assert np.abs(back(g.transform_points(T, to(p))) - (np.einsum("nij,nj->ni", r, p) + t)).max() < 1e-12
    pos, quat = g.matrix_to_pose(T)
    assert np.abs(back(g.pose_to_matrix(pos, quat)) - back(T)).max() < 1e-12


def test_optical_and_ros_camera_frames():
    # A point 1 m straight ahead of the camera: ROS x forward == optical z forward.
    assert np.allclose(g.ros_camera_to_optical([1.0, 0.0, 0.0]), [0.0, 0.0, 1.0])
    # Left in ROS (+y) is -x in the optical frame; up (+z) is -y.
    assert np.allclose(g.ros_camera_to_optical([0.0, 1.0, 0.0]), [-1.0, 0.0, 0.0])
    assert np.allclose(g.ros_camera_to_optical([0.0, 0.0, 1.0]), [0.0, -1.0, 0.0])
    p = RNG.normal(size=(100, 3))
    assert np.abs(g.optical_to_ros_camera(g.ros_camera_to_optical(p)) - p).max() == 0.0
    assert np.allclose(g.R_ROS_CAMERA_FROM_OPTICAL @ g.ros_camera_to_optical(p).T, p.T)


def test_pinhole_projection_round_trip(lib):
    to, back = lib
    cam = g.PinholeCamera(1280, 720, 488.6662, 488.6662, 640.0, 360.0)
    uv = RNG.uniform([0, 0], [1280, 720], size=(500, 2))
    depth = RNG.uniform(0.2, 3.0, 500)
    pts = back(cam.unproject(to(uv), to(depth)))
    uv2, front = cam.project(to(pts))
    assert np.abs(back(uv2) - uv).max() < 1e-9 and bool(np.all(back(front)))
    # The principal point and a point behind the camera.
    uv0, _ = cam.project(np.array([0.0, 0.0, 2.0]))
    assert np.allclose(uv0, [640.0, 360.0])
    uvb, ok = cam.project(np.array([0.1, 0.1, -1.0]))
    assert not ok and np.isnan(uvb).all()


def test_resized_intrinsics_scale_pixels():
    cam = g.PinholeCamera(1280, 720, 488.6662, 488.6662, 640.0, 360.0)
    small = cam.resized(384, 384)
    p = np.array([0.1, -0.05, 0.8])
    u, v = cam.project(p)[0]
    us, vs = small.project(p)[0]
    assert np.isclose(us, u * 384 / 1280) and np.isclose(vs, v * 384 / 720)
    with pytest.raises(ValueError, match="positive"):
        g.PinholeCamera(0, 720, 1.0, 1.0, 0.0, 0.0)
