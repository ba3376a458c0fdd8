"""What the ``policy`` node runs each tick, without ROS: proprioception from joint states, the EgoVLA model and the
twin's scripted experts expressed as action chunks, and the sim-only MuJoCo state vector.

- ``proprio_from_positions``: robot joint positions by URDF name -> the policy's proprio in the camera optical frame
  of the same instant (MANO ``transl``, MANO rotation as axis-angle, the robot's five fingertips per hand), through
  ``egovla_training.data.convert_bags.robot_frames`` (the training data's own FK path, one frame).
- ``EgoVLAPlugin``: ``EgoVLAPolicy`` from a checkpoint folder; per tick push the frame (or take the camera node's
  frame history), predict a (30, 48) chunk.
- ``ScriptedPlugin``: the twin's scripted expert as chunks. The expert is a privileged oracle (object poses, task
  placement), so the plugin owns a replica ``BenchmarkEnv`` of the bridge's task and placement and loads the bridge's
  full MuJoCo state into it every tick (``/sim/state``, ``pack_sim_state`` / ``load_sim_state``); the expert's
  joint targets for the tick become one action step (arm targets -> FK of the hand base links -> camera frame ->
  ``ee_pose_to_mano``; hand joint targets -> robot fingertips in the hand base frame -> hand PCA by
  ``retarget.fit.fit_hand_to_robot``, cached by the fingertips rounded to ``fit_round_m``), repeated over the 30
  steps (a constant chunk). Run the smoother with large decay rates for such chunks (``k_wrist:=5 k_hand:=5``) so
  the newest chunk dominates the ensemble (older constant chunks hold older targets).
- ``pack_sim_state`` / ``load_sim_state``: the sim-only ``/sim/state`` vector (std_msgs/Float64MultiArray data):
  ``[stamp_ns, seed, time, qpos (nq), qvel (nv), act (na), ctrl (nu), mocap_pos (nmocap x 3), mocap_quat
  (nmocap x 4)]``; the stamp is exact in float64 for sim times below 104 days; ``seed`` is the episode's seed (the
  placement is drawn from it when the task status's ``placement_index`` is empty; it is not in the task status
  because the evaluator reads every unknown status value as a subtask flag). Loading it and calling ``mj_forward``
  reproduces every pose and the ``ctrl`` the expert reads.

Heavy imports (torch, the training package, the simulator) happen inside the functions that need them, so the
bridge can import the state packing cheaply.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

SIM_STATE_FIELDS = ("stamp_ns", "seed", "time", "qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat")
SIDES = ("left", "right")


# --- the sim-only state vector ---------------------------------------------------------------------------------

def sim_state_sizes(model) -> list[tuple[str, int]]:
    return [("stamp_ns", 1), ("seed", 1), ("time", 1), ("qpos", model.nq), ("qvel", model.nv), ("act", model.na),
            ("ctrl", model.nu), ("mocap_pos", 3 * model.nmocap), ("mocap_quat", 4 * model.nmocap)]


def pack_sim_state(model, data, stamp_ns: int, seed: int = 0) -> np.ndarray:
    """The MuJoCo state of ``data`` as one float64 vector (layout in the module docstring)."""
    return np.concatenate([[float(stamp_ns), float(seed), data.time], data.qpos, data.qvel, data.act, data.ctrl,
                           data.mocap_pos.ravel(), data.mocap_quat.ravel()]).astype(np.float64)


def sim_state_stamp_ns(vector) -> int:
    return int(round(float(vector[0])))


def sim_state_seed(vector) -> int:
    return int(round(float(vector[1])))


def load_sim_state(model, data, vector) -> None:
    """Write a ``pack_sim_state`` vector into ``data`` and ``mj_forward``; ValueError if it does not fit ``model``."""
    import mujoco

    vector = np.asarray(vector, dtype=np.float64)
    sizes = sim_state_sizes(model)
    total = sum(n for _, n in sizes)
    if vector.shape != (total,):
        raise ValueError(f"/sim/state has {vector.size} values, this task's model needs {total} "
                         f"({', '.join(f'{k} {n}' for k, n in sizes)}): another task or model?")
    if not np.isfinite(vector).all():
        raise ValueError("/sim/state has non-finite values")
    parts, i = {}, 0
    for name, n in sizes:
        parts[name] = vector[i:i + n]
        i += n
    data.time = float(parts["time"][0])
    data.qpos[:], data.qvel[:], data.ctrl[:] = parts["qpos"], parts["qvel"], parts["ctrl"]
    if model.na:
        data.act[:] = parts["act"]
    if model.nmocap:
        data.mocap_pos[:] = parts["mocap_pos"].reshape(-1, 3)
        data.mocap_quat[:] = parts["mocap_quat"].reshape(-1, 4)
    mujoco.mj_forward(model, data)


# --- images and proprioception ---------------------------------------------------------------------------------

def image_to_rgb(height: int, width: int, encoding: str, step: int, data) -> np.ndarray:
    """A sensor_msgs/Image's fields -> uint8 (H, W, 3) RGB (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``)."""
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}.get(encoding)
    if channels is None:
        raise ValueError(f"image encoding {encoding!r} not supported (rgb8, bgr8, rgba8, bgra8)")
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data, np.uint8)
    if step < width * channels or buf.size < step * height:
        raise ValueError(f"image {width}x{height} {encoding}: step {step} and {buf.size} bytes do not fit")
    img = buf[:step * height].reshape(height, step)[:, :width * channels].reshape(height, width, channels)
    if encoding.startswith("bgr"):
        img = img[..., 2::-1]
    return np.ascontiguousarray(img[..., :3])


