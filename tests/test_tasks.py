"""Benchmark task definitions: every success/subtask threshold from both sides, latching, placements, protocol."""

import math
import random

import numpy as np
import pytest

from egovla_sim.tasks import (
    DRAWER_BOTTOM_JOINT, DRAWER_TOP_JOINT, LAPTOP_JOINT, SEEN_CONFIGS, TASKS, UNSEEN_CONFIGS, Placement,
    StepFlags, TaskState, ball_crossed_rim, bowl_rim_center, can_inserted, fingertip_mean, get_task, in_box,
    local_z_up, near, placement_sequence, protocol_rollouts, psr, strictly_inside, summarize, xy_within)

# Fingertips spread around the hand position with zero mean, so the reach tests really use the mean.
SPREAD = np.array([[0.05, 0.0, 0.0], [-0.05, 0.0, 0.0], [0.0, 0.03, 0.0], [0.0, -0.03, 0.0], [0.0, 0.0, 0.0]])
FAR = {"left": np.array([0.0, 0.8, 0.6]), "right": np.array([0.0, -0.8, 0.6])}


def quat_about_x(angle_rad):
    return np.array([math.cos(angle_rad / 2), math.sin(angle_rad / 2), 0.0, 0.0])


def tilt_with_up(z_up):
    """A quaternion whose local +z has world z component ``z_up``."""
    return quat_about_x(math.acos(z_up))


class Episode:
    """A task at a placement, with editable poses, joints and hand positions."""

    def __init__(self, name, index=0):
        self.task = get_task(name)
        self.placement = self.task.placement(index)
        self.poses = {k: v.copy() for k, v in self.placement.poses.items()}
        self.joints = dict(self.placement.joints)
        self.hands = {s: p.copy() for s, p in FAR.items()}
        self.tracker = self.task.tracker(self.placement)

    def pos(self, name):
        return self.poses[name][:3].copy()

    def put(self, name, xyz, quat=None):
        self.poses[name][:3] = xyz
        if quat is not None:
            self.poses[name][3:] = quat

    def hand(self, side, xyz):
        self.hands[side] = np.asarray(xyz, float)

    def state(self):
        return TaskState({k: v.copy() for k, v in self.poses.items()}, dict(self.joints),
                         {s: p + SPREAD for s, p in self.hands.items()})

    def once(self):
        """Flags of the current state alone (nothing latched from earlier steps)."""
        return self.task.evaluate(self.state(), self.placement, {})

    def step(self):
        return self.tracker.update(self.state())


X = np.array([1.0, 0.0, 0.0])
Y = np.array([0.0, 1.0, 0.0])
Z = np.array([0.0, 0.0, 1.0])


# ---------------------------------------------------------------------------------------------- predicates

def test_basic_predicates():
    assert np.allclose(fingertip_mean(np.array([0.2, -0.1, 1.1]) + SPREAD), [0.2, -0.1, 1.1])
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        fingertip_mean(np.zeros((4, 3)))
    assert near([0, 0, 0], [0.0, 0.0, 0.119], 0.12) and not near([0, 0, 0], [0, 0, 0.121], 0.12)
    assert xy_within([0, 0, 5.0], [0.079, 0, 0], 0.08) and not xy_within([0, 0, 0], [0, 0.081, 0], 0.08)
    assert in_box([0.32, -0.1, 9], (0.32, -0.1), (0.64, 0.1))  # inclusive, xy only
    assert not strictly_inside([0.32, 0.0], (0.32, -0.1), (0.64, 0.1))
    assert strictly_inside([0.3201, 0.0], (0.32, -0.1), (0.64, 0.1))
    assert local_z_up((1, 0, 0, 0)) == pytest.approx(1.0)
    assert local_z_up(quat_about_x(math.pi)) == pytest.approx(-1.0)
    assert local_z_up(tilt_with_up(0.3)) == pytest.approx(0.3)


def test_mug_starts_on_its_side_with_the_opening_toward_x():
    from egovla_sim.tasks import quat_rotate

    axis = quat_rotate(get_task("flip_mug").object("mug").quat, Z)
    assert np.allclose(axis, [0.9992, -0.0233, 0.0319], atol=5e-4)


# ---------------------------------------------------------------------------------------------- Push-Box

def test_push_box_reach_is_the_right_hand_within_013():
    ep = Episode("push_box")
    box = ep.pos("box")
    ep.hand("right", box + 0.129 * X)
    assert ep.once().subtasks == {"reach_success": 1.0}
    ep.hand("right", box + 0.131 * X)
    assert ep.once().subtasks == {"reach_success": 0.0}
    ep.hand("right", FAR["right"])
    ep.hand("left", box)
    assert ep.once().subtasks == {"reach_success": 0.0}


def test_push_box_reach_latches_and_success_is_per_step():
    ep = Episode("push_box")
    goal = ep.placement.context["goal"]
    assert not ep.step().success
    ep.hand("right", ep.pos("box"))
    ep.put("box", [goal[0] + 0.079, goal[1], 1.04])  # box z differs from the marker's: xy only
    flags = ep.step()
    assert flags.success and flags.subtasks["reach_success"] == 1.0
    ep.hand("right", FAR["right"])
    ep.put("box", [goal[0], goal[1] + 0.081, 1.04])
    flags = ep.step()
    assert not flags.success and flags.subtasks["reach_success"] == 1.0


# ---------------------------------------------------------------------------------------------- Flip-Mug

def test_flip_mug_success_needs_local_z_above_half_per_step():
    ep = Episode("flip_mug")
    assert not ep.step().success  # starts on its side
    ep.put("mug", ep.pos("mug"), tilt_with_up(0.51))
    assert ep.step().success
    ep.put("mug", ep.pos("mug"), tilt_with_up(0.49))
    assert not ep.step().success


def test_flip_mug_reach_is_the_left_hand_and_latched():
    ep = Episode("flip_mug")
    mug = ep.pos("mug")
    ep.hand("right", mug)
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("left", mug + 0.121 * Z)
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("left", mug + 0.119 * Z)
    assert ep.step().subtasks["reach_success"] == 1.0
    ep.hand("left", FAR["left"])
    assert ep.step().subtasks["reach_success"] == 1.0


