"""Policies that act on the MuJoCo twin through joint targets only: the baseline that holds still, and the
registry of scripted experts (privileged oracles that read true object poses)."""

from __future__ import annotations

from .env import BenchmarkEnv

SCRIPTED: dict[str, type] = {}


class HoldPolicy:
    """Keeps every joint at its target from the start of the episode: the do-nothing baseline."""

    name = "hold"

    def reset(self, env: BenchmarkEnv) -> None:
        self._hold = {n: float(env.data.ctrl[i]) for i, n in enumerate(env.action_names)}

    def act(self, env: BenchmarkEnv, obs: dict) -> dict[str, float]:
        return self._hold


def make_policy(kind: str, task: str):
    """A policy by name for one task: ``hold`` or ``scripted``."""
    if kind == "hold":
        return HoldPolicy()
    if kind == "scripted":
        if task not in SCRIPTED:
            raise ValueError(f"no scripted expert for task {task!r} yet (experts exist for: "
                             f"{', '.join(sorted(SCRIPTED)) or 'none'})")
        return SCRIPTED[task]()
    raise ValueError(f"unknown policy {kind!r}: choose 'scripted' or 'hold'")