def robot_frames_at(kinematics, positions: dict):
    """``convert_bags.robot_frames`` for one joint state (positions by URDF name): a ``RobotFrames`` of length 1."""
    from egovla_training.data.convert_bags import robot_frames

    names = list(positions)
    rec = SimpleNamespace(joint_names=names, joint_positions=np.array([[positions[n] for n in names]], float),
                          joint_stamps_ns=np.array([0], np.int64), image_stamps_ns=np.array([0], np.int64))
    return robot_frames(rec, kinematics=kinematics)


def proprio_from_positions(kinematics, root_offsets: dict, positions: dict) -> dict:
    """Joint positions by URDF name -> ``EgoVLAPolicy.predict``'s proprio (camera frame of the same instant)."""
    from egovla_description.geometry import matrix_to_axis_angle
    from egovla_training.action_space import ee_pose_to_mano

    frames = robot_frames_at(kinematics, positions)
    transl, rot, tips = [], [], []
    for side in SIDES:
        t, r = ee_pose_to_mano(frames.t_cam_ee[side][0], side, root_offsets[side])
        transl.append(t)
        rot.append(matrix_to_axis_angle(r))
        tips.append(frames.tips_cam[side][0])
    return {"translation": np.stack(transl), "rotation": np.stack(rot), "fingertips": np.stack(tips),
            "mask": np.ones(2, bool)}


class _Timing:
    def __init__(self):
        self.count, self.total_s, self.max_s, self.last_s = 0, 0.0, 0.0, 0.0

    def add(self, seconds: float):
        self.count += 1
        self.total_s += seconds
        self.max_s = max(self.max_s, seconds)
        self.last_s = seconds

    @property
    def mean_s(self) -> float:
        return self.total_s / self.count if self.count else 0.0


# --- plugins ---------------------------------------------------------------------------------------------------

