"""Pinhole cameras and the two camera frame conventions.

- **ROS camera body frame** (``head_camera_link``): x forward, y left, z up (REP 103).
- **OpenCV optical frame** (``head_camera_optical_frame``, REP 103's ``_optical``): x right, y down, z forward.
  Pixel coordinates follow OpenCV: ``u = fx * x / z + cx`` (to the right), ``v = fy * y / z + cy`` (down);
  the intrinsics are applied as given, with no half-pixel offsets added.

EgoVLA's actions and proprioception live in the optical frame of the head camera.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._backend import as_float_array

__all__ = [
    "PinholeCamera",
    "R_ROS_CAMERA_FROM_OPTICAL",
    "R_OPTICAL_FROM_ROS_CAMERA",
    "T_ROS_CAMERA_FROM_OPTICAL",
    "ros_camera_to_optical",
    "optical_to_ros_camera",
]

# Columns: the optical frame's x (right), y (down), z (forward) axes written in the ROS camera body frame.
R_ROS_CAMERA_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
R_OPTICAL_FROM_ROS_CAMERA = R_ROS_CAMERA_FROM_OPTICAL.T
T_ROS_CAMERA_FROM_OPTICAL = np.eye(4)
T_ROS_CAMERA_FROM_OPTICAL[:3, :3] = R_ROS_CAMERA_FROM_OPTICAL


def ros_camera_to_optical(points):
    """Points (..., 3) in the ROS camera body frame -> the same points in the optical frame."""
    ops, p = as_float_array(points)
    return ops.stack([-p[..., 1], -p[..., 2], p[..., 0]], -1)


def optical_to_ros_camera(points):
    """Points (..., 3) in the optical frame -> the ROS camera body frame."""
    ops, p = as_float_array(points)
    return ops.stack([p[..., 2], -p[..., 0], -p[..., 1]], -1)


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an undistorted pinhole camera (pixels)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the standard name of the intrinsic matrix
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def resized(self, width: int, height: int) -> "PinholeCamera":
        """Intrinsics of the same camera rendered at another resolution (the image is scaled, not cropped)."""
        sx, sy = width / self.width, height / self.height
        return replace(self, width=int(width), height=int(height), fx=self.fx * sx, fy=self.fy * sy,
                       cx=self.cx * sx, cy=self.cy * sy)

    @property
    def vertical_fov_rad(self) -> float:
        return 2.0 * float(np.arctan2(self.height / 2.0, self.fy))

    @property
    def horizontal_fov_rad(self) -> float:
        return 2.0 * float(np.arctan2(self.width / 2.0, self.fx))

    def project(self, points):
        """Optical-frame points (..., 3) -> pixels (..., 2) and a mask of points in front of the camera.

        Points at or behind the image plane (z <= 0) get NaN pixels and ``False`` in the mask.
        """
        ops, p = as_float_array(points)
        z = p[..., 2]
        in_front = z > 0
        z_safe = ops.where(in_front, z, ops.ones_like(z))
        u = self.fx * p[..., 0] / z_safe + self.cx
        v = self.fy * p[..., 1] / z_safe + self.cy
        nan = ops.zeros_like(u) + float("nan")
        uv = ops.stack([ops.where(in_front, u, nan), ops.where(in_front, v, nan)], -1)
        return uv, in_front

    def unproject(self, pixels, depth):
        """Pixels (..., 2) and depth along the optical axis (...,) in metres -> optical-frame points (..., 3)."""
        ops, uv = as_float_array(pixels)
        d = ops.asarray(depth, like=uv)
        x = (uv[..., 0] - self.cx) / self.fx * d
        y = (uv[..., 1] - self.cy) / self.fy * d
        return ops.stack([x, y, d], -1)

    def in_image(self, pixels):
        """Mask of pixels (..., 2) inside the image rectangle [0, width) x [0, height)."""
        ops, uv = as_float_array(pixels)
        return (uv[..., 0] >= 0) & (uv[..., 0] < self.width) & (uv[..., 1] >= 0) & (uv[..., 1] < self.height)
