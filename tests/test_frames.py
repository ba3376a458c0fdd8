"""The policy's frame history and the stacked-frame image the camera node publishes."""

import numpy as np
import pytest
import torch

from egovla_training.frames import FrameHistory, squash_frames, stack_frames, unstack_frames


def test_history_selects_spaced_frames_with_the_earliest_standing_in():
    h = FrameHistory(num_frames=4, spacing=2)
    for i in range(3):
        assert h.push(f"f{i}", stamp_ns=100 + i) == "added"
    assert h.indices() == [0, 0, 0, 2] and h.selected() == ["f0", "f0", "f0", "f2"]
    for i in range(3, 12):
        h.push(f"f{i}", stamp_ns=100 + i)
    assert h.indices() == [5, 7, 9, 11] and h.selected() == ["f5", "f7", "f9", "f11"]
    assert h.selected_stamps() == [105, 107, 109, 111]
    assert len(h) == 7  # (4 - 1) * 2 + 1 frames are all that can still be shown


def test_history_replaces_a_resent_tick_refuses_an_old_one_and_resets():
    h = FrameHistory(num_frames=2, spacing=1)
    h.push("a", 10)
    h.push("b", 11)
    assert h.push("b2", 11) == "replaced" and h.selected() == ["a", "b2"] and h.pushed == 2
    assert h.push("old", 9) == "refused" and h.selected() == ["a", "b2"]
    h.reset()
    assert len(h) == 0 and h.newest_stamp_ns is None
    with pytest.raises(RuntimeError, match="no frame"):
        h.selected()
    with pytest.raises(ValueError, match="spacing"):
        FrameHistory(6, 0)


def test_stacking_round_trips_and_squashing_matches_the_model_preprocessing():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 18, 32, 3), dtype=np.uint8)
    stacked = stack_frames(frames)
    assert stacked.shape == (108, 32, 3) and np.array_equal(unstack_frames(stacked, 6), frames)
    with pytest.raises(ValueError, match="does not hold 5 frames"):
        unstack_frames(stacked, 5)
    small = squash_frames(frames, 16)
    assert small.shape == (6, 16, 16, 3) and small.dtype == np.uint8
    # The model's own interpolation of the same frames, in [0, 1]: within half a grey level after rounding.
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    ref = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    diff = np.abs(small.astype(float) / 255.0 - ref.clamp(0, 1).permute(0, 2, 3, 1).numpy())
    assert diff.max() <= 0.5 / 255.0 + 1e-6
    assert squash_frames(small, 16) is small