class EgoVLAPlugin:
    """The learned policy. ``needs``: the tick's image (``frames="image"``: the frame history is kept here) or the
    camera node's frame history of the tick (``frames="history"``)."""

    name = "egovla"

    def __init__(self, checkpoint: str, history_spacing: int = 6, hand_dims: int = 15, device: str = "cpu",
                 robot=None, hand_model: str = "auto", frames: str = "image"):
        if frames not in ("image", "history"):
            raise ValueError(f"frames must be image or history, got {frames!r}")
        self.needs = (frames,)
        from egovla_description import load_robot
        from egovla_description.kinematics import RobotKinematics
        from egovla_training.hands import load_hand_model
        from egovla_training.policy import EgoVLAPolicy

        hands = {s: load_hand_model(s, kind=hand_model) for s in SIDES}
        self.root_offsets = {s: h.root_offset.detach().double().cpu().numpy() for s, h in hands.items()}
        self.policy = EgoVLAPolicy.from_checkpoint(checkpoint, hand_model=hands["left"].model_id,
                                                   history_spacing=history_spacing, hand_dims=hand_dims,
                                                   device=device)
        self.kinematics = RobotKinematics(robot or load_robot())
        self.num_frames = self.policy.model.config.num_frames
        self.timing = _Timing()
        self.has_instruction = False

    def set_instruction(self, text: str):
        self.policy.set_instruction(text)
        self.has_instruction = True

    def reset(self, status: dict | None = None, inputs: dict | None = None):
        self.policy.reset()

    def step(self, positions: dict, inputs: dict, stamp_ns: int | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        proprio = proprio_from_positions(self.kinematics, self.root_offsets, positions)
        if "history" in inputs:
            chunk = self.policy.predict(proprio, frames=inputs["history"])
        else:
            self.policy.push_frame(inputs["image"], stamp_ns)  # a re-sent tick replaces its frame
            chunk = self.policy.predict(proprio)
        self.timing.add(time.perf_counter() - t0)
        return chunk


class ScriptedPlugin:
    """The twin's scripted expert as constant chunks. ``needs``: the tick's ``/sim/state`` and task status."""

    name = "scripted"
    needs = ("sim_state", "status")
    has_instruction = True

    def __init__(self, robot=None, hand_model: str = "auto", fit_round_m: float = 0.003, fit_config=None):
        from egovla_description import load_robot
        from egovla_description.kinematics import RobotKinematics
        from egovla_training.hands import load_hand_model
        from egovla_training.retarget.fit import FitConfig

        self.robot = robot or load_robot()
        self.hands = {s: load_hand_model(s, kind=hand_model) for s in SIDES}
        self.root_offsets = {s: h.root_offset.detach().double().cpu().numpy() for s, h in self.hands.items()}
        self.kinematics = RobotKinematics(self.robot)
        # The training data's fit (FitConfig()) takes ~2 s per hand shape on one core (up to 5 s with its retries);
        # 100 iterations, a 2048-pose start library and no retry take ~0.18 s with the same residuals here.
        self.fit_config = fit_config or FitConfig(iterations=100, library_size=2048, retry_starts=0)
        self.fit_round_m = float(fit_round_m)
        self._fits: dict = {}
        self.env = None
        self.expert = None
        self.timing = _Timing()
        self.fit_timing = _Timing()
        self.last_targets: dict | None = None

    def set_instruction(self, text: str):
        pass

    def reset(self, status: dict, inputs: dict):
        """A new episode: replica env of ``status``'s task/placement/seed, the bridge's state, a fresh expert."""
        from egovla_sim.env import BenchmarkEnv, EnvOptions
        from egovla_sim.experts import make_policy
        from egovla_sim.tasks import get_task

        task = get_task(status["task"])
        if self.env is None or self.env.task.name != task.name:
            if self.env is not None:
                self.env.close()
            self.env = BenchmarkEnv(task, robot=self.robot, options=EnvOptions(render_width=64, render_height=36))
            self.expert = make_policy("scripted", task.name)
        placement = status.get("placement_index", "")
        self.env.reset(seed=sim_state_seed(inputs["sim_state"]),
                       placement_index=int(placement) if placement not in ("", None) else None)
        load_sim_state(self.env.model, self.env.data, inputs["sim_state"])
        self.env.steps = int(status.get("tick", "0") or 0)
        self.expert.reset(self.env)

    def targets(self, inputs: dict) -> dict:
        """Load this tick's state into the replica and ask the expert for its joint targets."""
        load_sim_state(self.env.model, self.env.data, inputs["sim_state"])
        return dict(self.expert.act(self.env, None))

    def step(self, positions: dict, inputs: dict, stamp_ns: int | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        targets = self.targets(inputs)
        self.last_targets = targets
        step = self.targets_to_step(targets, positions)
        self.timing.add(time.perf_counter() - t0)
        from egovla_training.action_space import CHUNK_STEPS
        return np.tile(step, (CHUNK_STEPS, 1))

    def targets_to_step(self, targets: dict, positions: dict) -> np.ndarray:
        """Joint targets (+ measured positions for joints without a target) -> one 48-value action step."""
        from egovla_description.geometry import transform_inverse, transform_points
        from egovla_training.action_space import HandAction, ee_pose_to_mano, join_step

        known = set(self.robot.movable_joint_names)
        q = {n: v for n, v in positions.items() if n in known}
        q.update({n: v for n, v in targets.items() if n in known})
        frames = robot_frames_at(self.kinematics, q)
        per_side = {}
        for side in SIDES:
            t_cam_ee = frames.t_cam_ee[side][0]
            transl, rot = ee_pose_to_mano(t_cam_ee, side, self.root_offsets[side])
            tips_hand = transform_points(transform_inverse(t_cam_ee), frames.tips_cam[side][0])
            pca = self._hand_pca(side, q, tips_hand)
            per_side[side] = HandAction(transl, rot, pca)
        return np.asarray(join_step(per_side["left"], per_side["right"]), dtype=np.float64)

    def _hand_pca(self, side: str, q: dict, tips_hand: np.ndarray) -> np.ndarray:
        """Hand PCA fitted to the robot fingertips in the hand base frame (so the fit depends on the hand joints
        only, not on where the wrist is), cached by those fingertips rounded to ``fit_round_m``."""
        from egovla_training.retarget.fit import fit_hand_to_robot

        key = (side, tuple(np.round(tips_hand.ravel() / self.fit_round_m).astype(int)))
        if key not in self._fits:
            t0 = time.perf_counter()
            fit = fit_hand_to_robot(self.hands[side], np.eye(4)[None], tips_hand[None], self.fit_config)
            self._fits[key] = fit.pca[0].detach().cpu().double().numpy()
            self.fit_timing.add(time.perf_counter() - t0)
        return self._fits[key]
