"""Action chunks straight to and from their serialized form (CDR), without building message objects.

An action chunk (``trajectory_msgs/JointTrajectory``, 30 points x 48 positions, see ``egovla.msgs``) costs rclpy
about 0.19 ms to deserialize into 30 ``JointTrajectoryPoint`` objects and 0.2 ms to build and serialize, on the
control path of every tick. These functions read and write the same bytes with NumPy: rclpy deserializes the
encoder's output to the message ``chunk_to_msg`` builds (the bytes equal rclpy's own serialization except for
padding, which carries no data), and the decoder accepts anything rclpy serializes (velocities, accelerations or
efforts included) and refuses, with ``MessageError``, what is not a well-formed chunk. Publish the bytes with ``publisher.publish(data)``; receive them with a
``raw=True`` subscription.

Joint states (``sensor_msgs/JointState``: the simulator bridge's ``/joint_states``, every ``/joint_command``) go
the same way: ``encode_joint_state`` writes what rclpy would (about 30 us less per publish for the bridge's 50
joints than building and converting the message), ``decode_joint_state`` reads any serialized joint state (15-18 us
against rclpy's 45 us, which builds Python lists); a joint-name list seen before is recognised by its
bytes instead of being parsed again.

The layout is ROS 2's XCDR1 little-endian encoding: a 4-byte encapsulation header (0, 1, 0, 0), then each field
aligned to its own size (8 for doubles) counted from the end of that header; strings are a uint32 length that
includes a terminating NUL, then the bytes; sequences a uint32 count, then the elements. ``decode_joint_state``
hands any other encoding (big-endian, XCDR2) to rclpy's deserializer.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

from egovla_training.action_space import ACTION_NAMES, CHUNK_STEPS, CONTROL_HZ

from .msgs import MessageError

_HEADER = b"\x00\x01\x00\x00"  # CDR, little endian
_U32 = struct.Struct("<I")
_TIME = struct.Struct("<iI")


def _pad(n: int, align: int) -> int:
    return (-n) % align


def _string(out: bytearray, text: bytes):
    out += b"\x00" * _pad(len(out) - 4, 4)
    out += _U32.pack(len(text) + 1)
    out += text
    out += b"\x00"


def encode_chunk(chunk: np.ndarray, stamp_sec: int, stamp_nanosec: int, frame_id: str = "head_camera_optical",
                 names=ACTION_NAMES) -> bytes:
    """The serialized ``JointTrajectory`` of ``egovla.msgs.chunk_to_msg``: point ``i`` has the positions of row
    ``i`` and ``time_from_start = (i + 1) / 30 s``; no velocities, accelerations or efforts."""
    c = np.ascontiguousarray(chunk, dtype="<f8")
    if c.ndim != 2 or c.shape[1] != len(names):
        raise MessageError(f"a chunk must be (steps, {len(names)}), got {c.shape}")
    out = bytearray(_HEADER)
    out += _TIME.pack(int(stamp_sec), int(stamp_nanosec))
    _string(out, frame_id.encode())
    out += b"\x00" * _pad(len(out) - 4, 4)
    out += _name_block(names)[0].tobytes()  # the same bytes at any 4-aligned offset: built once
    out += b"\x00" * _pad(len(out) - 4, 4)
    out += _U32.pack(len(c))
    row_bytes = c.shape[1] * 8
    data = c.tobytes()
    for i in range(len(c)):
        out += b"\x00" * _pad(len(out) - 4, 4)
        out += _U32.pack(c.shape[1])
        if c.shape[1]:
            out += b"\x00" * _pad(len(out) - 4, 8)
            out += data[i * row_bytes:(i + 1) * row_bytes]
        out += b"\x00" * _pad(len(out) - 4, 4)
        out += b"\x00" * 12  # velocities, accelerations, effort: empty
        ns = int(round((i + 1) * 1e9 / CONTROL_HZ))
        out += _TIME.pack(ns // 1_000_000_000, ns % 1_000_000_000)
    return bytes(out)


def leading_stamp_ns(data: bytes) -> int:
    """The stamp (ns) a serialized message starts with: ``header.stamp`` of any message whose first field is a
    ``std_msgs/Header`` (Image, CameraInfo, JointState, JointTrajectory, ...), or a ``Clock``'s time. 0 if the bytes
    are too short."""
    if len(data) < 12:
        return 0
    sec, nanosec = struct.unpack_from("<iI" if data[1] == 1 else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec


class _Reader:
    def __init__(self, data: bytes, what: str = "chunk message"):
        self.data, self.pos, self.what = data, 4, what  # ``what``: how errors name the message

    def align(self, n: int):
        self.pos += _pad(self.pos - 4, n)

    def u32(self) -> int:
        self.align(4)
        if self.pos + 4 > len(self.data):
            raise MessageError(f"{self.what} truncated at byte {self.pos} of {len(self.data)}")
        (v,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def time(self) -> tuple[int, int]:
        self.align(4)
        if self.pos + 8 > len(self.data):
            raise MessageError(f"{self.what} truncated at byte {self.pos} of {len(self.data)}")
        v = _TIME.unpack_from(self.data, self.pos)
        self.pos += 8
        return v

    def string(self) -> str:
        n = self.u32()
        if n == 0 or self.pos + n > len(self.data) or self.data[self.pos + n - 1] != 0:
            raise MessageError(f"{self.what} has a malformed string at byte {self.pos}")
        text = self.data[self.pos:self.pos + n - 1].decode("utf-8", errors="replace")
        self.pos += n
        return text

    def doubles(self) -> tuple[int, int]:
        """(byte offset, count) of a sequence of doubles, skipped."""
        n = self.u32()
        if n:
            self.align(8)
        start = self.pos
        self.pos += 8 * n
        if self.pos > len(self.data):
            raise MessageError(f"{self.what} truncated: {n} doubles at byte {start} of {len(self.data)}")
        return start, n


_NAME_BLOCKS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _name_block(names) -> tuple[np.ndarray, np.ndarray]:
    """The serialized ``joint_names`` (count, then the strings) and which of its bytes are data, not padding (a
    serializer may leave anything there): the same bytes wherever the block starts, since it starts 4-aligned and
    holds nothing wider."""
    key = tuple(names)
    if key not in _NAME_BLOCKS:
        if len(_NAME_BLOCKS) >= 64:  # a program that sends ever new name lists must not grow this without end
            _NAME_BLOCKS.clear()
        out, data = bytearray(_HEADER), bytearray(b"\x01" * 4)
        out += _U32.pack(len(key))
        data += b"\x01" * 4
        for name in key:
            pad = _pad(len(out) - 4, 4)
            _string(out, name.encode())
            data += b"\x00" * pad
            data += b"\x01" * (len(out) - len(data))
        _NAME_BLOCKS[key] = (np.frombuffer(bytes(out[4:]), np.uint8), np.frombuffer(bytes(data[4:]), bool))
    return _NAME_BLOCKS[key]


def decode_chunk(data: bytes, steps: int = CHUNK_STEPS, names=ACTION_NAMES) -> tuple[tuple[int, int], np.ndarray]:
    """((stamp sec, nanosec), positions (steps, 48)) of a serialized chunk, with the checks of
    ``egovla.msgs.msg_to_chunk`` (names, step count, finite values), as ``MessageError``."""
    data = bytes(data)
    if len(data) < 4 or data[:2] != b"\x00\x01":
        raise MessageError("chunk message is not little-endian CDR")
    r = _Reader(data)
    stamp = r.time()
    r.string()  # frame_id
    r.align(4)
    block, is_data = _name_block(names)
    got = np.frombuffer(data, np.uint8, min(len(block), len(data) - r.pos), r.pos)
    if len(got) == len(block) and np.array_equal(got[is_data], block[is_data]):
        r.pos += len(block)
    else:
        got = [r.string() for _ in range(r.u32())]
        raise MessageError(f"chunk joint_names must be the {len(names)} action names in order ({names[0]} ... "
                           f"{names[-1]}), got {len(got)} names starting {got[:2]}")
    n_points = r.u32()
    if n_points != steps:
        raise MessageError(f"a chunk must have {steps} points, got {n_points}")
    out = _standard_points(data, r.pos, steps, len(names))
    if out is None:
        out = _points(r, steps, names)
    if not np.isfinite(out).all():
        step, index = np.argwhere(~np.isfinite(out))[0]
        raise MessageError(f"chunk has a non-finite value at step {step}, {names[index]}")
    return stamp, out


def _standard_points(data: bytes, start: int, steps: int, width: int) -> np.ndarray | None:
    """The positions (steps, width) read as one strided view when every point is what ``encode_chunk`` writes
    (``width`` positions, no velocities, accelerations or efforts), else None. ``start`` (an offset into ``data``)
    is point 0's position count. Each such point ends 4 bytes past an 8-byte boundary, so the next one needs no
    padding and the positions lie ``8 width + 24`` bytes apart from point 0 on."""
    first = start + 4 + _pad(start, 8)  # the payload starts at data[4], so data offsets align like payload ones + 4
    stride = 8 * width + 24
    end = first + stride * (steps - 1) + 8 * width + 20
    if end > len(data):  # (rclpy's serializer leaves a few hundred bytes after the message: ignored, as rclpy does)
        return None
    u32 = np.dtype("<u4")
    if _U32.unpack_from(data, start)[0] != width:
        return None
    if steps > 1 and (np.ndarray((steps - 1,), u32, data, first + stride - 4, (stride,)) != width).any():
        return None
    if np.ndarray((steps, 3), u32, data, first + 8 * width, (stride, 4)).any():
        return None
    return np.ndarray((steps, width), "<f8", data, first, (stride, 8)).copy()


def _points(r: _Reader, steps: int, names) -> np.ndarray:
    out = np.empty((steps, len(names)))
    for i in range(steps):
        start, n = r.doubles()
        if n != len(names):
            raise MessageError(f"every chunk point needs {len(names)} positions, point {i} has {n}")
        out[i] = np.frombuffer(r.data, "<f8", n, start)
        for _ in range(3):  # velocities, accelerations, effort
            r.doubles()
        r.time()
    if r.pos > len(r.data):
        raise MessageError("chunk message truncated")
    return out


# -- sensor_msgs/JointState -------------------------------------------------------------------------------------


class JointStateData(NamedTuple):
    """A decoded ``sensor_msgs/JointState``: stamp as (sec, nanosec), and float64 arrays (possibly empty)."""
    stamp: tuple[int, int]
    frame_id: str
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray

    @property
    def stamp_ns(self) -> int:
        return self.stamp[0] * 1_000_000_000 + self.stamp[1]


def _doubles(out: bytearray, values) -> None:
    v = np.ascontiguousarray(values, dtype="<f8").reshape(-1)
    out += b"\x00" * _pad(len(out) - 4, 4)
    out += _U32.pack(len(v))
    if len(v):
        out += b"\x00" * _pad(len(out) - 4, 8)
        out += v.tobytes()


def encode_joint_state(names, position, stamp_sec: int, stamp_nanosec: int, frame_id: str = "", velocity=(),
                       effort=()) -> bytes:
    """The serialized ``sensor_msgs/JointState`` with these fields (rclpy deserializes it to the message with the
    same values). Publish it with ``publisher.publish(data)`` on a ``JointState`` publisher."""
    out = bytearray(_HEADER)
    out += _TIME.pack(int(stamp_sec), int(stamp_nanosec))
    _string(out, frame_id.encode())
    out += b"\x00" * _pad(len(out) - 4, 4)
    out += _name_block(names)[0].tobytes()
    _doubles(out, position)
    _doubles(out, velocity)
    _doubles(out, effort)
    return bytes(out)


_SEEN_NAMES: list[tuple[tuple[str, ...], bytes, np.ndarray, np.ndarray]] = []  # recent name lists, newest first
_SEEN_NAMES_MAX = 32


def _known_names(data: bytes, start: int) -> tuple[tuple[str, ...], int] | None:
    """(names, block length) of a name list seen before that the bytes from ``start`` on spell (padding ignored),
    else None. The block's count and string lengths fix where every byte of it is."""
    for names, block, block_u8, is_data in _SEEN_NAMES:
        if data.startswith(block, start):  # a zero-padding sender (our encoder)
            return names, len(block)
        end = start + len(block)
        if end <= len(data) and np.array_equal(np.frombuffer(data, np.uint8, len(block), start)[is_data],
                                                block_u8[is_data]):
            return names, len(block)
    return None


