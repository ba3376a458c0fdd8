"""Arm inverse kinematics with Pinocchio: hand-base pose targets -> arm joint angles, both arms in one call.

The solver is a damped least-squares (Levenberg-Marquardt) iteration on the 6-D pose error
``log6(T_current^-1 T_target)`` with the local-frame Jacobian of the end-effector link:

- damping adapts: it shrinks after a step that lowers the error and grows after one that does not (that step
  is undone), so the solver takes Gauss-Newton steps near a solution and gradient-like steps near singularities;
- joint limits are hard: the configuration is clipped after every step, and a joint resting at a limit that the
  step would push further out is removed from that step's Jacobian (an active set), so the other joints take
  over instead of stalling;
- a posture term pulls the joints toward a nominal posture inside the null space of the task (the arm has 7
  joints for a 6-D task), which keeps the elbow where a person expects it without biasing the hand;
- when a solve stalls before the tolerance, it restarts from deterministic perturbations of the seed and then
  from seeded random configurations; the best configuration seen is returned either way.

Two modes: ``solve`` iterates to convergence (warm-started from the current joints) and ``step`` takes one
damped step, as Isaac Lab's differential IK does once per 30 Hz control tick. Neither ever returns NaN or a
value outside the joint limits: a NaN target or seed yields the (clipped) current joints and a status saying why.

Joints are resolved by name from the robot table (a side's ``arm_group``); nothing assumes 7 joints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin
from scipy.linalg import lapack

from .kinematics import build_pinocchio_model
from .robot import HEAD_CAMERA_OPTICAL_FRAME, RobotDescription, load_robot

_LOCAL = pin.ReferenceFrame.LOCAL
_dgesv = lapack.dgesv
_EYE6 = np.eye(6)
_EYE6_TINY = 1e-9 * np.eye(6)


@dataclass
class IKConfig:
    """Parameters of the arm IK (``config/ik.yaml``)."""

    position_tolerance_m: float = 1e-4  # converged when both errors are below their tolerance
    rotation_tolerance_rad: float = 1e-3
    max_iterations: int = 60  # per attempt
    stall_iterations: int = 6  # an attempt ends after this many steps without 0.1 % progress
    restarts: int = 8  # extra attempts after a stall: 3 near the seed, then seeded random configurations
    initial_damping: float = 1e-4  # Levenberg-Marquardt damping (m^2), adapted during a solve: /3 after a step
    min_damping: float = 1e-9  # that lowers the error (down to min_damping), x5 after one that does not
    step_damping: float = 1e-3  # fixed damping of a single step (mode "step")
    posture_gain: float = 0.05  # fraction of the null-space posture error removed per solve (or per step)
    max_posture_step_rad: float = 0.01  # at most this much posture motion per solve (the hand moves ~ its square)
    rotation_weight: float = 0.3  # metres of position error worth one radian of rotation error (closest-pose metric)
    max_step_rad: float = 0.5  # largest joint change in one iteration
    limit_zone_rad: float = 0.1  # joints closer than this to a limit they move toward are used less
    seed: int = 0  # random restarts are deterministic

    def validate(self):
        for name in ("position_tolerance_m", "rotation_tolerance_rad", "initial_damping", "min_damping",
                     "step_damping", "rotation_weight", "max_step_rad", "limit_zone_rad", "max_posture_step_rad"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if not 0 <= self.posture_gain < 1:
            raise ValueError(f"posture_gain must be in [0, 1), got {self.posture_gain}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        if self.restarts < 0 or self.stall_iterations < 1:
            raise ValueError(f"restarts must be >= 0 and stall_iterations >= 1, got {self.restarts}, "
                             f"{self.stall_iterations}")


@dataclass
class ArmIKResult:
    """Outcome of one arm's IK. ``q`` is always finite and within the joint limits."""

    joint_names: tuple[str, ...]
    q: np.ndarray
    converged: bool  # both residuals below tolerance
    position_error_m: float
    rotation_error_rad: float
    iterations: int
    status: str  # "converged", "not_converged" (closest pose found), "stepped", "invalid_target", "invalid_seed"

    @property
    def reachable(self) -> bool:
        """The target was reached to tolerance (an unreachable or invalid target gives False)."""
        return self.converged

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.joint_names, self.q.tolist()))


