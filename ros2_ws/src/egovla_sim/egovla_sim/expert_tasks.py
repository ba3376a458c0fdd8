"""Scripted experts for the benchmark's tasks (see ``experts.py`` for how they act)."""

from __future__ import annotations

import numpy as np

from egovla_description.geometry import axis_angle_to_matrix, quat_to_matrix

from .experts import HAND_OPEN, ScriptedExpert, Waypoint, hand_frame, register

UP = np.array([0.0, 0.0, 1.0])
FORWARD = np.array([1.0, 0.0, 0.0])  # away from the robot
TABLE_Z = 1.02
FINGERTIP_REACH = 0.21  # hand base to the straight middle fingertip, along the fingers (m)


def rotation_between(a, b) -> np.ndarray:
    """The smallest rotation taking direction ``a`` to direction ``b`` (not opposite ones)."""
    a, b = unit(a), unit(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis)
    if sin < 1e-9:
        return np.eye(3)
    return axis_angle_to_matrix(axis / sin * np.arctan2(sin, float(a @ b)))


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


SAFE_Z = 1.30  # hand-base height for transits: everything on the table is below it

# --- cans -----------------------------------------------------------------------------------------------------

HAND_THUMB_OPPOSED = (0.0, 0.0, 0.0, 0.0, 1.3, 0.0)  # flat fingers, thumb swung in front of the palm
HAND_CAN_GRIP = (1.7, 1.7, 1.7, 1.7, 1.3, 0.5)       # fingers wrapped, thumb pressing (the drives stall on the can)
# Where the can's axis is in the hand frame when the hand comes down over it: in the pocket between the palm, the
# straight fingers and the opposed thumb, ~1 cm clear of each. Closing pulls the can toward the wrist, against the
# palm; the hand slides forward meanwhile so the can does not drag on the table. Measured over 4 placements: the
# can ends 7-10 deg from upright in the grip here; 1 cm farther along the fingers, 20-30 deg.
CAN_IN_HAND = {"right": np.array([-0.06, -0.14, 0.0]), "left": np.array([-0.06, -0.14, 0.0])}
CAN_GRASP_HEIGHT = 0.065  # m above the can's bottom, on its axis, where CAN_IN_HAND is placed
GRIP_SLIDE = 0.05
GRASP_YAWS_DEG = (-45, -30, -15, 0, 15, 30)


def level_grasp_frame(side: str, turn: float) -> np.ndarray:
    """Hand frame for a level side grip of an upright can: palm vertical facing the body's midline, fingers level
    and turned ``turn`` rad from straight ahead toward the midline (at pi/2 they point across the body and the palm
    faces the robot)."""
    s = 1.0 if side == "right" else -1.0
    return hand_frame([-np.sin(turn), s * np.cos(turn), 0.0], [np.cos(turn), s * np.sin(turn), 0.0], side)


def can_grasp_pose(expert: ScriptedExpert, side: str, can_root, lift: float = 0.15,
                   height: float = CAN_GRASP_HEIGHT, retreat: float = 0.0, slide: float = GRIP_SLIDE):
    """Hand-base pose for grasping an upright can: palm facing the body's midline, fingers level (the finger
    stack must be parallel to the can), turned about z for the largest joint margin over the grasp, the slide
    and the lift (which ends ``retreat`` m nearer the body)."""
    centre = np.asarray(can_root, float) + height * UP
    best, best_score = None, -np.inf
    for yaw in np.radians(GRASP_YAWS_DEG):  # positive: fingers turned away from the midline
        r = level_grasp_frame(side, -yaw)
        f = -r[:, 1]
        p = centre - r @ CAN_IN_HAND[side]
        lifted = p + slide * f + lift * UP - retreat * FORWARD
        score = min(expert.pose_score(side, q, r) for q in (p, p + slide * f, lifted))
        if score > best_score:
            best, best_score = (p, r), score
    return best


