"""The 12 tasks of the EgoVLA humanoid benchmark, independent of any simulator.

Every simulator backend (the MuJoCo twin, the Isaac Lab bridge) and the evaluator read the tasks from here, so
the layouts, the randomisation and the success rules exist exactly once. A task is declarative data
(``TaskSpec``: objects with nominal poses, instruction, horizon, physics step, robot start posture) plus two
rules: how a placement index becomes initial poses (``TaskSpec.placement``), and how poses and joint positions
become the benchmark's flags (``TaskSpec.tracker`` -> ``TaskTracker.update``). The flags are computed by pure
module-level predicates (``near``, ``in_box``, ``local_z_up``, ``ball_crossed_rim`` ...); the only state is the
set of latched flags, which the tracker holds for one episode.

Conventions: metres and radians, world frame with the env origin at 0, z up, the robot at the origin facing +x,
+y the robot's left. Quaternions are (w, x, y, z); a pose is a (7,) array, position then quaternion.

The benchmark's rules are kept as they are, odd details included, because the published numbers were measured
with them:

- Some flags are latched (set once, kept until reset), others are recomputed every step; each predicate says
  which. Open-Laptop's success is latched; Pour-Balls latches each ball, and success (>= 3 balls) follows.
- Reach tests compare the mean of a hand's five fingertips with an object's root position (for drawers the
  root plus a handle offset added in world axes, different per task).
- Drawer and laptop joint limits live in the benchmark's USD files, which are not public. The fractions of the
  range the rules use are applied to our twin's ranges, ``DRAWER_JOINT_RANGE`` and ``LAPTOP_JOINT_RANGE``.
  As in the benchmark, a drawer joint at its upper limit is closed and at its lower limit fully open.
- Stack-Can-Into-Drawer computes ``move_door_success`` but the benchmark never reports it, so it is returned
  in ``StepFlags.extra`` and does not count towards progress. The drawer starts open there, so the flag is set
  from the first step.
- Instructions are the evaluation prompts, typos included ("andd"): the released model was trained on them.

Evaluation protocol: each task has a fixed shuffle of the 10,000 placement indices (``placement_sequence``);
training used its first 100 entries and evaluation rollouts take later entries determined by the visual
configuration (room, table), so a test placement is never a training one (``protocol_rollouts``). Success rate
(SR) is the fraction of rollouts that succeed; progress (PSR) is the fraction of reported flags above zero, or
1 when the task succeeded (``psr``, ``summarize``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

# --------------------------------------------------------------------------------------------------------------
# Scene constants
# --------------------------------------------------------------------------------------------------------------

CONTROL_HZ = 30
TABLE_TOP_Z = 1.02  # m, approximate (the table mesh is not public)

DRAWER_TOP_JOINT = "drawer/top_joint"
DRAWER_BOTTOM_JOINT = "drawer/bottom_joint"
DRAWER_JOINTS = (DRAWER_TOP_JOINT, DRAWER_BOTTOM_JOINT)
DRAWER_JOINT_RANGE = (0.0, 0.22)  # m, our twin's prismatic range: lower = fully open, upper = closed
LAPTOP_JOINT = "laptop/hinge"
LAPTOP_JOINT_RANGE = (0.0, 1.9)  # rad, our twin's lid hinge range
LAPTOP_INITIAL_RAD = 0.088

DRAWER_ROOT_Z = 1.4017  # drawer root height at reset (the benchmark's reset position, not its cfg position)
DRAWER_QUAT = (0.0, 0.0, 0.0, 1.0)  # 180 deg about +z
DRAWER_SCALE = (0.75, 0.75, 0.6)

SIDES = ("left", "right")
FINGERTIPS = ("thumb", "index", "middle", "ring", "pinky")
ROBOT_INIT = {
    "left_shoulder_pitch_joint": 0.5,
    "right_shoulder_pitch_joint": 0.5,
    "left_elbow_pitch_joint": -1.0,
    "right_elbow_pitch_joint": -1.0,
}  # every other joint starts at 0

ASSETS = ("cracker_box", "can_fanta", "can_sprite", "mug", "glassware", "bowl", "plate", "plate_inlay", "drawer",
          "laptop", "container_2x3", "container_plastic", "ball")

# --------------------------------------------------------------------------------------------------------------
# Thresholds (all strict unless the name says "max"/"min" or the predicate says inclusive)
# --------------------------------------------------------------------------------------------------------------

REACH_RADIUS_M = 0.12
PUSH_BOX_REACH_RADIUS_M = 0.13
PUSH_BOX_GOAL_RADIUS_M = 0.08
PUSH_BOX_GOAL_DEFAULT = (0.5, 0.0, 1.021)

CAN_LIFT_Z_M = 1.08
BOTTLE_LIFT_Z_M = 1.085
UNLOAD_LIFT_Z_M = 1.14

PLATE_RADIUS_M = 0.09
STACK_SUCCESS_DZ_M = 0.02
STACK_PLACE_DZ_M = 0.05

MUG_UPRIGHT_MIN = 0.5  # world z of the mug's local +z, strictly above
UNLOAD_UPRIGHT_MIN = 0.5  # world z of a can's local +z, at least
UNLOAD_MIN_Z_M = 1.0

CONTAINER_XY_LOWER = (0.32, -0.1)  # the 2x3 can tray (Insert/Unload tasks), before any episode offset
CONTAINER_XY_UPPER = (0.64, 0.1)
CONTAINER_INSERTED_MAX_Z_M = 1.065

SORT_FANTA_BOX = ((0.47, -0.16, 1.02), (0.72, -0.015, 1.15))  # (min, max): right bin, for the orange cans
SORT_SPRITE_BOX = ((0.47, 0.007, 1.02), (0.72, 0.1592, 1.15))  # left bin, for the sprite cans

BOWL_RIM_OFFSET_M = 0.075  # rim centre along the bowl's local +z
BOWL_RIM_RADIUS_M = 0.085
BOWL_RIM_ANGLE_DEG = (80.0, 100.0)  # open interval of angles between (ball - rim centre) and the bowl normal
POUR_MIN_BALLS = 3
BALL_NAMES = tuple(f"ball{i}" for i in range(1, 9))

DRAWER_MOVED_FRACTION = 0.1  # of the range, away from the starting limit
DRAWER_OPEN_FRACTION = 0.1  # open: within 10 % of the range above the lower limit
DRAWER_CLOSED_FRACTION = 0.9  # closed: above 0.9 * upper (a fraction of the upper limit, not of the range)
LAPTOP_OPEN_FRACTION = 0.7  # of the upper limit
LAPTOP_MOVED_FRACTION = 0.15

DRAWER_HANDLE_OFFSETS = {  # added to the drawer root position in world axes (not rotated)
    "open_drawer": (-0.08, -0.122, -0.05),
    "close_drawer": (-0.31, 0.3, -0.05),
    "stack_can_into_drawer": (-0.08, -0.122, -0.05),
}

PLACEMENT_COUNT = 10_000  # randomize_idx in [0, 9999]

# --------------------------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a task at its nominal (un-randomised) root pose."""

    name: str
    asset: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]  # wxyz
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    movable: bool = True  # False: kinematic, static or a fixed-base articulation
    mass: float | None = None  # kg, None where the benchmark's value is not public

    def __post_init__(self):
        if self.asset not in ASSETS:
            raise ValueError(f"object {self.name!r}: unknown asset {self.asset!r}; expected one of {ASSETS}")
        if len(self.pos) != 3 or len(self.quat) != 4 or len(self.scale) != 3:
            raise ValueError(f"object {self.name!r}: pos needs 3 values, quat 4 (wxyz) and scale 3")
        if not math.isclose(math.sqrt(sum(q * q for q in self.quat)), 1.0, abs_tol=1e-3):
            raise ValueError(f"object {self.name!r}: quat {self.quat} is not a unit quaternion")
        if self.mass is not None and not self.mass > 0:
            raise ValueError(f"object {self.name!r}: mass must be positive or None, got {self.mass}")

    @property
    def pose(self) -> np.ndarray:
        """Nominal pose (7,): xyz then wxyz."""
        return np.array([*self.pos, *self.quat], dtype=float)