class ArmIK:
    """IK for one arm: the joints of ``side``'s arm group, to its end-effector link, in its arm base frame."""

    def __init__(self, robot: RobotDescription | None = None, side: str = "left", config: IKConfig | None = None,
                 nominal: Mapping[str, float] | None = None):
        self.robot = robot or load_robot()
        self.config = config or IKConfig()
        self.config.validate()
        spec = self.robot.side(side)
        self.side = side
        full = build_pinocchio_model(self.robot)
        keep = set(spec.arm_joints)
        missing = keep - set(full.names)
        if missing:
            raise ValueError(f"{side} arm joints not movable in the model: {sorted(missing)}")
        lock = [full.getJointId(n) for n in full.names[1:] if n not in keep]
        q_ref = pin.neutral(full)
        for n, v in self.robot.initial_pose.items():
            if n in full.names and n not in keep:
                q_ref[full.joints[full.getJointId(n)].idx_q] = v
        self.model = pin.buildReducedModel(full, lock, q_ref)
        self.data = self.model.createData()
        self.joint_names = tuple(self.model.names[i] for i in range(1, self.model.njoints))
        self.nq = self.model.nq
        self.lower = self.model.lowerPositionLimit.copy()
        self.upper = self.model.upperPositionLimit.copy()
        self.ee_frame = self.model.getFrameId(spec.end_effector_link)
        pin.framesForwardKinematics(self.model, self.data, pin.neutral(self.model))
        t_world_base = self.data.oMf[self.model.getFrameId(spec.arm_base_link)].copy()
        self._base_is_world = t_world_base.isIdentity(1e-12)
        self._t_world_base = t_world_base
        self.T_base_camera = (t_world_base.actInv(self.data.oMf[self.model.getFrameId(HEAD_CAMERA_OPTICAL_FRAME)])
                              ).homogeneous.copy()
        posture = dict(self.robot.initial_pose)
        posture.update(nominal or {})
        self.nominal = np.clip(np.array([posture.get(n, 0.0) for n in self.joint_names]), self.lower, self.upper)
        self._weights = np.array([1.0, 1.0, 1.0] + [self.config.rotation_weight] * 3)
        self._row_weights = self._weights[:, None]
        self.max_step = self.config.max_step_rad
        self.max_posture_step = self.config.max_posture_step_rad
        self.limit_zone = self.config.limit_zone_rad
        self._inv_zone = 1.0 / self.config.limit_zone_rad
        self._rng = np.random.default_rng(self.config.seed)

    def reseed(self, seed: int | None = None):
        """Restart the random restarts' sequence (``config.seed`` by default), so results do not depend on what
        was solved before (e.g. per episode)."""
        self._rng = np.random.default_rng(self.config.seed if seed is None else seed)

    # -- helpers --------------------------------------------------------------------------------------------
    def forward(self, q: np.ndarray) -> np.ndarray:
        """End-effector pose (4x4) in the arm base frame at arm configuration ``q``."""
        pin.forwardKinematics(self.model, self.data, q)
        t = pin.updateFramePlacement(self.model, self.data, self.ee_frame)
        return (t if self._base_is_world else self._t_world_base.actInv(t)).homogeneous.copy()

    def _target_se3(self, target) -> pin.SE3 | None:
        """The target as an SE3 in the model's world frame, or None if it is not a finite rigid transform."""
        t = np.asarray(target, dtype=float)
        if t.shape != (4, 4):
            return None
        (a, b, c, x), (d, e, f, y), (g, h, i, z), _ = t.tolist()
        det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
        # Finite (NaN and inf fail every comparison), a proper rotation, and orthonormal rows.
        if not (abs(det - 1.0) < 1e-6 and abs(x) < 1e6 and abs(y) < 1e6 and abs(z) < 1e6
                and abs(a * a + b * b + c * c - 1.0) < 1e-6 and abs(d * d + e * e + f * f - 1.0) < 1e-6
                and abs(a * d + b * e + c * f) < 1e-6):
            return None
        se3 = pin.SE3(t)
        return se3 if self._base_is_world else self._t_world_base * se3

    def _seed(self, q_init) -> tuple[np.ndarray, bool]:
        if q_init is None:
            return self.nominal.copy(), True
        q = np.asarray(q_init, dtype=float).reshape(-1)
        if q.shape != (self.nq,) or not math.isfinite(q.sum()):
            return self.nominal.copy(), False
        return np.minimum(np.maximum(q, self.lower), self.upper), True

    def _residual(self, q, target):
        pin.computeJointJacobians(self.model, self.data, q)
        err = pin.log6(pin.updateFramePlacement(self.model, self.data, self.ee_frame).actInv(target)).vector
        return err

    def _result(self, q, target, iterations, status, evaluated: bool = False):
        """Result with the true residuals at ``q``: Euclidean position error and rotation angle.

        ``evaluated``: the model data already hold the kinematics at ``q`` (the last residual was taken there).
        """
        if target is None:
            return ArmIKResult(self.joint_names, q, False, math.inf, math.inf, iterations, status)
        if not evaluated:
            pin.forwardKinematics(self.model, self.data, q)
            pin.updateFramePlacement(self.model, self.data, self.ee_frame)
        d = self.data.oMf[self.ee_frame].actInv(target)
        x, y, z = d.translation.tolist()
        a, b, c = pin.log3(d.rotation).tolist()
        pos, rot = math.sqrt(x * x + y * y + z * z), math.sqrt(a * a + b * b + c * c)
        converged = pos <= self.config.position_tolerance_m and rot <= self.config.rotation_tolerance_rad
        return ArmIKResult(self.joint_names, q, converged, pos, rot, iterations, status)

    def _delta(self, q, jac, err, damping, posture_gain):
        """One damped least-squares step with the null-space posture term and joint-limit handling.

        Joints within ``limit_zone_rad`` of a limit that the step moves them toward get their Jacobian column
        scaled down in proportion to the remaining margin (weighted least norm), so the other joints take over
        the motion before the limit is hit; the result is then clipped to the limits.
        (Written for speed: this runs several times per arm per control tick.)
        """
        jw = jac * self._row_weights
        ew = err * self._weights
        gram = jw @ jw.T
        dq = _dgesv(gram + damping * _EYE6, ew)[2] @ jw
        if posture_gain:
            # Posture motion projected onto the task's null space. The projection uses (almost) no damping: a
            # damped projector would leak posture motion into the hand pose along weakly conditioned directions.
            z = posture_gain * (self.nominal - q)
            np.clip(z, -self.max_posture_step, self.max_posture_step, out=z)
            dq += z - _dgesv(gram + _EYE6_TINY, jw @ z)[2] @ jw
        lo, hi = self.lower, self.upper
        low, high = q - lo, hi - q
        zone = self.limit_zone
        if min(low.tolist()) < zone or min(high.tolist()) < zone:
            margin = np.where(dq < 0.0, low, high)
            if min(margin.tolist()) < zone:  # moving toward a near limit
                scale = np.minimum(np.maximum(margin * self._inv_zone, 1e-3), 1.0)
                js = jw * scale
                dq = scale * (_dgesv(js @ js.T + damping * _EYE6, ew)[2] @ js)
        steps = dq.tolist()
        big = max(max(steps), -min(steps))
        if big > self.max_step:
            dq *= self.max_step / big
        return np.minimum(np.maximum(q + dq, lo), hi)

    # -- public API ---------------------------------------------------------------------------------------
    def solve(self, target, q_init=None) -> ArmIKResult:
        """Iterate to convergence. ``target``: 4x4 pose of the end-effector link in the arm base frame."""
        q0, seed_ok = self._seed(q_init)
        t = self._target_se3(target)
        if t is None:
            return self._result(q0, None, 0, "invalid_target")
        cfg = self.config
        # The loop tests the log-map residual; 0.9 x the tolerance leaves room for its tiny difference from the
        # true position error and rotation angle that the result reports.
        tol_p2, tol_r2 = (0.9 * cfg.position_tolerance_m) ** 2, (0.9 * cfg.rotation_tolerance_rad) ** 2
        rot_w2 = cfg.rotation_weight ** 2
        best_q, best_cost = q0, math.inf
        total = 0
        q = q0
        for attempt in range(cfg.restarts + 1):
            damping = cfg.initial_damping
            accepted_cost = math.inf
            stall = 0
            q_acc = err_acc = jac = None
            for _ in range(cfg.max_iterations):
                total += 1
                err = self._residual(q, t)
                e0, e1, e2, e3, e4, e5 = err.tolist()
                ep = e0 * e0 + e1 * e1 + e2 * e2
                er = e3 * e3 + e4 * e4 + e5 * e5
                # The first step of a solve always runs, so the posture term acts even on a target already held.
                if ep < tol_p2 and er < tol_r2 and total > 1:
                    return self._result(q, t, total, "converged" if seed_ok else "invalid_seed", evaluated=True)
                cost = ep + rot_w2 * er
                if cost < best_cost:
                    best_q, best_cost = q, cost
                if cost < accepted_cost:
                    stall = stall + 1 if accepted_cost - cost < 1e-3 * accepted_cost else 0
                    damping = max(damping / 3.0, cfg.min_damping)
                    accepted_cost, q_acc, err_acc = cost, q, err
                    jac = pin.getFrameJacobian(self.model, self.data, self.ee_frame, _LOCAL)
                else:
                    damping *= 5.0
                    q, err = q_acc, err_acc
                    stall += 1
                if stall > cfg.stall_iterations:
                    break
                # The posture term moves the arm in the task's null space only to first order, so it acts once per
                # solve (the first step from the warm start): over successive control ticks the arm drifts toward
                # the nominal posture, while each solve still converges like plain Gauss-Newton.
                q = self._delta(q, jac, err, damping, cfg.posture_gain if total == 1 else 0.0)
            if attempt < 3:
                q = np.clip(q0 + self._rng.normal(0.0, 0.25 * (attempt + 1), self.nq), self.lower, self.upper)
            else:
                q = self._rng.uniform(self.lower, self.upper)
        result = self._result(best_q, t, total, "not_converged" if seed_ok else "invalid_seed")
        return result

    def step(self, target, q_current) -> ArmIKResult:
        """One damped least-squares step from ``q_current`` toward ``target`` (residuals are after the step)."""
        q0, seed_ok = self._seed(q_current)
        t = self._target_se3(target)
        if t is None:
            return self._result(q0, None, 0, "invalid_target")
        err = self._residual(q0, t)
        jac = pin.getFrameJacobian(self.model, self.data, self.ee_frame, _LOCAL)
        q = self._delta(q0, jac, err, self.config.step_damping, self.config.posture_gain)
        return self._result(q, t, 1, "stepped" if seed_ok else "invalid_seed")


