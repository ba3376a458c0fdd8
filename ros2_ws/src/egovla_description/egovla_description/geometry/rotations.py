"""Rotations: matrices, quaternions, axis-angle, rot6d and URDF roll-pitch-yaw; batched, NumPy or torch.

Conventions (one place for all of them):

- Matrices act on column vectors: ``v_parent = R @ v_child``. Shapes ``(..., 3, 3)``.
- Quaternions are **w, x, y, z** (Hamilton, as MuJoCo and Isaac use them); ``quat_wxyz_to_xyzw`` and
  ``quat_xyzw_to_wxyz`` convert to the x, y, z, w order of ROS messages and SciPy. Functions that return a
  quaternion return the canonical one of the pair ``{q, -q}``: ``w >= 0``.
- Axis-angle is the rotation vector ``angle * unit_axis`` (angle in radians), shape ``(..., 3)``.
- **rot6d** is the EgoVLA / HMR2 convention: the first two *columns* of the matrix, ``[R[:, 0]; R[:, 1]]``.
  Decoding reads ``a1 = d[..., 0:3]`` and ``a2 = d[..., 3:6]``, ``b1 = a1 / |a1|``, ``b2`` = ``a2`` made
  orthogonal to ``b1`` and normalised, ``b3 = b1 x b2``, and ``R = [b1 b2 b3]`` as columns. (Zhou et al.'s
  original code stacks rows instead; this is not that.)
- Roll-pitch-yaw is URDF's: fixed axes X then Y then Z, ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``.
"""

from __future__ import annotations

from ._backend import as_float_array

__all__ = [
    "quat_wxyz_to_xyzw",
    "quat_xyzw_to_wxyz",
    "quat_normalize",
    "quat_canonical",
    "quat_conjugate",
    "quat_multiply",
    "quat_rotate",
    "quat_to_matrix",
    "matrix_to_quat",
    "axis_angle_to_quat",
    "quat_to_axis_angle",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rot6d_to_matrix",
    "matrix_to_rot6d",
    "rpy_to_matrix",
    "matrix_to_rpy",
    "skew",
    "rotation_angle",
    "rotation_distance",
    "project_to_rotation",
    "average_rotations",
    "average_quaternions",
]


def _small(ops, x):
    # Below this angle the series expansions are exact to double precision.
    return 1e-4 if ops.eps(x) < 1e-10 else 1e-2


def quat_wxyz_to_xyzw(q):
    ops, q = as_float_array(q)
    return ops.concat([q[..., 1:4], q[..., 0:1]], -1)


def quat_xyzw_to_wxyz(q):
    ops, q = as_float_array(q)
    return ops.concat([q[..., 3:4], q[..., 0:3]], -1)


def quat_normalize(q):
    ops, q = as_float_array(q)
    return q / ops.norm(q, -1, keepdims=True)


def quat_canonical(q):
    """The member of ``{q, -q}`` with ``w >= 0`` (ties at ``w == 0`` keep ``q``)."""
    ops, q = as_float_array(q)
    return ops.where(q[..., 0:1] < 0, -q, q)


def quat_conjugate(q):
    ops, q = as_float_array(q)
    return ops.concat([q[..., 0:1], -q[..., 1:4]], -1)


