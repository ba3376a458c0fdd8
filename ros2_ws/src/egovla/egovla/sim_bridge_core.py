"""The sim bridge's logic without ROS: sim clock, lockstep gate, command validation and merging, status values.

The node (``egovla.nodes.sim_bridge``) only wires topics, parameters and timers around these pieces:

- ``SimClock``: one clock for the whole run that only increases. Control tick ``g`` of the run (warm-up steps
  included) is at ``g / 30`` s; every reset first adds ``RESET_GAP_TICKS`` ticks, so the first observation of
  an episode is always later than the last one of the episode before (and never at time 0, which ROS reads as
  "no time yet").
- ``CommandGate``: the joint targets of the next step. Lockstep: it waits for the observation stamp it has
  published (``start_tick``); commands stamped with it are merged (several publishers may each send a subset)
  until every required joint is covered (``complete``). Older stamps are stale, newer ones are from the future;
  both are ignored and counted. Free-running: every command applies, whatever its stamp. In both modes unknown
  joint names are ignored (reported once per name), non-finite values dropped, values outside the joint limits
  clamped, and a mimic joint that a command leaves out follows its leader when the command sets the leader.
- ``status_values`` / ``camera_matrices``: the text key/values of ``/egovla/task_status`` and the CameraInfo
  matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CONTROL_HZ = 30
RESET_GAP_TICKS = CONTROL_HZ  # 1 s of sim time between the last observation of an episode and the next reset
MODES = ("lockstep", "free_running")


class SimClock:
    """Global sim time in integer nanoseconds: tick ``g`` at ``g / CONTROL_HZ`` s (exact to the nanosecond)."""

    def __init__(self):
        self.global_tick = 0

    @staticmethod
    def stamp_ns_of(global_tick: int) -> int:
        return global_tick * 1_000_000_000 // CONTROL_HZ

    @property
    def stamp_ns(self) -> int:
        return self.stamp_ns_of(self.global_tick)

    def advance(self, ticks: int = 1) -> int:
        if ticks < 0:
            raise ValueError(f"the sim clock only moves forward, got {ticks} ticks")
        self.global_tick += ticks
        return self.stamp_ns

    def reset_gap(self) -> int:
        return self.advance(RESET_GAP_TICKS)


def split_stamp(stamp_ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a builtin_interfaces/Time."""
    return stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000


def join_stamp(sec: int, nanosec: int) -> int:
    return int(sec) * 1_000_000_000 + int(nanosec)


@dataclass
class CommandOutcome:
    """What became of one command message."""

    status: str                     # "accepted", "stale", "future", "unstamped" or "stopped"
    applied: dict[str, float] = field(default_factory=dict)   # name -> value actually used (clamped)
    unknown: list[str] = field(default_factory=list)          # names the robot does not have (all of them)
    new_unknown: list[str] = field(default_factory=list)      # unknown names not reported before
    non_finite: list[str] = field(default_factory=list)
    clamped: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (asked, used)
    malformed: str = ""             # why the message was rejected as a whole ("" = fine)


