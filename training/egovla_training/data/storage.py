"""Training data on disk: Parquet shards of whole episodes, every frame stored once as an encoded image.

Why this format
---------------
The architecture asks for a well-kept format (Hugging Face datasets / Parquet with encoded frames, or
LeRobotDataset). LeRobotDataset cannot be installed here without replacing our torch build, and its MP4 frames
need a video decoder per worker. Plain Parquet (through ``pyarrow``, the library ``datasets`` itself uses) is
read by every standard tool: ``pyarrow.parquet``, pandas, DuckDB, and ``datasets.load_dataset(root, "samples")``
(or ``"frames"``, shown as images because the frames table carries the ``datasets`` Image feature).

A sample's six images overlap heavily with its neighbours' (sample t and t+d share five frames). Storing each
sample's images would store every frame ~6 times; so frames live ONCE in a frames table, and samples refer to
frame rows. Frames are JPEG by default: on image-like 384x384 content a frame is ~8x smaller than PNG and decodes
~3x faster (``benchmarks/bench_data.py``, ``docs/training_data.md``); PNG is available for lossless data.

Layout (``root/``)::

    meta.json                      dataset metadata (below); a dataset without it is incomplete
    README.md                      a dataset card whose ``configs`` name the two tables for ``datasets``
    samples/shard-00000.parquet    one row per sample, one row group per episode
    frames/shard-00000.parquet     one row per stored frame, one row group per episode (same order)

``meta.json`` holds the schema version, the hand-model id, fps, history spacing, image codec, per-source and
total counts, and the list of shards with their episodes (row group i of both files = ``episodes[i]``). A shard
holds whole episodes, so a loader worker reads an episode's frames once and builds all its samples from them.

Samples table columns: ``episode`` str, ``frame_index`` int32, ``instruction``, ``source``, ``embodiment`` str,
``frame_rows`` (6,) int32 (rows of the episode's frames row group, oldest first), then every numeric field of
``schema.Sample`` as nested fixed-size lists of its shape (e.g. ``actions`` 30 x 48 float32). Frames table:
``episode`` str, ``frame_index`` int32, ``image`` struct {bytes, path} (the ``datasets`` Image layout).
Only frames some sample shows are stored.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ..action_space import ACTION_NAMES, CHUNK_STEPS
from .schema import ARRAY_FIELDS, HISTORY_FRAMES, Sample, SampleError, check_array, history_frame_indices

FORMAT_NAME = "egovla-training-samples"
SCHEMA_VERSION = 1
META_FILE = "meta.json"
CODECS = ("jpeg", "png")
# Per-sample numeric fields stored in the samples table (frames are stored in the frames table).
LABEL_FIELDS = tuple(n for n in ARRAY_FIELDS if n != "frames")
_LABEL_SHAPES = {n: ARRAY_FIELDS[n][1] for n in LABEL_FIELDS}


class DatasetFormatError(ValueError):
    """A dataset file is missing or malformed; the message starts with the file's path."""


# -- table schemas ---------------------------------------------------------------------------------------------

def _nested(value_type: pa.DataType, shape: tuple) -> pa.DataType:
    for size in reversed(shape):
        value_type = pa.list_(value_type, size)
    return value_type


_ARROW_SCALAR = {np.dtype(np.float32): pa.float32(), np.dtype(bool): pa.bool_()}
SAMPLES_SCHEMA = pa.schema(
    [("episode", pa.string()), ("frame_index", pa.int32()), ("instruction", pa.string()), ("source", pa.string()),
     ("embodiment", pa.string()), ("frame_rows", pa.list_(pa.int32(), HISTORY_FRAMES))]
    + [(n, _nested(_ARROW_SCALAR[ARRAY_FIELDS[n][0]], _LABEL_SHAPES[n])) for n in LABEL_FIELDS])
