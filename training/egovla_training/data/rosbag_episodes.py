"""Robot demonstrations as rosbag2 episodes (MCAP storage): writing and reading, without rclpy.

One episode = one rosbag2 folder (``metadata.yaml`` + one ``.mcap`` file), written through the ``rosbags``
library at rosbag2 metadata version 9 with the ``mcap`` storage plugin: ``ros2 bag info``/``play`` read it, and so
do the independent ``mcap`` / ``mcap_ros2`` readers. Message definitions are the ROS 2 Kilted ones (``rosbags``
typestore ``ROS2_KILTED``), i.e. the PyPI wheels' types; the wire format is CDR, identical to what rclpy's
``serialize_message`` produces, so a ROS recorder node can hand its serialised messages to ``write_raw`` (which
checks them against the topic's type and drops the trailing bytes rclpy appends).

Topics (standard message types only; ``TOPICS``):

=============================  ====================================  ===================================================
topic                          type                                  content
=============================  ====================================  ===================================================
``/ego_camera/image_raw``      ``sensor_msgs/msg/Image``             head camera, ``rgb8`` (``bgr8`` is read too)
``/ego_camera/camera_info``    ``sensor_msgs/msg/CameraInfo``        intrinsics of those images (pixels)
``/joint_states``              ``sensor_msgs/msg/JointState``        all joints, URDF names, rad
``/joint_command``             ``sensor_msgs/msg/JointState``        position targets by name (any subset), rad
``/egovla/action_chunk``       ``trajectory_msgs/msg/JointTrajectory``  optional: 30 points x 48 ``ACTION_NAMES``,
                                                                     ``time_from_start`` k/30 s
``/egovla/instruction``        ``std_msgs/msg/String``               language instruction
``/egovla/task_status``        ``diagnostic_msgs/msg/DiagnosticStatus``  name = task id; values: ``success`` "0"/"1",
                                                                     ``progress``, one entry per subtask flag
``/clock``                     ``rosgraph_msgs/msg/Clock``           simulation time
=============================  ====================================  ===================================================

Time stamps are nanoseconds. For the stamped types (Image, CameraInfo, JointState, JointTrajectory) the reader
returns the **header** stamps (the time of the observation, sim time in the twin), for the others the bag's log
time (``/clock``: its value). The convenience writers use one stamp for both.

Episode metadata (``task``, ``instruction``, ``split``, ``placement_index``, ``seed``, ``embodiment`` such as
``"h1_inspire"``, ``source`` such as ``"twin_scripted"`` or ``"teleop"``, ``success``, and anything else that is
JSON) is stored as one JSON string under the key ``egovla.episode`` of the bag's ``custom_data`` in
``metadata.yaml`` (rosbag2's own place for user data; ``ros2 bag info`` ignores it, rosbag2 keeps it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..action_space import ACTION_NAMES, CHUNK_STEPS, CONTROL_HZ

try:  # the library is a dependency (requirements.txt); the message below names it if an install lacks it
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
except ImportError as _err:  # pragma: no cover - exercised only on a broken install
    raise ImportError("egovla_training.data.rosbag_episodes needs the 'rosbags' package "
                      "(pip install -r requirements.txt)") from _err

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
METADATA_KEY = "egovla.episode"  # custom_data key holding the episode metadata as JSON
REQUIRED_METADATA = ("task", "embodiment", "source")
STANDARD_METADATA = ("task", "instruction", "split", "placement_index", "seed", "embodiment", "source", "success")

IMAGE_TOPIC = "/ego_camera/image_raw"
CAMERA_INFO_TOPIC = "/ego_camera/camera_info"
JOINT_STATES_TOPIC = "/joint_states"
JOINT_COMMAND_TOPIC = "/joint_command"
ACTION_CHUNK_TOPIC = "/egovla/action_chunk"
INSTRUCTION_TOPIC = "/egovla/instruction"
TASK_STATUS_TOPIC = "/egovla/task_status"
CLOCK_TOPIC = "/clock"

TOPICS: dict[str, str] = {
    IMAGE_TOPIC: "sensor_msgs/msg/Image",
    CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
    JOINT_STATES_TOPIC: "sensor_msgs/msg/JointState",
    JOINT_COMMAND_TOPIC: "sensor_msgs/msg/JointState",
    ACTION_CHUNK_TOPIC: "trajectory_msgs/msg/JointTrajectory",
    INSTRUCTION_TOPIC: "std_msgs/msg/String",
    TASK_STATUS_TOPIC: "diagnostic_msgs/msg/DiagnosticStatus",
    CLOCK_TOPIC: "rosgraph_msgs/msg/Clock",
}
REQUIRED_TOPICS = (IMAGE_TOPIC, JOINT_STATES_TOPIC)
# /egovla/task_status values that are bookkeeping of the simulator bridge, not subtask flags
STATUS_INFO_KEYS = frozenset({"episode", "tick", "global_tick", "stamp_ns", "missed_ticks", "stale_commands",
                              "placement_index", "mode", "stopped", "failure"})
CAMERA_FRAME_ID = "head_camera_optical_frame"

_T = TYPESTORE.types


class EpisodeBagError(ValueError):
    """An episode bag is missing, malformed or incomplete; the message starts with the bag's path."""


