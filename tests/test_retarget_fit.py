"""Robot -> human: fitting hand-model PCA to robot wrist + fingertips."""

import numpy as np
import pytest
import torch

from egovla_description.geometry import axis_angle_to_matrix
from egovla_description.kinematics import HandKinematics
from egovla_training.action_space import AXIS_CHANGE, mano_to_ee_pose
from egovla_training.hands import FINGERTIPS, load_hand_model
from egovla_training.retarget import FitConfig, fit_hand_to_robot


@pytest.mark.parametrize("side,schedule", [("left", "constant"), ("right", "constant"), ("right", "cosine")])
def test_fit_recovers_fingertips_of_known_poses(side, schedule):
    """Frames made from known PCA vectors (first 6 components) with random wrist poses, presented the way robot
    frames are (end effector + fingertips at 1.5x scale): the fit puts every fingertip back within 2 mm, with the
    authors' constant learning rate and with one decayed to 0."""
    torch.manual_seed(1)
    hand = load_hand_model(side, kind="standin")
    b = 120
    pca = torch.zeros(b, 15)
    pca[:, :6] = torch.rand(b, 6) * 3.0 - 1.0
    orient, transl = torch.randn(b, 3), torch.randn(b, 3) * 0.2
    k = hand(pca, orient, transl)
    ee = mano_to_ee_pose(transl, axis_angle_to_matrix(orient), side, hand.root_offset)
    wrist = k[:, 0]
    tips = wrist[:, None] + 1.5 * (k[:, list(FINGERTIPS)] - wrist[:, None])
    fit = fit_hand_to_robot(hand, ee.numpy(), tips.numpy(), FitConfig(lr_schedule=schedule))
    assert fit.fingertip_residual_m.shape == (b, 5)
    assert fit.fingertip_residual_m.max() < 2e-3, fit.fingertip_residual_m.max()
    assert torch.allclose(fit.keypoints[:, list(FINGERTIPS)], tips, atol=2e-3)
    assert torch.allclose(fit.transl, transl, atol=1e-5)
    assert (fit.pca[:, 6:] == 0).all()  # only the first six are fitted


def test_fit_on_robot_hand_frames_reports_per_fingertip_residuals():
    rng = np.random.default_rng(0)
    hk = HandKinematics(side="right")
    hand = load_hand_model("right", kind="standin")
    q = hk.from_active(rng.uniform(hk.active_lower, hk.active_upper, size=(32, 6)))
    tips = hk.fingertips(q)
    ee = np.tile(np.eye(4), (32, 1, 1))
    fit = fit_hand_to_robot(hand, ee, tips, FitConfig(iterations=200, retry_starts=0))
    assert fit.fingertip_residual_m.shape == (32, 5) and torch.isfinite(fit.fingertip_residual_m).all()
    # The MANO wrist orientation is the end effector's through the fixed axis change.
    assert torch.allclose(axis_angle_to_matrix(fit.global_orient), torch.as_tensor(AXIS_CHANGE["right"]).float(),
                          atol=1e-5)


def test_coefficient_penalty_trades_residual_for_smaller_coefficients():
    rng = np.random.default_rng(3)
    hk = HandKinematics(side="left")
    hand = load_hand_model("left", kind="standin")
    q = hk.from_active(rng.uniform(hk.active_lower, hk.active_upper, size=(24, 6)))
    ee, tips = np.tile(np.eye(4), (24, 1, 1)), hk.fingertips(q)
    norms, residuals = [], []
    for l2 in (0.0, 1e-3, 1e-2):
        fit = fit_hand_to_robot(hand, ee, tips, FitConfig(num_pca_fit=15, iterations=300, lr_schedule="cosine",
                                                          pca_l2=l2, starts=1, same_init=True, retry_starts=0))
        norms.append(float(fit.pca.norm(dim=1).mean()))
        residuals.append(float(fit.fingertip_residual_m.mean()))
    assert norms[0] > norms[1] > norms[2], norms
    assert residuals[0] < residuals[1] < residuals[2], residuals
    # unpenalised iterations after the penalised ones give the residual back
    refined = fit_hand_to_robot(hand, ee, tips, FitConfig(num_pca_fit=15, iterations=300, lr_schedule="cosine",
                                                          pca_l2=1e-2, refine_iterations=300, starts=1,
                                                          same_init=True, retry_starts=0))
    assert float(refined.fingertip_residual_m.mean()) < 0.5 * residuals[2], (refined.fingertip_residual_m.mean(),
                                                                             residuals)


def test_bad_input_is_refused():
    hand = load_hand_model("left", kind="standin")
    with pytest.raises(ValueError, match=r"need ee_pose \(B, 4, 4\) and fingertips \(B, 5, 3\)"):
        fit_hand_to_robot(hand, np.eye(4)[None], np.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="finite"):
        fit_hand_to_robot(hand, np.full((1, 4, 4), np.nan), np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match="num_pca_fit"):
        fit_hand_to_robot(hand, np.eye(4)[None], np.zeros((1, 5, 3)), FitConfig(num_pca_fit=0))
    with pytest.raises(ValueError, match="lr_schedule"):
        fit_hand_to_robot(hand, np.eye(4)[None], np.zeros((1, 5, 3)), FitConfig(lr_schedule="linear"))
    with pytest.raises(ValueError, match="pca_l2"):
        fit_hand_to_robot(hand, np.eye(4)[None], np.zeros((1, 5, 3)), FitConfig(pca_l2=-1.0))
    with pytest.raises(ValueError, match="refine_iterations"):
        fit_hand_to_robot(hand, np.eye(4)[None], np.zeros((1, 5, 3)), FitConfig(refine_iterations=-1))


def test_robot_hand_fingertips():
    """Inspire hand FK: open-hand fingertips in the hand base frame, and mimic joints filled from leaders."""
    for side, sign in (("left", 1.0), ("right", -1.0)):
        hk = HandKinematics(side=side)
        assert len(hk.active_names) == 6 and len(hk.joint_names) == 12
        tips = hk.fingertips(hk.from_active(np.zeros(6)))[0]
        assert np.allclose(tips[2], [-0.0071, -0.2141, sign * 0.0079], atol=2e-4)  # middle fingertip
        closed = hk.fingertips(hk.from_active(hk.active_upper))[0]
        assert (np.linalg.norm(closed[1:], axis=1) < np.linalg.norm(tips[1:], axis=1) - 0.05).all()
        full = hk.from_active(np.array([[0.5, 0.0, 0.0, 0.0, 0.0, 0.3]]))[0]
        names = list(hk.joint_names)
        assert full[names.index(f"{side[0].upper()}_thumb_distal_joint")] == pytest.approx(0.72)