@dataclass(frozen=True)
class Placement:
    """The initial state of one episode: object poses, articulation joints and task extras."""

    index: int | None  # the placement index (randomize_idx) used; None for a random draw
    poses: dict[str, np.ndarray]  # object name -> (7,) pose
    joints: dict[str, float]  # articulation joint -> initial position
    context: dict[str, np.ndarray]  # task extras, e.g. Push-Box "goal" (3,)


@dataclass
class TaskState:
    """What the predicates read at one control step."""

    poses: dict[str, np.ndarray]  # object name -> (7,) world pose
    joints: dict[str, float] = field(default_factory=dict)  # articulation joints
    fingertips: dict[str, np.ndarray] = field(default_factory=dict)  # "left"/"right" -> (5, 3), thumb..pinky


@dataclass(frozen=True)
class StepFlags:
    """The benchmark's flags after one step: ``success`` and the reported subtasks (counts where several objects).

    ``extra`` holds values the benchmark computes but does not report (they do not count towards progress).
    """

    success: bool
    subtasks: dict[str, float]
    extra: dict[str, float] = field(default_factory=dict)

    def report(self) -> dict[str, float]:
        """The key/value pairs the benchmark logs for a rollout, ``success`` first; progress counts these."""
        return {"success": float(self.success), **self.subtasks}


# A placement rule maps (index or None, rng) to per-object xy offsets and the task's context.
OffsetRule = Callable[[int | None, np.random.Generator], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]
# An evaluation maps (state, placement, latched memory) to the step's flags; it may write to the memory.
Evaluation = Callable[[TaskState, Placement, dict], StepFlags]


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """One benchmark task: its declarative data plus its placement and evaluation rules."""

    name: str
    gym_id: str
    title: str
    instruction: str
    horizon: int  # policy steps at 30 Hz
    physics_dt: float  # s
    decimation: int  # physics steps per control step
    group: str  # "short" or "long"
    objects: tuple[ObjectSpec, ...]
    robot_init: dict[str, float]
    subtask_names: tuple[str, ...]
    seed: int  # the authors' per-task evaluation seed
    initial_joints: dict[str, float] = field(default_factory=dict)
    offset_rule: OffsetRule = field(default=None, repr=False)
    evaluation: Evaluation = field(default=None, repr=False)

    def __post_init__(self):
        if self.group not in ("short", "long"):
            raise ValueError(f"task {self.name!r}: group must be 'short' or 'long', got {self.group!r}")
        if not math.isclose(self.physics_dt * self.decimation, 1.0 / CONTROL_HZ, rel_tol=1e-9):
            raise ValueError(f"task {self.name!r}: physics_dt * decimation must be 1/{CONTROL_HZ} s, got "
                             f"{self.physics_dt} * {self.decimation}")
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r}: object names must be unique, got {names}")
        if self.offset_rule is None or self.evaluation is None:
            raise ValueError(f"task {self.name!r}: needs an offset_rule and an evaluation")

    @property
    def object_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objects)

    @property
    def control_dt(self) -> float:
        return self.physics_dt * self.decimation

    def object(self, name: str) -> ObjectSpec:
        for o in self.objects:
            if o.name == name:
                return o
        raise ValueError(f"task {self.name!r} has no object {name!r}; objects: {self.object_names}")

    def placement(self, index: int | None = None, rng: np.random.Generator | None = None) -> Placement:
        """Initial poses for placement ``index`` (the deterministic grid), or a random draw when it is None."""
        if index is not None:
            index = validate_placement_index(index)
        elif rng is None:
            rng = np.random.default_rng()
        offsets, context = self.offset_rule(index, rng)
        poses = {}
        for obj in self.objects:
            pose = obj.pose
            if obj.name in offsets:
                pose[:2] += offsets[obj.name]
            poses[obj.name] = pose
        return Placement(index=index, poses=poses, joints=dict(self.initial_joints), context=context)

    def tracker(self, placement: Placement) -> TaskTracker:
        missing = set(self.object_names) - set(placement.poses)
        if missing:
            raise ValueError(f"task {self.name!r}: placement lacks poses for {sorted(missing)}; "
                             f"make it with this task's placement()")
        return TaskTracker(self, placement)

    def evaluate(self, state: TaskState, placement: Placement, memory: dict) -> StepFlags:
        """One step of this task's rules; latched flags are read from and written to ``memory``."""
        return self.evaluation(state, placement, memory)


