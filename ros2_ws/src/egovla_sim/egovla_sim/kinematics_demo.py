"""The kinematics demo: both hands trace a figure eight through the IK at 30 Hz in MuJoCo, seen by the head camera.

Each 30 Hz tick the wrist (hand base) targets move along a figure eight in the torso frame while the wrists roll
and the hands open and close; the Pinocchio IK turns the targets into arm joint targets (warm-started from the
previous solution), and MuJoCo's PD drives track them with real dynamics. Written to the output folder:

- ``kinematics_demo.mp4``: the head-camera view, with the target path projected through the camera model,
- ``tracking_error.png``: position and rotation errors over time (IK residual and physical tracking),
- ``kinematics_demo.json``: the error and timing statistics printed at the end.

The projected path landing on the rendered hands is itself a check that the MuJoCo camera, the pinhole model
and the camera extrinsics agree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egovla_description import load_robot
from egovla_description.config import ConfigError, config_to_dict, load_config
from egovla_description.geometry import rotation_distance, rpy_to_matrix, transform_inverse, transform_points
from egovla_description.ik import DualArmIK, IKConfig

from .scene import RobotScene, SceneOptions


@dataclass
class FigureEightConfig:
    period_s: float = 4.0  # one full figure eight
    amplitude_y_m: float = 0.08  # side to side (each hand mirrored)
    amplitude_z_m: float = 0.05  # up and down, twice per period
    # The path is centred on the hand pose of this arm posture (joint-name suffix -> rad, others 0): hands in front
    # of the chest, fingers forward, palms facing each other, every joint well inside its limits.
    anchor_posture: dict[str, float] = field(default_factory=lambda: {"shoulder_pitch_joint": -0.6})
    center_offset_m: tuple[float, float, float] = (0.0, 0.03, 0.0)  # from the anchor pose; +y = away from the centre
    wrist_roll_rad: float = 0.25  # amplitude of the roll about the fingers' axis (mirrored between hands)

    def validate(self):
        if self.period_s <= 0:
            raise ValueError(f"figure_eight.period_s must be positive, got {self.period_s}")


@dataclass
class KinematicsDemoConfig:
    duration_s: float = 8.0  # figure-eight time, after the settle phase
    settle_s: float = 1.0  # the arms first move to the start of the path (not counted in the statistics)
    control_hz: float = 30.0
    physics_dt_s: float = 1.0 / 240.0
    render_width: int = 640
    render_height: int = 360
    hand_period_s: float = 2.0  # open -> closed -> open
    ik_mode: str = "converge"  # or "step": one damped step per tick
    output_dir: str = "outputs/kinematics_demo"
    video: bool = True
    figure_eight: FigureEightConfig = field(default_factory=FigureEightConfig)
    ik: IKConfig = field(default_factory=IKConfig)

    def validate(self):
        if self.duration_s <= 0 or self.settle_s < 0:
            raise ValueError("duration_s must be positive and settle_s non-negative")
        if self.control_hz <= 0 or self.physics_dt_s <= 0 or self.physics_dt_s > 1.0 / self.control_hz:
            raise ValueError(f"need 0 < physics_dt_s <= 1/control_hz, got {self.physics_dt_s} and {self.control_hz}")
        if self.ik_mode not in ("converge", "step"):
            raise ValueError(f"ik_mode must be 'converge' or 'step', got {self.ik_mode!r}")
        if self.render_width < 16 or self.render_height < 16:
            raise ValueError("render size must be at least 16x16")


def figure_eight_targets(t_s: float, start: dict[str, np.ndarray], cfg: FigureEightConfig) -> dict[str, np.ndarray]:
    """Hand-base targets (4x4, torso frame) at time ``t_s`` for each side, around its anchor pose ``start``."""
    w = 2.0 * math.pi / cfg.period_s
    out = {}
    for side, t0 in start.items():
        mirror = 1.0 if side == "left" else -1.0
        off = np.array(cfg.center_offset_m) * [1.0, mirror, 1.0]
        p = t0[:3, 3] + off + [0.0, mirror * cfg.amplitude_y_m * math.sin(w * t_s), cfg.amplitude_z_m * math.sin(2 * w * t_s)]
        # Roll about the hand's finger axis (the hand base link's y axis).
        roll = rpy_to_matrix(np.array([0.0, mirror * cfg.wrist_roll_rad * math.sin(w * t_s), 0.0]))
        t = np.eye(4)
        t[:3, :3] = t0[:3, :3] @ roll
        t[:3, 3] = p
        out[side] = t
    return out


def _anchor_q(joint_names, posture: dict[str, float]) -> np.ndarray:
    return np.array([next((v for suffix, v in posture.items() if n.endswith(suffix)), 0.0) for n in joint_names])


def hand_closure(t_s: float, period_s: float) -> float:
    """0 = open, 1 = closed; a smooth cycle."""
    return 0.5 - 0.5 * math.cos(2.0 * math.pi * t_s / period_s)


def _draw_overlay(image: np.ndarray, path_px: dict, current_px: dict) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    colors = {"left": (255, 200, 40), "right": (60, 200, 255)}
    for side, pts in path_px.items():
        for u, v in pts:
            draw.ellipse([u - 1.2, v - 1.2, u + 1.2, v + 1.2], fill=colors[side])
    for side, (u, v) in current_px.items():
        draw.ellipse([u - 7, v - 7, u + 7, v + 7], outline=colors[side], width=2)
    return np.asarray(img)


def run(cfg: KinematicsDemoConfig, progress: bool = True) -> dict:
    robot = load_robot()
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = RobotScene(robot, SceneOptions(render_width=cfg.render_width, render_height=cfg.render_height,
                                           timestep_s=cfg.physics_dt_s))
    ik = DualArmIK(robot, cfg.ik)
    sides = list(ik.arms)
    ee = {s: robot.side(s).end_effector_link for s in sides}
    start = {s: ik.arms[s].forward(_anchor_q(ik.arms[s].joint_names, cfg.figure_eight.anchor_posture)) for s in sides}
    t_world_torso = scene.body_pose(robot.head_camera.parent_link)
    t_torso_world = transform_inverse(t_world_torso)
    camera = robot.head_camera.intrinsics.resized(cfg.render_width, cfg.render_height)
    t_optical_torso = transform_inverse(robot.head_camera.T_parent_optical)
    # Hand joints that are commanded (mimic joints follow through the MJCF equality constraints).
    hand_joints = {s: [n for n in robot.side(s).hand_joints if robot.joint(n).mimic is None] for s in sides}
    hand_upper = {s: robot.limits(hand_joints[s])[1] for s in sides}
    hand_lower = {s: robot.limits(hand_joints[s])[0] for s in sides}

    dt = 1.0 / cfg.control_hz
    n_settle = int(round(cfg.settle_s * cfg.control_hz))
    n_total = n_settle + int(round(cfg.duration_s * cfg.control_hz))
    path_t = np.linspace(0.0, cfg.figure_eight.period_s, 120, endpoint=False)
    path_px = {}
    for s in sides:
        pts = np.array([figure_eight_targets(t, start, cfg.figure_eight)[s][:3, 3] for t in path_t])
        uv, ok = camera.project(transform_points(t_optical_torso, pts))
        path_px[s] = [tuple(p) for p in uv[ok]]

    command = {n: v for n, v in robot.initial_pose.items() if any(n in ik.arms[s].joint_names for s in sides)}
    for s in sides:
        for n in ik.arms[s].joint_names:
            command.setdefault(n, 0.0)
    log = {k: [] for k in ("t", "ik_ms", "closure")}
    for s in sides:
        for k in ("ik_pos_mm", "ik_rot_deg", "track_pos_mm", "track_rot_deg", "converged"):
            log[f"{s}_{k}"] = []
    frames = []
    iterator = range(n_total)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="kinematics demo", unit="tick")
    for k in iterator:
        t_path = max(0, k - n_settle) * dt
        targets = figure_eight_targets(t_path, start, cfg.figure_eight)
        t0 = time.perf_counter()
        result = ik.solve(targets, command, frame="torso", mode=cfg.ik_mode)
        ik_ms = (time.perf_counter() - t0) * 1e3
        command.update(result.positions)
        closure = hand_closure(t_path, cfg.hand_period_s) if k >= n_settle else 0.0
        hands = {}
        for s in sides:
            hands.update(zip(hand_joints[s], hand_lower[s] + closure * (hand_upper[s] - hand_lower[s])))
        scene.set_targets({**command, **hands})
        scene.step(dt)
        if k >= n_settle:
            log["t"].append(t_path)
            log["ik_ms"].append(ik_ms)
            log["closure"].append(closure)
            for s in sides:
                r = result.sides[s]
                actual = t_torso_world @ scene.body_pose(ee[s])
                log[f"{s}_ik_pos_mm"].append(r.position_error_m * 1e3)
                log[f"{s}_ik_rot_deg"].append(math.degrees(r.rotation_error_rad))
                log[f"{s}_track_pos_mm"].append(float(np.linalg.norm(actual[:3, 3] - targets[s][:3, 3]) * 1e3))
                log[f"{s}_track_rot_deg"].append(math.degrees(float(rotation_distance(actual[:3, :3], targets[s][:3, :3]))))
                log[f"{s}_converged"].append(bool(r.converged))
        if cfg.video:
            current = {}
            for s in sides:
                uv, ok = camera.project(transform_points(t_optical_torso, targets[s][:3, 3]))
                if ok:
                    current[s] = tuple(uv)
            frames.append(_draw_overlay(scene.render(), path_px, current))
    scene.close()

    stats = _statistics(log, sides)
    stats["config"] = config_to_dict(cfg)
    (out_dir / "kinematics_demo.json").write_text(json.dumps(stats, indent=2))
    _plot(log, sides, out_dir / "tracking_error.png")
    if cfg.video:
        import imageio.v3 as iio

        iio.imwrite(out_dir / "kinematics_demo.mp4", np.stack(frames), fps=cfg.control_hz, codec="libx264",
                    macro_block_size=2)
    stats["outputs"] = {"video": str(out_dir / "kinematics_demo.mp4") if cfg.video else None,
                        "plot": str(out_dir / "tracking_error.png"), "json": str(out_dir / "kinematics_demo.json")}
    return stats


def _statistics(log, sides) -> dict:
    def summary(values):
        v = np.asarray(values, float)
        return {"mean": float(v.mean()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
                "max": float(v.max())}

    out = {"ticks": len(log["t"]),
           "ik_time_ms_both_arms": {"median": float(np.median(log["ik_ms"])),
                                    "p99": float(np.percentile(log["ik_ms"], 99))}}
    for s in sides:
        out[s] = {
            "ik_converged_fraction": float(np.mean(log[f"{s}_converged"])),
            "ik_residual_position_mm": summary(log[f"{s}_ik_pos_mm"]),
            "ik_residual_rotation_deg": summary(log[f"{s}_ik_rot_deg"]),
            "tracking_position_mm": summary(log[f"{s}_track_pos_mm"]),
            "tracking_rotation_deg": summary(log[f"{s}_track_rot_deg"]),
        }
    return out


def _plot(log, sides, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(log["t"])
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    # The left line is drawn wider underneath: with a mirror-symmetric path the two sides often coincide.
    style = {"left": dict(color="tab:orange", lw=3.5, alpha=0.6), "right": dict(color="tab:blue", lw=1.3)}
    for s in sides:
        st = style.get(s, {})
        axes[0].plot(t, log[f"{s}_track_pos_mm"], **st, label=f"{s}: MuJoCo hand vs target")
        axes[0].plot(t, log[f"{s}_ik_pos_mm"], **st, ls="--", label=f"{s}: IK residual")
        axes[1].plot(t, log[f"{s}_track_rot_deg"], **st, label=f"{s}: MuJoCo hand vs target")
        axes[1].plot(t, log[f"{s}_ik_rot_deg"], **st, ls="--", label=f"{s}: IK residual")
    axes[0].set_ylabel("position error (mm)")
    axes[1].set_ylabel("rotation error (deg)")
    axes[2].plot(t, log["closure"], color="k")
    axes[2].set_ylabel("hand closure (0 open, 1 closed)")
    axes[2].set_xlabel("time on the figure eight (s)")
    for ax in axes[:2]:
        ax.set_yscale("symlog", linthresh=0.01)
        ax.legend(fontsize=8, ncol=2)
        ax.grid(alpha=0.3)
    fig.suptitle("Figure-eight wrist tracking at 30 Hz: Pinocchio IK -> MuJoCo PD drives")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="egovla-kinematics-demo",
        description="Both hands of the H1 + Inspire robot trace a figure eight through the Pinocchio IK at 30 Hz in "
                    "MuJoCo; writes a head-camera video, an error plot and statistics.")
    parser.add_argument("--config", default=None, help="YAML config (see config/kinematics_demo.yaml)")
    parser.add_argument("--output-dir", default=None, help="output folder (overrides output_dir)")
    parser.add_argument("--no-video", action="store_true", help="skip rendering (statistics and plot only)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. duration_s=4 ik.posture_gain=0.05")
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.no_video:
        overrides.append("video=false")
    try:
        cfg = load_config(KinematicsDemoConfig, args.config, overrides)
    except ConfigError as e:
        print(f"egovla-kinematics-demo: error: {e}", file=sys.stderr)
        return 2
    stats = run(cfg, progress=sys.stderr.isatty())
    print(f"kinematics demo: {stats['ticks']} ticks at {cfg.control_hz:g} Hz, IK mode {cfg.ik_mode!r}")
    print(f"  IK time, both arms: median {stats['ik_time_ms_both_arms']['median']:.3f} ms, "
          f"p99 {stats['ik_time_ms_both_arms']['p99']:.3f} ms")
    for s in ("left", "right"):
        st = stats[s]
        print(f"  {s:5s}: IK converged {100 * st['ik_converged_fraction']:.1f}% | IK residual median "
              f"{st['ik_residual_position_mm']['median']:.4f} mm | hand tracking mean "
              f"{st['tracking_position_mm']['mean']:.2f} mm, p95 {st['tracking_position_mm']['p95']:.2f} mm, max "
              f"{st['tracking_position_mm']['max']:.2f} mm; rotation mean {st['tracking_rotation_deg']['mean']:.2f} deg, "
              f"max {st['tracking_rotation_deg']['max']:.2f} deg")
    for k, v in stats["outputs"].items():
        if v:
            print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
