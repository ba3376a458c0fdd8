"""Smoother, arm IK and hand retargeting as real processes over DDS, closed around a perfectly tracking robot in
the test: on sim time (lockstep) the commands equal the libraries' (smoother + decoder + safety) to 1e-9 and the
arms reach the target; on wall time (free-running) bad input is refused and a silent policy makes them hold.
Both layouts: three processes talking over /egovla/action, and the control container (one process, steps handed
over in-process)."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, JointState
from trajectory_msgs.msg import JointTrajectory

from ros_harness import NodeProcess, wait_until

from egovla.msgs import chunk_to_msg, s_to_stamp, stamp_to_s, step_to_msg
from egovla.safety import SafetyConfig, SafetyFilter
from egovla_description.geometry import matrix_to_rot6d
from egovla_training.action_space import ee_pose_to_mano, indices, torso_to_camera
from egovla_training.hands import load_hand_model
from egovla_training.retarget.decode import ActionDecoder
from egovla_training.retarget.mlp import SHIPPED_STANDIN_NET, load_retarget_net
from egovla_training.smoothing import ChunkSmoother, action_streams

pytestmark = pytest.mark.ros
NODES = ("egovla.nodes.smoother", "egovla.nodes.arm_ik", "egovla.nodes.hand_retarget")
LAYOUTS = {"processes": NODES, "container": ("egovla.nodes.control",)}
DT = 1.0 / 30.0


@pytest.fixture(scope="module")
def decoder(robot):
    hands = {s: load_hand_model(s, kind="auto") for s in ("left", "right")}
    net, _ = load_retarget_net(SHIPPED_STANDIN_NET, hand_model_id=hands["left"].model_id)
    return ActionDecoder(hands, net, robot)


def target_step(decoder, offsets):
    """An action step whose wrists are the FK of the arms' nominal posture plus ``offsets`` (rad per joint index),
    hands at PCA (0.5, -0.3, 0, ...); and that arm configuration."""
    step, arms = np.zeros(48), {}
    for side in ("left", "right"):
        arm = decoder.ik.arms[side]
        q = np.clip(arm.nominal + offsets, arm.lower + 0.05, arm.upper - 0.05)
        transl, rot = ee_pose_to_mano(torso_to_camera(arm.forward(q), decoder.t_torso_camera), side,
                                      decoder.hands[side].root_offset.double().numpy())
        step[indices(side, "transl")] = transl
        step[indices(side, "rot6d")] = matrix_to_rot6d(rot)
        step[indices(side, "pca")[:2]] = (0.5, -0.3)
        arms[side] = q
    return step, arms


def start_pose(robot, decoder):
    positions = {n: 0.0 for n in robot.movable_joint_names}
    for side in ("left", "right"):
        arm = decoder.ik.arms[side]
        positions.update(zip(arm.joint_names, arm.nominal.tolist()))
    return positions


class FakeRobot:
    """The test's side of the loop: publishes joint states, camera frames and chunks; tracks commands exactly."""

    def __init__(self, probe, positions):
        node = probe.node
        self.positions = dict(positions)
        self.state_pub = node.create_publisher(JointState, "/joint_states", 10)
        self.camera_pub = node.create_publisher(CameraInfo, "/ego_camera/camera_info", 10)
        self.chunk_pub = node.create_publisher(JointTrajectory, "/egovla/action_chunk", 10)
        self.action_pub = node.create_publisher(JointState, "/egovla/action", 10)
        self.clock_pub = node.create_publisher(Clock, "/clock", 10)
        self.status_pub = node.create_publisher(DiagnosticStatus, "/egovla/task_status", 10)
        self.commands, self.arrivals = [], []  # messages, and the wall time each arrived

        def on_command(msg):
            self.arrivals.append(time.monotonic())
            self.commands.append(msg)

        node.create_subscription(JointState, "/joint_command", on_command, 10)
        self.diagnostics = probe.collect(DiagnosticArray, "/diagnostics")

    def observe(self, t):
        self.clock_pub.publish(Clock(clock=s_to_stamp(t)))
        msg = JointState(name=list(self.positions), position=list(self.positions.values()))
        msg.header.stamp = s_to_stamp(t)
        self.state_pub.publish(msg)
        info = CameraInfo(height=72, width=128)
        info.header.stamp = s_to_stamp(t)
        self.camera_pub.publish(info)

    def warm_up(self, chunk, t0=5.0):
        """Ticks (not tracked) until every connection of the loop carries messages, then a new episode: the nodes
        reseed their IK and hold the measured pose again."""
        self.status_pub.publish(DiagnosticStatus(name="test", values=[KeyValue(key="episode", value="0")]))
        for k in range(20):
            t = t0 + k * DT
            self.observe(t)
            time.sleep(0.01)
            self.chunk_pub.publish(chunk_to_msg(chunk, s_to_stamp(t)))
            try:
                self.commands_for(t, timeout_s=1.0)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("the control loop never answered")
        for _ in range(3):
            self.status_pub.publish(DiagnosticStatus(name="test", values=[KeyValue(key="episode", value="1")]))
            time.sleep(0.1)

    def commands_for(self, t, groups=2, timeout_s=10.0):
        """The commands stamped ``t``, merged; with ``groups`` 2 it waits for both nodes' (an arm joint and a hand
        joint among the names: one node may send two commands for a tick, e.g. a hold and then its answer)."""
        ns = round(t * 1e9)
        mine = lambda: [c for c in list(self.commands) if round(stamp_to_s(c.header.stamp) * 1e9) == ns]  # noqa

        def merged():
            out = {}
            for c in mine():
                out.update(zip(c.name, c.position))
            return out

        need = ("left_shoulder_pitch_joint", "R_index_proximal_joint")[:groups] if groups else ()
        assert wait_until(lambda: mine() and all(n in merged() for n in need), timeout_s), f"no commands for t={t}"
        return merged()