# ---------------------------------------------------------------------------------------------- Open-Laptop

def test_open_laptop_thresholds_are_fractions_of_the_upper_limit():
    ep = Episode("open_laptop")  # upper 1.9: move_lid 0.285, success 1.33
    assert ep.joints[LAPTOP_JOINT] == 0.088
    flags = ep.once()
    assert not flags.success and flags.subtasks == {"move_lid_success": 0.0}
    ep.joints[LAPTOP_JOINT] = 0.28
    assert ep.once().subtasks["move_lid_success"] == 0.0
    ep.joints[LAPTOP_JOINT] = 0.29
    assert ep.once().subtasks["move_lid_success"] == 1.0 and not ep.once().success
    ep.joints[LAPTOP_JOINT] = 1.325
    assert not ep.once().success
    ep.joints[LAPTOP_JOINT] = 1.335
    assert ep.once().success


def test_open_laptop_success_is_latched():
    ep = Episode("open_laptop")
    ep.joints[LAPTOP_JOINT] = 1.4
    assert ep.step().success
    ep.joints[LAPTOP_JOINT] = 0.0
    flags = ep.step()
    assert flags.success and flags.subtasks["move_lid_success"] == 1.0


# ---------------------------------------------------------------------------------------------- drawers

def test_open_drawer_success_per_step_and_move_door_latched():
    ep = Episode("open_drawer")  # range 0..0.22, starts closed (0.22); success < 0.022; moved < 0.198
    assert ep.joints == {DRAWER_TOP_JOINT: 0.22, DRAWER_BOTTOM_JOINT: 0.22}
    flags = ep.step()
    assert not flags.success and flags.subtasks["move_door_success"] == 0.0
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.199
    assert ep.once().subtasks["move_door_success"] == 0.0
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.197
    assert ep.once().subtasks["move_door_success"] == 1.0 and not ep.once().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.023
    assert not ep.once().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.021
    assert ep.step().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.22
    flags = ep.step()
    assert not flags.success and flags.subtasks["move_door_success"] == 1.0
    ep.joints[DRAWER_TOP_JOINT] = 0.0  # only the bottom drawer matters
    assert not ep.once().success


def test_close_drawer_success_per_step_and_move_door_latched():
    ep = Episode("close_drawer")  # starts open (0.0); success > 0.9 * 0.22 = 0.198; moved > 0.022
    assert ep.joints == {DRAWER_TOP_JOINT: 0.22, DRAWER_BOTTOM_JOINT: 0.0}
    flags = ep.step()
    assert not flags.success and flags.subtasks["move_door_success"] == 0.0
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.021
    assert ep.once().subtasks["move_door_success"] == 0.0
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.023
    assert ep.once().subtasks["move_door_success"] == 1.0
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.197
    assert not ep.once().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.199
    assert ep.step().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.0
    flags = ep.step()
    assert not flags.success and flags.subtasks["move_door_success"] == 1.0


@pytest.mark.parametrize("name, offset", [("open_drawer", (-0.08, -0.122, -0.05)),
                                          ("close_drawer", (-0.31, 0.3, -0.05))])
@pytest.mark.parametrize("index", [0, 1234])
def test_drawer_reach_is_the_left_hand_at_root_plus_world_offset(name, offset, index):
    ep = Episode(name, index)
    handle = ep.pos("drawer") + np.array(offset)
    ep.hand("left", ep.pos("drawer"))  # the root itself is more than 0.12 from the handle
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("left", handle + 0.121 * Y)
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("right", handle)
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("left", handle + 0.119 * Y)
    assert ep.step().subtasks["reach_success"] == 1.0
    ep.hand("left", FAR["left"])
    assert ep.step().subtasks["reach_success"] == 1.0


# ---------------------------------------------------------------------------------------------- Pour-Balls

def test_bowl_rim_disc_geometry():
    bowl = np.array([0.54, 0.0, 1.025, 1.0, 0.0, 0.0, 0.0])
    center = bowl_rim_center(bowl)
    assert np.allclose(center, [0.54, 0.0, 1.1])
    assert ball_crossed_rim(center + 0.084 * X, bowl)
    assert not ball_crossed_rim(center + 0.086 * X, bowl)
    for elevation_deg, inside in ((9, True), (-9, True), (11, False), (-11, False)):
        e = math.radians(elevation_deg)  # angle to the normal = 90 - elevation
        ball = center + 0.05 * np.array([math.cos(e), 0.0, math.sin(e)])
        assert ball_crossed_rim(ball, bowl) is inside, elevation_deg
    assert not ball_crossed_rim(center, bowl)
    assert not ball_crossed_rim(center + 0.05 * Z, bowl)


def test_bowl_rim_disc_follows_the_bowl_orientation():
    bowl = np.array([0.5, 0.1, 1.0, *quat_about_x(math.pi / 2)])  # local +z -> world -y
    center = bowl_rim_center(bowl)
    assert np.allclose(center, [0.5, 0.1 - 0.075, 1.0])
    assert ball_crossed_rim(center + 0.05 * X, bowl)
    assert ball_crossed_rim(center + 0.05 * Z, bowl)
    assert not ball_crossed_rim(center - 0.05 * Y, bowl)  # along the normal
    assert not ball_crossed_rim(bowl[:3] + 0.075 * Z, bowl)  # the upright bowl's centre is 0.106 away


def test_pour_balls_count_is_latched_and_needs_three():
    ep = Episode("pour_balls", 4321)
    center = bowl_rim_center(ep.poses["bowl"])
    start = {b: ep.pos(b) for b in ("ball1", "ball2", "ball3")}
    ep.put("ball1", center + 0.05 * X)
    ep.put("ball2", center - 0.05 * X)
    flags = ep.step()
    assert not flags.success and flags.extra["balls_poured"] == 2
    for b, p in start.items():
        ep.put(b, p)
    ep.put("ball3", center + 0.05 * Y)  # balls 1 and 2 are back in the bottle but stay counted
    flags = ep.step()
    assert flags.success and flags.extra["balls_poured"] == 3
    ep.put("ball3", start["ball3"])
    assert ep.step().success
    assert not ep.once().success  # a fresh episode with the same state has poured nothing


