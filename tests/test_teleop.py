"""Replayed hand tracking as a teleop source: recordings -> action steps (known answers), bad files, and the
replay node publishing the true next second as chunks, tick by tick."""

import time

import numpy as np
import pytest
import torch

from ros_harness import NodeProcess, wait_until

from egovla.teleop import RecordingError, chunk_at, load_recording, recording_to_steps
from egovla_description.geometry import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from egovla_training.action_space import SIDES, indices
from egovla_training.hands import FINGERTIPS, WRIST, load_hand_model
from egovla_training.retarget import FitConfig

FIT = FitConfig(robot_hand_scale=1.0, iterations=300)


@pytest.fixture(scope="module")
def hands():
    return {s: load_hand_model(s, kind="standin") for s in SIDES}


def write_recording(path, hands, n=12, fps=30.0, seed=0):
    """Both hands moving in front of the camera, posed by known PCA vectors (first 6 components)."""
    rng = np.random.default_rng(seed)
    pos, rot, kps, truth = [], [], [], []
    for h, side in enumerate(SIDES):
        pca = np.zeros((n, 15))
        pca[:, :6] = rng.uniform(-1.0, 1.0, (n, 6))
        orient = rng.normal(0, 0.4, (n, 3)) + np.array([0.0, 0.0, 0.3])
        transl = np.stack([np.linspace(-0.15 + 0.3 * h, -0.1 + 0.3 * h, n), np.full(n, 0.1), np.full(n, 0.45)], 1)
        dtype = hands[side].components.dtype
        k = hands[side](torch.as_tensor(pca, dtype=dtype), torch.as_tensor(orient, dtype=dtype),
                        torch.as_tensor(transl, dtype=dtype)).detach().double().numpy()
        pos.append(k[:, WRIST])
        rot.append(np.asarray(axis_angle_to_matrix(orient)))
        kps.append(k)
        truth.append(transl)
    np.savez(path, wrist_position=np.stack(pos, 1), wrist_rotation=np.stack(rot, 1), keypoints=np.stack(kps, 1),
             fps=fps, instruction="wave")
    return np.stack(truth, 1), np.stack(rot, 1)


def test_a_recording_becomes_steps_whose_hands_match_it(tmp_path, hands):
    transl, rot = write_recording(tmp_path / "r.npz", hands)
    rec = load_recording(tmp_path / "r.npz")
    assert len(rec) == 12 and rec.instruction == "wave"
    steps, residual = recording_to_steps(rec, hands, FIT)
    assert steps.shape == (12, 48)
    for h, side in enumerate(SIDES):
        np.testing.assert_allclose(steps[:, indices(side, "transl")], transl[:, h], atol=1e-6)
        np.testing.assert_allclose(rot6d_to_matrix(steps[:, indices(side, "rot6d")]), rot[:, h], atol=1e-6)
    assert residual.max() < 2e-3, residual.max()  # the fingertips are recovered (human scale)
    # the steps, put back through the hand model, land on the recorded fingertips
    for h, side in enumerate(SIDES):
        dtype = hands[side].components.dtype
        orient = matrix_to_axis_angle(rot6d_to_matrix(steps[:, indices(side, "rot6d")]))
        k = hands[side](torch.as_tensor(steps[:, indices(side, "pca")], dtype=dtype),
                        torch.as_tensor(orient, dtype=dtype),
                        torch.as_tensor(steps[:, indices(side, "transl")], dtype=dtype)).detach().double().numpy()
        err = np.linalg.norm(k[:, list(FINGERTIPS)] - rec.keypoints[:, h][:, list(FINGERTIPS)], axis=-1)
        assert err.max() < 2e-3, err.max()
    # chunks: the next 30 steps, the last one held
    c = chunk_at(steps, 5)
    assert np.array_equal(c[0], steps[6]) and np.array_equal(c[-1], steps[-1])


