"""Recorder node: one rosbag2 (MCAP storage) per episode, written with the ``rosbags`` library.

    sub  every topic of ``egovla_training.data.rosbag_episodes.TOPICS`` (camera, camera_info, joint states,
         commands, action chunks, instruction, task status, clock), received serialized (no decoding: the CDR bytes
         go to the bag as they came)

Episodes follow ``/egovla/task_status``: a new value of ``episode`` closes the current bag (its metadata gets the
episode's ``success``) and opens ``<out>/<task>_ep<episode>_p<placement>/``; messages wait one tick (until the next
status) so that those of the new episode's first tick, sent before its status, land in the new bag: stamped messages
(images, camera info, joint states and commands, chunks, clock) by their own stamp, the others by arrival. The latest instruction (latched) is
written at the start of each bag. An observation the simulator re-sends unchanged while a tick waits (same
stamp, same bytes on ``/ego_camera/*``, ``/joint_states``, the task status or ``/clock``) is written once. Log times are the node clock (sim time with ``use_sim_time``); the messages keep
their own header stamps, which the demo converter (``egovla-convert-bags``) aligns on. ``ros2 bag info`` and the
``mcap`` / ``rosbags`` readers read the bags (tested with the latter two).

Where ``ros2 bag`` exists, ``ros2 bag record -s mcap`` of the same topics gives the same content without the
episode split.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from egovla_training.data.rosbag_episodes import (
    CLOCK_TOPIC,
    INSTRUCTION_TOPIC,
    TASK_STATUS_TOPIC,
    TOPICS,
    EpisodeBagWriter,
)

from ..cdr import leading_stamp_ns
from .common import RECORDED_DEPTH, EgoNode, NodeConfigError, declare, run

_CLASSES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CameraInfo": CameraInfo,
            "sensor_msgs/msg/JointState": JointState, "trajectory_msgs/msg/JointTrajectory": JointTrajectory,
            "std_msgs/msg/String": String, "diagnostic_msgs/msg/DiagnosticStatus": DiagnosticStatus,
            "rosgraph_msgs/msg/Clock": Clock}
# Types whose serialized form starts with a stamp (a std_msgs/Header, or Clock's time): the episode split uses it.
STAMPED_TYPES = frozenset({"sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/JointState",
                           "trajectory_msgs/msg/JointTrajectory", "rosgraph_msgs/msg/Clock"})
RESENT_TOPICS = ("/ego_camera/image_raw", "/ego_camera/camera_info", "/joint_states", TASK_STATUS_TOPIC,
                 CLOCK_TOPIC)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
# Reliable and deep: the recorder may lag behind a lockstep bridge running at 100+ ticks/s on a busy machine, and a
# message its queue drops is lost from the bag (the publishers' queues are as deep, see sim_bridge.STREAM).
RECORD = QoSProfile(depth=RECORDED_DEPTH, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


class Recorder(EgoNode):
    def __init__(self):
        super().__init__("recorder")
        self.out = Path(declare(self, "out", "outputs/bags", "folder that receives one bag folder per episode"))
        self.source = declare(self, "source", "twin_scripted", "recorded in each bag's metadata: where the "
                              "actions came from (twin_scripted, teleop, policy, ...)", bool, "must not be empty")
        self.embodiment = declare(self, "embodiment", "h1_inspire", "robot embodiment, in the metadata", bool,
                                  "must not be empty")
        self.split = declare(self, "split", "", "benchmark split, in the metadata (empty: none)")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NodeConfigError(f"out={self.out}: {e}") from None
        self.writer: EpisodeBagWriter | None = None
        self.episode = None
        self.instruction: bytes | None = None
        self.instruction_text = ""
        self.last_status: dict = {}
        # (topic, type, log time ns, CDR bytes, stamp ns (the log time for unstamped types)) received since the last
        # task status
        self.pending: list = []
        self.bags: list[str] = []
        self._last_observation: dict[str, bytes] = {}
        for topic, msgtype in TOPICS.items():
            qos = LATCHED if topic == INSTRUCTION_TOPIC else RECORD
            self.create_subscription(_CLASSES[msgtype], topic, self._writer_for(topic, msgtype), qos, raw=True)
        self.get_logger().info(f"recording {len(TOPICS)} topics into {self.out}, one bag per episode")

    def _writer_for(self, topic: str, msgtype: str):
        def callback(data: bytes):
            if topic in RESENT_TOPICS:
                if self._last_observation.get(topic) == data:
                    return  # a re-announced tick: already recorded
                self._last_observation[topic] = data
            now = self._now_ns()
            item = (topic, msgtype, now, data, leading_stamp_ns(data) if msgtype in STAMPED_TYPES else now)
            if topic == INSTRUCTION_TOPIC:
                self.instruction = data
                self.instruction_text = deserialize_message(data, String).data
            if topic == TASK_STATUS_TOPIC:
                self._on_status(deserialize_message(data, DiagnosticStatus), item)
            else:
                self.pending.append(item)
        return callback

    def _now_ns(self) -> int:
        return max(0, self.get_clock().now().nanoseconds)

    def _on_status(self, msg: DiagnosticStatus, item):
        """Messages wait in ``pending`` until the next status: a tick's frame and clock come before its status,
        so at a new episode the ones stamped from the episode's first tick on go into the new bag. Stamped messages
        are split by their own stamp: the executor may take a tick's joint state before its status, or a frame
        before the clock message that moves this node's clock to its tick."""
        values = {kv.key: kv.value for kv in msg.values}
        episode = values.get("episode")
        pending, self.pending = self.pending, []
        if episode is not None and episode != self.episode:
            start = int(values["stamp_ns"]) if values.get("stamp_ns", "").isdigit() else item[2]
            self._write([p for p in pending if p[4] < start])
            self._close()
            self.episode = episode
            self._open(msg.name, values)
            pending = [p for p in pending if p[4] >= start]
        self._write(pending + [item])
        self.last_status = values

    def _write(self, items):
        if self.writer is None:
            return
        for topic, msgtype, t_ns, data, _ in items:
            self.writer.write_raw(topic, msgtype, t_ns, data)

    def _open(self, task: str, values: dict):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{task}_ep{self.episode}_p{values.get('placement_index') or 'x'}")
        path = self.out / name
        k = 1
        while path.exists():
            k += 1
            path = self.out / f"{name}_{k}"
        metadata = {"task": task, "instruction": self.instruction_text, "embodiment": self.embodiment,
                    "source": self.source, "episode": self.episode}
        if self.split:
            metadata["split"] = self.split
        if values.get("placement_index", "").lstrip("-").isdigit():
            metadata["placement_index"] = int(values["placement_index"])
        self.writer = EpisodeBagWriter(path, metadata=metadata)
        if self.instruction is not None:
            self.writer.write_raw(INSTRUCTION_TOPIC, TOPICS[INSTRUCTION_TOPIC], self._now_ns(), self.instruction)
        self.get_logger().info(f"episode {self.episode}: recording into {path}")

    def _close(self):
        if self.writer is None:
            return
        self._write(self.pending)
        self.pending = []
        success = self.last_status.get("success") == "1"
        self.writer.update_metadata(success=success, instruction=self.instruction_text,
                                    ticks=int(self.last_status.get("tick", "0") or 0))
        self.writer.close()
        counts = ", ".join(f"{t} {n}" for t, n in sorted(self.writer.counts.items()))
        self.get_logger().info(f"closed {self.writer.path} (success {success}): {counts}")
        self.bags.append(str(self.writer.path))
        self.writer = None

    def destroy_node(self):
        self._close()
        return super().destroy_node()


def main(args=None) -> int:
    return run(Recorder, "recorder", args)


if __name__ == "__main__":
    sys.exit(main())