class TaskTracker:
    """Holds latched flags across the steps of one episode."""

    def __init__(self, task: TaskSpec, placement: Placement):
        self.task = task
        self.placement = placement
        self.last: StepFlags | None = None
        self.succeeded = False  # success reported at any step so far (the protocol stops at the first one)
        self.steps = 0
        self._memory: dict = {}

    def update(self, state: TaskState) -> StepFlags:
        """Evaluate one control step; call it every step so latched flags see every state."""
        flags = self.task.evaluate(state, self.placement, self._memory)
        self.last = flags
        self.steps += 1
        self.succeeded = self.succeeded or flags.success
        return flags

    def progress(self) -> float:
        """PSR of the episode so far: the last step's reported values, and 1.0 once the task has succeeded."""
        if self.last is None:
            return 0.0
        return psr(self.succeeded, self.last.subtasks)


# --------------------------------------------------------------------------------------------------------------
# Predicates (pure functions)
# --------------------------------------------------------------------------------------------------------------


def _vec(value, size: int, what: str) -> np.ndarray:
    v = np.asarray(value, dtype=float)
    if v.shape != (size,):
        raise ValueError(f"{what} must have shape ({size},), got {v.shape}")
    return v


def fingertip_mean(tips) -> np.ndarray:
    """Mean of a hand's five fingertip positions (5, 3) -> (3,): the benchmark's hand position for reach tests."""
    t = np.asarray(tips, dtype=float)
    if t.shape != (5, 3):
        raise ValueError(f"fingertips must have shape (5, 3) (thumb, index, middle, ring, pinky), got {t.shape}")
    return t.mean(axis=0)


def near(a, b, radius: float) -> bool:
    """3-D distance strictly below ``radius`` (only the first 3 values of a pose are used)."""
    return bool(np.linalg.norm(np.asarray(a, float)[:3] - np.asarray(b, float)[:3]) < radius)


def xy_within(p, q, radius: float) -> bool:
    """Horizontal (xy) distance strictly below ``radius``."""
    return bool(np.linalg.norm(np.asarray(p, float)[:2] - np.asarray(q, float)[:2]) < radius)


def in_box(p, lower, upper) -> bool:
    """Inclusive axis-aligned box test over as many axes as ``lower`` has (2 = xy, 3 = xyz)."""
    lo, hi = np.asarray(lower, float), np.asarray(upper, float)
    x = np.asarray(p, float)[: lo.size]
    return bool(np.all(x >= lo) and np.all(x <= hi))


def strictly_inside(p, lower, upper) -> bool:
    """Open axis-aligned box test (a point on a face is outside)."""
    lo, hi = np.asarray(lower, float), np.asarray(upper, float)
    x = np.asarray(p, float)[: lo.size]
    return bool(np.all(x > lo) and np.all(x < hi))


def quat_rotate(quat, vec) -> np.ndarray:
    """Rotate ``vec`` (3,) by the quaternion ``quat`` (w, x, y, z), normalised first."""
    q = _vec(quat, 4, "quaternion (w, x, y, z)")
    n = np.linalg.norm(q)
    if not n > 1e-9:
        raise ValueError(f"quaternion {q} has zero norm")
    w, x, y, z = (q / n).tolist()
    a, b, c = _vec(vec, 3, "vector").tolist()
    # v + 2w (u x v) + 2 u x (u x v), written out: np.cross costs ~10 us a call, and the pour predicate rotates
    # per ball per step (a third of Pour-Balls' step time went here).
    tx, ty, tz = 2.0 * (y * c - z * b), 2.0 * (z * a - x * c), 2.0 * (x * b - y * a)
    return np.array([a + w * tx + y * tz - z * ty, b + w * ty + z * tx - x * tz, c + w * tz + x * ty - y * tx])


def local_z_up(quat) -> float:
    """World z component of the body's local +z axis (1 upright, 0 on its side, -1 upside down)."""
    return float(quat_rotate(quat, (0.0, 0.0, 1.0))[2])


def bowl_rim_center(bowl_pose) -> np.ndarray:
    """Centre of the bowl's rim disc: the root plus ``BOWL_RIM_OFFSET_M`` along the bowl's local +z."""
    pose = _vec(bowl_pose, 7, "bowl pose")
    return pose[:3] + quat_rotate(pose[3:], (0.0, 0.0, BOWL_RIM_OFFSET_M))


def ball_crossed_rim(ball_pos, bowl_pose) -> bool:
    """A ball is in the rim disc: within ``BOWL_RIM_RADIUS_M`` of the rim centre and at 80-100 deg to the normal.

    The normal is the unit vector from the bowl root to the rim centre; the angle is between it and the unit
    vector from the rim centre to the ball (both limits excluded). A ball exactly at the centre has no angle and
    does not count.
    """
    return _in_rim_disc(ball_pos, *_rim_frame(bowl_pose))


def _rim_frame(bowl_pose) -> tuple[np.ndarray, np.ndarray]:
    """(rim centre, unit normal) of the bowl's rim disc."""
    pose = _vec(bowl_pose, 7, "bowl pose")
    center = bowl_rim_center(pose)
    normal = center - pose[:3]
    normal /= np.linalg.norm(normal)
    return center, normal


def _in_rim_disc(ball_pos, center: np.ndarray, normal: np.ndarray) -> bool:
    d = np.asarray(ball_pos, float)[:3] - center
    dist = float(np.linalg.norm(d))
    if not (0.0 < dist < BOWL_RIM_RADIUS_M):
        return False
    angle = math.degrees(math.acos(float(np.clip(np.dot(d / dist, normal), -1.0, 1.0))))
    return BOWL_RIM_ANGLE_DEG[0] < angle < BOWL_RIM_ANGLE_DEG[1]


def drawer_handle(drawer_pose, offset) -> np.ndarray:
    """Handle position used by reach tests: drawer root plus ``offset`` in world axes (not rotated)."""
    return np.asarray(drawer_pose, float)[:3] + _vec(offset, 3, "handle offset")


