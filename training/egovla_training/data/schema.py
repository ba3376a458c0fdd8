"""One training sample, for human video and robot demonstrations alike.

A sample is what the model sees at one moment ``t`` of one episode, plus what it should predict:

- ``frames`` (6, H, W, 3) uint8 RGB in chronological order, the current frame LAST: ``[t-5d, ..., t-d, t]``
  with ``d`` the history spacing in frames (dataset metadata). ``frame_mask`` (6,) is False where a history
  frame did not exist (episode start); such a slot holds a copy of the earliest history frame that does exist,
  so every slot is a real image and the model may attend to it or mask it. (The authors' image stack is
  ``[t-d, ..., t-5d, t]``; a model matching their checkpoint reorders the history slots, the data does not.)
- ``instruction``: the language instruction.
- proprioception per hand, left then right, all in the OpenCV optical frame of the current camera:
  ``proprio_translation`` (2, 3) MANO ``transl``, ``proprio_rotation`` (2, 3) MANO global orientation as
  axis-angle, ``proprio_fingertips`` (2, 5, 3) thumb..pinky tips; ``proprio_mask`` (2,) hand observed.
- ``actions`` (30, 48) in ``action_space.ACTION_NAMES`` order (hand PCA *not* normalised: normalisation belongs
  to the model and travels with its checkpoint); ``action_mask`` (30, 2) per step and hand (left, right).
- provenance: ``source`` (dataset name), ``embodiment`` ("human" or a robot such as "h1_inspire"),
  ``hand_model`` (the hand-model id that produced the MANO quantities), ``episode``, ``frame_index``.

``validate_sample`` names the offending field, what it got and what was expected; ``collate_samples`` batches
samples into torch tensors (strings stay lists) for a ``DataLoader``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch.utils.data import get_worker_info

from ..action_space import CHUNK_STEPS, SIDES, STEP_SIZE

HISTORY_FRAMES = 6  # 5 history frames + the current one
NUM_FINGERTIPS = 5

# Numeric fields: name -> (dtype, shape). None in a shape = any size (image height and width).
ARRAY_FIELDS: dict[str, tuple[np.dtype, tuple]] = {
    "frames": (np.dtype(np.uint8), (HISTORY_FRAMES, None, None, 3)),
    "frame_mask": (np.dtype(bool), (HISTORY_FRAMES,)),
    "proprio_translation": (np.dtype(np.float32), (len(SIDES), 3)),
    "proprio_rotation": (np.dtype(np.float32), (len(SIDES), 3)),
    "proprio_fingertips": (np.dtype(np.float32), (len(SIDES), NUM_FINGERTIPS, 3)),
    "proprio_mask": (np.dtype(bool), (len(SIDES),)),
    "actions": (np.dtype(np.float32), (CHUNK_STEPS, STEP_SIZE)),
    "action_mask": (np.dtype(bool), (CHUNK_STEPS, len(SIDES))),
}
STRING_FIELDS = ("instruction", "source", "embodiment", "hand_model", "episode")


class SampleError(ValueError):
    """A sample field has the wrong type, dtype, shape or value."""


@dataclass
class Sample:
    """One training sample; shapes and meaning in the module docstring."""

    frames: np.ndarray  # (6, H, W, 3) uint8, oldest first, current last
    frame_mask: np.ndarray  # (6,) bool
    instruction: str
    proprio_translation: np.ndarray  # (2, 3) float32
    proprio_rotation: np.ndarray  # (2, 3) float32 axis-angle
    proprio_fingertips: np.ndarray  # (2, 5, 3) float32
    proprio_mask: np.ndarray  # (2,) bool
    actions: np.ndarray  # (30, 48) float32
    action_mask: np.ndarray  # (30, 2) bool
    source: str
    embodiment: str
    hand_model: str
    episode: str
    frame_index: int


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:120]


def check_array(name: str, value, leading: tuple = ()) -> None:
    """Raise ``SampleError`` unless ``value`` is an array of field ``name``'s dtype and shape.

    ``leading`` prepends batch dimensions (e.g. ``(S,)`` for one episode's stacked labels)."""
    dtype, shape = ARRAY_FIELDS[name]
    shape = tuple(leading) + shape
    want = f"{dtype} array of shape {tuple('any' if s is None else s for s in shape)}"
    if not isinstance(value, np.ndarray):
        raise SampleError(f"field {name!r}: expected {want}, got {_describe(value)}")
    if value.dtype != dtype or value.ndim != len(shape) or any(
            s is not None and s != v for s, v in zip(shape, value.shape)):
        raise SampleError(f"field {name!r}: expected {want}, got {_describe(value)}")
    if dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))[0].tolist()
        raise SampleError(f"field {name!r}: expected finite values, got {value[tuple(bad)]} at index {bad} "
                          "(fill unobserved values with 0 and clear the mask instead)")


