"""The robot facts table, loaded into typed, validated objects.

``load_robot()`` reads ``robots/<name>.yaml`` (or any path) and checks it: a tree of links and joints rooted at
``root_link``, limits ordered, mimic and group references resolvable. Nothing else in the project keeps a
copy of these numbers: joint lists, limits, the end-effector and fingertip frames, the head camera and the
drive gains are all read from here, by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from .geometry import PinholeCamera, T_ROS_CAMERA_FROM_OPTICAL, make_transform, rpy_to_matrix, xyz_rpy_to_matrix

ROBOTS_DIR = Path(__file__).resolve().parent / "robots"
DEFAULT_ROBOT = "h1_inspire"
SIDES = ("left", "right")
HEAD_CAMERA_LINK = "head_camera_link"
HEAD_CAMERA_OPTICAL_FRAME = "head_camera_optical_frame"


class RobotDescriptionError(ValueError):
    """A robot table is malformed; the message names the file and the offending entry."""


@dataclass(frozen=True)
class JointLimit:
    lower: float
    upper: float
    effort: float
    velocity: float


@dataclass(frozen=True)
class Mimic:
    joint: str
    multiplier: float
    offset: float = 0.0


@dataclass(frozen=True)
class Joint:
    name: str
    type: str  # "revolute" or "fixed"
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float] | None = None
    limit: JointLimit | None = None
    mimic: Mimic | None = None

    @property
    def is_fixed(self) -> bool:
        return self.type == "fixed"

    @property
    def origin(self) -> np.ndarray:
        """Pose of the child link in the parent link at zero joint angle (4x4)."""
        return xyz_rpy_to_matrix(np.array(self.xyz), np.array(self.rpy))


@dataclass(frozen=True)
class Shape:
    """A primitive in link coordinates. box: ``pos`` + full ``size``; capsule/cylinder: ``from``/``to`` + ``radius``;
    sphere: ``pos`` + ``radius``."""

    type: str
    rgba: tuple[float, float, float, float]
    pos: tuple[float, float, float] | None = None
    size: tuple[float, float, float] | None = None
    start: tuple[float, float, float] | None = None
    end: tuple[float, float, float] | None = None
    radius: float | None = None


@dataclass(frozen=True)
class Link:
    name: str
    mass: float | None = None
    com: tuple[float, float, float] | None = None
    inertia: tuple[float, float, float, float, float, float] | None = None  # ixx ixy ixz iyy iyz izz
    shapes: tuple[Shape, ...] = ()


@dataclass(frozen=True)
class HeadCamera:
    parent_link: str
    xyz: tuple[float, float, float]
    pitch_down_deg: float
    intrinsics: PinholeCamera

    @property
    def T_parent_camera_link(self) -> np.ndarray:  # noqa: N802
        """Pose of ``head_camera_link`` (x forward, y left, z up) in the parent link. Pitching down is a positive
        rotation about the camera's y (left) axis."""
        return make_transform(rpy_to_matrix(np.array([0.0, math.radians(self.pitch_down_deg), 0.0])),
                              np.array(self.xyz))

    @property
    def T_parent_optical(self) -> np.ndarray:  # noqa: N802
        """Pose of ``head_camera_optical_frame`` (x right, y down, z forward) in the parent link."""
        return self.T_parent_camera_link @ T_ROS_CAMERA_FROM_OPTICAL


@dataclass(frozen=True)
class DriveGains:
    kp: float
    kv: float
    effort_limit: float
    armature: float = 0.0


@dataclass(frozen=True)
class Side:
    name: str
    arm_joints: tuple[str, ...]
    hand_joints: tuple[str, ...]
    arm_base_link: str
    end_effector_link: str
    fingertip_links: tuple[str, ...]


