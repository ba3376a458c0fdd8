"""Robot demonstration bags -> training samples in the human action space (paper §3.3).

For every camera frame t of an episode bag (``rosbag_episodes``):

1. Robot state: the last ``/joint_states`` message whose header stamp is not after the image's stamp. Frames
   before the first joint state are dropped (counted in the report); a state older than ``max_state_age_s`` is
   counted as stale.
2. Forward kinematics (Pinocchio, ``egovla_description.kinematics.RobotKinematics``, joints the message does not
   name keep the robot's initial posture): poses in the robot's root link (``pelvis``) of the head camera's
   optical frame (``head_camera_optical_frame``: x right, y down, z forward; the description's camera mount,
   torso + (0.09, 0, 0.65) m pitched 50 deg down), of both end effectors ``L/R_hand_base_link`` and of the ten
   Inspire fingertip frames. The root link stands in for the world frame: the robot's base does not move
   during an episode (true of the twin and of a standing H1).
3. Into the camera frame of the same instant: ``T_cam_ee = inv(T_root_cam) @ T_root_ee``, fingertips likewise.
   MANO quantities via ``action_space.ee_pose_to_mano`` (``R_mano = R_ee @ AXIS_CHANGE``, ``transl = p_ee -
   root_offset``) and the hand pose by fitting the hand model's PCA to the robot fingertips
   (``retarget.fit_hand_to_robot``, all frames of a hand in one batch; its defaults: 6 fitted components,
   fingertip offsets divided by 1.5).
4. Sample t: proprio = MANO transl (m), global orientation (axis-angle, rad) and the robot's five fingertips
   (m, absolute) in camera(t); labels: step k = 1..30 is the hand at frame ``min(t + k, N - 1)`` expressed in
   camera(t) (``camera_frame.future_indices``/``to_current_camera``), its PCA from the fit of that frame;
   ``action_mask`` is False where ``t + k`` is past the episode's last frame.
5. ``DatasetWriter`` writes the episode (one sample per frame, frames JPEG by default).

Steps are frames: the bag's images must come at the control rate ``fps`` (checked on the median frame period).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from egovla_description import HEAD_CAMERA_OPTICAL_FRAME, RobotDescription, load_robot
from egovla_description.geometry import matrix_to_axis_angle, transform_inverse, transform_points
from egovla_description.kinematics import RobotKinematics

from ..action_space import CHUNK_STEPS, SIDES, HandAction, ee_pose_to_mano, join_step
from ..hands import HandModel, load_hand_model
from ..retarget.fit import FitConfig, fit_hand_to_robot
from .camera_frame import future_indices
from .rosbag_episodes import EpisodeBagError, EpisodeRecording, read_episode_bag
from .storage import DatasetWriter, EpisodeLabels


@dataclass
class RobotFrames:
    """Per-frame kinematics of one episode, every array in the camera optical frame of its own frame (m)."""

    frame_index: np.ndarray  # (N,) indices into the recording's images that have a robot state
    t_root_cam: np.ndarray  # (N, 4, 4) camera optical frame in the root link
    t_root_ee: dict  # side -> (N, 4, 4) end effector in the root link
    tips_root: dict  # side -> (N, 5, 3) fingertips in the root link, thumb..pinky
    t_cam_ee: dict  # side -> (N, 4, 4) end effector in the camera frame of the same instant
    tips_cam: dict  # side -> (N, 5, 3)
    state_age_s: np.ndarray  # (N,) image stamp minus the used joint state's stamp


@dataclass
class EpisodeReport:
    """What converting one bag did. Residuals: the fit's robot-scale fingertip distance (mm)."""

    bag: str
    episode: str
    frames: int
    samples: int
    dropped_frames: int
    stale_states: int
    fit_residual_mean_mm: dict
    fit_residual_max_mm: dict
    seconds: float


def robot_frames(rec: EpisodeRecording, robot: RobotDescription | None = None,
                 kinematics: RobotKinematics | None = None) -> RobotFrames:
    """Step 1-3 of the module docstring for every image of ``rec`` that has a joint state at or before it."""
    kin = kinematics or RobotKinematics(robot)
    robot = kin.robot
    known = set(robot.movable_joint_names)
    cols = [i for i, n in enumerate(rec.joint_names) if n in known]
    names = [rec.joint_names[i] for i in cols]
    state_idx = np.searchsorted(rec.joint_stamps_ns, rec.image_stamps_ns, side="right") - 1
    keep = np.nonzero(state_idx >= 0)[0]
    state_idx = state_idx[keep]
    frames = [HEAD_CAMERA_OPTICAL_FRAME]
    for side in SIDES:
        spec = robot.side(side)
        frames += [spec.end_effector_link, *spec.fingertip_links]
    poses = np.empty((len(keep), len(frames), 4, 4))
    cache: dict[int, np.ndarray] = {}
    for n, s in enumerate(state_idx):
        if s not in cache:
            q = kin.q_from_positions(dict(zip(names, rec.joint_positions[s, cols].tolist())))
            p = kin.frame_poses(q, frames)
            cache[s] = np.stack([p[f] for f in frames])
        poses[n] = cache[s]
    t_root_cam = poses[:, 0]
    t_root_ee, tips_root, t_cam_ee, tips_cam = {}, {}, {}, {}
    inv_cam = transform_inverse(t_root_cam)
    for k, side in enumerate(SIDES):
        base = 1 + 6 * k
        t_root_ee[side] = poses[:, base]
        tips_root[side] = poses[:, base + 1:base + 6, :3, 3]
        t_cam_ee[side] = inv_cam @ t_root_ee[side]
        tips_cam[side] = transform_points(inv_cam[:, None], tips_root[side])
    age = (rec.image_stamps_ns[keep] - rec.joint_stamps_ns[state_idx]) * 1e-9
    return RobotFrames(keep, t_root_cam, t_root_ee, tips_root, t_cam_ee, tips_cam, age)


