"""Future wrist poses and keypoints of human video, expressed in the camera frame of the CURRENT image.

Human datasets give camera and wrist poses in a world frame. A training label for step k of the sample at
time t is "where the wrist will be at t+k, seen from the camera at t" (facts §2.4):

    T_cam(t)_wrist(t+k) = inv(T_world_cam(t)) @ T_world_wrist(t+k)

and 3D points (keypoints, fingertips) get the same left-multiplication. The camera of the current image is
held fixed for the whole chunk, even though the head keeps moving: the model predicts from one image.

Label step k (k = 1..30) uses the future index ``min(k, L-1)`` where index 0 is the current frame and ``L``
is the length of the available future (facts §2.2): near the episode end the last pose is held.

``T_a_b`` is the pose of frame b in frame a (``egovla_description.geometry``); all functions take NumPy or torch.
"""

from __future__ import annotations

import numpy as np

from egovla_description.geometry import transform_inverse, transform_points

from ..action_space import CHUNK_STEPS


def future_indices(t: int, num_frames: int, steps: int = CHUNK_STEPS, stride: int = 1) -> np.ndarray:
    """Episode frame indices (steps,) of the labels of the sample at frame ``t``.

    Step k (1..steps) looks ``k * stride`` frames ahead, clamped to the episode's last frame (the future array
    of length ``L = (num_frames - 1 - t) // stride + 1`` read at ``min(k, L-1)``). ``stride`` > 1 is for videos
    recorded faster than the 30 Hz control rate."""
    if not 0 <= t < num_frames:
        raise ValueError(f"frame {t} is outside an episode of {num_frames} frames")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    future_len = (num_frames - 1 - t) // stride + 1  # index 0 = the current frame
    k = np.minimum(np.arange(1, steps + 1), future_len - 1)
    return t + k * stride


def to_current_camera(t_world_cam_now, t_world_x):
    """Poses (..., 4, 4) in the world -> the current camera frame: ``inv(T_world_cam(t)) @ T_world_x``.

    ``t_world_cam_now`` (4, 4) or (..., 4, 4), broadcast against ``t_world_x``."""
    return transform_inverse(t_world_cam_now) @ t_world_x


def points_to_current_camera(t_world_cam_now, points_world):
    """Points (..., 3) in the world -> the current camera frame. ``t_world_cam_now`` (4, 4) applies to all;
    a batched (..., 4, 4) broadcasts over the points' leading dimensions (add axes for per-point sets)."""
    return transform_points(transform_inverse(t_world_cam_now), points_world)


def future_poses_in_current_camera(t_world_cam, t_world_x, t: int, steps: int = CHUNK_STEPS, stride: int = 1):
    """The label poses (steps, 4, 4) of the sample at frame ``t`` from an episode's world poses.

    ``t_world_cam`` (N, 4, 4): the camera at every frame; ``t_world_x`` (N, 4, 4): e.g. one wrist."""
    idx = future_indices(t, len(t_world_x), steps, stride)
    return to_current_camera(t_world_cam[t], t_world_x[idx])


def future_points_in_current_camera(t_world_cam, points_world, t: int, steps: int = CHUNK_STEPS,
                                    stride: int = 1):
    """The label points (steps, P, 3) of the sample at frame ``t``; ``points_world`` (N, P, 3)."""
    idx = future_indices(t, len(points_world), steps, stride)
    return points_to_current_camera(t_world_cam[t], points_world[idx])
