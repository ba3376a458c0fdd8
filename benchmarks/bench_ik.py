"""Arm IK speed and accuracy on the benchmark arm chain (7 joints to the hand base link).

Targets: forward kinematics of random in-limit configurations. Warm start: the target configuration perturbed by
up to 0.2 rad per joint (the previous control tick's solution); cold start: the nominal posture. Times are per
arm and per call, measured over 3 passes of 500 targets per arm; figures are the median over passes of each
pass's statistic (the machine's timing noise between passes is reported as the spread).
"""

from __future__ import annotations

import gc
import time

import numpy as np

from egovla_description.ik import ArmIK


def _pass(arms, rng, n):
    warm_ms, cold_ms, step_us = [], [], []
    warm_ok = cold_ok = total = 0
    for arm in arms:
        qs = rng.uniform(arm.lower, arm.upper, size=(n, arm.nq))
        targets = [arm.forward(q) for q in qs]
        seeds = np.clip(qs + rng.uniform(-0.2, 0.2, qs.shape), arm.lower, arm.upper)
        near = np.clip(qs + rng.uniform(-0.02, 0.02, qs.shape), arm.lower, arm.upper)
        for target, seed, s in zip(targets, seeds, near):
            t0 = time.perf_counter()
            r = arm.solve(target, seed)
            warm_ms.append((time.perf_counter() - t0) * 1e3)
            warm_ok += r.converged
            t0 = time.perf_counter()
            r = arm.solve(target, None)
            cold_ms.append((time.perf_counter() - t0) * 1e3)
            cold_ok += r.converged
            t0 = time.perf_counter()
            arm.step(target, s)
            step_us.append((time.perf_counter() - t0) * 1e6)
            total += 1
    return {
        "warm_median_ms": float(np.median(warm_ms)), "warm_p99_ms": float(np.percentile(warm_ms, 99)),
        "cold_median_ms": float(np.median(cold_ms)), "cold_p99_ms": float(np.percentile(cold_ms, 99)),
        "step_median_us": float(np.median(step_us)), "step_p99_us": float(np.percentile(step_us, 99)),
        "warm_rate": warm_ok / total, "cold_rate": cold_ok / total,
    }


def run(passes: int = 3, targets_per_arm: int = 500) -> dict:
    arms = [ArmIK(side=s) for s in ("left", "right")]
    rng = np.random.default_rng(0)
    _pass(arms, np.random.default_rng(99), 50)  # warm-up
    gc.disable()
    try:
        results = [_pass(arms, rng, targets_per_arm) for _ in range(passes)]
    finally:
        gc.enable()
    med = {k: float(np.median([r[k] for r in results])) for k in results[0]}
    spread = {k: [round(r[k], 4) for r in results] for k in ("warm_median_ms", "warm_p99_ms", "step_median_us")}
    return {
        "ik_converged_median_ms": round(med["warm_median_ms"], 4),
        "ik_converged_p99_ms": round(med["warm_p99_ms"], 4),
        "ik_single_step_median_us": round(med["step_median_us"], 2),
        "ik_single_step_p99_us": round(med["step_p99_us"], 2),
        "ik_cold_start_median_ms": round(med["cold_median_ms"], 4),
        "ik_cold_start_p99_ms": round(med["cold_p99_ms"], 4),
        "ik_warm_start_success_fraction": round(med["warm_rate"], 4),
        "ik_cold_start_success_fraction": round(med["cold_rate"], 4),
        "ik_targets_per_pass": 2 * targets_per_arm,
        "ik_per_pass": spread,
    }
