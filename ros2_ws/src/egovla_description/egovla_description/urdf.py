"""Generate the URDF (Pinocchio, ROS ``robot_description``) from the robot table."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from .geometry import matrix_to_rpy
from .robot import HEAD_CAMERA_LINK, HEAD_CAMERA_OPTICAL_FRAME, RobotDescription, Shape, load_robot


def _f(x) -> str:
    return " ".join(repr(float(v)) for v in np.atleast_1d(x))


def _segment_origin(start, end):
    """Origin (xyz, rpy) of a cylinder whose local z axis runs from ``start`` to ``end``; and its length."""
    a, b = np.asarray(start, float), np.asarray(end, float)
    d = b - a
    length = float(np.linalg.norm(d))
    z = d / length
    # Rotation taking +z to the segment direction.
    if abs(z[2]) > 1.0 - 1e-12:
        r = np.eye(3) if z[2] > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        r = np.stack([x, y, z], axis=1)
    return (a + b) / 2, matrix_to_rpy(r), length


def _add_shape(parent: ET.Element, tag: str, shape: Shape):
    """Append one or more <visual>/<collision> elements for a shape (capsule = cylinder + 2 spheres)."""
    def element(xyz, rpy, geom_tag, **attrs):
        el = ET.SubElement(parent, tag)
        ET.SubElement(el, "origin", xyz=_f(xyz), rpy=_f(rpy))
        geom = ET.SubElement(el, "geometry")
        ET.SubElement(geom, geom_tag, **attrs)
        if tag == "visual":
            mat = ET.SubElement(el, "material", name="")
            ET.SubElement(mat, "color", rgba=_f(shape.rgba))

    zero = (0.0, 0.0, 0.0)
    if shape.type == "box":
        element(shape.pos, zero, "box", size=_f(shape.size))
    elif shape.type == "sphere":
        element(shape.pos, zero, "sphere", radius=_f(shape.radius))
    else:
        xyz, rpy, length = _segment_origin(shape.start, shape.end)
        element(xyz, rpy, "cylinder", radius=_f(shape.radius), length=_f(length))
        if shape.type == "capsule":
            element(shape.start, zero, "sphere", radius=_f(shape.radius))
            element(shape.end, zero, "sphere", radius=_f(shape.radius))


def robot_urdf(robot: RobotDescription | None = None, fixed_joints=None, with_camera: bool = True) -> str:
    """The URDF text of ``robot``.

    ``fixed_joints``: movable joints to emit as fixed (default: the benchmark's fixed torso). Pass ``()`` for the
    full robot. With ``with_camera`` the head camera's ``head_camera_link`` and ``head_camera_optical_frame``
    are added as fixed children of its parent link.
    """
    robot = robot or load_robot()
    fixed = set(robot.fixed_in_benchmark if fixed_joints is None else fixed_joints)
    unknown = fixed - set(robot.movable_joint_names)
    if unknown:
        raise ValueError(f"fixed_joints names joints that are not movable joints of {robot.name!r}: {sorted(unknown)}")
    root = ET.Element("robot", name=robot.name)
    for link in robot.links:
        el = ET.SubElement(root, "link", name=link.name)
        if link.mass is not None:
            inertial = ET.SubElement(el, "inertial")
            ET.SubElement(inertial, "origin", xyz=_f(link.com), rpy="0 0 0")
            ET.SubElement(inertial, "mass", value=_f(link.mass))
            ixx, ixy, ixz, iyy, iyz, izz = link.inertia
            ET.SubElement(inertial, "inertia", ixx=_f(ixx), ixy=_f(ixy), ixz=_f(ixz), iyy=_f(iyy), iyz=_f(iyz),
                          izz=_f(izz))
        for shape in link.shapes:
            _add_shape(el, "visual", shape)
        for shape in link.shapes:
            _add_shape(el, "collision", shape)
    for j in robot.joints:
        kind = "fixed" if (j.is_fixed or j.name in fixed) else j.type
        el = ET.SubElement(root, "joint", name=j.name, type=kind)
        ET.SubElement(el, "origin", xyz=_f(j.xyz), rpy=_f(j.rpy))
        ET.SubElement(el, "parent", link=j.parent)
        ET.SubElement(el, "child", link=j.child)
        if kind != "fixed":
            ET.SubElement(el, "axis", xyz=_f(j.axis))
            ET.SubElement(el, "limit", lower=_f(j.limit.lower), upper=_f(j.limit.upper), effort=_f(j.limit.effort),
                          velocity=_f(j.limit.velocity))
            if j.mimic is not None:
                ET.SubElement(el, "mimic", joint=j.mimic.joint, multiplier=_f(j.mimic.multiplier),
                              offset=_f(j.mimic.offset))
    if with_camera:
        cam = robot.head_camera
        ET.SubElement(root, "link", name=HEAD_CAMERA_LINK)
        ET.SubElement(root, "link", name=HEAD_CAMERA_OPTICAL_FRAME)
        el = ET.SubElement(root, "joint", name="head_camera_joint", type="fixed")
        ET.SubElement(el, "origin", xyz=_f(cam.xyz), rpy=_f([0.0, math.radians(cam.pitch_down_deg), 0.0]))
        ET.SubElement(el, "parent", link=cam.parent_link)
        ET.SubElement(el, "child", link=HEAD_CAMERA_LINK)
        el = ET.SubElement(root, "joint", name="head_camera_optical_joint", type="fixed")
        ET.SubElement(el, "origin", xyz="0.0 0.0 0.0", rpy=_f([-math.pi / 2, 0.0, -math.pi / 2]))
        ET.SubElement(el, "parent", link=HEAD_CAMERA_LINK)
        ET.SubElement(el, "child", link=HEAD_CAMERA_OPTICAL_FRAME)
    ET.indent(root, space="  ")
    header = (f"<?xml version=\"1.0\"?>\n<!-- Generated by egovla_description from {robot.name}.yaml; do not edit. "
              f"Kinematics and inertias: {robot.source.get('repository', '?')} @ {robot.source.get('commit', '?')}. -->\n")
    return header + ET.tostring(root, encoding="unicode") + "\n"
