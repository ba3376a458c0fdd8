"""The recorder as a real process beside a real sim bridge: one MCAP bag per episode, read back intact by our
reader, by the independent ``mcap`` + ``mcap-ros2-support`` reader, and converted into training samples."""

import time

import numpy as np
import pytest

from ros_harness import NodeProcess, wait_until
from test_sim_bridge import _command, _reset, _start, _status

from egovla.sim_bridge_core import default_required_joints

pytestmark = pytest.mark.ros


def test_each_episode_becomes_a_bag_that_other_tools_read_and_the_converter_takes(ros_domain, ros_probe, tmp_path,
                                                                                 robot):
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import JointState

    from egovla_training.data import DatasetReader
    from egovla_training.data.convert_bags import convert_bags
    from egovla_training.data.rosbag_episodes import read_episode_bag

    bags = tmp_path / "bags"
    recorder = NodeProcess.module("egovla.nodes.recorder", ros_domain, tmp_path, args=[
        "--ros-args", "-p", f"out:={bags}", "-p", "use_sim_time:=true", "-p", "source:=test_hold"])
    assert wait_until(lambda: "recording" in recorder.log(), 30.0), recorder.log()
    required = default_required_joints(robot)
    pub = ros_probe.node.create_publisher(JointState, "/joint_command", 10)
    statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
    ticks = {"n": 0, "stop_after": 45}

    # Ticks flow once the recorder has the first tick's status (the bridge re-announces a waiting tick, status
    # included, so a recorder that matched the bridge late still gets tick 0). Seeing the recorder's subscriptions
    # from here is not enough: on a loaded machine the bridge's writers may match them seconds later.
    recorder_ready = {"ok": False}
    answered = set()

    def hold(js):  # the robot holds its pose: every tick answered once with the measured positions
        stamp = (js.header.stamp.sec, js.header.stamp.nanosec)
        if ticks["n"] < ticks["stop_after"] and stamp not in answered and recorder_ready["ok"]:
            answered.add(stamp)
            ticks["n"] += 1
            pos = dict(zip(js.name, js.position))
            pub.publish(_command(required, [pos[j] for j in required], js.header.stamp))

    ros_probe.node.create_subscription(JointState, "/joint_states", hold, 10)
    bridge = _start(ros_domain, tmp_path, "warmup_steps:=2", "lockstep_timeout_s:=60.0")
    try:
        assert wait_until(lambda: "episode 0: recording" in recorder.log(), 30.0), recorder.log() + bridge.log()
        recorder_ready["ok"] = True
        assert wait_until(lambda: ticks["n"] >= 45, 60.0), bridge.log()
        time.sleep(0.3)
        ticks["stop_after"] = 90
        assert _reset(ros_probe).success
        assert wait_until(lambda: ticks["n"] >= 90, 60.0), bridge.log()
        time.sleep(0.5)
        ticks["stop_after"] = 0
    finally:
        assert bridge.stop() == 0, bridge.log()
        assert recorder.stop() == 0, recorder.log()
    folders = sorted(p for p in bags.iterdir() if p.is_dir())
    assert [p.name.split("_p")[0] for p in folders] == ["close_drawer_ep0", "close_drawer_ep1"], folders
    episode_start = {}
    for s in statuses:
        v = _status(s)
        episode_start.setdefault(v["episode"], int(v["stamp_ns"]))
    for folder, episode in zip(folders, ("0", "1")):
        rec = read_episode_bag(folder)
        assert rec.metadata["task"] == "close_drawer" and rec.metadata["source"] == "test_hold"
        assert rec.instruction and rec.metadata["success"] is False
        n = len(rec.image_stamps_ns)
        assert n >= 44 and len(rec.joint_stamps_ns) == n  # one frame and one joint state per tick
        assert len(np.unique(rec.clock_ns)) == len(rec.clock_ns) >= n  # a re-announced tick's clock kept once
        first_status = int(rec.status[0]["info"]["stamp_ns"])
        assert {s["info"]["episode"] for s in rec.status} == {episode}
        assert int(rec.image_stamps_ns[0]) == first_status  # the episode's first tick is in its own bag
        if episode == "1":  # (the probe may miss the very first statuses while discovery runs)
            assert first_status == episode_start[episode]
        assert np.array_equal(rec.image_stamps_ns, rec.joint_stamps_ns)
        # the independent reader sees the same messages
        from mcap.reader import make_reader
        from mcap_ros2.decoder import DecoderFactory

        with open(next(folder.glob("*.mcap")), "rb") as f:
            counts = {}
            for _, channel, _, _ in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
                counts[channel.topic] = counts.get(channel.topic, 0) + 1
        assert counts["/ego_camera/image_raw"] == n and counts["/joint_states"] == n
        assert counts["/egovla/instruction"] >= 1 and counts["/egovla/task_status"] >= n - 1
    from egovla_training.retarget import FitConfig

    reports = convert_bags(folders, tmp_path / "dataset", hand_model="standin", image_size=(36, 64),
                           fit_config=FitConfig(iterations=150, retry_starts=0))
    reader = DatasetReader(tmp_path / "dataset")
    assert len(reader) == sum(len(read_episode_bag(f, read_images=False).joint_stamps_ns) for f in folders)
    assert len(reports) == 2
