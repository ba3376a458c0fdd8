"""The robot table, the generated URDF and MJCF, and their agreement."""

from pathlib import Path

import mujoco
import numpy as np
import pinocchio as pin
import pytest
import yaml

from egovla_description import HEAD_CAMERA_OPTICAL_FRAME, RobotDescriptionError, load_robot
from egovla_description.geometry import quat_to_matrix
from egovla_description.mjcf import HEAD_CAMERA_NAME, robot_mjcf
from egovla_description.urdf import robot_urdf

# Facts of the benchmark robot (H1 with 7-DoF arms + Inspire hands), as published with the EgoVLA benchmark.
ARM_LIMITS = {  # joint suffix: (lower, upper, effort, velocity); the right shoulder roll is mirrored
    "shoulder_pitch_joint": (-2.44, 1.44, 40, 9),
    "shoulder_yaw_joint": (-1.3, 1.3, 18, 20),
    "elbow_pitch_joint": (-1.25, 1.57, 18, 20),
    "elbow_roll_joint": (-1.57, 1.57, 19, 31.4),
    "wrist_pitch_joint": (-0.471, 0.349, 19, 31.4),
    "wrist_yaw_joint": (-1.012, 1.012, 19, 31.4),
}
HAND_LIMITS = {
    "thumb_proximal_yaw_joint": (-0.1, 1.3),
    "thumb_proximal_pitch_joint": (0.0, 0.5),
    "thumb_intermediate_joint": (0.0, 0.8),
    "thumb_distal_joint": (0.0, 1.2),
    "index_proximal_joint": (0.0, 1.7),
    "index_intermediate_joint": (0.0, 1.7),
}
MIMIC = {  # follower suffix: (leader suffix, multiplier)
    "thumb_intermediate_joint": ("thumb_proximal_pitch_joint", 1.6),
    "thumb_distal_joint": ("thumb_proximal_pitch_joint", 2.4),
    "index_intermediate_joint": ("index_proximal_joint", 1.0),
    "middle_intermediate_joint": ("middle_proximal_joint", 1.0),
    "ring_intermediate_joint": ("ring_proximal_joint", 1.0),
    "pinky_intermediate_joint": ("pinky_proximal_joint", 1.0),
}


def test_joint_counts_groups_and_names(robot):
    assert len(robot.movable_joint_names) == 51  # 12 legs + torso + 2 x 7 arm + 2 x 12 hand
    assert len(robot.mimic_joint_names) == 12
    assert len(robot.independent_joint_names(robot.fixed_in_benchmark)) == 50 - 12
    assert robot.fixed_in_benchmark == ("torso_joint",)
    for side, prefix, hand in (("left", "left_", "L_"), ("right", "right_", "R_")):
        s = robot.side(side)
        assert len(s.arm_joints) == 7 and all(n.startswith(prefix) for n in s.arm_joints)
        assert len(s.hand_joints) == 12 and all(n.startswith(hand) for n in s.hand_joints)
        assert s.end_effector_link == f"{hand}hand_base_link"
        assert s.fingertip_links == tuple(f"{hand}{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky"))
        # The arm group is exactly the movable chain from the arm base to the end effector.
        chain = [j.name for j in robot.chain(s.arm_base_link, s.end_effector_link) if not j.is_fixed]
        assert tuple(chain) == s.arm_joints


def test_limits_and_mimic_match_the_published_facts(robot):
    for side in ("left", "right"):
        for suffix, (lo, hi, eff, vel) in ARM_LIMITS.items():
            lim = robot.joint(f"{side}_{suffix}").limit
            assert (lim.lower, lim.upper, lim.effort, lim.velocity) == (lo, hi, eff, vel)
    lower, upper = robot.limits(["left_shoulder_roll_joint", "right_shoulder_roll_joint"])
    assert lower.tolist() == [-0.17, -3.11] and upper.tolist() == [3.11, 0.17]
    for hand in ("L_", "R_"):
        for suffix, (lo, hi) in HAND_LIMITS.items():
            lim = robot.joint(hand + suffix).limit
            assert (lim.lower, lim.upper, lim.effort, lim.velocity) == (lo, hi, 1.0, 0.5)
        for follower, (leader, mult) in MIMIC.items():
            m = robot.joint(hand + follower).mimic
            assert m.joint == hand + leader and m.multiplier == mult and m.offset == 0.0


