"""Publish the robot description (URDF generated from the robot table) on /robot_description.

    ros2 launch egovla description.launch.py [free_torso:=true]

Pip-only machines (no `ros2 launch`): `python -m egovla.robot_description_publisher`.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="h1_inspire", description="robot table name or path"),
        DeclareLaunchArgument("free_torso", default_value="false",
                              description="make the torso joint movable (the benchmark fixes it)"),
        Node(
            package="egovla",
            executable="robot_description_publisher",
            name="robot_description_publisher",
            output="screen",
            parameters=[{
                "robot": LaunchConfiguration("robot"),
                "free_torso": ParameterValue(LaunchConfiguration("free_torso"), value_type=bool),
            }],
        ),
    ])
