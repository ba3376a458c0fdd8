"""MuJoCo scenes around the robot's generated MJCF: floor, lights, a table, offscreen rendering settings.

The robot stands as in the benchmark: its root (pelvis) fixed at ``BENCHMARK_BASE_POS`` in the world, the table
in front of it along +x with its top at ``TABLE_TOP_Z``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

# Offscreen rendering on machines without a display: EGL (Mesa's llvmpipe on a CPU). Set before mujoco is imported.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from egovla_description import RobotDescription, load_robot  # noqa: E402
from egovla_description.mjcf import robot_mjcf  # noqa: E402

BENCHMARK_BASE_POS = (0.0, 0.0, 1.05)  # the benchmark's robot root position (m)
TABLE_TOP_Z = 1.02  # benchmark table top height (m), approximate
TABLE_CENTER_XY = (0.75, 0.0)
TABLE_HALF_EXTENTS = (0.35, 0.6)


@dataclass
class SceneOptions:
    with_table: bool = True
    shadows: bool = False  # software rendering is ~5x slower with shadows and multisampling
    render_width: int = 640
    render_height: int = 360
    timestep_s: float = 1.0 / 240.0
    hand_mimic: str = "equality"


def build_scene_xml(robot: RobotDescription | None = None, options: SceneOptions | None = None) -> str:
    """MJCF text of the robot on its fixed base plus floor, lights and (optionally) the table."""
    robot = robot or load_robot()
    opt = options or SceneOptions()
    root = ET.fromstring(robot_mjcf(robot, base_pos=BENCHMARK_BASE_POS, timestep_s=opt.timestep_s,
                                    hand_mimic=opt.hand_mimic))
    visual = ET.Element("visual")
    ET.SubElement(visual, "global", offwidth=str(max(opt.render_width, 640)),
                  offheight=str(max(opt.render_height, 480)))
    if opt.shadows:
        ET.SubElement(visual, "quality", shadowsize="2048", offsamples="4")
    else:
        ET.SubElement(visual, "quality", shadowsize="0", offsamples="0")
    ET.SubElement(visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.5 0.5 0.5", specular="0.1 0.1 0.1")
    root.insert(2, visual)
    asset = ET.Element("asset")
    ET.SubElement(asset, "texture", name="sky", type="skybox", builtin="gradient", rgb1="0.55 0.65 0.8",
                  rgb2="0.15 0.18 0.22", width="256", height="256")
    ET.SubElement(asset, "texture", name="floor", type="2d", builtin="checker", rgb1="0.42 0.4 0.38",
                  rgb2="0.33 0.31 0.3", width="256", height="256")
    ET.SubElement(asset, "material", name="floor", texture="floor", texrepeat="8 8", reflectance="0.05")
    ET.SubElement(asset, "texture", name="wood", type="2d", builtin="flat", rgb1="0.55 0.4 0.27", width="64",
                  height="64")
    ET.SubElement(asset, "material", name="table", texture="wood", rgba="0.75 0.62 0.48 1")
    root.insert(3, asset)
    world = root.find("worldbody")
    ET.SubElement(world, "light", name="key", pos="0.5 -0.5 3.0", dir="-0.1 0.2 -1", diffuse="0.6 0.6 0.6",
                  directional="true", castshadow="true" if opt.shadows else "false")
    ET.SubElement(world, "geom", name="floor", type="plane", size="5 5 0.1", material="floor")
    if opt.with_table:
        cx, cy = TABLE_CENTER_XY
        hx, hy = TABLE_HALF_EXTENTS
        ET.SubElement(world, "geom", name="table_top", type="box", material="table",
                      pos=f"{cx} {cy} {TABLE_TOP_Z - 0.02}", size=f"{hx} {hy} 0.02")
        for sx in (-1, 1):
            for sy in (-1, 1):
                ET.SubElement(world, "geom", name=f"table_leg_{sx}_{sy}".replace("-", "m"), type="box",
                              material="table", pos=f"{cx + sx * (hx - 0.04)} {cy + sy * (hy - 0.04)} "
                                                f"{(TABLE_TOP_Z - 0.04) / 2}",
                              size=f"0.03 0.03 {(TABLE_TOP_Z - 0.04) / 2}")
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode")


class RobotScene:
    """A compiled scene with name-based access to joints, actuators and bodies."""

    def __init__(self, robot: RobotDescription | None = None, options: SceneOptions | None = None):
        self.robot = robot or load_robot()
        self.options = options or SceneOptions()
        self.model = mujoco.MjModel.from_xml_string(build_scene_xml(self.robot, self.options))
        self.data = mujoco.MjData(self.model)
        self._qpos_adr = {self.model.joint(i).name: int(self.model.jnt_qposadr[i]) for i in range(self.model.njnt)}
        self._dof_adr = {self.model.joint(i).name: int(self.model.jnt_dofadr[i]) for i in range(self.model.njnt)}
        self._act = {self.model.actuator(i).name: i for i in range(self.model.nu)}
        self._renderer = None
        self.reset()

    @property
    def actuator_names(self) -> tuple[str, ...]:
        return tuple(self._act)

    def reset(self, positions: dict[str, float] | None = None):
        """Put the robot at rest in the initial posture (or ``positions``), mimic joints consistent."""
        mujoco.mj_resetData(self.model, self.data)
        pose = dict(self.robot.initial_pose)
        pose.update(positions or {})
        pose = self.robot.fill_mimic(pose)
        for name, adr in self._qpos_adr.items():
            self.data.qpos[adr] = pose.get(name, 0.0)
        self.set_targets({n: self.data.qpos[self._qpos_adr[n]] for n in self._act})
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, targets: dict[str, float]):
        """Position targets by joint name (commanded joints only; values are clipped to the actuator range)."""
        for name, value in targets.items():
            i = self._act.get(name)
            if i is None:
                raise KeyError(f"joint {name!r} has no actuator in this scene")
            lo, hi = self.model.actuator_ctrlrange[i]
            self.data.ctrl[i] = min(max(float(value), lo), hi)

    def step(self, duration_s: float):
        n = max(1, int(round(duration_s / self.model.opt.timestep)))
        mujoco.mj_step(self.model, self.data, nstep=n)

    def joint_positions(self, names) -> np.ndarray:
        return np.array([self.data.qpos[self._qpos_adr[n]] for n in names])

    def joint_velocities(self, names) -> np.ndarray:
        return np.array([self.data.qvel[self._dof_adr[n]] for n in names])

    def body_pose(self, name: str) -> np.ndarray:
        """World pose (4x4) of a body (every link of the robot is a body of the same name)."""
        b = self.model.body(name).id
        t = np.eye(4)
        t[:3, :3] = self.data.xmat[b].reshape(3, 3)
        t[:3, 3] = self.data.xpos[b]
        return t

    def render(self, camera: str = "head_camera") -> np.ndarray:
        """RGB image (H, W, 3) uint8 from a named camera at the scene's render resolution."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.options.render_height, self.options.render_width)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