def drawer_open(q: float, joint_range=DRAWER_JOINT_RANGE) -> bool:
    """Open-Drawer success: within 10 % of the range above the lower (fully open) limit."""
    lo, hi = joint_range
    return q < lo + DRAWER_OPEN_FRACTION * (hi - lo)


def drawer_closed(q: float, joint_range=DRAWER_JOINT_RANGE) -> bool:
    """Close-Drawer success: above 0.9 * the upper limit."""
    return q > DRAWER_CLOSED_FRACTION * joint_range[1]


def drawer_moved_from_closed(q: float, joint_range=DRAWER_JOINT_RANGE) -> bool:
    """Pulled more than 10 % of the range away from the upper (closed) limit."""
    lo, hi = joint_range
    return q < hi - DRAWER_MOVED_FRACTION * (hi - lo)


def drawer_moved_from_open(q: float, joint_range=DRAWER_JOINT_RANGE) -> bool:
    """Pushed more than 10 % of the range away from the lower (open) limit."""
    lo, hi = joint_range
    return q > lo + DRAWER_MOVED_FRACTION * (hi - lo)


def laptop_lid_above(q: float, fraction: float, joint_range=LAPTOP_JOINT_RANGE) -> bool:
    """The lid hinge strictly above ``fraction`` of the hinge's upper limit."""
    return q > fraction * joint_range[1]


def can_on_plate(can_pos, plate_pos, max_dz: float) -> bool:
    """Can within the plate radius in xy and within ``max_dz`` of the plate's height (both strict)."""
    c, p = np.asarray(can_pos, float), np.asarray(plate_pos, float)
    return xy_within(c, p, PLATE_RADIUS_M) and abs(c[2] - p[2]) < max_dz


def can_inserted(can_pos) -> bool:
    """In the can tray: inside its xy bounds (inclusive) and root z at most 1.065."""
    c = np.asarray(can_pos, float)
    return in_box(c, CONTAINER_XY_LOWER, CONTAINER_XY_UPPER) and c[2] <= CONTAINER_INSERTED_MAX_Z_M


def psr(success: bool, subtasks: Mapping[str, float]) -> float:
    """Progress of a rollout: the fraction of its reported values (success included) above zero; 1 on success."""
    if success:
        return 1.0
    values = [0.0, *(float(v) for v in subtasks.values())]
    return sum(v > 0 for v in values) / len(values)


# --------------------------------------------------------------------------------------------------------------
# Placement grids
# --------------------------------------------------------------------------------------------------------------


def validate_placement_index(index) -> int:
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"placement index must be an integer in [0, {PLACEMENT_COUNT - 1}] or None, got {index!r}")
    if not 0 <= index < PLACEMENT_COUNT:
        raise ValueError(f"placement index must be in [0, {PLACEMENT_COUNT - 1}], got {index}")
    return int(index)


def grid_cell(index: int) -> tuple[int, int]:
    """(column, row) of a placement index on the 100 x 100 grid: column = index // 100, row = index % 100."""
    return divmod(validate_placement_index(index), 100)


def sweep(half_range: float, step: int, last: int) -> float:
    """Offset of grid step ``step`` of ``0..last`` from +half_range down to -half_range (the benchmark's formula)."""
    return half_range - (2.0 * half_range / last) * step


def grid_offset(index: int, half_x: float, half_y: float) -> np.ndarray:
    """xy offset on the 100 x 100 grid: x from the column, y from the row."""
    column, row = grid_cell(index)
    return np.array([sweep(half_x, column, 99), sweep(half_y, row, 99)])


def hand_grid_offsets(index: int, half_range: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) xy offsets of the two-can tasks: left = index // 100, right = index % 100, each on 10 x 10."""
    left, right = divmod(validate_placement_index(index), 100)

    def cell(n: int) -> np.ndarray:
        column, row = divmod(n, 10)
        return np.array([sweep(half_range, column, 9), sweep(half_range, row, 9)])

    return cell(left), cell(right)


def _uniform_xy(rng: np.random.Generator, half_x: float, half_y: float | None = None) -> np.ndarray:
    half_y = half_x if half_y is None else half_y
    return rng.uniform((-half_x, -half_y), (half_x, half_y))


def _single_object_rule(name: str, random_half: float, grid_half_x: float, grid_half_y: float) -> OffsetRule:
    def rule(index, rng):
        if index is None:
            return {name: _uniform_xy(rng, random_half)}, {}
        return {name: grid_offset(index, grid_half_x, grid_half_y)}, {}

    return rule


def _push_box_offsets(index, rng):
    goal = np.array(PUSH_BOX_GOAL_DEFAULT)
    if index is None:
        box = _uniform_xy(rng, 0.1)
        goal[:2] += _uniform_xy(rng, 0.03, 0.1)
    else:
        box = grid_offset(index, 0.1, 0.1)
        # The goal walks the grid backwards, and its x comes from the row.
        column, row = divmod(PLACEMENT_COUNT - 1 - index, 100)
        goal[0] += sweep(0.03, row, 99)
        goal[1] += sweep(0.1, column, 99)
    return {"box": box}, {"goal": goal}


def _pour_balls_offsets(index, rng):
    bowl = _uniform_xy(rng, 0.1) if index is None else grid_offset(index, 0.1, 0.1)
    return {"bowl": bowl}, {}  # bottle and balls stay where they are


def _stack_can_offsets(index, rng):
    if index is None:
        plate = _uniform_xy(rng, 0.1)
        return {"plate": plate, "can": _uniform_xy(rng, 0.1)}, {}
    offset = grid_offset(index, 0.1, 0.1)
    return {"plate": offset, "can": offset.copy()}, {}


def _stack_can_into_drawer_offsets(index, rng):
    if index is None:
        shared = _uniform_xy(rng, 0.05)  # drawer and can move together
        return {"drawer": shared, "can": shared.copy(), "plate": _uniform_xy(rng, 0.05)}, {}
    column, row = grid_cell(index)
    dy = sweep(0.1, row, 99)
    return {"drawer": np.array([0.0, dy]), "plate": np.array([0.0, dy]),
            "can": np.array([sweep(0.05, column, 99), dy])}, {}


