"""Rigid transforms as 4x4 homogeneous matrices, batched, NumPy or torch.

``T_a_b`` is the pose of frame b in frame a: ``p_a = T_a_b @ p_b``. Composition reads left to right:
``T_a_c = T_a_b @ T_b_c``. Poses as (position, quaternion) use the w, x, y, z order of ``rotations``.
"""

from __future__ import annotations

from ._backend import as_float_array
from .rotations import matrix_to_quat, quat_to_matrix, rpy_to_matrix

__all__ = [
    "make_transform",
    "transform_inverse",
    "transform_points",
    "transform_vectors",
    "pose_to_matrix",
    "matrix_to_pose",
    "xyz_rpy_to_matrix",
    "translation_distance",
]


def make_transform(rotation, translation):
    """(..., 3, 3) and (..., 3) -> (..., 4, 4)."""
    ops, r = as_float_array(rotation)
    t = ops.asarray(translation, like=r)
    top = ops.concat([r, t[..., :, None]], -1)
    bottom = ops.zeros_like(top[..., 0:1, :])
    bottom = ops.concat([bottom[..., :3], ops.ones_like(bottom[..., 3:4])], -1)
    return ops.concat([top, bottom], -2)


def transform_inverse(t):
    ops, t = as_float_array(t)
    r_inv = ops.swap_last(t[..., :3, :3])
    p = t[..., :3, 3]
    return make_transform(r_inv, -ops.einsum("...ij,...j->...i", r_inv, p))


def transform_points(t, points):
    """Apply (..., 4, 4) transforms to (..., 3) points (broadcasting over leading dimensions)."""
    ops, t = as_float_array(t)
    p = ops.asarray(points, like=t)
    return ops.einsum("...ij,...j->...i", t[..., :3, :3], p) + t[..., :3, 3]


def transform_vectors(t, vectors):
    """Rotate (..., 3) direction vectors by the rotation part of (..., 4, 4) transforms."""
    ops, t = as_float_array(t)
    v = ops.asarray(vectors, like=t)
    return ops.einsum("...ij,...j->...i", t[..., :3, :3], v)


def pose_to_matrix(position, quat_wxyz):
    return make_transform(quat_to_matrix(quat_wxyz), position)


def matrix_to_pose(t):
    """(..., 4, 4) -> (position (..., 3), canonical quaternion w, x, y, z (..., 4))."""
    ops, t = as_float_array(t)
    return t[..., :3, 3], matrix_to_quat(t[..., :3, :3])


def xyz_rpy_to_matrix(xyz, rpy):
    """A URDF ``<origin xyz rpy>`` as a transform."""
    return make_transform(rpy_to_matrix(rpy), xyz)


def translation_distance(a, b):
    """Euclidean distance (m) between the origins of transforms ``a`` and ``b``."""
    ops, a = as_float_array(a)
    b = ops.asarray(b, like=a)
    return ops.norm(a[..., :3, 3] - b[..., :3, 3], -1)
