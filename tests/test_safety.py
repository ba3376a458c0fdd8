"""Safety layer (egovla.safety): limits, velocity caps, non-finite commands, names, watchdog, ramp, diagnostics.

Known answers on the real robot description; no ROS needed."""

import math

import numpy as np
import pytest

from egovla.safety import (
    DIAG_ERROR,
    DIAG_OK,
    DIAG_WARN,
    SafetyConfig,
    SafetyConfigError,
    SafetyFilter,
)

HZ = 30.0
DT = 1.0 / HZ
ELBOW = "left_elbow_pitch_joint"        # limits [-1.25, 1.57], URDF velocity 20 rad/s
SHOULDER = "left_shoulder_pitch_joint"  # limits [-2.44, 1.44], URDF velocity 9 rad/s
INDEX = "L_index_proximal_joint"        # limits [0, 1.7], leader of L_index_intermediate_joint (x 1.0)
THUMB_PITCH = "L_thumb_proximal_pitch_joint"  # limits [0, 0.5]; intermediate x 1.6, distal x 2.4


def measured_pose(robot):
    pose = {n: 0.0 for n in robot.movable_joint_names}
    pose.update(robot.initial_pose)
    return robot.fill_mimic(pose)


def make(robot, now_s=0.0, sources=(), **kw):
    """A filter initialised at the robot's initial pose, with no ramp and no watchdog unless asked."""
    kw.setdefault("resume_ramp_s", 0.0)
    kw.setdefault("stale_after_s", {s: 0.2 for s in sources})
    f = SafetyFilter(robot, SafetyConfig(**kw))
    f.initialise(measured_pose(robot), now_s)
    return f


def test_scope_and_caps_come_from_the_description(robot):
    f = make(robot)
    assert len(f.joint_names) == 2 * 7 + 2 * 6  # both arms, the 6 actuated joints of each hand
    assert not set(f.joint_names) & set(robot.mimic_joint_names)
    i = f.joint_names.index(ELBOW)
    assert f.lower_rad[i] == pytest.approx(-1.25 + 0.01) and f.upper_rad[i] == pytest.approx(1.57 - 0.01)
    assert f.velocity_cap_rad_s[i] == 2.0
    # max_velocity_scale is a fraction of the URDF limit: 0.1 x 9 rad/s = 0.9 rad/s for the shoulder, under the cap
    g = make(robot, max_velocity_scale=0.1)
    assert g.velocity_cap_rad_s[g.joint_names.index(SHOULDER)] == pytest.approx(0.9)
    assert g.velocity_cap_rad_s[g.joint_names.index(ELBOW)] == pytest.approx(2.0)


def test_beyond_limit_clamps_to_limit_minus_margin(robot):
    f = make(robot, max_arm_velocity_rad_s=4.0)
    res = None
    for k in range(1, 60):
        res = f.filter({ELBOW: 3.0}, k * DT)
    assert res.targets[ELBOW] == pytest.approx(1.57 - 0.01, abs=1e-12)
    assert res.clamped[ELBOW] == pytest.approx(3.0 - 1.56)
    res = f.filter({ELBOW: -9.0}, 60 * DT)
    assert res.clamped[ELBOW] == pytest.approx(-9.0 + 1.24)
    assert f.counters["commands_clamped"] == 60 and f.counters["clamped_joint_values"] == 60
    assert "clamped to limits" in res.events[0]
    # hands: no margin by default (fully closed = the upper limit is the normal grasp command); one when asked
    g = make(robot, hand_limit_margin_rad=0.02)
    for k in range(1, 30):
        res = g.filter({INDEX: 2.0}, k * DT)
    assert res.targets[INDEX] == pytest.approx(1.7 - 0.02) and res.beyond_limits == (INDEX,)
    res = f.filter({INDEX: 1.7}, 61 * DT)
    assert INDEX not in res.clamped


