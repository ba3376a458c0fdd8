"""Smoother node: action chunks in, one smoothed action step per control tick out.

    sub  /egovla/action_chunk  trajectory_msgs/JointTrajectory  (30 points x 48 action names, stamped with the
                                                                 observation they were predicted from)
    pub  /egovla/action        sensor_msgs/JointState           (48 action names; stamp = the tick it answers)

Temporal ensembling of overlapping chunks (``egovla_training.smoothing.ChunkSmoother``: per-stream weights
``exp(-k j)``, rotations by their chordal mean). ``trigger``:

- ``chunk`` (lockstep simulation, default): every chunk stamped ``t`` yields the step for ``t + 1/30 s`` at once,
  stamped ``t``, so the controllers answer the observation of tick ``t``;
- ``timer``: a step for ``now + 1/30 s`` every 1/30 s of the node's clock (free-running simulation, the real robot),
  from whatever chunks are stored; nothing is published while no stored chunk covers the time.

Malformed chunks (other names, point counts, NaN/Inf) are rejected with a throttled error and never stored.
"""

from __future__ import annotations

import sys

from builtin_interfaces.msg import Time
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from egovla_training.action_space import CHUNK_STEPS, CONTROL_HZ
from egovla_training.smoothing import ChunkSmoother, action_streams

from ..cdr import decode_chunk
from ..msgs import MessageError, s_to_stamp, step_to_msg
from .common import EgoNode, declare, run, throttled


class SmootherNode(EgoNode):
    def __init__(self):
        super().__init__("smoother")
        k_wrist = declare(self, "k_wrist", 0.2, "weight decay per tick of age for wrist translation and rotation "
                          "(exp(-k j)); larger trusts the newest chunk more", lambda v: v >= 0, "must be >= 0")
        k_hand = declare(self, "k_hand", 0.8, "weight decay per tick of age for the hand PCA coefficients",
                         lambda v: v >= 0, "must be >= 0")
        order = declare(self, "order", "newest_first", "newest_first (EgoVLA) or oldest_first (ACT)",
                        lambda v: v in ("newest_first", "oldest_first"), "must be newest_first or oldest_first")
        self.trigger = declare(self, "trigger", "chunk", "chunk: one step per chunk (lockstep); timer: one step "
                               "per 1/30 s of the node clock", lambda v: v in ("chunk", "timer"),
                               "must be chunk or timer")
        self.dt = 1.0 / CONTROL_HZ
        self.smoother = ChunkSmoother(streams=action_streams(k_wrist, k_hand), order=order)
        self.rejected = 0
        # In-process consumers of the steps (``egovla.nodes.control``): called with (step (48,), stamp) before the
        # step is published; they must not write to it.
        self.step_listeners: list = []
        self.chunk_listeners: list = []  # called with no argument when a chunk arrives, before it is checked
        self.pub = self.create_publisher(JointState, "/egovla/action", 10)
        # Received serialized and decoded with NumPy (0.015 ms; rclpy's message objects took 0.2 ms).
        self.create_subscription(JointTrajectory, "/egovla/action_chunk", self._on_chunk, 10, raw=True)
        if self.trigger == "timer":
            self.create_timer(self.dt, self._on_timer)
        self.get_logger().info(f"smoothing chunks of {CHUNK_STEPS} steps, k_wrist={k_wrist}, k_hand={k_hand}, "
                               f"{order}, trigger={self.trigger}")

    def _on_chunk(self, data: bytes):
        for listener in self.chunk_listeners:
            listener()
        try:
            (sec, nanosec), chunk = decode_chunk(data)
            stamp = sec + nanosec * 1e-9
            self.smoother.add_chunk(stamp, chunk)
        except (MessageError, ValueError) as e:
            self.rejected += 1
            throttled(self).error(f"chunk rejected ({self.rejected} so far): {e}", throttle_duration_sec=1.0)
            return
        if self.trigger == "chunk":
            self._publish(stamp, Time(sec=sec, nanosec=nanosec))

    def _on_timer(self):
        now = self.get_clock().now().nanoseconds * 1e-9
        self._publish(now, s_to_stamp(now))

    def _publish(self, t: float, stamp):
        step = self.smoother.query(t + self.dt)
        self.smoother.prune(t)
        if step is not None:
            step.flags.writeable = False
            for listener in self.step_listeners:
                listener(step, stamp)
            self.pub.publish(step_to_msg(step, stamp))


def main(args=None) -> int:
    return run(SmootherNode, "smoother", args)


if __name__ == "__main__":
    sys.exit(main())
