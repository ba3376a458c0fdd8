"""Scripted expert for Sort-Cans: sprite cans into the left bin, orange (fanta) cans into the right bin.

Each hand starts beside one sprite can (near, x 0.42) and one fanta can (far, x 0.52), so one of each hand's two
cans belongs in the bin on the other side of the midline. The near can goes first: the grasp of the far can would
put the thumb on the near one. The far cans (x 0.46-0.58) are gripped higher and drawn in as they are lifted
(``FAR_PICK``): with the near cans' grip, 8 of 27 seen rollouts lost the right fanta can and 8 the left one.
Reaching across the midline at bin height puts the shoulder roll at its limit with the fingers pointing forward
(IK margin 0 at grip height 1.10 m); turned 30-45 degrees toward the midline and 0.1 m higher the arm keeps
0.2-0.3 rad of margin. The hand is free to turn about a held can's axis (a can is a
cylinder), so each placement picks its own hand yaw. The cans are released just above the bin's walls and drop
in: success needs only each can's root inside its box.

Order (the hands would collide over the bins, so only one hand is over them at a time):

1. both hands pick their sprite cans;
2. the right hand puts its sprite can in the far, inner corner of the left bin (across the midline); the left
   hand waits with its can lifted;
3. the left hand puts its sprite can in the near, outer corner of the left bin; the right hand picks its fanta;
4. the right hand puts its fanta can in the near, outer corner of the right bin; the left hand picks its fanta;
5. the left hand puts its fanta can in the far, inner corner of the right bin (across the midline).
"""

from __future__ import annotations

import numpy as np

from egovla_description.geometry import axis_angle_to_matrix

from .expert_tasks import FAR_PICK, HAND_THUMB_OPPOSED, UP, in_parallel, pick_can
from .experts import ScriptedExpert, Waypoint, register

# Bin spots (can root xy): "outer" is the near corner on the hand's own side, "inner" the far corner next to the
# midline. Two cans side by side would fill a bin's 0.135 m inner width; diagonal corners leave 0.1 m between them.
BIN_SPOTS = {
    "left": {"outer": np.array([0.535, 0.108]), "inner": np.array([0.615, 0.052])},
    "right": {"outer": np.array([0.535, -0.108]), "inner": np.array([0.615, -0.052])},
}
RELEASE_Z = 1.12      # can bottom at release: 1.5 cm above the bin walls (1.105 m)
CARRY_RISE = 0.08     # the carry ends this far above the release point, then the hand comes straight down
COMFORT_MARGIN = 0.1  # rad of joint margin
PLACE_YAWS = np.radians([-60, -45, -30, -15, 0, 15, 30])  # turns of the hand about the can's axis (toward midline +)


def _spin(r: np.ndarray, angle: float) -> np.ndarray:
    return axis_angle_to_matrix(UP * angle) @ r


def drop_can_at(expert: ScriptedExpert, env, side: str, name: str, goal_xy, release_z: float = RELEASE_Z):
    """Waypoints that carry the held can ``name`` over ``goal_xy`` (its bottom ``release_z`` high), turning the
    hand about the can's axis for the most joint margin, and let it drop there."""
    p_hand, r_hand = expert.hand_pose(side)
    can = env.object_pose(name)[:3]
    in_hand = r_hand.T @ (can - p_hand)  # the can's root in the hand frame (the grip is never exactly nominal)
    goal = np.array([goal_xy[0], goal_xy[1], release_z])
    toward_midline = 1.0 if side == "right" else -1.0  # + turns the fingers toward the midline
    options = []
    for yaw in PLACE_YAWS:
        r = _spin(r_hand, -toward_midline * yaw)
        p = goal - r @ in_hand
        options.append((min(expert.pose_score(side, q, r) for q in (p, p + CARRY_RISE * UP)), abs(yaw), p, r))
    # the least turn that leaves a comfortable margin (turning the wrist fast shakes the can loose), else the best
    comfortable = [o for o in options if o[0] >= COMFORT_MARGIN]
    _, _, p, r = min(comfortable, key=lambda o: o[1]) if comfortable else max(options, key=lambda o: o[0])
    yield Waypoint(2.0, {side: (p + CARRY_RISE * UP, r)}, mode="joint")
    yield Waypoint(0.6, {side: (p, r)})
    yield Waypoint(0.4, None, {side: HAND_THUMB_OPPOSED})
    yield Waypoint(0.5, {side: (p + 0.1 * UP, r)})


def aside(expert: ScriptedExpert, side: str, duration_s: float = 0.6):
    """Move a hand up and out toward its own side, clear of the bins."""
    p, r = expert.hand_pose(side)
    outward = -0.12 if side == "right" else 0.12
    yield Waypoint(duration_s, {side: (np.array([p[0] - 0.05, p[1] + outward, max(p[2], 1.28)]), r)})


@register
class SortCansExpert(ScriptedExpert):
    task = "sort_cans"

    def script(self, env):
        spots = BIN_SPOTS
        yield from in_parallel(pick_can(self, env, "right", "can_sprite_1", lift=0.2),
                               pick_can(self, env, "left", "can_sprite_2", lift=0.2))
        yield from drop_can_at(self, env, "right", "can_sprite_1", spots["left"]["inner"])
        yield from aside(self, "right")
        yield from in_parallel(drop_can_at(self, env, "left", "can_sprite_2", spots["left"]["outer"]),
                               pick_can(self, env, "right", "can_fanta_1", lift=0.2, **FAR_PICK))
        yield from aside(self, "left")
        yield from in_parallel(drop_can_at(self, env, "right", "can_fanta_1", spots["right"]["outer"]),
                               pick_can(self, env, "left", "can_fanta_2", lift=0.2, **FAR_PICK))
        yield from aside(self, "right")
        yield from drop_can_at(self, env, "left", "can_fanta_2", spots["right"]["inner"])
        yield from aside(self, "left")