def episode_labels(frames: RobotFrames, hands: dict, instruction: str, fit_config: FitConfig | None = None
                   ) -> tuple[EpisodeLabels, dict]:
    """Step 3-4 of the module docstring: labels for one sample per frame, and the fit residuals per side (N, 5) m."""
    n = len(frames.frame_index)
    inv_cam = transform_inverse(frames.t_root_cam)  # (N, 4, 4)
    fut = np.stack([future_indices(t, n) for t in range(n)])  # (N, 30)
    valid = (np.arange(n)[:, None] + np.arange(1, CHUNK_STEPS + 1)[None]) <= n - 1  # (N, 30)
    per_side, residuals = {}, {}
    proprio_t, proprio_r, proprio_tips = [], [], []
    for side in SIDES:
        hand: HandModel = hands[side]
        root_offset = hand.root_offset.detach().cpu().numpy().astype(np.float64)
        fit = fit_hand_to_robot(hand, frames.t_cam_ee[side], frames.tips_cam[side], fit_config)
        pca = fit.pca.detach().cpu().numpy().astype(np.float64)  # (N, 15)
        residuals[side] = fit.fingertip_residual_m.detach().cpu().numpy()
        transl, rot = ee_pose_to_mano(frames.t_cam_ee[side], side, root_offset)
        proprio_t.append(transl)
        proprio_r.append(matrix_to_axis_angle(rot))
        proprio_tips.append(frames.tips_cam[side])
        # Future end effectors seen from the current camera: inv(T_root_cam(t)) @ T_root_ee(t + k).
        future = inv_cam[:, None] @ frames.t_root_ee[side][fut]  # (N, 30, 4, 4)
        f_transl, f_rot = ee_pose_to_mano(future, side, root_offset)
        per_side[side] = HandAction(f_transl, f_rot, pca[fut])
    actions = join_step(per_side["left"], per_side["right"])  # (N, 30, 48)
    labels = EpisodeLabels(
        frame_index=np.arange(n), instruction=instruction,
        proprio_translation=np.stack(proprio_t, 1), proprio_rotation=np.stack(proprio_r, 1),
        proprio_fingertips=np.stack(proprio_tips, 1), proprio_mask=np.ones((n, 2), bool),
        actions=actions, action_mask=np.repeat(valid[:, :, None], 2, axis=2))
    return labels, residuals


class _ResizedFrames:
    """The kept frames of a recording, optionally resized to (height, width) on access."""

    def __init__(self, images: np.ndarray, keep: np.ndarray, size: tuple[int, int] | None):
        self.images, self.keep, self.size = images, keep, size

    def __len__(self):
        return len(self.keep)

    def __getitem__(self, i):
        img = self.images[self.keep[i]]
        if self.size is None or img.shape[:2] == tuple(self.size):
            return img
        return np.asarray(Image.fromarray(img).resize((self.size[1], self.size[0]), Image.BILINEAR))


def _check_rate(rec: EpisodeRecording, fps: float):
    if rec.num_frames < 2:
        raise EpisodeBagError(f"{rec.path}: {rec.num_frames} camera frame(s); an episode needs at least 2")
    period = float(np.median(np.diff(rec.image_stamps_ns))) * 1e-9
    if not abs(period * fps - 1.0) < 0.2:
        raise EpisodeBagError(f"{rec.path}: camera frames come every {period * 1e3:.1f} ms (median) but the "
                              f"control rate is {fps:g} Hz; record images at the control rate or pass fps")


