"""Human -> robot: the retargeting MLP (data from the robot hand, training, save/load) and the action decoder."""

import json

import numpy as np
import pytest
import torch

from egovla_description import load_robot
from egovla_description.geometry import rotation_distance
from egovla_training import action_space as A
from egovla_training.hands import HandModelMismatchError, load_hand_model
from egovla_training.retarget.decode import ActionDecoder
from egovla_training.retarget.fit import FitConfig
from egovla_training.retarget.mlp import (
    RetargetNet,
    RetargetTrainConfig,
    evaluate,
    generate_pairs,
    load_retarget_net,
    save_retarget_net,
    train_retarget_net,
)


@pytest.fixture(scope="module")
def small_run():
    robot = load_robot()
    hands = {s: load_hand_model(s, kind="standin") for s in ("left", "right")}
    fit = FitConfig(iterations=150, retry_starts=0)
    x, y, tips = generate_pairs(robot, hands, 400, fit, seed=3)
    cfg = RetargetTrainConfig(samples_per_hand=400, epochs=150, batch_size=256, fit=fit)
    net, val, history = train_retarget_net(x, y, cfg)
    return robot, hands, x, y, tips, net, val, history


def test_pairs_come_from_the_robot_hand(small_run):
    robot, hands, x, y, tips, *_ = small_run
    assert x.shape == (400, 30) and y.shape == (400, 24) and tips.shape == (400, 2, 5, 3)
    names = robot.side("left").hand_joints + robot.side("right").hand_joints
    lo, hi = robot.limits(names)
    assert (y >= lo - 1e-12).all() and (y <= hi + 1e-12).all()
    # Mimic joints in the targets follow their leaders exactly (they are robot configurations).
    k = names.index("L_thumb_distal_joint")
    assert np.allclose(y[:, k], 2.4 * y[:, names.index("L_thumb_proximal_pitch_joint")])


def test_training_beats_the_mean_pose_and_round_trips(small_run, tmp_path):
    robot, hands, x, y, tips, net, val, history = small_run
    assert history[-1][2] < 0.5 * history[0][2]  # held-out loss fell
    metrics = evaluate(net, robot, x[val], tips[val])
    baseline = RetargetNet()
    baseline.out_mean.copy_(torch.as_tensor(y.mean(0), dtype=torch.float32))
    for p in baseline.net.parameters():
        torch.nn.init.zeros_(p)
    mean_pose = evaluate(baseline, robot, x[val], tips[val])
    assert metrics["fingertip_error_mean_m"] < 0.6 * mean_pose["fingertip_error_mean_m"]
    meta = {"hand_model_id": hands["left"].model_id, "robot": robot.name,
            "joint_names": list(robot.side("left").hand_joints + robot.side("right").hand_joints)}
    save_retarget_net(net, tmp_path, meta)
    loaded, saved = load_retarget_net(tmp_path, hand_model_id=hands["left"].model_id)
    probe = torch.as_tensor(x[:16], dtype=torch.float32)
    assert torch.equal(loaded(probe), net(probe))  # bit-identical after safetensors
    with pytest.raises(HandModelMismatchError, match="made with hand model 'standin-hand-v1:"):
        load_retarget_net(tmp_path, hand_model_id="mano:0123456789ab")
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["joint_names"] = cfg["joint_names"][:12]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="trained for joints"):
        load_retarget_net(tmp_path)
    with pytest.raises(FileNotFoundError, match="expected config.json and model.safetensors"):
        load_retarget_net(tmp_path / "nothing")


def test_activation_and_hand_repairing_options(small_run, tmp_path):
    """A SiLU net trained with re-paired hands learns and round-trips with its activation; a config without the
    field loads as ReLU (nets saved before the option); an unknown activation is refused."""
    from egovla_training.retarget.mlp import _batch

    robot, hands, x, y, tips, *_ = small_run
    data = [torch.as_tensor(v) for v in (x, y, tips)]
    left, right = torch.tensor([3, 1]), torch.tensor([0, 2])
    bx, by, bt = _batch(data, left, right)
    assert torch.equal(bx[1], torch.cat([data[0][1, :15], data[0][2, 15:]]))
    assert torch.equal(by[0], torch.cat([data[1][3, :12], data[1][0, 12:]]))
    assert torch.equal(bt[0, 0], data[2][3, 0]) and torch.equal(bt[0, 1], data[2][0, 1])
    cfg = RetargetTrainConfig(samples_per_hand=400, epochs=150, batch_size=256, activation="silu",
                              repair_hands=True)
    net, val, history = train_retarget_net(x, y, cfg)
    assert isinstance(net.net[1], torch.nn.SiLU) and history[-1][2] < 0.5 * history[0][2]
    meta = {"hand_model_id": hands["left"].model_id, "joint_names": list(robot.side("left").hand_joints +
                                                                         robot.side("right").hand_joints)}
    save_retarget_net(net, tmp_path, meta)
    loaded, saved = load_retarget_net(tmp_path)
    probe = torch.as_tensor(x[:8], dtype=torch.float32)
    assert saved["activation"] == "silu" and torch.equal(loaded(probe), net(probe))
    cfg_json = json.loads((tmp_path / "config.json").read_text())
    del cfg_json["activation"]
    (tmp_path / "config.json").write_text(json.dumps(cfg_json))
    assert isinstance(load_retarget_net(tmp_path)[0].net[1], torch.nn.ReLU)
    cfg_json["activation"] = "gelu"
    (tmp_path / "config.json").write_text(json.dumps(cfg_json))
    with pytest.raises(ValueError, match="activation 'gelu' is not one of"):
        load_retarget_net(tmp_path)
    with pytest.raises(ValueError, match="activation must be one of"):
        RetargetTrainConfig(activation="gelu").validate()