def _remember_names(names: tuple[str, ...]) -> None:
    block_u8, is_data = _name_block(names)
    _SEEN_NAMES.insert(0, (names, block_u8.tobytes(), block_u8, is_data))
    del _SEEN_NAMES[_SEEN_NAMES_MAX:]


def decode_joint_state(data: bytes) -> JointStateData:
    """The fields of a serialized ``sensor_msgs/JointState``; ``MessageError`` if the bytes are not one."""
    data = bytes(data)
    if len(data) < 4:
        raise MessageError(f"joint state message has {len(data)} bytes")
    if data[:2] != b"\x00\x01":
        return _decode_joint_state_rclpy(data)
    r = _Reader(data, "joint state message")
    stamp = r.time()
    frame_id = r.string()
    r.align(4)
    known = _known_names(data, r.pos)
    if known is not None:
        names, r.pos = known[0], r.pos + known[1]
    else:
        names = tuple(r.string() for _ in range(r.u32()))
        _remember_names(names)
    arrays = []
    for _ in range(3):
        offset, n = r.doubles()
        arrays.append(np.frombuffer(data, "<f8", n, offset))
    return JointStateData(stamp, frame_id, names, *arrays)


def _decode_joint_state_rclpy(data: bytes) -> JointStateData:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import JointState

    try:
        msg = deserialize_message(data, JointState)
    except Exception as e:  # noqa: BLE001 - the binding raises several types for bytes it cannot read
        raise MessageError(f"joint state message could not be deserialized: {e}") from None
    return JointStateData((msg.header.stamp.sec, msg.header.stamp.nanosec), msg.header.frame_id, tuple(msg.name),
                          *(np.asarray(v, dtype=np.float64) for v in (msg.position, msg.velocity, msg.effort)))
