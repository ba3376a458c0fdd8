"""The MuJoCo sim bridge: its lockstep core without ROS, then the node as a real process over Fast DDS."""

import json
import math
import sys
import time

import numpy as np
import pytest

from egovla.sim_bridge_core import (RESET_GAP_TICKS, CommandGate, SimClock, camera_matrices, check_image_size,
                                    default_required_joints, join_stamp, mimic_table, split_stamp, status_values)
from ros_harness import NodeProcess, wait_until

# --- core, no ROS ------------------------------------------------------------------------------------------


def _gate(required=("a", "b", "c"), mode="lockstep"):
    gate = CommandGate(["a", "b", "c", "m"], [-1, -1, -1, -2], [1, 1, 1, 2], required,
                       mimic={"m": ("a", 2.0, 0.0)}, mode=mode)
    gate.hold({"a": 0.1, "b": 0.2, "c": 0.3, "m": 0.2})
    gate.start_tick(1000)
    return gate


def test_gate_merges_subsets_until_the_required_joints_are_covered():
    gate = _gate()
    assert gate.offer(1000, ["a"], [0.5]).status == "accepted" and not gate.complete
    assert gate.missing == ["b", "c"]
    gate.offer(1000, ["b", "c"], [0.6, 0.7])
    assert gate.complete
    assert gate.targets == {"a": 0.5, "b": 0.6, "c": 0.7, "m": 1.0}  # the mimic follows its leader
    gate.start_tick(2000)
    assert not gate.complete and gate.targets["a"] == 0.5  # last targets kept for the next tick


def test_gate_ignores_stale_future_and_unstamped_commands():
    gate = _gate()
    for stamp, status in ((999, "stale"), (1001, "future"), (0, "unstamped")):
        assert gate.offer(stamp, ["a", "b", "c"], [0.9, 0.9, 0.9]).status == status
    assert gate.targets["a"] == 0.1 and not gate.complete
    c = gate.counters
    assert (c.stale_commands, c.future_commands, c.unstamped_commands) == (1, 1, 1)
    gate.miss()
    assert gate.counters.missed_ticks == 1
    assert _gate(mode="free_running").offer(5, ["a"], [0.4]).status == "accepted"  # stamps do not matter there


def test_gate_clamps_drops_non_finite_and_reports_unknown_names_once():
    gate = _gate()
    out = gate.offer(1000, ["a", "b", "c", "zz", "zz"], [5.0, float("nan"), float("inf"), 0.0, 0.0])
    assert out.applied == {"a": 1.0} and out.clamped == {"a": (5.0, 1.0)}
    assert out.non_finite == ["b", "c"] and out.new_unknown == ["zz"] and out.unknown == ["zz", "zz"]
    assert gate.targets["b"] == 0.2 and gate.missing == ["b", "c"]  # dropped entries do not cover a joint
    assert gate.offer(1000, ["zz"], [0.0]).new_unknown == []
    assert gate.counters.non_finite_entries == 2 and gate.counters.clamped_entries == 1
    assert gate.targets["m"] == 2.0  # mimic of the clamped leader, itself clamped to its limit
    explicit = _gate()
    explicit.offer(1000, ["m"], [0.7])
    explicit.offer(1000, ["a"], [0.1])
    assert explicit.targets["m"] == 0.7  # an explicit follower target wins over the leader's
    assert gate.offer(1000, ["a", "b"], [0.0]).status == "malformed"
    with pytest.raises(ValueError, match="required_joints names joints"):
        _gate(required=("a", "nope"))
    with pytest.raises(ValueError, match="mode must be one of"):
        _gate(mode="fast")


