"""Hand retargeting node: each smoothed action step's hand PCA -> the Inspire hands' joints, on ``/joint_command``.

PCA coefficients -> hand-model fingertips in the wrist frame (axis change, robot hand scale) -> the retargeting MLP
-> 6 actuated joints per hand (the mimic joints follow their leaders). Topics, safety and watchdog: see
``egovla.nodes.controller``.
"""

from __future__ import annotations

import sys

from .common import run
from .controller import JointController
from .decoding import build_decoder


class HandRetargetNode(JointController):
    groups = ("left_hand", "right_hand")

    def __init__(self, subscribe_action: bool = True, subscribe_inputs: bool = True):
        super().__init__("hand_retarget", subscribe_action, subscribe_inputs)
        self.decoder = build_decoder(self)
        names = self.decoder.hand_joint_names
        self.actuated = [i for i, n in enumerate(names) if self.robot.joint(n).mimic is None]
        self.get_logger().info(f"hand retargeting ready: {len(self.actuated)} actuated joints; safety on "
                               f"{', '.join(self.groups)}")

    def targets(self, step, positions):
        joints = self.decoder.hand_joints(step[None])[0]
        names = self.decoder.hand_joint_names
        return {names[i]: float(joints[i]) for i in self.actuated}


def main(args=None) -> int:
    return run(HandRetargetNode, "hand_retarget", args)


if __name__ == "__main__":
    sys.exit(main())
