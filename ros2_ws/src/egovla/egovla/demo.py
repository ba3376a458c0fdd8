"""``make demo``: a short-horizon benchmark task evaluated through the whole ROS 2 graph on the MuJoCo twin.

Starts the ``sim_eval`` graph (sim bridge, policy, smoother, arm IK, hand retargeting, evaluator) as separate
processes over DDS, exactly as ``egovla-launch sim_eval`` does, then prints the SR/PSR table and where the
results, videos and per-node logs are. The policy is the best the project ships: an EgoVLA checkpoint when one is
given, otherwise the twin's scripted expert expressed as action chunks (labelled ``scripted`` in every record).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .graph import GraphError
from .launcher import run_graph


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="egovla-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="close_drawer", help="benchmark task (default close_drawer)")
    parser.add_argument("--split", default="seen", choices=["seen", "unseen"])
    parser.add_argument("--episodes", type=int, default=3, help="protocol episodes to run (default 3)")
    parser.add_argument("--checkpoint", default="", help="EgoVLA checkpoint folder (default: the scripted policy)")
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="results folder")
    parser.add_argument("--no-video", action="store_true", help="skip the mp4s")
    args = parser.parse_args(argv)
    if args.out.exists() and (args.out / "records.jsonl").exists():
        (args.out / "records.jsonl").unlink()  # a fresh run: the evaluator appends records
    values = {"task": args.task, "split": args.split, "episodes": str(args.episodes), "out": str(args.out),
              "video": "false" if args.no_video else "true",
              "policy": "egovla" if args.checkpoint else "scripted", "checkpoint": args.checkpoint}
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # a demo talks to nobody else
    env.setdefault("ROS_DOMAIN_ID", str(60 + os.getpid() % 30))
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    logs = args.out / "logs"
    label = (f"egovla checkpoint {args.checkpoint}" if args.checkpoint else
             "scripted (the twin's privileged expert expressed as action chunks: no trained checkpoint ships yet)")
    print(f"egovla demo: {args.task} ({args.split}), {args.episodes} episode(s), policy {label}; the whole ROS "
          f"graph as separate processes, logs in {logs}", flush=True)
    try:
        code = run_graph("sim_eval", values, logs, echo=False, env=env)
    except GraphError as e:
        print(f"egovla-demo: error: {e}", file=sys.stderr)
        return 2
    table = args.out / "results.md"
    if code != 0 or not table.exists():
        print(f"egovla-demo: error: the graph ended with code {code}; see the logs in {logs}", file=sys.stderr)
        return code or 1
    print(table.read_text())
    results = json.loads((args.out / "results.json").read_text())
    videos = [r["video"] for r in results.get("records", []) if r.get("video")]
    print(f"results: {args.out / 'results.json'}, {args.out / 'records.jsonl'}, {table}")
    if videos:
        print("videos (predicted wrist trajectories drawn on the head camera):\n  " + "\n  ".join(videos))
    print(f"node logs: {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