def pick_can(expert: ScriptedExpert, env, side: str, name: str, lift: float = 0.15,
             height: float = CAN_GRASP_HEIGHT, retreat: float = 0.0, slide: float = GRIP_SLIDE):
    """Waypoints that grasp the upright can ``name`` from above with ``side`` (the grip centred ``height`` above
    the can's bottom) and lift it by ``lift``, ending ``retreat`` m nearer the body (cans far out are drawn in
    as they rise: at the edge of the reach the wrist cannot hold its orientation through a lift)."""
    p, r = can_grasp_pose(expert, side, env.object_pose(name)[:3], lift, height, retreat, slide)
    f = -r[:, 1]
    yield from transit(expert, side, (p + 0.14 * UP, r), hand=HAND_THUMB_OPPOSED)
    yield Waypoint(0.9, {side: (p, r)})
    yield Waypoint(0.8, {side: (p + slide * f, r)}, {side: HAND_CAN_GRIP})
    yield Waypoint(0.2)
    gripped = p + slide * f
    if retreat > 0.0:  # clear the table first, then draw the can in as it rises
        yield Waypoint(0.6, {side: (gripped + 0.04 * UP, r)})
    yield Waypoint(1.0 + 3.0 * retreat, {side: (gripped + lift * UP - retreat * FORWARD, r)})


def place_can(expert: ScriptedExpert, env, side: str, name: str, goal_root, clearance: float = 0.01):
    """Waypoints that carry the held can ``name`` over ``goal_root``, turn the hand so the can stands upright (the
    grip leaves it tilted by 20-30 deg), lower it until its bottom is ``clearance`` above the goal, open the hand
    and back away upward."""
    goal_root = np.asarray(goal_root, float)
    p_hand, r_hand = expert.hand_pose(side)
    in_hand = r_hand.T @ (env.object_pose(name)[:3] - p_hand)  # the can's bottom in the hand frame
    above = goal_root + 0.09 * UP
    yield Waypoint(2.0, {side: (above - r_hand @ in_hand, r_hand)}, mode="joint")
    yield Waypoint(0.2)
    p_hand, r_hand = expert.hand_pose(side)
    can = env.object_pose(name)
    in_hand = r_hand.T @ (can[:3] - p_hand)
    r_up = rotation_between(quat_to_matrix(can[3:])[:, 2], UP) @ r_hand
    yield Waypoint(1.0, {side: (can[:3] - r_up @ in_hand, r_up)})
    yield Waypoint(0.8, {side: (goal_root + clearance * UP - r_up @ in_hand, r_up)})
    yield Waypoint(0.5, None, {side: HAND_THUMB_OPPOSED})
    p_hand, _ = expert.hand_pose(side)
    yield Waypoint(0.6, {side: (p_hand + 0.14 * UP, r_up)})


# Far out (x > 0.48 m) the grasp and its 5 cm slide are out of the arm's reach at grip height 1.085 m (2-11 cm short at
# x 0.54-0.58); 3 cm higher on the can, with a 2.5 cm slide, they are reached, and the lift draws the can in.
# Sort-Cans, seen split: 15 of 27 with the low grip for the far cans, 23 of 27 with this one.
FAR_CAN_X = 0.48
FAR_PICK = {"height": 0.095, "slide": 0.025, "retreat": 0.1}


def pick_params(can_root, **near) -> dict:
    """``pick_can`` keyword arguments for a can at ``can_root``: ``near`` as given, or the far-reach grip."""
    return {**near, **FAR_PICK} if can_root[0] > FAR_CAN_X else near


@register
class StackCanExpert(ScriptedExpert):
    task = "stack_can"

    def script(self, env):
        side = "right"
        yield from pick_can(self, env, side, "can", **pick_params(env.object_pose("can")[:3]))
        yield from place_can(self, env, side, "can", env.object_pose("plate")[:3] + [0.0, 0.0, 0.006])


def transit(expert: ScriptedExpert, side: str, pose, hand=None, duration_s: float = 1.2):
    """Move a hand to ``pose`` without sweeping through the table: straight up to the safe height, a joint-space
    move to above the goal, straight down onto it."""
    p, r = expert.hand_pose(side)
    goal_p, goal_r = pose
    if p[2] < SAFE_Z - 0.01:
        yield Waypoint(0.4, {side: (np.array([p[0], p[1], SAFE_Z]), r)})
    above = np.array([goal_p[0], goal_p[1], max(SAFE_Z, goal_p[2])])
    yield Waypoint(duration_s, {side: (above, goal_r)}, {side: hand} if hand is not None else None, mode="joint")
    if above[2] - goal_p[2] > 1e-3:
        yield Waypoint(0.3 + 2.0 * (above[2] - goal_p[2]), {side: (goal_p, goal_r)})