def _two_hand_rule(right_hand: Sequence[str], left_hand: Sequence[str]) -> OffsetRule:
    def rule(index, rng):
        if index is None:
            return {name: _uniform_xy(rng, 0.06) for name in (*right_hand, *left_hand)}, {}
        left, right = hand_grid_offsets(index, 0.06)
        offsets = {name: right.copy() for name in right_hand}
        offsets.update({name: left.copy() for name in left_hand})
        return offsets, {}

    return rule


def _unload_cans_offsets(index, rng):
    offset = _uniform_xy(rng, 0.1) if index is None else grid_offset(index, 0.05, 0.1)
    context = {"box_offset": offset.copy(),
               "box_lower": np.asarray(CONTAINER_XY_LOWER) + offset,
               "box_upper": np.asarray(CONTAINER_XY_UPPER) + offset}
    return {"can_fanta_1": offset.copy(), "can_fanta_2": offset.copy(), "container": offset.copy()}, context


# --------------------------------------------------------------------------------------------------------------
# Evaluations (one step of each task's rules)
# --------------------------------------------------------------------------------------------------------------


def _pose(state: TaskState, name: str) -> np.ndarray:
    if name not in state.poses:
        raise ValueError(f"task state lacks the pose of {name!r}; it has {sorted(state.poses)}")
    return _vec(state.poses[name], 7, f"pose of {name!r}")


def _joint(state: TaskState, name: str) -> float:
    if name not in state.joints:
        raise ValueError(f"task state lacks joint {name!r}; it has {sorted(state.joints)}")
    return float(state.joints[name])


def _hand(state: TaskState, side: str) -> np.ndarray:
    if side not in state.fingertips:
        raise ValueError(f"task state lacks the {side} fingertips; give fingertips['{side}'] as (5, 3)")
    return fingertip_mean(state.fingertips[side])


def _latch(memory: dict, key: str, now: bool) -> bool:
    memory[key] = bool(memory.get(key, False) or now)
    return memory[key]


def _reached(state, memory, key, side, target, radius=REACH_RADIUS_M) -> bool:
    return _latch(memory, key, near(_hand(state, side), target, radius))


def _eval_push_box(state, placement, memory):
    box = _pose(state, "box")
    reach = _reached(state, memory, "reach", "right", box, PUSH_BOX_REACH_RADIUS_M)
    success = xy_within(box, placement.context["goal"], PUSH_BOX_GOAL_RADIUS_M)
    return StepFlags(success, {"reach_success": float(reach)})


def _eval_flip_mug(state, placement, memory):
    mug = _pose(state, "mug")
    reach = _reached(state, memory, "reach", "left", mug)
    return StepFlags(local_z_up(mug[3:]) > MUG_UPRIGHT_MIN, {"reach_success": float(reach)})


def _eval_open_laptop(state, placement, memory):
    q = _joint(state, LAPTOP_JOINT)
    moved = _latch(memory, "move_lid", laptop_lid_above(q, LAPTOP_MOVED_FRACTION))
    success = _latch(memory, "success", laptop_lid_above(q, LAPTOP_OPEN_FRACTION))
    return StepFlags(success, {"move_lid_success": float(moved)})


def _drawer_evaluation(task: str, success_rule, moved_rule) -> Evaluation:
    offset = DRAWER_HANDLE_OFFSETS[task]

    def evaluate(state, placement, memory):
        q = _joint(state, DRAWER_BOTTOM_JOINT)
        handle = drawer_handle(_pose(state, "drawer"), offset)
        reach = _reached(state, memory, "reach", "left", handle)
        moved = _latch(memory, "move_door", moved_rule(q))
        return StepFlags(success_rule(q), {"reach_success": float(reach), "move_door_success": float(moved)})

    return evaluate


def _eval_pour_balls(state, placement, memory):
    bowl, bottle = _pose(state, "bowl"), _pose(state, "bottle")
    rim = _rim_frame(bowl)  # once per step, not per ball; a latched ball is not tested again
    count = 0
    for b in BALL_NAMES:
        ball, key = _pose(state, b), f"poured:{b}"
        count += _latch(memory, key, memory.get(key, False) or _in_rim_disc(ball, *rim))
    reach = _reached(state, memory, "reach_bottle", "right", bottle)
    lift = _latch(memory, "lift", bottle[2] > BOTTLE_LIFT_Z_M)
    return StepFlags(count >= POUR_MIN_BALLS, {"reach_bottle_success": float(reach), "lift_success": float(lift)},
                     {"balls_poured": float(count)})


def _eval_stack_can(state, placement, memory):
    can, plate = _pose(state, "can"), _pose(state, "plate")
    placed = _latch(memory, "place", can_on_plate(can, plate, STACK_PLACE_DZ_M))
    return StepFlags(can_on_plate(can, plate, STACK_SUCCESS_DZ_M), {"place_success": float(placed)})


def _eval_stack_can_into_drawer(state, placement, memory):
    can, plate, drawer = _pose(state, "can"), _pose(state, "plate"), _pose(state, "drawer")
    q = _joint(state, DRAWER_BOTTOM_JOINT)
    handle = drawer_handle(drawer, DRAWER_HANDLE_OFFSETS["stack_can_into_drawer"])
    reach_drawer = _reached(state, memory, "reach_drawer", "left", handle)
    reach_can = _reached(state, memory, "reach_can", "right", can)
    moved = _latch(memory, "move_door", drawer_moved_from_closed(q))
    lift = _latch(memory, "lift", can[2] > CAN_LIFT_Z_M)
    success = can_on_plate(can, plate, STACK_SUCCESS_DZ_M) and drawer_closed(q)
    return StepFlags(success, {"reach_drawer_success": float(reach_drawer), "reach_can_success": float(reach_can),
                               "lift_success": float(lift)}, {"move_door_success": float(moved)})


def _reach_lift_counts(state, memory, hands: Mapping[str, str], lift_z: float) -> tuple[int, int]:
    """Latched per-can reach (by the can's assigned hand) and lift flags, summed over the cans."""
    reach = lift = 0
    for can, side in hands.items():
        pos = _pose(state, can)
        reach += _reached(state, memory, f"reach:{can}", side, pos)
        lift += _latch(memory, f"lift:{can}", pos[2] > lift_z)
    return reach, lift


