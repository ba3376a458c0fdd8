"""Streaming training samples from one or more datasets into a torch ``DataLoader``.

``SampleStream`` is an ``IterableDataset``. The unit of work is one episode (one row group of a shard): an
episode's frames are read and decoded once, in the worker that owns it, and all of its samples are built from
them. Per epoch:

1. every episode of every dataset is put in one list and shuffled with ``(seed, epoch)``: the same order on every
   rank and worker;
2. global worker ``g = rank * num_workers + worker_id`` of ``G = world_size * num_workers`` takes episodes
   ``g, g + G, g + 2G, ...``: workers and ranks get disjoint sets whose union is everything, so every sample is
   seen exactly once per epoch;
3. a worker visits its episodes in that order, each episode's samples in a random permutation, through a shuffle
   buffer of ``shuffle_buffer`` samples that mixes neighbouring episodes.

The order is a function of (seed, epoch, world_size, num_workers) only. Call ``set_epoch`` before each epoch; the
epoch lives in shared memory, so persistent workers see it too. Episodes are the grain, so ranks can end an epoch
with a few samples more or less than each other: ``batches_per_rank`` says how many batches each yields, and the
trainer stops every rank at the smallest count.

Memory per worker: one episode's decoded frames (at ``image_size``) plus the frames of the samples waiting in the
buffer (neighbouring samples share frame arrays, so a buffered sample costs ~1 frame, not 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..hands.model import HandModelMismatchError, check_model_id
from .schema import Sample
from .storage import DatasetReader, EpisodeData, decode_frame


class SampleStream(IterableDataset):
    """Samples of the datasets at ``roots``, shuffled and sharded over DataLoader workers and ranks.

    ``image_size``: (height, width) (or an int for square) to resize frames to in the worker, e.g. the model's
    384; None keeps the stored size. ``hand_model``: the id of the hand model in use; every dataset must
    record it (``HandModelMismatchError`` otherwise), and all datasets must agree even when it is None.
    ``shuffle=False`` streams in storage order (still sharded), for evaluation. ``episode_fractions``: per root,
    the share of its episodes to use (at least one), a subset drawn once from ``seed``: the same in every epoch, on
    every rank and worker (the paper's 50 %-of-robot-demos ablation)."""

    def __init__(self, roots: str | Path | Sequence[str | Path], *, seed: int = 0, shuffle: bool = True,
                 shuffle_buffer: int = 256, image_size: int | tuple[int, int] | None = None, rank: int = 0,
                 world_size: int = 1, hand_model: str | None = None,
                 episode_fractions: Sequence[float] | None = None):
        super().__init__()
        roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
        if not roots:
            raise ValueError("need at least one dataset root")
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")
        self.readers = [DatasetReader(r) for r in roots]
        first = self.readers[0]
        for reader in self.readers:
            if hand_model is not None:
                check_model_id(reader.hand_model, hand_model, what=f"dataset {reader.root}")
            elif reader.hand_model != first.hand_model:
                raise HandModelMismatchError(
                    f"dataset {reader.root} was made with hand model {reader.hand_model!r} but {first.root} with "
                    f"{first.hand_model!r}; regenerate one of them with the other's hand model")
        self.hand_model = first.hand_model
        self.seed, self.shuffle, self.shuffle_buffer = int(seed), shuffle, shuffle_buffer
        # All episodes, as (reader index, episode ref): the unit of shuffling and sharding.
        fractions = [1.0] * len(roots) if episode_fractions is None else [float(f) for f in episode_fractions]
        if len(fractions) != len(roots) or not all(0.0 < f <= 1.0 for f in fractions):
            raise ValueError(f"episode_fractions: one value in (0, 1] per dataset root ({len(roots)}), got "
                             f"{episode_fractions}")
        self.units = [(i, r.episodes[k]) for i, (r, f) in enumerate(zip(self.readers, fractions))
                      for k in _kept_episodes(len(r.episodes), f, [self.seed, i])]
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.rank, self.world_size = rank, world_size
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @property
    def num_samples(self) -> int:
        """Samples in one epoch over all ranks (a rank sees about ``num_samples / world_size``). There is no
        ``__len__``: a rank's exact share changes from epoch to epoch, and a wrong length would mislead
        ``len(DataLoader)``."""
        return sum(ref.num_samples for _, ref in self.units)

    def worker_units(self, epoch: int, worker_id: int = 0, num_workers: int = 1) -> list:
        """The episodes (reader index, ref) that one worker of this rank streams in ``epoch``, in order."""
        order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.units)) if self.shuffle
                 else np.arange(len(self.units)))
        g, total = self.rank * num_workers + worker_id, self.world_size * num_workers
        return [self.units[k] for k in order[g::total]]

    def batches_per_rank(self, epoch: int, batch_size: int, num_workers: int = 0) -> list[int]:
        """How many batches each rank's ``DataLoader`` yields in ``epoch``: every worker batches its own samples, so
        a rank yields ``sum over its workers of ceil(samples / batch_size)``. Ranks differ by a batch or so (episodes
        are the grain); data-parallel training must stop every rank at the minimum, or the others wait forever."""
        workers = max(1, num_workers)
        counts = []
        for rank in range(self.world_size):
            shard = SampleStream.__new__(SampleStream)
            shard.__dict__.update(self.__dict__, rank=rank)
            counts.append(sum(-(-sum(ref.num_samples for _, ref in shard.worker_units(epoch, w, workers))
                                // batch_size) for w in range(workers)))
        return counts

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        worker_id, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        epoch = self.epoch
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker_id])
        buffer: list = []  # (episode data, sample index, its 6 decoded frames)
        for reader_index, ref in self.worker_units(epoch, worker_id, num_workers):
            data = self.readers[reader_index].read_episode(ref)
            for item in self._episode_items(data, rng):
                if not self.shuffle:
                    yield _materialise(item)
                    continue
                buffer.append(item)
                if len(buffer) >= self.shuffle_buffer:
                    j = int(rng.integers(len(buffer)))
                    buffer[j], buffer[-1] = buffer[-1], buffer[j]
                    yield _materialise(buffer.pop())
        for j in rng.permutation(len(buffer)):
            yield _materialise(buffer[j])

    def _episode_items(self, data: EpisodeData, rng: np.random.Generator):
        """(data, i, frames) for the episode's samples, in a random order if shuffling; each frame decoded once."""
        decoded: dict[int, np.ndarray] = {}
        rows = data.columns["frame_rows"]  # (S, 6)
        order = rng.permutation(len(data)) if self.shuffle else range(len(data))
        for i in order:
            frames = []
            for r in rows[i]:
                r = int(r)
                if r not in decoded:
                    decoded[r] = decode_frame(data.images[r], self.image_size)
                frames.append(decoded[r])
            yield data, int(i), frames


def _materialise(item) -> Sample:
    data, i, frames = item
    return data.sample(i, frames)


def _kept_episodes(count: int, fraction: float, seed) -> np.ndarray:
    """Indices (in storage order) of ``round(fraction * count)`` episodes (at least one), chosen with ``seed``."""
    if fraction >= 1.0:
        return np.arange(count)
    keep = max(1, int(round(fraction * count)))
    return np.sort(np.random.default_rng(seed).permutation(count)[:keep])