def quat_multiply(a, b):
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    ops, a = as_float_array(a)
    b = ops.asarray(b, like=a)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return ops.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def quat_rotate(q, v):
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4)."""
    ops, q = as_float_array(q)
    v = ops.asarray(v, like=q)
    w, u = q[..., 0:1], q[..., 1:4]
    t = 2.0 * ops.cross(u, v)
    return v + w * t + ops.cross(u, t)


def quat_to_matrix(q):
    """Unit quaternion (w, x, y, z) -> rotation matrix. The input is normalised first."""
    ops, q = as_float_array(q)
    q = q / ops.norm(q, -1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = [
        ops.stack([1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy)], -1),
        ops.stack([2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx)], -1),
        ops.stack([2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)], -1),
    ]
    return ops.stack(rows, -2)


def matrix_to_quat(m):
    """Rotation matrix -> canonical unit quaternion (w >= 0).

    Shepperd's method: of the four algebraically equivalent formulas, each element uses the one whose
    divisor is largest, so the result is accurate for every rotation, including half turns.
    """
    ops, m = as_float_array(m)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    t = ops.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )  # 4 w^2, 4 x^2, 4 y^2, 4 z^2
    candidates = ops.stack(
        [
            ops.stack([t[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
            ops.stack([m21 - m12, t[..., 1], m10 + m01, m02 + m20], -1),
            ops.stack([m02 - m20, m10 + m01, t[..., 2], m21 + m12], -1),
            ops.stack([m10 - m01, m02 + m20, m21 + m12, t[..., 3]], -1),
        ],
        -2,
    )  # (..., 4 candidates, 4)
    best = ops.argmax(t, -1)
    idx = ops.expand_dims(ops.expand_dims(best, -1), -1)
    chosen = ops.take_along(candidates, idx, -2)[..., 0, :]
    q = chosen / ops.norm(chosen, -1, keepdims=True)
    return quat_canonical(q)


def axis_angle_to_quat(v):
    ops, v = as_float_array(v)
    angle = ops.norm(v, -1, keepdims=True)
    half = 0.5 * angle
    small = angle < _small(ops, v)
    safe = ops.where(small, ops.ones_like(angle), angle)
    # sin(angle/2)/angle, with its Taylor series near 0.
    k = ops.where(small, 0.5 - angle * angle / 48.0, ops.sin(half) / safe)
    return ops.concat([ops.cos(half), v * k], -1)


def quat_to_axis_angle(q):
    """Unit quaternion -> rotation vector with angle in [0, pi]."""
    ops, q = as_float_array(q)
    q = quat_canonical(q / ops.norm(q, -1, keepdims=True))
    w, u = q[..., 0:1], q[..., 1:4]
    s = ops.norm(u, -1, keepdims=True)
    angle = 2.0 * ops.atan2(s, w)
    small = s < _small(ops, q)
    safe = ops.where(small, ops.ones_like(s), s)
    # angle / sin(angle/2) = 2 atan2(s, w) / s, series near s = 0 (w -> 1).
    k = ops.where(small, 2.0 / w * (1.0 - s * s / (3.0 * w * w)), angle / safe)
    return u * k


def axis_angle_to_matrix(v):
    return quat_to_matrix(axis_angle_to_quat(v))


def matrix_to_axis_angle(m):
    return quat_to_axis_angle(matrix_to_quat(m))


def rot6d_to_matrix(d):
    """EgoVLA/HMR2 rot6d (..., 6) -> rotation matrix (..., 3, 3). Any non-degenerate 6-vector is accepted."""
    ops, d = as_float_array(d)
    a1, a2 = d[..., 0:3], d[..., 3:6]
    b1 = a1 / ops.norm(a1, -1, keepdims=True)
    b2 = a2 - ops.sum(b1 * a2, -1, keepdims=True) * b1
    b2 = b2 / ops.norm(b2, -1, keepdims=True)
    b3 = ops.cross(b1, b2)
    return ops.stack([b1, b2, b3], -1)


def matrix_to_rot6d(m):
    """Rotation matrix -> rot6d: its first two columns, concatenated."""
    ops, m = as_float_array(m)
    return ops.concat([m[..., :, 0], m[..., :, 1]], -1)


def rpy_to_matrix(rpy):
    """URDF roll-pitch-yaw (..., 3) -> ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    ops, rpy = as_float_array(rpy)
    cr, sr = ops.cos(rpy[..., 0]), ops.sin(rpy[..., 0])
    cp, sp = ops.cos(rpy[..., 1]), ops.sin(rpy[..., 1])
    cy, sy = ops.cos(rpy[..., 2]), ops.sin(rpy[..., 2])
    rows = [
        ops.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
        ops.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
        ops.stack([-sp, cp * sr, cp * cr], -1),
    ]
    return ops.stack(rows, -2)


