"""Scripted expert for Stack-Can-Into-Drawer: put the can into the open bottom drawer, then push the drawer shut so
that it carries the can onto the saucer.

The saucer is fixed in the world, 0.56-0.79 m out under the cabinet's shelf, while the drawer slides under it. A can
standing on the open drawer's floor 0.2-0.3 m short of the saucer rides in with the drawer when it is pushed shut
slowly and ends on the saucer. So the can only has to be stood in the drawer's exposed part (between its front panel,
x ~0.26, and the cabinet's front, x 0.47), 0.26-0.3 m short of the saucer. The scene leaves little room for that:

1. The can stands on the table under the open drawer (its top 1.5 cm below the drawer's floor): the right hand comes
   in level from the robot's side, under the drawer (fingers forward and 15-45 degrees toward the midline), grips it
   and drags it out in front of the drawer.
2. The front panel reaches 1.365 m and its handle sticks out 3.5 cm at 1.352 m: the can rises 0.37 m in front of the
   panel, 0.25 m to the outer side of the drawer's centre, clear of the handle (lifting in front of the handle, the
   fingers caught it and pushed the drawer shut), while the hand turns about the can's axis.
3. It goes over the panel with the fingers pointing across the body (the palm toward the robot, the forearm coming
   in over the drawer's side, the elbow out beside the panel) and down to 7.5 cm above the drawer's floor: measured
   with the arm's IK and collision geometry, no lower can bottom was reachable without the elbow or the upper arm on
   the panel (fingers pointing forward, the elbow rested on the panel's edge with the can 0.21 m up).
4. It lets go with the thumb kept opposed (fingers straight, thumb unpressed): the can drops and lands upright.
   Swinging the thumb aside to the open hand's position pressed the can against the palm instead (the thumb's path
   runs through the can) and the can came up with the hand.
5. The right hand backs out upward while the left hand's fingertips, already waiting in front of the panel, push
   the drawer shut in 1.5 s.

Limits (measured on the protocol's placements): cans more than ~0.40 m out cannot be gripped under the drawer (the
fingers reach the cabinet's plinth, x 0.47, before the can is in the hand); where the drawer is shifted 6-8 cm to the
robot's right the lowering sometimes stalls on the panel and the can falls over.
"""

from __future__ import annotations

import numpy as np

from .expert_tasks import (CAN_GRASP_HEIGHT, CAN_IN_HAND, FINGERTIP_REACH, FORWARD, GRIP_SLIDE, HAND_CAN_GRIP,
                           HAND_THUMB_OPPOSED, UP, drawer_front_x, fingertip_frame, level_grasp_frame)
from .experts import ScriptedExpert, Waypoint, register

GRASP_TURNS = np.radians([15, 30, 45])  # finger directions tried for the grip under the drawer (toward the midline)
OUT_OF_DRAWER = 0.13    # the dragged can's centre, this far in front of the drawer's front panel (m)
LIFT_OUTWARD = 0.25     # the can rises this far to the outer side of the drawer's centre, clear of its handle (m)
LIFT_Z = 1.40           # the can's bottom over the front panel (its top edge at 1.365 m)
RELEASE_Z = 1.24        # the can's bottom when let go: 7.5 cm above the drawer's floor (1.165 m)
RELEASE_IN = 0.13       # the can's centre, this far inside the front panel when let go (the panel is 2 cm thick)


