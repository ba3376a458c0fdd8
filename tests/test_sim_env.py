"""The MuJoCo twin: every task builds and rests, placements land, predicates see the simulated state,
bad targets are contained, divergence is detected, rollouts are deterministic, looks switch, the CLI works."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egovla_sim.env import BenchmarkEnv, EnvOptions
from egovla_sim.evaluation import run_rollout
from egovla_sim.experts import HoldPolicy, make_policy
from egovla_sim.tasks import DRAWER_JOINT_RANGE, LAPTOP_JOINT_RANGE, TASKS, Rollout, local_z_up

NO_SETTLE = EnvOptions(settle_s=0.0)


@pytest.fixture(scope="module")
def envs():
    made = {}

    def get(name):
        if name not in made:
            made[name] = BenchmarkEnv(name)
        return made[name]

    yield get
    for e in made.values():
        e.close()


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_resets_and_rests(envs, name):
    env = envs(name)
    obs, info = env.reset(seed=0, placement_index=4321)
    assert env.model.opt.timestep == pytest.approx(env.task.physics_dt / env.options.substeps_for(env.task))
    assert info["failure"] is None and not info["success"]
    assert len(env.action_names) == 50  # 12 leg + 14 arm + 24 hand joints, as the benchmark's action
    start = {n: p.copy() for n, p in obs["object_poses"].items()}
    hold = env.current_targets()
    for _ in range(45):
        obs, _, terminated, truncated, info = env.step(hold)
    assert info["failure"] is None and not terminated and not truncated
    for n, p in obs["object_poses"].items():
        # Nothing is pushed around by a robot holding still; the pour balls roll inside their glass at most.
        limit = 0.03 if n.startswith("ball") else 0.005
        assert np.linalg.norm(p[:3] - start[n][:3]) < limit, n
        # every object stays above the floor and near the table
        assert p[2] > 1.0 and 0.2 < p[0] < 1.1, n
    # objects land where the placement put them (xy), up to the settling at reset
    for n, pose in env.placement.poses.items():
        if not n.startswith("ball"):
            assert np.linalg.norm(obs["object_poses"][n][:2] - pose[:2]) < 0.01, n


def test_placement_grid_moves_objects(envs):
    env = envs("stack_can")
    env.reset(placement_index=0)
    a = env.object_pose("can")
    env.reset(placement_index=9999)
    b = env.object_pose("can")
    # grid index 0 and 9999 are opposite corners of the +-0.1 m square
    assert np.allclose(a[:2] - b[:2], [0.2, 0.2], atol=0.01)


def test_predicates_read_the_simulated_state(envs):
    env = envs("stack_can")
    env.reset(placement_index=100)
    plate = env.object_pose("plate")
    qadr = env.model.jnt_qposadr[env.model.body("can").jntadr[0]]
    env.data.qpos[qadr:qadr + 3] = plate[:3] + [0.0, 0.0, 0.01]  # drop the can onto the saucer (test only)
    env.data.qvel[:] = 0
    _, reward, terminated, _, info = env.step(env.current_targets())
    assert info["success"] and terminated and reward == 1.0
    assert info["progress"] == 1.0

    env = envs("open_drawer")
    env.reset(placement_index=100)
    assert env.task_state().joints["drawer/bottom_joint"] == pytest.approx(DRAWER_JOINT_RANGE[1], abs=1e-3)
    env.data.qpos[env.model.joint("drawer/bottom_joint").qposadr[0]] = DRAWER_JOINT_RANGE[0]
    _, _, terminated, _, info = env.step(env.current_targets())
    assert info["success"] and info["subtasks"]["move_door_success"] == 1.0

    env = envs("open_laptop")
    env.reset(placement_index=100)
    assert env.task_state().joints["laptop/hinge"] == pytest.approx(0.088, abs=0.02)
    env.data.qpos[env.model.joint("laptop/hinge").qposadr[0]] = 0.75 * LAPTOP_JOINT_RANGE[1]
    _, _, _, _, info = env.step(env.current_targets())
    assert info["success"]


def test_drawer_is_a_real_slide(envs):
    env = envs("close_drawer")
    env.reset(placement_index=100)
    before = env.object_pose("drawer")
    q0 = env.task_state().joints["drawer/bottom_joint"]
    # push on the drawer front with a force along +x (into the cabinet): the joint moves toward closed
    body = env.model.body("drawer/bottom").id
    for _ in range(15):
        env.data.xfrc_applied[body] = [60.0, 0, 0, 0, 0, 0]
        env.step(env.current_targets())
    env.data.xfrc_applied[body] = 0
    q1 = env.task_state().joints["drawer/bottom_joint"]
    assert q1 > q0 + 0.05
    assert np.allclose(env.object_pose("drawer"), before)  # the cabinet itself does not move


@pytest.mark.parametrize("can_dx", [-0.2, -0.25])
def test_closing_the_drawer_carries_a_can_onto_the_saucer(envs, can_dx):
    """Stack-Can-Into-Drawer: the saucer is fixed in the world while the drawer slides, so the drawer must close
    around it, and a can standing on the open drawer's floor rides in with it onto the saucer (flush with the
    floor). Before the cabinet was deepened, the saucer sat in the drawer's back wall and the drawer could not
    close; with a solid saucer on the floor the can stopped at its edge, 0.12 m short."""
    env = envs("stack_can_into_drawer")
    env.reset(placement_index=6581)
    plate = env.object_pose("plate")
    qadr = env.model.jnt_qposadr[env.model.body("can").jntadr[0]]
    env.data.qpos[qadr:qadr + 7] = [plate[0] + can_dx, plate[1], 1.168, 1, 0, 0, 0]  # stand it in (test only)
    env.data.qvel[:] = 0
    body = env.model.body("drawer/bottom").id
    dof = env.model.joint("drawer/bottom_joint").dofadr[0]
    hold = env.current_targets()
    info = {}
    for _ in range(90):  # push it shut at about 0.15 m/s, as a hand would (a hard shove topples the can)
        push = float(np.clip(60.0 * (0.15 - env.data.qvel[dof]), -8.0, 8.0))
        env.data.xfrc_applied[body] = [push, 0, 0, 0, 0, 0]
        _, _, terminated, _, info = env.step(hold)
        if terminated:
            break
    can = env.object_pose("can")
    assert env.task_state().joints["drawer/bottom_joint"] > 0.9 * DRAWER_JOINT_RANGE[1]
    assert can[0] - (plate[0] + can_dx) > 0.19  # carried by the drawer
    assert info["success"] and info["failure"] is None
    assert local_z_up(can[3:]) > 0.99  # still standing


def test_bad_targets_are_contained(envs):
    env = envs("push_box")
    env.reset(placement_index=5)
    hold = env.current_targets()
    name = "right_elbow_pitch_joint"
    i = env.action_names.index(name)
    lo, hi = env.model.actuator_ctrlrange[i]
    before = env.data.ctrl[i]
    _, _, _, _, info = env.step({**hold, name: float("nan")})
    assert info["non_finite_targets"] == 1 and env.data.ctrl[i] == before
    _, _, _, _, info = env.step({**hold, name: hi + 5.0})
    assert info["clamped_targets"] == 1 and env.data.ctrl[i] == hi
    assert np.isfinite(env.data.qpos).all()
    vec = np.array([hold[n] for n in env.action_names])
    vec[i] = np.inf
    _, _, _, _, info = env.step(vec)
    assert info["non_finite_targets"] == 2
    with pytest.raises(KeyError, match="no actuated joint"):
        env.step({"not_a_joint": 0.0})
    with pytest.raises(ValueError, match="50 values"):
        env.step(np.zeros(7))


def test_divergence_ends_the_episode_with_a_reason(envs):
    env = envs("push_box")
    env.reset(placement_index=5)
    env.data.qvel[env.model.jnt_dofadr[env.model.body("box").jntadr[0]]] = 1e6
    obs, reward, terminated, truncated, info = env.step(env.current_targets())
    assert terminated and not truncated and reward == 0.0
    assert info["failure"].startswith("diverged") and not info["success"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.current_targets())
    env.reset(placement_index=5)  # and a reset recovers
    assert env.step(env.current_targets())[4]["failure"] is None


def _joint_velocities(options: EnvOptions, joint: str, move: float, n: int = 24) -> np.ndarray:
    """Velocity of ``joint`` over ``n`` MuJoCo steps after its target jumps by ``move`` (Stack-Can, 1/480 s)."""
    import mujoco

    env = BenchmarkEnv("stack_can", options=options)
    env.reset(placement_index=0)
    dof = env.model.jnt_dofadr[env.model.joint(joint).id]
    targets = env.current_targets()
    targets[joint] += move
    env.set_targets(targets)
    v = []
    for _ in range(n):
        mujoco.mj_step(env.model, env.data)
        v.append(env.data.qvel[dof])
    env.close()
    return np.array(v)


@pytest.mark.parametrize("joint", ["right_elbow_roll_joint", "right_wrist_yaw_joint"])
def test_a_saturated_arm_drive_chatters_unless_steadied(joint):
    """A target jump that saturates the 100 N m drive of a light joint. With the drives as the robot table has them
    (the default) the velocity alternates every MuJoCo step (19.5, 0, 19.5, 0 rad/s on the elbow roll): the shaking
    that makes two hands holding touching cans diverge in Unload-Cans. With part of kv as joint damping and more
    armature (``steady_drives``, off by default) it rises smoothly toward effort / joint damping."""
    chatter = _joint_velocities(EnvOptions(settle_s=0.0), joint, 0.4)
    assert np.abs(np.diff(chatter, 2)).max() > 20
    steady = EnvOptions(settle_s=0.0, drive_joint_damping=15.0, drive_armature=0.05)
    smooth = _joint_velocities(steady, joint, 0.4, n=48)
    assert np.abs(np.diff(smooth, 2)).max() < 1.5
    assert np.abs(smooth).max() == pytest.approx(100.0 / steady.drive_joint_damping, rel=0.1)


def test_mujoco_steps_per_task():
    """Holding tasks run MuJoCo at 1/480 s (Flip-Mug too, from its 1/240 s benchmark step) except
    Stack-Can-Into-Drawer at 1/960 s; the others at half their benchmark step; an explicit count wins."""
    from egovla_sim.tasks import get_task

    step = {name: get_task(name).physics_dt / EnvOptions().substeps_for(get_task(name)) for name in TASKS}
    assert step["stack_can"] == pytest.approx(1 / 480) and step["unload_cans"] == pytest.approx(1 / 480)
    assert step["flip_mug"] == pytest.approx(1 / 480) and step["stack_can_into_drawer"] == pytest.approx(1 / 960)
    assert step["push_box"] == pytest.approx(1 / 240) and step["close_drawer"] == pytest.approx(1 / 480)
    assert EnvOptions(substeps=4).substeps_for(get_task("flip_mug")) == 4


def test_unload_cans_runs_on_steady_drives_and_the_others_on_the_robot_tables():
    """Unload-Cans (STEADY_DRIVE_TASKS) gets the steady drives by default; other tasks keep the table's drives;
    explicit options win either way."""
    joint = "right_wrist_yaw_joint"

    def damping_and_armature(task, **options):
        env = BenchmarkEnv(task, options=EnvOptions(**options))
        dof = env.model.jnt_dofadr[env.model.joint(joint).id]
        out = (float(env.model.dof_damping[dof]), float(env.model.dof_armature[dof]))
        env.close()
        return out

    table = damping_and_armature("stack_can")
    steady = damping_and_armature("unload_cans")
    assert steady[0] == pytest.approx(table[0] + 15.0) and steady[1] == pytest.approx(table[1] + 0.05)
    assert damping_and_armature("unload_cans", drive_joint_damping=0.0, drive_armature=0.0) == table
    assert damping_and_armature("stack_can", drive_joint_damping=15.0, drive_armature=0.05) == pytest.approx(steady)
    with pytest.raises(ValueError, match="must be >= 0"):
        BenchmarkEnv("stack_can", options=EnvOptions(drive_armature=-1.0))


def test_the_feet_can_leave_the_floor():
    """The robot's root is fixed, so its feet on the floor only load the leg drives (8 contacts in every MuJoCo
    step). ``robot_on_floor=False`` drops them; objects that fall off the table still land on the floor."""
    for on_floor in (True, False):
        env = BenchmarkEnv("stack_can", options=EnvOptions(robot_on_floor=on_floor))
        env.reset(placement_index=0)
        m, d = env.model, env.data
        floor = m.geom("floor").id
        feet = sum(floor in (c.geom1, c.geom2) for c in d.contact[:d.ncon])
        assert feet == (8 if on_floor else 0)
        can = [i for i in range(m.ngeom) if m.geom_bodyid[i] == m.body("can").id and m.geom_contype[i]][0]
        assert m.geom_contype[can] & m.geom_conaffinity[floor] or m.geom_contype[floor] & m.geom_conaffinity[can]
        env.close()


def _rollout_qpos(seed: int, task: str = "insert_cans") -> np.ndarray:
    env = BenchmarkEnv(task, options=NO_SETTLE)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    hold = env.current_targets()
    arm = [n for n in env.action_names if "shoulder" in n or "elbow" in n]
    for t in range(300):
        targets = dict(hold)
        for n in arm:
            targets[n] = hold[n] + 0.3 * np.sin(0.05 * t + rng.uniform())
        env.step(targets)
    env.close()
    return env.data.qpos.copy()


@pytest.mark.parametrize("task", ["insert_cans", "pour_balls"])  # Pour-Balls with MuJoCo's sleeping on
def test_same_seed_same_rollout(task):
    a, b, c = _rollout_qpos(3, task), _rollout_qpos(3, task), _rollout_qpos(4, task)
    assert np.array_equal(a, b)  # bit-identical
    assert not np.array_equal(a, c)


def test_resting_bodies_sleep_in_pour_balls_only():
    import mujoco

    env = BenchmarkEnv("pour_balls")
    env.reset(placement_index=0)
    for _ in range(10):
        env.step(env.current_targets())
    assert env.model.opt.enableflags & mujoco.mjtEnableBit.mjENBL_SLEEP
    assert env.data.ntree_awake < env.model.ntree  # the glass, its balls and the bowl at rest are frozen
    env.close()
    other = BenchmarkEnv("stack_can")
    assert not other.model.opt.enableflags & mujoco.mjtEnableBit.mjENBL_SLEEP
    other.close()
    off = BenchmarkEnv("pour_balls", options=EnvOptions(sleep=False))
    assert not off.model.opt.enableflags & mujoco.mjtEnableBit.mjENBL_SLEEP
    off.close()


def test_a_pour_rollout_does_not_depend_on_the_one_before_it():
    """Sleeping state is part of the reset: the same rollout after another one equals it in a fresh environment."""

    def run(env, placement):
        env.reset(seed=0, placement_index=placement)
        hold = env.current_targets()
        for t in range(60):
            targets = dict(hold)
            targets["right_elbow_pitch_joint"] = hold["right_elbow_pitch_joint"] - 0.01 * t
            env.step(targets)
        return env.data.qpos.copy()

    env = BenchmarkEnv("pour_balls")
    first = run(env, 1234)
    run(env, 17)
    again = run(env, 1234)
    env.close()
    fresh = BenchmarkEnv("pour_balls")
    assert np.array_equal(first, again) and np.array_equal(first, run(fresh, 1234))
    fresh.close()


def test_looks_switch_and_camera(envs):
    env = envs("stack_can")
    env.reset(placement_index=0, visual=(1, 1))
    img1 = env.render().astype(float)
    env.reset(placement_index=0, visual=(4, 3))
    img2 = env.render().astype(float)
    assert img1.shape == (360, 640, 3)
    assert np.abs(img1 - img2).mean() > 10  # floor, wall and table look different
    with pytest.raises(ValueError, match="room 6"):
        env.reset(visual=(6, 1))
    fx, fy, cx, cy = env.camera_intrinsics()
    assert fx == pytest.approx(488.6662 / 2, rel=1e-3) and (cx, cy) == (320.0, 180.0)
    # the can's top centre projects onto orange pixels (the Fanta can) in the head camera image
    cam = env.model.camera("head_camera").id
    r = env.data.cam_xmat[cam].reshape(3, 3)
    p = r.T @ (env.object_pose("can")[:3] + [0, 0, 0.07] - env.data.cam_xpos[cam])
    u, v = cx + fx * p[0] / -p[2], cy - fy * p[1] / -p[2]
    pixel = img1[int(round(v)), int(round(u))]
    assert pixel[0] > 150 and pixel[2] < 100, pixel


def test_depth_rendering():
    env = BenchmarkEnv("push_box", options=EnvOptions(render_width=160, render_height=90, depth=True))
    env.reset(placement_index=0)
    rgb, depth = env.render()
    env.close()
    assert rgb.shape == (90, 160, 3) and depth.shape == (90, 160)
    # the camera is 0.68 m above the table top and looks 50 deg down: the image centre hits the table ~0.9 m away
    assert 0.6 < depth[45, 80] < 1.3


def test_hold_rollout_record(tmp_path, envs):
    env = envs("open_laptop")
    r = Rollout(task="open_laptop", room=2, table=1, episode=0, trial=0, placement_index=7)
    rec = run_rollout(env, HoldPolicy(), r, warmup_steps=3)
    assert rec["steps"] == env.task.horizon and rec["success"] is False and rec["failure"] is None
    assert rec["progress"] == 0.0
    with pytest.raises(ValueError, match="no scripted expert|unknown policy"):
        make_policy("nonsense", "open_laptop")


def test_cli_view_info_eval(tmp_path, capsys):
    from egovla_sim.cli import main

    assert main(["info"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in TASKS) and "Put sprite cans to the left box" in listed
    out = tmp_path / "v.png"
    assert main(["view", "--task", "flip_mug", "--out", str(out), "--width", "320", "--height", "180"]) == 0
    from PIL import Image

    assert Image.open(out).size == (320, 180)
    assert main(["eval", "--task", "push_box", "--policy", "hold", "--episodes", "1", "--warmup", "2",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["summary"]["tasks"]["push_box"]["rollouts"] == 1
    assert "| Push-Box | 1 | 0.0 |" in (tmp_path / "ev" / "results.md").read_text()
    assert main(["eval", "--task", "nope", "--out", str(tmp_path / "x")]) == 2


# --- scripted experts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("task,placement", [("close_drawer", 6565), ("open_drawer", 6641), ("open_laptop", 2114),
                                            ("push_box", 5903), ("stack_can", 9489), ("insert_cans", 5946),
                                            ("unload_cans", 7163), ("insert_and_unload_cans", 7171),
                                            ("sort_cans", 5162), ("flip_mug", 4545), ("pour_balls", 6813),
                                            ("stack_can_into_drawer", 4551)])
def test_scripted_expert_solves_a_placement(task, placement):
    """One full rollout per task that has an expert (the evaluation table in docs/sim_twin.md has the rates)."""
    env = BenchmarkEnv(task)
    r = Rollout(task=task, room=1, table=1, episode=0, trial=0, placement_index=placement)
    rec = run_rollout(env, make_policy("scripted", task), r, warmup_steps=10)
    env.close()
    assert rec["success"] and rec["progress"] == 1.0 and rec["failure"] is None
    assert rec["steps"] < env.task.horizon
    assert rec["clamped_targets"] == 0 and rec["non_finite_targets"] == 0


def test_expert_joint_moves_reach_their_goal():
    from egovla_sim.experts import ScriptedExpert, Waypoint, hand_frame

    goal = (np.array([0.3, -0.25, 1.3]), hand_frame([0, 1.0, 0], [1.0, 0, 0], "right"))

    class Reach(ScriptedExpert):
        def script(self, env):
            yield Waypoint(1.0, {"right": goal}, mode="joint")
            yield Waypoint(0.5)

    env = BenchmarkEnv("push_box", options=NO_SETTLE)
    obs, _ = env.reset(placement_index=0)
    policy = Reach()
    policy.reset(env)
    for _ in range(45):
        obs, *_ = env.step(policy.act(env, obs))
    ee = env.ee_pose("right")
    env.close()
    from egovla_description.geometry import quat_to_matrix

    assert np.linalg.norm(ee[:3] - goal[0]) < 0.01
    assert np.degrees(np.arccos(np.clip((np.trace(quat_to_matrix(ee[3:]).T @ goal[1]) - 1) / 2, -1, 1))) < 3
    with pytest.raises(ValueError, match="no scripted expert for task 'stack_cans_on_the_moon'.*close_drawer"):
        make_policy("scripted", "stack_cans_on_the_moon")


def test_a_rollout_does_not_depend_on_the_rollouts_before_it():
    env = BenchmarkEnv("close_drawer")
    policy = make_policy("scripted", "close_drawer")
    a = Rollout(task="close_drawer", room=1, table=1, episode=0, trial=0, placement_index=6565)
    b = Rollout(task="close_drawer", room=2, table=1, episode=0, trial=1, placement_index=17)
    first = run_rollout(env, policy, a, warmup_steps=5)
    run_rollout(env, policy, b, warmup_steps=5)
    again = run_rollout(env, policy, a, warmup_steps=5)
    final_a = env.data.qpos.copy()
    env.close()
    for key in ("success", "steps", "subtasks", "progress"):
        assert first[key] == again[key]
    fresh = BenchmarkEnv("close_drawer")
    run_rollout(fresh, make_policy("scripted", "close_drawer"), a, warmup_steps=5)
    assert np.array_equal(fresh.data.qpos, final_a)  # bit-identical to a fresh environment and policy
    fresh.close()


def test_physics_step_options():
    hold_task = BenchmarkEnv("stack_can")
    push = BenchmarkEnv("push_box")
    # objects held in a hand need the finer MuJoCo step (see EnvOptions)
    assert hold_task.model.opt.timestep == pytest.approx(1 / 480) and push.model.opt.timestep == pytest.approx(1 / 240)
    hold_task.close()
    push.close()
    with pytest.raises(ValueError, match="under two MuJoCo steps"):
        BenchmarkEnv("push_box", options=EnvOptions(substeps=1, contact_time_constant_s=0.01))
    with pytest.raises(ValueError, match="substeps must be >= 1"):
        BenchmarkEnv("push_box", options=EnvOptions(substeps=0))
