"""Publish the robot description (URDF generated from the robot table) on /robot_description.

    ros2 launch egovla description.launch.py [free_torso:=true]

The nodes and parameters come from config/graphs/description.yaml, which `egovla-launch description` (pip-only
machines, no ros2 launch) reads too.
"""

from egovla.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("description")
