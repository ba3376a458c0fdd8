"""Policy node: one action chunk per observation tick.

    sub  /joint_states          sensor_msgs/JointState            the trigger: a tick is complete when it arrives
    sub  /ego_camera/image_raw  sensor_msgs/Image (rgb8)          the tick's frame (same stamp), egovla with
                                                                  ``frames:=image``
    sub  /egovla/frame_history  sensor_msgs/Image (rgb8)          the camera node's stacked history of the tick
                                                                  (same stamp), egovla with ``frames:=history``
    sub  /sim/state             std_msgs/Float64MultiArray        sim-only MuJoCo state (scripted only)
    sub  /egovla/instruction    std_msgs/String (transient local) the task instruction
    sub  /egovla/task_status    diagnostic_msgs/DiagnosticStatus  a new ``episode`` value resets the policy
    pub  /egovla/action_chunk   trajectory_msgs/JointTrajectory   30 points x 48 action names, stamped with the tick
    pub  /diagnostics           diagnostic_msgs/DiagnosticArray   ``policy: inference`` every second (wall clock)

A ``/joint_states`` with the stamp of the last answered tick (the bridge re-announces a tick whose commands are
late) gets the same chunk again without running the plugin. Each ``/joint_states`` takes the inputs its plugin
needs with exactly the same stamp (the image; for ``scripted``
the ``/sim/state`` vector and the task status). If one has not arrived yet the tick waits for it up to ``wait_s``
of wall time (it is answered the moment the input arrives) and is then skipped with a throttled warning; an input
of another stamp is never used. Proprio comes from the joint state (``egovla.policy_plugins``).

``policy``: ``egovla`` (``checkpoint`` folder, ``frames``: ``history`` = the camera node keeps the frame history,
``image`` = this node keeps it from the raw images with ``history_spacing`` ticks; ``hand_dims``, ``device``) or
``scripted`` (the twin's expert for the bridge's task, from a replica env loaded with ``/sim/state`` each tick;
constant chunks: run the smoother with ``k_wrist:=5.0 k_hand:=5.0`` so the newest chunk dominates).
"""

from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from egovla_training.frames import unstack_frames

from ..cdr import encode_chunk
from ..msgs import MessageError, diagnostic_array, joint_state_positions, stamp_to_ns
from ..policy_plugins import image_to_rgb, sim_state_stamp_ns
from .common import RECORDED_DEPTH, EgoNode, NodeConfigError, declare, run, throttled

STREAM = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# The tick trigger and the images: only the newest waits. A policy slower than the tick then answers the newest tick
# when it is done; with a queue it answered every queued tick in turn, up to a queue's length (0.37 s) behind.
NEWEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
KEEP = 8  # inputs kept per kind (by stamp)