@dataclass(frozen=True)
class RobotDescription:
    name: str
    source: dict
    root_link: str
    links: tuple[Link, ...]
    joints: tuple[Joint, ...]
    groups: dict[str, tuple[str, ...]]
    sides: dict[str, Side]
    initial_pose: dict[str, float]
    head_camera: HeadCamera
    drives: dict[str, DriveGains]
    fixed_in_benchmark: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    # -- lookups by name --------------------------------------------------------------------------------
    @cached_property
    def joint_map(self) -> dict[str, Joint]:
        return {j.name: j for j in self.joints}

    @cached_property
    def link_map(self) -> dict[str, Link]:
        return {link.name: link for link in self.links}

    def joint(self, name: str) -> Joint:
        try:
            return self.joint_map[name]
        except KeyError:
            raise KeyError(f"robot {self.name!r} has no joint {name!r}") from None

    @property
    def movable_joint_names(self) -> tuple[str, ...]:
        """Every non-fixed joint, mimic joints included, in table order."""
        return tuple(j.name for j in self.joints if not j.is_fixed)

    @property
    def mimic_joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints if j.mimic is not None)

    def independent_joint_names(self, fixed: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
        """Non-fixed, non-mimic joints minus ``fixed``: what a controller commands."""
        return tuple(n for n in self.movable_joint_names if self.joint_map[n].mimic is None and n not in fixed)

    def limits(self, names) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper position limits (rad) for ``names``, in that order."""
        lims = [self.joint(n).limit for n in names]
        return np.array([lim.lower for lim in lims]), np.array([lim.upper for lim in lims])

    def side(self, name: str) -> Side:
        try:
            return self.sides[name]
        except KeyError:
            raise KeyError(f"robot {self.name!r} has no side {name!r}; sides: {sorted(self.sides)}") from None

    def group_of(self, joint_name: str) -> str | None:
        for group, names in self.groups.items():
            if joint_name in names:
                return group
        return None

    def drive_for(self, joint_name: str) -> DriveGains | None:
        group = self.group_of(joint_name)
        return self.drives.get(group) if group else None

    def fill_mimic(self, positions: dict[str, float]) -> dict[str, float]:
        """A copy of ``positions`` with every mimic joint set from its leader (leaders missing count as 0)."""
        out = dict(positions)
        for j in self.joints:
            if j.mimic is not None:
                out[j.name] = j.mimic.multiplier * positions.get(j.mimic.joint, 0.0) + j.mimic.offset
        return out

    def chain(self, base_link: str, tip_link: str) -> tuple[Joint, ...]:
        """The joints from ``base_link`` down to ``tip_link`` (fixed ones included), base first."""
        by_child = {j.child: j for j in self.joints}
        out = []
        link = tip_link
        while link != base_link:
            if link not in by_child:
                raise KeyError(f"{tip_link!r} is not below {base_link!r} in robot {self.name!r}")
            j = by_child[link]
            out.append(j)
            link = j.parent
        return tuple(reversed(out))


# -- loading ------------------------------------------------------------------------------------------------


def robot_table_path(name_or_path: str | Path = DEFAULT_ROBOT) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return p
    candidate = ROBOTS_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        known = sorted(x.stem for x in ROBOTS_DIR.glob("*.yaml"))
        raise RobotDescriptionError(f"unknown robot {name_or_path!r}; known robots: {known} (or pass a .yaml path)")
    return candidate


_CACHE: dict[Path, RobotDescription] = {}


def load_robot(name_or_path: str | Path = DEFAULT_ROBOT) -> RobotDescription:
    """Load and validate a robot table by name (``h1_inspire``) or path. Results are cached per file."""
    path = robot_table_path(name_or_path).resolve()
    if path not in _CACHE:
        if not path.exists():
            raise RobotDescriptionError(f"{path}: file not found")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise RobotDescriptionError(f"{path}: not valid YAML: {e}") from None
        _CACHE[path] = _parse(raw, path)
    return _CACHE[path]


def _vec(where, value, n):
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise RobotDescriptionError(f"{where}: expected a list of {n} numbers, got {value!r}")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise RobotDescriptionError(f"{where}: expected numbers, got {value!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise RobotDescriptionError(f"{where}: non-finite value in {value!r}")
    return out


def _req(where, d, key):
    if not isinstance(d, dict) or key not in d:
        raise RobotDescriptionError(f"{where}: missing required key {key!r}")
    return d[key]


def _parse(raw, path: Path) -> RobotDescription:
    f = str(path)
    if not isinstance(raw, dict):
        raise RobotDescriptionError(f"{f}: top level must be a mapping")

    links = []
    for i, lk in enumerate(_req(f, raw, "links")):
        where = f"{f}: links[{i}] ({lk.get('name', '?') if isinstance(lk, dict) else '?'})"
        name = _req(where, lk, "name")
        shapes = []
        for k, s in enumerate(lk.get("shapes") or []):
            sw = f"{where}.shapes[{k}]"
            kind = _req(sw, s, "type")
            rgba = _vec(sw + ".rgba", s.get("rgba", [0.5, 0.5, 0.5, 1.0]), 4)
            if kind == "box":
                shapes.append(Shape(kind, rgba, pos=_vec(sw + ".pos", _req(sw, s, "pos"), 3),
                                    size=_vec(sw + ".size", _req(sw, s, "size"), 3)))
            elif kind in ("capsule", "cylinder"):
                shapes.append(Shape(kind, rgba, start=_vec(sw + ".from", _req(sw, s, "from"), 3),
                                    end=_vec(sw + ".to", _req(sw, s, "to"), 3), radius=float(_req(sw, s, "radius"))))
            elif kind == "sphere":
                shapes.append(Shape(kind, rgba, pos=_vec(sw + ".pos", _req(sw, s, "pos"), 3),
                                    radius=float(_req(sw, s, "radius"))))
            else:
                raise RobotDescriptionError(f"{sw}: unknown shape type {kind!r} (box, capsule, cylinder, sphere)")
        mass = lk.get("mass")
        if mass is not None:
            mass = float(mass)
            if mass <= 0:
                raise RobotDescriptionError(f"{where}: mass must be positive, got {mass}")
            links.append(Link(name, mass, _vec(where + ".com", _req(where, lk, "com"), 3),
                              _vec(where + ".inertia", _req(where, lk, "inertia"), 6), tuple(shapes)))
        else:
            links.append(Link(name, shapes=tuple(shapes)))
    link_names = [lk.name for lk in links]
    if len(set(link_names)) != len(link_names):
        raise RobotDescriptionError(f"{f}: duplicate link names")

    joints = []
    for i, j in enumerate(_req(f, raw, "joints")):
        where = f"{f}: joints[{i}] ({j.get('name', '?') if isinstance(j, dict) else '?'})"
        kind = _req(where, j, "type")
        if kind not in ("revolute", "fixed"):
            raise RobotDescriptionError(f"{where}: joint type {kind!r} is not supported (revolute, fixed)")
        for key in ("parent", "child"):
            if _req(where, j, key) not in link_names:
                raise RobotDescriptionError(f"{where}: {key} link {j[key]!r} is not in links")
        limit = axis = mimic = None
        if kind == "revolute":
            axis = _vec(where + ".axis", _req(where, j, "axis"), 3)
            if abs(np.linalg.norm(axis) - 1.0) > 1e-9:
                raise RobotDescriptionError(f"{where}: axis {axis} is not a unit vector")
            lim = _req(where, j, "limit")
            limit = JointLimit(*(float(_req(where + ".limit", lim, k)) for k in ("lower", "upper", "effort", "velocity")))
            if not limit.lower <= limit.upper:
                raise RobotDescriptionError(f"{where}: limit lower {limit.lower} > upper {limit.upper}")
            if j.get("mimic"):
                m = j["mimic"]
                mimic = Mimic(_req(where + ".mimic", m, "joint"), float(_req(where + ".mimic", m, "multiplier")),
                              float(m.get("offset", 0.0)))
        joints.append(Joint(j["name"], kind, j["parent"], j["child"], _vec(where + ".xyz", j.get("xyz", [0, 0, 0]), 3),
                            _vec(where + ".rpy", j.get("rpy", [0, 0, 0]), 3), axis, limit, mimic))
    joint_names = [j.name for j in joints]
    if len(set(joint_names)) != len(joint_names):
        raise RobotDescriptionError(f"{f}: duplicate joint names")
    revolute = {j.name for j in joints if not j.is_fixed}
    for j in joints:
        if j.mimic and j.mimic.joint not in revolute:
            raise RobotDescriptionError(f"{f}: joint {j.name!r} mimics {j.mimic.joint!r}, which is not a movable joint")

    root = _req(f, raw, "root_link")
    children = [j.child for j in joints]
    if len(set(children)) != len(children):
        raise RobotDescriptionError(f"{f}: a link has two parent joints; links and joints must form a tree")
    orphans = set(link_names) - set(children) - {root}
    if orphans:
        raise RobotDescriptionError(f"{f}: links not attached to the tree rooted at {root!r}: {sorted(orphans)}")
    if root in children:
        raise RobotDescriptionError(f"{f}: root link {root!r} has a parent joint")

    groups = {}
    for g, names in (_req(f, raw, "groups") or {}).items():
        missing = [n for n in names if n not in joint_names]
        if missing:
            raise RobotDescriptionError(f"{f}: groups.{g} names unknown joints {missing}")
        groups[g] = tuple(names)

    sides = {}
    for s, spec in _req(f, raw, "sides").items():
        sw = f"{f}: sides.{s}"
        for key in ("arm_group", "hand_group"):
            if _req(sw, spec, key) not in groups:
                raise RobotDescriptionError(f"{sw}.{key}: unknown group {spec[key]!r}")
        for key in ("arm_base_link", "end_effector_link"):
            if _req(sw, spec, key) not in link_names:
                raise RobotDescriptionError(f"{sw}.{key}: unknown link {spec[key]!r}")
        tips = tuple(_req(sw, spec, "fingertip_links"))
        bad = [t for t in tips if t not in link_names]
        if bad:
            raise RobotDescriptionError(f"{sw}.fingertip_links: unknown links {bad}")
        sides[s] = Side(s, groups[spec["arm_group"]], groups[spec["hand_group"]], spec["arm_base_link"],
                        spec["end_effector_link"], tips)

    initial = {}
    for n, v in (raw.get("initial_pose") or {}).items():
        if n not in revolute:
            raise RobotDescriptionError(f"{f}: initial_pose names unknown joint {n!r}")
        initial[n] = float(v)

    cam = _req(f, raw, "head_camera")
    cw = f"{f}: head_camera"
    if _req(cw, cam, "parent_link") not in link_names:
        raise RobotDescriptionError(f"{cw}.parent_link: unknown link {cam['parent_link']!r}")
    try:
        intr = PinholeCamera(int(_req(cw, cam, "width")), int(_req(cw, cam, "height")), float(_req(cw, cam, "fx")),
                             float(_req(cw, cam, "fy")), float(_req(cw, cam, "cx")), float(_req(cw, cam, "cy")))
    except ValueError as e:
        raise RobotDescriptionError(f"{cw}: {e}") from None
    head = HeadCamera(cam["parent_link"], _vec(cw + ".xyz", _req(cw, cam, "xyz"), 3),
                      float(_req(cw, cam, "pitch_down_deg")), intr)

    drives = {}
    for g, spec in (raw.get("actuators") or {}).items():
        if g not in groups:
            raise RobotDescriptionError(f"{f}: actuators.{g} is not a joint group")
        drives[g] = DriveGains(float(_req(f"{f}: actuators.{g}", spec, "kp")), float(_req(f"{f}: actuators.{g}", spec, "kv")),
                               float(_req(f"{f}: actuators.{g}", spec, "effort_limit")), float(spec.get("armature", 0.0)))

    fixed = tuple(raw.get("fixed_in_benchmark") or ())
    for n in fixed:
        if n not in revolute:
            raise RobotDescriptionError(f"{f}: fixed_in_benchmark names unknown joint {n!r}")

    return RobotDescription(
        name=_req(f, raw, "name"), source=raw.get("source") or {}, root_link=root, links=tuple(links),
        joints=tuple(joints), groups=groups, sides=sides, initial_pose=initial, head_camera=head, drives=drives,
        fixed_in_benchmark=fixed, path=path,
    )
