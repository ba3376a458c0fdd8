"""Test helper: record a scripted-expert rollout of the MuJoCo twin as an episode bag (rosbag2 MCAP).

It lives with the tests because it joins two packages that must not import each other (``egovla_sim`` and
``egovla_training``). It mirrors what the ROS recorder node writes: at every 30 Hz tick t (sim time t/30 s,
after ``warmup_steps`` of holding still, which are not recorded) the observation of tick t -- ``/clock``,
``/joint_states`` (the twin's joints), ``/ego_camera/image_raw`` + ``/ego_camera/camera_info`` (head camera at the
render size), ``/egovla/task_status`` -- then the expert's ``/joint_command`` for tick t, all stamped t.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
from egovla_sim.env import BenchmarkEnv, EnvOptions
from egovla_sim.experts import make_policy
from egovla_training.data.rosbag_episodes import EpisodeBagWriter



def tick_ns(t: int) -> int:
    """Sim-time stamp (ns) of control tick t: round(t / 30 s)."""
    return (t * 1_000_000_000 + 15) // 30


def record_twin_rollout(path: str | Path, task: str = "close_drawer", *, ticks: int = 90, placement_index: int = 6565,
                        seed: int = 0, size: tuple[int, int] = (72, 128), warmup_steps: int = 10,
                        split: str = "seen") -> dict:
    """Run the scripted expert of ``task`` for ``ticks`` control ticks (or until it ends) and write the bag.

    ``size`` = (height, width) of the rendered head camera. Returns the episode metadata written to the bag, and
    under ``"_truth"`` (not written) what MuJoCo says: per recorded tick, each end effector's position (m) in the
    optical frame of MuJoCo's head camera (``ee_cam_<side>`` (T, 3)) -- an independent check of the converter's
    kinematics and camera mount."""
    h, w = size
    env = BenchmarkEnv(task, options=EnvOptions(render_width=w, render_height=h))
    try:
        obs, info = env.reset(seed=seed, placement_index=placement_index)
        hold = env.current_targets()
        for _ in range(warmup_steps):
            obs, _, _, _, info = env.step(hold)
        env.steps = 0
        policy = make_policy("scripted", task)
        policy.reset(env)
        fx, fy, cx, cy = env.camera_intrinsics()
        metadata = {"task": task, "instruction": env.task.instruction, "split": split,
                    "placement_index": placement_index, "seed": seed, "embodiment": "h1_inspire",
                    "source": "twin_scripted", "success": False}
        cam = env.model.camera("head_camera").id
        kin = mujoco.MjData(env.model)  # body poses of the current qpos (env.data's lag one physics step behind)
        truth: dict[str, list] = {"ee_cam_left": [], "ee_cam_right": []}
        with EpisodeBagWriter(path, metadata=metadata) as bag:
            bag.write_instruction(0, env.task.instruction)
            for t in range(ticks):
                stamp = tick_ns(t)
                joints = env.joint_positions()
                kin.qpos[:], kin.mocap_pos[:], kin.mocap_quat[:] = env.data.qpos, env.data.mocap_pos, env.data.mocap_quat
                mujoco.mj_kinematics(env.model, kin)
                mujoco.mj_camlight(env.model, kin)
                r_world_cam = kin.cam_xmat[cam].reshape(3, 3)  # MuJoCo camera: x right, y up, z backward
                for side in ("left", "right"):
                    ee = kin.xpos[env.model.body(env.robot.side(side).end_effector_link).id]
                    p = r_world_cam.T @ (ee - kin.cam_xpos[cam])
                    truth[f"ee_cam_{side}"].append(p * np.array([1.0, -1.0, -1.0]))  # -> optical frame
                bag.write_clock(stamp)
                bag.write_joint_state(stamp, list(joints), list(joints.values()))
                bag.write_image(stamp, env.render())
                bag.write_camera_info(stamp, width=w, height=h, fx=fx, fy=fy, cx=cx, cy=cy)
                bag.write_task_status(stamp, task, success=info["success"], progress=info["progress"],
                                      subtasks=info["subtasks"])
                targets = policy.act(env, obs)
                bag.write_joint_command(stamp, list(targets), list(targets.values()))
                obs, _, terminated, truncated, info = env.step(targets)
                if terminated or truncated:
                    break
            metadata["success"] = bool(info["success"])
            bag.update_metadata(success=metadata["success"])
        return {**metadata, "_truth": {k: np.array(v) for k, v in truth.items()}}
    finally:
        env.close()
