"""From the action space to robot joint targets: what one control tick does after the policy and the smoother.

For a 48-value step (or a whole chunk): each hand's wrist (MANO transl + rotation, camera frame) becomes the
end-effector pose of its hand base link, moved into the torso frame and solved by the arm IK; each hand's PCA
goes through the hand model (canonical, wrist-relative) to fingertips, which the axis change and the robot hand
scale put in the hand base frame, and the retargeting MLP turns into the 12 joint commands per hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from egovla_description import RobotDescription, load_robot
from egovla_description.ik import DualArmIK, IKConfig

from ..action_space import AXIS_CHANGE, SIDES, camera_to_torso, indices, mano_to_ee_pose, split_step
from ..hands import FINGERTIPS, HandModel
from .mlp import RetargetNet, joint_names, predict_joints


class ActionDecoder:
    def __init__(self, hands: Mapping[str, HandModel], net: RetargetNet, robot: RobotDescription | None = None,
                 ik_config: IKConfig | None = None, robot_hand_scale: float = 1.5, ik_mode: str = "converge"):
        self.robot = robot or load_robot()
        self.hands = dict(hands)
        self.net = net.eval()
        self.ik = DualArmIK(self.robot, ik_config)
        self.ik_mode = ik_mode
        self.scale = robot_hand_scale
        self.hand_joint_names = joint_names(self.robot)
        self.t_torso_camera = self.robot.head_camera.T_parent_optical
        self._root_offset = {s: h.root_offset.detach().double().cpu().numpy() for s, h in self.hands.items()}
        self.hand_joints(np.zeros((1, 48)))  # loads (or compiles) the keypoint kernel now, not on the first tick

    def hand_joints(self, steps: np.ndarray) -> np.ndarray:
        """Action steps (T, 48) -> hand joint commands (T, 24) in ``hand_joint_names`` order: within limits,
        mimic joints consistent with their leaders."""
        steps = np.atleast_2d(np.asarray(steps, dtype=np.float64))
        tips = []
        for side in SIDES:
            k = self.hands[side].canonical_keypoints_numpy(steps[:, indices(side, "pca")])[:, list(FINGERTIPS)]
            tips.append((k @ AXIS_CHANGE[side].T * self.scale).reshape(len(steps), 15))  # hand base frame
        return predict_joints(self.net, self.robot, np.concatenate(tips, axis=1))

    def wrist_targets(self, step: np.ndarray) -> dict[str, np.ndarray]:
        """One step (48,) -> hand base link poses (4x4) in the torso frame, per side."""
        out = {}
        for side in SIDES:
            h = split_step(np.asarray(step, dtype=float), side)
            t_cam = mano_to_ee_pose(h.transl, h.rotation, side, self._root_offset[side])
            out[side] = camera_to_torso(t_cam, self.t_torso_camera)
        return out

    def joint_targets(self, step: np.ndarray, current: Mapping[str, float]) -> dict[str, float]:
        """One step (48,) and the current joint positions -> arm and hand joint targets by name."""
        step = np.asarray(step, dtype=float)
        if step.shape != (48,) or not np.isfinite(step).all():
            raise ValueError(f"an action step must be 48 finite values, got shape {step.shape}")
        result = self.ik.solve(self.wrist_targets(step), current, frame="torso", mode=self.ik_mode)
        targets = result.positions
        targets.update(zip(self.hand_joint_names, self.hand_joints(step[None])[0].tolist()))
        return targets