def test_pour_balls_reach_bottle_right_hand_and_lift_1085():
    ep = Episode("pour_balls")
    bottle = ep.pos("bottle")
    assert ep.once().subtasks == {"reach_bottle_success": 0.0, "lift_success": 0.0}
    ep.hand("left", bottle)
    assert ep.once().subtasks["reach_bottle_success"] == 0.0
    ep.hand("right", bottle + 0.121 * X)
    assert ep.once().subtasks["reach_bottle_success"] == 0.0
    ep.hand("right", bottle + 0.119 * X)
    assert ep.once().subtasks["reach_bottle_success"] == 1.0
    ep.put("bottle", [bottle[0], bottle[1], 1.084])
    assert ep.once().subtasks["lift_success"] == 0.0
    ep.put("bottle", [bottle[0], bottle[1], 1.086])
    assert ep.step().subtasks["lift_success"] == 1.0
    ep.put("bottle", bottle)
    ep.hand("right", FAR["right"])
    assert ep.step().subtasks == {"reach_bottle_success": 0.0, "lift_success": 1.0}


# ---------------------------------------------------------------------------------------------- Stack-Can

def test_stack_can_success_and_place_thresholds():
    ep = Episode("stack_can")
    plate = ep.pos("plate")
    cases = [  # (can offset from the plate, success, place)
        ((0.089, 0.0, 0.019), True, 1.0),
        ((0.091, 0.0, 0.019), False, 0.0),
        ((0.0, 0.05, 0.021), False, 1.0),
        ((0.05, 0.0, -0.019), True, 1.0),
        ((0.05, 0.0, 0.049), False, 1.0),
        ((0.05, 0.0, -0.051), False, 0.0),
    ]
    for offset, success, place in cases:
        ep.put("can", plate + offset)
        flags = ep.once()
        assert (flags.success, flags.subtasks["place_success"]) == (success, place), offset


def test_stack_can_place_latched_success_per_step():
    ep = Episode("stack_can")
    ep.put("can", ep.pos("plate") + [0.02, 0.0, 0.01])
    assert ep.step().success
    ep.put("can", ep.pos("plate") + [0.3, 0.0, 0.0])
    flags = ep.step()
    assert not flags.success and flags.subtasks["place_success"] == 1.0


# ---------------------------------------------------------------------------------------------- Stack-Can-Into-Drawer

def test_stack_can_into_drawer_success_needs_can_on_plate_and_drawer_closed():
    ep = Episode("stack_can_into_drawer")
    assert ep.joints[DRAWER_BOTTOM_JOINT] == 0.0  # starts open
    plate = ep.pos("plate")
    ep.put("can", plate + [0.05, 0.0, 0.01])
    assert not ep.once().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.197
    assert not ep.once().success
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.199
    assert ep.step().success
    ep.put("can", plate + [0.091, 0.0, 0.01])
    assert not ep.step().success
    ep.put("can", plate + [0.0, 0.0, 0.021])
    assert not ep.once().success


def test_stack_can_into_drawer_subtasks():
    ep = Episode("stack_can_into_drawer", 777)
    flags = ep.once()
    assert list(flags.subtasks) == ["reach_drawer_success", "reach_can_success", "lift_success"]
    assert flags.extra == {"move_door_success": 1.0}  # the drawer starts open, below upper - 10 %
    ep.joints[DRAWER_BOTTOM_JOINT] = 0.199
    assert ep.once().extra == {"move_door_success": 0.0}
    handle = ep.pos("drawer") + [-0.08, -0.122, -0.05]
    can = ep.pos("can")
    ep.hand("left", handle + 0.121 * Z)
    ep.hand("right", can + 0.121 * Z)
    assert ep.once().subtasks == {"reach_drawer_success": 0.0, "reach_can_success": 0.0, "lift_success": 0.0}
    ep.hand("left", handle + 0.119 * Z)
    ep.hand("right", can + 0.119 * Z)
    assert ep.once().subtasks == {"reach_drawer_success": 1.0, "reach_can_success": 1.0, "lift_success": 0.0}
    ep.hand("left", can)  # wrong hand for the can
    ep.hand("right", FAR["right"])
    assert ep.once().subtasks["reach_can_success"] == 0.0
    ep.put("can", [can[0], can[1], 1.079])
    assert ep.once().subtasks["lift_success"] == 0.0
    ep.put("can", [can[0], can[1], 1.081])
    assert ep.step().subtasks["lift_success"] == 1.0
    ep.put("can", can)
    assert ep.step().subtasks["lift_success"] == 1.0
    assert ep.tracker.progress() == pytest.approx(1 / 4)  # move_door does not count


# ---------------------------------------------------------------------------------------------- Insert-Cans

def test_can_inserted_bounds_are_inclusive_with_z_at_most_1065():
    assert can_inserted([0.32, -0.1, 1.065])
    assert can_inserted([0.64, 0.1, 1.0])
    assert not can_inserted([0.3199, 0.0, 1.0])
    assert not can_inserted([0.5, 0.1001, 1.0])
    assert not can_inserted([0.5, 0.0, 1.0651])


def test_insert_cans_success_and_count_are_per_step():
    ep = Episode("insert_cans")
    assert ep.step().subtasks["insert_success"] == 0.0
    ep.put("can_fanta_1", [0.45, -0.05, 1.04])
    flags = ep.step()
    assert not flags.success and flags.subtasks["insert_success"] == 1.0
    ep.put("can_fanta_2", [0.55, 0.05, 1.065])
    flags = ep.step()
    assert flags.success and flags.subtasks["insert_success"] == 2.0
    ep.put("can_fanta_2", [0.55, 0.05, 1.066])
    flags = ep.step()
    assert not flags.success and flags.subtasks["insert_success"] == 1.0


