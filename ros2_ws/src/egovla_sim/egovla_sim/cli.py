"""``egovla-sim``: look at the MuJoCo twin of the benchmark and evaluate policies on it.

    egovla-sim info                                   the 12 tasks: instruction, horizon, physics step, objects
    egovla-sim view --out tasks.png                   head-camera screenshot grid of all tasks (room 1, table 1)
    egovla-sim view --task stack_can --looks --out looks.png    one task in all 25 room x table configurations
    egovla-sim eval --task all --policy scripted --split seen [--episodes N] [--video DIR] --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _grid(images: list[np.ndarray], cols: int, labels: list[str] | None = None) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        tile = Image.fromarray(img)
        if labels:
            draw = ImageDraw.Draw(tile)
            draw.rectangle((0, 0, 8 + 7 * len(labels[k]), 18), fill=(0, 0, 0))
            draw.text((4, 3), labels[k], fill=(255, 255, 255))
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.asarray(tile)
    return out


def cmd_info(args) -> int:
    from .tasks import TASKS

    for t in TASKS.values():
        objs = ", ".join(o.name for o in t.objects)
        print(f"{t.name:24s} {t.group:5s} horizon {t.horizon:3d}  dt 1/{round(1 / t.physics_dt)}  "
              f"\"{t.instruction}\"\n{'':24s} objects: {objs}")
    return 0


def cmd_view(args) -> int:
    from PIL import Image

    from .env import BenchmarkEnv, EnvOptions
    from .tasks import TASKS, get_task
    from .visuals import ROOMS, TABLES

    opts = EnvOptions(render_width=args.width, render_height=args.height)
    images, labels = [], []
    if args.looks:
        task = get_task(args.task or "stack_can")
        env = BenchmarkEnv(task, options=opts)
        for room in ROOMS:
            for table in TABLES:
                env.reset(seed=0, visual=(room, table), placement_index=args.placement)
                images.append(env.render())
                seen = "seen" if (room, table) in ((1, 1), (2, 1), (3, 1)) else "unseen"
                labels.append(f"room {room} table {table} ({seen})")
        env.close()
        cols = 5
    else:
        names = [get_task(args.task).name] if args.task else list(TASKS)
        for name in names:
            env = BenchmarkEnv(name, options=opts)
            env.reset(seed=0, visual=(args.room, args.table), placement_index=args.placement)
            images.append(env.render())
            labels.append(env.task.title)
            env.close()
        cols = min(4, len(images))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_grid(images, cols, labels)).save(out)
    print(f"wrote {out} ({len(images)} views)")
    return 0


def cmd_eval(args) -> int:
    from .env import EnvOptions
    from .evaluation import evaluate
    from .experts import make_policy
    from .tasks import TASKS, get_task

    tasks = list(TASKS) if args.task == "all" else [get_task(t).name for t in args.task.split(",")]

    def factory(task_name: str):
        return make_policy(args.policy, task_name)

    for t in tasks:  # fail before simulating anything
        factory(t)
    opts = EnvOptions(render_width=args.width, render_height=args.height)
    summary = evaluate(tasks, args.split, factory, Path(args.out), max_rollouts=args.episodes,
                       video_dir=Path(args.video) if args.video else None, warmup_steps=args.warmup, options=opts,
                       progress=sys.stderr.isatty() and not args.quiet)
    print((Path(args.out) / "results.md").read_text(), end="")
    print(f"records: {Path(args.out) / 'records.jsonl'}; summary: {Path(args.out) / 'results.json'}")
    return 0 if summary else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="egovla-sim", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="list the tasks")
    v = sub.add_parser("view", help="save a screenshot grid")
    v.add_argument("--out", default="tasks.png")
    v.add_argument("--task", default=None, help="one task (default: all)")
    v.add_argument("--looks", action="store_true", help="one task in all 25 visual configurations")
    v.add_argument("--room", type=int, default=1)
    v.add_argument("--table", type=int, default=1)
    v.add_argument("--placement", type=int, default=0, help="placement grid index 0..9999")
    v.add_argument("--width", type=int, default=640)
    v.add_argument("--height", type=int, default=360)
    e = sub.add_parser("eval", help="run the evaluation protocol")
    e.add_argument("--task", default="all", help="a task name, a comma-separated list, or 'all'")
    e.add_argument("--policy", default="scripted", help="scripted (the privileged experts) or hold")
    e.add_argument("--split", choices=["seen", "unseen"], default="seen")
    e.add_argument("--episodes", type=int, default=None,
                   help="at most this many protocol rollouts per task (default: all, 27 seen / 66 unseen)")
    e.add_argument("--video", default=None, help="directory for one mp4 per rollout")
    e.add_argument("--out", default="sim_eval", help="output directory")
    e.add_argument("--warmup", type=int, default=100, help="warm-up steps before the policy acts")
    e.add_argument("--width", type=int, default=640)
    e.add_argument("--height", type=int, default=360)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        return {"info": cmd_info, "view": cmd_view, "eval": cmd_eval}[args.cmd](args)
    except (ValueError, KeyError) as exc:
        print(f"egovla-sim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
