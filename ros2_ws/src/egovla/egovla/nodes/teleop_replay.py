"""Teleop source: replays a hand-tracking recording (wrist poses + 21 keypoints per hand) as action chunks.

    sub  /joint_states          a tick of the robot (lockstep: the bridge's tick is complete)
    sub  /egovla/task_status    a new ``episode`` restarts the recording from its first frame
    pub  /egovla/action_chunk   the next 30 recorded steps, stamped with the tick

The recording (``egovla.teleop``: an ``.npz`` of camera-frame wrist positions, rotations and keypoints) is
converted once at startup: wrists as recorded, hand PCA fitted to the fingertips. Unlike a policy, a replay knows
the future, so each chunk holds the true next second of motion. Past the end the last frame is held. A VR headset
source (later) publishes the same chunks live.
"""

from __future__ import annotations

import sys

from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from builtin_interfaces.msg import Time
from egovla_training.hands import load_hand_model
from egovla_training.retarget import FitConfig

from ..msgs import chunk_to_msg
from ..teleop import chunk_at, load_recording, recording_to_steps
from .common import EgoNode, NodeConfigError, declare, run


class TeleopReplay(EgoNode):
    def __init__(self):
        super().__init__("teleop_replay")
        path = declare(self, "recording", "", "hand-tracking recording (.npz: wrist_position, wrist_rotation, "
                       "keypoints in the head camera's optical frame)", bool, "give the recording's path")
        kind = declare(self, "hand_model", "auto", "auto (MANO if found, else the stand-in), mano or standin",
                       lambda v: v in ("auto", "mano", "standin"), "must be auto, mano or standin")
        iterations = declare(self, "fit_iterations", 500, "Adam iterations of the hand fit", lambda v: v > 0,
                             "must be > 0")
        rec = load_recording(path)  # RecordingError (a ValueError) -> one line, exit 2
        hands = {s: load_hand_model(s, kind=kind) for s in ("left", "right")}
        self.steps, residual = recording_to_steps(rec, hands, FitConfig(robot_hand_scale=1.0, iterations=iterations))
        if not len(self.steps):
            raise NodeConfigError(f"recording {path}: no frames")
        self.tick = 0
        self.episode = None
        self.pub = self.create_publisher(JointTrajectory, "/egovla/action_chunk", 10)
        self.create_subscription(JointState, "/joint_states", self._on_tick, 10)
        self.create_subscription(DiagnosticStatus, "/egovla/task_status", self._on_status, 10)
        self.get_logger().info(f"replaying {path}: {len(self.steps)} steps at 30 Hz, fingertip fit residual "
                               f"mean {1000 * float(residual.mean()):.1f} mm, max {1000 * float(residual.max()):.1f}"
                               f" mm")

    def _on_status(self, msg: DiagnosticStatus):
        episode = next((kv.value for kv in msg.values if kv.key == "episode"), None)
        if episode is not None and episode != self.episode:
            self.episode, self.tick = episode, 0

    def _on_tick(self, msg: JointState):
        stamp = Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec)
        self.pub.publish(chunk_to_msg(chunk_at(self.steps, self.tick), stamp))
        if self.tick == len(self.steps) - 1:
            self.get_logger().info("recording finished: holding its last frame")
        self.tick += 1


def main(args=None) -> int:
    return run(TeleopReplay, "teleop_replay", args)


if __name__ == "__main__":
    sys.exit(main())