@pytest.mark.parametrize("name", ["insert_cans", "insert_and_unload_cans", "unload_cans"])
def test_two_can_reach_counts_each_can_with_its_own_hand(name):
    ep = Episode(name, 2468)
    c1, c2 = ep.pos("can_fanta_1"), ep.pos("can_fanta_2")
    apart = (c2 - c1) / np.linalg.norm(c2 - c1)  # Unload-Cans' cans are only 0.09 apart
    ep.hand("right", c2 + 0.1 * apart)  # each hand near the other hand's can only
    ep.hand("left", c1 - 0.1 * apart)
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("right", c1 + 0.121 * X)
    ep.hand("left", c2 + 0.121 * X)
    assert ep.once().subtasks["reach_success"] == 0.0
    ep.hand("right", c1 + 0.119 * X)
    assert ep.step().subtasks["reach_success"] == 1.0
    ep.hand("right", FAR["right"])
    ep.hand("left", c2 + 0.119 * X)
    assert ep.step().subtasks["reach_success"] == 2.0  # the right hand's flag stayed latched
    ep.hand("left", FAR["left"])
    assert ep.step().subtasks["reach_success"] == 2.0


@pytest.mark.parametrize("name, lift_z", [("insert_cans", 1.08), ("insert_and_unload_cans", 1.08),
                                          ("unload_cans", 1.14)])
def test_two_can_lift_counts_are_latched(name, lift_z):
    ep = Episode(name)
    c1, c2 = ep.pos("can_fanta_1"), ep.pos("can_fanta_2")
    ep.put("can_fanta_1", [c1[0], c1[1], lift_z - 0.001])
    assert ep.once().subtasks["lift_success"] == 0.0
    ep.put("can_fanta_1", [c1[0], c1[1], lift_z + 0.001])
    assert ep.step().subtasks["lift_success"] == 1.0
    ep.put("can_fanta_1", c1)
    ep.put("can_fanta_2", [c2[0], c2[1], lift_z + 0.001])
    assert ep.step().subtasks["lift_success"] == 2.0
    ep.put("can_fanta_2", c2)
    assert ep.step().subtasks["lift_success"] == 2.0


# ---------------------------------------------------------------------------------------------- Unload-Cans

def test_unload_cans_box_moves_with_the_episode_offset():
    ep = Episode("unload_cans", 0)  # offset (+0.05, +0.1): box x 0.37..0.69, y 0.0..0.2
    ctx = ep.placement.context
    assert np.allclose(ctx["box_offset"], [0.05, 0.1])
    assert np.allclose(ctx["box_lower"], [0.37, 0.0]) and np.allclose(ctx["box_upper"], [0.69, 0.2])
    flags = ep.step()
    assert not flags.success and flags.subtasks["unload_success"] == 0.0
    for can in ("can_fanta_1", "can_fanta_2"):  # outside the unshifted box, inside the shifted one
        ep.put(can, [0.66, 0.15, 1.04])
    flags = ep.once()
    assert not flags.success and flags.subtasks["unload_success"] == 0.0
    for can in ("can_fanta_1", "can_fanta_2"):
        ep.put(can, [0.691, 0.15, 1.04])
    flags = ep.step()
    assert flags.success and flags.subtasks["unload_success"] == 2.0
    ep.put("can_fanta_2", [0.689, 0.15, 1.04])
    flags = ep.step()  # per-step
    assert not flags.success and flags.subtasks["unload_success"] == 1.0
    ep.put("can_fanta_2", [ctx["box_lower"][0], 0.15, 1.04])  # on the face: not strictly inside
    assert ep.once().success


def test_unload_count_needs_upright_and_height_but_success_does_not():
    ep = Episode("unload_cans", 9999)  # offset (-0.05, -0.1)
    ep.put("can_fanta_1", [0.2, -0.3, 1.0])
    ep.put("can_fanta_2", [0.2, 0.3, 1.0])
    assert ep.once().subtasks["unload_success"] == 2.0  # z >= 1 inclusive
    ep.put("can_fanta_1", [0.2, -0.3, 0.99])
    flags = ep.once()
    assert flags.success and flags.subtasks["unload_success"] == 1.0
    ep.put("can_fanta_1", [0.2, -0.3, 1.02], tilt_with_up(0.49))
    flags = ep.once()
    assert flags.success and flags.subtasks["unload_success"] == 1.0
    ep.put("can_fanta_1", [0.2, -0.3, 1.02], tilt_with_up(0.51))
    assert ep.once().subtasks["unload_success"] == 2.0


# ---------------------------------------------------------------------------------------------- Sort-Cans

SORTED = {"can_fanta_1": [0.55, -0.05, 1.05], "can_fanta_2": [0.65, -0.1, 1.05],
          "can_sprite_1": [0.55, 0.05, 1.05], "can_sprite_2": [0.65, 0.1, 1.05]}


def test_sort_cans_boxes_and_count():
    ep = Episode("sort_cans")
    assert ep.once().subtasks["sort_success"] == 0.0
    for can, p in SORTED.items():
        ep.put(can, p)
    flags = ep.step()
    assert flags.success and flags.subtasks["sort_success"] == 4.0
    ep.put("can_fanta_1", [0.47, -0.16, 1.02])  # min corner, inclusive
    ep.put("can_sprite_1", [0.72, 0.1592, 1.15])  # max corner, inclusive
    assert ep.once().success
    for can, p in (("can_fanta_1", [0.469, -0.16, 1.02]), ("can_fanta_1", [0.6, -0.014, 1.05]),
                   ("can_fanta_1", [0.6, -0.1, 1.151]), ("can_sprite_1", [0.6, 0.006, 1.05]),
                   ("can_sprite_1", [0.6, 0.1593, 1.05]), ("can_fanta_1", SORTED["can_sprite_1"])):
        ep.put(can, p)
        flags = ep.once()
        assert not flags.success and flags.subtasks["sort_success"] == 3.0, (can, p)
        ep.put(can, SORTED[can])
    ep.put("can_fanta_2", [0.4, 0.4, 1.02])
    flags = ep.step()  # per-step
    assert not flags.success and flags.subtasks["sort_success"] == 3.0


