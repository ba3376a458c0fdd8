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
