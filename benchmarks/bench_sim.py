"""MuJoCo robot scene: physics speed without rendering, and head-camera rendering speed."""

from __future__ import annotations

import time

from egovla_sim.scene import RobotScene, SceneOptions


def run() -> dict:
    scene = RobotScene(options=SceneOptions(render_width=640, render_height=360))
    dt = 1.0 / 30.0
    scene.step(dt)
    n_ticks = 300
    t0 = time.perf_counter()
    for _ in range(n_ticks):
        scene.step(dt)
    physics_s = time.perf_counter() - t0
    scene.render()
    t0 = time.perf_counter()
    n_frames = 60
    for _ in range(n_frames):
        scene.render()
    render_s = time.perf_counter() - t0
    scene.close()
    return {
        "sim_robot_physics_realtime_factor": round(n_ticks * dt / physics_s, 2),
        "sim_robot_physics_steps_per_s": round(n_ticks * round(dt / scene.model.opt.timestep) / physics_s, 1),
        "sim_head_camera_640x360_fps": round(n_frames / render_s, 1),
        "sim_model_nq": int(scene.model.nq),
        "sim_model_nu": int(scene.model.nu),
    }