@register
class PushBoxExpert(ScriptedExpert):
    """Right hand as a paddle: palm toward the push direction, straight fingers level with the box's middle.
    Pushes in short strokes and re-aims at the goal after each (the box turns and slides)."""

    task = "push_box"
    side = "right"
    finger_half_thickness = 0.017
    tip_clearance = 0.03  # fingertips above the table: at 1.5 cm they slid under the box and flipped it
    tilts_deg = (0,)
    # Longest stroke (m). Overall 86-87 % of the 93 rollouts for 0.12-0.16; the seen split: 81.5 % at 0.12,
    # 92.6 % at 0.14, 88.9 % at 0.16 (the strokes that remain at the end of the horizon decide it).
    max_stroke = 0.14

    def paddle_base(self, contact, rot, along):
        """Hand-base position that puts the point ``along`` m down the fingers, on the palm side, at ``contact``."""
        return contact + along * rot[:, 1] + self.finger_half_thickness * rot[:, 0]

    def script(self, env):
        side = self.side
        goal = env.placement.context["goal"][:2]
        r = None
        for stroke in range(8):
            box = env.object_pose("box")
            to_goal = goal - box[:2]
            dist = np.linalg.norm(to_goal)
            if dist < 0.03:
                break
            d = np.array([*(to_goal / dist), 0.0])
            yaw = np.arctan2(2 * (box[3] * box[6] + box[4] * box[5]), 1 - 2 * (box[5] ** 2 + box[6] ** 2))
            c, s = np.cos(yaw), np.sin(yaw)
            local = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
            half = min(0.105, abs(local[0]) * 0.105 + abs(local[1]) * 0.08)  # box centre to the face pushed
            centre_z = box[2] + 0.02  # upper half of the face (the box is 6 cm tall, its root 1 cm below its centre)

            behind = np.array([*(box[:2] - (half + 0.04) * d[:2]), centre_z])
            push = min(self.max_stroke, dist + 0.005)
            ahead = np.array([*(box[:2] - half * d[:2] + push * d[:2]), centre_z])
            if r is None:
                across = np.cross(d, UP)
                best = -np.inf
                for sign in (1.0, -1.0):
                    for tilt in np.radians(self.tilts_deg):
                        f = np.cos(tilt) * sign * across - np.sin(tilt) * UP
                        rot = hand_frame(d, f, side)
                        for along in (0.12, 0.15, 0.18):
                            # fingertips (0.21 m down the fingers) at least 1 cm above the table
                            z = max(centre_z, TABLE_Z + self.tip_clearance + (0.21 - along) * np.sin(tilt))
                            if z > box[2] + 0.032:
                                continue
                            lift = np.array([0.0, 0.0, z - centre_z])
                            score = min(self.pose_score(side, self.paddle_base(c + lift, rot, along), rot)
                                        for c in (behind, ahead))
                            if score > best:
                                best, r, self._along, self._lift = score, rot, along, lift
            else:  # keep the finger direction, re-aim the palm along the new push direction
                turned = np.degrees(np.arccos(np.clip(-r[:, 0] @ d, -1.0, 1.0)))
                r = hand_frame(d, -r[:, 1], side)

            def base_for(contact, rot):
                return self.paddle_base(contact + self._lift, rot, self._along)

            if stroke == 0 or turned > 20 or np.linalg.norm(self.hand_pose(side)[0] - base_for(behind, r)) > 0.03:
                yield from transit(self, side, (base_for(behind, r), r), hand=HAND_OPEN)
            yield Waypoint(0.3 + 6.0 * push, {side: (base_for(ahead, r), r)})
            yield Waypoint(0.3, {side: (base_for(ahead - 0.03 * d, r), r)})  # off the box before moving on
        p, r = self.hand_pose(side)
        yield Waypoint(0.6, {side: (p - 0.05 * (-r[:, 0]) + 0.1 * UP, r)})


def drawer_front_x(env, name: str = "drawer") -> float:
    """World x of the bottom drawer's front face (the cabinet faces the robot, -x)."""
    from .tasks import DRAWER_JOINT_RANGE

    root = env.object_pose(name)[:3]
    q = env.task_state().joints[f"{name}/bottom_joint"]
    return float(root[0] - 0.06 - (DRAWER_JOINT_RANGE[1] - q))


