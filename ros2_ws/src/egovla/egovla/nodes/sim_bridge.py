"""MuJoCo twin behind the Isaac-bridge topics: ``/joint_states``, ``/ego_camera/*``, ``/clock`` out,
``/joint_command`` in.

Run: ``python -m egovla.nodes.sim_bridge --ros-args -p task:=close_drawer -p image_width:=640 -p image_height:=360``.
Lockstep (default): after publishing the observation of a tick the simulator steps only once commands stamped
with that observation's stamp cover ``required_joints`` (several publishers may each send a subset), or when
``lockstep_timeout_s`` of wall time passes (a missed tick, counted). While a tick waits, its observation (image,
camera info, task status, sim state, joint states, and the clock; same stamp, same content) is published again
every ``reannounce_s``: a node that started listening just after the tick went out gets it, instead of the tick
being missed. Consumers treat a message with an already seen stamp as the same tick. Free-running: a 30 Hz wall timer steps with
the latest targets. Logic lives in ``egovla.sim_bridge_core``; topics, QoS and parameters in ``docs/ros_nodes.md``.
"""

from __future__ import annotations

import json
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String
from std_srvs.srv import Trigger

from egovla_description import HEAD_CAMERA_OPTICAL_FRAME, load_robot
from egovla_sim.env import BenchmarkEnv, EnvOptions
from egovla_sim.evaluation import WARMUP_STEPS
from egovla_sim.tasks import get_task

from egovla.cdr import decode_joint_state, encode_joint_state
from egovla.msgs import MessageError, ns_to_stamp
from egovla.nodes.common import RECORDED_DEPTH, EgoNode, run, throttled
from egovla.policy_plugins import pack_sim_state, sim_state_sizes
from egovla.sim_bridge_core import (CONTROL_HZ, MODES, CommandGate, SimClock, camera_matrices, check_image_size,
                                    default_required_joints, mimic_table, status_values)

# Observations and commands: reliable (a lost message would be a missed tick), volatile, deep enough for a lagging
# recorder (``common.RECORDED_DEPTH`` small messages; 30 images: 1 s at 30 Hz, 20 MB at 640x360, held only while a
# reader lags). A best-effort (sensor-data) subscriber still matches these publishers.
STREAM = QoSProfile(depth=RECORDED_DEPTH, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                    history=HistoryPolicy.KEEP_LAST)
IMAGE = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


class BridgeConfigError(ValueError):
    """A parameter value the bridge cannot run with."""