def matrix_to_rpy(m):
    """Rotation matrix -> URDF roll-pitch-yaw, pitch in [-pi/2, pi/2]."""
    ops, m = as_float_array(m)
    pitch = ops.atan2(-m[..., 2, 0], ops.sqrt(m[..., 0, 0] ** 2 + m[..., 1, 0] ** 2))
    roll = ops.atan2(m[..., 2, 1], m[..., 2, 2])
    yaw = ops.atan2(m[..., 1, 0], m[..., 0, 0])
    return ops.stack([roll, pitch, yaw], -1)


def skew(v):
    """(..., 3) -> (..., 3, 3) cross-product matrix: ``skew(a) @ b == a x b``."""
    ops, v = as_float_array(v)
    z = ops.zeros_like(v[..., 0])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return ops.stack(
        [ops.stack([z, -w, y], -1), ops.stack([w, z, -x], -1), ops.stack([-y, x, z], -1)], -2
    )


def rotation_angle(m):
    """Angle (rad, in [0, pi]) of rotation matrices."""
    ops, m = as_float_array(m)
    return ops.norm(matrix_to_axis_angle(m), -1)


def rotation_distance(a, b):
    """Geodesic distance (rad) between rotation matrices ``a`` and ``b``: the angle of ``a^T b``."""
    ops, a = as_float_array(a)
    b = ops.asarray(b, like=a)
    return rotation_angle(ops.swap_last(a) @ b)


def project_to_rotation(m):
    """The rotation matrix nearest to ``m`` in Frobenius norm (SVD, with the reflection removed)."""
    ops, m = as_float_array(m)
    u, _, vh = ops.svd(m)
    d = ops.sign(ops.det(u @ vh))
    d = ops.where(d == 0, ops.ones_like(d), d)
    u = ops.concat([u[..., :, 0:2], u[..., :, 2:3] * d[..., None, None]], -1)
    return u @ vh


def average_rotations(m, weights=None, axis=0):
    """Weighted chordal mean of rotation matrices along ``axis``.

    Minimises ``sum_i w_i ||R - R_i||_F^2`` over rotations R: the weighted mean of the matrices, projected back
    onto SO(3). Element-wise averaging alone would leave SO(3); this never does. ``weights`` need not sum to 1.
    """
    ops, m = as_float_array(m)
    if axis < 0:
        axis += m.ndim - 2
    n = m.shape[axis]
    w = ops.ones_like(m[..., 0, 0]) if weights is None else ops.asarray(weights, like=m)
    shape = [1] * (m.ndim - 2)
    shape[axis] = n
    w = w.reshape(tuple(shape) + (1, 1)) if weights is not None else w[..., None, None]
    return project_to_rotation(ops.sum(m * w, axis))


def average_quaternions(q, weights=None, axis=0):
    """Weighted mean of unit quaternions along ``axis`` (Markley et al. 2007), canonical (w >= 0).

    The mean is the eigenvector of ``sum_i w_i q_i q_i^T`` with the largest eigenvalue. It does not depend on
    the sign of any ``q_i`` and equals the chordal mean of the corresponding rotation matrices.
    """
    ops, q = as_float_array(q)
    if axis < 0:
        axis += q.ndim - 1
    q = q / ops.norm(q, -1, keepdims=True)
    outer = q[..., :, None] * q[..., None, :]
    if weights is not None:
        w = ops.asarray(weights, like=q)
        shape = [1] * (q.ndim - 1)
        shape[axis] = q.shape[axis]
        outer = outer * w.reshape(tuple(shape) + (1, 1))
    a = ops.sum(outer, axis)
    _, vecs = ops.eigh(a)
    return quat_canonical(vecs[..., :, -1])
