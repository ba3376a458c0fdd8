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
