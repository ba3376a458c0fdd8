"""Geometry core: rotations, rigid transforms and pinhole cameras, for NumPy arrays and torch tensors.

See ``rotations`` for every convention (quaternion order, rot6d layout, roll-pitch-yaw).
"""

from .camera import (
    R_OPTICAL_FROM_ROS_CAMERA,
    R_ROS_CAMERA_FROM_OPTICAL,
    T_ROS_CAMERA_FROM_OPTICAL,
    PinholeCamera,
    optical_to_ros_camera,
    ros_camera_to_optical,
)
from .rotations import *  # noqa: F401,F403 - the module's __all__ is the public list
from .rotations import __all__ as _rotation_names
from .se3 import *  # noqa: F401,F403
from .se3 import __all__ as _se3_names

__all__ = list(_rotation_names) + list(_se3_names) + [
    "PinholeCamera",
    "R_ROS_CAMERA_FROM_OPTICAL",
    "R_OPTICAL_FROM_ROS_CAMERA",
    "T_ROS_CAMERA_FROM_OPTICAL",
    "ros_camera_to_optical",
    "optical_to_ros_camera",
]
