"""Replayed hand tracking as a teleoperation source: a recording of both hands -> EgoVLA action steps.

A recording is an ``.npz`` file (no pickles) with, per frame at ``fps`` (30 by default):

- ``wrist_position`` (N, 2, 3): each hand's wrist (the MANO root joint), metres, in the head camera's OpenCV
  optical frame (x right, y down, z forward), left hand first;
- ``wrist_rotation`` (N, 2, 3, 3): each hand's global orientation (MANO convention) in that frame;
- ``keypoints`` (N, 2, 21, 3): the 21 hand keypoints in MANO/OpenPose order, same frame (only the wrist and the
  five fingertips are used);
- optional ``fps`` (scalar) and ``instruction`` (string).

``recording_to_steps`` turns it into (N, 48) action steps: the wrist translation (MANO ``transl`` = wrist minus the
hand model's root offset) and rot6d come straight from the file; the hand PCA is fitted so that the hand model's
fingertips match the recorded ones (``egovla_training.retarget.fit``, human scale). Frames at another rate are
resampled to 30 Hz (nearest frame in time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egovla_description.geometry import matrix_to_rot6d
from egovla_training.action_space import CONTROL_HZ, SIDES, STEP_SIZE, indices, mano_to_ee_pose
from egovla_training.hands import FINGERTIPS, HandModel
from egovla_training.retarget import FitConfig, fit_hand_to_robot


class RecordingError(ValueError):
    """A hand-tracking file that cannot be replayed; the message starts with its path."""


@dataclass
class HandTrackingRecording:
    path: Path
    wrist_position: np.ndarray  # (N, 2, 3) m, camera optical frame
    wrist_rotation: np.ndarray  # (N, 2, 3, 3)
    keypoints: np.ndarray  # (N, 2, 21, 3) m
    fps: float
    instruction: str

    def __len__(self) -> int:
        return len(self.wrist_position)


def load_recording(path: str | Path) -> HandTrackingRecording:
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such hand-tracking file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RecordingError(f"{path}: not a readable .npz file ({e})") from None
    need = {"wrist_position": (2, 3), "wrist_rotation": (2, 3, 3), "keypoints": (2, 21, 3)}
    arrays = {}
    for key, shape in need.items():
        if key not in data.files:
            raise RecordingError(f"{path}: missing array {key!r} (has {sorted(data.files)})")
        a = np.asarray(data[key], dtype=float)
        if a.ndim != len(shape) + 1 or a.shape[1:] != shape:
            raise RecordingError(f"{path}: {key} must be (N, {', '.join(map(str, shape))}), got {a.shape}")
        if not np.isfinite(a).all():
            raise RecordingError(f"{path}: {key} has NaN or Inf values")
        arrays[key] = a
    n = {len(a) for a in arrays.values()}
    if len(n) != 1 or n == {0}:
        raise RecordingError(f"{path}: the arrays must have the same, non-zero number of frames, got "
                             f"{ {k: len(a) for k, a in arrays.items()} }")
    det = np.linalg.det(arrays["wrist_rotation"])
    if np.abs(det - 1.0).max() > 1e-3:
        raise RecordingError(f"{path}: wrist_rotation holds matrices that are not rotations (det {det.min():.3f}"
                             f"..{det.max():.3f})")
    fps = float(data["fps"]) if "fps" in data.files else CONTROL_HZ
    if not fps > 0:
        raise RecordingError(f"{path}: fps must be > 0, got {fps}")
    instruction = str(data["instruction"]) if "instruction" in data.files else ""
    return HandTrackingRecording(path, arrays["wrist_position"], arrays["wrist_rotation"], arrays["keypoints"], fps,
                                 instruction)


def recording_to_steps(rec: HandTrackingRecording, hands: dict[str, HandModel],
                       fit: FitConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(action steps (M, 48) at 30 Hz, fingertip residual of the fit (M, 2, 5) m)."""
    fit = fit or FitConfig(robot_hand_scale=1.0)
    if fit.robot_hand_scale != 1.0:
        raise ValueError("recorded human hands are fitted at human scale: robot_hand_scale must be 1.0")
    m = max(1, int(round(len(rec) / rec.fps * CONTROL_HZ)))
    frames = np.minimum(np.rint(np.arange(m) * rec.fps / CONTROL_HZ).astype(int), len(rec) - 1)
    steps = np.zeros((m, STEP_SIZE))
    residual = np.zeros((m, 2, 5))
    for h, side in enumerate(SIDES):
        hand = hands[side]
        root = hand.root_offset.detach().double().cpu().numpy()
        transl = rec.wrist_position[frames, h] - root
        rot = rec.wrist_rotation[frames, h]
        ee = mano_to_ee_pose(transl, rot, side, root)  # the fit fixes the wrist through the end-effector pose
        res = fit_hand_to_robot(hand, ee, rec.keypoints[frames, h][:, list(FINGERTIPS)], fit)
        steps[:, indices(side, "transl")] = transl
        steps[:, indices(side, "rot6d")] = matrix_to_rot6d(rot)
        steps[:, indices(side, "pca")] = res.pca.detach().double().numpy()
        residual[:, h] = res.fingertip_residual_m.detach().double().numpy()
    return steps, residual


def chunk_at(steps: np.ndarray, tick: int, horizon: int = 30) -> np.ndarray:
    """The chunk for episode tick ``tick``: steps ``tick + 1 .. tick + horizon`` (the last step held at the end)."""
    idx = np.minimum(np.arange(tick + 1, tick + 1 + horizon), len(steps) - 1)
    return steps[idx]