def test_sim_clock_only_increases_and_stamps_round_trip():
    clock = SimClock()
    first = clock.reset_gap()
    assert first == 1_000_000_000 and clock.global_tick == RESET_GAP_TICKS
    assert clock.advance() - first == 33_333_333
    assert SimClock.stamp_ns_of(90) == 3_000_000_000
    assert join_stamp(*split_stamp(123_456_789_012)) == 123_456_789_012
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_status_values_camera_and_required_defaults(robot):
    message, values = status_values(task="close_drawer", episode=2, tick=7, global_tick=140, stamp_ns=5, success=True,
                                    progress=1.0, subtasks={"reach_success": 1.0}, counters={"missed_ticks": 3},
                                    placement_index=4, failure=None, stopped=False, mode="lockstep")
    v = dict(values)
    assert message == "success" and v["success"] == "1" and v["missed_ticks"] == "3" and v["reach_success"] == "1"
    assert v["episode"] == "2" and v["tick"] == "7" and v["stamp_ns"] == "5" and float(v["progress"]) == 1.0
    k, r, p = camera_matrices(10.0, 11.0, 5.0, 6.0)
    assert k[0] == 10 and k[4] == 11 and k[2] == 5 and k[5] == 6 and p[3] == 0 and len(p) == 12
    check_image_size(128, 72)
    with pytest.raises(ValueError, match="16:9"):
        check_image_size(640, 480)
    required = default_required_joints(robot)
    assert len(required) == 26 and "left_wrist_yaw_joint" in required and "R_thumb_proximal_pitch_joint" in required
    assert not set(required) & set(robot.mimic_joint_names)
    assert mimic_table(robot, robot.movable_joint_names)["L_index_intermediate_joint"][0] == "L_index_proximal_joint"


# --- the node as a process ---------------------------------------------------------------------------------

ros = pytest.mark.ros
SMALL = ["-p", "image_width:=128", "-p", "image_height:=72"]


def _start(domain, tmp_path, *params, name="sim_bridge"):
    args = ["--ros-args", *SMALL]
    for p in params:
        args += ["-p", p]
    node = NodeProcess.module("egovla.nodes.sim_bridge", domain, tmp_path, args=args, name=name)
    assert wait_until(lambda: "sim bridge ready" in node.log() or not node.alive, 60.0), node.log()
    assert node.alive, node.log()
    return node


def _ns(stamp) -> int:
    return join_stamp(stamp.sec, stamp.nanosec)


def _ticks(joint_states, start_ns=0) -> list:
    """One joint state per tick from ``start_ns`` on (a tick that waits is re-announced with its stamp)."""
    by_stamp = {}
    for js in joint_states:
        if _ns(js.header.stamp) >= start_ns:
            by_stamp.setdefault(_ns(js.header.stamp), js)
    return [by_stamp[k] for k in sorted(by_stamp)]


def _status(msg) -> dict:
    return {kv.key: kv.value for kv in msg.values}


def _command(names, values, stamp):
    from sensor_msgs.msg import JointState

    from builtin_interfaces.msg import Time

    msg = JointState(name=list(names), position=[float(v) for v in values])
    msg.header.stamp = Time(sec=stamp.sec, nanosec=stamp.nanosec)  # a copy: messages share nested objects
    return msg


def _set_params(probe, **values):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParametersAtomically

    params = []
    for name, value in values.items():
        if isinstance(value, str):
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        elif isinstance(value, float):
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(value))
        params.append(Parameter(name=name, value=pv))
    result = _call(probe, SetParametersAtomically, "/sim_bridge/set_parameters_atomically",
                   SetParametersAtomically.Request(parameters=params)).result
    return result


def _call(probe, srv_type, name, request, timeout_s=60.0):
    client = probe.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20.0), f"no service {name}"
    future = client.call_async(request)
    assert wait_until(future.done, timeout_s), f"{name} did not answer within {timeout_s} s"
    return future.result()


def _reset(probe):
    from std_srvs.srv import Trigger

    return _call(probe, Trigger, "/sim/reset", Trigger.Request())