def test_another_frame_rate_is_resampled_to_30_hz(tmp_path, hands):
    write_recording(tmp_path / "r60.npz", hands, n=24, fps=60.0)
    steps, _ = recording_to_steps(load_recording(tmp_path / "r60.npz"), hands, FIT)
    assert len(steps) == 12


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("keypoints"), "missing array 'keypoints'"),
    (lambda d: d.__setitem__("keypoints", d["keypoints"][:, :, :20]), "keypoints must be"),
    (lambda d: d["wrist_position"].__setitem__((0, 0, 0), np.nan), "NaN"),
    (lambda d: d.__setitem__("wrist_rotation", 2 * d["wrist_rotation"]), "not rotations"),
    (lambda d: d.__setitem__("fps", -1.0), "fps must be"),
])
def test_bad_recordings_name_the_file_and_the_problem(tmp_path, hands, mutate, message):
    write_recording(tmp_path / "ok.npz", hands, n=3)
    data = dict(np.load(tmp_path / "ok.npz"))
    mutate(data)
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(RecordingError, match=message) as err:
        load_recording(tmp_path / "bad.npz")
    assert str(tmp_path / "bad.npz") in str(err.value)
    with pytest.raises(RecordingError, match="no such"):
        load_recording(tmp_path / "nothing.npz")


@pytest.mark.ros
def test_the_replay_node_publishes_the_next_second_each_tick(ros_domain, ros_probe, tmp_path, hands):
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from egovla.msgs import msg_to_chunk, s_to_stamp, stamp_to_s

    write_recording(tmp_path / "r.npz", hands, n=12)
    steps, _ = recording_to_steps(load_recording(tmp_path / "r.npz"), hands, FitConfig(robot_hand_scale=1.0,
                                                                                          iterations=300))
    node = NodeProcess.module("egovla.nodes.teleop_replay", ros_domain, tmp_path, args=[
        "--ros-args", "-p", f"recording:={tmp_path / 'r.npz'}", "-p", "hand_model:=standin",
        "-p", "fit_iterations:=300"])
    try:
        chunks = ros_probe.collect(JointTrajectory, "/egovla/action_chunk")
        ticks = ros_probe.node.create_publisher(JointState, "/joint_states", 10)
        status = ros_probe.node.create_publisher(DiagnosticStatus, "/egovla/task_status", 10)
        assert wait_until(lambda: "replaying" in node.log() and ticks.get_subscription_count() > 0
                          and status.get_subscription_count() > 0, 60.0), node.log()
        time.sleep(0.5)
        status.publish(DiagnosticStatus(name="t", values=[KeyValue(key="episode", value="0")]))
        time.sleep(0.2)
        for k in range(4):
            msg = JointState()
            msg.header.stamp = s_to_stamp(2.0 + k / 30)
            ticks.publish(msg)
            assert wait_until(lambda: len(chunks) == k + 1, 10.0), node.log()
            assert stamp_to_s(chunks[k].header.stamp) == pytest.approx(2.0 + k / 30, abs=1e-9)
            np.testing.assert_allclose(msg_to_chunk(chunks[k]), chunk_at(steps, k), atol=1e-9)
        status.publish(DiagnosticStatus(name="t", values=[KeyValue(key="episode", value="1")]))  # restarts
        time.sleep(0.2)
        msg = JointState()
        msg.header.stamp = s_to_stamp(5.0)
        ticks.publish(msg)
        assert wait_until(lambda: len(chunks) == 5, 10.0)
        np.testing.assert_allclose(msg_to_chunk(chunks[4]), chunk_at(steps, 0), atol=1e-9)
    finally:
        assert node.stop() == 0, node.log()
    bad = NodeProcess.module("egovla.nodes.teleop_replay", ros_domain, tmp_path, args=[
        "--ros-args", "-p", f"recording:={tmp_path / 'none.npz'}"], name="bad")
    assert bad.wait(timeout_s=60.0) == 2
    assert f"teleop_replay: error: {tmp_path / 'none.npz'}: no such hand-tracking file" in bad.log()
