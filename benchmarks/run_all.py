"""`make bench`: run every benchmark and print one JSON object (figure names carry their units)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_action  # noqa: E402
import bench_data  # noqa: E402
import bench_ik  # noqa: E402
import bench_model  # noqa: E402
import bench_ros  # noqa: E402
import bench_sim  # noqa: E402
import bench_twin  # noqa: E402
from reference import reference_workload_us  # noqa: E402


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("numpy", "scipy", "pin", "mujoco", "torch", "transformers", "pyarrow", "rclpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu_model": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}


def main() -> int:
    out = {"machine": machine(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name, module in (("ik", bench_ik), ("action", bench_action), ("sim", bench_sim), ("twin", bench_twin),
                         ("data", bench_data), ("model", bench_model), ("ros", bench_ros)):
        print(f"benchmark: {name} ...", file=sys.stderr, flush=True)
        # the machine's speed right before this group: figures divided by it compare across runs (reference.py)
        out[f"reference_workload_us_before_{name}"] = reference_workload_us()
        t0 = time.perf_counter()
        out.update(module.run())
        print(f"benchmark: {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