@ros
def test_bridge_publishes_joint_states_camera_clock_and_a_latched_instruction(ros_domain, ros_probe, tmp_path, robot):
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from std_msgs.msg import String

    node = _start(ros_domain, tmp_path, "lockstep_timeout_s:=0.3", "warmup_steps:=3")
    try:
        joints = ros_probe.collect(JointState, "/joint_states")
        images = ros_probe.collect(Image, "/ego_camera/image_raw")
        infos = ros_probe.collect(CameraInfo, "/ego_camera/camera_info")
        clocks = ros_probe.collect(Clock, "/clock")
        statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
        assert wait_until(lambda: min(map(len, (joints, images, infos, clocks, statuses))) >= 2, 15.0), node.log()
        js = joints[-1]
        assert set(js.name) == set(robot.movable_joint_names) - {"torso_joint"} and len(js.name) == 50
        assert len(js.position) == len(js.velocity) == 50 and all(map(math.isfinite, js.position))
        img, info = images[-1], infos[-1]
        assert (img.width, img.height, img.encoding, img.step, len(img.data)) == (128, 72, "rgb8", 384, 128 * 72 * 3)
        assert img.header.frame_id == info.header.frame_id == "head_camera_optical_frame"
        k = robot.head_camera.intrinsics
        assert (info.width, info.height) == (128, 72)
        np.testing.assert_allclose(info.k, [k.fx / 10, 0, 64, 0, k.fy / 10, 36, 0, 0, 1], rtol=1e-9)
        assert np.asarray(img.data).reshape(72, 128, 3).std() > 1.0  # a rendered scene, not a blank image
        # One tick, one stamp on every topic; the clock only moves forward.
        stamp = _ns(js.header.stamp)
        assert stamp in {_ns(m.header.stamp) for m in images} and stamp in {_ns(m.header.stamp) for m in infos}
        assert stamp in {_ns(m.clock) for m in clocks}
        assert str(stamp) in {_status(m)["stamp_ns"] for m in statuses}
        ticks = [_ns(m.clock) for m in clocks]
        assert ticks == sorted(ticks) and ticks[0] > 0
        st = statuses[-1]
        assert st.name == "close_drawer" and st.message == "running"
        assert {"success", "progress", "episode", "tick", "missed_ticks", "reach_success"} <= set(_status(st))
        time.sleep(0.5)  # a late subscriber: transient-local delivers the instruction published at reset
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        msg = ros_probe.wait_for_message(String, "/egovla/instruction", timeout_s=10.0, qos=latched)
        assert msg.data == "Close the opened drawer"
    finally:
        assert node.stop() == 0, node.log()


@ros
def test_without_commands_ticks_time_out_and_bad_commands_are_ignored(ros_domain, ros_probe, tmp_path, robot):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import JointState

    node = _start(ros_domain, tmp_path, "lockstep_timeout_s:=0.25", "warmup_steps:=2", "reannounce_s:=0.0")
    try:
        joints = ros_probe.collect(JointState, "/joint_states")
        statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
        diags = ros_probe.collect(DiagnosticArray, "/diagnostics")
        pub = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
        assert wait_until(lambda: len(statuses) >= 3, 10.0), node.log()
        missed = [int(_status(m)["missed_ticks"]) for m in statuses]
        assert missed[-1] >= 2 and missed == sorted(missed)
        assert wait_until(lambda: any(s.level == DiagnosticStatus.WARN for d in diags for s in d.status), 5.0)
        assert wait_until(lambda: pub.get_subscription_count() > 0, 10.0)

        # Wait long enough for commands from now on: a step that comes quickly was caused by a command.
        assert _set_params(ros_probe, lockstep_timeout_s=3.0).successful
        n = len(joints)
        assert wait_until(lambda: len(joints) > n, 5.0)
        required = default_required_joints(robot)
        elbow = "left_elbow_pitch_joint"
        n = len(joints)
        last = joints[-1]
        hold = dict(zip(last.name, last.position))
        old = _command(required, [hold[j] for j in required], last.header.stamp)
        old.header.stamp.sec -= 1  # stale: an earlier tick
        nan = _command(required, [float("nan")] * len(required), last.header.stamp)
        bad_names = _command(["no_such_joint", *required], [0.0, *[hold[j] for j in required]], last.header.stamp)
        t0 = time.monotonic()
        for m in (old, nan, bad_names, bad_names):
            pub.publish(m)
        # bad_names covers the tick: it steps at once (its unknown entry ignored); the repeat is then stale.
        assert wait_until(lambda: len(joints) > n, 2.0), node.log()
        assert time.monotonic() - t0 < 1.5
        assert wait_until(lambda: "unknown joint 'no_such_joint'" in node.log(), 5.0), node.log()
        assert node.log().count("unknown joint 'no_such_joint'") == 1  # warned once per name
        assert "non-finite targets dropped" in node.log()
        assert wait_until(lambda: int(_status(statuses[-1])["stale_commands"]) >= 2, 5.0)
        assert node.alive

        # A valid command for the current tick steps at once and its targets stay in force.
        latest = joints[-1]
        target = hold[elbow] + 0.4
        values = [target if j == elbow else hold[j] for j in required]
        before = int(_status(statuses[-1])["missed_ticks"])
        t0 = time.monotonic()
        pub.publish(_command(required, values, latest.header.stamp))
        assert wait_until(lambda: _ns(joints[-1].header.stamp) > _ns(latest.header.stamp), 5.0)
        assert time.monotonic() - t0 < 1.5 and int(_status(statuses[-1])["missed_ticks"]) == before
        assert _set_params(ros_probe, lockstep_timeout_s=0.1).successful
        assert wait_until(lambda: abs(dict(zip(joints[-1].name, joints[-1].position))[elbow] - target) < 0.05, 10.0), \
            dict(zip(joints[-1].name, joints[-1].position))[elbow]
        assert node.alive
    finally:
        assert node.stop() == 0, node.log()