@dataclass
class DualArmIKResult:
    sides: dict[str, ArmIKResult] = field(default_factory=dict)

    @property
    def positions(self) -> dict[str, float]:
        """Joint targets of every solved arm, by joint name."""
        out = {}
        for r in self.sides.values():
            out.update(r.as_dict())
        return out

    @property
    def all_reachable(self) -> bool:
        return all(r.reachable for r in self.sides.values())


class DualArmIK:
    """Both arms in one call. Targets are hand-base poses in the torso (arm base) frame or the head camera's
    optical frame; current joints and results are dictionaries by joint name."""

    FRAMES = ("torso", "camera")

    def __init__(self, robot: RobotDescription | None = None, config: IKConfig | None = None,
                 nominal: Mapping[str, float] | None = None):
        self.robot = robot or load_robot()
        self.config = config or IKConfig()
        self.arms = {s: ArmIK(self.robot, s, self.config, nominal) for s in self.robot.sides}

    def reseed(self, seed: int | None = None):
        """Reseed every arm's random restarts (see ``ArmIK.reseed``)."""
        for arm in self.arms.values():
            arm.reseed(seed)

    def solve(self, targets: Mapping[str, np.ndarray], current: Mapping[str, float], frame: str = "torso",
              mode: str = "converge") -> DualArmIKResult:
        """Solve every side named in ``targets`` (``{"left": T, "right": T}``), warm-started from ``current``."""
        if frame not in self.FRAMES:
            raise ValueError(f"frame must be one of {self.FRAMES}, got {frame!r}")
        if mode not in ("converge", "step"):
            raise ValueError(f"mode must be 'converge' or 'step', got {mode!r}")
        unknown = set(targets) - set(self.arms)
        if unknown:
            raise KeyError(f"unknown side(s) {sorted(unknown)}; sides: {sorted(self.arms)}")
        out = DualArmIKResult()
        for side, target in targets.items():
            arm = self.arms[side]
            t = np.asarray(target, dtype=float)
            if frame == "camera" and t.shape == (4, 4):
                t = arm.T_base_camera @ t
            q = np.array([current.get(n, np.nan) for n in arm.joint_names], dtype=float)
            out.sides[side] = arm.solve(t, q) if mode == "converge" else arm.step(t, q)
        return out
