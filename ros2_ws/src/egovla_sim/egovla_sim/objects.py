"""MJCF models of the benchmark's objects, built from primitives.

The benchmark's assets are USD files whose contents are not public (Git LFS), so every shape here is ours,
sized so the task facts hold: an object's body origin is the benchmark's *root position* for that object, so
the nominal poses and every predicate (heights, radii, container bounds, drawer handle offsets) apply unchanged.
Where the facts fix a number it is used (masses, plate radius 0.09, bowl rim 0.075 above the origin with
radius 0.085, container bounds, ball radius 6 mm); where they do not, the choice is written next to it.

Kinds of bodies:
- movable objects (cans, box, mug, glass, bowl, balls) get a free joint: they move only through contacts;
- kinematic or static things (plate, containers, the drawer cabinet, the laptop base) are mocap bodies, so a
  placement can move them at reset without recompiling; the drawers and the laptop lid are child bodies with a
  slide / hinge joint.

The robot MJCF compiles with ``inertiafromgeom="false"``, so every body here carries an explicit inertial
computed from its primitives (``_Inertia``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from .tasks import DRAWER_JOINT_RANGE, LAPTOP_JOINT_RANGE, ObjectSpec

# Contact parameters of objects (the robot keeps its own class): elliptic friction cones with torsional
# friction (condim 4) so a pinch grasp resists twisting; slightly stiff contacts so light objects do not sink.
OBJECT_FRICTION = "1.2 0.01 0.0002"
OBJECT_SOLIMP = "0.95 0.99 0.001"
VISUAL_GROUP = "2"


def _f(*values) -> str:
    return " ".join(f"{float(v):.9g}" for v in np.ravel(values))


@dataclass
class _Inertia:
    """Accumulates mass, centre of mass and inertia of primitives in a body frame (then scaled to a mass)."""

    parts: list = field(default_factory=list)  # (volume, centre (3,), inertia about own centre per unit mass (3x3))

    def box(self, pos, half, rot=None):
        hx, hy, hz = half
        i = np.diag([hy * hy + hz * hz, hx * hx + hz * hz, hx * hx + hy * hy]) / 3.0
        r = np.eye(3) if rot is None else rot
        self.parts.append((8 * hx * hy * hz, np.asarray(pos, float), r @ i @ r.T))

    def cylinder(self, pos, radius, half_height, rot=None):
        r2, h2 = radius * radius, (2 * half_height) ** 2
        i = np.diag([(3 * r2 + h2) / 12, (3 * r2 + h2) / 12, r2 / 2])
        r = np.eye(3) if rot is None else rot
        self.parts.append((math.pi * r2 * 2 * half_height, np.asarray(pos, float), r @ i @ r.T))

    def sphere(self, pos, radius):
        self.parts.append((4 / 3 * math.pi * radius ** 3, np.asarray(pos, float), np.eye(3) * 0.4 * radius ** 2))

    def element(self, mass: float) -> ET.Element:
        vol = np.array([p[0] for p in self.parts])
        w = vol / vol.sum()
        com = sum(wi * p[1] for wi, p in zip(w, self.parts))
        inertia = np.zeros((3, 3))
        for wi, (_, c, i) in zip(w, self.parts):
            d = c - com
            inertia += mass * wi * (i + (d @ d) * np.eye(3) - np.outer(d, d))
        full = [inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2]]
        return ET.Element("inertial", pos=_f(com), mass=_f(mass), fullinertia=_f(full))


class _Builder:
    """Adds geoms to one body and records them for its inertial."""

    def __init__(self, body: ET.Element, prefix: str):
        self.body, self.prefix, self.inertia, self.n = body, prefix, _Inertia(), 0

    def _name(self) -> str:
        self.n += 1
        return f"{self.prefix}_g{self.n}"

    def box(self, pos, half, material, rot=None, visual=False, **extra):
        g = {"name": self._name(), "type": "box", "pos": _f(pos), "size": _f(half), "material": material, **extra}
        if rot is not None:
            g["quat"] = _f(_matrix_to_quat(rot))
        self._add(g, visual)
        if not visual:
            self.inertia.box(pos, half, rot)

    def cylinder(self, pos, radius, half_height, material, visual=False, rot=None, **extra):
        g = {"name": self._name(), "type": "cylinder", "pos": _f(pos), "size": _f(radius, half_height),
             "material": material, **extra}
        if rot is not None:
            g["quat"] = _f(_matrix_to_quat(rot))
        self._add(g, visual)
        if not visual:
            self.inertia.cylinder(pos, radius, half_height, rot)

    def capsule(self, a, b, radius, material, visual=False):
        g = {"name": self._name(), "type": "capsule", "fromto": _f(list(a) + list(b)), "size": _f(radius),
             "material": material}
        self._add(g, visual)
        if not visual:
            a, b = np.asarray(a, float), np.asarray(b, float)
            half = np.linalg.norm(b - a) / 2
            self.inertia.cylinder((a + b) / 2, radius, half, _frame_z(b - a))

    def sphere(self, pos, radius, material, visual=False, **extra):
        self._add({"name": self._name(), "type": "sphere", "pos": _f(pos), "size": _f(radius),
                   "material": material, **extra}, visual)
        if not visual:
            self.inertia.sphere(pos, radius)

    def ring(self, z0, z1, r0, r1, thickness, segments, material):
        """A tube (r0 == r1) or a cone-shaped wall (bowl) from boxes; height z0..z1, radius r0 at z0 to r1 at z1."""
        height = z1 - z0
        slant = math.atan2(r1 - r0, height)
        length = math.hypot(height, r1 - r0)
        rm = 0.5 * (r0 + r1) + 0.5 * thickness * math.cos(slant)
        half_w = (max(r0, r1) + thickness) * math.tan(math.pi / segments) * 1.05
        for k in range(segments):
            a = 2 * math.pi * k / segments
            rot = _rot_z(a) @ _rot_y(slant)  # leans outward when r1 > r0 (the bowl opens upward)
            self.box((rm * math.cos(a), rm * math.sin(a), 0.5 * (z0 + z1)), (thickness / 2, half_w, length / 2),
                     material, rot=rot)

    def _add(self, g, visual):
        if visual:
            g.update(contype="0", conaffinity="0", group=VISUAL_GROUP, mass="0")
        ET.SubElement(self.body, "geom", g)

    def finish(self, mass: float):
        self.body.insert(0, self.inertia.element(mass))


def _rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _rot_y(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rot_x(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _frame_z(d):
    z = np.asarray(d, float) / np.linalg.norm(d)
    x = np.cross([0, 1.0, 0], z) if abs(z[1]) < 0.9 else np.cross([1.0, 0, 0], z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], 1)


def _matrix_to_quat(r):
    from egovla_description.geometry import matrix_to_quat

    return matrix_to_quat(np.asarray(r, float))


# --- materials ---------------------------------------------------------------------------------------------

OBJECT_MATERIALS = {
    "can_fanta": "0.95 0.45 0.05 1", "can_sprite": "0.1 0.62 0.3 1", "can_rim": "0.78 0.78 0.8 1",
    "can_label": "0.95 0.95 0.92 1", "box_red": "0.78 0.12 0.1 1", "box_yellow": "0.95 0.8 0.2 1",
    "mug": "0.2 0.42 0.75 1", "mug_inside": "0.92 0.92 0.9 1", "glass": "0.75 0.88 0.95 0.45",
    "bowl": "0.72 0.55 0.22 1", "plate": "0.95 0.95 0.93 1", "plate_rim": "0.55 0.7 0.85 1",
    "cabinet": "0.62 0.5 0.36 1", "drawer_front": "0.7 0.58 0.42 1", "handle": "0.25 0.25 0.27 1",
    "laptop": "0.55 0.56 0.6 1", "screen": "0.05 0.07 0.12 1", "keys": "0.15 0.15 0.17 1",
    "tray": "0.35 0.37 0.4 1", "bin": "0.2 0.45 0.8 1", "ball": "0.55 0.05 0.05 1", "marker": "0.9 0.1 0.1 1",
}


def add_object_materials(asset: ET.Element):
    for name, rgba in OBJECT_MATERIALS.items():
        ET.SubElement(asset, "material", name=f"obj_{name}", rgba=rgba, specular="0.3", shininess="0.3")


def _m(name):
    return f"obj_{name}"


def add_object_defaults(default: ET.Element, solref: str):
    cls = ET.SubElement(default, "default", {"class": "object"})
    ET.SubElement(cls, "geom", condim="4", friction=OBJECT_FRICTION, solref=solref, solimp=OBJECT_SOLIMP)


# --- assets ------------------------------------------------------------------------------------------------

CAN_RADIUS = 0.033
CAN_HEIGHT = 0.12
BOX_HALF = (0.105, 0.08, 0.03)  # YCB cracker box (210 x 160 x 60 mm) lying flat; origin 1 cm below its centre


def _body(parent, spec: ObjectSpec, mocap: bool) -> ET.Element:
    attrs = {"name": spec.name, "pos": _f(spec.pos), "quat": _f(spec.quat), "childclass": "object"}
    if mocap:
        attrs["mocap"] = "true"
    return ET.SubElement(parent, "body", attrs)


def _can(b: _Builder, label: str):
    b.cylinder((0, 0, CAN_HEIGHT / 2), CAN_RADIUS, CAN_HEIGHT / 2, _m(label))
    b.cylinder((0, 0, 0.004), CAN_RADIUS + 0.0005, 0.004, _m("can_rim"), visual=True)
    b.cylinder((0, 0, CAN_HEIGHT - 0.004), CAN_RADIUS + 0.0005, 0.004, _m("can_rim"), visual=True)
    b.cylinder((0, 0, 0.075), CAN_RADIUS + 0.0007, 0.012, _m("can_label"), visual=True)


def _cracker_box(b: _Builder):
    b.box((0, 0, 0.01), BOX_HALF, _m("box_red"))
    b.box((0, 0, 0.01 + BOX_HALF[2] + 0.0005), (0.07, 0.05, 0.0005), _m("box_yellow"), visual=True)


def _mug(b: _Builder):
    # Local +z is the mug's axis, opening up; 1.7 x 1.7 x 1.0 scale folded in: radius 0.04, height 0.09.
    r, h, wall = 0.04, 0.09, 0.004
    b.cylinder((0, 0, 0.004), r, 0.004, _m("mug_inside"))
    b.ring(0.0, h, r - wall / 2, r - wall / 2, wall, 16, _m("mug"))
    for z0, z1, x in ((0.02, 0.026, 0.0), (0.064, 0.07, 0.0)):
        b.box((r + 0.013, 0, 0.5 * (z0 + z1)), (0.013, 0.006, 0.5 * (z1 - z0)), _m("mug"))
    b.box((r + 0.026, 0, 0.045), (0.004, 0.006, 0.025), _m("mug"))


def _glass(b: _Builder):
    # The wall stands on the base disc instead of reaching down to the table: wall segments touching the table
    # gave 68 glass-table contacts at rest (4 with only the disc on it) and ran Pour-Balls at 11x real time
    # instead of 16x. 16 segments: with 12 (7 % faster) the glass turned in the can grasp while pouring and the
    # Pour-Balls expert failed on most far bowls.
    r, h, wall = 0.036, 0.11, 0.004
    b.cylinder((0, 0, 0.004), r, 0.004, _m("glass"))
    b.ring(0.008, h, r - wall / 2, r - wall / 2, wall, 16, _m("glass"))


def _bowl(b: _Builder):
    # Rim 0.075 above the origin with radius 0.09, so the benchmark's rim disc (radius 0.085) lies inside it.
    b.cylinder((0, 0, 0.004), 0.05, 0.004, _m("bowl"))
    b.ring(0.004, 0.075, 0.05, 0.09, 0.005, 20, _m("bowl"))


def _plate(b: _Builder):
    b.cylinder((0, 0, 0.003), 0.09, 0.003, _m("plate"))
    b.cylinder((0, 0, 0.0062), 0.06, 0.0002, _m("plate_rim"), visual=True)


def _plate_inlay(b: _Builder):
    # Stack-Can-Into-Drawer's saucer: kinematic, fixed in the world while the drawer slides under it, so it cannot
    # be a solid disc on the drawer's floor (the floor would carry a can into its edge: measured, the can stopped
    # 0.12 m short of the centre). It is an inlay flush with the floor (top 1.166 m, 4 mm below its origin, within
    # the success's 2 cm), drawn but not colliding: a can on the floor over it stands on the saucer.
    b.cylinder((0, 0, -0.0044), 0.09, 0.0005, _m("plate"), visual=True)
    b.cylinder((0, 0, -0.0038), 0.06, 0.0002, _m("plate_rim"), visual=True)
    b.inertia.cylinder((0, 0, -0.0044), 0.09, 0.0005)  # a mocap body's inertial is unused but must be valid


def _ball(b: _Builder):
    # Priority over the glass and the bowl, so a ball's contacts with them use the ball's condim 3 instead of their
    # condim 4 (one constraint row less per contact; the 8 balls resting in the glass make MuJoCo's step here
    # twice as slow as Stack-Can's). Frictionless balls (condim 1) were 10-15 % faster still but slid up to 3.2 cm
    # inside a glass standing still.
    b.sphere((0, 0, 0), 0.006, _m("ball"), condim="3", priority="2", solref="0.01 1")


def _container_2x3(b: _Builder):
    # Slot tray over x 0.32..0.64, y -0.1..0.1 (the insert bounds) around the origin (0.48, 0, 1.06): floor top at
    # 1.05 (a can standing in a slot has root z 1.05 <= 1.065), slot walls up to 1.10 (cans lifted above 1.14 clear
    # them, the unload lift threshold).
    lx, ly = 0.16, 0.1
    b.box((0, 0, -0.025), (lx, ly, 0.015), _m("tray"))
    top, wall = 0.04, 0.004
    zc, hz = (-0.01 + top) / 2, (top + 0.01) / 2
    for sx in (-1, 1):
        b.box((sx * (lx - wall / 2), 0, zc), (wall / 2, ly, hz), _m("tray"))
    for sy in (-1, 0, 1):
        b.box((0, sy * (ly - wall / 2) if sy else 0.0, zc), (lx, wall / 2, hz), _m("tray"))
    for x in (-lx / 3, lx / 3):
        b.box((x, 0, zc), (wall / 2, ly, hz), _m("tray"))


def _container_plastic(b: _Builder):
    # An open bin; in the Sort-Cans frame (yaw -90 deg at (0.6, +-0.085, 1.1)) it covers x 0.475..0.715,
    # y +-0.0725 around its centre and z 1.02..1.10 -- inside the benchmark's boxes (x 0.47..0.72, 0.145 wide).
    hx_local, hy_local = 0.07, 0.12  # local x becomes world y after the yaw
    floor_top = -0.07
    b.box((0, 0, floor_top - 0.005), (hx_local, hy_local, 0.005), _m("bin"))
    wall, zc, hz = 0.005, -0.035, 0.04
    for s in (-1, 1):
        b.box((s * (hx_local - wall / 2), 0, zc), (wall / 2, hy_local, hz), _m("bin"))
        b.box((0, s * (hy_local - wall / 2), zc), (hx_local, wall / 2, hz), _m("bin"))


DRAWER_TRAVEL = DRAWER_JOINT_RANGE[1] - DRAWER_JOINT_RANGE[0]
LAPTOP_REST_ANGLE = 0.085  # rad; the benchmark's initial lid angle is 0.088


def _drawer(parent, spec: ObjectSpec, builders: list):
    """Cabinet (mocap) with a deep bottom drawer and a shallow top drawer. Local frame: front toward local +x
    (the benchmark yaws the drawer 180 deg so the front faces the robot); origin 0.3817 above the table top."""
    cab = _body(parent, spec, mocap=True)
    b = _Builder(cab, spec.name)
    z_table = -0.3817
    # Deep enough that Stack-Can-Into-Drawer's kinematic plate (0.56..0.79 m from the robot, 0.12..0.35 m behind
    # the cabinet's root) stays inside the bottom drawer, clear of its back wall, both open and closed.
    x0, x1, half_y = -0.52, 0.06, 0.31
    b.box((0.5 * (x0 + x1), 0, z_table + 0.065), (0.5 * (x1 - x0), half_y, 0.065), _m("cabinet"))  # plinth
    zc, hz = 0.5 * (-0.2517 + 0.0583), 0.5 * (0.0583 + 0.2517)
    for s in (-1, 1):
        b.box((0.5 * (x0 + x1), s * (half_y - 0.01), zc), (0.5 * (x1 - x0), 0.01, hz), _m("cabinet"))
    b.box((x0 + 0.01, 0, zc), (0.01, half_y, hz), _m("cabinet"))
    b.box((0.5 * (x0 + x1), 0, 0.0483), (0.5 * (x1 - x0), half_y, 0.01), _m("cabinet"))  # top
    b.box((0.5 * (x0 + x1) - 0.01, 0, -0.0267), (0.5 * (x1 - x0) - 0.01, half_y - 0.02, 0.005), _m("cabinet"))
    builders.append((b, 8.0))
    lo, hi = DRAWER_JOINT_RANGE
    for which, z_floor, z_top, handle_y in (("bottom", -0.2467, -0.0367, 0.122), ("top", -0.0167, 0.0333, 0.0)):
        d = ET.SubElement(cab, "body", name=f"{spec.name}/{which}", pos=_f(DRAWER_TRAVEL, 0, 0))
        ET.SubElement(d, "joint", name=f"{spec.name}/{which}_joint", type="slide", axis="-1 0 0",
                      range=_f(lo, hi), damping="4" if which == "bottom" else "40", frictionloss="0.5",
                      armature="0.05")
        db = _Builder(d, f"{spec.name}_{which}")
        depth_back = -0.49
        db.box((0.05, 0, 0.5 * (z_floor + z_top)), (0.01, 0.285, 0.5 * (z_top - z_floor)), _m("drawer_front"))
        db.box((0.5 * (depth_back + 0.04), 0, z_floor + 0.005), (0.5 * (0.04 - depth_back), 0.28, 0.005),
               _m("drawer_front"))
        side_top = min(z_top, z_floor + 0.1)
        for s in (-1, 1):
            db.box((0.5 * (depth_back + 0.04), s * 0.275, 0.5 * (z_floor + side_top)),
                   (0.5 * (0.04 - depth_back), 0.005, 0.5 * (side_top - z_floor)), _m("drawer_front"))
        db.box((depth_back, 0, 0.5 * (z_floor + side_top)), (0.005, 0.28, 0.5 * (side_top - z_floor)),
               _m("drawer_front"))
        # Handle: a bar 3.5 cm in front of the panel (room for fingers), on standoffs.
        hz_ = -0.05 if which == "bottom" else 0.5 * (z_floor + z_top)
        db.capsule((0.095, handle_y - 0.055, hz_), (0.095, handle_y + 0.055, hz_), 0.008, _m("handle"))
        for s in (-1, 1):
            db.box((0.0775, handle_y + s * 0.05, hz_), (0.0175, 0.005, 0.006), _m("handle"))
        builders.append((db, 0.6 if which == "bottom" else 0.3))


def _laptop(parent, spec: ObjectSpec, builders: list):
    """Base (mocap) and lid on a hinge. The benchmark rotates the laptop 120 deg about (1,1,1): local x is world
    y, local y world z, local z world x. Base 0.22 deep x 0.32 wide; the hinge at the far edge; lid closed over
    the base pointing toward the robot, opening upward."""
    base = _body(parent, spec, mocap=True)
    b = _Builder(base, spec.name)

    def w(dx, dy, dz):  # world-aligned offsets -> local
        return (dy, dz, dx)

    b.box(w(0, 0, 0.001), w(0.11, 0.16, 0.011), _m("laptop"))
    b.box(w(-0.02, 0, 0.0125), w(0.06, 0.13, 0.0005), _m("keys"), visual=True)
    builders.append((b, 1.0))
    # Hinge friction 0.8 N m holds the 0.5 kg lid at any angle (gravity torque at most 0.54 N m), as a real
    # laptop hinge does; opening it takes about 7 N at the lid's front edge. The benchmark starts the lid 0.088 rad
    # open; here it rests on a detent at that angle (the lower end of the joint range), because MuJoCo's
    # friction constraint lets a loaded hinge creep shut within a second and close the gap the fingers need.
    lid = ET.SubElement(base, "body", name=f"{spec.name}/lid", pos=_f(w(0.11, 0, 0.016)))
    ET.SubElement(lid, "joint", name=f"{spec.name}/hinge", type="hinge", axis="1 0 0",
                  range=_f(LAPTOP_REST_ANGLE, LAPTOP_JOINT_RANGE[1]), damping="0.3", frictionloss="0.8",
                  armature="0.01")
    lb = _Builder(lid, f"{spec.name}_lid")
    lb.box(w(-0.11, 0, 0.0035), w(0.11, 0.16, 0.0035), _m("laptop"))
    lb.box(w(-0.11, 0, -0.0005), w(0.095, 0.145, 0.0005), _m("screen"), visual=True)
    builders.append((lb, 0.5))


_FREE = {"can_fanta": lambda b: _can(b, "can_fanta"), "can_sprite": lambda b: _can(b, "can_sprite"),
         "cracker_box": _cracker_box, "mug": _mug, "glassware": _glass, "bowl": _bowl, "ball": _ball}
_STATIC = {"plate": _plate, "plate_inlay": _plate_inlay, "container_2x3": _container_2x3,
           "container_plastic": _container_plastic}
DEFAULT_MASS = {"glassware": 0.15, "container_2x3": 2.0, "container_plastic": 0.5, "plate": 1.0, "plate_inlay": 1.0}


def add_object(worldbody: ET.Element, spec: ObjectSpec):
    """Add one task object (its bodies, joints, geoms and inertials) to the world."""
    builders = []
    if spec.asset == "drawer":
        _drawer(worldbody, spec, builders)
    elif spec.asset == "laptop":
        _laptop(worldbody, spec, builders)
    elif spec.asset in _FREE:
        body = _body(worldbody, spec, mocap=False)
        ET.SubElement(body, "freejoint", name=spec.name)
        b = _Builder(body, spec.name)
        _FREE[spec.asset](b)
        builders.append((b, spec.mass if spec.mass is not None else DEFAULT_MASS[spec.asset]))
    elif spec.asset in _STATIC:
        body = _body(worldbody, spec, mocap=True)
        b = _Builder(body, spec.name)
        _STATIC[spec.asset](b)
        builders.append((b, spec.mass if spec.mass is not None else DEFAULT_MASS[spec.asset]))
    else:
        raise ValueError(f"object {spec.name!r}: no MuJoCo model for asset {spec.asset!r}")
    for b, mass in builders:
        b.finish(mass)


def add_goal_marker(worldbody: ET.Element, name: str = "goal_marker"):
    """A visual-only red cross on the table (Push-Box's goal), moved by its mocap pose."""
    body = ET.SubElement(worldbody, "body", name=name, mocap="true", pos="0.5 0 1.021")
    for k, (hx, hy) in enumerate(((0.04, 0.007), (0.007, 0.04))):
        ET.SubElement(body, "geom", name=f"{name}_g{k}", type="box", size=_f(hx, hy, 0.0008),
                      material=_m("marker"), contype="0", conaffinity="0", group=VISUAL_GROUP)