def fingertip_frame(expert, side, points, d_options):
    """The hand frame (fingers along one of ``d_options``, palm down or sideways) that reaches the straight
    middle fingertip to every point in ``points`` with the most joint margin."""
    best, best_r = -np.inf, None
    for f in d_options:
        f = unit(f)
        for normal in (-UP, np.cross(UP, f), -np.cross(UP, f), UP):
            if np.linalg.norm(np.cross(normal, f)) < 0.5:
                continue
            r = hand_frame(normal, f, side)
            score = min(expert.pose_score(side, np.asarray(p) + FINGERTIP_REACH * r[:, 1], r) for p in points)
            if score > best:
                best, best_r = score, r
    return best_r


def fingertip_push(expert: ScriptedExpert, side: str, start, end, duration_s: float, approach: float = 0.04):
    """Push with straight fingertips from ``start`` to ``end`` (where the middle fingertip goes, world), the
    fingers pointing along the push (or up to 17 degrees up or down from it, whichever the arm reaches best)."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    d = unit(end - start)
    r = fingertip_frame(expert, side, [start - approach * d, end], [d + t * UP for t in (0.0, -0.3, 0.3)])
    base = lambda p: p + FINGERTIP_REACH * r[:, 1]  # noqa: E731
    yield from transit(expert, side, (base(start - approach * d), r), hand=HAND_OPEN)
    yield Waypoint(0.3, {side: (base(start), r)})
    yield Waypoint(duration_s, {side: (base(end), r)})


@register
class CloseDrawerExpert(ScriptedExpert):
    """Left hand: fingertips against the open drawer's front (near the left end, where the benchmark's reach
    point is), pushed in until the drawer is shut."""

    task = "close_drawer"

    def script(self, env):
        side = "left"
        root = env.object_pose("drawer")[:3]
        front = drawer_front_x(env)
        y, z = root[1] + 0.2, root[2] - 0.08
        closed_front = root[0] - 0.06
        yield from fingertip_push(self, side, (front - 0.005, y, z), (closed_front + 0.02, y, z), 1.6)
        yield Waypoint(0.4)
        p, r = self.hand_pose(side)
        yield Waypoint(0.6, {side: (p - 0.08 * -r[:, 1], r)})


@register
class OpenLaptopExpert(ScriptedExpert):
    """Fingertips slid under the front edge of the lid (it rests 0.088 rad open), then moved along a circle
    around the hinge so the lid swings up past 80 degrees."""

    task = "open_laptop"
    radius = 0.19  # where along the lid (from the hinge) the fingertips lift it
    final_angle = 1.5

    def script(self, env):
        from .tasks import LAPTOP_JOINT

        root = env.object_pose("laptop")[:3]
        side = "right" if root[1] < 0 else "left"
        hinge = root + np.array([0.11, 0.0, 0.016])
        def under_lid(angle, depth=0.011):
            # a point on the lid's underside, ``radius`` from the hinge, ``depth`` below it
            c, s = np.cos(angle), np.sin(angle)
            return hinge + self.radius * np.array([-c, 0.0, s]) + depth * np.array([-s, 0.0, -c])

        q0 = env.task_state().joints[LAPTOP_JOINT]
        angles = np.linspace(q0 + 0.05, self.final_angle, 7)
        start = under_lid(q0, depth=0.012) - np.array([0.05, 0.0, 0.0])
        forward_down = [np.array([1.0, 0.0, -t]) for t in (0.0, 0.2, 0.4)]
        # The frame (fixed over the arc) is scored over every arc waypoint, not only the start and the end: scored
        # at the ends only, the arm could not reach the middle of the arc for far laptops (x 0.62-0.65: 2485, 3994)
        # and the lid stayed shut; seen 27/27 and unseen 63/66 this way (24/27 and 61/66 scored at the ends).
        r = fingertip_frame(self, side, [start, *(under_lid(a) for a in angles)], forward_down)
        base = lambda p: np.asarray(p, float) + FINGERTIP_REACH * r[:, 1]  # noqa: E731
        yield from transit(self, side, (base(start), r), hand=HAND_OPEN)
        yield Waypoint(0.6, {side: (base(under_lid(q0, depth=0.012)), r)})
        for a in angles:
            yield Waypoint(0.35, {side: (base(under_lid(a)), r)})
        yield Waypoint(0.3)


@register
class OpenDrawerExpert(ScriptedExpert):
    """The hand on the handle's side (the handle sits right of the cabinet's centre, so usually the right hand;
    success sets every subtask, the left-hand reach flag included), palm down (tilted: ``pitch``, ``roll``) above
    the handle with the fingers half curled; the fingertips drop into the gap behind the bar, the fingers close
    on it, and the arm pulls the drawer out."""

    task = "open_drawer"
    hook_curl = 0.9     # finger curl while hooking in (rad)
    grip_curl = 1.0     # curl that presses the fingers against the back of the bar
    pull = 0.24         # m; the drawer travels 0.22
    drift = -0.07       # m along the bar toward the body's midline while pulling: the arm drifts outward
    # Hand tilt (rad): fingers raised above the horizontal (palm turned forward), palm rolled toward the body's
    # midline. Palm flat, the arm could not follow the pull for handles near the midline (y -0.024..-0.044: 2203,
    # 2701, 511): it lagged its target by up to 9 cm in x and 13 cm in y, the hook held, and the drawer stopped
    # 0.047-0.051 from open. For a drawer close to the robot (x 0.56: 8986) the hand hung 7 cm below the staging
    # pose, so the fingers slid into the bar and pushed the drawer in. Tilted, the arm follows (8986: within 1 cm
    # from the staging pose on). Seen 27/27 and unseen 66/66 with pitch 0.17, 0.35 or 0.44 at roll 0.35 and with
    # roll 0.17 or 0.52 at pitch 0.35; 24/27 seen with pitch 0.17 or 0.26 and no roll (23/27 flat).
    pitch = 0.35
    roll = 0.35

    def script(self, env):
        from egovla_description.kinematics import HandKinematics

        root = env.object_pose("drawer")[:3]
        front = drawer_front_x(env)
        bar = np.array([front - 0.035, root[1] - 0.122, root[2] - 0.05])  # the handle bar's axis centre
        side = "right" if bar[1] < 0.0 else "left"
        outward = -1.0 if side == "right" else 1.0  # +y for the left hand, -y for the right
        gap_point = bar + np.array([0.0135, 0.0, -0.005])  # between the bar and the drawer front
        hk = HandKinematics(env.robot, side)
        hook = (self.hook_curl,) * 4 + (-0.1, 0.0)
        tip = hk.fingertips(hk.from_active(np.array(hook)))[0][2]  # middle fingertip in the hand frame
        tilt = axis_angle_to_matrix(np.array([0.0, -self.pitch, 0.0])) @ axis_angle_to_matrix(
            np.array([-outward * self.roll, 0.0, 0.0]))
        r = tilt @ hand_frame(-UP, [1.0, 0.0, 0.0], side)
        base = gap_point - r @ tip
        # stage 12 cm in front of the handle (clear of the cabinet), then slide over it and drop in
        yield Waypoint(1.2, {side: (base + np.array([-0.12, 0.0, 0.04]), r)}, {side: hook}, mode="joint")
        yield Waypoint(0.6, {side: (base + 0.04 * UP, r)})
        yield Waypoint(0.6, {side: (base, r)})
        yield Waypoint(0.5, None, {side: (self.grip_curl,) * 4 + (-0.1, 0.0)})
        # pull straight back; aim slightly inward along the bar, against the arm's outward drift when it folds
        yield Waypoint(2.5, {side: (base + np.array([-self.pull, self.drift * outward, 0.0]), r)})
        yield Waypoint(0.3)


def in_parallel(*scripts):
    """Run per-hand waypoint scripts side by side: the k-th waypoints of each are merged into one (the longer
    duration; each hand keeps its own pose and closure). Waypoints of different modes run one after the other."""
    from itertools import zip_longest

    for group in zip_longest(*scripts):
        group = [w for w in group if w is not None]
        if len({w.mode for w in group}) > 1:
            yield from group
            continue
        pose, hand = {}, {}
        for w in group:
            pose.update(w.pose or {})
            hand.update(w.hand or {})
        yield Waypoint(max(w.duration_s for w in group), pose or None, hand or None, mode=group[0].mode)


# The 2x3 slot tray (objects.py): x 0.32..0.64, y -0.1..0.1, 4 mm walls (outer walls inside the bounds, dividers
# centred on x = 0.48 -+ 0.16/3 and y = 0), floor top at 1.05, walls up to 1.10.
TRAY_FLOOR_Z = 1.05
_TRAY_WALL = 0.004
_FRONT_SLOT_X = 0.5 * ((0.32 + _TRAY_WALL) + (0.48 - 0.16 / 3 - _TRAY_WALL / 2))  # 0.3743
_SLOT_Y = 0.5 * (_TRAY_WALL / 2 + (0.1 - _TRAY_WALL))                              # 0.049
# Each hand's can goes into the slot centre of the front row on its own side. Middle and back slots put the forearm
# over the tray: lowering a can into a middle slot, the elbow link ran into the tray with the can still above the
# walls (seen for the left hand at y +0.05 and the right hand at y -0.05); the back row is out of reach. The
# two front slots side by side are reached by both hands at once without touching (the thumbs, swung in front of
# the palms on the near side of the cans, stay clear of each other).
TRAY_SLOT = {"right": np.array([_FRONT_SLOT_X, -_SLOT_Y]), "left": np.array([_FRONT_SLOT_X, _SLOT_Y])}
# Grip height on the can for insertion (m above its bottom). With the can standing on the slot floor the fingers must
# stay above the walls (5 cm high): at the usual 0.065 they landed on the walls and the can was released above
# them. Measured over the 27 seen placements (both hands lowering at once into the front slots, cans checked after
# the release): every can inserted upright with grips at 0.07-0.09; 25 of 27 at 0.065 and 21 of 27 at 0.095 (the
# can hangs below the fingers and tips in the grip).
INSERT_GRIP_HEIGHT = 0.08


@register
class InsertCansExpert(ScriptedExpert):
    """Both hands pick their cans at once, then lower them at once into the two front slots and release them just
    above the slot floor."""

    task = "insert_cans"
    cans = {"right": "can_fanta_1", "left": "can_fanta_2"}

    def script(self, env):
        yield from insert_cans(self, env, self.cans)


def insert_cans(expert: ScriptedExpert, env, cans: dict):
    """Both hands pick their cans (gripped high, so the fingers clear the slot walls) and place them into their
    slots side by side, at the same time. Placing in parallel also keeps the cans upright in the grip: a can held
    (gripped at 0.09) while the other hand placed its own (6 s) tipped from 10 to 27 deg in the hand, beyond what
    the wrist could correct over the slot."""
    yield from in_parallel(*(pick_can(expert, env, side, name, height=INSERT_GRIP_HEIGHT)
                             for side, name in cans.items()))
    yield from in_parallel(*(place_can(expert, env, side, name, np.array([*TRAY_SLOT[side], TRAY_FLOOR_Z]),
                                       clearance=0.012) for side, name in cans.items()))


@register
class UnloadCansExpert(ScriptedExpert):
    """Both hands at once: each grips its can above the slot walls, lifts it clear of the tray and sets it down
    on the table beside the tray, on its own side."""

    task = "unload_cans"
    cans = {"right": "can_fanta_1", "left": "can_fanta_2"}
    grip_height = 0.09  # the slot walls reach 5 cm above the can's bottom: grip high so the fingers clear them

    def script(self, env):
        lo, hi = env.placement.context["box_lower"], env.placement.context["box_upper"]
        yield from unload_cans(self, env, self.cans, lo, hi, self.grip_height)


def unload_cans(expert: ScriptedExpert, env, cans: dict, box_lower, box_upper, grip_height: float = 0.09):
    """Both hands grip their cans high (clear of the slot walls), lift them out and set them down beside the box
    ``box_lower``..``box_upper`` (xy), each on its own side."""
    yield from in_parallel(*(pick_can(expert, env, side, name, lift=0.16, height=grip_height)
                             for side, name in cans.items()))
    goals = {}
    for side, name in cans.items():
        x = env.object_pose(name)[0]
        y = box_lower[1] - 0.12 if side == "right" else box_upper[1] + 0.12
        goals[side] = np.array([x, y, TABLE_Z])
    yield from in_parallel(*(place_can(expert, env, side, name, goals[side]) for side, name in cans.items()))


@register
class InsertAndUnloadCansExpert(ScriptedExpert):
    """Insert-Cans, then Unload-Cans with the same hands."""

    task = "insert_and_unload_cans"
    cans = {"right": "can_fanta_1", "left": "can_fanta_2"}

    def script(self, env):
        from .tasks import CONTAINER_XY_LOWER, CONTAINER_XY_UPPER

        yield from insert_cans(self, env, self.cans)
        yield from unload_cans(self, env, self.cans, CONTAINER_XY_LOWER, CONTAINER_XY_UPPER)
