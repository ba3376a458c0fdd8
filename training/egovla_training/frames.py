"""Head-camera frames for the policy: the episode's frame history and the image squashing, without ROS.

The prompt shows ``num_frames`` frames: the current one and the ones ``spacing`` ticks apart before it (6 frames,
6 ticks = 0.2 s apart at 30 Hz by default). At an episode's start, before enough frames exist, the earliest frame
stands in for the missing ones, as the authors' evaluation does. ``FrameHistory`` keeps exactly the frames that can
still be shown and is used by ``EgoVLAPolicy`` (frames pushed one per tick) and by the ROS camera node (which
publishes the selected frames stacked into one image each tick).

Frames are keyed by their stamps when stamps are given: a frame with the stamp of the newest one replaces it (a
re-sent tick), and one older than the newest is refused, so the history never holds a tick twice or out of order.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class FrameHistory:
    """The last ``(num_frames - 1) * spacing + 1`` frames of an episode, oldest first."""

    def __init__(self, num_frames: int = 6, spacing: int = 6):
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if spacing < 1:
            raise ValueError(f"spacing must be >= 1 tick, got {spacing}")
        self.num_frames, self.spacing = int(num_frames), int(spacing)
        self._frames: deque = deque(maxlen=(self.num_frames - 1) * self.spacing + 1)
        self._stamps: deque = deque(maxlen=self._frames.maxlen)
        self.pushed = 0  # frames of this episode so far (a replaced frame counts once)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def newest_stamp_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    def reset(self):
        """A new episode: forget every frame."""
        self._frames.clear()
        self._stamps.clear()
        self.pushed = 0

    def push(self, frame, stamp_ns: int | None = None) -> str:
        """Add the frame of a new tick. Returns ``"added"``, ``"replaced"`` (same stamp as the newest frame) or
        ``"refused"`` (older than the newest frame; the history is unchanged)."""
        newest = self.newest_stamp_ns
        if stamp_ns is not None and newest is not None:
            if stamp_ns == newest:
                self._frames[-1] = frame
                return "replaced"
            if stamp_ns < newest:
                return "refused"
        self._frames.append(frame)
        self._stamps.append(stamp_ns)
        self.pushed += 1
        return "added"

    def indices(self) -> list[int]:
        """Which frames of the episode (0 = its first) the prompt shows, chronological, current last."""
        cur = self.pushed - 1
        return [max(0, cur - k * self.spacing) for k in range(self.num_frames - 1, -1, -1)]

    def _held(self, episode_index: int) -> int:
        first = self.pushed - len(self._frames)  # episode index of the oldest frame still held
        return max(episode_index - first, 0)

    def selected(self) -> list:
        """The frames the prompt shows, chronological (the earliest held frame stands in for missing ones)."""
        if not self._frames:
            raise RuntimeError("no frame in the history yet")
        return [self._frames[self._held(i)] for i in self.indices()]

    def selected_stamps(self) -> list:
        if not self._frames:
            raise RuntimeError("no frame in the history yet")
        return [self._stamps[self._held(i)] for i in self.indices()]


def stack_frames(frames) -> np.ndarray:
    """uint8 (N, H, W, 3) or a list of N (H, W, 3) frames -> one (N * H, W, 3) image, frames top to bottom."""
    arr = np.asarray(frames) if not isinstance(frames, (list, tuple)) else np.stack(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {arr.shape} {arr.dtype}")
    return arr.reshape(arr.shape[0] * arr.shape[1], arr.shape[2], 3)


def unstack_frames(image: np.ndarray, num_frames: int) -> np.ndarray:
    """The inverse of ``stack_frames``: (N * H, W, 3) -> (N, H, W, 3); ValueError if the height does not split."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"a stacked frame image must be (N * H, W, 3), got {image.shape}")
    if num_frames < 1 or image.shape[0] % num_frames:
        raise ValueError(f"an image {image.shape[0]} rows high does not hold {num_frames} frames of equal height")
    return image.reshape(num_frames, image.shape[0] // num_frames, image.shape[1], 3)


def squash_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, size, size, 3): squashed (aspect ratio not kept), bilinear with
    antialiasing, the interpolation the model's own preprocessing uses, rounded back to uint8."""
    import torch
    import torch.nn.functional as F

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.shape} {frames.dtype}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if frames.shape[1:3] == (size, size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
