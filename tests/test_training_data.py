"""Training data: sample schema, Parquet round trip, streaming loader sharding/shuffling, camera-frame labels.

Frames are tiny (32x32) so the whole file runs in seconds. The PNG round trip is exact; the JPEG round trip is
checked against a tolerance (mean absolute error < 2, max < 16 grey levels on smooth images, quality 90).
"""

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from egovla_training.data import (
    DatasetFormatError,
    DatasetReader,
    DatasetWriter,
    EpisodeLabels,
    Sample,
    SampleError,
    SampleStream,
    collate_samples,
    decode_frame,
    encode_frame,
    future_indices,
    future_points_in_current_camera,
    future_poses_in_current_camera,
    history_frame_indices,
    points_to_current_camera,
    to_current_camera,
    validate_sample,
)
from egovla_training.hands import HandModelMismatchError

HAND = "standin:test"
SPACING = 3
SIZE = 32


def _frames(num_frames, seed):
    """Smooth images whose brightness encodes the frame index (survives JPEG)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = np.stack([x * 2, y * 2, (x + y)], -1).astype(float)  # (32, 32, 3) gradient
    return np.stack([np.clip(base + (7 * i + seed) % 160, 0, 255) for i in range(num_frames)]).astype(np.uint8)


def _labels(frame_index, seed):
    n = len(frame_index)
    rng = np.random.default_rng(seed)
    return EpisodeLabels(
        frame_index=np.asarray(frame_index), instruction=[f"task {seed} step {t}" for t in frame_index],
        proprio_translation=rng.normal(size=(n, 2, 3)), proprio_rotation=rng.normal(size=(n, 2, 3)),
        proprio_fingertips=rng.normal(size=(n, 2, 5, 3)), proprio_mask=rng.random((n, 2)) > 0.2,
        actions=rng.normal(size=(n, 30, 48)), action_mask=rng.random((n, 30, 2)) > 0.2)


def _write(root, episodes=((20, 0), (9, 1), (14, 2)), codec="png", hand=HAND, max_frames=20, every=1):
    """A dataset of episodes (num_frames, seed); returns {(episode, frame): (labels, frames)} for checking."""
    expected = {}
    with DatasetWriter(root, hand_model=hand, fps=30, history_spacing=SPACING, image_codec=codec,
                       max_frames_per_shard=max_frames) as w:
        for n, seed in episodes:
            frames, labels = _frames(n, seed), _labels(range(0, n, every), seed)
            src = "robot_sim" if seed % 2 else "hot3d"
            w.add_episode(f"ep{seed}", frames, labels, source=src, embodiment="h1_inspire" if seed % 2 else "human")
            for s, t in enumerate(labels.frame_index):
                expected[(f"ep{seed}", int(t))] = (labels, s, frames)
    return expected


def _check_sample(sample, expected, frame_tol=0):
    labels, s, frames = expected[(sample.episode, sample.frame_index)]
    validate_sample(sample)
    idx, mask = history_frame_indices(sample.frame_index, SPACING)
    assert np.array_equal(sample.frame_mask, mask)
    err = np.abs(sample.frames.astype(int) - frames[idx].astype(int))
    assert err.max() <= frame_tol and (frame_tol == 0 or err.mean() < 2)
    assert sample.instruction == labels.instruction[s] and sample.hand_model == HAND
    for name in ("proprio_translation", "proprio_rotation", "proprio_fingertips", "actions"):
        assert np.array_equal(getattr(sample, name), getattr(labels, name)[s].astype(np.float32))
    assert np.array_equal(sample.proprio_mask, labels.proprio_mask[s])
    assert np.array_equal(sample.action_mask, labels.action_mask[s])


def _sample(**over):
    rng = np.random.default_rng(0)
    fields = dict(frames=np.zeros((6, 8, 8, 3), np.uint8), frame_mask=np.ones(6, bool), instruction="flip the mug",
                  proprio_translation=np.zeros((2, 3), np.float32), proprio_rotation=np.zeros((2, 3), np.float32),
                  proprio_fingertips=np.zeros((2, 5, 3), np.float32), proprio_mask=np.ones(2, bool),
                  actions=rng.normal(size=(30, 48)).astype(np.float32), action_mask=np.ones((30, 2), bool),
                  source="hot3d", embodiment="human", hand_model=HAND, episode="e", frame_index=3)
    fields.update(over)
    return Sample(**fields)


# -- schema ------------------------------------------------------------------------------------------------------

def test_history_indices_oldest_first_current_last():
    idx, mask = history_frame_indices(13, 6)  # wanted -17, -11, -5, 1, 7, 13
    assert idx.tolist() == [1, 1, 1, 1, 7, 13] and mask.tolist() == [False, False, False, True, True, True]
    idx, mask = history_frame_indices(0, 6)
    assert idx.tolist() == [0] * 6 and mask.tolist() == [False] * 5 + [True]
    assert history_frame_indices(30, 6)[0].tolist() == [0, 6, 12, 18, 24, 30]


@pytest.mark.parametrize("over, words", [
    (dict(actions=np.zeros((30, 48))), ["'actions'", "float32", "(30, 48)", "float64"]),
    (dict(proprio_fingertips=np.zeros((2, 4, 3), np.float32)), ["'proprio_fingertips'", "(2, 5, 3)", "(2, 4, 3)"]),
    (dict(frames=np.zeros((5, 8, 8, 3), np.uint8)), ["'frames'", "(6, 'any', 'any', 3)"]),
    (dict(action_mask=[[True, True]] * 30), ["'action_mask'", "list"]),
    (dict(proprio_rotation=np.array([[0, np.nan, 0], [0, 0, 0]], np.float32)), ["'proprio_rotation'", "finite",
                                                                                  "nan", "[0, 1]"]),
    (dict(frame_mask=np.array([True] * 5 + [False])), ["'frame_mask'", "current frame"]),
    (dict(embodiment=""), ["'embodiment'", "non-empty"]),
    (dict(instruction=None), ["'instruction'", "expected str"]),
    (dict(frame_index=-1), ["'frame_index'", "-1"]),
])
def test_validate_sample_names_field_and_expectation(over, words):
    validate_sample(_sample())
    with pytest.raises(SampleError) as err:
        validate_sample(_sample(**over))
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_collate_batches_tensors_and_lists():
    batch = collate_samples([_sample(), _sample(instruction="b", frame_index=4)])
    assert batch["frames"].shape == (2, 6, 8, 8, 3) and batch["frames"].dtype == torch.uint8
    assert batch["actions"].shape == (2, 30, 48) and batch["actions"].dtype == torch.float32
    assert batch["action_mask"].dtype == torch.bool and batch["frame_index"].tolist() == [3, 4]
    assert batch["instruction"] == ["flip the mug", "b"] and batch["hand_model"] == [HAND, HAND]
    with pytest.raises(SampleError, match="image_size"):
        collate_samples([_sample(), _sample(frames=np.zeros((6, 4, 8, 3), np.uint8))])


# -- storage -----------------------------------------------------------------------------------------------------

def test_png_round_trip_is_exact_and_files_are_standard_parquet(tmp_path):
    expected = _write(tmp_path / "ds", every=2)
    reader = DatasetReader(tmp_path / "ds")
    samples = list(reader.iter_samples())
    assert len(samples) == len(reader) == len(expected) == 10 + 5 + 7
    for s in samples:
        _check_sample(s, expected)
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["hand_model"] == HAND and meta["history_spacing_frames"] == SPACING and meta["fps"] == 30
    assert meta["counts"]["samples"] == 22 and meta["counts"]["episodes"] == 3
    assert meta["sources"]["hot3d"]["episodes"] == 2
    assert meta["sources"]["robot_sim"]["embodiments"] == ["h1_inspire"]
    assert meta["counts"]["shards"] == 2  # 20 frames max per shard; episodes are never split
    # Plain pyarrow reads both tables. Frames are stored once, and only if shown: samples at even frames with
    # spacing 3 never show frames 17 and 19 of ep0.
    frames = pq.read_table(tmp_path / "ds" / meta["shards"][0]["frames_file"])
    assert frames.column("frame_index").to_pylist() == [i for i in range(20) if i not in (17, 19)]
    assert b"Image" in frames.schema.metadata[b"huggingface"]
    table = pq.read_table(tmp_path / "ds" / meta["shards"][0]["samples_file"])
    assert table.num_rows == 10 and len(table.column("actions")[0].as_py()) == 30


def test_jpeg_round_trip_within_tolerance(tmp_path):
    expected = _write(tmp_path / "ds", episodes=((12, 4),), codec="jpeg")
    samples = list(DatasetReader(tmp_path / "ds").iter_samples())
    assert len(samples) == 12
    for s in samples:
        _check_sample(s, expected, frame_tol=16)


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_decode_resizes_to_height_width(codec):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = 200  # left half bright
    out = decode_frame(encode_frame(frame, codec), (12, 20))
    assert out.shape == (12, 20, 3) and out.dtype == np.uint8
    assert out[:, :8].mean() > 180 and out[:, 12:].mean() < 20
    assert decode_frame(encode_frame(frame, codec)).shape == (48, 64, 3)


def test_writer_rejects_bad_labels_and_frames(tmp_path):
    with DatasetWriter(tmp_path / "ds", hand_model=HAND, fps=30, history_spacing=SPACING) as w:
        bad = _labels(range(5), 0)
        bad.actions = bad.actions[:, :, :47]
        with pytest.raises(SampleError, match=r"'actions'.*\(5, 30, 48\)"):
            w.add_episode("a", _frames(5, 0), bad, source="s", embodiment="human")
        with pytest.raises(SampleError, match="'frame_index'.*0..4"):
            w.add_episode("a", _frames(5, 0), _labels([0, 5], 0), source="s", embodiment="human")
        with pytest.raises(SampleError, match="uint8"):
            w.add_episode("a", _frames(5, 0).astype(float), _labels(range(5), 0), source="s", embodiment="human")
        w.add_episode("a", _frames(5, 0), _labels(range(5), 0), source="s", embodiment="human")
        with pytest.raises(ValueError, match="already added"):
            w.add_episode("a", _frames(5, 0), _labels(range(5), 0), source="s", embodiment="human")
    with pytest.raises(FileExistsError):
        DatasetWriter(tmp_path / "ds", hand_model=HAND, fps=30, history_spacing=SPACING)


def test_malformed_files_name_the_path(tmp_path):
    root = tmp_path / "ds"
    _write(root)
    meta = json.loads((root / "meta.json").read_text())
    bad = root / meta["shards"][1]["frames_file"]
    bad.write_bytes(b"not parquet at all")
    stream = SampleStream(root, shuffle=False)
    with pytest.raises(DatasetFormatError, match=str(bad)):
        list(stream)
    (root / "meta.json").write_text("{broken")
    with pytest.raises(DatasetFormatError, match=str(root / "meta.json")):
        DatasetReader(root)
    (root / "meta.json").unlink()
    with pytest.raises(DatasetFormatError, match="meta.json: missing"):
        SampleStream(root)


def test_row_group_mismatch_is_reported(tmp_path):
    root = tmp_path / "ds"
    _write(root)
    meta = json.loads((root / "meta.json").read_text())
    meta["shards"][0]["episodes"][0]["samples"] = 99
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetFormatError, match=r"samples/shard-00000.parquet: episode 'ep0': 20 rows"):
        list(DatasetReader(root).iter_samples())


# -- loader ------------------------------------------------------------------------------------------------------

def _keys(batches):
    return [(e, int(f)) for b in batches for e, f in zip(b["episode"], b["frame_index"])]


def test_loader_two_workers_exactly_once_and_deterministic(tmp_path):
    episodes = tuple((n, seed) for seed, n in enumerate((11, 7, 13, 5, 9, 8)))
    expected = _write(tmp_path / "ds", episodes=episodes, codec="jpeg", max_frames=16)
    stream = SampleStream(tmp_path / "ds", seed=3, shuffle_buffer=8)
    loader = DataLoader(stream, batch_size=4, num_workers=2, collate_fn=collate_samples, persistent_workers=True)
    epoch0 = _keys(loader)
    stream.set_epoch(1)  # reaches the persistent workers through shared memory
    epoch1 = _keys(loader)
    for keys in (epoch0, epoch1):
        assert Counter(keys) == Counter(expected.keys()) and len(keys) == len(expected) == 53
    assert epoch0 != epoch1
    again = SampleStream(tmp_path / "ds", seed=3, shuffle_buffer=8)
    assert _keys(DataLoader(again, batch_size=4, num_workers=2, collate_fn=collate_samples)) == epoch0
    other_seed = SampleStream(tmp_path / "ds", seed=4, shuffle_buffer=8)
    assert [(s.episode, s.frame_index) for s in other_seed] != epoch0


def test_worker_and_rank_shards_are_disjoint_and_complete(tmp_path):
    episodes = tuple((n, seed) for seed, n in enumerate((6, 5, 7, 4, 6, 5, 3)))
    expected = _write(tmp_path / "ds", episodes=episodes, max_frames=10)
    seen = []
    for rank in range(2):
        stream = SampleStream(tmp_path / "ds", seed=1, rank=rank, world_size=2, shuffle_buffer=4, image_size=16)
        units = [stream.worker_units(5, w, 3) for w in range(3)]
        flat = [ref.episode for u in units for _, ref in u]
        seen.append(flat)
        assert len(flat) == len(set(flat))
        stream.set_epoch(5)
        samples = list(stream)  # in-process: one worker, this rank's share
        assert all(s.frames.shape == (6, 16, 16, 3) for s in samples)
        assert {s.episode for s in samples} == {r.episode for _, r in stream.worker_units(5, 0, 1)}
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted({e for e, _ in expected})


def test_unshuffled_stream_matches_reader_order(tmp_path):
    expected = _write(tmp_path / "ds")
    keys = [(s.episode, s.frame_index) for s in SampleStream(tmp_path / "ds", shuffle=False)]
    assert keys == list(expected.keys())


def test_hand_model_mixing_is_refused(tmp_path):
    _write(tmp_path / "a", episodes=((4, 0),))
    _write(tmp_path / "b", episodes=((4, 0),), hand=HAND + "-other")
    with pytest.raises(HandModelMismatchError, match="hand model"):
        SampleStream([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(HandModelMismatchError):
        SampleStream(tmp_path / "a", hand_model="mano:123456789abc")
    assert SampleStream(tmp_path / "a", hand_model=HAND).num_samples == 4


# -- camera frame ----------------------------------------------------------------------------------------------

def _pose(rot, xyz):
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rot, xyz
    return t


RZ90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 deg about z: camera x axis = world y


def test_future_indices_hold_the_last_frame():
    assert future_indices(5, 100).tolist() == list(range(6, 36))
    assert future_indices(0, 10).tolist() == list(range(1, 10)) + [9] * 21
    assert future_indices(9, 10).tolist() == [9] * 30  # no future: the current frame (index 0)
    assert future_indices(0, 100, steps=3, stride=2).tolist() == [2, 4, 6]
    assert future_indices(0, 6, steps=4, stride=2).tolist() == [2, 4, 4, 4]  # future array [0, 2, 4]
    with pytest.raises(ValueError, match="outside"):
        future_indices(10, 10)


def test_pose_in_current_camera_by_hand():
    t_world_cam = _pose(RZ90, [1, 0, 0])
    t_world_wrist = _pose(np.eye(3), [1, 1, 0.5])
    out = to_current_camera(t_world_cam, t_world_wrist)
    # The wrist is 1 m along world y from the camera = along the camera's x axis; its rotation is RZ90^T.
    assert np.allclose(out[:3, 3], [1, 0, 0.5])
    assert np.allclose(out[:3, :3], [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    assert np.allclose(points_to_current_camera(t_world_cam, np.array([[1, 0, 2], [0, 0, 0]])),
                       [[0, 0, 2], [0, 1, 0]])
    assert torch.allclose(to_current_camera(torch.as_tensor(t_world_cam), torch.as_tensor(t_world_wrist)),
                          torch.as_tensor(out))


def test_future_labels_use_the_camera_of_the_current_frame():
    n = 40
    # The camera slides +0.1 m/frame along world x; the wrist rises 0.01 m/frame along world z.
    t_world_cam = np.stack([_pose(np.eye(3), [0.1 * i, 0, 0]) for i in range(n)])
    t_world_wrist = np.stack([_pose(np.eye(3), [0, 0, 0.01 * i]) for i in range(n)])
    labels = future_poses_in_current_camera(t_world_cam, t_world_wrist, t=20)  # (30, 4, 4)
    k = np.minimum(np.arange(1, 31), n - 1 - 20)
    assert np.allclose(labels[:, 0, 3], -2.0)  # the camera at t = 20 (x = 2 m), not the future camera
    assert np.allclose(labels[:, 2, 3], 0.01 * (20 + k))
    tips = np.zeros((n, 5, 3))
    tips[:, :, 1] = np.arange(n)[:, None]
    pts = future_points_in_current_camera(t_world_cam, tips, t=20)
    assert pts.shape == (30, 5, 3) and np.allclose(pts[:, :, 0], -2.0) and np.allclose(pts[:, 0, 1], 20 + k)
