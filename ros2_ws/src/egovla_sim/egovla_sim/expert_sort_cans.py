"""Scripted expert for Sort-Cans: sprite cans into the left bin, orange (fanta) cans into the right bin.

Each hand starts beside one sprite can (near, x 0.42) and one fanta can (far, x 0.52), so one of each hand's two
cans belongs in the bin on the other side of the midline. The near can goes first: the grasp of the far can would
put the thumb on the near one. Fanta cans within the usual grasp's reach (x <= 0.48) get the usual grip; farther
ones are gripped higher and drawn in as they are lifted (``FAR_PICK``), and where even that grasp is out of reach
(x 0.55-0.58) the fingers are tipped 10 degrees down (``far_grasp_pose``).
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

A hand that has let go of its can moves aside in the same waypoint as the other hand's carry starts
(``side_by_side``): seen rollouts now succeed at policy step 720-787 of 900 (729-835 with one hand at a time).
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from egovla_description.geometry import axis_angle_to_matrix

from .expert_tasks import (CAN_IN_HAND, FAR_CAN_X, FAR_PICK, FORWARD, GRASP_YAWS_DEG, HAND_CAN_GRIP,
                           HAND_THUMB_OPPOSED, SAFE_Z, UP, can_grasp_pose, in_parallel, level_grasp_frame, pick_can,
                           transit)
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


FINGER_PITCH = np.radians(10)  # fingers tipped down for cans beyond the level grasp's reach


def far_grasp_pose(expert: ScriptedExpert, side: str, can_root, lift: float):
    """``can_grasp_pose`` with ``FAR_PICK``'s grip, but with the fingers tipped ``FINGER_PITCH`` down when no level
    frame reaches the grasp and its slide. At x 0.58 the level ones are 1-3 cm out of reach: the hand stopped short
    and its closing fingers knocked the can over (each of the 4 seen misses before this). 10 degrees down, both
    hands reach them (within 1 mm), the grip still lifts the can upright, and 3 of those 4 succeed."""
    height, slide, retreat = FAR_PICK["height"], FAR_PICK["slide"], FAR_PICK["retreat"]
    p, r = can_grasp_pose(expert, side, can_root, lift, height, retreat, slide)
    if expert.pose_score(side, p + slide * -r[:, 1], r) >= 0.0:
        return p, r
    centre = np.asarray(can_root, float) + height * UP
    best, best_score = (p, r), -np.inf
    for yaw in np.radians(GRASP_YAWS_DEG):
        level = level_grasp_frame(side, -yaw)
        for sign in (1.0, -1.0):
            r = axis_angle_to_matrix(sign * FINGER_PITCH * level[:, 0]) @ level
            if r[2, 1] < 0.0:  # the fingers (-y) must point down
                continue
            p = centre - r @ CAN_IN_HAND[side]
            lifted = p + slide * -r[:, 1] + lift * UP - retreat * FORWARD
            score = min(expert.pose_score(side, q, r) for q in (p, p + slide * -r[:, 1], lifted))
            if score > best_score:
                best, best_score = (p, r), score
    return best


def pick_far_can(expert: ScriptedExpert, env, side: str, name: str, lift: float = 0.2):
    """``pick_can(..., **FAR_PICK)``, but grasping at ``far_grasp_pose`` (fingers tipped down if need be)."""
    slide, retreat = FAR_PICK["slide"], FAR_PICK["retreat"]
    p, r = far_grasp_pose(expert, side, env.object_pose(name)[:3], lift)
    gripped = p + slide * -r[:, 1]
    yield from transit(expert, side, (p + 0.14 * UP, r), hand=HAND_THUMB_OPPOSED)
    yield Waypoint(0.9, {side: (p, r)})
    yield Waypoint(0.8, {side: (gripped, r)}, {side: HAND_CAN_GRIP})
    yield Waypoint(0.2)
    yield Waypoint(0.6, {side: (gripped + 0.04 * UP, r)})
    yield Waypoint(1.0 + 3.0 * retreat, {side: (gripped + lift * UP - retreat * FORWARD, r)})


def aside(expert: ScriptedExpert, side: str, duration_s: float = 0.6):
    """Move a hand up and out toward its own side, clear of the bins (a joint move, so it can share a waypoint
    with the other hand's carry)."""
    p, r = expert.hand_pose(side)
    outward = -0.12 if side == "right" else 0.12
    yield Waypoint(duration_s, {side: (np.array([p[0] - 0.05, p[1] + outward, max(p[2], SAFE_Z)]), r)},
                   mode="joint")


def side_by_side(*scripts):
    """Run per-hand scripts at once, like ``in_parallel``, but when the hands' next waypoints are of different
    modes the joint move runs alone and the other hand's waypoint waits for the next pairing (``in_parallel`` runs
    both one after the other, and its pairs stay out of step for the rest of the scripts). A waiting waypoint was
    computed before the other hand's move; only the other hand's motion has happened since."""
    pending = [None] * len(scripts)
    while True:
        for i, script in enumerate(scripts):
            if pending[i] is None:
                pending[i] = next(script, None)
        group = [w for w in pending if w is not None]
        if not group:
            return
        if len({w.mode for w in group}) > 1:
            group = [w for w in group if w.mode == "joint"]
        pose, hand = {}, {}
        for w in group:
            pose.update(w.pose or {})
            hand.update(w.hand or {})
        yield Waypoint(max(w.duration_s for w in group), pose or None, hand or None, mode=group[0].mode)
        pending = [None if any(w is g for g in group) else w for w in pending]


def pick_fanta(expert: ScriptedExpert, env, side: str, name: str):
    """The usual pick for a fanta can within its reach, else ``pick_far_can`` (decided before the hand moves)."""
    if env.object_pose(name)[0] > FAR_CAN_X:
        return pick_far_can(expert, env, side, name)
    return pick_can(expert, env, side, name, lift=0.2)


@register
class SortCansExpert(ScriptedExpert):
    task = "sort_cans"

    def script(self, env):
        spots = BIN_SPOTS
        yield from in_parallel(pick_can(self, env, "right", "can_sprite_1", lift=0.2),
                               pick_can(self, env, "left", "can_sprite_2", lift=0.2))
        yield from drop_can_at(self, env, "right", "can_sprite_1", spots["left"]["inner"])
        yield from side_by_side(chain(aside(self, "right"), pick_fanta(self, env, "right", "can_fanta_1")),
                                chain(drop_can_at(self, env, "left", "can_sprite_2", spots["left"]["outer"]),
                                      aside(self, "left")))
        yield from side_by_side(chain(drop_can_at(self, env, "right", "can_fanta_1", spots["right"]["outer"]),
                                      aside(self, "right")),
                                pick_fanta(self, env, "left", "can_fanta_2"))
        yield from drop_can_at(self, env, "left", "can_fanta_2", spots["right"]["inner"])
