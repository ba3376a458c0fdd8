"""Scripted expert for Stack-Can-Into-Drawer: put the can into the open bottom drawer, then push the drawer shut so
that it carries the can onto the saucer.

The saucer is fixed in the world, 0.56-0.79 m out under the cabinet's shelf, while the drawer slides under it. A can
standing on the open drawer's floor 0.2-0.3 m short of the saucer rides in with the drawer when it is pushed shut
slowly and ends on the saucer. So the can only has to be stood in the drawer's exposed part (between its front panel,
x ~0.26, and the cabinet's front, x 0.47), 0.26-0.3 m short of the saucer. The scene leaves little room for that:

1. The can stands on the table under the open drawer (its top 1.5 cm below the drawer's floor). Near cans: the
   holding hand comes in level from the robot's side, under the drawer (fingers forward and 15-45 degrees toward the
   midline), grips it and drags it out in front of the drawer. Beyond x ~0.37 the fingers of that grip reach the
   cabinet's plinth (x 0.47) before the can is in the hand, and the table's edge (x 0.24) leaves no room to set a
   can down in front of the drawer. So both hands first squeeze the can between their straight fingers (palms
   facing each other, fingertips short of the plinth) and drag it to x 0.32, where the holding hand grips it as
   above (fingers straight forward) and the other hand backs out.
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
5. The holding hand backs out upward while the other hand's fingertips, already waiting in front of the panel,
   push the drawer shut in 1.5 s.

The right hand holds, except for drawers shifted 4.5-8 cm or 8.5 cm or more to the robot's right, where its upper
arm or elbow rests on the panel's right end while lowering (the hand stalls 0.13 m above the release height and the
dropped can falls over): the left hand holds there (mirrored), and the right hand pushes (see
``left_hand_y_bands`` for the details).

In the left hand the can tilted in the grip when it was swung out sideways fast (see ``lift_out_s``); turning the
hand to stand the can upright again instead brought the left elbow onto the panel's left end.

Limits (measured on the protocol's placements, 25 of 27 seen and 62 of 66 unseen): a few edge-of-holding grasps and
drops, and cans that wobble after the drop and topple as the drawer carries them in.
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
    """One hand (usually the right) grips the can under the drawer, lifts it over the front panel and drops it into
    the drawer from 7.5 cm; the other pushes the drawer shut (see the module's docstring for why each step is as it
    is)."""

    task = "stack_can_into_drawer"
    # Where the can is let go across the drawer, toward the outer side of its centre (m). With the drawer shifted
    # 7 cm or more to the robot's right, the arm reaches the drawer only nearer the midline: the can goes 3 cm to
    # the inner side there. (Measured: with the can's centre line used for every placement, none succeeded. At 6 cm
    # out the cans landed up to 2 cm farther out still and some ended 9-10 cm from the saucer's centre.)
    release_outward = 0.04
    release_outward_far_side = -0.03
    far_side_y = -0.07
    # Where the pushing hand's fingertips meet the panel, left of the drawer's centre (m): the handle spans 0.07-0.18
    # to the right of the centre.
    push_across = {"left": 0.1, "right": 0.0}
    # Drawers in these bands of y (m), to the robot's right, are served by the left hand (and pushed by the right):
    # lowering the can with the right hand there, its upper arm or elbow rested on the panel's right end (measured:
    # 3 of 19 placements 4.5-8 cm right succeeded; 18 of 19 do with the left hand and ``lift_out_s``). In between,
    # 8-8.5 cm right, the right hand reaches the drawer with the can let go 3 cm to its inner side
    # (``release_outward_far_side``), while the left hand's can fell over there.
    left_hand_y_bands = ((-np.inf, -0.085), (-0.079, -0.044))
    # Duration (s) of the first move after the drag: 8 cm up and 0.25 m sideways to the outer side. In the left hand
    # (the squeeze-out grip) the can, its bottom still near the table, lagged up to 4 cm behind the hand in a 0.6 s
    # move and rose tilted 20-35 degrees; dropped tilted, it fell over (6 of 19 placements with the drawer 4.5-8 cm
    # right). Over 1.0 s it stays upright (0.9 s: 2 failures, 1.1 s: 4). The right hand keeps 0.6 s: 1.0 s there
    # made 6 successes fail (the push runs within ~10 steps of the horizon and the outcomes shift).
    lift_out_s = {"left": 1.0, "right": 0.6}
    push_s = 1.5        # ~0.15 m/s: a faster shove topples the can

    # Cans farther out than this (x, m) are first squeezed between both hands' fingers and dragged out; so is every
    # can the left hand takes (its grip under the drawer knocked the can away: 3 of 3 seen rollouts failed).
    squeeze_x = 0.37
    squeeze_tip_x = 0.462  # the straight fingertips' reach during the squeeze (the plinth's face is at 0.47)
    squeeze_depth = 0.008  # each hand's fingers are aimed this far into the can's side (m)
    squeeze_to_x = 0.32    # where the squeezed can is dragged to (its centre, m)

    def script(self, env):
        root = env.object_pose("drawer")[:3]
        left = any(lo < root[1] < hi for lo, hi in self.left_hand_y_bands)
        side, other = ("left", "right") if left else ("right", "left")
        s = 1.0 if side == "right" else -1.0
        front = drawer_front_x(env)
        out_x = front - OUT_OF_DRAWER
        if env.object_pose("can")[0] > self.squeeze_x or side == "left":
            yield from self.squeeze_out(env, side, front, out_x)
        else:
            yield from self.grip_under_drawer(env, side, front, out_x)
        # The can's bottom in the hand frame as gripped; later hand poses are given by where the can should be and
        # how far the hand has turned about the can's axis.
        p_hand, r_hand = self.hand_pose(side)
        held = env.object_pose("can")[:3]
        in_hand = r_hand.T @ (held - p_hand)

        def holding_at(can_root, turn_deg):
            rot = level_grasp_frame(side, np.radians(turn_deg))
            return np.asarray(can_root, float) - rot @ in_hand, rot

        # The other hand's push, along the drawer's axis at mid-panel height.
        push_y, push_z = root[1] + self.push_across[other], root[2] - 0.08
        push_from = np.array([front - 0.005, push_y, push_z])
        push_to = np.array([root[0] - 0.04, push_y, push_z])  # 2 cm past the closed front
        r_push = fingertip_frame(self, other, [push_from - 0.04 * FORWARD, push_to], [FORWARD])
        fingertip_at = lambda q: (q + FINGERTIP_REACH * r_push[:, 1], r_push)  # noqa: E731

        # 2. Up in front of the panel, to the outer side of the handle; the left hand gets ready meanwhile.
        lift_y = root[1] - s * LIFT_OUTWARD
        yield Waypoint(self.lift_out_s[side], {side: holding_at([held[0], lift_y, held[2] + 0.08], 67)})
        yield Waypoint(1.4, {side: holding_at([held[0], lift_y, LIFT_Z], 75),
                             other: fingertip_at(push_from - 0.05 * FORWARD)})
        # 3. Over the panel, down into the drawer's exposed part and in toward the cabinet.
        far_side = s * root[1] <= self.far_side_y
        y = root[1] - s * (self.release_outward_far_side if far_side else self.release_outward)
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

    def grip_under_drawer(self, env, side, front, out_x):
        """Grip the can under the drawer: stage in front of the panel with the fingertips short of it, come down to
        the grip height, slide in level, close the hand, drag the can out to ``out_x``."""
        can = env.object_pose("can")[:3]
        centre = can + CAN_GRASP_HEIGHT * UP
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
        yield from self.close_and_drag(side, p, r, out_x - can[0])

    def close_and_drag(self, side, p, r, drag):
        """Close the hand on the can (the hand slides on along the fingers meanwhile, see pick_can) and drag it
        ``drag`` m along x, 1 cm up."""
        p = p + GRIP_SLIDE * -r[:, 1]
        yield Waypoint(0.8, {side: (p, r)}, {side: HAND_CAN_GRIP})
        yield Waypoint(0.2)
        yield Waypoint(1.0, {side: (p + drag * FORWARD + 0.01 * UP, r)})

    def squeeze_out(self, env, side, front, out_x):
        """Both hands, fingers straight forward and palms facing each other, squeeze the can between their fingers
        and drag it out to ``squeeze_to_x``; there ``side`` grips it, and the other hand backs out of the drawer."""
        can = env.object_pose("can")[:3]
        centre = can + CAN_GRASP_HEIGHT * UP
        along = max(0.15, FINGERTIP_REACH + 0.008 - (self.squeeze_tip_x - can[0]))  # can centre along the fingers
        touch = 0.013 + 0.033   # can axis to the hand base along the palm normal, the fingers touching the can
        frames = {side: level_grasp_frame(side, 0.0) for side in ("right", "left")}

        def at(side, gap, x_shift=0.0):
            r = frames[side]
            return centre - (touch + gap) * -r[:, 0] - along * -r[:, 1] + x_shift * FORWARD, r

        back = max(0.0, can[0] - along + FINGERTIP_REACH + 0.008 - (front - 0.015))
        hands = {s: HAND_THUMB_OPPOSED for s in frames}
        # (A joint move straight down to the staging pushed the drawer 9 cm shut: the fingers swept into it.)
        yield Waypoint(1.3, {s: (at(s, 0.015, -back)[0] + 0.15 * UP, frames[s]) for s in frames}, hands)
        yield Waypoint(0.6, {s: at(s, 0.015, -back) for s in frames})
        yield Waypoint(0.3 + 3.0 * back, {s: at(s, 0.015) for s in frames})
        yield Waypoint(0.3, {s: at(s, -self.squeeze_depth) for s in frames})
        shift = self.squeeze_to_x - can[0]
        yield Waypoint(0.3 + 3.0 * abs(shift), {s: at(s, -self.squeeze_depth, shift) for s in frames})
        # ``side`` opens its squeeze and slides on to grip the can where it now stands; the other hand lets go and
        # backs out until its fingertips are in front of the panel.
        other = "left" if side == "right" else "right"
        can = env.object_pose("can")[:3]
        r = frames[side]
        p = can + CAN_GRASP_HEIGHT * UP - r @ CAN_IN_HAND[side]
        p_other, r_other = at(other, 0.03, shift)
        tips_out = p_other[0] + FINGERTIP_REACH + 0.01 - (front - 0.015)
        yield Waypoint(0.3, {side: at(side, -CAN_IN_HAND[side][0] - touch, shift), other: (p_other, r_other)})
        yield Waypoint(0.4, {side: (p, r), other: (p_other - max(0.0, tips_out) * FORWARD, r_other)})
        yield from self.close_and_drag(side, p, r, out_x - can[0])