def test_decoder_turns_a_step_into_arm_and_hand_targets(small_run):
    robot, hands, x, y, tips, net, *_ = small_run
    decoder = ActionDecoder(hands, net, robot)
    rng = np.random.default_rng(4)
    current, step, wanted = {}, np.zeros(48), {}
    for side in ("left", "right"):
        arm = decoder.ik.arms[side]
        q = np.clip(arm.nominal + rng.uniform(-0.3, 0.3, arm.nq), arm.lower, arm.upper)
        t_torso = arm.forward(q)
        t_cam = A.torso_to_camera(t_torso, robot.head_camera.T_parent_optical)
        transl, rot = A.ee_pose_to_mano(t_cam, side, hands[side].root_offset.double().numpy())
        step[A.indices(side, "transl")] = transl
        step[A.indices(side, "rot6d")] = rot[:, :2].T.reshape(-1)  # first two columns
        step[A.indices(side, "pca")] = rng.uniform(-1, 2, 15) * (np.arange(15) < 6)
        current.update(zip(arm.joint_names, np.clip(q + 0.1, arm.lower, arm.upper)))
        wanted[side] = t_torso
    for side in ("left", "right"):  # the step encodes exactly the hand base poses it was made from
        assert np.allclose(decoder.wrist_targets(step)[side], wanted[side], atol=1e-9)
    targets = decoder.joint_targets(step, current)
    names = robot.side("left").hand_joints + robot.side("right").hand_joints
    assert set(names) <= set(targets)
    for side in ("left", "right"):
        arm = decoder.ik.arms[side]
        reached = arm.forward(np.array([targets[n] for n in arm.joint_names]))
        wanted = decoder.wrist_targets(step)[side]
        assert np.linalg.norm(reached[:3, 3] - wanted[:3, 3]) < 1e-4
        assert rotation_distance(reached[:3, :3], wanted[:3, :3]) < 1e-3
    lo, hi = robot.limits(names)
    hand = np.array([targets[n] for n in names])
    assert np.isfinite(hand).all() and (hand >= lo).all() and (hand <= hi).all()
    with pytest.raises(ValueError, match="48 finite values"):
        decoder.joint_targets(np.full(48, np.nan), current)


def test_decoder_wrist_targets_of_one_step_equal_the_general_path(small_run):
    """The per-tick path (plain floats for one step) gives what split_step -> mano_to_ee_pose -> camera_to_torso
    give, also for unnormalised rot6d columns; a degenerate rot6d falls back to the general path (NaN rotation,
    which the IK refuses as an invalid target)."""
    robot, hands, *_ = small_run
    decoder = ActionDecoder(hands, RetargetNet(), robot)
    t_torso_camera = robot.head_camera.T_parent_optical
    rng = np.random.default_rng(11)
    for _ in range(50):
        step = rng.normal(size=48) * rng.uniform(0.01, 10.0)
        got = decoder.wrist_targets(step)
        for side in ("left", "right"):
            h = A.split_step(step, side)
            ref = A.camera_to_torso(A.mano_to_ee_pose(h.transl, h.rotation, side,
                                                      hands[side].root_offset.double().numpy()), t_torso_camera)
            assert np.abs(got[side] - ref).max() < 1e-12
    step[A.indices("left", "rot6d")[:3]] = 0.0  # a zero first column
    step[A.indices("right", "rot6d")[3:]] = step[A.indices("right", "rot6d")[:3]] * 2.0  # parallel columns
    with np.errstate(invalid="ignore", divide="ignore"):
        got = decoder.wrist_targets(step)
    for side in ("left", "right"):
        assert np.isnan(got[side][:3, :3]).any() and np.isfinite(got[side][:3, 3]).all()
        assert decoder.ik.arms[side].solve(got[side]).status == "invalid_target"


