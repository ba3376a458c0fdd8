"""Differentiable forward kinematics of the robot hands' fingertips in torch (for training the retargeting MLP).

Same result as ``egovla_description.kinematics.HandKinematics.fingertips`` (Pinocchio): the chain of each
fingertip is read from the reduced Pinocchio hand model (joint placements, tip frame placements, the hand base
frame) and the joint axes from the robot description; the hand joints are revolute. Each fingertip is carried
from its last joint down to the hand root one joint at a time (rotation about the joint axis by Rodrigues'
formula, then the joint's fixed placement), all fingertips at once; chains shorter than the longest are padded
with identity steps. Batched, any float dtype, cheap enough to sit inside a training loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from egovla_description import RobotDescription
from egovla_description.kinematics import HandKinematics

SIDES = ("left", "right")


class FingertipFK(nn.Module):
    """Hand joints (..., 12 * len(sides)): the sides' hand groups one after the other -> fingertips
    (..., len(sides), 5, 3), each hand's in its own hand base frame (m)."""

    def __init__(self, robot: RobotDescription, sides=SIDES):
        super().__init__()
        chains, tips, base_rot, base_trans = [], [], [], []
        offset = 0
        for side in sides:
            hk = HandKinematics(robot, side)
            model = hk.model
            col = {model.getJointId(n): offset + k for k, n in enumerate(hk.joint_names)}
            base = model.frames[hk._base]
            if _parent_joint(base) != 0:
                raise ValueError("the hand base frame must be fixed to the hand's root")
            for f in hk._tips:
                chain, j = [], _parent_joint(model.frames[f])
                while j != 0:  # tip joint first, down to the root
                    if model.joints[j].nq != 1 or j not in col:
                        raise ValueError(f"{model.names[j]}: only revolute hand joints are supported")
                    axis = np.asarray(robot.joint(model.names[j]).axis, float)
                    placement = model.jointPlacements[j]
                    chain.append((col[j], axis / np.linalg.norm(axis), placement.rotation, placement.translation))
                    j = model.parents[j]
                chains.append(chain)
                tips.append(model.frames[f].placement.translation)
                base_rot.append(base.placement.rotation)
                base_trans.append(base.placement.translation)
            offset += len(hk.joint_names)
        self.n_joints, self.n_sides = offset, len(sides)
        depth = max(len(c) for c in chains)
        n = len(chains)
        column = np.full((depth, n), offset)  # padding reads an appended zero angle
        axes = np.zeros((depth, n, 3))
        rot = np.tile(np.eye(3), (depth, n, 1, 1))
        trans = np.zeros((depth, n, 3))
        for t, chain in enumerate(chains):
            for s, (c, a, r, p) in enumerate(chain):
                column[s, t], axes[s, t], rot[s, t], trans[s, t] = c, a, r, p
        # Step s of tip t: p -> R (I + sin(q) K + (1 - cos(q)) K^2) p + t, with K the axis' cross-product matrix;
        # the three matrices R, R K, R K^2 are applied to p in one batched product.
        skew = np.zeros((depth, n, 3, 3))
        skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -axes[..., 2], axes[..., 1], -axes[..., 0]
        skew -= np.swapaxes(skew, -1, -2)
        mats = np.concatenate([rot, rot @ skew, rot @ skew @ skew], -2)  # (D, T, 9, 3)
        self.register_buffer("column", torch.as_tensor(column))  # (D, T): joint of step s of tip t's chain
        self.register_buffer("mats", torch.as_tensor(np.swapaxes(mats, -1, -2).copy()))  # (D, T, 3, 9)
        self.register_buffer("trans", torch.as_tensor(trans[:, :, None, :]))  # (D, T, 1, 3)
        self.register_buffer("tips", torch.as_tensor(np.stack(tips)[:, None, :]))  # (T, 1, 3) in the tip joint frame
        # Into the hand base frame: R_b^T (p - t_b) = p R_b - t_b R_b.
        base_rot = np.stack(base_rot)
        self.register_buffer("base_rot", torch.as_tensor(base_rot))  # (T, 3, 3)
        self.register_buffer("base_shift", torch.as_tensor(-np.einsum("ti,tij->tj", np.stack(base_trans),
                                                                       base_rot)[:, None, :]))  # (T, 1, 3)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        dtype = q.dtype
        lead = q.shape[:-1]
        q = q.reshape(-1, q.shape[-1])
        q = torch.cat([q, q.new_zeros(len(q), 1)], -1).T  # (J + 1, B)
        p = self.tips.to(dtype).expand(-1, q.shape[1], -1)  # (T, B, 3)
        for s in range(len(self.column)):
            angle = q[self.column[s]][..., None]  # (T, B, 1)
            out = torch.bmm(p, self.mats[s].to(dtype))  # (T, B, 9)
            p = out[..., 0:3] + torch.sin(angle) * out[..., 3:6] + (1 - torch.cos(angle)) * out[..., 6:9] \
                + self.trans[s].to(dtype)
        p = torch.bmm(p, self.base_rot.to(dtype)) + self.base_shift.to(dtype)  # (T, B, 3)
        return p.transpose(0, 1).reshape(*lead, self.n_sides, -1, 3)


def _parent_joint(frame) -> int:
    return frame.parentJoint if hasattr(frame, "parentJoint") else frame.parent
