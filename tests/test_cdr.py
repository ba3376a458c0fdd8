"""Action chunks to and from CDR bytes without message objects, against rclpy's own serialization."""

import numpy as np
import pytest

from egovla.cdr import decode_chunk, encode_chunk
from egovla.msgs import MessageError, chunk_to_msg, msg_to_chunk, s_to_stamp

rclpy_serialization = pytest.importorskip("rclpy.serialization")
RNG = np.random.default_rng(7)


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd", "head_camera_optical"])
def test_encoder_and_decoder_agree_with_rclpy(frame_id):
    """Every frame-id length (it shifts the alignment of everything after it)."""
    from trajectory_msgs.msg import JointTrajectory

    chunk = RNG.normal(size=(30, 48))
    stamp = s_to_stamp(1234.567890123)
    msg = chunk_to_msg(chunk, stamp, frame_id)
    ours = encode_chunk(chunk, stamp.sec, stamp.nanosec, frame_id)
    assert rclpy_serialization.deserialize_message(ours, JointTrajectory) == msg
    for data in (ours, rclpy_serialization.serialize_message(msg)):
        got_stamp, got = decode_chunk(data)
        assert got_stamp == (stamp.sec, stamp.nanosec) and np.array_equal(got, chunk)  # bit for bit


def test_decoder_reads_points_with_velocities_and_efforts():
    chunk = RNG.normal(size=(30, 48))
    msg = chunk_to_msg(chunk, s_to_stamp(3.0))
    msg.points[0].velocities = [1.0, 2.0]
    msg.points[7].effort = [0.5]
    msg.points[29].accelerations = [0.1] * 48
    _, got = decode_chunk(rclpy_serialization.serialize_message(msg))
    assert np.array_equal(got, chunk)


def _bad(mutate):
    msg = chunk_to_msg(RNG.normal(size=(30, 48)), s_to_stamp(3.0))
    mutate(msg)
    return rclpy_serialization.serialize_message(msg)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: setattr(m, "joint_names", m.joint_names[:47]), "the 48 action names"),
    (lambda m: m.joint_names.__setitem__(3, "left_wrist_rot6d_x"), "the 48 action names"),
    (lambda m: setattr(m, "points", m.points[:29]), "must have 30 points, got 29"),
    (lambda m: setattr(m.points[4], "positions", list(m.points[4].positions)[:47]), "point 4 has 47"),
    (lambda m: m.points[2].positions.__setitem__(5, float("nan")), "non-finite value at step 2, left_wrist_rot6d_2"),
])
def test_malformed_chunks_are_refused_like_msg_to_chunk(mutate, message):
    data = _bad(mutate)
    with pytest.raises(MessageError, match=message):
        decode_chunk(data)
    from trajectory_msgs.msg import JointTrajectory

    with pytest.raises(MessageError):  # the message-object path refuses the same chunks
        msg_to_chunk(rclpy_serialization.deserialize_message(data, JointTrajectory))


