"""Action-space speed: smoothing, hand model, retargeting MLP, and the whole step -> joint targets per tick."""

from __future__ import annotations

import time

import numpy as np
import torch

from egovla_training.action_space import indices
from egovla_training.hands import load_hand_model
from egovla_training.retarget.decode import ActionDecoder
from egovla_training.retarget.mlp import SHIPPED_STANDIN_NET, RetargetNet, load_retarget_net
from egovla_training.smoothing import ChunkSmoother


def _timed(fn, n, warmup=20):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return np.array(out)


def run() -> dict:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    out = {}
    # Smoother: one new chunk + one query per 30 Hz tick, history full.
    sm = ChunkSmoother()
    chunks = rng.normal(size=(400, 30, 48))
    for t in range(40):
        sm.add_chunk(t / 30, chunks[t])
    state = {"t": 40}

    def tick():
        t = state["t"]
        sm.add_chunk(t / 30, chunks[t % 400])
        sm.query((t + 1) / 30)
        state["t"] = t + 1

    ts = _timed(tick, 1000) * 1e6
    out["smoother_update_query_median_us"] = round(float(np.median(ts)), 1)
    out["smoother_update_query_p99_us"] = round(float(np.percentile(ts, 99)), 1)
    # Hand model: a 30-step chunk of both hands (keypoints).
    hands = {s: load_hand_model(s, kind="standin") for s in ("left", "right")}
    pca = torch.as_tensor(rng.normal(size=(30, 15)), dtype=torch.float32)
    ts = _timed(lambda: [hands[s](pca) for s in hands], 300) * 1e3
    out["hand_model_chunk_both_hands_median_ms"] = round(float(np.median(ts)), 3)
    pca_np = pca.double().numpy()
    ts = _timed(lambda: [hands[s].canonical_keypoints_numpy(pca_np) for s in hands], 300) * 1e3
    out["hand_model_chunk_both_hands_numpy_median_ms"] = round(float(np.median(ts)), 3)
    # Retargeting MLP on a chunk (30 x 30 inputs).
    try:
        net, _ = load_retarget_net(SHIPPED_STANDIN_NET, hands["left"].model_id)
    except FileNotFoundError:
        net = RetargetNet().eval()
    x = torch.as_tensor(rng.normal(size=(30, 30)) * 0.05, dtype=torch.float32)
    with torch.no_grad():
        ts = _timed(lambda: net(x), 1000) * 1e3
    out["retarget_mlp_chunk_median_ms"] = round(float(np.median(ts)), 4)
    # The same chunk through the NumPy forward pass, which the stack runs (``predict_joints``, ``ActionDecoder``).
    x_np = x.double().numpy()
    ts = _timed(lambda: net.forward_numpy(x_np), 1000) * 1e3
    out["retarget_mlp_chunk_numpy_median_ms"] = round(float(np.median(ts)), 4)
    # A whole tick: one smoothed step -> arm IK (both arms, converged) + hand joints.
    decoder = ActionDecoder(hands, net)
    step = np.zeros(48)
    current = {}
    for side in ("left", "right"):
        arm = decoder.ik.arms[side]
        t_torso = arm.forward(arm.nominal)
        from egovla_training.action_space import ee_pose_to_mano, torso_to_camera

        transl, rot = ee_pose_to_mano(torso_to_camera(t_torso, decoder.t_torso_camera), side,
                                      hands[side].root_offset.double().numpy())
        step[indices(side, "transl")] = transl
        step[indices(side, "rot6d")] = rot[:, :2].T.reshape(-1)
        current.update(zip(arm.joint_names, arm.nominal))
    moving = {"k": 0}

    def decode():
        s = step.copy()
        s[indices("left", "transl")] += 0.002 * np.sin(moving["k"] / 10)  # a moving target, as in tracking
        s[indices("right", "transl")] += 0.002 * np.cos(moving["k"] / 10)
        moving["k"] += 1
        current.update(decoder.joint_targets(s, current))

    ts = _timed(decode, 500) * 1e3
    out["step_to_joint_targets_median_ms"] = round(float(np.median(ts)), 3)
    out["step_to_joint_targets_p99_ms"] = round(float(np.percentile(ts, 99)), 3)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return out