def test_sort_cans_reach_and_lift_over_four_cans():
    ep = Episode("sort_cans", 5555)
    pos = {c: ep.pos(c) for c in SORTED}
    ep.hand("right", pos["can_sprite_2"])
    ep.hand("left", pos["can_fanta_1"])
    assert ep.once().subtasks["reach_success"] == 0.0
    for side, cans in (("right", ("can_sprite_1", "can_fanta_1")), ("left", ("can_sprite_2", "can_fanta_2"))):
        for can in cans:
            ep.hand(side, pos[can] + 0.119 * Z)
            ep.step()
        ep.hand(side, FAR[side])
    assert ep.step().subtasks["reach_success"] == 4.0
    ep.hand("right", pos["can_fanta_1"] + 0.121 * Z)
    assert ep.once().subtasks["reach_success"] == 0.0
    for can in SORTED:
        ep.put(can, [pos[can][0], pos[can][1], 1.081])
    assert ep.step().subtasks["lift_success"] == 4.0
    ep.put("can_fanta_2", [0.5, 0.3, 1.079])
    assert ep.once().subtasks["lift_success"] == 3.0
    assert ep.step().subtasks["lift_success"] == 4.0


# ---------------------------------------------------------------------------------------------- Insert-And-Unload

def test_insert_and_unload_sequence():
    ep = Episode("insert_and_unload_cans")
    out1, out2 = [0.3, -0.3, 1.02], [0.3, 0.3, 1.02]
    f = ep.step()
    assert (f.success, f.subtasks["insert_success"], f.subtasks["unload_success"]) == (False, 0.0, 0.0)
    ep.put("can_fanta_1", [0.45, -0.05, 1.04])
    f = ep.step()
    assert (f.subtasks["insert_success"], f.subtasks["unload_success"]) == (1.0, 0.0)
    ep.put("can_fanta_1", [0.64, -0.05, 1.04])  # still on the box edge (inclusive)
    assert ep.step().subtasks["unload_success"] == 0.0
    ep.put("can_fanta_1", [0.6401, -0.05, 1.04])
    f = ep.step()
    assert (f.success, f.subtasks["insert_success"], f.subtasks["unload_success"]) == (False, 1.0, 1.0)
    ep.put("can_fanta_1", out1)
    ep.put("can_fanta_2", [0.45, 0.05, 1.065])
    f = ep.step()
    assert (f.subtasks["insert_success"], f.subtasks["unload_success"]) == (2.0, 1.0)
    ep.put("can_fanta_2", out2)
    f = ep.step()
    assert (f.success, f.subtasks["insert_success"], f.subtasks["unload_success"]) == (True, 2.0, 2.0)
    ep.put("can_fanta_2", [0.45, 0.05, 1.2])  # back over the tray: unload is per-step
    f = ep.step()
    assert (f.success, f.subtasks["insert_success"], f.subtasks["unload_success"]) == (False, 2.0, 1.0)


def test_insert_and_unload_needs_a_real_insertion():
    ep = Episode("insert_and_unload_cans")
    ep.put("can_fanta_1", [0.45, -0.05, 1.066])  # over the tray but too high
    assert ep.step().subtasks["insert_success"] == 0.0
    ep.put("can_fanta_1", [0.3, -0.3, 1.02])
    ep.put("can_fanta_2", [0.3, 0.3, 1.02])
    f = ep.step()
    assert not f.success and f.subtasks["unload_success"] == 0.0


# ---------------------------------------------------------------------------------------------- flags and PSR

def test_every_task_reports_its_subtask_names_in_order():
    for name, task in TASKS.items():
        ep = Episode(name)
        flags = ep.step()
        assert isinstance(flags, StepFlags)
        assert tuple(flags.subtasks) == task.subtask_names, name
        assert list(flags.report()) == ["success", *task.subtask_names]
        assert not flags.success, f"{name} must not succeed at its nominal start"


def test_psr_rule_by_hand():
    assert psr(False, {"reach_success": 1.0, "lift_success": 0.0}) == pytest.approx(1 / 3)
    assert psr(False, {"reach_success": 2.0, "lift_success": 1.0, "insert_success": 0.0}) == pytest.approx(2 / 4)
    assert psr(False, {"reach_success": 0.0}) == 0.0
    assert psr(True, {"reach_success": 0.0, "lift_success": 0.0}) == 1.0
    assert psr(False, {}) == 0.0


def test_tracker_progress():
    ep = Episode("push_box")
    assert ep.tracker.progress() == 0.0 and ep.tracker.last is None
    ep.step()
    assert ep.tracker.progress() == 0.0
    ep.hand("right", ep.pos("box"))
    ep.step()
    assert ep.tracker.progress() == pytest.approx(1 / 2)
    goal = ep.placement.context["goal"]
    ep.put("box", [goal[0], goal[1], 1.04])
    ep.step()
    assert ep.tracker.progress() == 1.0
    ep.put("box", [goal[0] + 0.2, goal[1], 1.04])
    assert not ep.step().success
    assert ep.tracker.progress() == 1.0 and ep.tracker.succeeded  # the episode did succeed
    assert ep.tracker.last.subtasks == {"reach_success": 1.0}


def test_insert_cans_progress_counts_values_above_zero():
    ep = Episode("insert_cans")
    ep.hand("right", ep.pos("can_fanta_1"))
    ep.hand("left", ep.pos("can_fanta_2"))
    ep.step()
    assert ep.tracker.last.subtasks["reach_success"] == 2.0
    assert ep.tracker.progress() == pytest.approx(1 / 4)  # success 0, reach 2, lift 0, insert 0


def test_missing_state_is_a_clear_error():
    ep = Episode("stack_can")
    del ep.poses["plate"]
    with pytest.raises(ValueError, match="plate"):
        ep.once()
    ep = Episode("flip_mug")
    state = ep.state()
    del state.fingertips["left"]
    with pytest.raises(ValueError, match="left"):
        ep.tracker.update(state)
    ep = Episode("open_drawer")
    del ep.joints[DRAWER_BOTTOM_JOINT]
    with pytest.raises(ValueError, match="bottom_joint"):
        ep.once()


# ---------------------------------------------------------------------------------------------- placements

def xy(placement, name):
    return placement.poses[name][:2]