@pytest.mark.parametrize("activation", ["relu", "silu", "tanh"])
def test_numpy_forward_matches_torch_and_follows_weight_changes(activation):
    """The inference path (``forward_numpy``, used by ``predict_joints``) equals the torch forward to float64
    rounding, and picks up new weights after an optimiser step and after ``load_state_dict``."""
    from egovla_training.retarget.mlp import RetargetNet

    torch.manual_seed(0)
    net = RetargetNet(activation=activation).double()
    with torch.no_grad():
        net.in_mean.uniform_(-0.1, 0.1)
        net.in_std.uniform_(0.5, 2.0)
        net.out_mean.uniform_(-1.0, 1.0)
        net.out_std.uniform_(0.1, 1.0)
    x = np.random.default_rng(1).normal(size=(7, 30))

    def torch_out():
        with torch.no_grad():
            return net(torch.as_tensor(x, dtype=net.in_mean.dtype)).numpy()

    np.testing.assert_allclose(net.forward_numpy(x), torch_out(), atol=1e-12)
    before = net.forward_numpy(x)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net(torch.as_tensor(x)).pow(2).sum().backward()
    opt.step()
    after = net.forward_numpy(x)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, torch_out(), atol=1e-12)
    other = RetargetNet(activation=activation).double()
    net.load_state_dict(other.state_dict())
    np.testing.assert_allclose(net.forward_numpy(x), torch_out(), atol=1e-12)
    with torch.no_grad():
        net.out_mean.add_(1.0)  # a buffer changed in place
    np.testing.assert_allclose(net.forward_numpy(x), torch_out(), atol=1e-12)
    net.float()  # new buffer tensors
    with torch.no_grad():
        net.out_mean.add_(1.0)
    np.testing.assert_allclose(net.forward_numpy(x), torch_out().astype(float), atol=1e-4)
    net.load_state_dict({k: v.clone() for k, v in other.float().state_dict().items()}, assign=True)
    np.testing.assert_allclose(net.forward_numpy(x), torch_out().astype(float), atol=1e-4)


def test_mimic_projection_is_exact_and_least_squares():
    from egovla_training.retarget.mlp import joint_names, project_mimic

    robot = load_robot()
    names = joint_names(robot)
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.0, 1.0, size=(50, 24))
    out = project_mimic(robot, names, raw)
    for k, n in enumerate(names):
        m = robot.joint(n).mimic
        if m is not None:
            assert np.allclose(out[:, k], m.multiplier * out[:, names.index(m.joint)] + m.offset, atol=1e-12)
    # Already-consistent joints are unchanged.
    assert np.allclose(project_mimic(robot, names, out), out, atol=1e-12)
    # Thumb pitch: the least-squares leader of (p, 1.6 p, 2.4 p) given (a, b, c).
    p = names.index("L_thumb_proximal_pitch_joint")
    a, b, c = raw[0, p], raw[0, names.index("L_thumb_intermediate_joint")], raw[0, names.index("L_thumb_distal_joint")]
    assert out[0, p] == pytest.approx((a + 1.6 * b + 2.4 * c) / (1 + 1.6 ** 2 + 2.4 ** 2))


def meta_fit(meta):
    """The fit configuration the shipped net's training pairs were made with (from its config)."""
    return FitConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["train_config"]["fit"].items()})


def test_the_shipped_stand_in_net_retargets_fresh_robot_poses():
    """The net that ships (no training step needed): on robot hand poses it never saw, the fingertips reached by
    robot FK of its joint commands are within 0.1 mm of the originals on average (measured: 0.074 mm on these 60
    poses, 0.072 mm on the held-out split at training; the squared-loss SiLU net before it gave 0.081 and 0.079, the
    ReLU net before that 0.18 and 0.18, the joint-MSE net before that 0.51 and 0.49)."""
    from egovla_training.retarget.mlp import SHIPPED_STANDIN_NET

    robot = load_robot()
    hands = {s: load_hand_model(s, kind="standin") for s in ("left", "right")}
    net, meta = load_retarget_net(SHIPPED_STANDIN_NET, hand_model_id=hands["left"].model_id)
    x, _, tips = generate_pairs(robot, hands, 60, meta_fit(meta), seed=77)
    metrics = evaluate(net, robot, x, tips)
    assert metrics["fingertip_error_mean_m"] < 1.0e-4, metrics
    assert metrics["mimic_error_max_rad"] < 1e-9
    assert meta["held_out"]["fingertip_error_mean_m"] < 7.5e-5
    assert meta["held_out"]["fingertip_error_p95_m"] < 3e-4
    assert meta["activation"] == "silu" and meta["train_config"]["repair_hands"] is True
    assert meta["train_config"]["tip_loss"] == "distance"