def convert_bags(bag_paths: Sequence[str | Path], out_root: str | Path, *, hand_model: str | dict = "auto",
                 history_spacing: int = 6, fps: float = 30.0, image_size: tuple[int, int] | None = None,
                 source: str = "robot", fit_config: FitConfig | None = None, max_state_age_s: float = 0.1,
                 image_codec: str = "jpeg") -> list[EpisodeReport]:
    """Convert episode bags into one dataset at ``out_root`` (module docstring); returns one report per bag.

    ``hand_model``: a ``load_hand_model`` kind (``"auto"``, ``"standin"``, ``"mano"``) or ``{"left": HandModel,
    "right": HandModel}``. ``image_size`` (height, width) resizes the stored frames. The episode name is the bag
    folder's name; the embodiment comes from the bag's metadata (``"h1_inspire"`` if absent)."""
    if isinstance(hand_model, str):
        hands = {side: load_hand_model(side, kind=hand_model) for side in SIDES}
    else:
        hands = dict(hand_model)
    if {h.model_id for h in hands.values()} != {hands["left"].model_id}:
        raise ValueError("the left and right hand models have different ids")
    bag_paths = [Path(p) for p in bag_paths]
    if not bag_paths:
        raise ValueError("no bags to convert")
    names = [p.name for p in bag_paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"bag folder names must be unique (they name the episodes), repeated: {dup}")
    kin = RobotKinematics(load_robot())
    reports = []
    with DatasetWriter(out_root, hand_model=hands["left"].model_id, fps=fps, history_spacing=history_spacing,
                       image_codec=image_codec) as writer:
        for path in bag_paths:
            t0 = time.perf_counter()
            rec = read_episode_bag(path)
            _check_rate(rec, fps)
            frames = robot_frames(rec, kinematics=kin)
            if len(frames.frame_index) == 0:
                raise EpisodeBagError(f"{path}: no camera frame has a joint state at or before it")
            labels, residuals = episode_labels(frames, hands, rec.instruction, fit_config)
            embodiment = str(rec.metadata.get("embodiment") or "h1_inspire")
            writer.add_episode(path.name, _ResizedFrames(rec.images, frames.frame_index, image_size), labels,
                               source=source, embodiment=embodiment)
            n = len(frames.frame_index)
            reports.append(EpisodeReport(
                bag=str(path), episode=path.name, frames=rec.num_frames, samples=n,
                dropped_frames=rec.num_frames - n, stale_states=int((frames.state_age_s > max_state_age_s).sum()),
                fit_residual_mean_mm={s: round(float(r.mean()) * 1e3, 3) for s, r in residuals.items()},
                fit_residual_max_mm={s: round(float(r.max()) * 1e3, 3) for s, r in residuals.items()},
                seconds=round(time.perf_counter() - t0, 3)))
    return reports


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> int:
    parser = _Parser(
        prog="egovla-convert-bags",
        description="Convert robot demonstration bags (rosbag2 MCAP episodes, one folder each) into an EgoVLA "
                    "training dataset: wrist poses by forward kinematics into the head camera frame, hand pose by "
                    "fitting the hand model's PCA to the robot fingertips; one sample per camera frame.")
    parser.add_argument("bags", nargs="+", metavar="BAG", help="episode bag folders")
    parser.add_argument("--out", required=True, help="output dataset folder (must not hold a dataset yet)")
    parser.add_argument("--hand", choices=["auto", "standin", "mano"], default="auto",
                        help="hand model (auto: MANO when $EGOVLA_MANO_DIR is set, else the stand-in)")
    parser.add_argument("--history-spacing", type=int, default=6, help="frames between history images (6)")
    parser.add_argument("--fps", type=float, default=30.0, help="control rate = camera rate of the bags (30)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="resize stored frames to H W (default: as recorded)")
    parser.add_argument("--source", default="robot", help="dataset source name (robot)")
    parser.add_argument("--codec", choices=["jpeg", "png"], default="jpeg", help="frame codec (jpeg)")
    parser.add_argument("--fit-iterations", type=int, default=FitConfig.iterations,
                        help=f"Adam iterations of the hand fit ({FitConfig.iterations})")
    parser.add_argument("--no-fit-retry", action="store_true",
                        help="do not refit poorly fitted frames from more starts (faster, coarser)")
    args = parser.parse_args(argv)
    if args.fit_iterations < 1 or args.history_spacing < 1 or args.fps <= 0:
        parser.error("--fit-iterations and --history-spacing must be >= 1 and --fps > 0")
    fit = FitConfig(iterations=args.fit_iterations, retry_starts=0 if args.no_fit_retry else FitConfig.retry_starts)
    try:
        reports = convert_bags(args.bags, args.out, hand_model=args.hand, history_spacing=args.history_spacing,
                               fps=args.fps, image_size=tuple(args.image_size) if args.image_size else None,
                               source=args.source, image_codec=args.codec, fit_config=fit)
    except (ValueError, FileExistsError, FileNotFoundError) as err:  # EpisodeBagError, SampleError, bad options
        print(f"egovla-convert-bags: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    total = sum(r.samples for r in reports)
    secs = sum(r.seconds for r in reports)
    print(json.dumps({"out": str(args.out), "episodes": len(reports), "samples": total,
                      "frames_per_s": round(total / secs, 1) if secs else None,
                      "reports": [asdict(r) for r in reports]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
