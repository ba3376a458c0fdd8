"""Generate the MuJoCo model (MJCF) of the robot from the robot table.

What the MJCF carries, beyond the kinematics:
- every link as a body with the table's mass, centre of mass and full inertia tensor; the primitive shapes as
  geoms (visual and collision); fingertip and other fixed frames as joint-less bodies of the same name;
- the head camera as ``<camera name="head_camera">`` in its parent link, with the table's vertical field of view;
- a position actuator per commanded joint (named like the joint) with the table's PD gains and effort limits;
- mimic joints either coupled by equality constraints (``hand_mimic="equality"``, as the real Inspire hand's
  linkage does) or driven by their own actuators (``"independent"``, as the benchmark's Isaac asset does).

Collision filtering: robot geoms have ``contype=2, conaffinity=1``, so robot parts never collide with each
other but collide with any geom of default ``contype=1`` (tables, objects, the floor).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from .geometry import matrix_to_quat, rpy_to_matrix
from .robot import RobotDescription, load_robot

HEAD_CAMERA_NAME = "head_camera"
ROBOT_CONTYPE = 2
ROBOT_CONAFFINITY = 1
# MuJoCo cameras look along their -z axis with +y up; the optical frame looks along +z with +y down.
_R_OPTICAL_FROM_MUJOCO_CAMERA = np.diag([1.0, -1.0, -1.0])


def _f(x) -> str:
    return " ".join(repr(float(v)) for v in np.atleast_1d(x))


def _quat_str(rotation) -> str:
    return _f(matrix_to_quat(np.asarray(rotation, float)))


def robot_mjcf(
    robot: RobotDescription | None = None,
    fixed_joints=None,
    hand_mimic: str = "equality",
    base_pos=(0.0, 0.0, 0.0),
    timestep_s: float = 1.0 / 240.0,
    with_actuators: bool = True,
) -> str:
    """The MJCF text of ``robot`` as a standalone ``<mujoco>`` model with a fixed base at ``base_pos``.

    ``fixed_joints`` default to the benchmark's (the torso). ``hand_mimic`` is ``"equality"`` or ``"independent"``.
    """
    robot = robot or load_robot()
    if hand_mimic not in ("equality", "independent"):
        raise ValueError(f"hand_mimic must be 'equality' or 'independent', got {hand_mimic!r}")
    fixed = set(robot.fixed_in_benchmark if fixed_joints is None else fixed_joints)
    unknown = fixed - set(robot.movable_joint_names)
    if unknown:
        raise ValueError(f"fixed_joints names joints that are not movable joints of {robot.name!r}: {sorted(unknown)}")

    root = ET.Element("mujoco", model=robot.name)
    ET.SubElement(root, "compiler", angle="radian", autolimits="true", inertiafromgeom="false", balanceinertia="true")
    ET.SubElement(root, "option", timestep=repr(float(timestep_s)), integrator="implicitfast")
    default = ET.SubElement(root, "default")
    robot_default = ET.SubElement(default, "default", {"class": "robot"})
    ET.SubElement(robot_default, "geom", contype=str(ROBOT_CONTYPE), conaffinity=str(ROBOT_CONAFFINITY),
                  condim="3", friction="1.0 0.02 0.001", group="1")
    ET.SubElement(robot_default, "joint", damping="0.0", frictionloss="0.0")
    worldbody = ET.SubElement(root, "worldbody")

    children = {}
    for j in robot.joints:
        children.setdefault(j.parent, []).append(j)
    link_map = robot.link_map

    def add_body(parent_el, link_name, pos, quat, joint):
        attrs = {"name": link_name, "pos": _f(pos), "quat": quat, "childclass": "robot"}
        body = ET.SubElement(parent_el, "body", attrs)
        link = link_map[link_name]
        if link.mass is not None:
            ixx, ixy, ixz, iyy, iyz, izz = link.inertia
            ET.SubElement(body, "inertial", pos=_f(link.com), mass=_f(link.mass),
                          fullinertia=_f([ixx, iyy, izz, ixy, ixz, iyz]))
        if joint is not None and not joint.is_fixed and joint.name not in fixed:
            drive = robot.drive_for(joint.name)
            ET.SubElement(body, "joint", name=joint.name, type="hinge", axis=_f(joint.axis),
                          range=_f([joint.limit.lower, joint.limit.upper]),
                          armature=_f(drive.armature if drive else 0.0))
        for k, s in enumerate(link.shapes):
            g = {"name": f"{link_name}_geom{k}", "rgba": _f(s.rgba)}
            if s.type == "box":
                g.update(type="box", pos=_f(s.pos), size=_f(np.asarray(s.size) / 2))
            elif s.type == "sphere":
                g.update(type="sphere", pos=_f(s.pos), size=_f(s.radius))
            else:
                g.update(type=s.type, fromto=_f(list(s.start) + list(s.end)), size=_f(s.radius))
            ET.SubElement(body, "geom", g)
        if link_name == robot.head_camera.parent_link:
            cam = robot.head_camera
            r = cam.T_parent_optical[:3, :3] @ _R_OPTICAL_FROM_MUJOCO_CAMERA
            fovy = math.degrees(2.0 * math.atan2(cam.intrinsics.height / 2.0, cam.intrinsics.fy))
            ET.SubElement(body, "camera", name=HEAD_CAMERA_NAME, pos=_f(cam.xyz), quat=_quat_str(r), fovy=repr(fovy),
                          resolution=f"{cam.intrinsics.width} {cam.intrinsics.height}")
        for child in children.get(link_name, []):
            r = rpy_to_matrix(np.array(child.rpy))
            add_body(body, child.child, child.xyz, _quat_str(r), child)

    add_body(worldbody, robot.root_link, base_pos, "1 0 0 0", None)

    commanded = []
    equality = ET.SubElement(root, "equality")
    for j in robot.joints:
        if j.is_fixed or j.name in fixed:
            continue
        if j.mimic is not None and hand_mimic == "equality":
            ET.SubElement(equality, "joint", name=f"mimic_{j.name}", joint1=j.name, joint2=j.mimic.joint,
                          polycoef=_f([j.mimic.offset, j.mimic.multiplier, 0.0, 0.0, 0.0]),
                          solref="0.005 1")
        else:
            commanded.append(j)
    if len(equality) == 0:
        root.remove(equality)
    if with_actuators:
        actuator = ET.SubElement(root, "actuator")
        for j in commanded:
            drive = robot.drive_for(j.name)
            if drive is None:
                raise ValueError(f"joint {j.name!r} belongs to no group with drive gains in {robot.name!r}'s actuators")
            ET.SubElement(actuator, "position", name=j.name, joint=j.name, kp=_f(drive.kp), kv=_f(drive.kv),
                          ctrlrange=_f([j.limit.lower, j.limit.upper]),
                          forcerange=_f([-drive.effort_limit, drive.effort_limit]))
    ET.indent(root, space="  ")
    header = f"<!-- Generated by egovla_description from {robot.name}.yaml; do not edit. -->\n"
    return header + ET.tostring(root, encoding="unicode") + "\n"