def test_one_radian_step_takes_fifteen_ticks_at_two_rad_per_s(robot):
    f = make(robot)
    start = f.hold_pose[ELBOW]  # -1.0
    goal = start + 1.0
    positions = []
    for k in range(1, 20):
        res = f.filter({ELBOW: goal}, k * DT)
        positions.append(res.targets[ELBOW])
    steps = np.diff([start] + positions)
    assert np.allclose(steps[:15], 2.0 / 30.0, atol=1e-12)
    assert positions[14] == goal and math.ceil(1.0 / (2.0 / 30.0)) == 15
    assert positions[13] < goal and np.all(steps[15:] == 0.0)
    assert f.counters["commands_velocity_limited"] == 14  # the 15th tick needs no shortening


def test_group_step_is_scaled_as_a_whole(robot):
    """Two arm joints asked to move 1.0 and 0.5 rad: both scaled by the same factor (direction kept)."""
    f = make(robot)
    pose = f.hold_pose
    res = f.filter({ELBOW: pose[ELBOW] + 1.0, SHOULDER: pose[SHOULDER] - 0.5}, DT)
    assert res.targets[ELBOW] - pose[ELBOW] == pytest.approx(2.0 / 30.0)
    assert res.targets[SHOULDER] - pose[SHOULDER] == pytest.approx(-1.0 / 30.0)
    assert set(res.velocity_limited) == {ELBOW, SHOULDER}


def test_long_gap_in_time_allows_no_jump(robot):
    f = make(robot)
    start = f.hold_pose[ELBOW]
    f.filter({ELBOW: start}, 0.0)
    res = f.filter({ELBOW: start + 1.0}, 10.0)  # 10 s later: still at most 2 ticks' worth
    assert res.targets[ELBOW] - start == pytest.approx(2 * 2.0 / 30.0)
    res = f.filter({ELBOW: start + 1.0}, 5.0)  # the clock went back: no motion at all
    assert res.targets[ELBOW] - start == pytest.approx(2 * 2.0 / 30.0)
    assert f.counters["clock_jumps_back"] == 1


def test_hand_and_arm_commands_in_the_same_tick_both_move(robot):
    """IK and retargeting publish separately: each group keeps its own clock."""
    f = make(robot)
    pose = f.hold_pose
    f.filter({ELBOW: pose[ELBOW] + 1.0}, DT)
    res = f.filter({INDEX: 1.0}, DT)
    assert res.targets[INDEX] == pytest.approx(4.0 / 30.0)  # 4 rad/s for the hands
    assert res.targets[ELBOW] == pytest.approx(pose[ELBOW] + 2.0 / 30.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None, "0.3"])
def test_non_finite_anywhere_rejects_the_whole_command(robot, bad):
    f = make(robot)
    held = f.filter({ELBOW: -0.95, INDEX: 0.1}, DT).targets
    res = f.filter({ELBOW: -0.9, INDEX: 0.2, "R_ring_proximal_joint": bad}, 2 * DT)
    assert not res.accepted and res.non_finite == ("R_ring_proximal_joint",)
    assert res.targets == held
    assert f.counters["commands_rejected_non_finite"] == 1
    assert "non-finite" in res.reason
    # a NaN on an unknown name is still a broken producer
    res = f.filter({ELBOW: -0.9, "no_such_joint": bad}, 3 * DT)
    assert not res.accepted and res.targets == held and f.counters["commands_rejected_non_finite"] == 2
    # the next good command is used normally
    res = f.filter({ELBOW: -0.9}, 4 * DT)
    assert res.accepted and res.targets[ELBOW] == pytest.approx(-0.9)


def test_unknown_and_outside_names_are_listed_and_the_rest_passes(robot):
    f = make(robot)
    res = f.filter({ELBOW: -0.98, "left_elbow": 0.3, "left_knee_joint": 0.5, "torso_joint": 0.1}, DT)
    assert res.accepted and res.targets[ELBOW] == pytest.approx(-0.98)
    assert res.unknown_names == ("left_elbow",)
    assert res.not_commandable == ("left_knee_joint", "torso_joint")
    assert "left_knee_joint" not in res.targets and "left_elbow" not in res.targets
    assert f.counters["unknown_names"] == 1 and f.counters["not_commandable_names"] == 2