def test_fill_mimic_follows_the_leaders(robot):
    full = robot.fill_mimic({"L_thumb_proximal_pitch_joint": 0.4, "R_index_proximal_joint": 1.2})
    assert full["L_thumb_intermediate_joint"] == pytest.approx(0.64)
    assert full["L_thumb_distal_joint"] == pytest.approx(0.96)
    assert full["R_index_intermediate_joint"] == pytest.approx(1.2)
    assert full["L_index_intermediate_joint"] == 0.0


def test_head_camera_matches_the_benchmark_camera(robot):
    """The benchmark spawns its camera at world (0.09, 0, 1.70), quaternion (wxyz, OpenGL convention: looks along
    -z, y up) (0.66446, 0.24184, -0.24184, -0.664464), with the robot root at z = 1.05."""
    cam = robot.head_camera
    r_gl = quat_to_matrix(np.array([0.66446, 0.24184, -0.24184, -0.664464]))
    r_optical = r_gl @ np.diag([1.0, -1.0, -1.0])
    t = cam.T_parent_optical  # torso_link == pelvis frame (torso fixed at 0), root at world z 1.05
    assert np.allclose(t[:3, 3] + [0, 0, 1.05], [0.09, 0.0, 1.70], atol=1e-9)
    assert np.abs(t[:3, :3] - r_optical).max() < 1e-5
    k = cam.intrinsics
    assert (k.width, k.height, k.cx, k.cy) == (1280, 720, 640.0, 360.0)
    assert k.fx == k.fy == pytest.approx(8.0 / 20.955 * 1280, abs=1e-3)


def _pin_and_mj(robot, **mj_kwargs):
    pm = pin.buildModelFromXML(robot_urdf(robot))
    mm = mujoco.MjModel.from_xml_string(robot_mjcf(robot, **mj_kwargs))
    return pm, pm.createData(), mm, mujoco.MjData(mm)


def test_urdf_and_mjcf_forward_kinematics_agree(robot):
    """200 random in-limit configurations: every body (wrists, fingertips, all links) and the head camera."""
    pm, pd, mm, md = _pin_and_mj(robot)
    names = [pm.names[i] for i in range(1, pm.njoints)]
    assert sorted(names) == sorted(mm.joint(i).name for i in range(mm.njnt))
    assert "torso_joint" not in names  # fixed, as in the benchmark
    bodies = [mm.body(b).name for b in range(1, mm.nbody)]
    assert {"L_hand_base_link", "R_hand_base_link", "L_thumb_tip", "R_pinky_tip"} <= set(bodies)
    cam_id = mm.camera(HEAD_CAMERA_NAME).id
    optical = pm.getFrameId(HEAD_CAMERA_OPTICAL_FRAME)
    rng = np.random.default_rng(0)
    worst_pos = worst_rot = 0.0
    for _ in range(200):
        values = {n: rng.uniform(robot.joint(n).limit.lower, robot.joint(n).limit.upper) for n in names}
        q = np.zeros(pm.nq)
        for n, v in values.items():
            q[pm.joints[pm.getJointId(n)].idx_q] = v
            md.qpos[mm.jnt_qposadr[mm.joint(n).id]] = v
        pin.framesForwardKinematics(pm, pd, q)
        mujoco.mj_kinematics(mm, md)
        mujoco.mj_camlight(mm, md)
        for b, name in enumerate(bodies, start=1):
            t = pd.oMf[pm.getFrameId(name)]
            worst_pos = max(worst_pos, np.abs(t.translation - md.xpos[b]).max())
            worst_rot = max(worst_rot, np.abs(t.rotation - md.xmat[b].reshape(3, 3)).max())
        t = pd.oMf[optical]
        worst_pos = max(worst_pos, np.abs(t.translation - md.cam_xpos[cam_id]).max())
        worst_rot = max(worst_rot, np.abs(t.rotation - md.cam_xmat[cam_id].reshape(3, 3) @ np.diag([1, -1, -1])).max())
    assert worst_pos < 1e-6, worst_pos
    assert worst_rot < 1e-6, worst_rot


