"""Robot description of the EgoVLA benchmark humanoid: facts table, URDF/MJCF generators, geometry, FK and IK."""

from .robot import (
    DEFAULT_ROBOT,
    HEAD_CAMERA_LINK,
    HEAD_CAMERA_OPTICAL_FRAME,
    SIDES,
    RobotDescription,
    RobotDescriptionError,
    load_robot,
)

__all__ = [
    "DEFAULT_ROBOT",
    "HEAD_CAMERA_LINK",
    "HEAD_CAMERA_OPTICAL_FRAME",
    "SIDES",
    "RobotDescription",
    "RobotDescriptionError",
    "load_robot",
]