def test_truncated_or_foreign_bytes_are_refused():
    data = encode_chunk(RNG.normal(size=(30, 48)), 1, 2)
    for cut in (2, 10, 40, 600, len(data) // 2, len(data) - 1):
        with pytest.raises(MessageError):
            decode_chunk(data[:cut])
    with pytest.raises(MessageError, match="little-endian CDR"):
        decode_chunk(b"\x00\x00\x00\x00" + data[4:])
    with pytest.raises(MessageError, match="must be"):
        encode_chunk(np.zeros((30, 47)), 1, 2)


# -- sensor_msgs/JointState ---------------------------------------------------------------------------------------

def _joint_state(names, position, stamp, frame_id="", velocity=(), effort=()):
    from sensor_msgs.msg import JointState

    msg = JointState(name=list(names), position=list(position), velocity=list(velocity), effort=list(effort))
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


JOINT_NAMES = [f"joint_{'x' * (i % 5)}{i}" for i in range(23)]  # every name length modulo 4


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd"])
@pytest.mark.parametrize("with_velocity, with_effort", [(False, False), (True, False), (True, True)])
def test_joint_state_encoder_and_decoder_agree_with_rclpy(frame_id, with_velocity, with_effort):
    from sensor_msgs.msg import JointState

    from egovla.cdr import decode_joint_state, encode_joint_state

    n = len(JOINT_NAMES)
    position = RNG.normal(size=n)
    velocity = RNG.normal(size=n) if with_velocity else np.zeros(0)
    effort = RNG.normal(size=n) if with_effort else np.zeros(0)
    stamp = s_to_stamp(98.765432101)
    msg = _joint_state(JOINT_NAMES, position, stamp, frame_id, velocity, effort)
    ours = encode_joint_state(JOINT_NAMES, position, stamp.sec, stamp.nanosec, frame_id, velocity, effort)
    assert rclpy_serialization.deserialize_message(ours, JointState) == msg
    for data in (ours, rclpy_serialization.serialize_message(msg), ours, rclpy_serialization.serialize_message(msg)):
        got = decode_joint_state(data)  # twice each: parsed names, then recognised ones
        assert got.stamp == (stamp.sec, stamp.nanosec) and got.stamp_ns == stamp.sec * 10**9 + stamp.nanosec
        assert got.frame_id == frame_id and got.names == tuple(JOINT_NAMES)
        for a, b in ((got.position, position), (got.velocity, velocity), (got.effort, effort)):
            assert a.dtype == np.float64 and np.array_equal(a, b)  # bit for bit


def test_joint_state_decoder_tells_apart_name_lists_of_the_same_shape():
    """A remembered name list is recognised by its bytes: one letter changed, or one name fewer, is another list."""
    from egovla.cdr import decode_joint_state, encode_joint_state

    a = ["left_a", "left_b", "right_c"]
    variants = [a, ["left_a", "left_x", "right_c"], a[:2], [], ["left_a", "left_b", "right_c", "d"]]
    for _ in range(2):
        for names in variants:
            got = decode_joint_state(encode_joint_state(names, np.arange(len(names), dtype=float), 1, 2))
            assert got.names == tuple(names) and np.array_equal(got.position, np.arange(len(names)))
    # from rclpy, whose padding bytes hold whatever was in its buffer
    for names in variants:
        data = rclpy_serialization.serialize_message(_joint_state(names, np.ones(len(names)), s_to_stamp(1.0)))
        assert decode_joint_state(data).names == tuple(names)


def test_joint_state_decoder_reads_big_endian_through_rclpy():
    """Another encoding (here big-endian CDR, as a big-endian machine sends) goes to rclpy's deserializer."""
    import struct

    from egovla.cdr import decode_joint_state

    out = bytearray(b"\x00\x00\x00\x00")

    def pad(align):
        out.extend(b"\x00" * ((4 - len(out)) % align))

    def string(text):
        pad(4)
        out.extend(struct.pack(">I", len(text) + 1) + text.encode() + b"\x00")

    out += struct.pack(">iI", 5, 7)
    string("base")
    pad(4)
    out += struct.pack(">I", 2)
    for name in ("j1", "joint2"):
        string(name)
    pad(4)
    out += struct.pack(">I", 2)
    pad(8)
    out += struct.pack(">2d", 0.5, -1.25)
    for _ in range(2):
        pad(4)
        out += struct.pack(">I", 0)
    got = decode_joint_state(bytes(out))
    assert got.stamp == (5, 7) and got.frame_id == "base" and got.names == ("j1", "joint2")
    assert got.position.tolist() == [0.5, -1.25] and got.velocity.size == 0 and got.effort.size == 0


@pytest.mark.parametrize("cut", [0, 3, 10, 30, 60, -9])
def test_truncated_joint_states_are_refused(cut):
    from egovla.cdr import decode_joint_state, encode_joint_state

    data = encode_joint_state(["a", "bb", "ccc"], [1.0, 2.0, 3.0], 4, 5, velocity=[0.1, 0.2, 0.3])
    with pytest.raises(MessageError, match="joint state message"):
        decode_joint_state(data[:cut])