def test_mimic_joints_are_ignored_in_and_filled_out(robot):
    f = make(robot)
    res = f.filter({THUMB_PITCH: 0.04, "L_thumb_distal_joint": 1.0, "L_index_intermediate_joint": 1.0}, DT)
    assert res.ignored_mimic == ("L_thumb_distal_joint", "L_index_intermediate_joint")
    assert res.accepted and f.counters["ignored_mimic_names"] == 2
    assert res.targets[THUMB_PITCH] == pytest.approx(0.04)
    assert res.targets["L_thumb_intermediate_joint"] == pytest.approx(1.6 * 0.04)
    assert res.targets["L_thumb_distal_joint"] == pytest.approx(2.4 * 0.04)  # from the leader, not the 1.0 asked
    assert res.targets["L_index_intermediate_joint"] == res.targets[INDEX] == 0.0
    # every joint of the MuJoCo twin's hands is in the output; with fill_mimic off only the actuated ones
    assert set(robot.side("left").hand_joints) <= set(res.targets)
    g = make(robot, fill_mimic=False)
    assert set(g.filter({}, DT).targets) == set(g.joint_names)


def test_watchdog_hold_resume_and_ramp(robot):
    f = make(robot, sources=("camera", "policy"), resume_ramp_s=0.5)
    assert f.state(0.0) == "ok"
    start = f.hold_pose[ELBOW]
    t, k = 0.0, 0
    goal = start + 0.2
    # heartbeats every 0.033 s keep "ok"; the initial ramp lets tick k move k/15 of the cap
    while k < 30:
        k += 1
        t = k * 0.033
        f.heartbeat("camera", t)
        f.heartbeat("policy", t)
        res = f.filter({ELBOW: goal}, t)
        assert res.state == "ok" and f.state(t) == "ok"
    assert res.targets[ELBOW] == pytest.approx(goal)
    # the policy falls silent for 0.25 s (the camera keeps going): hold, whatever the input
    t_policy = t
    for k in range(1, 9):
        t += 0.033
        f.heartbeat("camera", t)
        res = f.filter({ELBOW: goal + 0.01 * k, INDEX: 0.1 * k}, t)  # a different command every tick
        if k <= 6:  # 0.198 s of silence: still fresh, the commands are used
            assert res.state == "ok" and res.accepted
            held = res.targets
        else:
            assert res.state == "hold" and not res.accepted and res.targets == held
            assert f.state(t) == "hold"
            assert res.reason == f"hold: policy silent for {t - t_policy:.2f} s"
    assert t - t_policy == pytest.approx(0.264)
    assert f.counters["watchdog_holds"] == 1 and f.counters["commands_held_watchdog"] == 2
    diag = {d["name"]: d for d in f.diagnostics(t)}
    assert diag["safety: state"]["level"] == DIAG_ERROR and "policy silent for 0.26 s" in diag["safety: state"]["message"]
    assert diag["safety: source policy"]["level"] == DIAG_ERROR
    assert diag["safety: source camera"]["level"] == DIAG_OK
    # a fresh heartbeat resumes; the ramp bounds the first ticks: tick j may move j/15 of 2/30 rad
    far = held[ELBOW] + 1.0
    prev = held[ELBOW]
    for j in range(1, 21):
        t += DT
        f.heartbeat("camera", t)
        f.heartbeat("policy", t)
        res = f.filter({ELBOW: far}, t)
        assert res.state == "ok" and res.accepted
        step = res.targets[ELBOW] - prev
        assert step == pytest.approx(2.0 / 30.0 * min(1.0, j / 15.0), rel=1e-9)
        prev = res.targets[ELBOW]
    assert f.counters["watchdog_resumes"] == 1


def test_never_heard_source_holds_after_its_time(robot):
    f = make(robot, sources=("policy",))
    assert f.state(0.1) == "ok"
    res = f.filter({ELBOW: -0.9}, 0.25)
    assert res.state == "hold" and res.reason == "hold: policy never heard (0.25 s since initialise)"
    with pytest.raises(KeyError, match="registered sources"):
        f.heartbeat("camra", 0.3)


