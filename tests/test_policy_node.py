"""The policy node as a real process: the egovla plugin on a tiny checkpoint, a missing checkpoint, and the scripted
plugin against a real sim bridge in lockstep."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from ros_harness import NodeProcess, wait_until

pytestmark = pytest.mark.ros
TASK = "close_drawer"
WARMUP = 10


def _stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def test_library_proprio_and_images(robot):
    from egovla.policy_plugins import image_to_rgb, proprio_from_positions
    from egovla_description.kinematics import RobotKinematics

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(image_to_rgb(2, 3, "rgb8", 9, rgb.tobytes()), rgb)
    assert np.array_equal(image_to_rgb(2, 3, "bgr8", 9, rgb[..., ::-1].tobytes()), rgb)
    with pytest.raises(ValueError):
        image_to_rgb(2, 3, "mono8", 3, bytes(6))
    p = proprio_from_positions(RobotKinematics(robot), {"left": np.zeros(3), "right": np.zeros(3)},
                               {n: 0.0 for n in robot.movable_joint_names})
    assert p["translation"].shape == (2, 3) and p["fingertips"].shape == (2, 5, 3)
    assert np.isfinite(p["rotation"]).all() and (p["translation"][:, 2] > 0.1).all()  # in front of the camera


def test_egovla_plugin_answers_each_tick_with_a_chunk_stamped_like_it(ros_domain, ros_probe, tmp_path, robot,
                                                                      tiny_checkpoint):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from egovla.msgs import msg_to_chunk, stamp_to_ns

    node = NodeProcess.module("egovla.nodes.policy", ros_domain, tmp_path, name="policy", args=[
        "--ros-args", "-p", "policy:=egovla", "-p", f"checkpoint:={tiny_checkpoint}", "-p", "use_sim_time:=true",
        "-p", "history_spacing:=2"])
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    instr = ros_probe.node.create_publisher(String, "/egovla/instruction", latched)
    instr.publish(String(data="close the drawer"))  # before the node exists: transient local delivers it
    images = ros_probe.node.create_publisher(Image, "/ego_camera/image_raw", 4)
    joints = ros_probe.node.create_publisher(JointState, "/joint_states", 10)
    chunks = ros_probe.collect(JointTrajectory, "/egovla/action_chunk")
    names = list(robot.movable_joint_names)
    rng = np.random.default_rng(0)

    def image(ns):
        msg = Image(height=36, width=64, encoding="rgb8", step=64 * 3)
        msg.data = rng.integers(0, 255, (36, 64, 3), dtype=np.uint8).tobytes()
        msg.header.stamp = _stamp(ns)
        return msg

    def state(ns):
        msg = JointState(name=names, position=[0.0] * len(names))
        msg.header.stamp = _stamp(ns)
        return msg

    try:
        assert wait_until(lambda: "policy egovla ready" in node.log() or not node.alive, 60.0), node.log()
        assert wait_until(lambda: joints.get_subscription_count() > 0 and images.get_subscription_count() > 0, 10)
        assert wait_until(lambda: "instruction:" in node.log(), 10.0), node.log()
        stamps = [1_000_000_000 + k * 33_333_333 for k in range(6)]
        for k, ns in enumerate(stamps):
            if k == 3:  # the joint state first: the tick waits for its image
                joints.publish(state(ns))
                time.sleep(0.05)
                images.publish(image(ns))
            else:
                images.publish(image(ns))
                joints.publish(state(ns))
            assert wait_until(lambda: len(chunks) == k + 1, 20.0), (k, node.log())
        # A joint state whose image never comes: skipped with a warning, no chunk.
        joints.publish(state(2_000_000_000))
        assert wait_until(lambda: "skipped: no image" in node.log(), 5.0), node.log()
        time.sleep(0.2)
        assert len(chunks) == len(stamps)
        assert [stamp_to_ns(c.header.stamp) for c in chunks] == stamps
        for c in chunks:
            assert msg_to_chunk(c).shape == (30, 48)  # names, 30 points, finite
        assert wait_until(lambda: "egovla: inference" in node.log(), 5.0), node.log()
    finally:
        node.stop()


def test_a_missing_checkpoint_exits_2_with_one_line(ros_domain, tmp_path):
    node = NodeProcess([sys.executable, "-m", "egovla.nodes.policy", "--ros-args", "-p", "policy:=egovla",
                        "-p", f"checkpoint:={tmp_path / 'nope'}"], ros_domain, tmp_path / "policy.log")
    code = node.wait(timeout_s=60.0)
    node.stop()
    log = node.log()
    assert code == 2, log
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("policy: error: checkpoint") and "nope" in lines[0], log


def test_scripted_plugin_tracks_the_expert_through_a_real_bridge(ros_domain, ros_probe, tmp_path, robot):
    from sensor_msgs.msg import JointState
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    from egovla.msgs import command_msg, msg_to_chunk, stamp_to_ns
    from egovla_description.geometry import transform_inverse
    from egovla_description.kinematics import RobotKinematics
    from egovla_sim.env import BenchmarkEnv, EnvOptions
    from egovla_sim.experts import make_policy
    from egovla_training.hands import load_hand_model
    from egovla_training.retarget.decode import ActionDecoder
    from egovla_training.retarget.mlp import SHIPPED_STANDIN_NET, load_retarget_net

    bridge = NodeProcess.module("egovla.nodes.sim_bridge", ros_domain, tmp_path, name="sim_bridge", args=[
        "--ros-args", "-p", f"task:={TASK}", "-p", "image_width:=128", "-p", "image_height:=72",
        "-p", f"warmup_steps:={WARMUP}", "-p", "lockstep_timeout_s:=10.0", "-p", "seed:=3"])
    policy = NodeProcess.module("egovla.nodes.policy", ros_domain, tmp_path, name="policy", args=[
        "--ros-args", "-p", "policy:=scripted", "-p", "use_sim_time:=true"])
    chunks = ros_probe.collect(JointTrajectory, "/egovla/action_chunk")
    commands = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
    reset = ros_probe.node.create_client(Trigger, "/sim/reset")
    hands = {s: load_hand_model(s, kind="auto") for s in ("left", "right")}
    net, _ = load_retarget_net(SHIPPED_STANDIN_NET, hand_model_id=hands["left"].model_id)
    decoder = ActionDecoder(hands, net, robot)
    kin = RobotKinematics(robot)
    torso = robot.head_camera.parent_link
    ee = {s: robot.side(s).end_effector_link for s in ("left", "right")}
    env = BenchmarkEnv(TASK, robot=robot, options=EnvOptions(render_width=128, render_height=72))
    try:
        assert wait_until(lambda: "sim bridge ready" in bridge.log() or not bridge.alive, 60.0), bridge.log()
        assert wait_until(lambda: "policy scripted ready" in policy.log() or not policy.alive, 60.0), policy.log()
        assert wait_until(lambda: commands.get_subscription_count() > 0, 10.0)
        assert wait_until(lambda: "/sim/state" in dict(policy_topics(ros_probe)), 10.0)
        # A fresh episode now that everyone listens (tick 0 of the bridge's first episode went out before).
        assert reset.wait_for_service(timeout_sec=10.0)
        future = reset.call_async(Trigger.Request())
        assert wait_until(lambda: future.done(), 30.0) and future.result().success, future.result()
        obs, _ = env.reset(seed=3, placement_index=None)  # the placement drawn from the seed (/sim/state has it)
        hold = env.current_targets()
        for _ in range(WARMUP):
            obs, *_ = env.step(hold)
        env.steps = 0
        expert = make_policy("scripted", TASK)
        expert.reset(env)
        seen, errors, t0 = set(), [], time.monotonic()
        for tick in range(15):
            assert wait_until(lambda: any(stamp_to_ns(c.header.stamp) not in seen for c in chunks[-3:]), 30.0), \
                (tick, policy.log()[-2000:])
            msg = [c for c in chunks if stamp_to_ns(c.header.stamp) not in seen][-1]
            stamp_ns = stamp_to_ns(msg.header.stamp)
            seen.add(stamp_ns)
            targets = dict(expert.act(env, obs))
            step = msg_to_chunk(msg)
            assert np.allclose(step, step[0]), "a scripted chunk is constant"
            decoded = decoder.wrist_targets(step[0])
            poses = kin.frame_poses(kin.q_from_positions(targets), [torso, ee["left"], ee["right"]])
            for side in ("left", "right"):
                want = transform_inverse(poses[torso]) @ poses[ee[side]]
                errors.append(float(np.linalg.norm(decoded[side][:3, 3] - want[:3, 3])))
            commands.publish(command_msg(targets, msg.header.stamp))
            obs, *_ = env.step(targets)
        wall = time.monotonic() - t0
        assert max(errors) < 0.01, errors
        print(f"scripted: 15 ticks in {wall:.2f} s, wrist error max {max(errors) * 1e3:.4f} mm")
    finally:
        policy.stop()
        bridge.stop()
        env.close()


def policy_topics(probe):
    return probe.node.get_topic_names_and_types()