@register
class StackCanIntoDrawerExpert(ScriptedExpert):
    """Right hand: grip the can under the drawer, lift it over the front panel and drop it into the drawer from 7.5
    cm; left hand: push the drawer shut (see the module's docstring for why each step is as it is)."""

    task = "stack_can_into_drawer"
    # Where the can is let go across the drawer, toward the outer side of its centre (m). With the drawer shifted
    # 7 cm or more to the robot's right, the arm reaches the drawer only nearer the midline: the can goes 3 cm to
    # the inner side there. (Measured: with the can's centre line used for every placement, none succeeded.)
    release_outward = 0.06
    release_outward_far_side = -0.03
    push_across = 0.1   # the left hand pushes the panel this far to the left of the drawer's centre (m)
    push_s = 1.5        # ~0.15 m/s: a faster shove topples the can

    def script(self, env):
        side, other, s = "right", "left", 1.0
        can = env.object_pose("can")[:3]
        root = env.object_pose("drawer")[:3]
        front = drawer_front_x(env)

        # 1. Grip under the drawer: stage in front of the panel with the fingertips short of it, come down to the grip
        # height, slide in level, close the hand, drag the can out.
        centre = can + CAN_GRASP_HEIGHT * UP
        out_x = front - OUT_OF_DRAWER
        best = None
        for turn in GRASP_TURNS:
            r = level_grasp_frame(side, turn)
            p = centre - r @ CAN_IN_HAND[side]
            dragged = p + GRIP_SLIDE * -r[:, 1] + (out_x - can[0]) * FORWARD
            score = min(self.pose_score(side, q, r) for q in (p - 0.15 * -r[:, 1], p, dragged))
            if best is None or score > best[0]:
                best = (score, p, r)
        _, p, r = best
        f = -r[:, 1]
        back = max(0.0, p[0] + FINGERTIP_REACH * f[0] - (front - 0.015)) / max(f[0], 0.3)
        staged = p - back * f
        yield Waypoint(1.3, {side: (staged + 0.15 * UP, r)}, {side: HAND_THUMB_OPPOSED}, mode="joint")
        yield Waypoint(0.6, {side: (staged, r)})
        yield Waypoint(0.3 + 3.0 * back, {side: (p, r)})
        p = p + GRIP_SLIDE * f  # the hand slides on as the fingers close (see pick_can)
        yield Waypoint(0.8, {side: (p, r)}, {side: HAND_CAN_GRIP})
        yield Waypoint(0.2)
        yield Waypoint(1.0, {side: (p + (out_x - can[0]) * FORWARD + 0.01 * UP, r)})

        # The can's bottom in the hand frame as gripped; later hand poses are given by where the can should be and
        # how far the hand has turned about the can's axis.
        p_hand, r_hand = self.hand_pose(side)
        held = env.object_pose("can")[:3]
        in_hand = r_hand.T @ (held - p_hand)

        def holding_at(can_root, turn_deg):
            rot = level_grasp_frame(side, np.radians(turn_deg))
            return np.asarray(can_root, float) - rot @ in_hand, rot

        # The left hand's push, along the drawer's axis at mid-panel height.
        push_y, push_z = root[1] + s * self.push_across, root[2] - 0.08
        push_from = np.array([front - 0.005, push_y, push_z])
        push_to = np.array([root[0] - 0.04, push_y, push_z])  # 2 cm past the closed front
        r_push = fingertip_frame(self, other, [push_from - 0.04 * FORWARD, push_to], [FORWARD])
        fingertip_at = lambda q: (q + FINGERTIP_REACH * r_push[:, 1], r_push)  # noqa: E731

        # 2. Up in front of the panel, to the outer side of the handle; the left hand gets ready meanwhile.
        lift_y = root[1] - s * LIFT_OUTWARD
        yield Waypoint(0.6, {side: holding_at([held[0], lift_y, held[2] + 0.08], 67)})
        yield Waypoint(1.4, {side: holding_at([held[0], lift_y, LIFT_Z], 75),
                             other: fingertip_at(push_from - 0.05 * FORWARD)})
        # 3. Over the panel, down into the drawer's exposed part and in toward the cabinet.
        outward = self.release_outward if s * root[1] > -0.07 else self.release_outward_far_side
        y = root[1] - s * outward
        yield Waypoint(1.0, {side: holding_at([front + 0.09, y, LIFT_Z + 0.02], 90)})
        yield Waypoint(0.7, {side: holding_at([front + 0.09, y, 1.30], 90)})
        yield Waypoint(0.5, {side: holding_at([front + RELEASE_IN, y, RELEASE_Z], 90)})
        # 4. Let go with the thumb kept opposed.
        yield Waypoint(0.4, None, {side: HAND_THUMB_OPPOSED})
        # 5. Back out upward (clear of the top drawer's handle) and push the drawer shut.
        p_hand, r_hand = self.hand_pose(side)
        yield Waypoint(0.5, {side: (p_hand + np.array([-0.06, 0.0, 0.12]), r_hand), other: fingertip_at(push_from)})
        yield Waypoint(self.push_s, {side: (p_hand + np.array([-0.2, -s * 0.05, 0.15]), r_hand),
                                     other: fingertip_at(push_to)})
        yield Waypoint(0.4)
