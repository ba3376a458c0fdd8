"""Evaluator node: runs a task's protocol episodes through the ROS graph and writes the results.

For each episode of the protocol list (``egovla_sim.tasks.protocol_rollouts``): set the sim bridge's parameters
(task, placement, visual, seed, ``max_ticks`` = the task's horizon) through its parameter service, call
``/sim/reset``, follow ``/egovla/task_status`` until the first success or the horizon; one record per episode in
``<out>/records.jsonl`` as it goes, then ``results.json`` + ``results.md`` (the twin's SR/PSR table, also printed)
and exit 0. With ``video``: one mp4 per episode from ``/ego_camera/image_raw`` with the latest
``/egovla/action_chunk``'s predicted wrist trajectories drawn. No bridge (no ``/sim/reset`` within 30 s): one
error line, exit 1. Logic in ``egovla.evaluator_core``; parameters in ``docs/ros_nodes.md``.

Run: ``python -m egovla.nodes.evaluator --ros-args -p task:=close_drawer -p split:=seen -p episodes:=3 -p out:=DIR``
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import rclpy
from PIL import Image as PILImage
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParametersAtomically
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from egovla_description.geometry import PinholeCamera
from egovla_sim.tasks import get_task

from egovla.evaluator_core import (EPISODE_SEED, SPLITS, EpisodeTracker, FrameSelector, bridge_parameters,
                                   compose_frame, diagnostic_fault, episode_plan, fault_record, parse_status,
                                   video_name, video_size, write_results)
from egovla.msgs import MessageError, msg_to_chunk, stamp_to_ns

from .common import EgoNode, NodeConfigError, declare, run, throttled
from .sim_bridge import STREAM

# Every frame of an episode goes into its video: a deeper reader queue than the bridge's image QoS (depth 2), so a
# busy moment of the evaluator (drawing frames) does not drop images.
# The same for chunks: drawing frames holds the GIL, and a depth-10 queue lost chunks then.
IMAGES = QoSProfile(depth=60, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
CHUNKS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
CHUNK_PUBLISHER_WAIT_S = 5.0
BRIDGE_WAIT_S = 30.0
SERVICE_TIMEOUT_S = 60.0
FINAL_FRAME_WAIT_S = 2.0


def _value(v) -> ParameterValue:
    if isinstance(v, str):
        return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=v)
    if isinstance(v, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)
    if isinstance(v, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)
    return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(v))


class BridgeMissing(RuntimeError):
    pass


class Evaluator(EgoNode):
    def __init__(self):
        super().__init__("evaluator")
        task = declare(self, "task", "close_drawer", "benchmark task (snake name, title or gym id)")
        try:
            self.task = get_task(task).name
        except (KeyError, ValueError) as e:
            raise NodeConfigError(f"parameter task={task!r}: {e}") from None
        self.split = declare(self, "split", "seen", "protocol split: seen (27 rollouts) or unseen (66)",
                             lambda v: v in SPLITS, "must be seen or unseen")
        episodes = declare(self, "episodes", 0, "0 = all of the split's protocol episodes, N = the first N",
                           lambda v: isinstance(v, int) and v >= 0, "must be an integer >= 0")
        try:
            self.plan = episode_plan(self.task, self.split, episodes)
        except ValueError as e:
            raise NodeConfigError(f"parameter episodes={episodes}: {e}") from None
        self.out = Path(declare(self, "out", "outputs/sim_eval", "output folder (records, results, videos)",
                                lambda v: bool(str(v).strip()), "must name a folder"))
        self.policy_label = declare(self, "policy_label", "unknown", "policy name written into the records "
                                    "(e.g. scripted, or the checkpoint path)")
        self.video = declare(self, "video", False, "write one mp4 per episode with the predicted wrist "
                             "trajectories drawn", lambda v: isinstance(v, bool), "must be true or false")
        self.video_width = declare(self, "video_width", 320, "video frame width (0 = the camera image's)",
                                   lambda v: isinstance(v, int) and 0 <= v <= 4096, "must be 0..4096")
        self.bridge = declare(self, "sim_bridge", "sim_bridge", "node name of the sim bridge (its parameter "
                              "service)", lambda v: bool(v), "must be a node name")
        self.tick_timeout_s = float(declare(self, "tick_timeout_s", 10.0, "wall seconds without a new task status "
                                            "before the episode is recorded as a fault",
                                            lambda v: isinstance(v, (int, float)) and v > 0, "must be > 0"))
        self.bridge_wait_s = float(declare(self, "bridge_wait_s", BRIDGE_WAIT_S, "wall seconds to wait for the "
                                           "bridge's /sim/reset service at startup",
                                           lambda v: isinstance(v, (int, float)) and v > 0, "must be > 0"))
        self.wait_for_graph_s = float(declare(self, "wait_for_graph_s", 30.0, "wall seconds to wait, before the first "
                                              "episode, for a policy (/egovla/action_chunk) and a controller "
                                              "(/joint_command) to appear; 0: do not wait",
                                              lambda v: isinstance(v, (int, float)) and v >= 0, "must be >= 0"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.exit_code = 0
        self._lock = threading.Lock()
        self._statuses: deque = deque()
        self._faults: deque = deque()
        self._images: deque = deque(maxlen=1000)
        self._chunks: deque = deque(maxlen=1000)
        self._camera_info: CameraInfo | None = None
        self.create_subscription(DiagnosticStatus, "/egovla/task_status", self._on_status, STREAM)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, STREAM)
        if self.video:
            self.create_subscription(Image, "/ego_camera/image_raw", self._on_image, IMAGES)
            self.create_subscription(CameraInfo, "/ego_camera/camera_info", self._on_camera_info, STREAM)
            self.create_subscription(JointTrajectory, "/egovla/action_chunk", self._on_chunk, CHUNKS)
        self.reset_client = self.create_client(Trigger, "/sim/reset")
        self.param_client = self.create_client(SetParametersAtomically,
                                               f"/{self.bridge}/set_parameters_atomically")
        self.get_param_client = self.create_client(GetParameters, f"/{self.bridge}/get_parameters")
        self.get_logger().info(f"evaluator: {self.task}, {self.split} split, {len(self.plan)} episodes -> {self.out}"
                               f"{', with video' if self.video else ''}")
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()

    # --- callbacks (executor thread): store, the worker does the rest -------------------------------------

    def _on_status(self, msg: DiagnosticStatus):
        try:
            status = parse_status((kv.key, kv.value) for kv in msg.values)
        except ValueError as e:
            throttled(self).warning(f"unreadable task status ignored: {e}", throttle_duration_sec=5.0)
            return
        with self._lock:
            self._statuses.append((time.monotonic(), status))

    def _on_diagnostics(self, msg: DiagnosticArray):
        stamp_ns = stamp_to_ns(msg.header.stamp)
        for s in msg.status:
            fault = diagnostic_fault(s.name, s.level[0] if isinstance(s.level, bytes) else int(s.level), s.message,
                                     self.bridge)
            if fault:
                with self._lock:
                    self._faults.append((stamp_ns, fault))

    def _on_image(self, msg: Image):
        if msg.encoding != "rgb8":
            throttled(self).warning(f"image encoding {msg.encoding} not rgb8: not recorded",
                                    throttle_duration_sec=5.0)
            return
        image = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        with self._lock:
            self._images.append((stamp_to_ns(msg.header.stamp), image))

    def _on_camera_info(self, msg: CameraInfo):
        self._camera_info = msg

    def _on_chunk(self, msg: JointTrajectory):
        try:
            chunk = msg_to_chunk(msg)
        except MessageError as e:
            throttled(self).warning(f"action chunk not drawn: {e}", throttle_duration_sec=5.0)
            return
        with self._lock:
            self._chunks.append((stamp_to_ns(msg.header.stamp), chunk))

    # --- the run (worker thread) --------------------------------------------------------------------------

    def _call(self, client, request, what: str):
        future = client.call_async(request)
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        while not future.done():
            if time.monotonic() > deadline or not rclpy.ok(context=self.context):
                raise TimeoutError(f"{what} did not answer within {SERVICE_TIMEOUT_S:g} s")
            time.sleep(0.005)
        return future.result()

    def _run(self):
        try:
            self.exit_code = self._evaluate()
        except BridgeMissing as e:
            print(f"evaluator: error: {e}", file=sys.stderr, flush=True)
            self.exit_code = 1
        except Exception as e:  # noqa: BLE001 - the graph must learn that the evaluation broke
            self.get_logger().error(f"evaluation failed: {type(e).__name__}: {e}")
            self.exit_code = 1
        rclpy.try_shutdown(context=self.context)

    def _evaluate(self) -> int:
        log = self.get_logger()
        wait = self.bridge_wait_s
        if not self.reset_client.wait_for_service(timeout_sec=wait):
            raise BridgeMissing(f"no sim bridge: service /sim/reset not available within {wait:g} s "
                                f"(is the {self.bridge} node running on this ROS domain?)")
        if not self.param_client.wait_for_service(timeout_sec=wait):
            raise BridgeMissing(f"no parameter service /{self.bridge}/set_parameters_atomically within "
                                f"{wait:g} s (parameter sim_bridge names the bridge node)")
        warmup = self._bridge_parameter("warmup_steps")
        # The first episode's first tick needs the whole loop (policy -> controllers -> bridge) connected: nodes
        # started together discover each other within about a second, and a message sent before its subscriber
        # is matched is lost (the tick would be missed).
        deadline = time.monotonic() + max(self.wait_for_graph_s, CHUNK_PUBLISHER_WAIT_S if self.video else 0.0)
        connected = lambda: (self.count_publishers("/egovla/action_chunk") > 0  # noqa: E731
                             and self.count_publishers("/joint_command") > 0)
        while not connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.count_publishers("/egovla/action_chunk"):
            log.warning("no /egovla/action_chunk publisher (no policy?)" + (": videos without predicted "
                                                                            "trajectories" if self.video else ""))
        if connected():
            # discovered here -> matched everywhere, mostly: a node that matches after the first tick went out
            # gets it only when the bridge re-announces it (reannounce_s later); settling first saves that wait
            time.sleep(2.0)
        records = []
        with open(self.out / "records.jsonl", "w") as jsonl:
            for k, rollout in enumerate(self.plan):
                record = self._episode(rollout)
                records.append(record)
                jsonl.write(json.dumps(record) + "\n")
                jsonl.flush()
                log.info(f"episode {k + 1}/{len(self.plan)}: room {rollout.room} table {rollout.table} placement "
                         f"{rollout.placement_index}: {'success' if record['success'] else 'no success'} "
                         f"({record['end']}), progress {record['progress']:.2f}, {record['steps']} steps, "
                         f"{record['missed_ticks']} missed ticks, {record['wall_s']} s"
                         + (f", faults: {record['faults']}" if record["faults"] else ""))
        table = write_results(self.out, self.split, records, {"task": self.task, "policy": self.policy_label,
                                                              "warmup_steps": warmup})
        print(table, end="", flush=True)
        log.info(f"results: {self.out / 'results.md'}, {self.out / 'results.json'}, {self.out / 'records.jsonl'}")
        return 0

    def _bridge_parameter(self, name: str):
        try:
            if not self.get_param_client.wait_for_service(timeout_sec=5.0):
                return None
            reply = self._call(self.get_param_client, GetParameters.Request(names=[name]), "get_parameters")
            v = reply.values[0]
            return v.integer_value if v.type == ParameterType.PARAMETER_INTEGER else None
        except (TimeoutError, IndexError):
            return None

    def _episode(self, rollout) -> dict:
        log = self.get_logger()
        params = bridge_parameters(rollout)
        request = SetParametersAtomically.Request(parameters=[Parameter(name=n, value=_value(v))
                                                              for n, v in params.items()])
        try:
            result = self._call(self.param_client, request, f"/{self.bridge}/set_parameters_atomically").result
            if not result.successful:
                raise RuntimeError(f"bridge refused parameters {params}: {result.reason}")
            with self._lock:
                self._statuses.clear()
                self._faults.clear()
                self._images.clear()
                self._chunks.clear()
            reply = self._call(self.reset_client, Trigger.Request(), "/sim/reset")
            if not reply.success:
                raise RuntimeError(f"/sim/reset refused: {reply.message}")
            info = json.loads(reply.message)
        except (RuntimeError, TimeoutError, ValueError) as e:
            log.error(str(e))
            return fault_record(rollout, self.policy_label, str(e))
        tracker = EpisodeTracker(rollout, int(info["episode"]), int(info["stamp_ns"]), time.monotonic(),
                                 self.tick_timeout_s)
        video = _Video(self, rollout, tracker.start_stamp_ns) if self.video else None
        try:
            while True:
                with self._lock:
                    statuses, self._statuses = list(self._statuses), deque()
                    faults, self._faults = list(self._faults), deque()
                for when, status in statuses:
                    if tracker.on_status(status, when):
                        break
                for stamp_ns, fault in faults:
                    # reports stamped before the episode's first observation (its reset and warm-up, when no
                    # policy is asked) or after its last (once it ended) belong to no episode; unstamped ones (0)
                    # count
                    after = tracker.done and stamp_ns > tracker.end_stamp_ns
                    if stamp_ns == 0 or (stamp_ns >= tracker.start_stamp_ns and not after):
                        tracker.add_fault(fault)
                if video is not None:
                    video.pump(tracker.end_stamp_ns)
                if tracker.done or tracker.check_timeout(time.monotonic()):
                    break
                if not rclpy.ok(context=self.context):
                    raise RuntimeError("shut down during an episode")
                time.sleep(0.005)
            path = video.close(tracker.end_stamp_ns) if video is not None else None
        except BaseException:
            if video is not None:
                video.abort()
            raise
        record = tracker.record(self.policy_label, EPISODE_SEED, path)
        if video is not None:
            record["video_frames"] = video.frames
            if video.frames != record["steps"] + 1 and not record["failure"]:
                log.warning(f"video {path}: {video.frames} frames for {record['steps'] + 1} observations "
                            f"(images lost on the way)")
        return record


class _Video:
    """One episode's mp4: frames from the evaluator's image/chunk queues, written as they become final."""

    def __init__(self, node: Evaluator, rollout, start_stamp_ns: int):
        import imageio.v2 as imageio

        self.node = node
        self.selector = FrameSelector(start_stamp_ns)
        self.path = node.out / "videos" / video_name(rollout)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = imageio.get_writer(str(self.path), fps=30, codec="libx264", quality=6, macro_block_size=2)
        self.frames = 0
        self.size = None
        self.root_offset = _root_offsets()

    def _drain(self):
        node = self.node
        with node._lock:
            images, node._images = list(node._images), deque(maxlen=node._images.maxlen)
            chunks, node._chunks = list(node._chunks), deque(maxlen=node._chunks.maxlen)
        for stamp, chunk in chunks:
            self.selector.add_chunk(stamp, chunk)
        for stamp, image in images:
            if stamp < self.selector.start:
                continue
            # scaled to the video's size at once: a backlog of frames waiting to be drawn stays small
            h, w = image.shape[:2]
            if self.size is None:
                self.size = video_size(w, h, self.node.video_width)
            camera = self._camera(w, h)
            if (w, h) != self.size:
                image = np.asarray(PILImage.fromarray(image).resize(self.size, PILImage.BILINEAR))
            self.selector.add_image(stamp, (image, camera.resized(*self.size)))

    def _camera(self, w: int, h: int):
        """Intrinsics of a w x h image: ``/ego_camera/camera_info`` when it describes that size, else the
        description's head camera scaled to it."""
        info = self.node._camera_info
        if info is not None and (info.width, info.height) == (w, h):
            return PinholeCamera(width=w, height=h, fx=info.k[0], fy=info.k[4], cx=info.k[2], cy=info.k[5])
        return _head_camera().resized(w, h)

    def _write(self, frames):
        for _, (image, camera), chunk in frames:
            self.writer.append_data(compose_frame(image, chunk, camera, self.size, self.root_offset))
            self.frames += 1

    def pump(self, safe_ns: int):
        self._drain()
        self._write(self.selector.take(safe_ns))

    def close(self, end_ns: int) -> str:
        deadline = time.monotonic() + FINAL_FRAME_WAIT_S
        while self.selector.latest_image_ns < end_ns and time.monotonic() < deadline:
            time.sleep(0.01)
            self._drain()
        self._drain()
        self._write(self.selector.finish(end_ns))
        self.writer.close()
        return str(self.path)

    def abort(self):
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass


_ROOT_OFFSETS: list = []
_HEAD_CAMERA: list = []


def _head_camera():
    if not _HEAD_CAMERA:
        from egovla_description import load_robot

        _HEAD_CAMERA.append(load_robot().head_camera.intrinsics)
    return _HEAD_CAMERA[0]


def _root_offsets():
    """The hand model's root offsets (wrist = transl + offset) for drawing; None (transl) if it cannot load."""
    if not _ROOT_OFFSETS:
        try:
            from egovla_training.hands import load_hand_model

            _ROOT_OFFSETS.append({s: load_hand_model(s).root_offset.detach().double().cpu().numpy()
                                  for s in ("left", "right")})
        except Exception:  # noqa: BLE001 - drawing falls back to the MANO translation
            _ROOT_OFFSETS.append(None)
    return _ROOT_OFFSETS[0]


def main(args=None) -> int:
    holder = []

    def factory():
        holder.append(Evaluator())
        return holder[-1]

    code = run(factory, "evaluator", args)
    return code or (holder[0].exit_code if holder else 1)


if __name__ == "__main__":
    sys.exit(main())