def nodes_up(probe, tmp_path, domain, layout, sim_time=False):
    """Start the three nodes (``layout``: as three processes or in the control container) and wait until DDS has
    matched every connection the tests use (a message published before its subscriber is matched is lost: these
    topics are volatile)."""
    args = ["--ros-args", "-p", "use_sim_time:=true"] if sim_time else []
    procs = [NodeProcess.module(m, domain, tmp_path, args=args) for m in LAYOUTS[layout]]
    node = probe.node
    # in the container the steps are function calls, and the arm IK node passes its inputs on to the hand node
    step_readers, state_readers = (2, 2) if layout == "processes" else (0, 1)
    matched = lambda: (node.count_subscribers("/joint_states") >= state_readers  # noqa: E731
                       and node.count_subscribers("/egovla/action_chunk") >= 1
                       and node.count_subscribers("/egovla/action") >= step_readers
                       and node.count_publishers("/joint_command") >= 2 and node.count_publishers("/egovla/action") >= 1)
    assert wait_until(matched, 60.0), "\n".join(p.log() for p in procs)
    time.sleep(0.5)  # discovery is mutual: give the other side of each match a moment too
    return procs


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_nodes_command_what_the_libraries_compute(ros_domain, ros_probe, tmp_path, robot, decoder, layout):
    step, arms = target_step(decoder, np.array([0.25, -0.2, 0.15, 0.3, 0.0, 0.1, 0.0]))
    robot_side = FakeRobot(ros_probe, start_pose(robot, decoder))
    # lockstep: the test's ticks are the clock
    procs = nodes_up(ros_probe, tmp_path, ros_domain, layout, sim_time=True)
    robot_side.warm_up(np.repeat(step[None], 30, 0))
    decoder.ik.reseed()  # as the IK node does at the new episode warm_up announced
    # the same computation in the test process
    smoother = ChunkSmoother(streams=action_streams(0.2, 0.8))
    arm_safety = SafetyFilter(robot, SafetyConfig(groups=("left_arm", "right_arm")))
    hand_safety = SafetyFilter(robot, SafetyConfig(groups=("left_hand", "right_hand")))
    expected_positions = dict(robot_side.positions)
    for s in (arm_safety, hand_safety):
        s.initialise(expected_positions, 10.0 + DT)
    try:
        for k in range(1, 50):
            t = 10.0 + k * DT
            robot_side.observe(t)
            time.sleep(0.01)  # the joint state arrives before the chunk that answers it
            chunk = np.repeat(step[None], 30, 0)
            robot_side.chunk_pub.publish(chunk_to_msg(chunk, s_to_stamp(t)))
            got = robot_side.commands_for(t)
            # reference
            smoother.add_chunk(t, chunk)
            s = smoother.query(t + DT)
            for f in (arm_safety, hand_safety):
                f.heartbeat("policy", t)
                f.heartbeat("camera", t)
            arm = decoder.ik.solve(decoder.wrist_targets(s), expected_positions, frame="torso",
                                   mode="converge").positions
            hand = decoder.hand_joints(s[None])[0]
            hand = {n: float(v) for n, v in zip(decoder.hand_joint_names, hand) if robot.joint(n).mimic is None}
            want = {**arm_safety.filter(arm, t, tick_s=t).targets, **hand_safety.filter(hand, t, tick_s=t).targets}
            assert got.keys() == want.keys()
            np.testing.assert_allclose([got[n] for n in want], list(want.values()), atol=1e-9)
            moved = max(abs(got[n] - robot_side.positions[n]) for n in arm)
            assert moved <= 2.0 * DT + 1e-9  # the arm velocity cap, 2 rad/s
            robot_side.positions.update(got)
            expected_positions.update(got)
        for side in ("left", "right"):  # converged onto the wrist pose that was asked for
            a = decoder.ik.arms[side]
            reached = a.forward(np.array([robot_side.positions[n] for n in a.joint_names]))
            assert np.linalg.norm(reached[:3, 3] - a.forward(arms[side])[:3, 3]) < 2e-3
    finally:
        for p in procs:
            assert p.stop() == 0, p.log()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_bad_input_is_refused_and_a_silent_policy_makes_the_arms_hold(ros_domain, ros_probe, tmp_path, robot,
                                                                       decoder, layout):
    step, _ = target_step(decoder, np.array([0.3, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0]))
    robot_side = FakeRobot(ros_probe, start_pose(robot, decoder))
    procs = nodes_up(ros_probe, tmp_path, ros_domain, layout)
    try:
        t = 20.0

        last_good = {"wall": 0.0}

        def tick(chunk_ok=True):
            nonlocal t
            t += DT
            robot_side.observe(t)
            time.sleep(0.01)
            if chunk_ok:
                robot_side.chunk_pub.publish(chunk_to_msg(np.repeat(step[None], 30, 0), s_to_stamp(t)))
                robot_side.positions.update(robot_side.commands_for(t))
                last_good["wall"] = time.monotonic()  # this tick's commands are in: the policy's last word

        # Good ticks until the commands settle: the safety layer's velocity and acceleration limits walk the hands
        # toward the step's target over ~16 ticks, and a hold that starts mid-move must brake (it moves on).
        # (The arms' redundant joints keep creeping by < 1e-4 rad per tick under the IK's regularisation.)
        # Settled = three ticks in a row (a tick's commands may be a hold sent before the step arrived).
        previous, still = None, 0
        for k in range(90):
            tick()
            now = dict(robot_side.positions)
            moving = previous is None or any(abs(v - previous[n]) >= 1e-3 for n, v in now.items())
            still = 0 if moving else still + 1
            if k >= 29 and still >= 3:  # the hands need ~16 ticks from the start pose
                break
            previous = now
        else:
            raise AssertionError("the commands never settled on a constant step")
        held_pose = dict(robot_side.positions)

        def moved_since(t_from):
            """Commands stamped at or after t_from that move a joint away from the held pose."""
            return [c for c in list(robot_side.commands) if stamp_to_s(c.header.stamp) > t_from - 1e-6 and
                    any(abs(v - held_pose[n]) > 1e-12 for n, v in zip(c.name, c.position) if n in held_pose)]

        # a chunk with NaN, an action step with garbage names: refused, logged, nothing moves, nobody dies
        bad = np.repeat(step[None], 30, 0)
        bad[3, 7] = np.nan
        t += DT
        t_bad = t
        robot_side.observe(t)
        robot_side.chunk_pub.publish(chunk_to_msg(bad, s_to_stamp(t)))
        garbage = step_to_msg(step, s_to_stamp(t))
        garbage.name = ["not_a_joint"] * 48
        robot_side.action_pub.publish(garbage)
        assert wait_until(lambda: "chunk rejected" in procs[0].log(), 10.0), procs[0].log()
        if layout == "processes":  # the container's controllers take their steps from its smoother only
            assert wait_until(lambda: all("action step rejected" in p.log() for p in procs[1:]), 10.0)
        # the policy stays silent while camera and joint states go on at 30 Hz: the arms hold within 0.2 s
        while time.monotonic() - last_good["wall"] < 1.5:
            tick(chunk_ok=False)
            time.sleep(DT)
        assert all(p.alive for p in procs)
        moved = moved_since(t_bad)
        # (a rare failure here in CI, not reproduced: say which joints moved, by how much, and what the nodes logged)
        assert not moved, "\n".join(
            [f"bad input at {t_bad:.4f} s, the last good tick at {t_bad - DT:.4f} s"] +
            [f"command stamped {stamp_to_s(c.header.stamp):.4f}: " + ", ".join(
                f"{n} {v - held_pose[n]:+.3g}" for n, v in zip(c.name, c.position)
                if n in held_pose and abs(v - held_pose[n]) > 1e-12) for c in moved[:3]] +
            [p.log()[-3000:] for p in procs])
        holds = [a for a in robot_side.arrivals if a > last_good["wall"]]
        assert holds, "no hold command while the policy was silent"
        took = min(holds) - last_good["wall"]
        assert took < 0.6, took  # 0.2 s watchdog + a control period + DDS, on a loaded 2-core machine
        assert wait_until(lambda: any(s.level == b"\x02" and "policy silent" in s.message
                                      for a in list(robot_side.diagnostics) for s in a.status), 3.0)
        # the policy comes back: commands move the arms again
        before = dict(robot_side.positions)
        for _ in range(5):
            tick()
        assert max(abs(robot_side.positions[n] - before[n]) for n in decoder.ik.arms["left"].joint_names) > 1e-4
        assert all(p.alive for p in procs)
    finally:
        for p in procs:
            assert p.stop() == 0, p.log()
