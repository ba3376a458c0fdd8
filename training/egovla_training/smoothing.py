"""Temporal ensembling of overlapping action chunks (EgoVLA's smoothing, and ACT's as an option).

A chunk predicted from the observation stamped ``t_c`` holds ``H`` steps (30); step ``j`` is the action for time
``t_c + (j + 1) * dt`` (the first step is one tick ahead). To act at time ``t``, every stored chunk that covers
``t`` contributes its step ``j = round((t - t_c) / dt) - 1``, weighted by ``exp(-k * j)``:

- ``order="newest_first"`` (EgoVLA): ``j`` is also how many ticks old that prediction is, so the newest chunk
  weighs most. With k = 0.8 it carries 55 % of the weight, with k = 0.2 18 %.
- ``order="oldest_first"`` (ACT / LeRobot): the weight index counts from the oldest contributing chunk instead,
  so the first prediction ever made for ``t`` weighs most.

Chunks are placed by their timestamps, never by counting calls: a late chunk (older stamp than one already
stored) is inserted at its place, a duplicate stamp replaces the stored chunk, a missing tick simply contributes
nothing, and chunks too old to cover anything new are dropped (at most ``history`` are kept). A chunk with NaN
or Inf, or of the wrong shape, is rejected with ``ValueError`` and the stored history is untouched.

Streams: the values of a step are smoothed per stream, each with its own ``k``: plain weighted means for
Euclidean quantities (wrist translation, hand PCA, joint angles) and the weighted chordal mean of rotations for
rot6d blocks (``egovla_description.geometry.average_rotations``), never an element-wise rot6d average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .action_space import ACTION_NAMES, CHUNK_STEPS, CONTROL_HZ, SIDES, indices


_EMPTY = -1e18  # stamp of an empty slot: so far in the past that it covers no time


@dataclass(frozen=True)
class Stream:
    """A group of step values smoothed together: ``kind`` "euclidean" or "rot6d" (6 values per rotation)."""

    name: str
    index: tuple[int, ...]
    k: float
    kind: str = "euclidean"

    def __post_init__(self):
        if self.kind not in ("euclidean", "rot6d"):
            raise ValueError(f"stream {self.name!r}: kind must be 'euclidean' or 'rot6d', got {self.kind!r}")
        if self.kind == "rot6d" and len(self.index) % 6:
            raise ValueError(f"stream {self.name!r}: a rot6d stream needs a multiple of 6 values")
        if not math.isfinite(self.k):
            raise ValueError(f"stream {self.name!r}: k must be finite, got {self.k}")


def action_streams(k_wrist: float = 0.2, k_hand: float = 0.8) -> list[Stream]:
    """Streams for the 48-value action layout: wrist translation and rotation (k_wrist), hand PCA (k_hand)."""
    transl = np.concatenate([indices(s, "transl") for s in SIDES])
    rot = np.concatenate([indices(s, "rot6d") for s in SIDES])
    pca = np.concatenate([indices(s, "pca") for s in SIDES])
    return [Stream("wrist_translation", tuple(transl.tolist()), k_wrist),
            Stream("wrist_rotation", tuple(rot.tolist()), k_wrist, "rot6d"),
            Stream("hand_pca", tuple(pca.tolist()), k_hand)]


class ChunkSmoother:
    """Stores recent chunks and returns the smoothed step for any time they cover.

    Storage is a fixed ring of ``history`` chunk slots addressed by timestamp; a query gathers the contributing
    steps in one vectorised pass (this runs once per 30 Hz control tick).
    """

    ORDERS = ("newest_first", "oldest_first")

    def __init__(self, size: int = len(ACTION_NAMES), streams: list[Stream] | None = None,
                 horizon: int = CHUNK_STEPS, dt_s: float = 1.0 / CONTROL_HZ, history: int = CHUNK_STEPS,
                 order: str = "newest_first"):
        if order not in self.ORDERS:
            raise ValueError(f"order must be one of {self.ORDERS}, got {order!r}")
        if horizon < 1 or history < 1 or not dt_s > 0:
            raise ValueError("horizon and history must be >= 1 and dt_s > 0")
        self.size, self.horizon, self.dt_s, self.history, self.order = size, horizon, dt_s, history, order
        self.streams = list(streams) if streams is not None else action_streams()
        covered = sorted(i for s in self.streams for i in s.index)
        if covered != list(range(size)):
            raise ValueError(f"streams must cover every one of the {size} values exactly once")
        self._chunks = np.zeros((history, horizon, size))
        self._stamps = np.full(history, _EMPTY)
        # Per-value smoothing rates, so all Euclidean streams are weighted in one pass (rot6d values get theirs
        # too; their columns are then overwritten by the rotation mean).
        self._k_per_value = np.zeros(size)
        for st in self.streams:
            self._k_per_value[list(st.index)] = st.k
        # rot6d streams as (index (m, 6), slice of the decoded blocks); rotations are decoded once, when their
        # chunk arrives: (history, horizon, blocks, 3, 3).
        self._rot_blocks = []
        start = 0
        for st in self.streams:
            if st.kind == "rot6d":
                idx = np.asarray(st.index).reshape(-1, 6)
                self._rot_blocks.append((idx, slice(start, start + len(idx))))
                start += len(idx)
        self._rot_index = (np.concatenate([idx for idx, _ in self._rot_blocks]) if self._rot_blocks
                           else np.empty((0, 6), int))
        self._rotations = np.zeros((history, horizon, start, 3, 3))
        self._inv_dt = 1.0 / dt_s

    def __len__(self) -> int:
        return int((self._stamps != _EMPTY).sum())

    def reset(self):
        self._stamps[:] = _EMPTY

    def add_chunk(self, stamp_s: float, chunk) -> None:
        """Store a chunk (horizon, size) predicted from the observation stamped ``stamp_s`` (seconds)."""
        c = np.asarray(chunk, dtype=float)
        if c.shape != (self.horizon, self.size):
            raise ValueError(f"chunk must have shape ({self.horizon}, {self.size}), got {c.shape}")
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise ValueError(f"chunk stamp must be finite, got {stamp_s}")
        if not math.isfinite(c.sum()):
            bad = np.argwhere(~np.isfinite(c))[0]
            raise ValueError(f"chunk rejected: non-finite value at step {bad[0]}, index {bad[1]}")
        stamps = self._stamps
        # Stamps closer than half a tick are the same tick: the new chunk replaces the stored one.
        same = np.nonzero(np.abs(stamps - stamp) < 0.5 * self.dt_s)[0]
        if len(same):
            slot = same[0]
        else:
            empty = np.nonzero(stamps == _EMPTY)[0]
            if len(empty):
                slot = empty[0]
            else:
                slot = int(np.argmin(stamps))
                if stamps[slot] > stamp:
                    return  # older than everything kept: it could only matter less than what is stored
        self._chunks[slot] = c
        if len(self._rot_index):
            self._rotations[slot] = _rot6d_to_matrix(c[:, self._rot_index])
        stamps[slot] = stamp

    def contributions(self, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The steps (n, size) aimed at ``time_s`` and their step indices j (n,), oldest chunk first."""
        j = np.rint((time_s - self._stamps) / self.dt_s) - 1.0
        slots = np.nonzero((j >= 0) & (j < self.horizon))[0]
        slots = slots[np.argsort(self._stamps[slots])]
        js = j[slots].astype(int)
        return self._chunks[slots, js], js

    def query(self, time_s: float) -> np.ndarray | None:
        """The smoothed step for ``time_s``, or None when no stored chunk covers it."""
        j = np.rint((time_s - self._stamps) * self._inv_dt) - 1.0
        slots = np.nonzero((j >= 0) & (j < self.horizon))[0]
        n = len(slots)
        if n == 0:
            return None
        js = j[slots].astype(int)
        steps = self._chunks[slots, js]
        if n == 1:
            return steps[0].copy()
        # Weight exponent: ticks since prediction (EgoVLA), or rank from the oldest contributor (ACT).
        if self.order == "newest_first":
            exponent = js
        else:
            exponent = np.empty(n)
            exponent[np.argsort(self._stamps[slots])] = np.arange(n)
        w_all = np.exp(-np.multiply.outer(exponent, self._k_per_value))  # (n, size)
        w_all /= w_all.sum(0)
        out = np.einsum("ni,ni->i", w_all, steps)
        if self._rot_blocks:
            rotations = self._rotations[slots, js]  # (n, blocks, 3, 3)
            for idx, block in self._rot_blocks:
                w = w_all[:, idx[0, 0]]
                # Chordal mean: the rotation nearest (Frobenius) to the weighted mean of the matrices.
                u, _, vt = np.linalg.svd(np.einsum("n,nmij->mij", w, rotations[:, block]))
                mean = u @ vt
                flip = np.linalg.det(mean) < 0
                if flip.any():
                    u[flip, :, 2] *= -1.0
                    mean = u @ vt
                out[idx[:, :3]] = mean[..., :, 0]
                out[idx[:, 3:]] = mean[..., :, 1]
        return out

    def prune(self, time_s: float):
        """Drop chunks whose last step is before ``time_s`` (they can no longer contribute)."""
        old = (self._stamps != _EMPTY) & (self._stamps + self.horizon * self.dt_s < time_s - 1e-9)
        self._stamps[old] = _EMPTY