@ros
def test_lockstep_matches_the_direct_api_and_resets(ros_domain, ros_probe, tmp_path, robot):
    """A scripted expert drives a local BenchmarkEnv and the bridge with the same targets (arms and hands in two
    messages): the bridge's joint states equal the local env's at every tick. Then /sim/reset."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import JointState

    from egovla_sim.env import BenchmarkEnv
    from egovla_sim.experts import make_policy

    task, seed, placement, warmup = "close_drawer", 3, 5, 10
    node = _start(ros_domain, tmp_path, f"task:={task}", f"seed:={seed}", f"placement_index:={placement}",
                  f"warmup_steps:={warmup}", "lockstep_timeout_s:=10.0")
    env = BenchmarkEnv(task)
    try:
        joints = ros_probe.collect(JointState, "/joint_states")
        statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
        arms = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
        hands = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
        assert wait_until(lambda: arms.get_subscription_count() > 0 and hands.get_subscription_count() > 0, 10.0)
        # Observation 0 went out before the probe subscribed: a reset republishes it (the same episode again).
        reply = _reset(ros_probe)
        assert reply.success, reply.message
        assert json.loads(reply.message)["placement"] == placement
        start = json.loads(reply.message)["stamp_ns"]
        all_joints, joints = joints, []

        obs, _ = env.reset(seed=seed, visual=(1, 1), placement_index=placement)
        hold = env.current_targets()
        for _ in range(warmup):
            obs, *_ = env.step(hold)
        env.steps = 0
        expert = make_policy("scripted", task)
        expert.reset(env)
        arm_names = [n for s in ("left", "right") for n in robot.side(s).arm_joints]
        hand_names = [n for s in ("left", "right") for n in robot.side(s).hand_joints]
        worst, moved = 0.0, 0.0
        q0 = env.joint_positions()
        t0 = time.monotonic()
        ticks = 40
        for k in range(ticks):
            assert wait_until(lambda: len(_ticks(all_joints, start)) > k, 10.0), f"no observation {k}\n{node.log()}"
            joints = _ticks(all_joints, start)
            js = joints[k]
            local = env.joint_positions()
            remote = dict(zip(js.name, js.position))
            worst = max(worst, max(abs(remote[n] - local[n]) for n in local))
            assert worst < 1e-6, (k, worst)
            targets = expert.act(env, obs)
            arms.publish(_command(arm_names, [targets[n] for n in arm_names], js.header.stamp))
            hands.publish(_command(hand_names, [targets[n] for n in hand_names], js.header.stamp))
            obs, *_ = env.step(targets)
        rate = ticks / (time.monotonic() - t0)
        moved = max(abs(env.joint_positions()[n] - q0[n]) for n in arm_names)
        print(f"\nlockstep with the expert in the loop: {rate:.1f} ticks/s, worst |dq| {worst:.2e} rad, "
              f"arm moved {moved:.3f} rad")
        assert moved > 0.05  # the expert really moved the arms
        assert int(_status(statuses[-1])["missed_ticks"]) == 0

        # Reset to another task and placement: success, and time keeps going forward.
        joints = all_joints
        last_stamp = _ns(joints[-1].header.stamp)
        n = len(joints)
        assert _set_params(ros_probe, task="open_drawer", placement_index=7).successful
        reply = _reset(ros_probe)
        assert reply.success, reply.message
        info = json.loads(reply.message)
        assert info["task"] == "open_drawer" and info["placement"] == 7 and info["episode"] == 2
        assert "drawer" in info["instruction"].lower()
        # the new episode's first observation is later than the last one (a re-announced old tick may come between)
        assert wait_until(lambda: any(_ns(j.header.stamp) != last_stamp for j in joints[n:]), 10.0)
        assert all(_ns(j.header.stamp) >= last_stamp for j in joints[n:])
        assert max(_ns(j.header.stamp) for j in joints[n:]) > last_stamp
        assert wait_until(lambda: statuses[-1].name == "open_drawer" and _status(statuses[-1])["tick"] == "0", 5.0)
        # A bad task name: the reset is refused with a clear message; the bridge carries on.
        assert _set_params(ros_probe, task="no_such_task").successful
        reply = _reset(ros_probe)
        assert not reply.success and "unknown task 'no_such_task'" in reply.message
        bad = _set_params(ros_probe, mode="fast")
        assert not bad.successful and "mode must be one of" in bad.reason
        assert node.alive
    finally:
        env.close()
        assert node.stop() == 0, node.log()


@ros
def test_lockstep_steps_on_answers_at_any_image_size(ros_domain, ros_probe, tmp_path, robot):
    """A responder that answers each observation at once keeps the bridge stepping, before and after the image
    size changes at a reset (128x72, then 640x360). Speeds: benchmarks/bench_ros.py."""
    from sensor_msgs.msg import JointState

    node = _start(ros_domain, tmp_path, "warmup_steps:=0", "lockstep_timeout_s:=5.0")
    required = default_required_joints(robot)
    pub = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
    stamps = []

    def respond(js):
        stamps.append(time.monotonic())
        pos = dict(zip(js.name, js.position))
        pub.publish(_command(required, [pos[j] for j in required], js.header.stamp))

    ros_probe.node.create_subscription(JointState, "/joint_states", respond, 10)
    rates = {}
    try:
        assert wait_until(lambda: pub.get_subscription_count() > 0, 10.0)
        for w, h in ((128, 72), (640, 360)):
            assert _set_params(ros_probe, image_width=w, image_height=h).successful
            assert _reset(ros_probe).success
            assert wait_until(lambda: len(stamps) > 5, 10.0), node.log()
            time.sleep(0.5)
            n0, t0 = len(stamps), time.monotonic()
            time.sleep(1.0)
            rates[f"{w}x{h}"] = (len(stamps) - n0) / (time.monotonic() - t0)
        assert min(rates.values()) > 3.0, rates  # stepping on answers, not on the 5 s lockstep timeout
        assert node.alive
    finally:
        assert node.stop() == 0, node.log()


@ros
def test_bad_parameters_exit_with_code_2(ros_domain, tmp_path):
    for param, expected in (("task:=no_such_task", "unknown task 'no_such_task'"),
                            ("mode:=fast", "mode must be one of lockstep, free_running"),
                            ("reannounce_s:=-1.0", "reannounce_s must be in [0, 600]"),
                            # rclpy's own type check, as one line too
                            ("reannounce_s:=1", "Trying to set parameter 'reannounce_s' to '1' of type 'INTEGER', "
                                                "expecting type 'DOUBLE'")):
        node = NodeProcess([sys.executable, "-m", "egovla.nodes.sim_bridge", "--ros-args", "-p", param],
                           ros_domain, tmp_path / f"{param.split(':')[0]}.log")
        code = node.wait(timeout_s=60.0)
        node.stop()
        assert code == 2 and f"sim_bridge: error: {expected}" in node.log(), node.log()
        assert "Traceback" not in node.log(), node.log()


@ros
def test_free_running_steps_on_the_wall_clock_and_max_ticks_stops_the_episode(ros_domain, ros_probe, tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import JointState

    # The probe's endpoints exist before the bridge starts, so discovery runs while it loads: a free-running bridge
    # does not wait for anyone, and 90 ticks are 3 s.
    joints = ros_probe.collect(JointState, "/joint_states")
    statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
    pub = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
    node = _start(ros_domain, tmp_path, "mode:=free_running", "max_ticks:=90", "warmup_steps:=0")
    try:
        assert wait_until(lambda: len(joints) >= 2 and pub.get_subscription_count() > 0, 10.0), node.log()
        t0, n0 = time.monotonic(), len(joints)
        # Free-running: an unstamped command applies at once (no lockstep bookkeeping).
        target = dict(zip(joints[-1].name, joints[-1].position))["left_elbow_pitch_joint"] + 0.3
        for _ in range(5):  # the first may beat discovery on the bridge's side; repeats are harmless
            pub.publish(_command(["left_elbow_pitch_joint"], [target], JointState().header.stamp))
            time.sleep(0.05)
        assert wait_until(lambda: _status(statuses[-1])["stopped"] == "1", 10.0), node.log()
        # the wall clock paces it: never faster than 30 ticks/s (a loaded machine may make it slower: no bound)
        rate = (len(joints) - n0) / (time.monotonic() - t0)
        assert rate < 33.0, rate
        assert _status(statuses[-1])["tick"] == "90" and int(_status(statuses[-1])["missed_ticks"]) == 0
        n = len(joints)
        time.sleep(0.3)
        assert len(joints) == n  # stopped: no more ticks until a reset
        elbow = dict(zip(joints[-1].name, joints[-1].position))["left_elbow_pitch_joint"]
        assert abs(elbow - target) < 0.05, (elbow, target)
        assert _reset(ros_probe).success
        assert wait_until(lambda: len(joints) > n + 3, 5.0)
    finally:
        assert node.stop() == 0, node.log()


@ros
def test_a_waiting_tick_is_reannounced_to_a_late_listener_and_then_answered(ros_domain, ros_probe, tmp_path,
                                                                              robot):
    """A node that starts listening after a tick went out still gets that tick (same stamp, same content), answers
    it, and the tick is not missed."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import Image, JointState

    node = _start(ros_domain, tmp_path, "lockstep_timeout_s:=30.0", "reannounce_s:=0.3", "warmup_steps:=2")
    try:
        time.sleep(1.0)  # tick 0 went out before anyone listened
        statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
        joints = ros_probe.collect(JointState, "/joint_states")
        images = ros_probe.collect(Image, "/ego_camera/image_raw")
        assert wait_until(lambda: len(joints) >= 2 and len(images) >= 2, 5.0), node.log()
        stamps = {_ns(m.header.stamp) for m in joints}
        assert len(stamps) == 1 and stamps == {_ns(m.header.stamp) for m in images}  # the same tick again
        assert joints[0].position == joints[1].position and bytes(images[0].data) == bytes(images[1].data)
        assert "tick 0 re-announced" in node.log()
        assert wait_until(lambda: len(statuses) >= 1, 5.0), node.log()  # the status comes again too
        assert {(_status(m)["tick"], int(_status(m)["stamp_ns"])) for m in statuses} == {("0", max(stamps))}
        seen = len(statuses)
        pub = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
        assert wait_until(lambda: pub.get_subscription_count() > 0, 10.0)
        required = default_required_joints(robot)
        hold = dict(zip(joints[-1].name, joints[-1].position))
        pub.publish(_command(required, [hold[j] for j in required], joints[-1].header.stamp))
        assert wait_until(lambda: any(_status(m)["tick"] != "0" for m in statuses[seen:]), 5.0), node.log()
        status = next(_status(m) for m in statuses[seen:] if _status(m)["tick"] != "0")
        assert status["tick"] == "1" and status["missed_ticks"] == "0"
        assert int(status["stamp_ns"]) > max(stamps)
    finally:
        assert node.stop() == 0, node.log()
