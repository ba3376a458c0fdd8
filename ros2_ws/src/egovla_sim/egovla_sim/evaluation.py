"""The benchmark's evaluation protocol on the MuJoCo twin, for any policy that outputs joint targets.

Per task and split (``tasks.protocol_rollouts``): seen = rooms 1-3 with table 1, 3 episodes x 3 trials (27
rollouts); unseen = the other 22 (room, table) pairs x 3 episodes x 1 trial (66). Each rollout uses the authors'
placement index, so evaluation never reuses a training placement. A rollout: reset, ``warmup_steps`` control
steps holding the initial posture (the authors' 100 warm-up steps), then up to the task's horizon of policy
steps, stopping at the first success. SR = mean final success; PSR = the authors' progress rule.

Outputs: one JSON record per rollout (``records.jsonl``), ``results.json`` (records + summary) and
``results.md`` (SR/PSR per task and per short/long group), optionally an mp4 per rollout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np

from .env import BenchmarkEnv, EnvOptions
from .tasks import TASKS, Rollout, get_task, protocol_rollouts, summarize

WARMUP_STEPS = 100


class Policy(Protocol):
    name: str

    def reset(self, env: BenchmarkEnv) -> None: ...

    def act(self, env: BenchmarkEnv, obs: dict) -> dict[str, float]: ...


def run_rollout(env: BenchmarkEnv, policy: Policy, rollout: Rollout, warmup_steps: int = WARMUP_STEPS,
                video_path: Path | None = None, seed: int = 0) -> dict:
    """One rollout; returns its record."""
    t0 = time.perf_counter()
    obs, info = env.reset(seed=seed, visual=(rollout.room, rollout.table), placement_index=rollout.placement_index)
    hold = env.current_targets()
    writer = None
    if video_path is not None:
        import imageio.v2 as imageio

        video_path.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(str(video_path), fps=30, codec="libx264", quality=6, macro_block_size=8)
    try:
        for _ in range(warmup_steps):
            obs, _, terminated, _, info = env.step(hold)
            if info["failure"]:
                break
        env.steps = 0  # the horizon counts policy steps only
        policy.reset(env)
        terminated = truncated = bool(info["failure"])
        while not (terminated or truncated):
            if writer is not None:
                writer.append_data(_rgb(env))
            targets = policy.act(env, obs)
            obs, _, terminated, truncated, info = env.step(targets)
        if writer is not None and not info["failure"]:
            writer.append_data(_rgb(env))  # the final state
    finally:
        if writer is not None:
            writer.close()
    return {**asdict(rollout), "policy": policy.name, "seed": seed, "success": bool(info["success"]),
            "progress": float(info["progress"]), "subtasks": info["subtasks"], "steps": env.steps,
            "failure": info["failure"], "clamped_targets": info["clamped_targets"],
            "non_finite_targets": info["non_finite_targets"], "wall_s": round(time.perf_counter() - t0, 2),
            "video": str(video_path) if video_path else None}


def _rgb(env: BenchmarkEnv):
    return env.render()[0] if env.options.depth else env.render()


def evaluate(tasks: list[str], split: str, make_policy: Callable[[str], Policy], out_dir: Path,
             max_rollouts: int | None = None, video_dir: Path | None = None, warmup_steps: int = WARMUP_STEPS,
             options: EnvOptions | None = None, progress: bool = True) -> dict:
    """Run the protocol for ``tasks``; write records, results.json and results.md into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = []
    for name in tasks:
        rollouts = protocol_rollouts(get_task(name), split)
        plan += rollouts[:max_rollouts] if max_rollouts else rollouts
    records = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), desc=f"evaluate ({split})", unit="rollout")
    env = policy = None
    with open(out_dir / "records.jsonl", "w") as log:
        for r in plan:
            if env is None or env.task.name != get_task(r.task).name:
                if env is not None:
                    env.close()
                env = BenchmarkEnv(r.task, options=options)
                policy = make_policy(env.task.name)
            video = None
            if video_dir is not None:
                video = Path(video_dir) / f"{env.task.name}_room{r.room}_table{r.table}_ep{r.episode}_trial{r.trial}.mp4"
            rec = run_rollout(env, policy, r, warmup_steps, video)
            records.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(task=env.task.name, sr=f"{np.mean([x['success'] for x in records]):.2f}")
    if env is not None:
        env.close()
    if bar is not None:
        bar.close()
    summary = summarize(records)
    (out_dir / "results.json").write_text(json.dumps({"split": split, "summary": summary, "records": records},
                                                      indent=1))
    (out_dir / "results.md").write_text(markdown_table(summary, split, records))
    return summary


def markdown_table(summary: dict, split: str, records: list[dict]) -> str:
    per_task = summary["tasks"]
    policy = records[0]["policy"] if records else "?"
    lines = [f"# Evaluation: policy `{policy}`, {split} split", "",
             "| task | rollouts | SR % | PSR % |", "|---|---|---|---|"]
    for name in TASKS:
        if name in per_task:
            t = per_task[name]
            lines.append(f"| {TASKS[name].title} | {t['rollouts']} | {t['sr']:.1f} | {t['psr']:.1f} |")
    for group in ("short", "long", "overall"):
        g = summary.get(group)
        if g:
            lines.append(f"| **{group}** | {g['rollouts']} | {g['sr']:.1f} | {g['psr']:.1f} |")
    fails = [r for r in records if r["failure"]]
    if fails:
        lines += ["", f"{len(fails)} rollout(s) ended by a simulation failure:"]
        lines += [f"- {r['task']} room {r['room']} table {r['table']}: {r['failure']}" for r in fails]
    return "\n".join(lines) + "\n"
