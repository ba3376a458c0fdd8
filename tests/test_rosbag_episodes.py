"""Robot demonstrations as rosbag2 MCAP episodes, and their conversion into training samples."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from bag_helpers import record_twin_rollout, tick_ns
from egovla_training.action_space import ACTION_NAMES, indices
from egovla_training.data import DatasetReader
from egovla_training.data.convert_bags import convert_bags, main as convert_main
from egovla_training.data.rosbag_episodes import (
    METADATA_KEY,
    TOPICS,
    EpisodeBagError,
    EpisodeBagWriter,
    read_episode_bag,
)
from egovla_training.hands import load_hand_model
from egovla_training.retarget import FitConfig

META = {"task": "close_drawer", "instruction": "Close the opened drawer", "split": "seen", "placement_index": 3,
        "seed": 7, "embodiment": "h1_inspire", "source": "twin_scripted", "success": False}
JOINTS = ["left_shoulder_pitch_joint", "right_shoulder_pitch_joint", "L_index_proximal_joint"]


def _synthetic(n: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"stamps": [tick_ns(t) for t in range(n)],
            "images": rng.integers(0, 256, (n, 6, 10, 3), dtype=np.uint8),
            "q": rng.normal(size=(n, len(JOINTS))), "qd": rng.normal(size=(n, len(JOINTS))),
            "cmd": rng.normal(size=(n, 2)), "chunks": rng.normal(size=(n, 30, 48)),
            "progress": rng.uniform(size=n)}


def _write_synthetic(path: Path, d: dict, skip: tuple = ()) -> None:
    with EpisodeBagWriter(path, metadata=META) as bag:
        bag.write_instruction(0, META["instruction"])
        for t, s in enumerate(d["stamps"]):
            bag.write_clock(s)
            if "/joint_states" not in skip:
                bag.write_joint_state(s, JOINTS, d["q"][t], velocities=d["qd"][t])
            bag.write_image(s, d["images"][t])
            bag.write_camera_info(s, width=10, height=6, fx=3.8, fy=3.8, cx=5.0, cy=3.0)
            bag.write_joint_command(s, JOINTS[:2] if t % 2 == 0 else JOINTS[1:], d["cmd"][t])
            bag.write_action_chunk(s, d["chunks"][t])
            bag.write_task_status(s, "close_drawer", success=t == len(d["stamps"]) - 1, progress=d["progress"][t],
                                  subtasks={"reach_success": 1.0, "move_door_success": float(t > 5)})
        bag.update_metadata(success=True)


@pytest.fixture(scope="module")
def synthetic_bag(tmp_path_factory):
    d = _synthetic()
    path = tmp_path_factory.mktemp("bags") / "synthetic"
    _write_synthetic(path, d)
    return path, d


def test_round_trip_with_our_reader(synthetic_bag):
    path, d = synthetic_bag
    rec = read_episode_bag(path)
    n = len(d["stamps"])
    assert rec.metadata == {**META, "success": True}
    assert rec.counts == {t: (1 if t == "/egovla/instruction" else n) for t in TOPICS}
    assert rec.image_stamps_ns.tolist() == d["stamps"] and rec.joint_stamps_ns.tolist() == d["stamps"]
    assert np.array_equal(rec.images, d["images"])
    assert rec.joint_names == tuple(JOINTS) and np.array_equal(rec.joint_positions, d["q"])
    assert rec.command_names == tuple(JOINTS[:2] + JOINTS[2:])
    for t in range(n):  # commands name alternating subsets; the rest is NaN
        named = [0, 1] if t % 2 == 0 else [1, 2]
        assert np.array_equal(rec.command_positions[t, named], d["cmd"][t])
        assert np.isnan(rec.command_positions[t, ({0, 1, 2} - set(named)).pop()])
    assert rec.action_chunk_names == ACTION_NAMES and np.array_equal(rec.action_chunks, d["chunks"])
    assert rec.instruction == META["instruction"]
    assert rec.camera_info == {"width": 10, "height": 6, "fx": 3.8, "fy": 3.8, "cx": 5.0, "cy": 3.0,
                               "frame_id": "head_camera_optical_frame"}
    assert [s["progress"] for s in rec.status] == d["progress"].tolist()
    assert [s["success"] for s in rec.status] == [False] * (n - 1) + [True]
    assert rec.status[7]["subtasks"] == {"reach_success": 1.0, "move_door_success": 1.0}
    assert rec.clock_ns.tolist() == d["stamps"]


def test_round_trip_with_the_mcap_reader(synthetic_bag):
    """The independent MCAP reader (its own CDR decoder, from the schemas stored in the file) sees every message."""
    from mcap_ros2.reader import read_ros2_messages

    path, d = synthetic_bag
    (mcap_file,) = path.glob("*.mcap")
    got: dict[str, list] = {}
    for m in read_ros2_messages(str(mcap_file)):
        got.setdefault(m.channel.topic, []).append(m)
    assert {t: len(v) for t, v in got.items()} == {t: (1 if t == "/egovla/instruction" else 12) for t in TOPICS}
    for topic in set(TOPICS) - {"/egovla/instruction"}:
        assert [m.log_time_ns for m in got[topic]] == d["stamps"], topic
    for t, m in enumerate(got["/ego_camera/image_raw"]):
        img = m.ros_msg
        assert (img.encoding, img.height, img.width, img.step) == ("rgb8", 6, 10, 30)
        assert bytes(img.data) == d["images"][t].tobytes()
        assert img.header.stamp.sec * 10**9 + img.header.stamp.nanosec == d["stamps"][t]
    for t, m in enumerate(got["/joint_states"]):
        assert list(m.ros_msg.name) == JOINTS and list(m.ros_msg.position) == d["q"][t].tolist()
        assert list(m.ros_msg.velocity) == d["qd"][t].tolist() and list(m.ros_msg.effort) == []
    for t, m in enumerate(got["/egovla/action_chunk"]):
        traj = m.ros_msg
        assert tuple(traj.joint_names) == ACTION_NAMES and len(traj.points) == 30
        assert np.array_equal([list(p.positions) for p in traj.points], d["chunks"][t])
        last = traj.points[-1].time_from_start
        assert (last.sec, last.nanosec) == (1, 0) and traj.points[0].time_from_start.nanosec == 33333333
    status = got["/egovla/task_status"][3].ros_msg
    assert status.name == "close_drawer"
    assert {kv.key: kv.value for kv in status.values} == {
        "success": "0", "progress": repr(float(d["progress"][3])), "reach_success": "1.0",
        "move_door_success": "0.0"}
    assert got["/egovla/instruction"][0].ros_msg.data == META["instruction"]
    assert [m.ros_msg.clock.sec * 10**9 + m.ros_msg.clock.nanosec for m in got["/clock"]] == d["stamps"]
    assert list(got["/ego_camera/camera_info"][0].ros_msg.k) == [3.8, 0, 5.0, 0, 3.8, 3.0, 0, 0, 1]


def test_round_trip_with_rosbags_anyreader(synthetic_bag):
    from rosbags.highlevel import AnyReader

    path, d = synthetic_bag
    with AnyReader([path]) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == TOPICS
        msgs: dict[str, list] = {}
        for conn, stamp, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    assert [s for s, _ in msgs["/joint_command"]] == d["stamps"]
    assert np.array_equal(np.stack([m.data.reshape(6, 10, 3) for _, m in msgs["/ego_camera/image_raw"]]),
                          d["images"])
    assert np.array_equal(np.stack([m.position for _, m in msgs["/joint_states"]]), d["q"])
    assert np.array_equal(np.stack([m.position for _, m in msgs["/joint_command"]]), d["cmd"])
    assert np.array_equal(np.stack([[p.positions for p in m.points] for _, m in msgs["/egovla/action_chunk"]]),
                          d["chunks"])


def test_metadata_yaml(synthetic_bag):
    path, _ = synthetic_bag
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["version"] >= 8
    assert info["relative_file_paths"] == [f"{path.name}.mcap"] and (path / f"{path.name}.mcap").is_file()
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    assert counts == {t: (1 if t == "/egovla/instruction" else 12) for t in TOPICS}
    types = {t["topic_metadata"]["name"]: t["topic_metadata"]["type"] for t in info["topics_with_message_count"]}
    assert types == TOPICS
    assert info["message_count"] == sum(counts.values())
    assert json.loads(info["custom_data"][METADATA_KEY]) == {**META, "success": True}


def test_write_raw_takes_rclpy_serialized_messages(tmp_path):
    """The recorder node passes rclpy's serialize_message bytes: the same wire format as our writers."""
    serialization = pytest.importorskip("rclpy.serialization")
    from sensor_msgs.msg import JointState

    msg = JointState(name=JOINTS, position=[0.1, -0.2, 0.3])
    msg.header.stamp.sec, msg.header.stamp.nanosec = 2, 5
    with EpisodeBagWriter(tmp_path / "raw", metadata=META) as bag:
        bag.write_raw("/joint_states", "sensor_msgs/msg/JointState", 2_000_000_005, serialization.serialize_message(msg))
        bag.write_image(2_000_000_005, np.zeros((2, 2, 3), np.uint8))
    rec = read_episode_bag(tmp_path / "raw")
    assert rec.joint_stamps_ns.tolist() == [2_000_000_005] and rec.joint_positions.tolist() == [[0.1, -0.2, 0.3]]