TWO_CAN_HANDS = {"can_fanta_1": "right", "can_fanta_2": "left"}
SORT_HANDS = {"can_sprite_1": "right", "can_sprite_2": "left", "can_fanta_1": "right", "can_fanta_2": "left"}


def _eval_insert_cans(state, placement, memory):
    reach, lift = _reach_lift_counts(state, memory, TWO_CAN_HANDS, CAN_LIFT_Z_M)
    inserted = sum(can_inserted(_pose(state, c)) for c in TWO_CAN_HANDS)
    return StepFlags(inserted == 2, {"reach_success": float(reach), "lift_success": float(lift),
                                     "insert_success": float(inserted)})


def _eval_unload_cans(state, placement, memory):
    lower, upper = placement.context["box_lower"], placement.context["box_upper"]
    reach, lift = _reach_lift_counts(state, memory, TWO_CAN_HANDS, UNLOAD_LIFT_Z_M)
    outside = unloaded = 0
    for c in TWO_CAN_HANDS:
        pose = _pose(state, c)
        out = not strictly_inside(pose, lower, upper)
        outside += out
        unloaded += out and local_z_up(pose[3:]) >= UNLOAD_UPRIGHT_MIN and pose[2] >= UNLOAD_MIN_Z_M
    return StepFlags(outside == 2, {"reach_success": float(reach), "lift_success": float(lift),
                                    "unload_success": float(unloaded)})


def _eval_sort_cans(state, placement, memory):
    reach, lift = _reach_lift_counts(state, memory, SORT_HANDS, CAN_LIFT_Z_M)
    sorted_ok = 0
    for c in SORT_HANDS:
        lo, hi = SORT_FANTA_BOX if c.startswith("can_fanta") else SORT_SPRITE_BOX
        sorted_ok += in_box(_pose(state, c), lo, hi)
    return StepFlags(sorted_ok == 4, {"reach_success": float(reach), "lift_success": float(lift),
                                      "sort_success": float(sorted_ok)})


def _eval_insert_and_unload_cans(state, placement, memory):
    reach, lift = _reach_lift_counts(state, memory, TWO_CAN_HANDS, CAN_LIFT_Z_M)
    inserted = unloaded = 0
    for c in TWO_CAN_HANDS:
        pos = _pose(state, c)
        was_in = _latch(memory, f"insert:{c}", can_inserted(pos))
        inserted += was_in
        unloaded += was_in and not in_box(pos, CONTAINER_XY_LOWER, CONTAINER_XY_UPPER)
    return StepFlags(unloaded == 2, {"reach_success": float(reach), "lift_success": float(lift),
                                     "insert_success": float(inserted), "unload_success": float(unloaded)})


# --------------------------------------------------------------------------------------------------------------
# The 12 tasks
# --------------------------------------------------------------------------------------------------------------

_IDENTITY = (1.0, 0.0, 0.0, 0.0)
_SHORT_DT, _SHORT_DECIMATION = 1.0 / 120.0, 4
_FINE_DT, _FINE_DECIMATION = 1.0 / 240.0, 8


def _can(name: str, asset: str, x: float, y: float, z: float = 1.02) -> ObjectSpec:
    return ObjectSpec(name, asset, (x, y, z), _IDENTITY, mass=0.35)


def _plate(x: float, y: float, z: float, asset: str = "plate") -> ObjectSpec:
    return ObjectSpec("plate", asset, (x, y, z), _IDENTITY, (0.6, 0.6, 0.6), movable=False, mass=1.0)


def _drawer(x: float, y: float) -> ObjectSpec:
    return ObjectSpec("drawer", "drawer", (x, y, DRAWER_ROOT_Z), DRAWER_QUAT, DRAWER_SCALE, movable=False, mass=1.5)


def _tray() -> ObjectSpec:
    return ObjectSpec("container", "container_2x3", (0.48, 0.0, 1.06), _IDENTITY)


_BALL_POSITIONS = {
    "ball1": (0.46, -0.31, 1.1), "ball2": (0.46, -0.29, 1.1), "ball3": (0.44, -0.31, 1.1),
    "ball4": (0.44, -0.29, 1.1), "ball5": (0.46, -0.31, 1.07), "ball6": (0.46, -0.29, 1.07),
    "ball7": (0.44, -0.31, 1.07), "ball8": (0.44, -0.29, 1.07),
}
_BIN_QUAT = (0.70711, 0.0, 0.0, -0.70711)  # -90 deg about +z