@dataclass
class GateCounters:
    stale_commands: int = 0
    future_commands: int = 0
    unstamped_commands: int = 0
    malformed_commands: int = 0
    unknown_entries: int = 0
    non_finite_entries: int = 0
    clamped_entries: int = 0
    missed_ticks: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class CommandGate:
    """Joint targets for the next step, merged from ``/joint_command`` messages. See the module docstring.

    ``joint_names``: every commandable joint; ``lower``/``upper``: their limits (same order); ``required``: the
    joints a lockstep tick must cover; ``mimic``: follower -> (leader, multiplier, offset).
    """

    def __init__(self, joint_names, lower, upper, required, mimic: dict | None = None, mode: str = "lockstep"):
        self.joint_names = tuple(joint_names)
        if len(lower) != len(self.joint_names) or len(upper) != len(self.joint_names):
            raise ValueError("lower and upper limits must have one value per joint")
        self.limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(self.joint_names, lower, upper)}
        self.mimic = dict(mimic or {})
        bad = [f for f, (leader, _, _) in self.mimic.items() if f not in self.limits or leader not in self.limits]
        if bad:
            raise ValueError(f"mimic joints {bad} or their leaders are not commandable joints")
        self.set_required(required)
        self.set_mode(mode)
        self.counters = GateCounters()
        self.reported_unknown: set[str] = set()
        self.targets: dict[str, float] = {}
        self.awaiting_stamp_ns: int | None = None
        self.covered: set[str] = set()
        self._explicit: set[str] = set()
        self.stopped = False

    # --- configuration -------------------------------------------------------------------------------------

    def set_required(self, required):
        required = tuple(dict.fromkeys(required))
        unknown = [n for n in required if n not in self.limits]
        if unknown:
            raise ValueError(f"required_joints names joints the simulator does not drive: {unknown}")
        if not required:
            raise ValueError("required_joints is empty: lockstep would never wait for a command")
        self.required = frozenset(required)

    def set_mode(self, mode: str):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    # --- ticks ---------------------------------------------------------------------------------------------

    def hold(self, targets: dict[str, float]):
        """After a reset: the targets in force (hold pose) until commands arrive."""
        self.targets = {n: float(targets[n]) for n in self.joint_names}
        self.stopped = False

    def start_tick(self, stamp_ns: int):
        """The observation stamped ``stamp_ns`` has been published: wait for its commands."""
        self.awaiting_stamp_ns = int(stamp_ns)
        self.covered = set()
        self._explicit = set()

    @property
    def complete(self) -> bool:
        """Lockstep: every required joint has a command for the awaited tick."""
        return self.required <= self.covered

    @property
    def missing(self) -> list[str]:
        return sorted(self.required - self.covered)

    def miss(self):
        """The tick timed out: it steps with the last targets and is counted."""
        self.counters.missed_ticks += 1

    # --- commands ------------------------------------------------------------------------------------------

    def offer(self, stamp_ns: int, names, positions) -> CommandOutcome:
        """Validate one command and, if it answers the awaited tick (or in free-running mode), merge it."""
        names, positions = list(names), list(positions)
        if len(names) != len(positions):
            self.counters.malformed_commands += 1
            return CommandOutcome("malformed", malformed=f"{len(names)} names but {len(positions)} positions")
        if self.stopped:
            return CommandOutcome("stopped")
        if self.mode == "lockstep":
            if stamp_ns <= 0:
                self.counters.unstamped_commands += 1
                return CommandOutcome("unstamped")
            if self.awaiting_stamp_ns is None or stamp_ns < self.awaiting_stamp_ns:
                self.counters.stale_commands += 1
                return CommandOutcome("stale")
            if stamp_ns > self.awaiting_stamp_ns:
                self.counters.future_commands += 1
                return CommandOutcome("future")
        else:
            self._explicit = set()  # free-running: each message stands alone for mimic filling
        out = CommandOutcome("accepted")
        for name, value in zip(names, positions):
            lim = self.limits.get(name)
            if lim is None:
                out.unknown.append(name)
                if name not in self.reported_unknown:
                    self.reported_unknown.add(name)
                    out.new_unknown.append(name)
                continue
            value = float(value)
            if not math.isfinite(value):
                out.non_finite.append(name)
                continue
            used = min(max(value, lim[0]), lim[1])
            if used != value:
                out.clamped[name] = (value, used)
            out.applied[name] = used
        self.counters.unknown_entries += len(out.unknown)
        self.counters.non_finite_entries += len(out.non_finite)
        self.counters.clamped_entries += len(out.clamped)
        self.targets.update(out.applied)
        self._explicit.update(out.applied)
        for follower, (leader, multiplier, offset) in self.mimic.items():
            if leader in out.applied and follower not in self._explicit:
                lo, hi = self.limits[follower]
                self.targets[follower] = min(max(multiplier * out.applied[leader] + offset, lo), hi)
        self.covered.update(out.applied)
        return out


def status_values(*, task: str, episode: int, tick: int, global_tick: int, stamp_ns: int, success: bool,
                  progress: float, subtasks: dict, counters: dict, placement_index, failure: str | None,
                  stopped: bool, mode: str) -> tuple[str, list[tuple[str, str]]]:
    """(message, key/value text pairs) of ``/egovla/task_status``; message is running, success or failed."""
    message = "failed" if failure else ("success" if success else "running")
    values = [("success", "1" if success else "0"), ("progress", f"{float(progress):.6g}")]
    values += [(str(k), f"{float(v):.6g}") for k, v in subtasks.items()]
    values += [("episode", str(episode)), ("tick", str(tick)), ("global_tick", str(global_tick)),
               ("stamp_ns", str(stamp_ns)), ("missed_ticks", str(counters.get("missed_ticks", 0))),
               ("stale_commands", str(counters.get("stale_commands", 0))),
               ("placement_index", "" if placement_index is None else str(placement_index)),
               ("mode", mode), ("stopped", "1" if stopped else "0"), ("failure", failure or "")]
    return message, values


def camera_matrices(fx: float, fy: float, cx: float, cy: float) -> tuple[list[float], list[float], list[float]]:
    """K (3x3), R (3x3), P (3x4) row-major, for an undistorted pinhole camera."""
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return k, r, p


def check_image_size(width: int, height: int):
    """The render must keep the benchmark camera's 16:9 aspect (MuJoCo's square pixels, vertical field of view)."""
    if not (16 <= width <= 4096 and 9 <= height <= 2304):
        raise ValueError(f"image size {width}x{height} out of range (16..4096 x 9..2304)")
    if width * 9 != height * 16:
        raise ValueError(f"image size {width}x{height} is not 16:9 like the benchmark camera (1280x720); "
                         f"use e.g. 640x360 or 128x72")


def default_required_joints(robot) -> list[str]:
    """Arms (7 per side) and the hands' independent joints (6 per side): what the IK and retarget nodes send."""
    names = []
    for side in ("left", "right"):
        s = robot.side(side)
        names += list(s.arm_joints)
        names += [n for n in s.hand_joints if robot.joint(n).mimic is None]
    return names


def mimic_table(robot, joint_names) -> dict[str, tuple[str, float, float]]:
    """follower -> (leader, multiplier, offset) for the mimic joints among ``joint_names``."""
    present = set(joint_names)
    out = {}
    for n in robot.mimic_joint_names:
        m = robot.joint(n).mimic
        if n in present and m.joint in present:
            out[n] = (m.joint, float(m.multiplier), float(m.offset))
    return out