def test_writer_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"needs non-empty string values for \['embodiment', 'source'\]"):
        EpisodeBagWriter(tmp_path / "a", metadata={"task": "x"})
    with pytest.raises(ValueError, match="JSON"):
        EpisodeBagWriter(tmp_path / "a", metadata={**META, "seed": np.zeros(2)})
    with EpisodeBagWriter(tmp_path / "a", metadata=META) as bag:
        with pytest.raises(ValueError, match=r"image: expected a uint8 \(H, W, 3\) array, got float64"):
            bag.write_image(0, np.zeros((4, 4, 3)))
        with pytest.raises(ValueError, match=r"image: .* shape \(4, 4\)"):
            bag.write_image(0, np.zeros((4, 4), np.uint8))
        with pytest.raises(ValueError, match=r"/joint_states positions: expected a \(2,\) array, got shape \(3,\)"):
            bag.write_joint_state(0, JOINTS[:2], [1.0, 2.0, 3.0])
        with pytest.raises(ValueError, match=r"action chunk: expected shape \(steps, 48\), got \(30, 47\)"):
            bag.write_action_chunk(0, np.zeros((30, 47)))
        with pytest.raises(ValueError, match="carries sensor_msgs/msg/Image, got std_msgs/msg/String"):
            bag.write_raw("/ego_camera/image_raw", "std_msgs/msg/String", 0, b"\x00\x01\x00\x00")
        with pytest.raises(ValueError, match=">= 0 ns"):
            bag.write_clock(-1)
    with pytest.raises(FileExistsError, match="already exists"):
        EpisodeBagWriter(tmp_path / "a", metadata=META)
    with pytest.raises(RuntimeError, match="boom"):
        with EpisodeBagWriter(tmp_path / "b", metadata=META) as bag:
            bag.write_image(0, np.zeros((2, 2, 3), np.uint8))
            raise RuntimeError("boom")
    with pytest.raises(EpisodeBagError, match="required topic"):  # what was written is kept, marked aborted
        read_episode_bag(tmp_path / "b")
    info = yaml.safe_load((tmp_path / "b" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert json.loads(info["custom_data"][METADATA_KEY])["aborted"] == "RuntimeError: boom"


def test_bad_bags_raise_one_error_naming_the_path(tmp_path, synthetic_bag):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EpisodeBagError, match=f"^{empty}: no metadata.yaml"):
        read_episode_bag(empty)
    with pytest.raises(EpisodeBagError, match="not a folder"):
        read_episode_bag(tmp_path / "nothing")

    src, _ = synthetic_bag
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "metadata.yaml").write_text((src / "metadata.yaml").read_text())
    data = (src / "synthetic.mcap").read_bytes()
    (truncated / "synthetic.mcap").write_bytes(data[:len(data) // 2])
    with pytest.raises(EpisodeBagError, match=f"^{truncated}: cannot be read as a rosbag2 MCAP bag"):
        read_episode_bag(truncated)

    no_states = tmp_path / "no_states"
    _write_synthetic(no_states, _synthetic(4), skip=("/joint_states",))
    with pytest.raises(EpisodeBagError, match=fr"^{no_states}: required topic\(s\) \['/joint_states'\] missing"):
        read_episode_bag(no_states)


# -- conversion of a real twin rollout ----------------------------------------------------------------------------

TICKS = 75
SIZE = (72, 128)  # (height, width) of the rendered head camera: the benchmark's 1280x720 camera scaled by 1/10
FAST_FIT = FitConfig(iterations=150, retry_starts=0)  # the test's budget; the defaults are measured in the docs


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """A Push-Box expert rollout (its right hand reaches into view) converted to a dataset."""
    root = tmp_path_factory.mktemp("twin")
    meta = record_twin_rollout(root / "push_box_0", "push_box", ticks=TICKS, placement_index=5903, size=SIZE)
    hands = {s: load_hand_model(s, kind="standin") for s in ("left", "right")}
    reports = convert_bags([root / "push_box_0"], root / "dataset", hand_model=hands, fit_config=FAST_FIT)
    return root, meta, hands, reports


def test_twin_bag_reads_back(twin):
    root, meta, _, _ = twin
    rec = read_episode_bag(root / "push_box_0")
    assert rec.num_frames == TICKS and rec.images.shape == (TICKS, *SIZE, 3)
    assert rec.metadata == {k: v for k, v in meta.items() if k != "_truth"}
    assert rec.instruction and rec.status[-1]["task"] == "push_box"
    assert rec.camera_info["fx"] == pytest.approx(488.6662 / 10, rel=1e-3)
    assert set(rec.command_names) <= set(rec.joint_names)
    assert rec.images.std() > 10  # rendered, not blank


def test_converted_dataset(twin):
    root, meta, hands, (report,) = twin
    reader = DatasetReader(root / "dataset")
    samples = list(reader.iter_samples())
    assert len(samples) == len(reader) == TICKS == report.samples and report.dropped_frames == 0
    assert reader.hand_model == hands["left"].model_id
    assert {(s.source, s.embodiment) for s in samples} == {("robot", "h1_inspire")}
    assert samples[0].frames.shape == (6, *SIZE, 3)
    actions = np.stack([s.actions for s in samples])  # (N, 30, 48)
    mask = np.stack([s.action_mask for s in samples])  # (N, 30, 2)
    transl = np.stack([s.proprio_translation for s in samples])  # (N, 2, 3)
    assert np.isfinite(actions).all()
    # Step k (1..30) of frame t is frame t+k: valid while t+k <= N-1.
    t, k = np.meshgrid(np.arange(TICKS), np.arange(1, 31), indexing="ij")
    assert np.array_equal(mask, np.repeat((t + k <= TICKS - 1)[..., None], 2, axis=2))
    assert not mask[-1].any() and mask[-31].all()
    # With the camera fixed to a standing robot, step k of frame t is the current state of frame t + k.
    for side, h in (("left", 0), ("right", 1)):
        tr = actions[..., indices(side, "transl")]
        assert np.allclose(tr[:-1, 0], transl[1:, h], atol=1e-6)
        assert np.allclose(tr[:-5, 4], transl[5:, h], atol=1e-6)
        assert np.allclose(tr[-1, :], transl[-1, h], atol=1e-6)  # held past the end (and masked)
    # PCA comes from the fit; only the default 6 components are fitted.
    pca = actions[..., indices("right", "pca")]
    assert np.abs(pca[..., :6]).max() > 0 and np.all(pca[..., 6:] == 0)


def test_converted_wrist_matches_the_simulator_and_is_visible(twin):
    """The converter's kinematics (Pinocchio FK + the description's camera mount) agree with MuJoCo's camera and
    hand bodies, and the right wrist projects into the image once the expert reaches for the box."""
    root, meta, hands, _ = twin
    samples = list(DatasetReader(root / "dataset").iter_samples())
    rec = read_episode_bag(root / "push_box_0", read_images=False)
    c = rec.camera_info
    for h, side in enumerate(("left", "right")):
        wrist = np.stack([s.proprio_translation[h] for s in samples]) + hands[side].root_offset.numpy()
        assert np.abs(wrist - meta["_truth"][f"ee_cam_{side}"]).max() < 1e-6  # float32 storage; FK agrees to 1e-12
    p = np.stack([s.proprio_translation[1] for s in samples]) + hands["right"].root_offset.numpy()
    u, v = c["cx"] + c["fx"] * p[:, 0] / p[:, 2], c["cy"] + c["fy"] * p[:, 1] / p[:, 2]
    inside = (p[:, 2] > 0) & (u >= 0) & (u < c["width"]) & (v >= 0) & (v < c["height"])
    # At rest the right wrist is just below the image (v ~ 76 of 72); from tick ~10 on the hand is in view.
    assert inside[20:].all() and inside.mean() > 0.8, (u, v)


def test_fit_residual_is_reported(twin):
    *_, (report,) = twin
    for side in ("left", "right"):
        # Measured: mean ~45 mm, max ~62 mm (stand-in hand vs Inspire fingertips at 1.5x; see docs/training_data.md).
        assert 0 < report.fit_residual_mean_mm[side] < 80 and report.fit_residual_max_mm[side] < 150, report


def test_cli(tmp_path, twin, capsys):
    root, *_ = twin
    out = subprocess.run([str(Path(sys.executable).parent / "egovla-convert-bags"), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "rosbag2 MCAP" in out.stdout and "--out" in out.stdout
    capsys.readouterr()
    assert convert_main([str(tmp_path / "missing"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'missing'}: not a folder" in err
    with pytest.raises(SystemExit) as exc:
        convert_main(["--out", str(tmp_path / "ds2")])
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert convert_main([str(root / "push_box_0"), "--out", str(tmp_path / "ds3"), "--hand", "standin",
                         "--image-size", "36", "64", "--fit-iterations", "20", "--no-fit-retry"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["samples"] == TICKS and summary["frames_per_s"] > 0
    assert next(DatasetReader(tmp_path / "ds3").iter_samples()).frames.shape == (6, 36, 64, 3)