def test_push_box_grid_and_goal_grid():
    t = get_task("push_box")
    p = t.placement(0)
    assert np.allclose(xy(p, "box"), [0.6, -0.2]) and np.allclose(p.context["goal"], [0.47, -0.1, 1.021])
    p = t.placement(9999)
    assert np.allclose(xy(p, "box"), [0.4, -0.4]) and np.allclose(p.context["goal"], [0.53, 0.1, 1.021])
    p = t.placement(1234)  # box: column 12, row 34; goal: 8765 -> column 87, row 65 (row drives x)
    assert np.allclose(xy(p, "box"), [0.5 + 0.0757576, -0.3 + 0.0313131], atol=1e-6)
    assert np.allclose(p.context["goal"], [0.5 - 0.0093939, -0.0757576, 1.021], atol=1e-6)
    assert p.poses["box"][2] == 1.04 and p.index == 1234


@pytest.mark.parametrize("name, obj, at0, at9999", [
    ("flip_mug", "mug", (0.55, 0.1), (0.35, -0.1)),
    ("open_laptop", "laptop", (0.7, 0.1), (0.5, -0.1)),
    ("open_drawer", "drawer", (0.65, 0.1), (0.55, -0.1)),
    ("close_drawer", "drawer", (0.65, 0.1), (0.55, -0.1)),
    ("pour_balls", "bowl", (0.64, 0.1), (0.44, -0.1)),
])
def test_single_object_grid_extremes(name, obj, at0, at9999):
    t = get_task(name)
    assert np.allclose(xy(t.placement(0), obj), at0)
    assert np.allclose(xy(t.placement(9999), obj), at9999)
    nominal = t.object(obj).pose
    p = t.placement(5000)  # column 50, row 0
    half_x = 0.05 if "drawer" in name else 0.1
    assert np.allclose(xy(p, obj), nominal[:2] + [half_x - 2 * half_x * 50 / 99, 0.1])
    assert np.array_equal(p.poses[obj][2:], nominal[2:])


def test_pour_balls_only_moves_the_bowl():
    t = get_task("pour_balls")
    p = t.placement(0)
    assert np.allclose(p.poses["ball1"], [0.46, -0.31, 1.1, 1, 0, 0, 0])
    assert np.allclose(p.poses["ball8"], [0.44, -0.29, 1.07, 1, 0, 0, 0])
    assert np.allclose(p.poses["bottle"][:3], [0.45, -0.3, 1.025])
    assert sorted(p.poses) == sorted(["bottle", "bowl", *(f"ball{i}" for i in range(1, 9))])


def test_stack_can_grids():
    p = get_task("stack_can").placement(0)
    assert np.allclose(xy(p, "plate"), [0.55, 0.1]) and np.allclose(xy(p, "can"), [0.55, -0.15])
    p = get_task("stack_can_into_drawer").placement(0)  # drawer and plate x fixed, can x +-0.05
    assert np.allclose(xy(p, "drawer"), [0.53, 0.1]) and np.allclose(p.poses["plate"][:3], [0.65, 0.1, 1.17])
    assert np.allclose(xy(p, "can"), [0.43, 0.1]) and p.poses["drawer"][2] == 1.4017
    p = get_task("stack_can_into_drawer").placement(9999)
    assert np.allclose(xy(p, "drawer"), [0.53, -0.1]) and np.allclose(xy(p, "can"), [0.33, -0.1])


@pytest.mark.parametrize("name", ["insert_cans", "insert_and_unload_cans"])
def test_two_can_grid(name):
    t = get_task(name)
    p = t.placement(0)
    assert np.allclose(xy(p, "can_fanta_1"), [0.43, -0.24]) and np.allclose(xy(p, "can_fanta_2"), [0.43, 0.36])
    p = t.placement(9999)
    assert np.allclose(xy(p, "can_fanta_1"), [0.31, -0.36]) and np.allclose(xy(p, "can_fanta_2"), [0.31, 0.24])
    # 3752: left 37 -> column 3, row 7 -> (+0.02, -0.033333); right 52 -> column 5, row 2 -> (-0.006667, +0.033333)
    p = t.placement(3752)
    assert np.allclose(xy(p, "can_fanta_1"), [0.3633333, -0.2666667], atol=1e-6)
    assert np.allclose(xy(p, "can_fanta_2"), [0.39, 0.2666667], atol=1e-6)
    assert np.allclose(p.poses["container"][:3], [0.48, 0.0, 1.06])


def test_sort_cans_grid_pairs_cans_by_hand():
    p = get_task("sort_cans").placement(3752)
    assert np.allclose(xy(p, "can_sprite_1"), [0.4133333, -0.2966667], atol=1e-6)
    assert np.allclose(xy(p, "can_fanta_1"), [0.5133333, -0.2966667], atol=1e-6)
    assert np.allclose(xy(p, "can_sprite_2"), [0.44, 0.2966667], atol=1e-6)
    assert np.allclose(xy(p, "can_fanta_2"), [0.54, 0.2966667], atol=1e-6)
    assert np.allclose(p.poses["container_1"][:3], [0.6, 0.085, 1.1])


def test_unload_cans_grid_moves_cans_and_container_together():
    t = get_task("unload_cans")
    p = t.placement(0)
    assert np.allclose(xy(p, "can_fanta_1"), [0.43, 0.055]) and np.allclose(xy(p, "can_fanta_2"), [0.43, 0.145])
    assert np.allclose(xy(p, "container"), [0.53, 0.1])
    p = t.placement(9999)
    assert np.allclose(p.context["box_offset"], [-0.05, -0.1]) and np.allclose(xy(p, "container"), [0.43, -0.1])
    assert np.allclose(p.context["box_lower"], [0.27, -0.2]) and np.allclose(p.context["box_upper"], [0.59, 0.0])


def test_every_task_places_every_object_and_its_joints():
    joints = {"open_drawer": {DRAWER_TOP_JOINT, DRAWER_BOTTOM_JOINT},
              "close_drawer": {DRAWER_TOP_JOINT, DRAWER_BOTTOM_JOINT},
              "stack_can_into_drawer": {DRAWER_TOP_JOINT, DRAWER_BOTTOM_JOINT}, "open_laptop": {LAPTOP_JOINT}}
    rng = np.random.default_rng(1)
    for name, task in TASKS.items():
        for index in (0, 9999, None):
            p = task.placement(index, rng)
            assert isinstance(p, Placement) and p.index == index
            assert set(p.poses) == set(task.object_names), name
            for obj in task.objects:
                pose = p.poses[obj.name]
                assert pose.shape == (7,) and np.all(np.isfinite(pose))
                assert np.array_equal(pose[2:], obj.pose[2:])  # only xy is randomised
            assert set(p.joints) == joints.get(name, set()), name


