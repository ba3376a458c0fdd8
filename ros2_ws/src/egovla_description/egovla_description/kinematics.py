"""Forward kinematics with Pinocchio, addressed by joint and frame names."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pinocchio as pin

from .robot import RobotDescription, load_robot
from .urdf import robot_urdf


def build_pinocchio_model(robot: RobotDescription | None = None, fixed_joints=None) -> pin.Model:
    """A fixed-base Pinocchio model of ``robot`` (mimic joints as independent joints), with the head camera frames."""
    return pin.buildModelFromXML(robot_urdf(robot or load_robot(), fixed_joints=fixed_joints))


class RobotKinematics:
    """Whole-robot forward kinematics: joint positions by name in, frame poses (4x4, root-link frame) out."""

    def __init__(self, robot: RobotDescription | None = None, fixed_joints=None):
        self.robot = robot or load_robot()
        self.model = build_pinocchio_model(self.robot, fixed_joints)
        self.data = self.model.createData()
        self.joint_names = tuple(self.model.names[i] for i in range(1, self.model.njoints))
        self._q_index = {n: self.model.joints[self.model.getJointId(n)].idx_q for n in self.joint_names}

    def q_from_positions(self, positions: Mapping[str, float], fill_mimic: bool = True) -> np.ndarray:
        """Pinocchio configuration from joint positions by name; unnamed joints take their initial posture.

        With ``fill_mimic`` the mimic joints follow their leaders, as on the real hand.
        """
        unknown = set(positions) - set(self.robot.movable_joint_names)
        if unknown:
            raise KeyError(f"unknown joint names for robot {self.robot.name!r}: {sorted(unknown)}")
        values = {n: self.robot.initial_pose.get(n, 0.0) for n in self.joint_names}
        values.update(positions)
        if fill_mimic:
            values = self.robot.fill_mimic(values)
        q = np.zeros(self.model.nq)
        for n, i in self._q_index.items():
            q[i] = values[n]
        return q

    def frame_id(self, name: str) -> int:
        if not self.model.existFrame(name):
            raise KeyError(f"robot {self.robot.name!r} has no frame {name!r}")
        return self.model.getFrameId(name)

    def frame_poses(self, q: np.ndarray, frames) -> dict[str, np.ndarray]:
        """Poses (4x4, in the root link) of ``frames`` at configuration ``q``."""
        pin.forwardKinematics(self.model, self.data, q)
        out = {}
        for name in frames:
            out[name] = pin.updateFramePlacement(self.model, self.data, self.frame_id(name)).homogeneous.copy()
        return out

    def frame_pose(self, q: np.ndarray, frame: str) -> np.ndarray:
        return self.frame_poses(q, [frame])[frame]


class HandKinematics:
    """Fingertip positions of one robot hand in its end-effector (hand base) frame, for batches of hand joints.

    Joint order: the side's hand group (``robot.side(side).hand_joints``); mimic joints may be given (the
    benchmark drives all of them) or filled from their leaders (``from_active``).
    """

    def __init__(self, robot: RobotDescription | None = None, side: str = "left"):
        self.robot = robot or load_robot()
        spec = self.robot.side(side)
        self.side = side
        self.joint_names = spec.hand_joints
        self.active_names = tuple(n for n in spec.hand_joints if self.robot.joint(n).mimic is None)
        full = build_pinocchio_model(self.robot)
        keep = set(spec.hand_joints)
        lock = [full.getJointId(n) for n in full.names[1:] if n not in keep]
        self.model = pin.buildReducedModel(full, lock, pin.neutral(full))
        self.data = self.model.createData()
        self._q_index = [self.model.joints[self.model.getJointId(n)].idx_q for n in self.joint_names]
        self._base = self.model.getFrameId(spec.end_effector_link)
        self._tips = [self.model.getFrameId(n) for n in spec.fingertip_links]
        self.lower, self.upper = self.robot.limits(self.joint_names)
        self.active_lower, self.active_upper = self.robot.limits(self.active_names)

    def from_active(self, active: np.ndarray) -> np.ndarray:
        """Active joint values (..., n_active) -> all hand joints (..., n_hand), mimic joints from their leaders."""
        active = np.asarray(active, float)
        out = np.zeros(active.shape[:-1] + (len(self.joint_names),))
        pos = {n: k for k, n in enumerate(self.active_names)}
        for k, name in enumerate(self.joint_names):
            j = self.robot.joint(name)
            if j.mimic is None:
                out[..., k] = active[..., pos[name]]
            else:
                out[..., k] = j.mimic.multiplier * active[..., pos[j.mimic.joint]] + j.mimic.offset
        return out

    def fingertips(self, hand_q: np.ndarray) -> np.ndarray:
        """Hand joint values (B, n_hand) -> fingertip positions (B, 5, 3) in the hand base frame (m)."""
        hand_q = np.atleast_2d(np.asarray(hand_q, float))
        out = np.empty((hand_q.shape[0], len(self._tips), 3))
        q = pin.neutral(self.model)
        for b, values in enumerate(hand_q):
            q[self._q_index] = values
            pin.forwardKinematics(self.model, self.data, q)
            base = pin.updateFramePlacement(self.model, self.data, self._base)
            for t, fid in enumerate(self._tips):
                out[b, t] = base.actInv(pin.updateFramePlacement(self.model, self.data, fid).translation)
        return out