def test_build_reuses_matching_generated_pairs(tmp_path):
    from egovla_training.retarget.mlp import build

    cfg = RetargetTrainConfig(samples_per_hand=20, epochs=3, batch_size=16, lr_schedule="cosine",
                              fit=FitConfig(num_pca_fit=15, iterations=40, retry_starts=0))
    data = tmp_path / "pairs.npz"
    _, first = build(cfg, data_path=data)
    assert data.exists()
    with np.load(data, allow_pickle=False) as z:
        x = z["x"].copy()
    _, second = build(cfg, data_path=data)
    assert second["data_seconds"] < first["data_seconds"]  # the pairs were not generated again
    with np.load(data, allow_pickle=False) as z:
        assert np.array_equal(z["x"], x)
    other = RetargetTrainConfig(samples_per_hand=20, epochs=3, batch_size=16, seed=1,
                                fit=FitConfig(num_pca_fit=15, iterations=40, retry_starts=0))
    build(other, data_path=data)  # another seed: the stamp differs, the pairs are regenerated
    with np.load(data, allow_pickle=False) as z:
        assert not np.array_equal(z["x"], x)
    with pytest.raises(ValueError, match="lr_schedule"):
        RetargetTrainConfig(lr_schedule="step").validate()
    with pytest.raises(ValueError, match="loss must be"):
        RetargetTrainConfig(loss="l1").validate()


def test_torch_fingertip_fk_matches_pinocchio():
    """The differentiable FK used by the training loss gives the robot's fingertips (float64, 1e-9 m), also outside
    the joint limits and for mimic-inconsistent joints, and has usable gradients."""
    from egovla_description.kinematics import HandKinematics
    from egovla_training.retarget.torch_fk import FingertipFK

    robot = load_robot()
    fk = FingertipFK(robot)
    rng = np.random.default_rng(5)
    q = np.concatenate([rng.uniform(HandKinematics(robot, s).lower - 0.5, HandKinematics(robot, s).upper + 0.5,
                                    size=(64, 12)) for s in ("left", "right")], 1)
    got = fk(torch.as_tensor(q)).numpy()
    assert got.shape == (64, 2, 5, 3)
    for s, side in enumerate(("left", "right")):
        want = HandKinematics(robot, side).fingertips(q[:, 12 * s:12 * (s + 1)])
        assert np.abs(got[:, s] - want).max() < 1e-9
    qt = torch.as_tensor(q[:4], dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: fk(v), (qt,))


def test_fingertip_loss_measures_what_evaluate_measures(small_run):
    """Without the joint term, the squared tip loss is the mean squared fingertip distance (mm^2) after the clip +
    mimic projection of ``predict_joints`` and robot FK, i.e. what ``evaluate`` measures (squared)."""
    from egovla_description.kinematics import HandKinematics
    from egovla_training.retarget.mlp import _RetargetLoss, predict_joints

    robot, hands, x, y, tips, net, *_ = small_run
    loss_fn = _RetargetLoss(net, robot, RetargetTrainConfig(joint_weight=0.0, tip_loss="squared"))
    with torch.no_grad():
        value = float(loss_fn(*(torch.as_tensor(v, dtype=torch.float32) for v in (x, y, tips))))
    pred = predict_joints(net, robot, x)
    reached = np.stack([HandKinematics(robot, s).fingertips(pred[:, 12 * k:12 * (k + 1)])
                        for k, s in enumerate(("left", "right"))], 1)
    assert value == pytest.approx(np.mean(np.sum((reached - tips) ** 2, -1)) * 1e6, rel=1e-3)
    # tip_loss "distance": the mean of sqrt(d^2 + beta^2) - beta over fingertips, d in mm
    for beta in (0.01, 1.0):
        loss_fn = _RetargetLoss(net, robot, RetargetTrainConfig(joint_weight=0.0, tip_loss="distance",
                                                                tip_beta_mm=beta))
        with torch.no_grad():
            value = float(loss_fn(*(torch.as_tensor(v, dtype=torch.float32) for v in (x, y, tips))))
        d = np.linalg.norm(reached - tips, axis=-1) * 1e3
        assert value == pytest.approx(np.mean(np.sqrt(d ** 2 + beta ** 2) - beta), rel=1e-3)
    with pytest.raises(ValueError, match="tip_loss"):
        RetargetTrainConfig(tip_loss="huber").validate()
    with pytest.raises(ValueError, match="tip_beta_mm"):
        RetargetTrainConfig(tip_loss="distance", tip_beta_mm=0.0).validate()
