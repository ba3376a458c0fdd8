"""Teleoperated demonstrations, recorded: a teleop source drives the robot through IK and hand retargeting, and

The nodes and parameters come from config/graphs/record_teleop.yaml, which `egovla-launch record_teleop` (pip-only machines, no
ros2 launch) reads too.
"""

from egovla.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("record_teleop")