def test_urdf_carries_limits_masses_and_mimic(robot):
    pm = pin.buildModelFromXML(robot_urdf(robot, fixed_joints=()))
    assert pm.nq == 51
    for name in ("left_wrist_pitch_joint", "R_thumb_distal_joint", "torso_joint"):
        j = robot.joint(name)
        idx = pm.joints[pm.getJointId(name)].idx_q
        assert pm.lowerPositionLimit[idx] == j.limit.lower and pm.upperPositionLimit[idx] == j.limit.upper
        assert pm.effortLimit[idx] == j.limit.effort and pm.velocityLimit[idx] == j.limit.velocity
    total = sum(link.mass for link in robot.links if link.mass)
    assert sum(pm.inertias[i].mass for i in range(pm.njoints)) == pytest.approx(total, rel=1e-9)
    mimic = pin.buildModelFromXML(robot_urdf(robot), mimic=True)
    assert mimic.nq == 50 - 12


def test_mjcf_actuators_follow_the_benchmark_drives(robot):
    mm = mujoco.MjModel.from_xml_string(robot_mjcf(robot))
    names = [mm.actuator(i).name for i in range(mm.nu)]
    assert len(names) == 50 - 12  # mimic joints are coupled by equality constraints
    assert mm.neq == 12
    arm = mm.actuator("left_elbow_pitch_joint")
    assert arm.gainprm[0] == 2000.0 and -arm.biasprm[2] == 75.0
    assert tuple(arm.forcerange) == (-100.0, 100.0) and tuple(arm.ctrlrange) == (-1.25, 1.57)
    hand = mm.actuator("R_index_proximal_joint")
    assert tuple(hand.forcerange) == (-10.0, 10.0)
    independent = mujoco.MjModel.from_xml_string(robot_mjcf(robot, hand_mimic="independent"))
    assert independent.nu == 50 and independent.neq == 0  # the benchmark asset: all 12 hand joints driven


def _hold_and_measure(mm, md, names, seconds):
    n = int(seconds / mm.opt.timestep)
    mujoco.mj_step(mm, md, nstep=n)
    return np.array([md.qpos[mm.jnt_qposadr[mm.joint(j).id]] for j in names]), np.abs(md.qvel).max()


def test_mjcf_stands_still_under_gravity(robot):
    mm = mujoco.MjModel.from_xml_string(robot_mjcf(robot, base_pos=(0, 0, 1.05)))
    md = mujoco.MjData(mm)
    pose = robot.fill_mimic(robot.initial_pose)
    for i in range(mm.njnt):
        md.qpos[mm.jnt_qposadr[i]] = pose.get(mm.joint(i).name, 0.0)
    for i in range(mm.nu):
        md.ctrl[i] = pose.get(mm.actuator(i).name, 0.0)
    names = [mm.joint(i).name for i in range(mm.njnt)]
    q0 = np.array([md.qpos[mm.jnt_qposadr[mm.joint(j).id]] for j in names])
    q1, _ = _hold_and_measure(mm, md, names, 1.0)
    q2, vmax = _hold_and_measure(mm, md, names, 2.0)
    assert np.isfinite(md.qpos).all()
    assert vmax < 1e-3, f"still moving after 3 s: max |qvel| = {vmax}"
    assert np.abs(q2 - q1).max() < 1e-4  # no drift
    assert np.abs(q2 - q0).max() < 0.03  # sag under gravity against the PD drives stays small


