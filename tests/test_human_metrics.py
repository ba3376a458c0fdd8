"""Human-prediction metrics (paper §5.1), the Fig. 11 trajectory plot, and egovla-eval-human, on known answers."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from egovla_description.geometry import axis_angle_to_matrix, matrix_to_rot6d
from egovla_training import action_space as A
from egovla_training.evaluation import (
    HumanMetricsAccumulator,
    head_camera,
    project_points,
    render_trajectories,
    wrist_2d_errors_normalised,
    wrist_rotation_errors_deg,
    wrist_translation_errors_cm,
)
from egovla_training.evaluation.human_metrics import main
from egovla_training.evaluation.trajectory_plot import PRED_COLOUR, TRUE_COLOUR

T = A.CHUNK_STEPS


def chunk(transl_left, transl_right, b=1, rot=None):
    """(b, T, 48) steps with the given wrist translations (broadcast to (b, T, 3)), identity rotation, zero PCA."""
    steps = np.zeros((b, T, A.STEP_SIZE))
    r6 = matrix_to_rot6d(np.eye(3)) if rot is None else rot
    for side, tr in (("left", transl_left), ("right", transl_right)):
        steps[..., A.indices(side, "transl")] = tr
        steps[..., A.indices(side, "rot6d")] = r6
    return steps


def test_head_camera_comes_from_the_robot_description():
    cam = head_camera()
    assert (cam.width, cam.height, cam.cx, cam.cy) == (1280, 720, 640.0, 360.0)
    assert cam.fx == pytest.approx(488.6662) and cam.fy == pytest.approx(488.6662)


def test_a_2cm_offset_along_x_is_a_2cm_error():
    target = chunk([-0.1, 0.1, 0.5], [0.1, 0.1, 0.5], b=3)
    pred = target.copy()
    for side in A.SIDES:
        pred[..., A.indices(side, "transl")[0]] += 0.02
    err = wrist_translation_errors_cm(pred, target)
    assert err.shape == (3, T, 2)
    np.testing.assert_allclose(err, 2.0, atol=1e-9)
    acc = HumanMetricsAccumulator()
    acc.update(pred, target)
    s = acc.summary()
    assert s["wrist_translation_error_cm"] == pytest.approx(2.0)
    assert s["wrist_translation_error_cm_left"] == pytest.approx(2.0)
    assert s["wrist_translation_error_cm_final_step"] == pytest.approx(2.0)
    assert len(s["wrist_translation_error_cm_per_step"]) == T
    assert s["wrist_translation_error_cm_count"] == 3 * T * 2
    assert s["wrist_rotation_error_deg"] == pytest.approx(0.0, abs=1e-6)
    assert s["hand_pca_l2_error"] == 0.0


def test_masked_hands_are_excluded():
    target = chunk([-0.1, 0.1, 0.5], [0.1, 0.1, 0.5], b=2)
    pred = target.copy()
    pred[..., A.indices("left", "transl")[2]] += 0.10  # left: 10 cm off, but masked
    pred[..., A.indices("right", "transl")[1]] += 0.02  # right: 2 cm off
    mask = np.zeros((2, T, 2), bool)
    mask[..., 1] = True
    mask[1, 20:, 1] = False  # and some right steps invalid too
    acc = HumanMetricsAccumulator()
    acc.update(pred, target, mask)
    s = acc.summary()
    assert s["wrist_translation_error_cm"] == pytest.approx(2.0)
    assert s["wrist_translation_error_cm_left"] is None
    assert s["wrist_translation_error_cm_right"] == pytest.approx(2.0)
    assert s["wrist_translation_error_cm_count"] == T + 20


def test_a_point_on_the_optical_axis_projects_to_the_principal_point():
    uv, in_front = project_points(np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]]), head_camera())
    np.testing.assert_allclose(uv[0], [640.0, 360.0])
    assert in_front.tolist() == [True, False] and np.isnan(uv[1]).all()


def test_normalised_2d_error_of_a_known_pixel_offset():
    cam = head_camera()
    z = 0.8
    # true wrist on the optical axis -> (640, 360) -> (0.5, 0.5); predicted 128 px right and 72 px down ->
    # (768, 432) -> (0.6, 0.6): the normalised error is sqrt(0.1^2 + 0.1^2).
    target = chunk([0.0, 0.0, z], [0.0, 0.0, z])
    pred = chunk([128.0 / cam.fx * z, 72.0 / cam.fy * z, z], [0.0, 0.0, z])
    err, ok = wrist_2d_errors_normalised(pred, target, cam)
    assert ok.all()
    np.testing.assert_allclose(err[..., 0], math.sqrt(0.02), atol=1e-12)
    np.testing.assert_allclose(err[..., 1], 0.0, atol=1e-12)
    # resolution-independent: the same camera at 384x384 (squashed) gives the same number
    err_small, _ = wrist_2d_errors_normalised(pred, target, cam.resized(384, 384))
    np.testing.assert_allclose(err_small, err, atol=1e-12)
    # the root offset moves both wrists before projecting: 0.8 m further away, the same offset is half as many px
    off = {"left": np.array([0.0, 0.0, 0.8]), "right": np.zeros(3)}
    err_off, _ = wrist_2d_errors_normalised(pred, target, cam, root_offset=off)
    np.testing.assert_allclose(err_off[..., 0], math.sqrt(0.02) / 2, atol=1e-12)


def test_2d_error_skips_wrists_behind_the_camera_and_clips_to_the_image():
    cam = head_camera()
    target = chunk([0.0, 0.0, -0.5], [0.0, 0.0, 0.5])
    pred = chunk([0.0, 0.0, 0.5], [10.0, 0.0, 0.5])  # right: far outside the image on the right
    acc = HumanMetricsAccumulator(camera=cam)
    acc.update(pred, target)
    s = acc.summary()
    assert s["wrist_2d_error_normalised_left"] is None and s["wrist_2d_behind_camera_count"] == T
    assert s["wrist_2d_error_normalised_right"] == pytest.approx(0.5)  # clipped: u/W 1.0 vs 0.5
    unclipped, _ = wrist_2d_errors_normalised(pred, target, cam, clip=False)
    assert unclipped[0, 0, 1] == pytest.approx(10.0 / 0.5 * cam.fx / cam.width)


def test_rotation_error_of_a_90_degree_rotation_is_90():
    rz = axis_angle_to_matrix(np.array([0.0, 0.0, math.pi / 2]))
    target = chunk([0, 0, 0.5], [0, 0, 0.5])
    pred = chunk([0, 0, 0.5], [0, 0, 0.5], rot=matrix_to_rot6d(rz))
    np.testing.assert_allclose(wrist_rotation_errors_deg(pred, target), 90.0, atol=1e-6)


def test_two_batches_accumulate_to_the_one_shot_result():
    rng = np.random.default_rng(0)
    b = 7
    target = rng.normal(size=(b, T, A.STEP_SIZE))
    pred = target + 0.05 * rng.normal(size=(b, T, A.STEP_SIZE))
    for x in (target, pred):
        for side in A.SIDES:
            x[..., A.indices(side, "transl")[2]] = rng.uniform(0.3, 0.8, size=(b, T))
    mask = rng.random((b, T, 2)) > 0.3
    whole = HumanMetricsAccumulator()
    whole.update(pred, target, mask)
    parts = HumanMetricsAccumulator()
    parts.update(pred[:2], target[:2], mask[:2])
    parts.update(pred[2:], target[2:], mask[2:])
    a, c = whole.summary(), parts.summary()
    assert a.keys() == c.keys() and a["num_samples"] == c["num_samples"] == b
    for key, value in a.items():
        if isinstance(value, float):
            assert c[key] == pytest.approx(value, rel=1e-12), key
    # the exact mean over valid entries, not a mean of batch means
    direct = wrist_translation_errors_cm(pred, target)[mask].mean()
    assert a["wrist_translation_error_cm"] == pytest.approx(direct, rel=1e-12)


def test_the_plot_draws_the_predicted_trajectory_in_its_colour():
    h, w = 360, 640
    image = np.full((h, w, 3), 60, np.uint8)
    k = np.linspace(0.0, 1.0, T)[None, :, None]
    target = chunk(np.concatenate([-0.15 + 0.1 * k, 0.05 + 0 * k, 0.6 + 0 * k], -1),
                   np.concatenate([0.05 + 0.1 * k, -0.05 + 0 * k, 0.6 + 0 * k], -1))[0]
    pred = target.copy()
    for side in A.SIDES:
        pred[:, A.indices(side, "transl")[1]] += 0.12  # predicted 12 cm lower: clearly apart
    out = render_trajectories(image, pred, target, legend=False)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    cam = head_camera().resized(w, h)
    for steps, colour in ((pred, PRED_COLOUR), (target, TRUE_COLOUR)):
        xyz = steps[-1, A.indices("right", "transl")]
        (u, v), _ = project_points(xyz, cam)
        pixel = out[int(round(v)), int(round(u))].astype(int)
        np.testing.assert_allclose(pixel, np.array(colour) * 255, atol=12)
    changed = np.any(out != 60, axis=-1)
    assert 0.001 < changed.mean() < 0.2  # drawn somewhere, not everywhere
    # points behind the camera are skipped, not drawn
    behind = chunk([0.0, 0.0, -0.5], [0.0, 0.0, -0.5])[0]
    assert np.array_equal(render_trajectories(image, behind, behind, legend=False), image)


# -- the command line ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from egovla_training.data import DatasetWriter, EpisodeLabels
    from egovla_training.hands import load_hand_model
    from egovla_training.model.checkpoint import save_egovla
    from egovla_training.model.config import egovla_tiny
    from egovla_training.model.egovla import EgoVLA
    from egovla_training.model.prompt import TINY_TOKENIZER_DIR, load_tokenizer

    import torch

    torch.manual_seed(0)
    hand_id = load_hand_model("right").model_id  # the stand-in: root offsets are known
    root = tmp_path_factory.mktemp("human_eval")
    tokenizer = load_tokenizer(TINY_TOKENIZER_DIR)
    save_egovla(EgoVLA(egovla_tiny(hand_id, tokenizer.vocab_size)), root / "ckpt", tokenizer)
    rng = np.random.default_rng(0)
    n = 5
    k = np.linspace(0, 1, T)[None, :, None]
    start = rng.uniform(-0.1, 0.1, size=(n, 1, 3)) + np.array([0.0, 0.1, 0.5])
    transl = [start + np.array([-0.15, 0.0, 0.0]) + 0.1 * k, start + np.array([0.1, 0.0, 0.0]) - 0.05 * k]
    rot = matrix_to_rot6d(axis_angle_to_matrix(0.3 * rng.normal(size=(n, T, 2, 3))))
    actions = np.concatenate([np.concatenate([transl[h], rot[:, :, h], rng.uniform(-1, 2, size=(n, T, 15))], -1)
                              for h in range(2)], -1)
    labels = EpisodeLabels(
        frame_index=np.arange(n), instruction="Put it in the drawer",
        proprio_translation=np.stack([transl[0][:, 0], transl[1][:, 0]], 1),
        proprio_rotation=0.3 * rng.normal(size=(n, 2, 3)), proprio_fingertips=0.1 * rng.normal(size=(n, 2, 5, 3)),
        proprio_mask=np.ones((n, 2), bool), actions=actions, action_mask=np.ones((n, T, 2), bool))
    frames = np.repeat(np.linspace(40, 200, 128, dtype=np.uint8)[None, None, :, None], 72, 1).repeat(3, 3)
    with DatasetWriter(root / "data", hand_model=hand_id, fps=30.0, history_spacing=2, image_codec="png") as wr:
        wr.add_episode("ep0", np.repeat(frames, n, 0), labels, source="synthetic", embodiment="human")
    return root


def test_cli_writes_metrics_and_plots(tiny_setup, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["--checkpoint", str(tiny_setup / "ckpt"), "--data", str(tiny_setup / "data"), "--out", str(out),
                 "--max-samples", "4", "--plots", "2"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 4
    for key in ("wrist_translation_error_cm", "wrist_2d_error_normalised", "wrist_rotation_error_deg",
                "hand_pca_l2_error"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0, key
        assert len(metrics[f"{key}_per_step"]) == T
    assert metrics["root_offset_source"].startswith("hand model standin")
    assert metrics["plots"] == ["plot_000.png", "plot_001.png"]
    with Image.open(out / "plot_000.png") as im:
        assert im.size == (128, 72)


def test_cli_bad_paths_exit_2_with_one_line(tiny_setup, tmp_path, capsys):
    code = main(["--checkpoint", str(tmp_path / "missing"), "--data", str(tiny_setup / "data"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such checkpoint folder" in err
    code = main(["--checkpoint", str(tiny_setup / "ckpt"), "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "meta.json" in err


def test_a_bare_model_gives_the_same_numbers_as_the_cli(tiny_setup, tmp_path):
    from egovla_training.evaluation import evaluate_human_prediction
    from egovla_training.model.checkpoint import load_egovla

    assert main(["--checkpoint", str(tiny_setup / "ckpt"), "--data", str(tiny_setup / "data"),
                 "--out", str(tmp_path), "--max-samples", "3", "--plots", "0"]) == 0
    cli = json.loads((tmp_path / "metrics.json").read_text())
    model, tokenizer = load_egovla(tiny_setup / "ckpt")
    with pytest.raises(ValueError, match="tokenizer"):
        evaluate_human_prediction(model, tiny_setup / "data")
    seen = []
    direct = evaluate_human_prediction(model, tiny_setup / "data", tokenizer=tokenizer, max_samples=3,
                                       batch_size=2, on_prediction=seen.append)
    assert len(seen) == 3 and seen[0].image.shape == (72, 128, 3)
    for key in ("wrist_translation_error_cm", "wrist_2d_error_normalised", "wrist_rotation_error_deg"):
        assert direct[key] == pytest.approx(cli[key], rel=1e-4), key
