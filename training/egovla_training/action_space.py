"""The unified human/robot action space: one 48-value step per control tick, named.

Per hand, left then right (``ACTION_NAMES``):

- ``{side}_wrist_x/y/z``: the MANO ``transl`` of that hand in the head camera's OpenCV optical frame, i.e. the
  wrist (MANO root joint) position minus the hand model's root offset at zero shape (``HandModel.root_offset``);
- ``{side}_wrist_rot6d_0..5``: the MANO global orientation in the optical frame, as rot6d (the first two columns
  of the rotation matrix; ``egovla_description.geometry``);
- ``{side}_hand_pca_00..14``: the hand pose as PCA coefficients of the hand model (not normalised).

Robot end effectors (``L/R_hand_base_link``) relate to the MANO wrist through a fixed per-hand axis change
(``AXIS_CHANGE``, the authors' ``AXIS_RETARGET_ISAACLAB``) and the root offset: ``R_mano = R_ee @ AXIS_CHANGE``
and ``p_ee = transl + root_offset``, both in the camera frame. ``ee_pose_to_mano`` / ``mano_to_ee_pose`` convert
both ways; ``camera_to_torso`` / ``torso_to_camera`` move poses between the camera and the robot's torso.

The authors' checkpoints order each step as ``[transl_L, transl_R, pca_L, pca_R, rot6d_L, rot6d_R]``;
``AUTHORS_TO_OURS`` permutes their layout into ours (and ``OURS_TO_AUTHORS`` back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egovla_description.geometry import (
    make_transform,
    matrix_to_rot6d,
    rot6d_to_matrix,
    transform_inverse,
)
from egovla_description.geometry._backend import ops_for

SIDES = ("left", "right")
NUM_PCA = 15
STEP_SIZE = 2 * (3 + 6 + NUM_PCA)  # 48
CHUNK_STEPS = 30
CONTROL_HZ = 30.0


def _names_for(side: str) -> list[str]:
    return ([f"{side}_wrist_{a}" for a in "xyz"] + [f"{side}_wrist_rot6d_{i}" for i in range(6)]
            + [f"{side}_hand_pca_{i:02d}" for i in range(NUM_PCA)])


ACTION_NAMES: tuple[str, ...] = tuple(_names_for("left") + _names_for("right"))
_INDEX = {n: i for i, n in enumerate(ACTION_NAMES)}


def indices(side: str, part: str) -> np.ndarray:
    """Indices into a step of one side's ``"transl"`` (3), ``"rot6d"`` (6) or ``"pca"`` (15) block."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    base = 0 if side == "left" else 24
    spans = {"transl": (0, 3), "rot6d": (3, 9), "pca": (9, 24)}
    if part not in spans:
        raise ValueError(f"part must be one of {sorted(spans)}, got {part!r}")
    a, b = spans[part]
    return np.arange(base + a, base + b)


def _authors_order() -> np.ndarray:
    """For each authors' position, the index of the same quantity in our layout."""
    order = []
    for part in ("transl", "pca", "rot6d"):
        for side in SIDES:
            order.extend(indices(side, part).tolist())
    return np.array(order)


OURS_TO_AUTHORS = _authors_order()  # authors_step = our_step[..., OURS_TO_AUTHORS]
AUTHORS_TO_OURS = np.argsort(OURS_TO_AUTHORS)  # our_step = authors_step[..., AUTHORS_TO_OURS]


def from_authors_layout(steps):
    """Authors' per-step ordering -> ours (last axis of size 48)."""
    _check_last(steps)
    return steps[..., AUTHORS_TO_OURS]


def to_authors_layout(steps):
    _check_last(steps)
    return steps[..., OURS_TO_AUTHORS]


def _check_last(steps):
    if steps.shape[-1] != STEP_SIZE:
        raise ValueError(f"an action step has {STEP_SIZE} values, got last dimension {steps.shape[-1]}")


# -- wrist frames ------------------------------------------------------------------------------------------

# Columns: the MANO wrist's axes written in the robot end-effector (hand base link) frame, per hand.
AXIS_CHANGE = {
    "right": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),
    "left": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
}


def _axis(side, like):
    ops = ops_for(like)
    return ops.asarray(AXIS_CHANGE[side], like=like)


