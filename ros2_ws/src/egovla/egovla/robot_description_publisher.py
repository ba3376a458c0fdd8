"""Publishes the robot's URDF, generated from the robot table, on ``/robot_description``.

The topic is latched (transient local, reliable, depth 1), as ``robot_state_publisher`` publishes it, so RViz
and late subscribers receive it. Parameters:

- ``robot`` (string): robot table name or path, default ``h1_inspire``.
- ``fixed_joints`` (string array): joints emitted as fixed; empty keeps the benchmark's (the torso).
- ``free_torso`` (bool): emit every joint movable, torso included (overrides ``fixed_joints``).
"""

from __future__ import annotations

import sys

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from egovla_description import DEFAULT_ROBOT, load_robot
from egovla_description.urdf import robot_urdf

from .nodes.common import EgoNode, run

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


class RobotDescriptionPublisher(EgoNode):
    def __init__(self):
        super().__init__("robot_description_publisher")
        robot_name = self.declare_parameter(
            "robot", DEFAULT_ROBOT, ParameterDescriptor(description="robot table name or path to a .yaml")).value
        fixed = self.declare_parameter(
            "fixed_joints", [""], ParameterDescriptor(
                description="joints to emit as fixed; empty keeps the benchmark's fixed joints (the torso)")).value
        free_torso = self.declare_parameter(
            "free_torso", False, ParameterDescriptor(description="emit every joint movable (no fixed torso)")).value
        robot = load_robot(robot_name)
        fixed = [n for n in fixed if n]
        fixed_joints = () if free_torso else (fixed or None)
        self.urdf = robot_urdf(robot, fixed_joints=fixed_joints)
        self.publisher = self.create_publisher(String, "robot_description", LATCHED)
        self.publisher.publish(String(data=self.urdf))
        self.get_logger().info(f"published robot_description of {robot.name!r} ({len(self.urdf)} characters)")


def main(args=None) -> int:
    return run(RobotDescriptionPublisher, "robot_description_publisher", args)


if __name__ == "__main__":
    sys.exit(main())