def validate_sample(sample: Sample) -> None:
    """Raise ``SampleError`` naming the first field that breaks the schema (module docstring)."""
    if not isinstance(sample, Sample):
        raise SampleError(f"expected a Sample, got {type(sample).__name__}")
    for name in ARRAY_FIELDS:
        check_array(name, getattr(sample, name))
    h, w = sample.frames.shape[1:3]
    if h == 0 or w == 0:
        raise SampleError(f"field 'frames': expected non-empty images, got shape {sample.frames.shape}")
    if not sample.frame_mask[-1]:
        raise SampleError("field 'frame_mask': the current frame (last slot) must exist, got "
                          f"{sample.frame_mask.tolist()}")
    for name in STRING_FIELDS:
        value = getattr(sample, name)
        if not isinstance(value, str):
            raise SampleError(f"field {name!r}: expected str, got {_describe(value)}")
        if name != "instruction" and not value:
            raise SampleError(f"field {name!r}: expected a non-empty string")
    if not isinstance(sample.frame_index, (int, np.integer)) or isinstance(sample.frame_index, bool) \
            or sample.frame_index < 0:
        raise SampleError(f"field 'frame_index': expected an int >= 0, got {_describe(sample.frame_index)}")


def history_frame_indices(frame_index: int, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (6,) of a sample's image slots, oldest first, and their mask (6,).

    Slot i shows frame ``t - (5 - i) * spacing``; a slot before the episode start is masked and shows the
    earliest history frame that exists (the current frame at ``t = 0``)."""
    if spacing < 1:
        raise ValueError(f"history spacing must be >= 1 frame, got {spacing}")
    wanted = frame_index - spacing * np.arange(HISTORY_FRAMES - 1, -1, -1)  # (6,)
    mask = wanted >= 0
    earliest = wanted[mask][0]
    return np.where(mask, wanted, earliest), mask


def collate_samples(samples: list[Sample]) -> dict:
    """Batch samples: numeric fields -> torch tensors with a leading batch dimension, strings -> lists.

    ``frames`` stays uint8 (B, 6, H, W, 3): converting to float and normalising is the model's job (and 4x
    cheaper to move between processes as bytes)."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    sizes = {s.frames.shape[1:3] for s in samples}
    if len(sizes) > 1:
        raise SampleError(f"field 'frames': samples in a batch have different image sizes {sorted(sizes)}; "
                          "set the loader's image_size to resize them")
    out = {}
    for f in fields(Sample):
        values = [getattr(s, f.name) for s in samples]
        if f.name == "frames":
            out[f.name] = _stack_for_transfer(values)
        elif f.name in ARRAY_FIELDS:
            out[f.name] = torch.from_numpy(np.stack(values))
        elif f.name == "frame_index":
            out[f.name] = torch.tensor(values, dtype=torch.int64)
        else:
            out[f.name] = values
    return out


def _stack_for_transfer(arrays: list[np.ndarray]) -> torch.Tensor:
    """Stack into a new tensor; inside a DataLoader worker, straight into shared memory.

    A worker's batch reaches the main process through shared memory. A tensor in private memory would be copied
    there when sent; writing the frames there directly saves that copy of ~2.6 MB per 384 px sample (as
    ``default_collate`` does)."""
    shape = (len(arrays),) + arrays[0].shape
    if get_worker_info() is None:
        out = torch.empty(shape, dtype=torch.uint8)
    else:
        storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
        out = torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)
    np.stack(arrays, out=out.numpy())
    return out
