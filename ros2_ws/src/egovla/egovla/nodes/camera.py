"""Camera node: the head camera's frames in, the policy's frame history out, one message per frame.

    sub  /ego_camera/image_raw   sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8)  simulator or real camera
    sub  /egovla/task_status     diagnostic_msgs/DiagnosticStatus  a new ``episode`` value starts a new history
    pub  /egovla/frame_history   sensor_msgs/Image rgb8  the ``num_frames`` frames the prompt shows, oldest at the
                                                         top, stacked vertically (height = num_frames x frame
                                                         height); stamp and frame id of the newest frame
    pub  /diagnostics            diagnostic_msgs/DiagnosticArray   ``camera: stream`` every second (wall clock)

The history (``egovla_training.frames.FrameHistory``) holds the current frame and the ones ``history_spacing``
frames apart before it; at an episode's start the earliest frame stands in for missing ones. A frame re-sent with
the stamp of the newest one replaces it; an older one is dropped. With ``frame_size`` > 0 frames are squashed to
``frame_size`` x ``frame_size`` with the model's own interpolation (bilinear, antialiased) before they are kept, so
the history message carries the model's input size rather than the camera's.

Episodes: with ``wait_for_status`` (simulation) each frame waits up to ``status_wait_s`` of wall time for the task
status of its stamp, whose ``episode`` decides whether the history restarts; without it (a real camera) a stamp
older than the newest frame's, or a gap longer than ``restart_gap_s``, restarts the history.

The diagnostic is WARN while no frame has arrived for ``stale_s`` of wall time (the controllers hold the robot
still when the policy goes quiet; this names the camera as the cause).
"""

from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from egovla_training.frames import FrameHistory, squash_frames, stack_frames

from ..msgs import diagnostic_array, ns_to_stamp, stamp_to_ns
from ..policy_plugins import image_to_rgb
from .common import EgoNode, NodeConfigError, declare, run, throttled

