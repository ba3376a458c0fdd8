"""Action-chunk smoothing: EgoVLA's weights, timestamp alignment, rotations, bad input."""

from collections import deque

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from egovla_description.geometry import average_rotations, matrix_to_rot6d, rot6d_to_matrix, rotation_distance
from egovla_training.action_space import ACTION_NAMES, indices
from egovla_training.smoothing import ChunkSmoother, Stream, action_streams, smoothing_weights

DT = 1.0 / 30.0
RNG = np.random.default_rng(0)


def euclid_smoother(k, size=4, **kw):
    return ChunkSmoother(size=size, streams=[Stream("all", tuple(range(size)), k)], **kw)


def test_weights_by_hand():
    """Three chunks of constant values 1, 2, 3 (oldest to newest), queried one tick after the newest."""
    sm = euclid_smoother(0.8)
    for i, value in enumerate((1.0, 2.0, 3.0)):
        sm.add_chunk(i * DT, np.full((30, 4), value))
    w = np.exp(-0.8 * np.array([2.0, 1.0, 0.0]))  # the newest prediction is 0 ticks old
    expected = (w / w.sum()) @ [1.0, 2.0, 3.0]
    assert np.allclose(sm.query(3 * DT), expected, atol=1e-12)
    assert np.allclose(smoothing_weights(0.8, 30)[:3], [0.551, 0.247, 0.111], atol=1e-3)  # as published
    assert np.allclose(smoothing_weights(0.2, 30)[:3], [0.182, 0.149, 0.122], atol=1e-3)


def authors_reference(chunks, k):
    """EgoVLA's smooth_action: a deque of the last 30 chunks; step i of the i-th newest chunk, weight exp(-k i)."""
    history = deque(maxlen=30)
    out = []
    for c in chunks:
        history.append(c)
        n = len(history)
        w = np.exp(-k * np.arange(n))
        w /= w.sum()
        out.append(sum(w[i] * history[-1 - i][i] for i in range(n)))
    return np.array(out)


def test_matches_the_authors_algorithm_over_a_long_run():
    chunks = RNG.normal(size=(80, 30, 4))
    reference = authors_reference(chunks, 0.2)
    sm = euclid_smoother(0.2)
    ours = []
    for t, c in enumerate(chunks):
        sm.add_chunk(t * DT, c)
        ours.append(sm.query((t + 1) * DT))
    assert np.abs(np.array(ours) - reference).max() < 1e-12


def test_late_and_duplicate_chunks_are_placed_by_timestamp():
    chunks = RNG.normal(size=(6, 30, 4))
    in_order = euclid_smoother(0.8)
    shuffled = euclid_smoother(0.8)
    for t in range(6):
        in_order.add_chunk(t * DT, chunks[t])
    for t in (3, 0, 5, 1, 4, 2, 4):  # late arrivals and a duplicate of tick 4
        shuffled.add_chunk(t * DT + 1e-4, chunks[t])  # stamps jitter a little
    assert len(shuffled) == 6
    assert np.allclose(in_order.query(6 * DT), shuffled.query(6 * DT), atol=1e-12)
    # A duplicate stamp replaces: the stored prediction for tick 5 is the latest one sent.
    replaced = chunks[5] + 1.0
    shuffled.add_chunk(5 * DT, replaced)
    assert len(shuffled) == 6 and not np.allclose(in_order.query(6 * DT), shuffled.query(6 * DT))


def test_a_missing_tick_contributes_nothing_and_ages_stay_in_ticks():
    sm = euclid_smoother(0.8)
    sm.add_chunk(0.0, np.full((30, 4), 1.0))
    sm.add_chunk(2 * DT, np.full((30, 4), 3.0))  # the chunk of tick 1 never arrived
    w = np.exp(-0.8 * np.array([2.0, 0.0]))
    assert np.allclose(sm.query(3 * DT), (w / w.sum()) @ [1.0, 3.0])
    steps, js = sm.contributions(3 * DT)
    assert js.tolist() == [2, 0]


def test_empty_single_and_expired():
    sm = euclid_smoother(0.8)
    assert sm.query(0.0) is None
    chunk = RNG.normal(size=(30, 4))
    sm.add_chunk(1.0, chunk)
    assert np.array_equal(sm.query(1.0 + DT), chunk[0])
    assert np.array_equal(sm.query(1.0 + 30 * DT), chunk[29])
    assert sm.query(1.0 + 31 * DT) is None  # beyond the chunk's horizon
    assert sm.query(1.0) is None  # a chunk's first step is one tick ahead
    sm.prune(1.0 + 31 * DT)
    assert len(sm) == 0


def test_history_is_bounded():
    sm = euclid_smoother(0.2, history=30)
    for t in range(100):
        sm.add_chunk(t * DT, RNG.normal(size=(30, 4)))
    assert len(sm) == 30


@pytest.mark.parametrize("bad, message", [
    (np.full((30, 4), np.nan), "non-finite value at step 0, index 0"),
    (np.ones((29, 4)), "chunk must have shape (30, 4)"),
])
def test_bad_chunks_are_rejected_and_lose_nothing(bad, message):
    sm = euclid_smoother(0.8)
    good = RNG.normal(size=(30, 4))
    sm.add_chunk(0.0, good)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sm.add_chunk(DT, bad)
    assert len(sm) == 1 and np.array_equal(sm.query(DT), good[0])


