"""Conversions between the stack's messages and numpy, in one place (standard message types only).

- An action chunk is a ``trajectory_msgs/JointTrajectory``: ``header.stamp`` = the stamp of the observation it was
  predicted from, ``joint_names`` = the 48 action names (``egovla_training.action_space.ACTION_NAMES``), point ``i``
  (0-based) = the action for ``stamp + (i + 1) / 30 s`` with ``time_from_start = (i + 1) / 30 s``.
- One smoothed action step is a ``sensor_msgs/JointState`` with the same 48 names in ``position``; its stamp is
  the observation tick it answers.
- Joint commands are ``sensor_msgs/JointState`` position targets by URDF name, any subset of joints.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from egovla_training.action_space import ACTION_NAMES, CHUNK_STEPS, CONTROL_HZ

ACTION_NAME_LIST = list(ACTION_NAMES)


class MessageError(ValueError):
    """A message that does not have the shape the stack needs; the text says what is wrong."""


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def s_to_stamp(seconds: float) -> Time:
    ns = int(round(seconds * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns) // 1_000_000_000, nanosec=int(ns) % 1_000_000_000)


def chunk_to_msg(chunk: np.ndarray, stamp: Time, frame_id: str = "head_camera_optical") -> JointTrajectory:
    chunk = np.asarray(chunk, dtype=float)
    if chunk.ndim != 2 or chunk.shape[1] != len(ACTION_NAMES):
        raise MessageError(f"a chunk must be (steps, {len(ACTION_NAMES)}), got {chunk.shape}")
    msg = JointTrajectory()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.joint_names = list(ACTION_NAMES)  # a copy: a caller that edits the message must not edit the table
    points = []
    for i, row in enumerate(chunk):
        ns = int(round((i + 1) * 1e9 / CONTROL_HZ))
        points.append(JointTrajectoryPoint(positions=row.tolist(),
                                           time_from_start=Duration(sec=ns // 1_000_000_000,
                                                                    nanosec=ns % 1_000_000_000)))
    msg.points = points
    return msg


def msg_to_chunk(msg: JointTrajectory, steps: int = CHUNK_STEPS) -> np.ndarray:
    """(steps, 48) from a chunk message; ``MessageError`` for other names, step counts or non-finite values."""
    if list(msg.joint_names) != ACTION_NAME_LIST:
        raise MessageError(f"chunk joint_names must be the {len(ACTION_NAMES)} action names in order "
                           f"({ACTION_NAMES[0]} ... {ACTION_NAMES[-1]}), got {len(msg.joint_names)} names starting "
                           f"{list(msg.joint_names[:2])}")
    if len(msg.points) != steps:
        raise MessageError(f"a chunk must have {steps} points, got {len(msg.points)}")
    try:
        chunk = np.array([p.positions for p in msg.points], dtype=float)
    except ValueError:
        raise MessageError("chunk points have different numbers of positions") from None
    if chunk.shape != (steps, len(ACTION_NAMES)):
        raise MessageError(f"every chunk point needs {len(ACTION_NAMES)} positions, got shape {chunk.shape}")
    if not np.isfinite(chunk).all():
        step, index = np.argwhere(~np.isfinite(chunk))[0]
        raise MessageError(f"chunk has a non-finite value at step {step}, {ACTION_NAMES[index]}")
    return chunk


def step_to_msg(step: np.ndarray, stamp: Time) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(ACTION_NAMES)
    msg.position = np.asarray(step, dtype=float).tolist()
    return msg


def msg_to_step(msg: JointState) -> np.ndarray:
    if list(msg.name) != ACTION_NAME_LIST or len(msg.position) != len(ACTION_NAMES):
        raise MessageError(f"an action step must name the {len(ACTION_NAMES)} action names in order with one "
                           f"position each, got {len(msg.name)} names and {len(msg.position)} positions")
    step = np.asarray(msg.position, dtype=float)
    if not np.isfinite(step).all():
        raise MessageError(f"action step has a non-finite value at {ACTION_NAMES[int(np.argmin(np.isfinite(step)))]}")
    return step


def joint_state_positions(msg: JointState) -> dict[str, float]:
    """Name -> position of a joint state; ``MessageError`` if names and positions do not pair up."""
    if len(msg.name) != len(msg.position):
        raise MessageError(f"joint state has {len(msg.name)} names but {len(msg.position)} positions")
    return dict(zip(msg.name, (float(p) for p in msg.position)))


def command_msg(targets: dict[str, float], stamp: Time) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(targets)
    msg.position = [float(v) for v in targets.values()]
    return msg


def diagnostic_array(stamp: Time, name: str, level: int, message: str, hardware_id: str,
                     values: dict) -> DiagnosticArray:
    """One ``DiagnosticStatus`` (``values`` as key/value strings) in a stamped ``/diagnostics`` array."""
    status = DiagnosticStatus(level=level if isinstance(level, bytes) else bytes([level]), name=name,
                              message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
