"""A fixed reference workload, timed next to the benchmarks so that figures from different runs can be compared.

The same machine runs the same code 2-3x faster or slower from one hour to the next (shared hosts, frequency
scaling). Every benchmark group of ``make bench`` is preceded by this workload; a figure divided by the
``reference_workload_us`` of its group is comparable across runs and machines. The workload is what a control
tick consists of: interpreted Python over small dicts and floats, and NumPy calls on 3- to 14-element arrays.
"""

from __future__ import annotations

import math
import time

import numpy as np


def _iteration(rot: np.ndarray, vec: np.ndarray, names: tuple[str, ...], lo: np.ndarray, hi: np.ndarray) -> float:
    m = rot @ rot.T
    v = np.clip(vec + 0.01 * m[0, 0], lo, hi)
    targets = dict(zip(names, v.tolist()))
    total = 0.0
    for name, value in targets.items():
        total += math.sin(value) * (1.0 if name[-1] != "x" else 2.0)
    return total + float(np.linalg.norm(m[:, 0]))


def reference_workload_us(iterations: int = 2000, repeats: int = 7) -> float:
    """Median time (us) of one iteration of the reference workload over ``repeats`` runs."""
    rng = np.random.default_rng(0)
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    vec = rng.normal(size=14)
    names = tuple(f"joint_{i}" for i in range(14))
    lo, hi = np.full(14, -1.0), np.full(14, 1.0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iterations):
            _iteration(rot, vec, names, lo, hi)
        times.append((time.perf_counter() - t0) / iterations * 1e6)
    return round(float(np.median(times)), 2)


if __name__ == "__main__":
    print(reference_workload_us())