class SimBridge(EgoNode):
    PARAMS = {
        "task": ("close_drawer", "benchmark task (snake name, title or gym id); checked at startup and at /sim/reset"),
        "seed": (0, "episode seed (placement draw when placement_index is -1)"),
        "visual_room": (1, "room visual 1..5"),
        "visual_table": (1, "table visual 1..5"),
        "placement_index": (-1, "grid placement 0..9999 of the benchmark, -1 = drawn from seed"),
        "warmup_steps": (WARMUP_STEPS, "hold steps after a reset before the first published observation"),
        "max_ticks": (0, "stop stepping after this many ticks of an episode (0 = unlimited)"),
        "mode": ("lockstep", "lockstep (step when commands for the published tick arrive) or free_running (30 Hz "
                             "wall timer)"),
        "lockstep_timeout_s": (0.5, "wall time to wait for a tick's commands before stepping anyway (missed tick)"),
        "reannounce_s": (1.0, "lockstep: publish a waiting tick's observation again after this much wall time, "
                              "and every as long again (0 = never)"),
        "required_joints": ([""], "joints a lockstep tick must receive commands for; empty = arms + independent "
                                  "hand joints"),
        "image_width": (640, "rendered image width (16:9 with image_height)"),
        "image_height": (360, "rendered image height"),
    }
    # Applied at the next /sim/reset; the others at once.
    EPISODE_PARAMS = ("task", "seed", "visual_room", "visual_table", "placement_index", "warmup_steps", "max_ticks",
                      "image_width", "image_height")

    def __init__(self):
        super().__init__("sim_bridge")
        for name, (default, description) in self.PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        self.robot = load_robot()
        self.p = {name: self.get_parameter(name).value for name in self.PARAMS}
        self._check(self.p)
        self.env: BenchmarkEnv | None = None
        self.gate: CommandGate | None = None
        self.sim_clock = SimClock()
        self.episode = -1
        self.missed_total = 0
        self.stamp_ns = 0
        self._deadline = 0.0
        self._last_status = None
        self._observation: list = []  # (publisher, message or its bytes) of the current tick, for re-announcing
        self._published_at = 0.0
        self.reannounced = 0
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self.pub_joints = self.create_publisher(JointState, "/joint_states", STREAM)
        self.pub_image = self.create_publisher(Image, "/ego_camera/image_raw", IMAGE)
        self.pub_info = self.create_publisher(CameraInfo, "/ego_camera/camera_info", STREAM)
        self.pub_clock = self.create_publisher(ClockMsg, "/clock", STREAM)
        self.pub_status = self.create_publisher(DiagnosticStatus, "/egovla/task_status", STREAM)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", STREAM)
        self.pub_instruction = self.create_publisher(String, "/egovla/instruction", LATCHED)
        # Sim only: the full MuJoCo state of each tick (for the scripted policy's replica; egovla.policy_plugins).
        self.pub_sim_state = self.create_publisher(Float64MultiArray, "/sim/state", STREAM)
        self.episode_seed = 0
        self.timeout_timer = self.create_timer(self.p["lockstep_timeout_s"], self._on_timeout, clock=self._wall)
        self.free_timer = self.create_timer(1.0 / CONTROL_HZ, self._on_free_tick, clock=self._wall)
        self.create_timer(0.1, self._on_reannounce, clock=self._wall)
        ok, message = self.reset_episode()
        if not ok:
            raise BridgeConfigError(message)
        # serialized, read with egovla.cdr: a command costs rclpy about 40 us to deserialize, the decoder 10-20
        self.create_subscription(JointState, "/joint_command", self._on_command, STREAM, raw=True)
        self.create_service(Trigger, "/sim/reset", self._on_reset)
        self._apply_mode()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(f"sim bridge ready: {self.p['mode']}, {len(self.env.robot_joint_names)} joints, "
                               f"{self.p['image_width']}x{self.p['image_height']} images")

    # --- parameters ----------------------------------------------------------------------------------------

    def _check(self, p: dict, task_too: bool = True):
        """Raise BridgeConfigError naming the offending value."""
        try:
            if task_too:
                get_task(p["task"])
            if p["mode"] not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, got {p['mode']!r}")
            for key in ("visual_room", "visual_table"):
                if not 1 <= int(p[key]) <= 5:
                    raise ValueError(f"{key} must be 1..5, got {p[key]}")
            if not -1 <= int(p["placement_index"]) <= 9999:
                raise ValueError(f"placement_index must be -1..9999, got {p['placement_index']}")
            for key in ("warmup_steps", "max_ticks", "seed"):
                if int(p[key]) < 0:
                    raise ValueError(f"{key} must be >= 0, got {p[key]}")
            if not 0.0 < float(p["lockstep_timeout_s"]) <= 600.0:
                raise ValueError(f"lockstep_timeout_s must be in (0, 600], got {p['lockstep_timeout_s']}")
            if not 0.0 <= float(p["reannounce_s"]) <= 600.0:
                raise ValueError(f"reannounce_s must be in [0, 600], got {p['reannounce_s']}")
            check_image_size(int(p["image_width"]), int(p["image_height"]))
            required = self._required(p)
            movable = set(self.robot.movable_joint_names)
            unknown = [n for n in required if n not in movable]
            if unknown:
                raise ValueError(f"required_joints names joints the robot does not have: {unknown}")
        except (TypeError, ValueError) as e:
            raise BridgeConfigError(str(e)) from None

    def _required(self, p: dict) -> list[str]:
        names = [n for n in (p["required_joints"] or []) if n]
        return names or default_required_joints(self.robot)

    def _on_set_parameters(self, params) -> SetParametersResult:
        new = dict(self.p)
        new.update({q.name: q.value for q in params if q.name in self.PARAMS})
        try:
            # An unknown task is accepted here and refused by /sim/reset, where the evaluator reads the outcome.
            self._check(new, task_too=False)
        except BridgeConfigError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.p = new
        self.gate.set_mode(new["mode"])
        self.gate.set_required(self._required(new))
        self._apply_mode()
        return SetParametersResult(successful=True)

    def _apply_mode(self):
        self.timeout_timer.cancel()
        self.free_timer.cancel()
        if self.p["mode"] == "free_running":
            self.free_timer.reset()
        else:
            period_ns = int(float(self.p["lockstep_timeout_s"]) * 1e9)
            if self.timeout_timer.timer_period_ns != period_ns:
                self.timeout_timer.timer_period_ns = period_ns
            self._arm_timeout()

    def _arm_timeout(self):
        self._deadline = time.monotonic() + float(self.p["lockstep_timeout_s"])
        if self.p["mode"] == "lockstep":
            self.timeout_timer.reset()

    # --- episodes ------------------------------------------------------------------------------------------

    def reset_episode(self) -> tuple[bool, str]:
        p = dict(self.p)
        try:
            self._check(p)
            task = get_task(p["task"])
        except BridgeConfigError as e:
            return False, str(e)
        size = (int(p["image_width"]), int(p["image_height"]))
        if self.env is None or self.env.task.name != task.name or \
                (self.env.options.render_width, self.env.options.render_height) != size:
            if self.env is not None:
                self.env.close()
            self.env = BenchmarkEnv(task, robot=self.robot, options=EnvOptions(render_width=size[0],
                                                                               render_height=size[1]))
            lo, hi = self.env.model.actuator_ctrlrange[:, 0], self.env.model.actuator_ctrlrange[:, 1]
            self.gate = CommandGate(self.env.action_names, lo, hi, self._required(p),
                                    mimic_table(self.robot, self.env.action_names), mode=p["mode"])
            self._camera_info = self._make_camera_info(*size)
        else:
            self.gate.counters.__init__()
        env = self.env
        placement = None if int(p["placement_index"]) < 0 else int(p["placement_index"])
        self.sim_clock.reset_gap()
        obs, info = env.reset(seed=int(p["seed"]), visual=(int(p["visual_room"]), int(p["visual_table"])),
                              placement_index=placement)
        hold = env.current_targets()
        for _ in range(int(p["warmup_steps"])):
            obs, _, _, _, info = env.step(hold)
            self.sim_clock.advance()
            if info["failure"]:
                break
        env.steps = 0  # ticks count policy steps, as in the protocol
        self.episode_seed = int(p["seed"])
        self.episode += 1
        self.episode_tick = 0
        self.max_ticks = int(p["max_ticks"])
        self.gate.hold(hold)
        self.gate.stopped = bool(info["failure"])
        self.pub_instruction.publish(String(data=task.instruction))
        self._publish(obs, info)
        result = {"task": task.name, "episode": self.episode, "placement": env.placement.index,
                  "instruction": task.instruction, "seed": int(p["seed"]), "visual": list(env.visual),
                  "stamp_ns": self.stamp_ns, "failure": info["failure"]}
        self.get_logger().info(f"episode {self.episode}: {json.dumps(result)}")
        return not info["failure"], json.dumps(result)

    def _on_reset(self, request, response):
        try:
            response.success, response.message = self.reset_episode()
        except Exception as e:  # noqa: BLE001 - a reset must answer, whatever went wrong
            response.success, response.message = False, f"reset failed: {type(e).__name__}: {e}"
        if not response.success:
            self.get_logger().error(f"/sim/reset refused: {response.message}")
        return response

    # --- stepping ------------------------------------------------------------------------------------------

    def _step(self):
        env, gate = self.env, self.gate
        if gate.stopped:
            return
        obs, _, _, _, info = env.step(gate.targets)
        self.sim_clock.advance()
        self.episode_tick += 1
        if info["failure"]:
            gate.stopped = True
            self.get_logger().error(f"episode {self.episode} ended by the simulation: {info['failure']}")
        if self.max_ticks and self.episode_tick >= self.max_ticks:
            gate.stopped = True
        self._publish(obs, info)

    def _on_command(self, data: bytes):
        gate = self.gate
        log = throttled(self)
        try:
            command = decode_joint_state(data)
        except MessageError as e:
            gate.counters.malformed_commands += 1
            log.warning(f"/joint_command ignored: {e}", throttle_duration_sec=2.0)
            return
        out = gate.offer(command.stamp_ns, command.names, command.position.tolist())
        if out.malformed:
            log.warning(f"/joint_command ignored: {out.malformed}", throttle_duration_sec=2.0)
        if out.status in ("stale", "future", "unstamped"):
            log.warning(f"/joint_command with a {out.status} stamp ignored ({gate.counters.as_dict()})",
                        throttle_duration_sec=2.0)
        for name in out.new_unknown:
            log.warning(f"/joint_command names unknown joint {name!r}: entry ignored (reported once)")
        if out.non_finite:
            log.warning(f"/joint_command non-finite targets dropped for {out.non_finite}", throttle_duration_sec=2.0)
        if out.clamped:
            log.warning("/joint_command targets clamped to joint limits: " +
                        ", ".join(f"{n} {a:.4g}->{u:.4g}" for n, (a, u) in out.clamped.items()),
                        throttle_duration_sec=2.0)
        if gate.mode == "lockstep" and out.status == "accepted" and gate.complete:
            self._step()

    def _on_timeout(self):
        gate = self.gate
        if gate.mode != "lockstep" or gate.stopped or time.monotonic() < self._deadline - 0.002:
            return
        gate.miss()
        self.missed_total += 1
        throttled(self).warning(f"tick {self.episode_tick} missed: no command within "
                                f"{self.p['lockstep_timeout_s']} s for {len(gate.missing)} joints "
                                f"({', '.join(gate.missing[:4])}{', ...' if len(gate.missing) > 4 else ''})",
                                throttle_duration_sec=2.0)
        self._step()
        self._publish_diagnostics()

    def _on_reannounce(self):
        period = float(self.p["reannounce_s"])
        gate = self.gate
        if (not period or gate.mode != "lockstep" or gate.stopped or gate.complete or not self._observation
                or time.monotonic() - self._published_at < period):
            return
        for publisher, msg in self._observation:
            publisher.publish(msg)
        self._published_at = time.monotonic()
        self.reannounced += 1
        throttled(self).info(f"tick {self.episode_tick} re-announced: commands still missing for "
                             f"{len(gate.missing)} joints", throttle_duration_sec=5.0)

    def _on_free_tick(self):
        if self.gate.mode == "free_running":
            self._step()

    # --- publishing ----------------------------------------------------------------------------------------

    def _make_camera_info(self, width: int, height: int) -> CameraInfo:
        k = self.robot.head_camera.intrinsics.resized(width, height)
        fx, fy, cx, cy = self.env.camera_intrinsics()
        if abs(fx - k.fx) > 1e-3 * k.fx or abs(cx - k.cx) > 1e-6 or abs(cy - k.cy) > 1e-6:
            self.get_logger().warning(f"rendered camera (fx {fx:.3f}) differs from the description's (fx {k.fx:.3f})")
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5)
        info.header.frame_id = HEAD_CAMERA_OPTICAL_FRAME
        info.k, info.r, info.p = camera_matrices(k.fx, k.fy, k.cx, k.cy)
        return info

    def _publish(self, obs: dict, info: dict):
        """One tick's observation, all with the same stamp; ``/joint_states`` goes last (the tick is complete)."""
        env = self.env
        self.stamp_ns = self.sim_clock.stamp_ns
        stamp = ns_to_stamp(self.stamp_ns)
        clock = ClockMsg(clock=stamp)
        self.pub_clock.publish(clock)
        observation = [(self.pub_clock, clock)]  # a late node's sim clock must read this tick too
        if obs:
            rgb = env.render()
            image = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", is_bigendian=0,
                          step=rgb.shape[1] * 3)
            image.header.stamp, image.header.frame_id = stamp, HEAD_CAMERA_OPTICAL_FRAME
            image.data = rgb.tobytes()
            self.pub_image.publish(image)
            self._camera_info.header.stamp = stamp
            self.pub_info.publish(self._camera_info)
            observation += [(self.pub_image, image), (self.pub_info, self._camera_info)]
        message, values = status_values(
            task=env.task.name, episode=self.episode, tick=self.episode_tick, global_tick=self.sim_clock.global_tick,
            stamp_ns=self.stamp_ns, success=bool(info["success"]), progress=info["progress"],
            subtasks=info["subtasks"], counters=self.gate.counters.as_dict(), placement_index=info["placement_index"],
            failure=info["failure"], stopped=self.gate.stopped, mode=self.gate.mode)
        level = DiagnosticStatus.ERROR if info["failure"] else DiagnosticStatus.OK
        self._last_status = DiagnosticStatus(level=level, name=env.task.name, message=message, hardware_id="mujoco",
                                             values=[KeyValue(key=k, value=v) for k, v in values])
        self.pub_status.publish(self._last_status)
        observation.append((self.pub_status, self._last_status))
        if obs and self.pub_sim_state.get_subscription_count():
            state = Float64MultiArray(data=pack_sim_state(env.model, env.data, self.stamp_ns,
                                                             self.episode_seed).tolist())
            state.layout.dim = [MultiArrayDimension(label=k, size=n, stride=n) for k, n in sim_state_sizes(env.model)]
            self.pub_sim_state.publish(state)
            observation.append((self.pub_sim_state, state))
        if obs:
            # serialized here (egovla.cdr): building and converting the 50-joint message costs rclpy 25-40 us
            js = encode_joint_state(env.robot_joint_names, obs["qpos"], stamp.sec, stamp.nanosec,
                                    velocity=obs["qvel"])
            self.pub_joints.publish(js)
            observation.append((self.pub_joints, js))  # last, as the first time: the tick is complete
        if self.episode_tick % CONTROL_HZ == 0:
            self._publish_diagnostics()
        self.gate.start_tick(self.stamp_ns)
        self._observation, self._published_at = observation, time.monotonic()
        self._arm_timeout()

    def _publish_diagnostics(self):
        c = self.gate.counters.as_dict()
        level = DiagnosticStatus.WARN if c["missed_ticks"] else DiagnosticStatus.OK
        status = DiagnosticStatus(level=level, name="sim_bridge: lockstep", hardware_id="mujoco",
                                  message=f"{c['missed_ticks']} missed ticks this episode" if c["missed_ticks"]
                                  else f"{self.gate.mode}, no missed ticks",
                                  values=[KeyValue(key=k, value=str(v)) for k, v in c.items()] +
                                  [KeyValue(key="missed_ticks_total", value=str(self.missed_total)),
                                   KeyValue(key="reannounced_total", value=str(self.reannounced)),
                                   KeyValue(key="episode", value=str(self.episode)),
                                   KeyValue(key="tick", value=str(self.episode_tick))])
        array = DiagnosticArray(status=[status])
        array.header.stamp = ns_to_stamp(self.stamp_ns)
        self.pub_diag.publish(array)


def main(args=None) -> int:
    return run(SimBridge, "sim_bridge", args)


if __name__ == "__main__":
    sys.exit(main())
