"""Arm IK node: each smoothed action step's wrist poses -> the 7 joints of each arm, on ``/joint_command``.

The step's wrists (MANO translation + rot6d in the head camera's optical frame) become the hand base links' poses
in the torso frame (``egovla_training.retarget.ActionDecoder``), which Pinocchio's damped least-squares IK
(``egovla_description.ik.DualArmIK``) solves from the measured joint positions. Topics, safety and watchdog: see
``egovla.nodes.controller``. The IK's random restarts are reseeded at every new episode, so an episode does not
depend on the ones before it.
"""

from __future__ import annotations

import sys

from egovla_description.config import load_config
from egovla_description.ik import IKConfig

from .common import NodeConfigError, declare, run
from .controller import JointController
from .decoding import build_decoder


class ArmIKNode(JointController):
    groups = ("left_arm", "right_arm")

    def __init__(self, subscribe_action: bool = True, subscribe_inputs: bool = True):
        super().__init__("arm_ik", subscribe_action, subscribe_inputs)
        ik_config = declare(self, "ik_config", "", "IK parameters YAML (egovla_description.ik.IKConfig); empty: "
                            "the defaults")
        self.mode = declare(self, "ik_mode", "converge", "converge (iterate to tolerance) or track (one bounded "
                            "step per tick)", lambda v: v in ("converge", "track"), "must be converge or track")
        try:
            cfg = load_config(IKConfig, ik_config) if ik_config else None
        except (ValueError, FileNotFoundError) as e:
            raise NodeConfigError(f"ik_config: {e}") from None
        self.decoder = build_decoder(self, ik_config=cfg)
        self.get_logger().info(f"arm IK ready ({self.mode}); safety on {', '.join(self.groups)}")

    def on_new_episode(self):
        self.decoder.ik.reseed()

    def targets(self, step, positions):
        result = self.decoder.ik.solve(self.decoder.wrist_targets(step), positions, frame="torso", mode=self.mode)
        return result.positions


def main(args=None) -> int:
    return run(ArmIKNode, "arm_ik", args)


if __name__ == "__main__":
    sys.exit(main())