# (half x, half y) of the random offsets per object; objects not listed never move
RANDOM_RANGES = {
    "push_box": {"box": (0.1, 0.1)},
    "flip_mug": {"mug": (0.1, 0.1)},
    "pour_balls": {"bowl": (0.1, 0.1)},
    "close_drawer": {"drawer": (0.1, 0.1)},
    "open_drawer": {"drawer": (0.1, 0.1)},
    "open_laptop": {"laptop": (0.1, 0.1)},
    "stack_can": {"can": (0.1, 0.1), "plate": (0.1, 0.1)},
    "sort_cans": {c: (0.06, 0.06) for c in ("can_sprite_1", "can_sprite_2", "can_fanta_1", "can_fanta_2")},
    "insert_cans": {"can_fanta_1": (0.06, 0.06), "can_fanta_2": (0.06, 0.06)},
    "unload_cans": {"can_fanta_1": (0.1, 0.1), "can_fanta_2": (0.1, 0.1), "container": (0.1, 0.1)},
    "insert_and_unload_cans": {"can_fanta_1": (0.06, 0.06), "can_fanta_2": (0.06, 0.06)},
    "stack_can_into_drawer": {"can": (0.05, 0.05), "plate": (0.05, 0.05), "drawer": (0.05, 0.05)},
}


@pytest.mark.parametrize("name", list(TASKS))
def test_random_placements_stay_in_range_and_cover_it(name):
    task = get_task(name)
    rng = np.random.default_rng(123)
    draws = [task.placement(rng=rng) for _ in range(200)]
    ranges = RANDOM_RANGES[name]
    for obj in task.objects:
        d = np.array([p.poses[obj.name][:2] - obj.pose[:2] for p in draws])
        half = np.array(ranges.get(obj.name, (0.0, 0.0)))
        assert np.all(np.abs(d) <= half + 1e-12), obj.name
        assert np.all(np.abs(d).max(axis=0) >= 0.8 * half), obj.name  # the draws do spread over the range
    if name == "push_box":
        g = np.array([p.context["goal"] - [0.5, 0.0, 1.021] for p in draws])
        assert np.all(np.abs(g) <= [0.03, 0.1, 0.0]) and np.all(np.abs(g[:, :2]).max(axis=0) >= [0.024, 0.08])
    if name == "stack_can_into_drawer":  # drawer and can share a draw, the plate has its own
        for p in draws:
            assert np.allclose(p.poses["can"][:2] - [0.38, 0.0], p.poses["drawer"][:2] - [0.53, 0.0])
        assert not np.allclose(draws[0].poses["plate"][:2] - [0.65, 0.0], draws[0].poses["can"][:2] - [0.38, 0.0])
    if name == "unload_cans":
        for p in draws:
            off = p.context["box_offset"]
            assert np.allclose(p.poses["container"][:2], [0.48 + off[0], off[1]])
            assert np.allclose(p.context["box_lower"], [0.32 + off[0], -0.1 + off[1]])


def test_random_placements_follow_the_generator():
    t = get_task("sort_cans")
    a, b = t.placement(rng=np.random.default_rng(7)), t.placement(rng=np.random.default_rng(7))
    c = t.placement(rng=np.random.default_rng(8))
    assert all(np.array_equal(a.poses[k], b.poses[k]) for k in a.poses)
    assert not np.array_equal(a.poses["can_fanta_1"], c.poses["can_fanta_1"])
    assert a.index is None


@pytest.mark.parametrize("bad", [-1, 10000, 2.5, True, "3"])
def test_invalid_placement_index(bad):
    with pytest.raises(ValueError, match="placement index"):
        get_task("push_box").placement(bad)


def test_numpy_integer_index_is_accepted():
    p = get_task("flip_mug").placement(np.int64(0))
    assert p.index == 0 and np.allclose(xy(p, "mug"), [0.55, 0.1])


# ---------------------------------------------------------------------------------------------- protocol

SEEDS = {"pour_balls": 0, "sort_cans": 1, "insert_cans": 2, "unload_cans": 3, "insert_and_unload_cans": 4,
         "push_box": 5, "open_drawer": 6, "close_drawer": 7, "open_laptop": 8, "flip_mug": 9, "stack_can": 10,
         "stack_can_into_drawer": 11}


def authors_sequence(seed):
    saved = random.getstate()
    try:
        random.seed(seed)
        idx = list(range(10000))
        random.shuffle(idx)
    finally:
        random.setstate(saved)
    return idx


def test_configs():
    assert SEEN_CONFIGS == ((1, 1), (2, 1), (3, 1))
    assert len(UNSEEN_CONFIGS) == 22 and not set(UNSEEN_CONFIGS) & set(SEEN_CONFIGS)
    assert UNSEEN_CONFIGS[:5] == ((1, 2), (1, 3), (1, 4), (1, 5), (2, 2)) and UNSEEN_CONFIGS[-1] == (5, 5)
    assert UNSEEN_CONFIGS == tuple(sorted(UNSEEN_CONFIGS))


@pytest.mark.parametrize("name", list(TASKS))
def test_protocol_rollouts_match_the_authors_indices(name):
    task = get_task(name)
    assert task.seed == SEEDS[name]
    seq = authors_sequence(SEEDS[name])
    assert placement_sequence(name) == seq
    seen, unseen = protocol_rollouts(name, "seen"), protocol_rollouts(task.gym_id, "unseen")
    assert len(seen) == 27 and len(unseen) == 66
    expected = [seq[101 + (room * 5 + table) * 9 + r] for room, table in SEEN_CONFIGS for r in range(9)]
    assert [r.placement_index for r in seen] == expected
    expected = [seq[101 + (room * 5 + table) * 3 + r] for room, table in UNSEEN_CONFIGS for r in range(3)]
    assert [r.placement_index for r in unseen] == expected
    training = set(seq[:100])
    assert not training & {r.placement_index for r in seen + unseen}
    assert {r.task for r in seen} == {name}


