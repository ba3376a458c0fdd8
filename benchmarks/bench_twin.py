"""The benchmark twin, per task, real-time factor = simulated seconds / wall seconds on one core:

- physics + control without rendering: joint targets of a sweep of both arms applied every 1/30 s step (the
  arms brush the table, objects settle and roll);
- the same with the head camera rendered at the default resolution (640x360) every step;
- a whole episode of the scripted expert (its planning and IK included), for the tasks that have one.

``python benchmarks/bench_twin.py --task pour_balls --physics-only --runs 5`` measures one task's physics + control
5 times and prints min / median / max (the machine's load varies between runs); ``--cpu-time`` divides by this
process's CPU time instead of wall time, for comparisons on a machine that other jobs share."""

from __future__ import annotations

import time

import numpy as np

from egovla_sim.env import BenchmarkEnv
from egovla_sim.experts import SCRIPTED, make_policy
from egovla_sim.tasks import TASKS


class _Sweep:
    name = "sweep"

    def reset(self, env):
        self.hold = env.current_targets()
        self.arm = [n for n in env.action_names if "shoulder_pitch" in n or "elbow_pitch" in n]
        self.t = 0

    def act(self, env, obs):
        self.t += 1
        out = dict(self.hold)
        for n in self.arm:
            out[n] = self.hold[n] + 0.4 * np.sin(2 * np.pi * self.t / 90)
        return out


def _episode(env, policy, steps, render, clock=time.perf_counter):
    obs, _ = env.reset(seed=0, placement_index=1234)
    policy.reset(env)
    t0 = clock()
    n = 0
    for _ in range(steps):
        if render:
            env.render()
        obs, _, terminated, truncated, _ = env.step(policy.act(env, obs))
        n += 1
        if terminated or truncated:
            break
    return n / 30.0 / (clock() - t0)


def physics_runs(task: str, runs: int, physics_steps: int = 300, clock=time.perf_counter) -> list[float]:
    """Real-time factors of ``runs`` repetitions of the physics + control sweep (one environment); ``clock``
    time.process_time counts only this process's CPU time (for comparisons on a loaded machine)."""
    env = BenchmarkEnv(task)
    out = [round(_episode(env, _Sweep(), physics_steps, False, clock), 1) for _ in range(runs)]
    env.close()
    return out


def run(physics_steps: int = 300, render_steps: int = 90, tasks=None, physics_only: bool = False) -> dict:
    out = {}
    physics, rendered, expert = {}, {}, {}
    make_policy("hold", "push_box")  # importing the experts registers them
    for name in tasks or TASKS:
        env = BenchmarkEnv(name)
        physics[name] = round(_episode(env, _Sweep(), physics_steps, False), 1)
        if physics_only:
            env.close()
            continue
        rendered[name] = round(_episode(env, _Sweep(), render_steps, True), 2)
        if name in SCRIPTED:
            policy = make_policy("scripted", name)
            policy.reset(env)  # builds its IK once, as a long-running evaluation does
            expert[name] = round(_episode(env, policy, env.task.horizon, False), 1)
        env.close()
    out["twin_physics_realtime_factor"] = physics
    out["twin_physics_realtime_factor_min"] = min(physics.values())
    if physics_only:
        return out
    out["twin_rendered_640x360_realtime_factor"] = rendered
    out["twin_rendered_640x360_realtime_factor_min"] = min(rendered.values())
    out["twin_expert_episode_realtime_factor"] = expert
    return out


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default=None, help="one task or a comma-separated list (default: all 12)")
    ap.add_argument("--physics-only", action="store_true", help="only physics + control, no rendering or experts")
    ap.add_argument("--runs", type=int, default=1, help="with --physics-only: repetitions per task")
    ap.add_argument("--cpu-time", action="store_true",
                    help="with --runs: simulated seconds per CPU second of this process instead of per wall second")
    args = ap.parse_args()
    tasks = args.task.split(",") if args.task else list(TASKS)
    if args.physics_only and args.runs > 1:
        res = {}
        for name in tasks:
            r = physics_runs(name, args.runs, clock=time.process_time if args.cpu_time else time.perf_counter)
            res[name] = {"min": min(r), "median": float(np.median(r)), "max": max(r), "runs": r}
        key = "twin_physics_cpu_time_factor_runs" if args.cpu_time else "twin_physics_realtime_factor_runs"
        print(json.dumps({key: res}, indent=2))
    else:
        print(json.dumps(run(tasks=tasks, physics_only=args.physics_only), indent=2))