@pytest.mark.parametrize("column", ["zero", "parallel"])
def test_a_rot6d_block_that_is_no_rotation_is_rejected_even_when_it_would_replace_a_chunk(column):
    sm = ChunkSmoother()
    good = RNG.normal(size=(30, 48))
    sm.add_chunk(0.0, good)
    before = sm.query(DT)
    bad = good.copy()
    block = indices("right", "rot6d")
    bad[7, block[3:]] = 0.0 if column == "zero" else 2.5 * bad[7, block[:3]]
    with pytest.raises(ValueError, match="step 7 has a rot6d block that is no rotation"):
        sm.add_chunk(0.0, bad)  # same stamp: it would replace the stored chunk
    assert len(sm) == 1 and np.array_equal(sm.query(DT), before)
    assert np.array_equal(sm.contributions(8 * DT)[0][0], good[7])


def test_oldest_first_order_favours_the_first_prediction():
    sm = euclid_smoother(0.8, order="oldest_first")
    for i, value in enumerate((1.0, 2.0, 3.0)):
        sm.add_chunk(i * DT, np.full((30, 4), value))
    w = np.exp(-0.8 * np.arange(3))
    assert np.allclose(sm.query(3 * DT), (w / w.sum()) @ [1.0, 2.0, 3.0])


def test_action_layout_streams_average_rotations_properly():
    sm = ChunkSmoother()
    base = Rotation.random(2, random_state=4).as_matrix()
    rots, chunks = [], []
    for t in range(8):
        c = RNG.normal(size=(30, len(ACTION_NAMES)))
        r = np.stack([Rotation.from_rotvec(RNG.normal(scale=0.3, size=3)).as_matrix() @ b for b in base])
        for side, rr in zip(("left", "right"), r):
            c[:, indices(side, "rot6d")] = matrix_to_rot6d(rr)
        rots.append(r)
        chunks.append(c)
        sm.add_chunk(t * DT, c)
    out = sm.query(8 * DT)
    js = np.arange(8)[::-1]  # the chunk of tick t contributes its step 7 - t
    w_wrist = np.exp(-0.2 * js)
    w_hand = np.exp(-0.8 * js)
    pca = indices("left", "pca")
    assert np.allclose(out[pca], (w_hand / w_hand.sum()) @ np.stack([c[j, pca] for c, j in zip(chunks, js)]))
    tr = indices("right", "transl")
    assert np.allclose(out[tr], (w_wrist / w_wrist.sum()) @ np.stack([c[j, tr] for c, j in zip(chunks, js)]))
    for h, side in enumerate(("left", "right")):
        got = rot6d_to_matrix(out[indices(side, "rot6d")])
        expected = average_rotations(np.stack([r[h] for r in rots]), w_wrist)
        assert np.abs(got - expected).max() < 1e-9
        # An element-wise rot6d average decodes to a different rotation.
        naive = rot6d_to_matrix((w_wrist / w_wrist.sum()) @ np.stack([matrix_to_rot6d(r[h]) for r in rots]))
        assert rotation_distance(naive, expected) > 1e-4


def test_stream_validation():
    with pytest.raises(ValueError, match="cover every one"):
        ChunkSmoother(size=48, streams=action_streams()[:2])
    with pytest.raises(ValueError, match="order must be"):
        ChunkSmoother(order="middle_first")


def brute_force(stored, time_s, order, k_wrist=0.2, k_hand=0.8):
    """Every stored (stamp, chunk) covering ``time_s``, weighted per stream; rotations by the geometry core."""
    hits = []
    for stamp, chunk in sorted(stored):
        j = int(round((time_s - stamp) / DT)) - 1
        if 0 <= j < 30:
            hits.append((j, chunk[j]))
    exps = np.array([j for j, _ in hits] if order == "newest_first" else range(len(hits)), float)
    steps = np.stack([s for _, s in hits])
    out = np.empty(len(ACTION_NAMES))
    for part, k in (("transl", k_wrist), ("pca", k_hand)):
        w = np.exp(-k * exps)
        for side in ("left", "right"):
            idx = indices(side, part)
            out[idx] = (w / w.sum()) @ steps[:, idx]
    for side in ("left", "right"):
        idx = indices(side, "rot6d")
        mean = average_rotations(rot6d_to_matrix(steps[:, idx]), np.exp(-k_wrist * exps))
        out[idx] = matrix_to_rot6d(mean)
    return out


@pytest.mark.parametrize("order", ["newest_first", "oldest_first"])
def test_full_layout_matches_a_brute_force_reference_with_late_duplicate_and_missing_chunks(order):
    rng = np.random.default_rng(7)
    sm = ChunkSmoother(order=order)
    stored = {}
    arrivals = [0, 1, 3, 2, 4, 4, 6, 5, 8, 9, 7, 10] + list(range(11, 60))  # late, duplicate (4), 6 and 5 swapped
    for t in arrivals:
        chunk = rng.normal(size=(30, len(ACTION_NAMES)))
        stamp = t * DT + rng.uniform(-0.2, 0.2) * DT  # stamps jitter around the tick
        sm.add_chunk(stamp, chunk)
        stored = {s: c for s, c in stored.items() if abs(s - stamp) >= 0.5 * DT}  # same tick: replaced
        stored[stamp] = chunk
        stored = dict(sorted(stored.items())[-30:])  # the 30 newest are kept
        for query in (t + 1, t + 5):
            got = sm.query(query * DT)
            expected = brute_force(stored.items(), query * DT, order)
            rot = np.concatenate([indices(side, "rot6d") for side in ("left", "right")])
            other = np.setdiff1d(np.arange(len(ACTION_NAMES)), rot)
            assert np.abs(got[other] - expected[other]).max() < 1e-9, (t, query)
            # Compared as rotations: a single contributing chunk is passed through as predicted (rot6d not
            # orthonormalised), which decodes to the same rotation.
            for side in ("left", "right"):
                idx = indices(side, "rot6d")
                assert np.abs(rot6d_to_matrix(got[idx]) - rot6d_to_matrix(expected[idx])).max() < 1e-9, (t, query)