def ee_pose_to_mano(t_cam_ee, side: str, root_offset):
    """End-effector poses (..., 4, 4) in the camera frame -> (MANO transl (..., 3), MANO rotation (..., 3, 3))."""
    ops = ops_for(t_cam_ee)
    a = _axis(side, t_cam_ee)
    rot = t_cam_ee[..., :3, :3] @ a
    transl = t_cam_ee[..., :3, 3] - ops.asarray(root_offset, like=t_cam_ee)
    return transl, rot


def mano_to_ee_pose(transl, rotation, side: str, root_offset):
    """MANO transl (..., 3) and rotation (..., 3, 3) in the camera frame -> end-effector poses (..., 4, 4)."""
    ops = ops_for(rotation)
    a = _axis(side, rotation)
    r_ee = rotation @ ops.swap_last(a)
    return make_transform(r_ee, transl + ops.asarray(root_offset, like=rotation))


def camera_to_torso(t_cam_x, t_torso_camera):
    """Poses in the camera's optical frame -> the torso frame (``t_torso_camera``: the optical frame in the torso)."""
    ops = ops_for(t_cam_x)
    return ops.asarray(t_torso_camera, like=t_cam_x) @ t_cam_x


def torso_to_camera(t_torso_x, t_torso_camera):
    ops = ops_for(t_torso_x)
    return transform_inverse(ops.asarray(t_torso_camera, like=t_torso_x)) @ t_torso_x


@dataclass
class HandAction:
    """One side of action steps, decoded: (..., 3) transl, (..., 3, 3) rotation, (..., 15) PCA."""

    transl: object
    rotation: object
    pca: object


def split_step(steps, side: str) -> HandAction:
    """Decode one side of action steps (..., 48)."""
    _check_last(steps)
    return HandAction(steps[..., indices(side, "transl")], rot6d_to_matrix(steps[..., indices(side, "rot6d")]),
                      steps[..., indices(side, "pca")])


def join_step(left: HandAction, right: HandAction):
    """Encode both sides into action steps (..., 48)."""
    ops = ops_for(left.transl)
    parts = []
    for h in (left, right):
        parts += [h.transl, matrix_to_rot6d(h.rotation), h.pca]
    return ops.concat(parts, -1)


# -- PCA normalisation --------------------------------------------------------------------------------------

# The authors' ranges (facts: VILA/llava/data/utils.py): dims 1-6 have their own; 7-15 use [-4, 4].
AUTHORS_PCA_MIN = np.array([-1.0, 1.5, -2.0, -3.0, -1.5, -1.0] + [-4.0] * 9)
AUTHORS_PCA_MAX = np.array([2.2, 3.5, 1.0, 0.5, 4.0, 5.0] + [4.0] * 9)


@dataclass(frozen=True)
class PCANormalizer:
    """Min-max normalisation of hand PCA coefficients to [0, 1]: ``(x - min) / (max - min)``.

    Artefacts that depend on it store ``to_dict()`` and rebuild it with ``from_dict``.
    """

    minimum: tuple[float, ...] = tuple(AUTHORS_PCA_MIN.tolist())
    maximum: tuple[float, ...] = tuple(AUTHORS_PCA_MAX.tolist())

    def __post_init__(self):
        lo, hi = np.asarray(self.minimum), np.asarray(self.maximum)
        if lo.shape != hi.shape or lo.ndim != 1:
            raise ValueError(f"minimum and maximum must be 1-D of equal length, got {lo.shape} and {hi.shape}")
        if not np.all(hi > lo):
            raise ValueError("every maximum must exceed its minimum")

    def normalize(self, pca):
        ops = ops_for(pca)
        n = len(self.minimum)
        lo, hi = ops.asarray(self.minimum, like=pca), ops.asarray(self.maximum, like=pca)
        return (pca[..., :n] - lo) / (hi - lo)

    def denormalize(self, normalized):
        ops = ops_for(normalized)
        lo, hi = ops.asarray(self.minimum, like=normalized), ops.asarray(self.maximum, like=normalized)
        return normalized * (hi - lo) + lo

    def to_dict(self) -> dict:
        return {"kind": "minmax", "minimum": list(self.minimum), "maximum": list(self.maximum)}

    @classmethod
    def from_dict(cls, d: dict) -> "PCANormalizer":
        if d.get("kind") != "minmax":
            raise ValueError(f"unknown PCA normalisation kind {d.get('kind')!r}")
        return cls(tuple(float(x) for x in d["minimum"]), tuple(float(x) for x in d["maximum"]))