def test_mimic_equality_couples_the_fingers(robot):
    mm = mujoco.MjModel.from_xml_string(robot_mjcf(robot))
    md = mujoco.MjData(mm)
    md.ctrl[mm.actuator("L_thumb_proximal_pitch_joint").id] = 0.4
    md.ctrl[mm.actuator("L_index_proximal_joint").id] = 1.0
    mujoco.mj_step(mm, md, nstep=int(4.0 / mm.opt.timestep))
    q = lambda n: md.qpos[mm.jnt_qposadr[mm.joint(n).id]]  # noqa: E731
    assert q("L_index_proximal_joint") == pytest.approx(1.0, abs=0.03)
    assert q("L_index_intermediate_joint") == pytest.approx(q("L_index_proximal_joint"), abs=0.01)
    assert q("L_thumb_distal_joint") == pytest.approx(2.4 * q("L_thumb_proximal_pitch_joint"), abs=0.02)


def test_head_camera_renders_points_where_the_pinhole_model_projects_them(robot):
    """A small red ball placed in view shows up at the pixel the table's intrinsics and extrinsics predict."""
    import xml.etree.ElementTree as ET

    from egovla_description.geometry import transform_inverse, transform_points

    root = ET.fromstring(robot_mjcf(robot, base_pos=(0, 0, 1.05)))
    ET.SubElement(root, "visual").append(ET.Element("global", offwidth="640", offheight="360"))
    ball_world = np.array([0.45, 0.12, 1.10])
    world = root.find("worldbody")
    ET.SubElement(world, "geom", type="sphere", size="0.01", pos=" ".join(map(str, ball_world)), rgba="1 0 0 1",
                  contype="0", conaffinity="0")
    ET.SubElement(world, "light", pos="0 0 3", dir="0 0 -1", directional="true")
    mm = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    md = mujoco.MjData(mm)
    mujoco.mj_forward(mm, md)
    with mujoco.Renderer(mm, 360, 640) as renderer:
        renderer.update_scene(md, camera=HEAD_CAMERA_NAME)
        img = renderer.render().astype(int)
    red = (img[..., 0] > 150) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red.sum() > 20
    vs, us = np.nonzero(red)
    t_world_optical = robot.head_camera.T_parent_optical.copy()
    t_world_optical[2, 3] += 1.05
    p = transform_points(transform_inverse(t_world_optical), ball_world)
    uv, ok = robot.head_camera.intrinsics.resized(640, 360).project(p)
    assert ok
    # Pixel centres sit at integer + 0.5 in the renderer's image.
    assert np.hypot(us.mean() + 0.5 - uv[0], vs.mean() + 0.5 - uv[1]) < 1.0


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["joints"][0].update(parent="nowhere"), "parent link 'nowhere' is not in links"),
    (lambda d: d["joints"][0]["limit"].update(lower=1.0, upper=-1.0), "lower 1.0 > upper -1.0"),
    (lambda d: d["joints"][0].update(axis=[0, 0, 2]), "not a unit vector"),
    (lambda d: d["groups"]["left_arm"].append("no_such_joint"), "unknown joints ['no_such_joint']"),
    (lambda d: d.pop("head_camera"), "missing required key 'head_camera'"),
    (lambda d: d["links"][0].update(mass=-1.0), "mass must be positive"),
    (lambda d: next(j for j in d["joints"] if j.get("mimic")).update(mimic={"joint": "x", "multiplier": 1}),
     "mimics 'x'"),
])
def test_malformed_tables_are_reported_with_file_and_reason(tmp_path, robot, mutate, message):
    data = yaml.safe_load(Path(robot.path).read_text())
    mutate(data)
    bad = tmp_path / "bad_robot.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(RobotDescriptionError) as err:
        load_robot(bad)
    assert str(bad) in str(err.value) and message in str(err.value)


def test_unknown_robot_name_lists_the_known_ones():
    with pytest.raises(RobotDescriptionError, match=r"known robots: \['h1_inspire'\]"):
        load_robot("h1_classic")