# The Image feature's metadata lets `datasets.load_dataset("parquet", ...)` decode the frames to PIL images.
_HF_FRAMES_FEATURES = {"info": {"features": {
    "episode": {"dtype": "string", "_type": "Value"}, "frame_index": {"dtype": "int32", "_type": "Value"},
    "image": {"_type": "Image"}}}}
FRAMES_SCHEMA = pa.schema(
    [("episode", pa.string()), ("frame_index", pa.int32()),
     ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))],
    metadata={"huggingface": json.dumps(_HF_FRAMES_FEATURES)})


def _column_to_numpy(column, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """A (nested) fixed-size-list column of n rows -> an (n, *shape) array."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    while pa.types.is_fixed_size_list(arr.type):
        arr = arr.flatten()  # respects slicing offsets, unlike .values
    return arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape((n,) + tuple(shape))


# -- frames ------------------------------------------------------------------------------------------------------

def encode_frame(frame: np.ndarray, codec: str, jpeg_quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if codec == "jpeg":
        Image.fromarray(frame).save(buf, "JPEG", quality=jpeg_quality)
    else:
        Image.fromarray(frame).save(buf, "PNG")
    return buf.getvalue()


def decode_frame(data: bytes, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Encoded image -> (H, W, 3) uint8 RGB, resized (aspect ratio not kept, as the authors do) to
    ``image_size`` = (height, width) when given. JPEGs much larger than the target are decoded at a reduced
    DCT scale first (``Image.draft``), cheaper than decoding every pixel and then shrinking."""
    img = Image.open(io.BytesIO(data))
    if image_size is not None and img.format == "JPEG":
        img.draft("RGB", (image_size[1], image_size[0]))
    if img.mode != "RGB":
        img = img.convert("RGB")
    if image_size is not None and img.size != (image_size[1], image_size[0]):
        img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
    return np.asarray(img)


# -- metadata ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EpisodeRef:
    """Where one episode lives: ``row_group`` of shard ``shard`` of the dataset at ``root``."""

    root: Path
    shard: int
    row_group: int
    episode: str
    source: str
    embodiment: str
    num_samples: int
    num_frames: int


def _require(cond, path, problem):
    if not cond:
        raise DatasetFormatError(f"{path}: {problem}")


def read_meta(root: str | Path) -> dict:
    """Read and check ``root/meta.json``."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise DatasetFormatError(f"{path}: missing; not a training dataset, or its writer was not closed")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetFormatError(f"{path}: not valid JSON ({err})") from err
    _require(isinstance(meta, dict) and meta.get("format") == FORMAT_NAME, path,
             f"'format' must be {FORMAT_NAME!r}")
    _require(meta.get("schema_version") == SCHEMA_VERSION, path,
             f"schema_version {meta.get('schema_version')!r} is not supported (this code reads {SCHEMA_VERSION})")
    for key, kind in (("hand_model", str), ("fps", (int, float)), ("history_spacing_frames", int),
                      ("image_codec", str), ("shards", list), ("action_names", list)):
        _require(isinstance(meta.get(key), kind), path, f"key {key!r} missing or of the wrong type")
    _require(meta["image_codec"] in CODECS, path, f"image_codec {meta['image_codec']!r} not in {CODECS}")
    _require(tuple(meta["action_names"]) == ACTION_NAMES, path,
             "action_names differ from egovla_training.action_space.ACTION_NAMES")
    _require(meta.get("history_frames") == HISTORY_FRAMES and meta.get("chunk_steps") == CHUNK_STEPS, path,
             f"expected history_frames {HISTORY_FRAMES} and chunk_steps {CHUNK_STEPS}")
    for i, shard in enumerate(meta["shards"]):
        ok = isinstance(shard, dict) and {"samples_file", "frames_file", "episodes"} <= set(shard) and all(
            isinstance(e, dict) and {"episode", "source", "embodiment", "samples", "frames"} <= set(e)
            for e in shard["episodes"])
        _require(ok, path, f"shard entry {i} is malformed")
    return meta


# -- writing -----------------------------------------------------------------------------------------------------

@dataclass
class EpisodeLabels:
    """The per-sample labels of one episode, stacked over its S samples (shapes as in ``schema.Sample``).

    Float fields may come in any real dtype (stored as float32); masks must be bool."""

    frame_index: np.ndarray  # (S,) int: each sample's current frame in the episode
    instruction: str | Sequence[str]  # one for the episode, or one per sample
    proprio_translation: np.ndarray  # (S, 2, 3)
    proprio_rotation: np.ndarray  # (S, 2, 3) axis-angle
    proprio_fingertips: np.ndarray  # (S, 2, 5, 3)
    proprio_mask: np.ndarray  # (S, 2) bool
    actions: np.ndarray  # (S, 30, 48)
    action_mask: np.ndarray  # (S, 30, 2) bool


class DatasetWriter:
    """Write a dataset episode by episode; ``close()`` (or leaving the ``with`` block) writes ``meta.json``.

    ``hand_model``: id of the hand model that produced the MANO labels (``HandModel.model_id``).
    ``history_spacing``: frames between history images (6 at 30 Hz = 0.2 s, the authors' training data).
    A shard is closed once it holds ``max_frames_per_shard`` stored frames (an episode is never split)."""

    def __init__(self, root: str | Path, *, hand_model: str, fps: float, history_spacing: int,
                 image_codec: str = "jpeg", jpeg_quality: int = 90, max_frames_per_shard: int = 2048):
        if image_codec not in CODECS:
            raise ValueError(f"image_codec must be one of {CODECS}, got {image_codec!r}")
        if history_spacing < 1 or fps <= 0 or max_frames_per_shard < 1 or not 1 <= jpeg_quality <= 100:
            raise ValueError("need history_spacing >= 1, fps > 0, max_frames_per_shard >= 1, jpeg_quality 1..100; "
                             f"got {history_spacing}, {fps}, {max_frames_per_shard}, {jpeg_quality}")
        self.root = Path(root)
        if (self.root / META_FILE).exists() or (self.root / "samples").exists():
            raise FileExistsError(f"{self.root}: already holds a dataset; write to a new directory")
        (self.root / "samples").mkdir(parents=True)
        (self.root / "frames").mkdir()
        self.meta = {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "hand_model": hand_model,
                     "fps": float(fps), "history_frames": HISTORY_FRAMES,
                     "history_spacing_frames": int(history_spacing), "chunk_steps": CHUNK_STEPS,
                     "action_names": list(ACTION_NAMES), "image_codec": image_codec,
                     "jpeg_quality": jpeg_quality if image_codec == "jpeg" else None, "shards": []}
        self.max_frames_per_shard = max_frames_per_shard
        self._jpeg_quality = jpeg_quality
        self._writers = None  # (samples ParquetWriter, frames ParquetWriter) of the open shard
        self._shard_frames = 0
        self._episodes: set[str] = set()

    def add_episode(self, episode: str, frames, labels: EpisodeLabels, *, source: str, embodiment: str) -> None:
        """Add one episode. ``frames``: anything with ``len()`` and ``frames[i]`` -> (H, W, 3) uint8 for the
        episode's frames 0..N-1 (an array, or a lazy video reader: only frames some sample shows are read)."""
        for name, value in (("episode", episode), ("source", source), ("embodiment", embodiment)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if episode in self._episodes:
            raise ValueError(f"episode {episode!r} was already added; episode names must be unique")
        cols, num_samples = self._check_labels(labels, len(frames))
        spacing = self.meta["history_spacing_frames"]
        slots = [history_frame_indices(int(t), spacing) for t in cols["frame_index"]]
        history = np.stack([idx for idx, _ in slots])  # (S, 6) frame indices
        masks = np.stack([mask for _, mask in slots])  # (S, 6)
        stored = np.unique(history)  # frame indices, ascending
        images, size = [], None
        for i in stored:
            frame = np.asarray(frames[int(i)])
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise SampleError(f"episode {episode!r} frame {i}: expected a uint8 (H, W, 3) image, "
                                  f"got {frame.dtype} array of shape {frame.shape}")
            if size is not None and frame.shape[:2] != size:
                raise SampleError(f"episode {episode!r} frame {i}: size {frame.shape[:2]} differs from the "
                                  f"episode's first stored frame {size}")
            size = frame.shape[:2]
            images.append(encode_frame(frame, self.meta["image_codec"], self._jpeg_quality))
        frames_table = pa.table({
            "episode": pa.array([episode] * len(stored), pa.string()),
            "frame_index": pa.array(stored, pa.int32()),
            "image": pa.array([{"bytes": b, "path": None} for b in images], FRAMES_SCHEMA.field("image").type),
        }, schema=FRAMES_SCHEMA)
        columns = {
            "episode": pa.array([episode] * num_samples, pa.string()),
            "frame_index": pa.array(cols["frame_index"], pa.int32()),
            "instruction": pa.array(cols["instruction"], pa.string()),
            "source": pa.array([source] * num_samples, pa.string()),
            "embodiment": pa.array([embodiment] * num_samples, pa.string()),
            "frame_rows": _fixed_lists(np.searchsorted(stored, history).astype(np.int32), (HISTORY_FRAMES,)),
            "frame_mask": _fixed_lists(masks, (HISTORY_FRAMES,)),
        }
        for name in LABEL_FIELDS:
            if name != "frame_mask":
                columns[name] = _fixed_lists(cols[name], _LABEL_SHAPES[name])
        samples_table = pa.table(columns, schema=SAMPLES_SCHEMA)
        self._write(episode, source, embodiment, samples_table, frames_table, size)

    def _check_labels(self, labels: EpisodeLabels, num_frames: int):
        frame_index = np.asarray(labels.frame_index)
        if frame_index.ndim != 1 or len(frame_index) == 0 or frame_index.dtype.kind not in "iu":
            raise SampleError(f"field 'frame_index': expected a non-empty 1-D int array, got "
                              f"{frame_index.dtype} array of shape {frame_index.shape}")
        if frame_index.min() < 0 or frame_index.max() >= num_frames:
            raise SampleError(f"field 'frame_index': values must be in 0..{num_frames - 1} (the episode has "
                              f"{num_frames} frames), got {frame_index.min()}..{frame_index.max()}")
        n = len(frame_index)
        cols = {"frame_index": frame_index}
        if isinstance(labels.instruction, str):
            cols["instruction"] = [labels.instruction] * n
        else:
            cols["instruction"] = list(labels.instruction)
            if len(cols["instruction"]) != n or not all(isinstance(s, str) for s in cols["instruction"]):
                raise SampleError(f"field 'instruction': expected a str or {n} str, got {labels.instruction!r:.80}")
        for name in LABEL_FIELDS:
            if name == "frame_mask":
                continue
            value = np.asarray(getattr(labels, name))
            if ARRAY_FIELDS[name][0].kind == "f" and value.dtype.kind in "fiu":
                value = value.astype(np.float32)
            check_array(name, value, leading=(n,))
            cols[name] = value
        return cols, n

    def _write(self, episode, source, embodiment, samples_table, frames_table, size):
        if self._writers is not None and self._shard_frames + frames_table.num_rows > self.max_frames_per_shard:
            self._close_shard()
        if self._writers is None:
            name = f"shard-{len(self.meta['shards']):05d}.parquet"
            self.meta["shards"].append({"samples_file": f"samples/{name}", "frames_file": f"frames/{name}",
                                        "episodes": []})
            self._writers = (pq.ParquetWriter(self.root / "samples" / name, SAMPLES_SCHEMA),
                             pq.ParquetWriter(self.root / "frames" / name, FRAMES_SCHEMA))
            self._shard_frames = 0
        self._writers[0].write_table(samples_table, row_group_size=samples_table.num_rows)
        self._writers[1].write_table(frames_table, row_group_size=frames_table.num_rows)
        self._shard_frames += frames_table.num_rows
        self._episodes.add(episode)
        self.meta["shards"][-1]["episodes"].append({
            "episode": episode, "source": source, "embodiment": embodiment, "samples": samples_table.num_rows,
            "frames": frames_table.num_rows, "image_size": list(size)})

    def _close_shard(self):
        for w in self._writers:
            w.close()
        self._writers = None

    def close(self) -> dict:
        """Finish the open shard and write ``meta.json`` (counts per source and in total). Returns the metadata."""
        if self._writers is not None:
            self._close_shard()
        episodes = [e for s in self.meta["shards"] for e in s["episodes"]]
        sources: dict[str, dict] = {}
        for e in episodes:
            s = sources.setdefault(e["source"], {"episodes": 0, "samples": 0, "frames": 0, "embodiments": []})
            s["episodes"] += 1
            s["samples"] += e["samples"]
            s["frames"] += e["frames"]
            if e["embodiment"] not in s["embodiments"]:
                s["embodiments"].append(e["embodiment"])
        self.meta["sources"] = sources
        self.meta["counts"] = {"shards": len(self.meta["shards"]), "episodes": len(episodes),
                               "samples": sum(e["samples"] for e in episodes),
                               "frames": sum(e["frames"] for e in episodes)}
        (self.root / META_FILE).write_text(json.dumps(self.meta, indent=1))
        (self.root / "README.md").write_text(_DATASET_CARD.format(**self.meta["counts"], hand_model=self.meta[
            "hand_model"], sources=", ".join(sorted(sources)) or "none"))
        return self.meta

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self._writers is not None:  # leave no meta.json: the dataset reads as incomplete
            self._close_shard()


# A Hugging Face dataset card: its `configs` let `datasets.load_dataset(root, "samples" | "frames")` find both
# tables (one `load_dataset` call over both would wrongly give them one schema).
_DATASET_CARD = """---
configs:
- config_name: samples
  data_files: samples/*.parquet
- config_name: frames
  data_files: frames/*.parquet
---
# EgoVLA training samples

{samples} samples from {episodes} episodes ({frames} stored frames, {shards} shards) of: {sources}.
Hand model: `{hand_model}`. Format, fields and metadata: `meta.json` and the EgoVLA project's
`docs/training_data.md`.
"""


def _fixed_lists(values: np.ndarray, shape: tuple) -> pa.Array:
    """(n, *shape) array -> nested fixed-size lists, built without copying through Python objects."""
    arr = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(shape):
        arr = pa.FixedSizeListArray.from_arrays(arr, size)
    return arr


# -- reading -------------------------------------------------------------------------------------------------------

@dataclass
class EpisodeData:
    """One episode as read from its row groups: label columns as arrays and the encoded frames."""

    ref: EpisodeRef
    hand_model: str
    columns: dict  # field -> (S, ...) array or list of str
    images: list  # encoded frames, indexed by the samples' frame_rows

    def __len__(self):
        return self.ref.num_samples

    def sample(self, i: int, frames: Sequence[np.ndarray]) -> Sample:
        """Sample ``i``, given its 6 decoded images (oldest first)."""
        c = self.columns
        return Sample(frames=np.stack(frames), instruction=c["instruction"][i], source=self.ref.source,
                      embodiment=self.ref.embodiment, hand_model=self.hand_model, episode=self.ref.episode,
                      frame_index=int(c["frame_index"][i]), **{n: c[n][i] for n in LABEL_FIELDS})


class DatasetReader:
    """Read one dataset directory: its metadata, its episodes, and their samples."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.episodes = [
            EpisodeRef(self.root, s, g, e["episode"], e["source"], e["embodiment"], int(e["samples"]),
                       int(e["frames"]))
            for s, shard in enumerate(self.meta["shards"]) for g, e in enumerate(shard["episodes"])]
        for shard in self.meta["shards"]:
            for key in ("samples_file", "frames_file"):
                path = self.root / shard[key]
                _require(path.is_file(), path, f"missing (listed in {self.root / META_FILE})")

    @property
    def hand_model(self) -> str:
        return self.meta["hand_model"]

    def __len__(self):
        return sum(e.num_samples for e in self.episodes)

    def read_episode(self, ref: EpisodeRef) -> EpisodeData:
        """Read one episode's samples and encoded frames; a malformed file raises ``DatasetFormatError``."""
        shard = self.meta["shards"][ref.shard]
        samples = _read_row_group(self.root / shard["samples_file"], ref, SAMPLES_SCHEMA, ref.num_samples)
        frames = _read_row_group(self.root / shard["frames_file"], ref, FRAMES_SCHEMA, ref.num_frames)
        columns = {"frame_index": samples.column("frame_index").to_numpy(),
                   "instruction": samples.column("instruction").to_pylist(),
                   "frame_rows": _column_to_numpy(samples.column("frame_rows"), np.dtype(np.int64),
                                                  (HISTORY_FRAMES,))}
        for name in LABEL_FIELDS:
            columns[name] = _column_to_numpy(samples.column(name), ARRAY_FIELDS[name][0], _LABEL_SHAPES[name])
        path = self.root / shard["samples_file"]
        _require(columns["frame_rows"].min() >= 0 and columns["frame_rows"].max() < ref.num_frames, path,
                 f"episode {ref.episode!r}: frame_rows point outside its {ref.num_frames} stored frames")
        images = frames.column("image").combine_chunks().field("bytes").to_pylist()
        return EpisodeData(ref, self.hand_model, columns, images)

    def iter_samples(self, image_size: tuple[int, int] | None = None) -> Iterator[Sample]:
        """Every sample in storage order, each frame decoded once per episode."""
        for ref in self.episodes:
            data = self.read_episode(ref)
            decoded = [decode_frame(b, image_size) for b in data.images]
            for i in range(len(data)):
                yield data.sample(i, [decoded[r] for r in data.columns["frame_rows"][i]])


def _read_row_group(path: Path, ref: EpisodeRef, schema: pa.Schema, expected_rows: int) -> pa.Table:
    try:
        pf = pq.ParquetFile(path)
        _require(pf.schema_arrow.remove_metadata().equals(schema.remove_metadata()), path,
                 f"columns {pf.schema_arrow.names} do not match the expected schema {schema.names} "
                 f"(schema_version {SCHEMA_VERSION})")
        _require(ref.row_group < pf.num_row_groups, path,
                 f"has {pf.num_row_groups} row groups, but meta.json lists episode {ref.episode!r} at row group "
                 f"{ref.row_group}")
        table = pf.read_row_group(ref.row_group)
    except (pa.ArrowException, OSError) as err:
        raise DatasetFormatError(f"{path}: cannot be read as Parquet ({err})") from err
    _require(table.num_rows == expected_rows, path, f"episode {ref.episode!r}: {table.num_rows} rows, meta.json "
             f"says {expected_rows}")
    episodes = table.column("episode").unique().to_pylist()
    _require(episodes == [ref.episode], path, f"row group {ref.row_group} holds episode(s) {episodes}, meta.json "
             f"says {ref.episode!r}")
    return table


def bytes_per_frame(root: str | Path) -> float:
    """Mean encoded size of a stored frame (from the frames files' sizes)."""
    reader = DatasetReader(root)
    total = sum((reader.root / s["frames_file"]).stat().st_size for s in reader.meta["shards"])
    return total / max(1, sum(e.num_frames for e in reader.episodes))
