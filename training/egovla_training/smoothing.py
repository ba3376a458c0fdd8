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
or Inf, of the wrong shape, or with a rot6d block that is no rotation (a zero column, or two parallel ones) is
rejected with ``ValueError`` and the stored history is untouched.

Streams: the values of a step are smoothed per stream, each with its own ``k``: plain weighted means for
Euclidean quantities (wrist translation, hand PCA, joint angles) and the weighted chordal mean of rotations for
rot6d blocks (``egovla_description.geometry.average_rotations``), never an element-wise rot6d average.

The two per-tick loops (storing a chunk with its rotations decoded and weighted, and the weighted sum plus the
rotation projection of a query) are compiled with Numba (``cache=True``: compiled once per install, about a second,
then loaded from the cache); the tests check them against a NumPy brute-force reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .action_space import ACTION_NAMES, CHUNK_STEPS, CONTROL_HZ, SIDES, indices


_EMPTY = -1e15  # stamp (in ticks) of an empty slot: so far in the past that it covers no time


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

    Storage is a fixed ring of ``history`` chunk slots addressed by timestamp. Each stored step is extended, when
    its chunk arrives, with its rotations decoded to matrices and with one column per smoothing rate (the weights'
    normaliser); with EgoVLA's order the whole extended step is also multiplied by its weight then, because the
    weight depends only on the step index. A query then gathers the contributing steps and sums them in one
    pass, and only the rotation projection (one batched 3x3 SVD) follows. This runs once per 30 Hz control tick.
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
        # rot6d blocks (m, 6) in stream order.
        blocks = [np.asarray(st.index).reshape(-1, 6) for st in self.streams if st.kind == "rot6d"]
        self._rot_index = np.concatenate(blocks) if blocks else np.empty((0, 6), int)
        n_rot = len(self._rot_index)
        rates = sorted({st.k for st in self.streams})
        # Extended step: values [0, size), rotation matrices (9 per block, row-major), then one column per rate
        # holding 1 (weighted, they sum to each value's normaliser).
        k = np.zeros(size + 9 * n_rot + len(rates))
        self._denominator = np.zeros(size, np.intp)  # the normaliser column of each value
        for st in self.streams:
            k[list(st.index)] = st.k
            self._denominator[list(st.index)] = size + 9 * n_rot + rates.index(st.k)
        for b, idx in enumerate(self._rot_index):
            k[size + 9 * b:size + 9 * (b + 1)] = k[idx[0]]  # scaling a block's weights leaves its projection
        k[size + 9 * n_rot:] = rates
        # Weights exp(-k e) per exponent e (ticks since prediction, or rank from the oldest; both < max(horizon,
        # history)) and extended value.
        self._weights = np.exp(-np.multiply.outer(np.arange(max(horizon, history)), k))
        self._weighted = order == "newest_first"
        # Step j of a chunk is stored at row j + 1 (row 0 unused), so a query indexes rows by ticks since the
        # chunk's stamp.
        self._ext = np.zeros((history, horizon + 1, len(k)))
        self._ext[:, 1:, size + 9 * n_rot:] = self._weights[:horizon, size + 9 * n_rot:] if self._weighted else 1.0
        self._chunks = np.zeros((history, horizon, size))
        self._ticks = np.full(history, _EMPTY)  # chunk stamps in ticks (stamp / dt_s)
        self._inv_dt = 1.0 / dt_s
        # Compile (or load from Numba's cache) now rather than inside the first control tick.
        scratch, chunk = self._ext[:1].copy(), np.zeros((horizon, size))
        chunk[:, self._rot_index[:, [0, 4]]] = 1.0  # identity rotations
        first = np.zeros(1, np.intp)
        _store(chunk, self._rot_index, self._weights, self._weighted, scratch[0])
        _sum_and_project(scratch, first, first + 1, first, self._weights, self._weighted, self._denominator,
                         self._rot_index, np.empty(size))

    def __len__(self) -> int:
        return int((self._ticks != _EMPTY).sum())

    def reset(self):
        self._ticks[:] = _EMPTY

    def add_chunk(self, stamp_s: float, chunk) -> None:
        """Store a chunk (horizon, size) predicted from the observation stamped ``stamp_s`` (seconds)."""
        c = np.ascontiguousarray(chunk, dtype=float)
        if c.shape != (self.horizon, self.size):
            raise ValueError(f"chunk must have shape ({self.horizon}, {self.size}), got {c.shape}")
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise ValueError(f"chunk stamp must be finite, got {stamp_s}")
        if not math.isfinite(c.sum()):
            bad = np.argwhere(~np.isfinite(c))[0]
            raise ValueError(f"chunk rejected: non-finite value at step {bad[0]}, index {bad[1]}")
        tick = stamp * self._inv_dt
        ticks = self._ticks
        # Stamps closer than half a tick are the same tick: the new chunk replaces the stored one.
        gap = np.abs(ticks - tick)
        slot = int(gap.argmin())
        if gap[slot] >= 0.5:
            slot = int(ticks.argmin())  # an empty slot (its stamp is the lowest), else the oldest chunk
            if ticks[slot] > tick:
                return  # older than everything kept: it could only matter less than what is stored
        bad = _store(c, self._rot_index, self._weights, self._weighted, self._ext[slot])
        if bad >= 0:
            raise ValueError(f"chunk rejected: step {bad} has a rot6d block that is no rotation (a zero or "
                             f"two parallel columns)")
        self._chunks[slot] = c
        ticks[slot] = tick

    def _contributing(self, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Slots of the chunks covering ``time_s`` and, for each, the ticks since its stamp (1..horizon)."""
        ticks = np.rint(time_s * self._inv_dt - self._ticks)
        slots = np.flatnonzero(np.abs(ticks - 0.5 * (self.horizon + 1)) < 0.5 * self.horizon)
        return slots, ticks[slots].astype(np.intp)

    def contributions(self, time_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The steps (n, size) aimed at ``time_s`` and their step indices j (n,), oldest chunk first."""
        slots, ages = self._contributing(time_s)
        order = np.argsort(self._ticks[slots])
        return self._chunks[slots[order], ages[order] - 1], ages[order] - 1

    def query(self, time_s: float) -> np.ndarray | None:
        """The smoothed step for ``time_s``, or None when no stored chunk covers it."""
        slots, ages = self._contributing(time_s)
        n = len(slots)
        if n == 0:
            return None
        if n == 1:
            return self._chunks[slots[0], ages[0] - 1].copy()
        # EgoVLA: weight exp(-k j) with j = ticks since prediction, applied when stored; ACT: weight by rank from
        # the oldest contributor, applied here.
        rank = ages if self._weighted else np.argsort(np.argsort(self._ticks[slots]))
        out = np.empty(self.size)
        _sum_and_project(self._ext, slots, ages, rank, self._weights, self._weighted, self._denominator,
                         self._rot_index, out)
        return out

    def prune(self, time_s: float):
        """Drop chunks whose last step is before ``time_s`` (they can no longer contribute)."""
        old = (self._ticks != _EMPTY) & (self._ticks + self.horizon < time_s * self._inv_dt - 1e-9 * self._inv_dt)
        self._ticks[old] = _EMPTY


@njit(cache=True, nogil=True, error_model="numpy")
def _store(c, rot_index, weights, weighted, ext):
    """Fill rows 1..horizon of a slot's extended steps from chunk ``c`` (horizon, size): the values, then each
    rot6d block decoded to a row-major matrix (the geometry core's Gram-Schmidt: columns b1, b2, b1 x b2), all
    multiplied by their weights when ``weighted``. The normaliser columns are set once, in ``__init__``.
    Returns -1, or (writing nothing) the first step with a rot6d block that is no rotation (a zero column, or
    two parallel ones)."""
    horizon, size = c.shape
    for j in range(horizon):
        for b in range(rot_index.shape[0]):
            i = rot_index[b]
            a1x, a1y, a1z = c[j, i[0]], c[j, i[1]], c[j, i[2]]
            a2x, a2y, a2z = c[j, i[3]], c[j, i[4]], c[j, i[5]]
            cx, cy, cz = a1y * a2z - a1z * a2y, a1z * a2x - a1x * a2z, a1x * a2y - a1y * a2x
            n1 = a1x * a1x + a1y * a1y + a1z * a1z
            n2 = a2x * a2x + a2y * a2y + a2z * a2z
            if not cx * cx + cy * cy + cz * cz > 1e-18 * n1 * n2 or not n1 * n2 > 1e-300:
                return j
    for j in range(horizon):
        row = ext[j + 1]
        for v in range(size):
            row[v] = c[j, v] * weights[j, v] if weighted else c[j, v]
        for b in range(rot_index.shape[0]):
            i = rot_index[b]
            a1x, a1y, a1z = c[j, i[0]], c[j, i[1]], c[j, i[2]]
            a2x, a2y, a2z = c[j, i[3]], c[j, i[4]], c[j, i[5]]
            n = 1.0 / np.sqrt(a1x * a1x + a1y * a1y + a1z * a1z)
            b1x, b1y, b1z = a1x * n, a1y * n, a1z * n
            d = b1x * a2x + b1y * a2y + b1z * a2z
            b2x, b2y, b2z = a2x - d * b1x, a2y - d * b1y, a2z - d * b1z
            n = 1.0 / np.sqrt(b2x * b2x + b2y * b2y + b2z * b2z)
            b2x, b2y, b2z = b2x * n, b2y * n, b2z * n
            m = (b1x, b2x, b1y * b2z - b1z * b2y,
                 b1y, b2y, b1z * b2x - b1x * b2z,
                 b1z, b2z, b1x * b2y - b1y * b2x)
            col = size + 9 * b
            for e in range(9):
                row[col + e] = m[e] * weights[j, col + e] if weighted else m[e]
    return -1


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_and_project(ext, slots, ages, rank, weights, weighted, denominator, rot_index, out):
    """``out`` (size,) = the weighted mean of the contributing extended steps ``ext[slots, ages]`` (pre-weighted
    when ``weighted``, else weighted here by ``weights[rank]``), each rot6d block replaced by the chordal mean:
    the rotation nearest (Frobenius) to the weighted sum of its matrices."""
    n_ext = ext.shape[2]
    total = np.zeros(n_ext)
    for s in range(len(slots)):
        step = ext[slots[s], ages[s]]
        if weighted:
            for e in range(n_ext):
                total[e] += step[e]
        else:
            w = weights[rank[s]]
            for e in range(n_ext):
                total[e] += w[e] * step[e]
    size = out.shape[0]
    for v in range(size):
        out[v] = total[v] / total[denominator[v]]
    for b in range(rot_index.shape[0]):
        m = total[size + 9 * b:size + 9 * (b + 1)].copy().reshape(3, 3)
        u, _, vt = np.linalg.svd(m)
        r = u @ vt
        if np.linalg.det(r) < 0:
            u[:, 2] = -u[:, 2]
            r = u @ vt
        for a in range(3):
            out[rot_index[b, a]] = r[a, 0]
            out[rot_index[b, 3 + a]] = r[a, 1]


def smoothing_weights(k: float, n: int) -> np.ndarray:
    """Normalised weights exp(-k i), i = 0..n-1 (i = 0 is the newest prediction in EgoVLA's convention)."""
    w = np.exp(-k * np.arange(n))
    return w / w.sum()