def _stamp(ns: int):
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"time stamps must be >= 0 ns, got {ns}")
    return _T["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _header(ns: int, frame_id: str = ""):
    return _T["std_msgs/msg/Header"](stamp=_stamp(ns), frame_id=frame_id)


def _ns(t) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def deserialize_cdr(raw: bytes | memoryview, msgtype: str) -> tuple[object, int]:
    """CDR bytes -> (message, bytes used), ignoring trailing bytes after the message.

    rclpy's ``serialize_message`` (ROS 2 Kilted wheels) returns a buffer 8 bytes longer than the message, which
    ``rosbags``' own ``deserialize_cdr`` refuses ("size mismatch"); this reads the message with the same
    typestore-generated deserialiser and reports where it ended."""
    if len(raw) < 4 or bytes(raw[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise ValueError("not CDR: expected a 4-byte encapsulation header 00 00 or 00 01")
    msgdef = TYPESTORE.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    try:
        msg, pos = func(memoryview(raw)[4:], 0, msgdef.cls, TYPESTORE)
    except Exception as err:  # struct.error, UnicodeDecodeError, ValueError, IndexError on short data
        raise ValueError(f"cannot decode {msgtype} from {len(raw)} CDR bytes ({type(err).__name__}: {err})") from None
    return msg, 4 + pos


def _float_vector(name: str, values, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "1-D"
        raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    return arr


# -- writing -------------------------------------------------------------------------------------------------

class EpisodeBagWriter:
    """Write one episode as a rosbag2 folder with MCAP storage; use as a context manager.

    ``metadata`` must be JSON-serialisable and name at least ``task``, ``embodiment`` and ``source``
    (``STANDARD_METADATA`` lists the usual keys); ``update_metadata`` changes it until the bag is closed (e.g.
    ``success`` once the episode has ended). ``write_raw`` takes CDR bytes (rclpy ``serialize_message``); the
    ``write_*`` helpers build the messages from numpy/python values. Stamps are int nanoseconds."""

    def __init__(self, path: str | Path, *, metadata: Mapping):
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: already exists; an episode bag is written to a new folder")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{self.path.parent}: the parent folder of the bag does not exist")
        self._metadata: dict = {}
        self.update_metadata(**dict(metadata))
        missing = [k for k in REQUIRED_METADATA if not isinstance(self._metadata.get(k), str) or not self._metadata[k]]
        if missing:
            raise ValueError(f"episode metadata needs non-empty string values for {missing}")
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    # context management
    def __enter__(self) -> "EpisodeBagWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # keep what was recorded, marked as such in the metadata
            self._metadata["aborted"] = f"{exc_type.__name__}: {exc}"[:200]
        self.close()

    def close(self) -> None:
        """Write the metadata and close the bag (idempotent)."""
        if self._writer is None:
            return
        self._writer.set_custom_data(METADATA_KEY, json.dumps(self._metadata, sort_keys=True))
        self._writer.close()
        self._writer = None

    @property
    def metadata(self) -> dict:
        return dict(self._metadata)

    def update_metadata(self, **values) -> None:
        """Set metadata entries (JSON values)."""
        try:
            json.dumps(values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"episode metadata must be JSON-serialisable: {err}") from None
        self._metadata.update(values)

    # raw access
    def write_raw(self, topic: str, msgtype: str, stamp_ns: int, cdr_bytes: bytes | memoryview) -> None:
        """Write one CDR-serialised message (``rclpy.serialization.serialize_message`` output) at log time
        ``stamp_ns``. A topic of ``TOPICS`` must carry its type; other topics may carry any type known to the
        ROS 2 Kilted typestore, one type per topic."""
        if self._writer is None:
            raise RuntimeError(f"{self.path}: the bag is closed")
        expected = TOPICS.get(topic)
        if expected is not None and msgtype != expected:
            raise ValueError(f"topic {topic} carries {expected}, got {msgtype}")
        if msgtype not in _T:
            raise ValueError(f"unknown message type {msgtype!r} (not in the ROS 2 Kilted typestore)")
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise ValueError(f"topic {topic} already carries {conn.msgtype}, got {msgtype}")
        data = bytes(cdr_bytes)
        try:  # validates the bytes against the type, and drops trailing bytes (see ``deserialize_cdr``)
            _, used = deserialize_cdr(data, msgtype)
        except ValueError as err:
            raise ValueError(f"topic {topic}: {err}") from None
        data = data[:used]
        if int(stamp_ns) < 0:
            raise ValueError(f"time stamps must be >= 0 ns, got {stamp_ns}")
        self._writer.write(conn, int(stamp_ns), data)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_message(self, topic: str, stamp_ns: int, msg) -> None:
        """Serialise a ``rosbags`` message object of the topic's type and write it."""
        msgtype = TOPICS.get(topic, getattr(msg, "__msgtype__", None))
        self.write_raw(topic, msgtype, stamp_ns, TYPESTORE.serialize_cdr(msg, msgtype))

    # convenience writers
    def write_image(self, stamp_ns: int, rgb: np.ndarray, frame_id: str = CAMERA_FRAME_ID) -> None:
        """An RGB image (H, W, 3) uint8 as ``rgb8``."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise ValueError(f"image: expected a uint8 (H, W, 3) array, got {rgb.dtype} array of shape {rgb.shape}")
        h, w = rgb.shape[:2]
        msg = _T["sensor_msgs/msg/Image"](header=_header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                                           is_bigendian=0, step=3 * w,
                                           data=np.ascontiguousarray(rgb).reshape(-1))
        self.write_message(IMAGE_TOPIC, stamp_ns, msg)

    def write_camera_info(self, stamp_ns: int, *, width: int, height: int, fx: float, fy: float, cx: float,
                          cy: float, frame_id: str = CAMERA_FRAME_ID) -> None:
        """Pinhole intrinsics (pixels) of an undistorted ``width`` x ``height`` camera (``plumb_bob``, zero D)."""
        if width <= 0 or height <= 0 or not (fx > 0 and fy > 0):
            raise ValueError(f"camera_info: need positive size and focal lengths, got {width}x{height}, "
                             f"fx={fx}, fy={fy}")
        k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], float)
        p = np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], float)
        roi = _T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        msg = _T["sensor_msgs/msg/CameraInfo"](header=_header(stamp_ns, frame_id), height=int(height),
                                                width=int(width), distortion_model="plumb_bob", d=np.zeros(5),
                                                k=k, r=np.eye(3).reshape(-1), p=p, binning_x=0, binning_y=0, roi=roi)
        self.write_message(CAMERA_INFO_TOPIC, stamp_ns, msg)

    def _joint_state(self, topic, stamp_ns, names, positions, velocities=None, efforts=None):
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            raise ValueError(f"{topic}: joint names must be unique")
        positions = _float_vector(f"{topic} positions", positions, len(names))
        velocities = np.zeros(0) if velocities is None else _float_vector(f"{topic} velocities", velocities,
                                                                           len(names))
        efforts = np.zeros(0) if efforts is None else _float_vector(f"{topic} efforts", efforts, len(names))
        msg = _T["sensor_msgs/msg/JointState"](header=_header(stamp_ns), name=names, position=positions,
                                                velocity=velocities, effort=efforts)
        self.write_message(topic, stamp_ns, msg)

    def write_joint_state(self, stamp_ns: int, names: Sequence[str], positions, velocities=None,
                          efforts=None) -> None:
        """Measured joint positions (rad) by URDF name, optionally velocities (rad/s) and efforts (N m)."""
        self._joint_state(JOINT_STATES_TOPIC, stamp_ns, names, positions, velocities, efforts)

    def write_joint_command(self, stamp_ns: int, names: Sequence[str], positions) -> None:
        """Position targets (rad) for any subset of joints, by URDF name."""
        self._joint_state(JOINT_COMMAND_TOPIC, stamp_ns, names, positions)

    def write_instruction(self, stamp_ns: int, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"instruction must be a str, got {type(text).__name__}")
        self.write_message(INSTRUCTION_TOPIC, stamp_ns, _T["std_msgs/msg/String"](data=text))

    def write_task_status(self, stamp_ns: int, task: str, *, success: bool, progress: float,
                          subtasks: Mapping[str, float] | None = None, message: str = "") -> None:
        """Task flags as DiagnosticStatus: name = task id, values ``success`` "0"/"1", ``progress`` and one entry
        per subtask flag (``repr`` of the float)."""
        kv = _T["diagnostic_msgs/msg/KeyValue"]
        values = [kv(key="success", value="1" if success else "0"), kv(key="progress", value=repr(float(progress)))]
        for name, value in (subtasks or {}).items():
            if name in ("success", "progress"):
                raise ValueError(f"subtask flag name {name!r} clashes with a reserved key")
            values.append(kv(key=str(name), value=repr(float(value))))
        msg = _T["diagnostic_msgs/msg/DiagnosticStatus"](level=0, name=task, message=message, hardware_id="",
                                                          values=values)
        self.write_message(TASK_STATUS_TOPIC, stamp_ns, msg)

    def write_clock(self, stamp_ns: int) -> None:
        self.write_message(CLOCK_TOPIC, stamp_ns, _T["rosgraph_msgs/msg/Clock"](clock=_stamp(stamp_ns)))

    def write_action_chunk(self, stamp_ns: int, actions, names: Sequence[str] = ACTION_NAMES,
                           step_s: float = 1.0 / CONTROL_HZ) -> None:
        """A chunk (steps, len(names)) as a JointTrajectory: point k (0-based) at ``time_from_start`` (k+1) *
        ``step_s`` — the k-th future step of the chunk predicted at ``stamp_ns``."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != len(names):
            raise ValueError(f"action chunk: expected shape (steps, {len(names)}), got {actions.shape}")
        dur = _T["builtin_interfaces/msg/Duration"]
        pt = _T["trajectory_msgs/msg/JointTrajectoryPoint"]
        points = []
        for k, row in enumerate(actions):
            ns = int(round((k + 1) * step_s * 1e9))
            points.append(pt(positions=row.copy(), velocities=np.zeros(0), accelerations=np.zeros(0),
                             effort=np.zeros(0), time_from_start=dur(sec=ns // 1_000_000_000,
                                                                      nanosec=ns % 1_000_000_000)))
        msg = _T["trajectory_msgs/msg/JointTrajectory"](header=_header(stamp_ns, CAMERA_FRAME_ID),
                                                         joint_names=list(names), points=points)
        self.write_message(ACTION_CHUNK_TOPIC, stamp_ns, msg)


# -- reading -------------------------------------------------------------------------------------------------

@dataclass
class EpisodeRecording:
    """One episode bag, decoded. Stamps are int64 ns (header stamps for stamped types, module docstring).

    ``joint_positions`` (M, J) rad in ``joint_names`` order (every /joint_states message must name the same
    joints). ``command_positions`` (K, C) rad over the union ``command_names`` of all commands, NaN where a command
    did not name a joint. ``action_chunks`` (A, 30, 48) with their ``action_chunk_names``. ``status`` holds one
    dict per /egovla/task_status message (``task``, ``success`` bool, ``progress`` float, ``subtasks``)."""

    path: Path
    metadata: dict
    image_stamps_ns: np.ndarray  # (N,)
    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    joint_stamps_ns: np.ndarray  # (M,)
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray  # (M, J) rad
    command_stamps_ns: np.ndarray  # (K,)
    command_names: tuple[str, ...]
    command_positions: np.ndarray  # (K, C) rad, NaN = not commanded
    camera_info: dict | None  # width, height, fx, fy, cx, cy, frame_id (the first CameraInfo)
    camera_info_stamps_ns: np.ndarray
    instruction: str  # the last instruction message, else metadata["instruction"], else ""
    instruction_stamps_ns: np.ndarray
    status_stamps_ns: np.ndarray
    status: list = field(default_factory=list)
    clock_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    action_chunk_stamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    action_chunk_names: tuple[str, ...] = ()
    action_chunks: np.ndarray = field(default_factory=lambda: np.zeros((0, CHUNK_STEPS, len(ACTION_NAMES))))
    counts: dict = field(default_factory=dict)  # messages per topic, as stored

    @property
    def num_frames(self) -> int:
        return len(self.image_stamps_ns)


def read_bag_metadata(path: str | Path) -> dict:
    """The ``rosbag2_bagfile_information`` mapping of a bag's ``metadata.yaml``; ``EpisodeBagError`` if absent."""
    path = Path(path)
    meta_file = path / "metadata.yaml"
    if not path.is_dir():
        raise EpisodeBagError(f"{path}: not a folder (an episode bag is a rosbag2 folder)")
    if not meta_file.is_file():
        raise EpisodeBagError(f"{path}: no metadata.yaml (not a rosbag2 folder, or the recording did not finish)")
    try:
        info = yaml.safe_load(meta_file.read_text())["rosbag2_bagfile_information"]
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise EpisodeBagError(f"{path}: metadata.yaml is not rosbag2 metadata ({err})") from None
    if not isinstance(info, dict):
        raise EpisodeBagError(f"{path}: metadata.yaml is not rosbag2 metadata")
    return info


def _episode_metadata(path: Path, info: dict) -> dict:
    raw = (info.get("custom_data") or {}).get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise EpisodeBagError(f"{path}: custom_data[{METADATA_KEY!r}] is not JSON ({err})") from None
    if not isinstance(meta, dict):
        raise EpisodeBagError(f"{path}: custom_data[{METADATA_KEY!r}] is not a JSON object")
    return meta


def _decode_image(path: Path, msg) -> np.ndarray:
    enc = msg.encoding
    if enc not in ("rgb8", "bgr8"):
        raise EpisodeBagError(f"{path}: {IMAGE_TOPIC} has encoding {enc!r}; rgb8 or bgr8 expected")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < 3 * w or data.size != h * step:
        raise EpisodeBagError(f"{path}: {IMAGE_TOPIC} image of {w}x{h} has step {step} and {data.size} bytes")
    img = data.reshape(h, step)[:, :3 * w].reshape(h, w, 3)
    return np.ascontiguousarray(img[..., ::-1] if enc == "bgr8" else img)


def read_episode_bag(path: str | Path, *, read_images: bool = True) -> EpisodeRecording:
    """Read an episode bag written by ``EpisodeBagWriter`` or a ROS recorder with the same topics.

    Every problem (no folder, no metadata.yaml, unreadable or truncated MCAP, a required topic missing or of the
    wrong type, inconsistent joint names or image sizes) raises ``EpisodeBagError`` naming the path.
    ``read_images=False`` skips decoding the frames (``images`` is then empty with shape (N, 0, 0, 3))."""
    path = Path(path)
    info = read_bag_metadata(path)
    metadata = _episode_metadata(path, info)
    try:
        with Reader(path) as reader:
            by_topic = {c.topic: c for c in reader.connections}
            for topic, msgtype in TOPICS.items():
                if topic in by_topic and by_topic[topic].msgtype != msgtype:
                    raise EpisodeBagError(f"{path}: topic {topic} has type {by_topic[topic].msgtype}, "
                                          f"{msgtype} expected")
            missing = [t for t in REQUIRED_TOPICS if t not in by_topic]
            if missing:
                raise EpisodeBagError(f"{path}: required topic(s) {missing} missing (topics: {sorted(by_topic)})")
            wanted = [c for c in reader.connections if c.topic in TOPICS]
            buckets: dict[str, list] = {t: [] for t in TOPICS}
            for conn, log_ns, raw in reader.messages(connections=wanted):
                msg, _ = deserialize_cdr(raw, conn.msgtype)
                buckets[conn.topic].append((log_ns, msg))
    except EpisodeBagError:
        raise
    except Exception as err:  # rosbags ReaderError, MCAP decoding errors on a damaged file, struct errors ...
        raise EpisodeBagError(f"{path}: cannot be read as a rosbag2 MCAP bag ({type(err).__name__}: {err})") from err
    return _assemble(path, metadata, buckets, read_images)


def _assemble(path: Path, metadata: dict, b: dict, read_images: bool) -> EpisodeRecording:
    counts = {t: len(v) for t, v in b.items() if v}
    empty = [t for t in REQUIRED_TOPICS if not b[t]]
    if empty:
        raise EpisodeBagError(f"{path}: required topic(s) {empty} have no messages")
    images = sorted(b[IMAGE_TOPIC], key=lambda x: _ns(x[1].header.stamp))
    image_stamps = np.array([_ns(m.header.stamp) for _, m in images], np.int64)
    if read_images:
        frames = [_decode_image(path, m) for _, m in images]
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise EpisodeBagError(f"{path}: {IMAGE_TOPIC} images of different sizes {sorted(sizes)}")
        image_array = np.stack(frames)
    else:
        image_array = np.zeros((len(images), 0, 0, 3), np.uint8)

    states = sorted(b[JOINT_STATES_TOPIC], key=lambda x: _ns(x[1].header.stamp))
    names = tuple(states[0][1].name)
    positions = np.empty((len(states), len(names)))
    for i, (_, m) in enumerate(states):
        if tuple(m.name) != names:
            raise EpisodeBagError(f"{path}: {JOINT_STATES_TOPIC} message {i} names other joints than the first "
                                  "(every joint state must carry all joints in one order)")
        if len(m.position) != len(names):
            raise EpisodeBagError(f"{path}: {JOINT_STATES_TOPIC} message {i} has {len(m.position)} positions for "
                                  f"{len(names)} names")
        positions[i] = m.position

    commands = sorted(b[JOINT_COMMAND_TOPIC], key=lambda x: _ns(x[1].header.stamp))
    cmd_names: list[str] = []
    for _, m in commands:
        cmd_names += [n for n in m.name if n not in cmd_names]
    col = {n: i for i, n in enumerate(cmd_names)}
    cmd = np.full((len(commands), len(cmd_names)), np.nan)
    for i, (_, m) in enumerate(commands):
        if len(m.position) != len(m.name):
            raise EpisodeBagError(f"{path}: {JOINT_COMMAND_TOPIC} message {i} has {len(m.position)} positions for "
                                  f"{len(m.name)} names")
        cmd[i, [col[n] for n in m.name]] = m.position

    infos = sorted(b[CAMERA_INFO_TOPIC], key=lambda x: _ns(x[1].header.stamp))
    camera_info = None
    if infos:
        m = infos[0][1]
        camera_info = {"width": int(m.width), "height": int(m.height), "fx": float(m.k[0]), "fy": float(m.k[4]),
                       "cx": float(m.k[2]), "cy": float(m.k[5]), "frame_id": m.header.frame_id}

    instr = sorted(b[INSTRUCTION_TOPIC], key=lambda x: x[0])
    instruction = instr[-1][1].data if instr else str(metadata.get("instruction", ""))

    status_msgs = sorted(b[TASK_STATUS_TOPIC], key=lambda x: x[0])
    status = []
    for _, m in status_msgs:
        values = {kv.key: kv.value for kv in m.values}
        try:
            progress = float(values.get("progress", "nan"))
        except ValueError as err:
            raise EpisodeBagError(f"{path}: {TASK_STATUS_TOPIC} has a non-numeric progress ({err})") from None
        rest = {k: v for k, v in values.items() if k not in ("success", "progress") and k not in STATUS_INFO_KEYS}
        subtasks = {}
        for k, v in rest.items():
            try:
                subtasks[k] = float(v)
            except ValueError:
                raise EpisodeBagError(f"{path}: {TASK_STATUS_TOPIC} value {k}={v!r} is neither a number nor one of "
                                      f"the bookkeeping keys {sorted(STATUS_INFO_KEYS)}") from None
        status.append({"task": m.name, "success": values.get("success") == "1", "progress": progress,
                       "subtasks": subtasks, "message": m.message,
                       "info": {k: values[k] for k in STATUS_INFO_KEYS if k in values}})

    chunks = sorted(b[ACTION_CHUNK_TOPIC], key=lambda x: _ns(x[1].header.stamp))
    chunk_names: tuple[str, ...] = tuple(chunks[0][1].joint_names) if chunks else ()
    chunk_arr = np.zeros((len(chunks), CHUNK_STEPS, len(chunk_names) or len(ACTION_NAMES)))
    for i, (_, m) in enumerate(chunks):
        pts = np.array([p.positions for p in m.points], float)
        if tuple(m.joint_names) != chunk_names or pts.shape != (CHUNK_STEPS, len(chunk_names)):
            raise EpisodeBagError(f"{path}: {ACTION_CHUNK_TOPIC} message {i} is not {CHUNK_STEPS} points over the "
                                  "first chunk's names")
        chunk_arr[i] = pts

    clock = np.array(sorted(_ns(m.clock) for _, m in b[CLOCK_TOPIC]), np.int64)
    stamps = lambda items, header=True: np.array(  # noqa: E731
        [_ns(m.header.stamp) if header else t for t, m in items], np.int64)
    return EpisodeRecording(
        path=path, metadata=metadata, image_stamps_ns=image_stamps, images=image_array,
        joint_stamps_ns=stamps(states), joint_names=names, joint_positions=positions,
        command_stamps_ns=stamps(commands), command_names=tuple(cmd_names), command_positions=cmd,
        camera_info=camera_info, camera_info_stamps_ns=stamps(infos), instruction=instruction,
        instruction_stamps_ns=stamps(instr, False), status_stamps_ns=stamps(status_msgs, False), status=status,
        clock_ns=clock, action_chunk_stamps_ns=stamps(chunks), action_chunk_names=chunk_names,
        action_chunks=chunk_arr, counts=counts)


def stamp_to_seconds(ns) -> np.ndarray:
    """Stamps in ns (int or array) -> seconds (float64)."""
    return np.asarray(ns, dtype=np.float64) * 1e-9


__all__ = [
    "TOPICS", "REQUIRED_TOPICS", "METADATA_KEY", "STANDARD_METADATA", "EpisodeBagError", "EpisodeBagWriter",
    "EpisodeRecording", "read_episode_bag", "deserialize_cdr", "read_bag_metadata", "stamp_to_seconds", "TYPESTORE",
]