def test_before_initialise_nothing_comes_out(robot):
    f = SafetyFilter(robot, SafetyConfig())
    assert f.state(0.0) == "no_targets_yet"
    res = f.filter({ELBOW: 0.0}, 0.0)
    assert res.targets == {} and not res.accepted and res.state == "no_targets_yet"
    assert f.counters["commands_before_initialise"] == 1
    assert f.diagnostics(0.0)[0]["level"] == DIAG_WARN
    with pytest.raises(ValueError, match="no measured position for"):
        f.initialise({ELBOW: 0.0})
    pose = measured_pose(robot)
    pose[ELBOW] = float("nan")
    with pytest.raises(ValueError, match="left_elbow_pitch_joint is nan"):
        f.initialise(pose)
    pose[ELBOW] = 2.0  # measured beyond the limit: the hold pose is clamped into the safe range
    clamps = f.initialise(pose)
    assert clamps[ELBOW] == pytest.approx(2.0 - 1.56)
    assert INDEX not in clamps  # an open hand sits on its limit: no margin on the hands by default
    assert f.hold_pose[ELBOW] == pytest.approx(1.56)


def test_diagnostics_levels_and_counters(robot):
    f = make(robot, sources=("policy",))
    f.heartbeat("policy", 0.0)
    levels = lambda: {d["name"]: d["level"] for d in f.diagnostics(DT)}  # noqa: E731
    f.filter({ELBOW: -0.99}, DT)
    assert levels() == {"safety: state": DIAG_OK, "safety: commands": DIAG_OK, "safety: source policy": DIAG_OK}
    f.filter({ELBOW: 1.57}, DT)  # on the URDF limit: clamped into the margin, routine
    assert levels()["safety: commands"] == DIAG_OK
    f.filter({INDEX: -0.2}, DT)  # beyond the URDF limit: a warning
    assert levels()["safety: commands"] == DIAG_WARN
    f.filter({ELBOW: -0.99}, DT)
    assert levels()["safety: commands"] == DIAG_OK
    f.filter({ELBOW: -0.99, "bogus": 1.0}, DT)
    assert levels()["safety: commands"] == DIAG_WARN
    f.filter({ELBOW: float("nan")}, DT)
    assert levels()["safety: commands"] == DIAG_ERROR
    status = {d["name"]: d for d in f.diagnostics(DT)}["safety: commands"]
    values = dict(status["values"])
    assert values["commands_rejected_non_finite"] == "1" and values["unknown_names"] == "1"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in status["values"])
    source = dict({d["name"]: d for d in f.diagnostics(0.1)}["safety: source policy"]["values"])
    assert source["seconds_since_heartbeat"] == "0.100" and source["stale_after_s"] == "0.2"


@pytest.mark.parametrize("kw, match", [
    ({"limit_margin_rad": -0.01}, "limit_margin_rad"),
    ({"max_velocity_scale": 1.5}, "max_velocity_scale must be in"),
    ({"max_arm_velocity_rad_s": 0.0}, "max_arm_velocity_rad_s must be a positive"),
    ({"control_hz": float("nan")}, "control_hz"),
    ({"stale_after_s": {"policy": 0.01}}, "shorter than one control period"),
    ({"resume_ramp_s": -1.0}, "resume_ramp_s"),
    ({"groups": ("left_arm", "legs")}, "neither arm nor hand"),
    ({"groups": ("left_arms",)}, "no joint group 'left_arms'"),
    ({"hand_limit_margin_rad": 0.3}, "leaves no room for L_thumb_proximal_pitch_joint"),
    ({"hand_limit_margin_rad": 0.5}, "hand_limit_margin_rad must be in"),
])
def test_config_errors_name_the_value(robot, kw, match):
    with pytest.raises(SafetyConfigError, match=match):
        SafetyFilter(robot, SafetyConfig(**kw))
