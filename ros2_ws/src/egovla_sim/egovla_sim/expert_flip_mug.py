"""Scripted expert for Flip-Mug (see ``experts.py`` for how experts act).

The mug lies on its side with its axis along +x (the opening away from the robot, the handle toward -y and a
little down), its root (the bottom's centre) 0.35-0.55 m ahead of the robot. Success is the mug's axis more than
30 degrees above the table (world z of its local +z > 0.5).

Measured facts that shaped the expert:
- The opening end is out of reach for lifting it: a hooked fingertip inside the rim is 0.44-0.65 m ahead, and a
  hand base palm down with the fingers straight ahead misses poses there by 2-10 cm.
- Tipping the mug backward about the bottom face's lowest edge needs only the near end: a fingertip pressed
  onto the top of the mug just in front of the bottom face and dragged toward the robot turns the mug up, as
  long as the table's grip on that edge (friction 0.4, loaded by the press) holds it while the finger's grip
  (1.2) drags the top. The mug slides ~2 cm toward the robot meanwhile.
- Contact depth matters: the finger pad lies ~1.5 cm below the finger's axis. Aiming the finger's axis at the
  mug's surface pressed it ~2 cm in (peak contact force 120-160 N on a 0.05 kg mug): the mug stalled near 27
  degrees while the finger slid back over its edge and was thrown when the finger slipped off. Aiming the pad
  4 mm in (peak 40-110 N), the mug turns steadily to ~45 degrees and then falls onto its bottom by itself
  (6 of 6 placements simulated past the success).
- Fingers turned 20-60 degrees inward and pointing 20-50 degrees down reach every placement with the left hand
  (the right hand is the fallback should a placement be out of the left hand's reach).
"""

from __future__ import annotations

import numpy as np

from egovla_description.geometry import axis_angle_to_matrix, quat_to_matrix

from .expert_tasks import FINGERTIP_REACH, TABLE_Z, UP, unit, transit
from .experts import HAND_OPEN, ScriptedExpert, Waypoint, hand_frame, register

MUG_RADIUS = 0.04


@register
class FlipMugExpert(ScriptedExpert):
    """Open left hand, palm down, fingers forward and inward: the middle finger's pad comes down on the top of
    the mug just in front of its bottom face and drags that point along the circle it follows when the mug
    turns up about the bottom face's lowest edge; then the hand backs off upward. A drag that leaves the mug
    lying (never seen) is planned again from where the mug lies."""

    task = "flip_mug"
    contact_along = 0.015   # m from the bottom face, along the axis, where the finger presses on the mug
    press = 0.004           # m the finger pad is aimed into the mug: the downward force that gives it its grip
    pad = 0.015             # m from the finger's axis to its pad (palm side)
    turn = np.radians(60)   # how far the drag would turn the mug (it tips onto its bottom past ~45 degrees)
    yaws = (20, 40, 60)     # degrees the fingers are turned inward from +x
    pitches = (20, 35, 50)  # degrees the fingers point down
    min_margin = 0.05       # rad of joint margin under which the right hand is tried instead of the left
    attempts = 3

    def finger_frame(self, side, pose_at, thetas):
        """The hand frame (palm down, fingers forward, turned inward and pointing down) whose hand-base poses
        ``pose_at(r, theta)`` for ``thetas`` are reached with the most joint margin. Returns (margin, r)."""
        inward = -1.0 if side == "left" else 1.0
        best = (-np.inf, None)
        for yaw in np.radians(self.yaws):
            for pitch in np.radians(self.pitches):
                f = np.array([np.cos(pitch) * np.cos(yaw), inward * np.cos(pitch) * np.sin(yaw), -np.sin(pitch)])
                r = hand_frame(np.cross(f, np.cross(-UP, f)), f, side)  # palm normal: the nearest to straight down
                score = min(self.pose_score(side, *pose_at(r, t)) for t in thetas)
                if score > best[0]:
                    best = (score, r)
        return best

    def script(self, env):
        # The episode ends at the first success, so a second drag only runs when the first left the mug lying.
        for _ in range(self.attempts):
            yield from self.tip_up(env)

    def tip_up(self, env):
        """One drag, planned from the mug's pose now."""
        mug = env.object_pose("mug")
        root = mug[:3]
        axis = quat_to_matrix(mug[3:])[:, 2]
        ax = unit([axis[0], axis[1], 0.0])            # the axis on the table, toward the opening
        pivot = np.array([root[0], root[1], TABLE_Z])  # the bottom face's lowest edge
        top = root + self.contact_along * ax + MUG_RADIUS * UP
        hinge = unit(np.cross(ax, UP))                # turning about it by +theta raises the opening

        def pose_at(r, theta, depth=None):
            """Hand-base pose putting the middle finger's pad ``depth`` into the mug at the contact point, the
            mug turned up by ``theta``."""
            depth = self.press if depth is None else depth
            point = pivot + axis_angle_to_matrix(hinge * theta) @ (top - depth * UP - pivot)
            return point + FINGERTIP_REACH * r[:, 1] + self.pad * r[:, 0], r

        thetas = np.linspace(0.0, self.turn, 6)
        side, (margin, r) = "left", self.finger_frame("left", pose_at, thetas[::5])
        if margin < self.min_margin:
            other = self.finger_frame("right", pose_at, thetas[::5])
            if other[0] > margin:
                side, (margin, r) = "right", other
        yield from transit(self, side, pose_at(r, 0.0, depth=-0.04), hand=HAND_OPEN)
        yield Waypoint(0.5, {side: pose_at(r, 0.0)})
        for t in thetas[1:]:
            yield Waypoint(0.4, {side: pose_at(r, t)})
        p, rr = self.hand_pose(side)
        yield Waypoint(0.6, {side: (p - 0.03 * ax + 0.08 * UP, rr)})  # off the mug: back and up
        yield Waypoint(0.5)
