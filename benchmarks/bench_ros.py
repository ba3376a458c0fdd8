"""The ROS control path as real processes over Fast DDS on this machine.

- ``control_latency_*_ms``: from publishing a tick's joint state and camera frame to the arrival of both
  ``/joint_command`` messages it causes, through a policy that answers at once (the benchmark itself publishes the
  chunk when it has published the frame: the model's forward pass is excluded), the smoother, the arm IK and the
  hand retargeting nodes in the control container (``egovla.nodes.control``, the shipped graphs' layout). Goal:
  p99 < 5 ms. ``processes_*``: the same with the three nodes as separate processes (one DDS hop more).
- ``control_jitter_ms``: spread (p99 - p1) of the interval between ``/joint_command`` arrivals when frames are
  published on a 30 Hz wall timer (free running).
- ``watchdog_hold_ms``: from the policy's last action to the first hold command when it goes silent (limit 200 ms).
- ``cpu_percent_<node>``: CPU use of each node process over the 30 Hz run (100 = one core).
- ``sim_bridge_lockstep_ticks_per_s_<w>x<h>``: the MuJoCo bridge with a responder that answers each observation
  at once.
- ``suppressed_log_line_us_<rclpy|node>``: one throttled log line that is not printed, through rclpy's throttle and
  through the nodes' ``ThrottledLog`` (the safety layer logs on every velocity-capped tick).
- ``container_spin_iteration_us``: one executor spin iteration of the control container's three nodes in one
  process, with the nodes' QoS event handlers off (shipped) and on (``_with_rclpy_event_handlers``), and what the
  wait set holds in each case.

    python benchmarks/bench_ros.py
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ros_harness import NodeProcess, RosProbe, allocate_domain_id, release_domain_id, wait_until  # noqa: E402

LAYOUTS = {"container": {"control": "egovla.nodes.control"},
           "processes": {"smoother": "egovla.nodes.smoother", "arm_ik": "egovla.nodes.arm_ik",
                         "hand_retarget": "egovla.nodes.hand_retarget"}}
DT = 1.0 / 30.0


def _step(decoder):
    from egovla_description.geometry import matrix_to_rot6d
    from egovla_training.action_space import ee_pose_to_mano, indices, torso_to_camera

    step = np.zeros(48)
    for side in ("left", "right"):
        arm = decoder.ik.arms[side]
        transl, rot = ee_pose_to_mano(torso_to_camera(arm.forward(arm.nominal), decoder.t_torso_camera), side,
                                      decoder.hands[side].root_offset.double().numpy())
        step[indices(side, "transl")] = transl
        step[indices(side, "rot6d")] = matrix_to_rot6d(rot)
    return step


def control_path(log_dir: Path, ticks: int = 300, layout: str = "container") -> dict:
    import psutil
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from trajectory_msgs.msg import JointTrajectory

    from egovla.cdr import decode_joint_state, encode_chunk, encode_joint_state
    from egovla.msgs import s_to_stamp
    from egovla_description import load_robot
    from egovla_training.hands import load_hand_model
    from egovla_training.retarget.decode import ActionDecoder
    from egovla_training.retarget.mlp import SHIPPED_STANDIN_NET, load_retarget_net

    robot = load_robot()
    hands = {s: load_hand_model(s, kind="auto") for s in ("left", "right")}
    decoder = ActionDecoder(hands, load_retarget_net(SHIPPED_STANDIN_NET, hands["left"].model_id)[0], robot)
    step = _step(decoder)
    positions = {n: 0.0 for n in robot.movable_joint_names}
    for side in ("left", "right"):
        positions.update(zip(decoder.ik.arms[side].joint_names, decoder.ik.arms[side].nominal.tolist()))

    domain = allocate_domain_id()
    probe = RosProbe(domain, "bench_probe", lean_executor=True)  # the bridge it stands for spins on it
    procs = {name: NodeProcess.module(m, domain, log_dir) for name, m in LAYOUTS[layout].items()}
    out: dict = {}
    try:
        node = probe.node
        # The probe stands for the simulator bridge, an EgoNode: endpoints without rclpy's QoS event handlers
        # (each one a waitable its executor would poll on every spin, in the measured path).
        quiet_pub = dict(event_callbacks=PublisherEventCallbacks(use_default_callbacks=False))
        state_pub = node.create_publisher(JointState, "/joint_states", 10, **quiet_pub)
        image_pub = node.create_publisher(Image, "/ego_camera/image_raw", 2, **quiet_pub)
        info_pub = node.create_publisher(CameraInfo, "/ego_camera/camera_info", 10, **quiet_pub)
        chunk_pub = node.create_publisher(JointTrajectory, "/egovla/action_chunk", 10, **quiet_pub)
        arrivals: dict[int, list[float]] = {}
        waiting = {"key": None, "event": threading.Event()}

        def on_command(data):
            now = time.perf_counter()
            key = decode_joint_state(data).stamp_ns
            arrivals.setdefault(key, []).append(now)
            if key == waiting["key"] and len(arrivals[key]) >= 2:
                waiting["event"].set()

        node.create_subscription(JointState, "/joint_command", on_command, 10, raw=True,  # as the bridge
                                 event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
        assert wait_until(lambda: node.count_subscribers("/joint_states") >= (2 if layout == "processes" else 1)
                          and node.count_publishers("/joint_command") >= 2
                          and node.count_subscribers("/egovla/action_chunk") >= 1, 60.0)
        time.sleep(1.0)
        frame = np.zeros((360, 640, 3), np.uint8)
        chunk = np.repeat(step[None], 30, 0)

        names, values = list(positions), np.array(list(positions.values()))

        def tick(t: float) -> float:
            image = Image(height=360, width=640, encoding="rgb8", step=640 * 3, data=frame.tobytes())
            image.header.stamp = s_to_stamp(t)
            info = CameraInfo(height=360, width=640)
            info.header.stamp = s_to_stamp(t)
            t0 = time.perf_counter()
            image_pub.publish(image)
            info_pub.publish(info)
            stamp = s_to_stamp(t)
            state_pub.publish(encode_joint_state(names, values, stamp.sec, stamp.nanosec))  # as the bridge does
            chunk_pub.publish(encode_chunk(chunk, stamp.sec, stamp.nanosec))  # serialized, as the policy node does
            return t0

        # lockstep-like: one tick at a time, latency of each
        latencies = []
        for k in range(ticks):
            t = 100.0 + k * DT
            key = round(t * 1e9)
            waiting["event"].clear()
            waiting["key"] = key
            t0 = tick(t)
            # woken by the probe's callback (polling from this thread would compete with it for the GIL)
            if waiting["event"].wait(2.0) or len(arrivals.get(key, [])) >= 2:
                latencies.append((max(arrivals[key][:2]) - t0) * 1e3)
        lat = np.array(latencies[10:])
        out.update(control_latency_median_ms=round(float(np.median(lat)), 2),
                   control_latency_p99_ms=round(float(np.percentile(lat, 99)), 2),
                   control_latency_answered_ticks=f"{len(latencies)}/{ticks}")
        # free running at 30 Hz: jitter of the command stream, CPU per node
        ps = {name: psutil.Process(p.proc.pid) for name, p in procs.items()}
        for p in ps.values():
            p.cpu_percent(None)
        start, keys = time.perf_counter(), []
        for k in range(ticks):
            t = 200.0 + k * DT
            while time.perf_counter() < start + k * DT:
                time.sleep(0.0005)
            tick(t)
            keys.append(round(t * 1e9))
        time.sleep(0.3)
        for name, p in ps.items():
            out[f"cpu_percent_{name}"] = round(p.cpu_percent(None), 1)
        first = np.array([min(arrivals[k]) for k in keys if k in arrivals])
        intervals = np.diff(first) * 1e3
        out["control_period_median_ms"] = round(float(np.median(intervals)), 2)
        out["control_jitter_p1_p99_ms"] = round(float(np.percentile(intervals, 99) - np.percentile(intervals, 1)), 2)
        # watchdog: frames go on, chunks stop
        last_action = time.perf_counter()
        n = sum(len(v) for v in arrivals.values())
        t = 300.0
        hold_at = None
        while time.perf_counter() - last_action < 2.0 and hold_at is None:
            stamp = s_to_stamp(t)
            state_pub.publish(encode_joint_state(names, values, stamp.sec, stamp.nanosec))
            image = Image(height=360, width=640, encoding="rgb8", step=640 * 3, data=frame.tobytes())
            image.header.stamp = s_to_stamp(t)
            image_pub.publish(image)
            info = CameraInfo(height=360, width=640)
            info.header.stamp = s_to_stamp(t)
            info_pub.publish(info)
            if wait_until(lambda: sum(len(v) for v in arrivals.values()) > n, DT, period_s=0.0005):
                hold_at = min(a for v in arrivals.values() for a in v if a > last_action)
            t += DT
        out["watchdog_hold_ms"] = None if hold_at is None else round((hold_at - last_action) * 1e3, 1)
    finally:
        for p in procs.values():
            p.stop()
        probe.close()
        release_domain_id(domain)
    return out


def bridge_rate(log_dir: Path, sizes=((128, 72), (640, 360)), seconds: float = 3.0) -> dict:
    from sensor_msgs.msg import JointState

    from egovla.sim_bridge_core import default_required_joints
    from egovla_description import load_robot

    required = default_required_joints(load_robot())
    out = {}
    for w, h in sizes:
        domain = allocate_domain_id()
        probe = RosProbe(domain, "bench_bridge_probe")
        node = NodeProcess.module("egovla.nodes.sim_bridge", domain, log_dir, args=[
            "--ros-args", "-p", "task:=close_drawer", "-p", f"image_width:={w}", "-p", f"image_height:={h}",
            "-p", "warmup_steps:=0", "-p", "lockstep_timeout_s:=5.0"])
        try:
            pub = probe.node.create_publisher(JointState, "/joint_command", 10)
            stamps = []

            def respond(js):
                stamps.append(time.perf_counter())
                pos = dict(zip(js.name, js.position))
                cmd = JointState(name=required, position=[pos[j] for j in required])
                cmd.header.stamp.sec, cmd.header.stamp.nanosec = js.header.stamp.sec, js.header.stamp.nanosec
                pub.publish(cmd)

            probe.node.create_subscription(JointState, "/joint_states", respond, 10)
            assert wait_until(lambda: len(stamps) > 5, 60.0), node.log()
            n0, t0 = len(stamps), time.perf_counter()
            time.sleep(seconds)
            out[f"sim_bridge_lockstep_ticks_per_s_{w}x{h}"] = round((len(stamps) - n0) / (time.perf_counter() - t0),
                                                                    1)
        finally:
            node.stop()
            probe.close()
            release_domain_id(domain)
    return out


def suppressed_log_cost(calls: int = 2000) -> dict:
    """Cost of one log line that the throttle suppresses (the safety layer reports a velocity cap on every capped
    tick, once per second printed): rclpy's ``throttle_duration_sec`` against the nodes' ``ThrottledLog``."""
    import rclpy
    from rclpy.node import Node

    from egovla.nodes.common import ThrottledLog

    context = rclpy.Context()
    domain = allocate_domain_id()
    rclpy.init(context=context, domain_id=domain)
    node = Node("log_cost", context=context)
    try:
        out = {}
        for name, logger in (("rclpy", node.get_logger()), ("node", ThrottledLog(node.get_logger()))):
            logger.warning("velocity limited (bench_ros: one line, then suppressed)", throttle_duration_sec=600.0)
            t0 = time.perf_counter()
            for _ in range(calls):
                logger.warning("velocity limited (bench_ros: one line, then suppressed)", throttle_duration_sec=600.0)
            out[f"suppressed_log_line_us_{name}"] = round((time.perf_counter() - t0) / calls * 1e6, 2)
        return out
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        release_domain_id(domain)


def spin_iteration_cost(iterations: int = 3000) -> dict:
    """One callback of the control container (its three nodes built in this process) woken by a guard condition,
    through the executor: the fixed cost every message and timer of the container pays. The shipped executor
    (``egovla.executor.LeanExecutor``), and rclpy's ``SingleThreadedExecutor`` with the nodes' QoS event handlers
    off (as shipped) and on (rclpy's defaults, 2 per publisher and subscription)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from egovla.executor import LeanExecutor
    from egovla.nodes.common import EgoNode
    from egovla.nodes.control import build_nodes

    out = {}
    domain = allocate_domain_id()
    try:
        for label, handlers, executor_type in (("", False, LeanExecutor),
                                               ("_rclpy_executor", False, SingleThreadedExecutor),
                                               ("_rclpy_executor_with_event_handlers", True, SingleThreadedExecutor)):
            EgoNode.rclpy_event_handlers = handlers
            rclpy.init(domain_id=domain)
            nodes = build_nodes()
            executor = executor_type()
            for node in nodes:
                executor.add_node(node)
            count = [0]

            def wake():
                count[0] += 1
                guard.trigger()

            guard = nodes[0].create_guard_condition(wake)
            guard.trigger()
            while count[0] < 100:  # warm-up
                executor.spin_once(timeout_sec=0.1)
            start, t0 = count[0], time.perf_counter()
            while count[0] < start + iterations:
                executor.spin_once()
            out[f"container_spin_iteration_us{label}"] = round((time.perf_counter() - t0) / iterations * 1e6, 1)
            if label != "_rclpy_executor":
                out[f"container_wait_set{label}"] = {kind: sum(len(list(getattr(n, kind))) for n in nodes)
                                                     for kind in ("subscriptions", "timers", "services", "waitables")}
            executor.shutdown()
            for node in nodes:
                node.destroy_node()
            rclpy.shutdown()
    finally:
        EgoNode.rclpy_event_handlers = False
        release_domain_id(domain)
    return out


def run() -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        processes = {f"processes_{k}": v for k, v in control_path(Path(tmp), layout="processes").items()
                     if k.startswith(("control_latency", "cpu_percent"))}
        return {**control_path(Path(tmp)), **processes, **bridge_rate(Path(tmp)), **suppressed_log_cost(),
                **spin_iteration_cost()}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
