"""Policies that act on the MuJoCo twin through joint targets only, as a learned policy does.

- ``HoldPolicy``: keeps the initial posture (the do-nothing baseline).
- Scripted experts: privileged oracles that read the true object poses and move the hands through waypoints.
  A waypoint gives, per hand, a hand-base pose in the world and a hand closure; the expert interpolates from
  where the hand is to the waypoint (minimum-jerk in position, geodesic in rotation), solves the arm IK
  (``egovla_description.ik.DualArmIK``) every control step and sends arm and hand joint targets. Experts are
  written as generators (``script``) that yield waypoints, so each waypoint is computed from the scene *as it is
  when the waypoint starts* (where the can ended up after the grasp, not where it was at reset).

Hand frame (the robot table's ``L/R_hand_base_link``): fingers extend along -y, the palm faces -x, the thumb
sits on +z (left hand) / -z (right hand). ``hand_frame`` builds a rotation from the direction the palm should
face and the direction the fingers should point.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from egovla_description.geometry import axis_angle_to_matrix, matrix_to_axis_angle, quat_to_matrix
from egovla_description.ik import DualArmIK, IKConfig
from egovla_description.kinematics import HandKinematics

from .env import BenchmarkEnv

SIDES = ("left", "right")
SCRIPTED: dict[str, type] = {}

# Hand closures as the 6 active joints in HandKinematics.active_names order:
# index, middle, pinky, ring proximal; thumb proximal yaw; thumb proximal pitch.
HAND_OPEN = (0.0, 0.0, 0.0, 0.0, -0.1, 0.0)            # flat hand, thumb out of the way beside the palm


def hand_frame(palm_normal, fingers, side: str) -> np.ndarray:
    """World rotation of a hand base link whose palm faces ``palm_normal`` with the fingers along ``fingers``
    (made orthogonal to the palm normal)."""
    n = np.asarray(palm_normal, float)
    n = n / np.linalg.norm(n)
    f = np.asarray(fingers, float)
    f = f - (f @ n) * n
    f /= np.linalg.norm(f)
    x, y = -n, -f
    return np.stack([x, y, np.cross(x, y)], 1)


@dataclass
class Waypoint:
    """Where each hand goes next. ``pose[side]`` is (position (3,), rotation (3, 3)) of the hand base link in
    the world, or None to keep the current target; ``hand[side]`` the 6 active hand joints or None.

    ``mode="cartesian"`` moves the hand along a straight line (for approaches and lifts near objects);
    ``mode="joint"`` solves the IK once for the goal and interpolates the arm joints (for transits: no
    reconfiguration of the arm on the way, whatever the path of the hand)."""

    duration_s: float
    pose: dict | None = None
    hand: dict | None = None
    mode: str = "cartesian"


def _min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10 - 15 * s + 6 * s * s)


def _slerp(r0: np.ndarray, r1: np.ndarray, s: float) -> np.ndarray:
    """The rotation a fraction ``s`` of the way along the geodesic from ``r0`` to ``r1``."""
    return r0 @ axis_angle_to_matrix(s * matrix_to_axis_angle(r0.T @ r1))


class ScriptedExpert(ABC):
    """Base class: subclasses implement ``script(env)`` yielding ``Waypoint``s."""

    name = "scripted"
    task = ""

    def __init__(self):
        self._ik = None
        self._hands = None

    def reset(self, env: BenchmarkEnv) -> None:
        if self._ik is None:
            self._ik = DualArmIK(env.robot)
            # Tracking along a path refines from the previous targets only: random restarts could jump to
            # another arm configuration mid-motion. Goals of joint-space moves use the full solver.
            self._ik_track = DualArmIK(env.robot, IKConfig(restarts=0, max_iterations=30))
            self._robot = env.robot
            self._hands = {s: HandKinematics(env.robot, s) for s in SIDES}
        self._ik.reseed()  # an episode's result must not depend on the episodes before it
        tb = env.model.body(env.robot.side("left").arm_base_link).id
        self._torso_p = env.data.xpos[tb].copy()
        self._torso_r = env.data.xmat[tb].reshape(3, 3).copy()
        self._targets = env.current_targets()
        self._pose = {}
        for s in SIDES:
            e = env.ee_pose(s)
            self._pose[s] = (e[:3].copy(), quat_to_matrix(e[3:]))
        self._hand = {s: np.array([self._targets[n] for n in self._hands[s].active_names]) for s in SIDES}
        self._script = self.script(env)
        self._wp = None
        self._done = False

    # --- helpers for scripts -------------------------------------------------------------------------------

    def hand_pose(self, side: str):
        """The current waypoint target of a hand (position, rotation)."""
        return self._pose[side]

    # --- control loop --------------------------------------------------------------------------------------

    def _next_waypoint(self, env):
        try:
            wp = next(self._script)
        except StopIteration:
            self._done = True
            return None
        start_pose = dict(self._pose)
        start_hand = dict(self._hand)
        goal_pose = {s: (wp.pose or {}).get(s) or start_pose[s] for s in SIDES}
        goal_hand = {s: np.asarray((wp.hand or {}).get(s), float) if (wp.hand or {}).get(s) is not None
                     else start_hand[s] for s in SIDES}
        n = max(1, int(round(wp.duration_s * 30)))
        plan = {"n": n, "k": 0, "p0": start_pose, "p1": goal_pose, "h0": start_hand, "h1": goal_hand,
                "mode": wp.mode, "moving": [s for s in SIDES if (wp.pose or {}).get(s)]}
        if wp.mode == "joint":
            goals = {side: self._torso_target(*goal_pose[side]) for side in SIDES if (wp.pose or {}).get(side)}
            result = self.solve_ik(goals)
            arm = list(result.positions)
            plan["q0"] = np.array([self._targets[j] for j in arm])
            plan["q1"] = np.array([result.positions[j] for j in arm])
            plan["q_lo"], plan["q_hi"] = np.minimum(plan["q0"], plan["q1"]), np.maximum(plan["q0"], plan["q1"])
            plan["arm"] = arm
        elif wp.mode != "cartesian":
            raise ValueError(f"waypoint mode must be 'cartesian' or 'joint', got {wp.mode!r}")
        return plan

    def _torso_target(self, p, r) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self._torso_r.T @ r
        t[:3, 3] = self._torso_r.T @ (p - self._torso_p)
        return t

    def joint_margin(self, positions: dict) -> float:
        """Smallest distance (rad) of the given joints to their limits."""
        names = list(positions)
        lo, hi = self._robot.limits(names)
        q = np.array([positions[n] for n in names])
        return float(np.min(np.minimum(q - lo, hi - q)))

    def pose_score(self, side: str, p, r) -> float:
        """How comfortably a hand-base pose is reached: the joint margin (rad) if reachable, else below -10 by
        the remaining error."""
        res = self.solve_ik({side: self._torso_target(p, r)})
        s = res.sides[side]
        return self.joint_margin(res.positions) if res.all_reachable else -10.0 - s.position_error_m - 0.1 * s.rotation_error_rad

    def solve_ik(self, goals: dict):
        """IK for hand-base goals (torso frame), warm-started from the current targets (with the solver's
        restarts when that start does not converge)."""
        return self._ik.solve(goals, self._targets, frame="torso")

    def act(self, env: BenchmarkEnv, obs: dict) -> dict[str, float]:
        if self._done:
            return self._targets
        if self._wp is None or self._wp["k"] >= self._wp["n"]:
            self._wp = self._next_waypoint(env)
            if self._wp is None:
                return self._targets
        wp = self._wp
        wp["k"] += 1
        s = _min_jerk(wp["k"] / wp["n"])
        for side in SIDES:
            self._hand[side] = wp["h0"][side] + (wp["h1"][side] - wp["h0"][side]) * s
        if wp["mode"] == "joint":
            # Kept between the move's ends: rounding put targets an ulp past a joint limit both ends sat on.
            q = np.clip(wp["q0"] + (wp["q1"] - wp["q0"]) * s, wp["q_lo"], wp["q_hi"])
            self._targets.update(zip(wp["arm"], q.tolist()))
            if wp["k"] == wp["n"]:
                self._pose.update(wp["p1"])
        else:
            # A hand without a goal in this waypoint holds still: its arm is solved once, on the first step.
            targets = {}
            for side in SIDES if wp["k"] == 1 else wp["moving"]:
                (p0, r0), (p1, r1) = wp["p0"][side], wp["p1"][side]
                p = p0 + (p1 - p0) * s
                r = _slerp(r0, r1, s)
                self._pose[side] = (p, r)
                targets[side] = self._torso_target(p, r)
            if targets:
                self._targets.update(self._ik_track.solve(targets, self._targets, frame="torso").positions)
        for side in SIDES:
            hk = self._hands[side]
            self._targets.update(zip(hk.joint_names, hk.from_active(self._hand[side]).tolist()))
        return self._targets

    @abstractmethod
    def script(self, env: BenchmarkEnv) -> Iterator[Waypoint]:
        """The task's waypoints, each computed when it is reached."""


def register(cls):
    SCRIPTED[cls.task] = cls
    return cls


class HoldPolicy:
    """Keeps every joint at its target from the start of the episode: the do-nothing baseline."""

    name = "hold"

    def reset(self, env: BenchmarkEnv) -> None:
        self._hold = env.current_targets()

    def act(self, env: BenchmarkEnv, obs: dict) -> dict[str, float]:
        return self._hold


# Modules whose import registers scripted experts (``@register``).
EXPERT_MODULES = ("expert_tasks", "expert_sort_cans", "expert_flip_mug", "expert_pour_balls",
                  "expert_stack_can_into_drawer")


def make_policy(kind: str, task: str):
    """A policy by name for one task: ``hold`` or ``scripted``."""
    from importlib import import_module

    for module in EXPERT_MODULES:
        import_module(f"{__package__}.{module}")

    if kind == "hold":
        return HoldPolicy()
    if kind == "scripted":
        if task not in SCRIPTED:
            raise ValueError(f"no scripted expert for task {task!r} yet (experts exist for: "
                             f"{', '.join(sorted(SCRIPTED)) or 'none'})")
        return SCRIPTED[task]()
    raise ValueError(f"unknown policy {kind!r}: choose 'scripted' or 'hold'")