class PolicyNode(EgoNode):
    def __init__(self):
        super().__init__("policy")
        kind = declare(self, "policy", "egovla", "egovla (learned, needs checkpoint) or scripted (the twin's expert, "
                       "needs the sim bridge's /sim/state)", lambda v: v in ("egovla", "scripted"),
                       "must be egovla or scripted")
        checkpoint = declare(self, "checkpoint", "", "egovla: checkpoint folder written by save_egovla")
        spacing = declare(self, "history_spacing", 6, "egovla: ticks between history frames (6 = 0.2 s at 30 Hz)",
                          lambda v: v >= 1, "must be >= 1")
        hand_dims = declare(self, "hand_dims", 15, "egovla: hand PCA dimensions kept (the rest zeroed)",
                            lambda v: 1 <= v <= 15, "must be 1..15")
        device = declare(self, "device", "cpu", "egovla: torch device")
        threads = declare(self, "threads", 0, "egovla: torch CPU threads (0 = torch's default, one per core); 1 "
                          "suits a small model sharing the cores with the rest of the graph", lambda v: v >= 0,
                          "must be >= 0")
        frames = declare(self, "frames", "image", "egovla: image (keep the frame history here, from "
                         "/ego_camera/image_raw) or history (the camera node's /egovla/frame_history)",
                         lambda v: v in ("image", "history"), "must be image or history")
        hand_model = declare(self, "hand_model", "auto", "hand model: auto, mano or standin",
                             lambda v: v in ("auto", "mano", "standin"), "must be auto, mano or standin")
        self.wait_s = declare(self, "wait_s", 0.2, "wall seconds a joint state waits for its image / sim state",
                              lambda v: v > 0, "must be > 0")
        if kind == "egovla":
            if not checkpoint:
                raise NodeConfigError("parameter checkpoint: an egovla policy needs a checkpoint folder")
            from ..policy_plugins import EgoVLAPlugin
            if threads:
                import torch

                torch.set_num_threads(threads)
            try:
                self.plugin = EgoVLAPlugin(checkpoint, spacing, hand_dims, device, hand_model=hand_model,
                                           frames=frames)
            except Exception as e:  # noqa: BLE001 - any load failure is one line and exit 2
                raise NodeConfigError(f"checkpoint {checkpoint!r}: {type(e).__name__}: {e}") from None
        else:
            from ..policy_plugins import ScriptedPlugin
            self.plugin = ScriptedPlugin(hand_model=hand_model)
        instruction = declare(self, "instruction", "", "task instruction to start with (a message on "
                              "/egovla/instruction replaces it); empty = wait for the topic")
        if instruction:
            try:
                self.plugin.set_instruction(instruction)
            except ValueError as e:
                raise NodeConfigError(f"parameter instruction={instruction!r}: {e}") from None
        self.kind = kind
        self.inputs: dict[str, dict[int, object]] = {name: {} for name in ("image", "history", "sim_state",
                                                                            "status")}
        self.latest_status: dict | None = None
        self.episode: str | None = None
        self.pending: tuple[int, JointState, float] | None = None
        self.skipped = 0
        self.answered = 0
        self.last_chunk: tuple[int, bytes] | None = None  # (stamp, the serialized chunk)
        self.pub = self.create_publisher(JointTrajectory, "/egovla/action_chunk", RECORDED_DEPTH)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", STREAM)
        self.create_subscription(JointState, "/joint_states", self._on_joints, NEWEST)
        if "image" in self.plugin.needs:
            self.create_subscription(Image, "/ego_camera/image_raw", self._on_image, NEWEST)
        if "history" in self.plugin.needs:
            self.create_subscription(Image, "/egovla/frame_history", self._on_history, NEWEST)
        if "sim_state" in self.plugin.needs:
            self.create_subscription(Float64MultiArray, "/sim/state", self._on_sim_state, STREAM)
        self.create_subscription(String, "/egovla/instruction", self._on_instruction, LATCHED)
        self.create_subscription(DiagnosticStatus, "/egovla/task_status", self._on_status, STREAM)
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, self._publish_diagnostics, clock=wall)
        self.create_timer(0.02, self._expire_pending, clock=wall)
        self.get_logger().info(f"policy {kind} ready" + (f": {checkpoint}" if kind == "egovla" else ""))

    # --- inputs --------------------------------------------------------------------------------------------

    def _store(self, kind: str, stamp_ns: int, value):
        store = self.inputs[kind]
        store[stamp_ns] = value
        while len(store) > KEEP:
            store.pop(min(store))
        if self.pending is not None and self.pending[0] == stamp_ns:
            self._try_answer()

    def _on_image(self, msg: Image):
        try:
            rgb = image_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data)
        except ValueError as e:
            throttled(self).error(f"image ignored: {e}", throttle_duration_sec=2.0)
            return
        self._store("image", stamp_to_ns(msg.header.stamp), rgb)

    def _on_history(self, msg: Image):
        try:
            stacked = image_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data)
            frames = unstack_frames(stacked, self.plugin.num_frames)
        except ValueError as e:
            throttled(self).error(f"frame history ignored: {e}", throttle_duration_sec=2.0)
            return
        self._store("history", stamp_to_ns(msg.header.stamp), frames)

    def _on_sim_state(self, msg: Float64MultiArray):
        if not msg.data:
            return
        self._store("sim_state", sim_state_stamp_ns(msg.data), msg.data)

    def _on_status(self, msg: DiagnosticStatus):
        values = {kv.key: kv.value for kv in msg.values}
        values["task"] = msg.name
        self.latest_status = values
        try:
            self._store("status", int(values["stamp_ns"]), values)
        except (KeyError, ValueError):
            pass

    def _on_instruction(self, msg: String):
        try:
            self.plugin.set_instruction(msg.data)
        except ValueError as e:
            self.get_logger().error(f"instruction ignored: {e}")
            return
        self.get_logger().info(f"instruction: {msg.data!r}")

    # --- ticks ---------------------------------------------------------------------------------------------

    def _on_joints(self, msg: JointState):
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if self.last_chunk is not None and stamp_ns == self.last_chunk[0]:
            self.pub.publish(self.last_chunk[1])  # a re-announced tick: the same answer, the plugin runs once
            return
        if self.pending is not None:
            self._skip(self.pending[0], "a newer joint state arrived first")
        self.pending = (stamp_ns, msg, time.monotonic())
        self._try_answer()

    def _expire_pending(self):
        if self.pending is not None and time.monotonic() - self.pending[2] > self.wait_s:
            self._skip(self.pending[0], f"not within {self.wait_s} s")
            self.pending = None

    def _skip(self, stamp_ns: int, why: str):
        missing = [k for k in self.plugin.needs if stamp_ns not in self.inputs[k]]
        self.skipped += 1
        throttled(self).warning(f"tick {stamp_ns * 1e-9:.3f} s skipped: no {', '.join(missing) or 'input'} with "
                                f"its stamp ({why}; {self.skipped} skipped so far)", throttle_duration_sec=2.0)

    def _try_answer(self):
        stamp_ns, msg, _ = self.pending
        if any(stamp_ns not in self.inputs[k] for k in self.plugin.needs):
            return
        self.pending = None
        if not self.plugin.has_instruction:
            self.skipped += 1
            throttled(self).warning("no instruction on /egovla/instruction yet: tick skipped",
                                    throttle_duration_sec=2.0)
            return
        inputs = {k: self.inputs[k][stamp_ns] for k in self.plugin.needs}
        status = inputs.get("status", self.latest_status)
        try:
            positions = joint_state_positions(msg)
            if status is not None and status.get("episode") != self.episode:
                self.plugin.reset(status, inputs)
                self.episode = status.get("episode")
                self.get_logger().info(f"episode {self.episode}: policy reset")
            chunk = self.plugin.step(positions, inputs, stamp_ns)
        except (MessageError, ValueError, RuntimeError, KeyError) as e:
            self.skipped += 1
            throttled(self).error(f"tick {stamp_ns * 1e-9:.3f} s: no chunk: {type(e).__name__}: {e}",
                                  throttle_duration_sec=2.0)
            return
        # Serialized directly (0.035 ms; building the message object and serializing it took 0.2 ms).
        out = encode_chunk(chunk, msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.pub.publish(out)
        self.last_chunk = (stamp_ns, out)
        self.answered += 1
        t = self.plugin.timing
        throttled(self).info(f"{self.kind}: inference {t.last_s * 1e3:.1f} ms (mean {t.mean_s * 1e3:.1f}, max "
                             f"{t.max_s * 1e3:.1f} over {t.count} ticks)", throttle_duration_sec=5.0)

    def _publish_diagnostics(self):
        t = self.plugin.timing
        values = {"ticks": t.count, "skipped": self.skipped, "last_ms": f"{t.last_s * 1e3:.2f}",
                  "mean_ms": f"{t.mean_s * 1e3:.2f}", "max_ms": f"{t.max_s * 1e3:.2f}", "policy": self.kind}
        fit = getattr(self.plugin, "fit_timing", None)
        if fit is not None:
            values.update(hand_fits=fit.count, hand_fit_mean_ms=f"{fit.mean_s * 1e3:.1f}")
        level = DiagnosticStatus.OK if t.count or not self.skipped else DiagnosticStatus.WARN
        array = diagnostic_array(self.get_clock().now().to_msg(), "policy: inference", level,
                                 f"{t.mean_s * 1e3:.1f} ms per tick over {t.count} ticks, {self.skipped} skipped",
                                 self.kind, values)
        self.pub_diag.publish(array)


def main(args=None) -> int:
    return run(PolicyNode, "policy", args)


if __name__ == "__main__":
    sys.exit(main())