STREAM = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
IMAGE = QoSProfile(depth=4, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
STATUS_KEEP = 32  # task statuses remembered by stamp


class CameraNode(EgoNode):
    def __init__(self):
        super().__init__("camera")
        num_frames = declare(self, "num_frames", 6, "frames the prompt shows (current + earlier ones)",
                             lambda v: 1 <= v <= 64, "must be 1..64")
        spacing = declare(self, "history_spacing", 6, "frames between the shown frames (6 = 0.2 s at 30 Hz)",
                          lambda v: v >= 1, "must be >= 1")
        self.frame_size = declare(self, "frame_size", 0, "square size the frames are squashed to (the model's "
                                  "image size); 0: the checkpoint's image size if a checkpoint is given, else the "
                                  "camera's resolution", lambda v: 0 <= v <= 4096, "must be 0..4096")
        checkpoint = declare(self, "checkpoint", "", "EgoVLA checkpoint folder whose image size frame_size 0 "
                             "squashes frames to (empty: none)")
        if self.frame_size == 0 and checkpoint:
            from egovla_training.model.config import EgoVLAConfig

            try:
                self.frame_size = EgoVLAConfig.load(checkpoint).image_size
            except (FileNotFoundError, ValueError, KeyError, TypeError) as e:
                raise NodeConfigError(f"checkpoint {checkpoint}: {e}") from None
        self.wait_for_status = declare(self, "wait_for_status", False, "simulation: wait for the task status of "
                                       "each frame's stamp; a new episode number restarts the history")
        self.status_wait_s = declare(self, "status_wait_s", 0.2, "wall seconds a frame waits for its task status",
                                     lambda v: v > 0, "must be > 0")
        self.restart_gap_s = declare(self, "restart_gap_s", 1.0, "without task status: a stamp gap longer than this "
                                     "restarts the history", lambda v: v > 0, "must be > 0")
        self.stale_s = declare(self, "stale_s", 0.2, "wall seconds without a frame before the diagnostic warns",
                               lambda v: v > 0, "must be > 0")
        self.history = FrameHistory(num_frames, spacing)
        self.episode: str | None = None
        self.statuses: dict[int, str] = {}
        self.pending: list[tuple[int, object, str, float]] = []  # (stamp, rgb, frame_id, wall arrival)
        self.received = self.published = self.dropped = self.restarts = 0
        self.last_wall: float | None = None
        self.pub = self.create_publisher(Image, "/egovla/frame_history", IMAGE)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", STREAM)
        self.create_subscription(Image, "/ego_camera/image_raw", self._on_image, IMAGE)
        if self.wait_for_status:
            self.create_subscription(DiagnosticStatus, "/egovla/task_status", self._on_status, STREAM)
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, self._publish_diagnostics, clock=wall)
        if self.wait_for_status:
            self.create_timer(0.02, self._expire_pending, clock=wall)
        self.get_logger().info(f"frame history: {num_frames} frames, {spacing} apart"
                               + (f", squashed to {self.frame_size} px" if self.frame_size else ""))

    # --- inputs --------------------------------------------------------------------------------------------

    def _on_image(self, msg: Image):
        try:
            rgb = image_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data)
            if self.frame_size:
                rgb = squash_frames(rgb[None], self.frame_size)[0]
        except ValueError as e:
            self.dropped += 1
            throttled(self).error(f"image dropped: {e}", throttle_duration_sec=2.0)
            return
        self.received += 1
        self.last_wall = time.monotonic()
        stamp = stamp_to_ns(msg.header.stamp)
        if not self.wait_for_status:
            self._use(stamp, rgb, msg.header.frame_id, None)
            return
        self.pending.append((stamp, rgb, msg.header.frame_id, self.last_wall))
        self._flush()

    def _on_status(self, msg: DiagnosticStatus):
        values = {kv.key: kv.value for kv in msg.values}
        try:
            self.statuses[int(values["stamp_ns"])] = values.get("episode", "")
        except (KeyError, ValueError):
            return
        while len(self.statuses) > STATUS_KEEP:
            self.statuses.pop(min(self.statuses))
        self._flush()

    def _flush(self):
        """Use the pending frames, in order, whose task status has arrived."""
        while self.pending and self.pending[0][0] in self.statuses:
            stamp, rgb, frame_id, _ = self.pending.pop(0)
            self._use(stamp, rgb, frame_id, self.statuses[stamp])

    def _expire_pending(self):
        now = time.monotonic()
        while self.pending and now - self.pending[0][3] > self.status_wait_s:
            stamp = self.pending.pop(0)[0]
            self.dropped += 1
            throttled(self).warning(f"frame {stamp * 1e-9:.3f} s dropped: no task status with its stamp within "
                                    f"{self.status_wait_s} s ({self.dropped} dropped so far)",
                                    throttle_duration_sec=2.0)
        self._flush()

    # --- the history ---------------------------------------------------------------------------------------

    def _use(self, stamp: int, rgb, frame_id: str, episode: str | None):
        newest = self.history.newest_stamp_ns
        if episode is not None:
            restart = episode != self.episode
            self.episode = episode
        else:
            restart = newest is not None and (stamp < newest or stamp - newest > self.restart_gap_s * 1e9)
        if restart and len(self.history):
            self.restarts += 1
            self.get_logger().info(f"frame history restarted at {stamp * 1e-9:.3f} s"
                                   + (f" (episode {episode})" if episode is not None else " (stamp jump)"))
        if restart:
            self.history.reset()
        if self.history.push(rgb, stamp) == "refused":
            self.dropped += 1
            return
        image = stack_frames(self.history.selected())
        out = Image(height=image.shape[0], width=image.shape[1], encoding="rgb8", is_bigendian=0,
                    step=image.shape[1] * 3, data=image.tobytes())
        out.header.stamp, out.header.frame_id = ns_to_stamp(stamp), frame_id
        self.pub.publish(out)
        self.published += 1

    def _publish_diagnostics(self):
        age = None if self.last_wall is None else time.monotonic() - self.last_wall
        stale = age is None or age > self.stale_s
        values = {"received": self.received, "published": self.published, "dropped": self.dropped,
                  "restarts": self.restarts, "frames_held": len(self.history),
                  "last_frame_age_s": "none" if age is None else f"{age:.3f}"}
        message = (("no frame yet" if age is None else f"camera silent for {age:.2f} s") if stale
                   else f"{self.published} histories published")
        array = diagnostic_array(self.get_clock().now().to_msg(), "camera: stream",
                                 DiagnosticStatus.WARN if stale else DiagnosticStatus.OK, message, "head_camera",
                                 values)
        self.pub_diag.publish(array)


def main(args=None) -> int:
    return run(CameraNode, "camera", args)


if __name__ == "__main__":
    sys.exit(main())
