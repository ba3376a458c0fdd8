"""From the action space to robot joint targets: what one control tick does after the policy and the smoother.

For a 48-value step (or a whole chunk): each hand's wrist (MANO transl + rotation, camera frame) becomes the
end-effector pose of its hand base link, moved into the torso frame and solved by the arm IK; each hand's PCA
goes through the hand model (canonical, wrist-relative) to fingertips, which the axis change and the robot hand
scale put in the hand base frame, and the retargeting MLP turns into the 12 joint commands per hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from egovla_description import RobotDescription, load_robot
from egovla_description.ik import DualArmIK, IKConfig

from ..action_space import AXIS_CHANGE, SIDES, camera_to_torso, indices, mano_to_ee_pose, split_step
from ..hands import FINGERTIPS, HandModel
from .mlp import RetargetNet, joint_names, predict_joints


def _rot6d_matrix(d: np.ndarray) -> np.ndarray | None:
    """``rot6d_to_matrix`` of one 6-vector in plain floats; None if it is degenerate (a zero or non-finite column,
    or parallel columns), which the general path turns into NaN."""
    x1, y1, z1, x2, y2, z2 = d.tolist()
    n1 = math.sqrt(x1 * x1 + y1 * y1 + z1 * z1)
    if not 0.0 < n1 < math.inf:
        return None
    x1, y1, z1 = x1 / n1, y1 / n1, z1 / n1
    dot = x1 * x2 + y1 * y2 + z1 * z2
    x2, y2, z2 = x2 - dot * x1, y2 - dot * y1, z2 - dot * z1
    n2 = math.sqrt(x2 * x2 + y2 * y2 + z2 * z2)
    if not 0.0 < n2 < math.inf:
        return None
    x2, y2, z2 = x2 / n2, y2 / n2, z2 / n2
    return np.array([[x1, x2, y1 * z2 - z1 * y2],
                     [y1, y2, z1 * x2 - x1 * z2],
                     [z1, z2, x1 * y2 - y1 * x2]])


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
        # For ``wrist_targets`` on one step: the camera's rotation in the torso, and per side the step's slices, the
        # axis change (transposed) and the root offset moved into the torso frame, so a wrist is two 3x3 products.
        self._r_torso_camera = self.t_torso_camera[:3, :3].copy()
        self._wrist_tables = {
            side: (indices(side, "transl"), indices(side, "rot6d"), AXIS_CHANGE[side].T.copy(),
                   self._r_torso_camera @ self._root_offset[side] + self.t_torso_camera[:3, 3]) for side in SIDES}
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
        """One step (48,) -> hand base link poses (4x4) in the torso frame, per side.

        The same as ``split_step`` -> ``mano_to_ee_pose`` -> ``camera_to_torso`` (used for batches and for a
        degenerate rot6d), written out for a single step: this runs on every control tick, and the general path
        spends 0.2 ms per side on NumPy's handling of batch axes for one 3x3 matrix (tested equal to 1e-12)."""
        step = np.asarray(step, dtype=float)
        single, r_tc = step.shape == (48,), self._r_torso_camera
        out = {}
        for side in SIDES:
            transl, rot6d, axis_t, p_root = self._wrist_tables[side]
            rotation = _rot6d_matrix(step[rot6d]) if single else None
            if rotation is None:
                h = split_step(step, side)
                t_cam = mano_to_ee_pose(h.transl, h.rotation, side, self._root_offset[side])
                out[side] = camera_to_torso(t_cam, self.t_torso_camera)
                continue
            pose = np.eye(4)
            pose[:3, :3] = r_tc @ rotation @ axis_t
            pose[:3, 3] = r_tc @ step[transl] + p_root
            out[side] = pose
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