def _make_tasks() -> dict[str, TaskSpec]:
    drawer_closed_init = {DRAWER_TOP_JOINT: DRAWER_JOINT_RANGE[1], DRAWER_BOTTOM_JOINT: DRAWER_JOINT_RANGE[1]}
    drawer_open_init = {DRAWER_TOP_JOINT: DRAWER_JOINT_RANGE[1], DRAWER_BOTTOM_JOINT: DRAWER_JOINT_RANGE[0]}
    two_can_subtasks = ("reach_success", "lift_success")
    insert_rule = _two_hand_rule(right_hand=("can_fanta_1",), left_hand=("can_fanta_2",))
    specs = [
        TaskSpec(
            "push_box", "Humanoid-Push-Box-v0", "Push-Box", "push box to the marker", 400,
            _SHORT_DT, _SHORT_DECIMATION, "short",
            (ObjectSpec("box", "cracker_box", (0.5, -0.3, 1.04), _IDENTITY, mass=1.0),),
            dict(ROBOT_INIT), ("reach_success",), seed=5,
            offset_rule=_push_box_offsets, evaluation=_eval_push_box),
        TaskSpec(
            "flip_mug", "Humanoid-Flip-Mug-v0", "Flip-Mug", "Flip the mug", 400,
            _FINE_DT, _FINE_DECIMATION, "short",
            (ObjectSpec("mug", "mug", (0.45, 0.0, 1.05), (0.6065, -0.3590, 0.5960, -0.3849), (1.7, 1.7, 1.0),
                        mass=0.05),),
            dict(ROBOT_INIT), ("reach_success",), seed=9,
            offset_rule=_single_object_rule("mug", 0.1, 0.1, 0.1), evaluation=_eval_flip_mug),
        TaskSpec(
            "pour_balls", "Humanoid-Pour-Balls-v0", "Pour-Balls", "pour balls in cup into bowl", 400,
            _SHORT_DT, _SHORT_DECIMATION, "short",
            (ObjectSpec("bottle", "glassware", (0.45, -0.3, 1.025), _IDENTITY),
             ObjectSpec("bowl", "bowl", (0.54, 0.0, 1.025), _IDENTITY, (0.6, 0.6, 0.6), mass=1.5),
             *(ObjectSpec(b, "ball", p, _IDENTITY, mass=0.001) for b, p in _BALL_POSITIONS.items())),
            dict(ROBOT_INIT), ("reach_bottle_success", "lift_success"), seed=0,
            offset_rule=_pour_balls_offsets, evaluation=_eval_pour_balls),
        TaskSpec(
            "close_drawer", "Humanoid-Close-Drawer-v0", "Close-Drawer", "Close the opened drawer", 400,
            _FINE_DT, _FINE_DECIMATION, "short", (_drawer(0.6, 0.0),),
            dict(ROBOT_INIT), ("reach_success", "move_door_success"), seed=7, initial_joints=drawer_open_init,
            offset_rule=_single_object_rule("drawer", 0.1, 0.05, 0.1),
            evaluation=_drawer_evaluation("close_drawer", drawer_closed, drawer_moved_from_open)),
        TaskSpec(
            "open_drawer", "Humanoid-Open-Drawer-v0", "Open-Drawer", "Open the closed drawer", 400,
            _FINE_DT, _FINE_DECIMATION, "short", (_drawer(0.6, 0.0),),
            dict(ROBOT_INIT), ("reach_success", "move_door_success"), seed=6, initial_joints=drawer_closed_init,
            offset_rule=_single_object_rule("drawer", 0.1, 0.05, 0.1),
            evaluation=_drawer_evaluation("open_drawer", drawer_open, drawer_moved_from_closed)),
        TaskSpec(
            "open_laptop", "Humanoid-Open-Laptop-v0", "Open-Laptop", "open the laptop", 300,
            _SHORT_DT, _SHORT_DECIMATION, "short",
            (ObjectSpec("laptop", "laptop", (0.6, 0.0, 1.03), (0.5, 0.5, 0.5, 0.5), movable=False, mass=1.5),),
            dict(ROBOT_INIT), ("move_lid_success",), seed=8, initial_joints={LAPTOP_JOINT: LAPTOP_INITIAL_RAD},
            offset_rule=_single_object_rule("laptop", 0.1, 0.1, 0.1), evaluation=_eval_open_laptop),
        TaskSpec(
            "stack_can", "Humanoid-Stack-Can-v0", "Stack-Can", "put can on the saucer", 300,
            _SHORT_DT, _SHORT_DECIMATION, "short",
            (_can("can", "can_fanta", 0.45, -0.25), _plate(0.45, 0.0, 1.02)),
            dict(ROBOT_INIT), ("place_success",), seed=10,
            offset_rule=_stack_can_offsets, evaluation=_eval_stack_can),
        TaskSpec(
            "sort_cans", "Humanoid-Sort-Cans-v0", "Sort-Cans",
            "Put sprite cans to the left box, and orange cans to the right box", 900,
            _SHORT_DT, _SHORT_DECIMATION, "long",
            (_can("can_sprite_1", "can_sprite", 0.42, -0.33), _can("can_sprite_2", "can_sprite", 0.42, 0.33),
             _can("can_fanta_1", "can_fanta", 0.52, -0.33), _can("can_fanta_2", "can_fanta", 0.52, 0.33),
             ObjectSpec("container_1", "container_plastic", (0.6, 0.085, 1.1), _BIN_QUAT, movable=False),
             ObjectSpec("container_2", "container_plastic", (0.6, -0.085, 1.1), _BIN_QUAT, movable=False)),
            dict(ROBOT_INIT), (*two_can_subtasks, "sort_success"), seed=1,
            offset_rule=_two_hand_rule(right_hand=("can_sprite_1", "can_fanta_1"),
                                       left_hand=("can_sprite_2", "can_fanta_2")),
            evaluation=_eval_sort_cans),
        TaskSpec(
            "insert_cans", "Humanoid-Insert-Cans-v0", "Insert-Cans", "Insert cans into the boxes", 500,
            _SHORT_DT, _SHORT_DECIMATION, "long",
            (_can("can_fanta_1", "can_fanta", 0.37, -0.3), _can("can_fanta_2", "can_fanta", 0.37, 0.3), _tray()),
            dict(ROBOT_INIT), (*two_can_subtasks, "insert_success"), seed=2,
            offset_rule=insert_rule, evaluation=_eval_insert_cans),
        TaskSpec(
            "unload_cans", "Humanoid-Unload-Cans-v0", "Unload-Cans",
            "unload the right cans and then unload the left cans", 500,
            _SHORT_DT, _SHORT_DECIMATION, "long",
            (_can("can_fanta_1", "can_fanta", 0.38, -0.045, 1.08), _can("can_fanta_2", "can_fanta", 0.38, 0.045, 1.08),
             _tray()),
            dict(ROBOT_INIT), (*two_can_subtasks, "unload_success"), seed=3,
            offset_rule=_unload_cans_offsets, evaluation=_eval_unload_cans),
        TaskSpec(
            "insert_and_unload_cans", "Humanoid-Insert-And-Unload-Cans-v0", "Insert-And-Unload-Cans",
            "Insert the left can into the slot and insert the right can into the slot, "
            "unload the left cans andd then unload the right cans", 900,
            _SHORT_DT, _SHORT_DECIMATION, "long",
            (_can("can_fanta_1", "can_fanta", 0.37, -0.3), _can("can_fanta_2", "can_fanta", 0.37, 0.3), _tray()),
            dict(ROBOT_INIT), (*two_can_subtasks, "insert_success", "unload_success"), seed=4,
            offset_rule=insert_rule, evaluation=_eval_insert_and_unload_cans),
        TaskSpec(
            "stack_can_into_drawer", "Humanoid-Stack-Can-Into-Drawer-v0", "Stack-Can-Into-Drawer",
            "Open the drawer, and Put can on the saucer", 400,
            _FINE_DT, _FINE_DECIMATION, "long",
            (_can("can", "can_fanta", 0.38, 0.0), _plate(0.65, 0.0, 1.17, "plate_inlay"), _drawer(0.53, 0.0)),
            # The benchmark resets joints clamped to their limits; a backend should clamp the yaw likewise.
            {**ROBOT_INIT, "left_shoulder_yaw_joint": 1.5, "right_shoulder_yaw_joint": 1.5},
            ("reach_drawer_success", "reach_can_success", "lift_success"), seed=11, initial_joints=drawer_open_init,
            offset_rule=_stack_can_into_drawer_offsets, evaluation=_eval_stack_can_into_drawer),
    ]
    return {s.name: s for s in specs}


