"""The camera node as a real process: the frame history it publishes per frame, episodes, re-sent ticks, frames
without their task status, squashing, and the silent-camera diagnostic."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ros_harness import NodeProcess, wait_until

pytestmark = pytest.mark.ros
T0 = 5_000_000_000
TICK = 33_333_333


def test_camera_node_publishes_the_spaced_history_per_episode(ros_domain, ros_probe, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from sensor_msgs.msg import Image

    from egovla.msgs import ns_to_stamp, stamp_to_ns
    from egovla.policy_plugins import image_to_rgb
    from egovla_training.frames import unstack_frames

    node = NodeProcess.module("egovla.nodes.camera", ros_domain, tmp_path, name="camera", args=[
        "--ros-args", "-p", "num_frames:=3", "-p", "history_spacing:=2", "-p", "frame_size:=8",
        "-p", "wait_for_status:=true", "-p", "status_wait_s:=1.0"])
    images = ros_probe.node.create_publisher(Image, "/ego_camera/image_raw", 4)
    statuses = ros_probe.node.create_publisher(DiagnosticStatus, "/egovla/task_status", 10)
    histories = ros_probe.collect(Image, "/egovla/frame_history", 4)
    diagnostics = ros_probe.collect(DiagnosticArray, "/diagnostics")

    def frame(ns, value):
        msg = Image(height=36, width=64, encoding="bgr8", step=64 * 3, data=bytes([value]) * (36 * 64 * 3))
        msg.header.stamp, msg.header.frame_id = ns_to_stamp(ns), "head_camera_optical"
        return msg

    def status(ns, episode):
        return DiagnosticStatus(name="close_drawer", values=[KeyValue(key="stamp_ns", value=str(ns)),
                                                             KeyValue(key="episode", value=str(episode))])

    def shown(msg):
        """The grey level of each frame of a history message, oldest first."""
        frames = unstack_frames(image_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data), 3)
        assert frames.shape == (3, 8, 8, 3)  # squashed to frame_size
        assert all(np.all(f == f[0, 0, 0]) for f in frames)
        return [int(f[0, 0, 0]) for f in frames]

    def send(tick, value, episode, status_first=True):
        ns = T0 + tick * TICK
        if status_first:
            statuses.publish(status(ns, episode))
            images.publish(frame(ns, value))
        else:
            images.publish(frame(ns, value))
            time.sleep(0.1)
            statuses.publish(status(ns, episode))
        return ns

    try:
        assert wait_until(lambda: "frame history: 3 frames, 2 apart" in node.log() or not node.alive, 60.0), \
            node.log()
        assert wait_until(lambda: images.get_subscription_count() > 0 and statuses.get_subscription_count() > 0, 10)
        for tick in range(6):  # episode 0, grey level 10 * tick; the status comes after the frame at tick 3
            ns = send(tick, 10 * tick, 0, status_first=tick != 3)
            assert wait_until(lambda: len(histories) == tick + 1, 10.0), (tick, node.log())
            assert stamp_to_ns(histories[-1].header.stamp) == ns
            assert histories[-1].header.frame_id == "head_camera_optical"
        assert [shown(h) for h in histories] == [[0, 0, 0], [0, 0, 10], [0, 0, 20], [0, 10, 30], [0, 20, 40],
                                                 [10, 30, 50]]
        # The tick re-sent with new content: it replaces the newest frame, the spacing stays.
        send(5, 55, 0)
        assert wait_until(lambda: len(histories) == 7, 10.0) and shown(histories[-1]) == [10, 30, 55]
        send(6, 60, 0)
        assert wait_until(lambda: len(histories) == 8, 10.0) and shown(histories[-1]) == [20, 40, 60]
        # A frame whose task status never comes is dropped after status_wait_s, with a warning.
        images.publish(frame(T0 + 7 * TICK, 70))
        assert wait_until(lambda: "no task status with its stamp" in node.log(), 5.0), node.log()
        # A new episode restarts the history.
        send(40, 100, 1)
        assert wait_until(lambda: len(histories) == 9, 10.0) and shown(histories[-1]) == [100, 100, 100]
        send(41, 110, 1)
        assert wait_until(lambda: len(histories) == 10, 10.0) and shown(histories[-1]) == [100, 100, 110]
        assert "frame history restarted" in node.log() and "(episode 1)" in node.log()
        # The camera stops: within a second or two the diagnostic names it.
        assert wait_until(lambda: any(s.name == "camera: stream" and s.level == DiagnosticStatus.WARN and
                                      "camera silent" in s.message for d in diagnostics for s in d.status), 5.0)
    finally:
        node.stop()


def test_camera_node_takes_the_frame_size_from_the_checkpoint(ros_domain, tmp_path, tiny_checkpoint):
    """frame_size 0 with a checkpoint: the checkpoint's image size; a folder that is no checkpoint: one clear error
    and exit code 2."""
    node = NodeProcess.module("egovla.nodes.camera", ros_domain, tmp_path, name="camera", args=[
        "--ros-args", "-p", f"checkpoint:={tiny_checkpoint}"])
    try:
        assert wait_until(lambda: "squashed to 112 px" in node.log(), 30.0), node.log()
    finally:
        assert node.stop() == 0, node.log()
    bad = NodeProcess.module("egovla.nodes.camera", ros_domain, tmp_path, name="camera_bad", args=[
        "--ros-args", "-p", f"checkpoint:={tmp_path}"])
    assert bad.wait(timeout_s=30.0) == 2
    assert f"camera: error: checkpoint {tmp_path}:" in bad.log() and "config.json" in bad.log(), bad.log()
