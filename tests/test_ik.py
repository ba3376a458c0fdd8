"""Pinocchio arm IK: accuracy on reachable targets, limits, bad input, both modes, both arms, frames."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from egovla_description import load_robot
from egovla_description.geometry import axis_angle_to_matrix, rotation_distance
from egovla_description.ik import ArmIK, DualArmIK, IKConfig

TOL_M, TOL_RAD = 1e-4, 1e-3


@pytest.fixture(scope="module", params=["left", "right"])
def arm(request):
    return ArmIK(side=request.param)


def _targets(arm, n, seed):
    rng = np.random.default_rng(seed)
    qs = rng.uniform(arm.lower, arm.upper, size=(n, arm.nq))
    return qs, [arm.forward(q) for q in qs], rng


def _reached(arm, result, target):
    t = arm.forward(result.q)
    return (np.linalg.norm(t[:3, 3] - target[:3, 3]) <= TOL_M
            and rotation_distance(t[:3, :3], target[:3, :3]) <= TOL_RAD)


def test_warm_start_reaches_500_random_targets(arm):
    """Targets = FK of random in-limit configurations; seed = the target configuration perturbed by <= 0.2 rad."""
    qs, targets, rng = _targets(arm, 500, seed=7)
    reached = 0
    for q, target in zip(qs, targets):
        seed = np.clip(q + rng.uniform(-0.2, 0.2, arm.nq), arm.lower, arm.upper)
        r = arm.solve(target, seed)
        assert np.all(r.q >= arm.lower) and np.all(r.q <= arm.upper) and np.isfinite(r.q).all()
        ok = _reached(arm, r, target)
        assert ok == r.converged  # the flag tells the truth, checked with an independent FK
        reached += ok
    assert reached / 500 >= 0.995, reached


def test_cold_start_from_the_nominal_posture(arm):
    qs, targets, _ = _targets(arm, 500, seed=11)
    reached = sum(_reached(arm, arm.solve(t, None), t) for t in targets)
    assert reached / 500 >= 0.90, reached


def test_joint_limits_hold_for_targets_far_outside_the_workspace(arm):
    rng = np.random.default_rng(3)
    for _ in range(50):
        t = np.eye(4)
        t[:3, :3] = axis_angle_to_matrix(rng.normal(size=3))
        t[:3, 3] = rng.uniform(-3, 3, size=3)
        r = arm.solve(t, rng.uniform(arm.lower, arm.upper))
        assert np.all(r.q >= arm.lower) and np.all(r.q <= arm.upper)
        s = arm.step(t, rng.uniform(arm.lower, arm.upper))
        assert np.all(s.q >= arm.lower) and np.all(s.q <= arm.upper)


def test_unreachable_target_returns_the_closest_pose_and_says_so(arm):
    """2 m straight ahead: not reachable; the hand ends fully stretched toward the target, residual reported."""
    target = arm.forward(arm.nominal)
    target[:3, 3] = [2.0, 0.0, 0.3]
    r = arm.solve(target, arm.nominal)
    assert not r.converged and not r.reachable and r.status == "not_converged"
    reach = np.linalg.norm(arm.forward(r.q)[:3, 3] - target[:3, 3])
    assert r.position_error_m == pytest.approx(reach, rel=1e-6)
    start = np.linalg.norm(arm.forward(arm.nominal)[:3, 3] - target[:3, 3])
    assert reach < start - 0.2  # it moved toward the target


def test_reseed_makes_restarts_independent_of_history(robot):
    """Unreachable targets use the random restarts; after reseed() a solve repeats bit for bit."""
    from egovla_description.ik import ArmIK

    arm = ArmIK(robot, "left")
    target = arm.forward(arm.nominal)
    target[:3, 3] = [0.2, 0.9, 0.1]
    first = arm.solve(target, arm.nominal).q
    drifted = arm.solve(target, arm.nominal).q  # the restart sequence has moved on
    arm.reseed()
    again = arm.solve(target, arm.nominal).q
    assert np.array_equal(first, again)
    assert not np.array_equal(first, drifted)


@pytest.mark.parametrize("bad", [np.full((4, 4), np.nan), np.where(np.eye(4) > 0, np.inf, 0.0), np.zeros((3, 3)),
                                 np.diag([2.0, 1.0, 1.0, 1.0]), np.diag([-1.0, 1.0, 1.0, 1.0])])
def test_invalid_targets_hold_the_current_joints(arm, bad):
    current = np.clip(arm.nominal + 0.1, arm.lower, arm.upper)
    for r in (arm.solve(bad, current), arm.step(bad, current)):
        assert r.status == "invalid_target" and not r.converged
        assert np.array_equal(r.q, current)


def test_nan_seed_is_replaced_and_flagged(arm):
    qs, targets, _ = _targets(arm, 1, seed=5)
    r = arm.solve(targets[0], np.full(arm.nq, np.nan))
    assert r.status == "invalid_seed" and np.isfinite(r.q).all()
    assert np.all(r.q >= arm.lower) and np.all(r.q <= arm.upper)


def test_single_steps_converge_like_a_30hz_controller(arm):
    """One damped step per tick from 0.2 rad away: the error falls below a millimetre within 10 ticks. Without the
    posture term most targets converge like Gauss-Newton (to 1e-6); the rest have a joint near a limit, where the
    limit handling slows the motion toward it."""
    qs, targets, rng = _targets(arm, 40, seed=9)
    plain = ArmIK(arm.robot, arm.side, IKConfig(posture_gain=0.0))
    exact = 0
    for q, target in zip(qs, targets):
        start = np.clip(q + rng.uniform(-0.2, 0.2, arm.nq), arm.lower, arm.upper)
        for solver in (plain, arm):
            cur, errors = start, []
            for _ in range(10):
                r = solver.step(target, cur)
                cur = r.q
                errors.append(r.position_error_m + 0.3 * r.rotation_error_rad)
            assert errors[-1] < 1e-3 and errors[-1] < 0.25 * errors[0], (solver.config.posture_gain, errors)
            exact += solver is plain and errors[-1] < 1e-6
    assert exact >= 0.7 * len(targets)


def test_posture_term_moves_only_in_the_null_space():
    """Holding a hand pose, repeated solves slide the arm along its self-motion toward the nominal posture."""
    import pinocchio as pin

    arm = ArmIK(side="left", config=IKConfig(posture_gain=0.2))
    plain = ArmIK(side="left", config=IKConfig(posture_gain=0.0))

    def null_direction(q):
        pin.computeJointJacobians(arm.model, arm.data, q)
        jac = pin.getFrameJacobian(arm.model, arm.data, arm.ee_frame, pin.ReferenceFrame.LOCAL)
        return np.linalg.svd(jac)[2][-1]

    q = arm.nominal.copy()
    q[1], q[4] = 0.4, 0.3
    target = arm.forward(q)
    n_prev = null_direction(q)
    for _ in range(30):  # walk 0.6 rad along the self-motion manifold, away from the nominal posture
        n = null_direction(q)
        n = n if n @ n_prev > 0 else -n
        n_prev = n
        q = plain.solve(target, q + 0.02 * n).q
    offset = lambda q: abs(null_direction(q) @ (arm.nominal - q))  # noqa: E731
    start = offset(q)
    assert start > 0.5
    for _ in range(60):
        r = arm.solve(target, q)
        assert r.converged  # the hand stays on target throughout
        q = r.q
    assert offset(q) < 0.5 * start


def test_dual_arm_ik_by_name_in_torso_and_camera_frames(robot):
    ik = DualArmIK(robot)
    rng = np.random.default_rng(21)
    current, targets_torso = {}, {}
    for side, arm in ik.arms.items():
        q = rng.uniform(arm.lower, arm.upper)
        targets_torso[side] = arm.forward(q)
        current.update(zip(arm.joint_names, np.clip(q + 0.1, arm.lower, arm.upper)))
    res = ik.solve(targets_torso, current, frame="torso")
    assert res.all_reachable and set(res.positions) == set(robot.side("left").arm_joints + robot.side("right").arm_joints)
    t_torso_optical = robot.head_camera.T_parent_optical
    in_camera = {s: np.linalg.inv(t_torso_optical) @ t for s, t in targets_torso.items()}
    res_cam = ik.solve(in_camera, current, frame="camera")
    for side in ("left", "right"):
        assert np.abs(ik.arms[side].forward(res_cam.sides[side].q)[:3, 3] - targets_torso[side][:3, 3]).max() < TOL_M
    with pytest.raises(ValueError, match="frame must be one of"):
        ik.solve(targets_torso, current, frame="world")
    with pytest.raises(KeyError, match="unknown side"):
        ik.solve({"middle": np.eye(4)}, current)


def test_arm_with_fewer_joints_resolves_by_name(tmp_path, robot):
    """A 4-joint arm group (like the original H1's arms) works unchanged: position reachable, 6-D pose not."""
    data = yaml.safe_load(Path(robot.path).read_text())
    data["groups"]["left_arm"] = data["groups"]["left_arm"][:4]
    variant = tmp_path / "h1_4dof_left.yaml"
    variant.write_text(yaml.safe_dump(data))
    short = load_robot(variant)
    arm = ArmIK(short, "left")
    assert arm.nq == 4 and arm.joint_names == tuple(data["groups"]["left_arm"])
    q = np.array([0.2, 0.4, 0.1, -0.3])
    target = arm.forward(q)
    r = arm.solve(target, q + 0.1)
    assert r.converged and np.abs(r.q - q).max() < 1e-3  # reachable: it is this arm's own FK
    target[:3, :3] = target[:3, :3] @ axis_angle_to_matrix(np.array([0.0, 0.0, 0.8]))
    r = arm.solve(target, q)
    assert not r.converged and r.q.shape == (4,) and np.isfinite(r.q).all()


def test_config_validation():
    with pytest.raises(ValueError, match="posture_gain"):
        IKConfig(posture_gain=1.5).validate()
    with pytest.raises(ValueError, match="position_tolerance_m"):
        ArmIK(config=IKConfig(position_tolerance_m=float("nan")))


def test_whole_robot_forward_kinematics_by_name(robot):
    """RobotKinematics (all joints by name) and the arm IK's reduced model place the hand base identically."""
    from egovla_description.kinematics import RobotKinematics

    kin = RobotKinematics(robot)
    arm = ArmIK(robot, "left")
    q_arm = np.clip(arm.nominal + 0.3, arm.lower, arm.upper)
    positions = dict(zip(arm.joint_names, q_arm))
    poses = kin.frame_poses(kin.q_from_positions(positions), ["L_hand_base_link", "L_index_tip"])
    assert np.abs(poses["L_hand_base_link"] - arm.forward(q_arm)).max() < 1e-12
    with pytest.raises(KeyError, match="unknown joint names"):
        kin.q_from_positions({"elbow": 0.0})
    with pytest.raises(KeyError, match="has no frame 'nose'"):
        kin.frame_id("nose")