TASKS: dict[str, TaskSpec] = _make_tasks()
SHORT_TASKS = tuple(n for n, s in TASKS.items() if s.group == "short")
LONG_TASKS = tuple(n for n, s in TASKS.items() if s.group == "long")


def get_task(name) -> TaskSpec:
    """A task by snake name ("push_box"), title ("Push-Box") or gym id ("Humanoid-Push-Box-v0")."""
    if isinstance(name, TaskSpec):
        return name
    for spec in TASKS.values():
        if name in (spec.name, spec.title, spec.gym_id):
            return spec
    raise ValueError(f"unknown task {name!r}; valid names: {', '.join(TASKS)} "
                     f"(titles such as 'Push-Box' and gym ids such as 'Humanoid-Push-Box-v0' work too)")


# --------------------------------------------------------------------------------------------------------------
# Evaluation protocol
# --------------------------------------------------------------------------------------------------------------

ROOMS = (1, 2, 3, 4, 5)
TABLES = (1, 2, 3, 4, 5)
SEEN_CONFIGS = ((1, 1), (2, 1), (3, 1))  # (room, table)
UNSEEN_CONFIGS = tuple((r, t) for r in ROOMS for t in TABLES if (r, t) not in SEEN_CONFIGS)
DEFAULT_TRIALS = {"seen": 3, "unseen": 1}
TRAINING_PLACEMENTS = 100  # the first entries of a task's sequence were used for the demonstrations
INIT_EPISODES = 10  # reference demos per task that can supply the initial arm and hand posture


@dataclass(frozen=True)
class Rollout:
    """One evaluation rollout: task, visual configuration, which initial posture and trial, and its placement."""

    task: str
    room: int
    table: int
    episode: int  # 0-based: which reference demo gives the initial posture
    trial: int  # 0-based
    placement_index: int


def placement_sequence(task) -> list[int]:
    """The task's fixed shuffle of the 10,000 placement indices (Python's ``random`` seeded with its seed)."""
    spec = get_task(task)
    sequence = list(range(PLACEMENT_COUNT))
    random.Random(spec.seed).shuffle(sequence)
    return sequence


def protocol_rollouts(task, split: str, episodes: int = 3, trials: int | None = None) -> list[Rollout]:
    """The rollouts of one task for the "seen" (27 by default) or "unseen" (66) split, in the authors' order.

    For a (room, table) the r-th rollout (episode-major, then trial) takes the sequence entry
    ``101 + (room * 5 + table) * trials * episodes + r``.
    """
    if split not in DEFAULT_TRIALS:
        raise ValueError(f"split must be 'seen' or 'unseen', got {split!r}")
    trials = DEFAULT_TRIALS[split] if trials is None else trials
    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 1 <= episodes <= INIT_EPISODES:
        raise ValueError(f"episodes must be an integer in [1, {INIT_EPISODES}], got {episodes!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    spec = get_task(task)
    sequence = placement_sequence(spec)
    configs = SEEN_CONFIGS if split == "seen" else UNSEEN_CONFIGS
    per_config = trials * episodes
    last = TRAINING_PLACEMENTS + 1 + (max(ROOMS) * 5 + max(TABLES)) * per_config + per_config - 1
    if last >= PLACEMENT_COUNT:
        raise ValueError(f"{episodes} episodes x {trials} trials would run past the {PLACEMENT_COUNT} placements")
    rollouts = []
    for room, table in configs:
        start = TRAINING_PLACEMENTS + 1 + (room * 5 + table) * per_config
        for episode in range(episodes):
            for trial in range(trials):
                r = episode * trials + trial
                rollouts.append(Rollout(spec.name, room, table, episode, trial, sequence[start + r]))
    return rollouts


def summarize(records: Sequence[Mapping]) -> dict:
    """SR and PSR in percent per task, the short/long group means (of task values) and the overall mean.

    Groups average the per-task percentages (each task weighs the same, as in the paper's tables).

    ``records`` are dicts with ``task`` (any name form), ``success`` (bool) and ``progress`` (0..1). Groups with
    no task present are None.
    """
    if not records:
        raise ValueError("summarize needs at least one rollout record")
    per_task: dict[str, list[tuple[bool, float]]] = {}
    for i, rec in enumerate(records):
        missing = {"task", "success", "progress"} - set(rec)
        if missing:
            raise ValueError(f"record {i} lacks {sorted(missing)}: {rec!r}")
        progress = float(rec["progress"])
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"record {i}: progress must be in [0, 1], got {progress}")
        per_task.setdefault(get_task(rec["task"]).name, []).append((bool(rec["success"]), progress))

    tasks = {}
    for name in TASKS:
        if name in per_task:
            rows = per_task[name]
            tasks[name] = {"rollouts": len(rows),
                           "sr": 100.0 * sum(s for s, _ in rows) / len(rows),
                           "psr": 100.0 * sum(p for _, p in rows) / len(rows)}

    def group(names):
        present = [tasks[n] for n in names if n in tasks]
        if not present:
            return None
        return {"tasks": len(present), "rollouts": sum(t["rollouts"] for t in present),
                "sr": sum(t["sr"] for t in present) / len(present),
                "psr": sum(t["psr"] for t in present) / len(present)}

    return {"tasks": tasks, "short": group(SHORT_TASKS), "long": group(LONG_TASKS), "overall": group(TASKS)}
