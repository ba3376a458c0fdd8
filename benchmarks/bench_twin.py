"""The benchmark twin, per task, real-time factor = simulated seconds / wall seconds on one core:

- physics + control without rendering: joint targets of a sweep of both arms applied every 1/30 s step (the
  arms brush the table, objects settle and roll);
- the same with the head camera rendered at the default resolution (640x360) every step;
- a whole episode of the scripted expert (its planning and IK included), for the tasks that have one."""

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


def _episode(env, policy, steps, render):
    obs, _ = env.reset(seed=0, placement_index=1234)
    policy.reset(env)
    t0 = time.perf_counter()
    n = 0
    for _ in range(steps):
        if render:
            env.render()
        obs, _, terminated, truncated, _ = env.step(policy.act(env, obs))
        n += 1
        if terminated or truncated:
            break
    return n / 30.0 / (time.perf_counter() - t0)


def run(physics_steps: int = 300, render_steps: int = 90) -> dict:
    out = {}
    physics, rendered, expert = {}, {}, {}
    make_policy("hold", "push_box")  # importing the experts registers them
    for name in TASKS:
        env = BenchmarkEnv(name)
        physics[name] = round(_episode(env, _Sweep(), physics_steps, False), 1)
        rendered[name] = round(_episode(env, _Sweep(), render_steps, True), 2)
        if name in SCRIPTED:
            policy = make_policy("scripted", name)
            policy.reset(env)  # builds its IK once, as a long-running evaluation does
            expert[name] = round(_episode(env, policy, env.task.horizon, False), 1)
        env.close()
    out["twin_physics_realtime_factor"] = physics
    out["twin_physics_realtime_factor_min"] = min(physics.values())
    out["twin_rendered_640x360_realtime_factor"] = rendered
    out["twin_rendered_640x360_realtime_factor_min"] = min(rendered.values())
    out["twin_expert_episode_realtime_factor"] = expert
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