def _rot6d_to_matrix(x: np.ndarray) -> np.ndarray:
    """rot6d (..., 6) -> (..., 3, 3), the geometry core's convention, specialised for NumPy speed."""
    y = x.reshape(-1, 2, 3)
    a1, a2 = y[:, 0], y[:, 1]
    b1 = a1 / np.sqrt((a1 * a1).sum(1))[:, None]
    b2 = a2 - (b1 * a2).sum(1)[:, None] * b1
    b2 /= np.sqrt((b2 * b2).sum(1))[:, None]
    out = np.empty((y.shape[0], 3, 3))
    out[:, :, 0] = b1
    out[:, :, 1] = b2
    out[:, 0, 2] = b1[:, 1] * b2[:, 2] - b1[:, 2] * b2[:, 1]
    out[:, 1, 2] = b1[:, 2] * b2[:, 0] - b1[:, 0] * b2[:, 2]
    out[:, 2, 2] = b1[:, 0] * b2[:, 1] - b1[:, 1] * b2[:, 0]
    return out.reshape(x.shape[:-1] + (3, 3))


def smoothing_weights(k: float, n: int) -> np.ndarray:
    """Normalised weights exp(-k i), i = 0..n-1 (i = 0 is the newest prediction in EgoVLA's convention)."""
    w = np.exp(-k * np.arange(n))
    return w / w.sum()
