"""The safety layer between the controllers (arm IK, hand retargeting) and ``/joint_command``.

Plain Python + numpy, no rclpy: the ROS node (or the IK / retarget node that embeds it) only feeds it commands,
heartbeats and the clock, and publishes what comes out. All angles are radians, all times seconds, all
velocities rad/s.

``SafetyFilter(robot, config)`` keeps the *last safe targets* for every joint it is responsible for (its scope:
the independent joints of ``config.groups``, by default both arms and both hands) and, per call of
``filter(targets, now_s)``, applies these rules in this order:

1. Before ``initialise(measured_positions)`` there is no pose to hold: state ``"no_targets_yet"``, nothing comes
   out (``targets`` is empty) and the command is counted as ignored.
2. Watchdog: every source in ``config.stale_after_s`` (default ``camera`` and ``policy``, 0.2 s) must have sent a
   ``heartbeat`` within its time. If one is silent longer, the state is ``"hold"`` (reason e.g. ``"policy silent for
   0.31 s"``) and the output is the hold pose -- the last safe targets -- whatever the input. The watchdog clock
   starts at ``initialise``: a source never heard counts as silent since then.
3. Names: unknown names are dropped and listed; names of robot joints outside the scope (legs, torso, fixed
   joints) are dropped and listed as ``not_commandable``; mimic joints (the Inspire fingers' intermediate and
   distal joints) are dropped and listed as ``ignored_mimic`` -- they are not degrees of freedom, their value
   always follows the leader (``fill_mimic`` writes them into the output from the *safe* leader value, as the
   MuJoCo twin drives all 12 joints of a hand; turn it off for hardware, which takes the 6 actuated joints).
   The known joints of the same command still pass.
4. Non-finite values (NaN, +-Inf, or not a number at all) anywhere in the command reject the WHOLE command: a
   partly broken command means the producer is broken. The last safe targets are held (this is not a watchdog
   hold; the next good command is used normally).
5. Position limits: each target is clamped into ``[lower + margin, upper - margin]`` of the robot description
   (margin ``limit_margin_rad`` for arm joints, ``hand_limit_margin_rad`` for hand joints); clamped joints and the
   amount (commanded minus clamped, rad) are reported; ``beyond_limits`` lists those commanded past the URDF
   limit itself (not merely into the margin), which is what the diagnostics warn about.
6. Velocity: per group (one arm, one hand) the step from the last safe target is scaled down as a whole, keeping
   its direction in joint space (as Unitree's ``clip_arm_q_target`` does), so that no joint moves more than
   ``cap * dt``. ``dt`` is the time (``tick_s``: the commands' own time, e.g. sim time; default the clock
   ``now_s``) since that group last moved, bounded to ``[0, 2 / control_hz]``: a pause in
   the commands (or the clock) never allows a jump, and a clock going backwards allows no motion.
   ``cap`` = min(joint's URDF velocity limit x ``max_velocity_scale``, the group cap ``max_arm_velocity_rad_s`` /
   ``max_hand_velocity_rad_s``). After ``initialise`` and after every watchdog hold the cap is further scaled
   by the resume ramp ``min(1, elapsed / resume_ramp_s)``, where ``elapsed`` counts from one control period
   before the first fresh tick (so tick k after resuming may move k / (resume_ramp_s * control_hz) of the cap).

``state(now_s)``, ``diagnostics(now_s)`` (``diagnostic_msgs/DiagnosticStatus``-shaped dicts) and ``counters``
(totals since construction, for the evaluator) report what happened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

STATE_OK = "ok"
STATE_HOLD = "hold"
STATE_NO_TARGETS = "no_targets_yet"

# diagnostic_msgs/DiagnosticStatus levels
DIAG_OK, DIAG_WARN, DIAG_ERROR = 0, 1, 2

COUNTER_NAMES = (
    "commands",                  # calls of filter()
    "commands_applied",          # commands whose (valid part) moved the targets
    "commands_rejected_non_finite",
    "commands_held_watchdog",    # commands ignored because a source was stale
    "commands_before_initialise",
    "commands_clamped",          # commands with at least one joint clamped (into the margin included)
    "commands_beyond_limits",    # commands with at least one joint beyond its URDF limits (not just the margin)
    "commands_velocity_limited",  # commands with at least one group slowed down (the ramp included)
    "clamped_joint_values",      # clamped joint values, summed over commands
    "unknown_names",             # unknown joint names, summed over commands
    "not_commandable_names",     # robot joints outside the scope (legs, torso, fixed), summed
    "ignored_mimic_names",       # mimic joints in commands, summed
    "watchdog_holds",            # transitions into the watchdog hold
    "watchdog_resumes",          # transitions out of it
    "clock_jumps_back",          # now_s smaller than at the previous call
)


class SafetyConfigError(ValueError):
    """A safety parameter is invalid; the message names it, its value and the valid range."""


@dataclass
class SafetyConfig:
    """Parameters of the safety layer (radians, seconds). The defaults and why they are what they are:
    ``docs/ros_nodes.md``, section "Safety layer"."""

    limit_margin_rad: float = 0.01        # arm targets stay this far inside the URDF position limits
    hand_limit_margin_rad: float = 0.0    # the same for hand joints: their range ends are the open/closed commands
    max_velocity_scale: float = 1.0       # fraction of each joint's URDF velocity limit allowed
    max_arm_velocity_rad_s: float = 2.0   # cap for arm joints (URDF: 9 to 31.4 rad/s)
    max_hand_velocity_rad_s: float = 4.0  # cap for hand joints (URDF: 0.5 rad/s, see use_urdf_hand_velocity)
    use_urdf_hand_velocity: bool = False  # the Inspire URDF's 0.5 rad/s is a placeholder; True applies it anyway
    control_hz: float = 30.0
    stale_after_s: dict[str, float] = field(default_factory=lambda: {"camera": 0.2, "policy": 0.2})
    resume_ramp_s: float = 0.5            # after initialise() and after a hold, the cap ramps up over this time
    groups: tuple[str, ...] = ("left_arm", "right_arm", "left_hand", "right_hand")
    fill_mimic: bool = True               # output mimic joints from their (safe) leaders

    def validate(self) -> None:
        def positive(name, value):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise SafetyConfigError(f"{name} must be a positive finite number, got {value!r}")

        for name in ("limit_margin_rad", "hand_limit_margin_rad"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 0.5):
                raise SafetyConfigError(f"{name} must be in [0, 0.5) rad, got {value!r}")
        positive("max_velocity_scale", self.max_velocity_scale)
        if self.max_velocity_scale > 1.0:
            raise SafetyConfigError(f"max_velocity_scale must be in (0, 1] (a fraction of the URDF velocity "
                                    f"limit), got {self.max_velocity_scale!r}")
        positive("max_arm_velocity_rad_s", self.max_arm_velocity_rad_s)
        positive("max_hand_velocity_rad_s", self.max_hand_velocity_rad_s)
        positive("control_hz", self.control_hz)
        if not (isinstance(self.resume_ramp_s, (int, float)) and math.isfinite(self.resume_ramp_s)
                and self.resume_ramp_s >= 0):
            raise SafetyConfigError(f"resume_ramp_s must be >= 0 s (0 = no ramp), got {self.resume_ramp_s!r}")
        if not isinstance(self.stale_after_s, Mapping):
            raise SafetyConfigError(f"stale_after_s must map source names to seconds, got {self.stale_after_s!r}")
        for source, seconds in self.stale_after_s.items():
            if not isinstance(source, str) or not source:
                raise SafetyConfigError(f"stale_after_s: source names must be non-empty strings, got {source!r}")
            positive(f"stale_after_s[{source!r}]", seconds)
            if seconds < 1.0 / self.control_hz:
                raise SafetyConfigError(f"stale_after_s[{source!r}] = {seconds} s is shorter than one control "
                                        f"period (1/{self.control_hz} s): every tick would hold")
        if not self.groups or len(set(self.groups)) != len(self.groups):
            raise SafetyConfigError(f"groups must be a non-empty list of distinct group names, got {self.groups!r}")


@dataclass
class SafetyResult:
    """What ``SafetyFilter.filter`` decided for one command. Angles in radians."""

    targets: dict[str, float]        # safe position targets: every joint in scope (+ mimic followers); {} before
    state: str                       # "ok", "hold" or "no_targets_yet"
    accepted: bool                   # the command (its valid part) was used
    reason: str = ""                 # why it was not used (hold, non-finite, not initialised)
    unknown_names: tuple[str, ...] = ()
    not_commandable: tuple[str, ...] = ()   # robot joints outside the scope: legs, torso, fixed joints
    ignored_mimic: tuple[str, ...] = ()     # mimic joints: they follow their leader
    non_finite: tuple[str, ...] = ()        # names whose value was NaN/Inf/not a number (whole command rejected)
    clamped: dict[str, float] = field(default_factory=dict)  # name -> commanded - clamped (rad)
    beyond_limits: tuple[str, ...] = ()     # clamped joints commanded beyond the URDF limit itself (not the margin)
    velocity_limited: tuple[str, ...] = ()  # joints whose step was shortened this tick (ramp included)

    @property
    def events(self) -> list[str]:
        """One line per thing worth logging (empty when the command passed untouched)."""
        out = []
        if self.reason:
            out.append(self.reason)
        if self.unknown_names:
            out.append(f"unknown joint names ignored: {', '.join(self.unknown_names)}")
        if self.not_commandable:
            out.append(f"joints outside the safety scope ignored: {', '.join(self.not_commandable)}")
        if self.ignored_mimic:
            out.append(f"mimic joints ignored (they follow their leader): {', '.join(self.ignored_mimic)}")
        if self.clamped:
            out.append("clamped to limits: " + ", ".join(f"{n} by {d:+.4f} rad" for n, d in self.clamped.items()))
        if self.velocity_limited:
            out.append(f"velocity limited: {', '.join(self.velocity_limited)}")
        return out


class SafetyFilter:
    """Clamps limits and velocities of joint position targets and holds the last safe targets on stale or
    non-finite input. See the module docstring for the rules; radians and seconds throughout."""

    def __init__(self, robot, config: SafetyConfig | None = None):
        self.robot = robot
        self.config = config if config is not None else SafetyConfig()
        self.config.validate()
        cfg = self.config
        arm_joints = {n for s in robot.sides.values() for n in s.arm_joints}
        hand_joints = {n for s in robot.sides.values() for n in s.hand_joints}
        fixed = set(robot.fixed_in_benchmark)

        self.joint_names: tuple[str, ...] = ()     # commandable joints (scope), in group order
        self._group_slices: list[tuple[str, slice]] = []
        names: list[str] = []
        for group in cfg.groups:
            if group not in robot.groups:
                raise SafetyConfigError(f"groups: robot {robot.name!r} has no joint group {group!r}; "
                                        f"groups: {sorted(robot.groups)}")
            members = [n for n in robot.groups[group]
                       if not robot.joint(n).is_fixed and robot.joint(n).mimic is None and n not in fixed]
            outside = [n for n in members if n not in arm_joints and n not in hand_joints]
            if outside:
                raise SafetyConfigError(f"groups: {group!r} has joints that are neither arm nor hand joints "
                                        f"({', '.join(outside)}); the safety layer caps arms and hands only")
            start = len(names)
            names.extend(n for n in members if n not in names)
            self._group_slices.append((group, slice(start, len(names))))
        self.joint_names = tuple(names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}

        margin = np.array([cfg.limit_margin_rad if n in arm_joints else cfg.hand_limit_margin_rad
                           for n in self.joint_names])
        self.margin_rad = margin
        lower, upper = robot.limits(self.joint_names)
        narrow = [n for n, lo, hi, m in zip(self.joint_names, lower, upper, margin) if hi - lo <= 2 * m]
        if narrow:
            raise SafetyConfigError(f"limit margin ({cfg.limit_margin_rad} arm, {cfg.hand_limit_margin_rad} hand) "
                                    f"leaves no room for {', '.join(narrow)} (position range <= 2 x margin)")
        self.lower_rad = lower + margin
        self.upper_rad = upper - margin
        urdf_velocity = np.array([robot.joint(n).limit.velocity for n in self.joint_names])
        caps = []
        for n, v in zip(self.joint_names, urdf_velocity):
            if n in arm_joints:
                caps.append(min(cfg.max_arm_velocity_rad_s, cfg.max_velocity_scale * v))
            elif cfg.use_urdf_hand_velocity:
                caps.append(min(cfg.max_hand_velocity_rad_s, cfg.max_velocity_scale * v))
            else:
                caps.append(cfg.max_hand_velocity_rad_s * cfg.max_velocity_scale)
        self.velocity_cap_rad_s = np.array(caps)
        self._mimics = [(j.name, self._index[j.mimic.joint], j.mimic.multiplier, j.mimic.offset,
                         j.limit.lower, j.limit.upper)
                        for j in robot.joints if j.mimic is not None and j.mimic.joint in self._index]
        self._mimic_names = set(robot.mimic_joint_names)

        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._safe: np.ndarray | None = None          # last safe targets (rad), None before initialise
        self._group_time_s: dict[str, float | None] = {g: None for g, _ in self._group_slices}
        self._last_now_s: float | None = None
        self._init_time_s: float | None = None
        self._heartbeat_s: dict[str, float | None] = dict.fromkeys(cfg.stale_after_s, None)
        self._heartbeat_count: dict[str, int] = dict.fromkeys(cfg.stale_after_s, 0)
        self._holding = False
        self._ramp_start_s: float | None = None       # first fresh tick after initialise or a hold
        self._ramp_pending = False
        self._last_result: SafetyResult | None = None

    # -- inputs -------------------------------------------------------------------------------------------
    def initialise(self, positions: Mapping[str, float], now_s: float | None = None) -> dict[str, float]:
        """Set the hold pose to the robot's measured joint positions (rad), e.g. from ``/joint_states``.

        Names outside the scope are ignored; every joint in scope must be present and finite (ValueError
        otherwise). Positions outside the safe range are clamped into it; the clamps are returned (name ->
        measured - clamped, rad). ``now_s`` starts the watchdog clock (defaults to the first ``filter`` call).
        Can be called again (e.g. after an episode reset); counters are kept. Motion after it ramps up."""
        missing = [n for n in self.joint_names if n not in positions]
        if missing:
            raise ValueError(f"initialise: no measured position for {', '.join(missing)}; pass every joint of "
                             f"the safety scope (e.g. the whole /joint_states)")
        values = []
        for n in self.joint_names:
            v = _as_float(positions[n])
            if v is None:
                raise ValueError(f"initialise: measured position of {n} is {positions[n]!r}, not a finite number")
            values.append(v)
        measured = np.array(values)
        self._safe = np.clip(measured, self.lower_rad, self.upper_rad)
        clamps = {n: float(d) for n, d in zip(self.joint_names, measured - self._safe) if d != 0.0}
        self._group_time_s = {g: None for g in self._group_time_s}
        self._init_time_s = now_s
        self._heartbeat_s = dict.fromkeys(self._heartbeat_s, None)
        self._holding = False
        self._ramp_start_s = None
        self._ramp_pending = True
        return clamps

    def heartbeat(self, source: str, now_s: float) -> None:
        """Source ``source`` (one of ``config.stale_after_s``) is alive at ``now_s`` (s)."""
        if source not in self._heartbeat_s:
            raise KeyError(f"unknown heartbeat source {source!r}; registered sources (config.stale_after_s): "
                           f"{sorted(self._heartbeat_s)}")
        self._heartbeat_s[source] = float(now_s)
        self._heartbeat_count[source] += 1

    # -- state ----------------------------------------------------------------------------------------------
    def _silence_s(self, source: str, now_s: float) -> float | None:
        """Seconds since ``source`` was last heard (or since initialise if never); None if unknown yet."""
        last = self._heartbeat_s[source]
        if last is None:
            last = self._init_time_s
        return None if last is None else now_s - last

    def stale_sources(self, now_s: float) -> dict[str, float]:
        """Sources silent longer than their ``stale_after_s``: name -> seconds of silence."""
        out = {}
        for source, limit in self.config.stale_after_s.items():
            silence = self._silence_s(source, now_s)
            if silence is not None and silence > limit:
                out[source] = silence
        return out

    def _hold_reason(self, now_s: float) -> str:
        parts = []
        for source, silence in self.stale_sources(now_s).items():
            never = self._heartbeat_s[source] is None
            parts.append(f"{source} never heard ({silence:.2f} s since initialise)" if never
                         else f"{source} silent for {silence:.2f} s")
        return "; ".join(parts)

    def state(self, now_s: float) -> str:
        """``"no_targets_yet"`` before ``initialise``, ``"hold"`` while a source is stale, else ``"ok"``."""
        if self._safe is None:
            return STATE_NO_TARGETS
        return STATE_HOLD if self.stale_sources(now_s) else STATE_OK

    @property
    def hold_pose(self) -> dict[str, float]:
        """The last safe targets (rad) for the joints in scope, plus mimic followers if ``fill_mimic``."""
        return {} if self._safe is None else self._output()

    # -- the filter ----------------------------------------------------------------------------------------
    def filter(self, targets: Mapping[str, float], now_s: float, tick_s: float | None = None) -> SafetyResult:
        """Safe position targets (rad) for a command ``targets`` (name -> rad, any subset) at time ``now_s`` (s).

        ``tick_s``: the time the command is for (e.g. its stamp in simulated time), which paces the motion: the
        velocity caps and the resume ramp. Default ``now_s``. A lockstep simulation passes its sim time here and
        wall time as ``now_s`` (the watchdog), so how far a joint may move per tick does not depend on how fast
        the machine runs the ticks."""
        now_s = float(now_s)
        motion_s = now_s if tick_s is None else float(tick_s)
        c = self.counters
        c["commands"] += 1
        if self._last_now_s is not None and now_s < self._last_now_s:
            c["clock_jumps_back"] += 1
        self._last_now_s = now_s

        if self._safe is None:
            c["commands_before_initialise"] += 1
            return self._remember(SafetyResult({}, STATE_NO_TARGETS, False,
                                               "no hold pose yet: call initialise() with the measured positions"))
        if self._init_time_s is None:
            self._init_time_s = now_s

        stale = self.stale_sources(now_s)
        if stale:
            if not self._holding:
                c["watchdog_holds"] += 1
                self._holding = True
            c["commands_held_watchdog"] += 1
            # the time the groups stood still counts for nothing: after the hold, dt starts from the resume
            self._group_time_s = dict.fromkeys(self._group_time_s, motion_s)
            return self._remember(SafetyResult(self._output(), STATE_HOLD, False, "hold: " + self._hold_reason(now_s)))
        if self._holding:
            c["watchdog_resumes"] += 1
            self._holding = False
            self._ramp_pending = True
        if self._ramp_pending:
            self._ramp_start_s = motion_s
            self._ramp_pending = False

        # sort the names
        unknown, outside, mimic, non_finite = [], [], [], []
        wanted: dict[int, float] = {}
        for name, raw in targets.items():
            value = _as_float(raw)
            if value is None:
                non_finite.append(name)
            if name in self._index:
                if value is not None:
                    wanted[self._index[name]] = value
            elif name in self._mimic_names:
                mimic.append(name)
            elif name in self.robot.joint_map:
                outside.append(name)
            else:
                unknown.append(name)
        c["unknown_names"] += len(unknown)
        c["not_commandable_names"] += len(outside)
        c["ignored_mimic_names"] += len(mimic)
        names_kw = dict(unknown_names=tuple(unknown), not_commandable=tuple(outside), ignored_mimic=tuple(mimic))
        if non_finite:
            c["commands_rejected_non_finite"] += 1
            return self._remember(SafetyResult(
                self._output(), STATE_OK, False,
                f"command rejected, last safe targets held: non-finite value for {', '.join(non_finite)}",
                non_finite=tuple(non_finite), **names_kw))

        # position limits
        goal = self._safe.copy()
        clamped = {}
        for i, value in wanted.items():
            safe = min(max(value, self.lower_rad[i]), self.upper_rad[i])
            if safe != value:
                clamped[self.joint_names[i]] = value - safe
            goal[i] = safe
        beyond = tuple(n for n, d in clamped.items() if abs(d) > self.margin_rad[self._index[n]] + 1e-12)
        if clamped:
            c["commands_clamped"] += 1
            c["clamped_joint_values"] += len(clamped)
        if beyond:
            c["commands_beyond_limits"] += 1

        # velocity, per group, the whole step scaled to keep its direction
        ramp = 1.0
        if self._ramp_start_s is not None and self.config.resume_ramp_s > 0:
            elapsed = motion_s - self._ramp_start_s + 1.0 / self.config.control_hz
            ramp = min(1.0, max(elapsed, 0.0) / self.config.resume_ramp_s)
            if ramp >= 1.0:
                self._ramp_start_s = None
        limited: list[str] = []
        touched = set(wanted)
        max_dt = 2.0 / self.config.control_hz
        for group, sl in self._group_slices:
            idx = range(sl.start, sl.stop)
            if not touched.intersection(idx):
                continue
            last = self._group_time_s[group]
            dt = 1.0 / self.config.control_hz if last is None else min(max(motion_s - last, 0.0), max_dt)
            self._group_time_s[group] = motion_s
            step = goal[sl] - self._safe[sl]
            allowed = self.velocity_cap_rad_s[sl] * dt * ramp
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(step != 0.0, np.abs(step) / allowed, 0.0)
            worst = float(np.max(ratio)) if ratio.size else 0.0
            if worst > 1.0 + 1e-9:
                step = step / worst if math.isfinite(worst) else np.zeros_like(step)
                limited.extend(self.joint_names[i] for i in idx if goal[i] != self._safe[i])
                goal[sl] = self._safe[sl] + step
        if limited:
            c["commands_velocity_limited"] += 1
        self._safe = goal
        c["commands_applied"] += 1
        return self._remember(SafetyResult(self._output(), STATE_OK, True, clamped=clamped, beyond_limits=beyond,
                                           velocity_limited=tuple(limited), **names_kw))

    # -- reporting -----------------------------------------------------------------------------------------
    def diagnostics(self, now_s: float) -> list[dict]:
        """``diagnostic_msgs/DiagnosticStatus``-shaped dicts: ``level`` (0 OK, 1 WARN, 2 ERROR), ``name``,
        ``message``, ``values`` (list of (key, value) string pairs). One status for the state, one for the
        commands (counters), one per heartbeat source."""
        state = self.state(now_s)
        if state == STATE_NO_TARGETS:
            level, message = DIAG_WARN, "waiting for the measured pose (initialise)"
        elif state == STATE_HOLD:
            level, message = DIAG_ERROR, "hold: " + self._hold_reason(now_s)
        else:
            level, message = DIAG_OK, "ok"
        out = [_status(level, "safety: state", message, [("state", state)])]

        last = self._last_result
        if last is None:
            level, message = DIAG_OK, "no command yet"
        elif last.non_finite:
            level, message = DIAG_ERROR, last.reason
        elif last.unknown_names or last.not_commandable or last.beyond_limits:
            # targets inside the URDF limits but in the margin (a fully open hand) are routine: not a warning
            level, message = DIAG_WARN, "; ".join(e for e in last.events if not e.startswith("velocity"))
        else:
            level, message = DIAG_OK, "last command: " + ("held" if last.state == STATE_HOLD else
                                                          "applied" if last.accepted else last.reason)
        out.append(_status(level, "safety: commands", message, sorted(self.counters.items())))

        for source, limit in self.config.stale_after_s.items():
            silence = self._silence_s(source, now_s)
            last_s = self._heartbeat_s[source]
            if silence is None:
                level, message = DIAG_WARN, "watchdog not started (no initialise yet)"
            elif silence > limit:
                level, message = DIAG_ERROR, (f"silent for {silence:.2f} s (limit {limit} s)" if last_s is not None
                                              else f"never heard ({silence:.2f} s since initialise)")
            else:
                level, message = DIAG_OK, f"fresh ({silence:.3f} s ago)"
            out.append(_status(level, f"safety: source {source}", message, [
                ("seconds_since_heartbeat", "" if silence is None else f"{silence:.3f}"),
                ("stale_after_s", f"{limit}"),
                ("heartbeats", self._heartbeat_count[source]),
            ]))
        return out

    # -- helpers -------------------------------------------------------------------------------------------
    def _output(self) -> dict[str, float]:
        out = {n: float(v) for n, v in zip(self.joint_names, self._safe)}
        if self.config.fill_mimic:
            for name, leader, mult, offset, lo, hi in self._mimics:
                out[name] = float(min(max(mult * self._safe[leader] + offset, lo), hi))
        return out

    def _remember(self, result: SafetyResult) -> SafetyResult:
        self._last_result = result
        return result


def _as_float(value) -> float | None:
    """``value`` as a finite float, or None (NaN, Inf, None, strings, booleans: anything not a real number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _status(level: int, name: str, message: str, values) -> dict:
    return {"level": level, "name": name, "message": message,
            "values": [(str(k), str(v)) for k, v in values]}