def test_protocol_order_is_episode_major_then_trial():
    seen = protocol_rollouts("stack_can", "seen")
    assert [(r.room, r.table, r.episode, r.trial) for r in seen[:4]] == [(1, 1, 0, 0), (1, 1, 0, 1), (1, 1, 0, 2),
                                                                          (1, 1, 1, 0)]
    assert (seen[9].room, seen[9].table) == (2, 1)
    seq = authors_sequence(10)
    assert seen[0].placement_index == seq[155] and seen[-1].placement_index == seq[101 + 16 * 9 + 8]
    unseen = protocol_rollouts("stack_can", "unseen")
    assert [(r.episode, r.trial) for r in unseen[:3]] == [(0, 0), (1, 0), (2, 0)]
    assert len(protocol_rollouts("stack_can", "seen", episodes=2, trials=2)) == 12


def test_protocol_bad_arguments():
    with pytest.raises(ValueError, match="seen"):
        protocol_rollouts("push_box", "test")
    with pytest.raises(ValueError, match="episodes"):
        protocol_rollouts("push_box", "seen", episodes=0)
    with pytest.raises(ValueError, match="trials"):
        protocol_rollouts("push_box", "seen", trials=0)


def test_sequences_differ_between_tasks():
    firsts = {tuple(placement_sequence(n)[:10]) for n in TASKS}
    assert len(firsts) == 12
    assert sorted(placement_sequence("push_box")) == list(range(10000))


# ---------------------------------------------------------------------------------------------- names and table

def test_get_task_accepts_all_name_forms():
    for name, task in TASKS.items():
        assert get_task(name) is task and get_task(task.title) is task and get_task(task.gym_id) is task
    assert get_task("Humanoid-Stack-Can-Into-Drawer-v0").name == "stack_can_into_drawer"
    with pytest.raises(ValueError, match="push_box.*stack_can_into_drawer"):
        get_task("stack_cans")


def test_task_table():
    assert list(TASKS) == ["push_box", "flip_mug", "pour_balls", "close_drawer", "open_drawer", "open_laptop",
                           "stack_can", "sort_cans", "insert_cans", "unload_cans", "insert_and_unload_cans",
                           "stack_can_into_drawer"]
    horizons = {"push_box": 400, "open_drawer": 400, "close_drawer": 400, "flip_mug": 400, "pour_balls": 400,
                "stack_can": 300, "open_laptop": 300, "stack_can_into_drawer": 400, "unload_cans": 500,
                "insert_cans": 500, "sort_cans": 900, "insert_and_unload_cans": 900}
    fine = {"flip_mug", "open_drawer", "close_drawer", "stack_can_into_drawer"}
    for name, task in TASKS.items():
        assert task.horizon == horizons[name]
        assert task.physics_dt * task.decimation == pytest.approx(1 / 30, rel=1e-12)
        assert (task.physics_dt, task.decimation) == ((1 / 240, 8) if name in fine else (1 / 120, 4))
        assert task.gym_id == f"Humanoid-{task.title}-v0"
        assert task.robot_init["left_shoulder_pitch_joint"] == 0.5
        assert task.robot_init["right_elbow_pitch_joint"] == -1.0
    long = {"insert_and_unload_cans", "stack_can_into_drawer", "sort_cans", "unload_cans", "insert_cans"}
    assert {n for n, t in TASKS.items() if t.group == "long"} == long
    yaw = TASKS["stack_can_into_drawer"].robot_init
    assert yaw["left_shoulder_yaw_joint"] == 1.5 and yaw["right_shoulder_yaw_joint"] == 1.5
    assert "left_shoulder_yaw_joint" not in TASKS["stack_can"].robot_init
    assert TASKS["push_box"].instruction == "push box to the marker"
    assert TASKS["sort_cans"].instruction == "Put sprite cans to the left box, and orange cans to the right box"
    assert TASKS["stack_can_into_drawer"].instruction == "Open the drawer, and Put can on the saucer"
    assert TASKS["insert_and_unload_cans"].instruction.startswith("Insert the left can into the slot and insert")


def test_object_facts():
    assert get_task("stack_can").object("plate").movable is False
    assert get_task("sort_cans").object("container_1").movable is False
    assert get_task("open_drawer").object("drawer").quat == (0.0, 0.0, 0.0, 1.0)
    assert get_task("open_drawer").object("drawer").scale == (0.75, 0.75, 0.6)
    assert get_task("pour_balls").object("ball3").mass == 0.001
    assert get_task("pour_balls").object("bottle").mass is None
    assert get_task("flip_mug").object("mug").scale == (1.7, 1.7, 1.0)
    assert get_task("insert_cans").object("can_fanta_2").mass == 0.35


# ---------------------------------------------------------------------------------------------- summary

def test_summarize():
    records = [
        {"task": "push_box", "success": True, "progress": 1.0},
        {"task": "Push-Box", "success": False, "progress": 0.5},
        {"task": "Humanoid-Insert-Cans-v0", "success": False, "progress": 0.25},
    ]
    s = summarize(records)
    assert s["tasks"]["push_box"] == {"rollouts": 2, "sr": 50.0, "psr": 75.0}
    assert s["tasks"]["insert_cans"] == {"rollouts": 1, "sr": 0.0, "psr": 25.0}
    assert s["short"] == {"tasks": 1, "rollouts": 2, "sr": 50.0, "psr": 75.0}
    assert s["long"] == {"tasks": 1, "rollouts": 1, "sr": 0.0, "psr": 25.0}
    assert s["overall"] == {"tasks": 2, "rollouts": 3, "sr": 25.0, "psr": 50.0}
    assert summarize(records[:1])["long"] is None
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError, match="progress"):
        summarize([{"task": "push_box", "success": False, "progress": 1.5}])
    with pytest.raises(ValueError, match="lacks"):
        summarize([{"task": "push_box", "success": False}])
