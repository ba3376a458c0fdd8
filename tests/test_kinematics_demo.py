"""The kinematics demo end to end (short run): IK at 30 Hz driving MuJoCo, rendered, plotted, measured."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from egovla_description.config import load_config
from egovla_sim.kinematics_demo import KinematicsDemoConfig, figure_eight_targets, run


@pytest.mark.slow
def test_short_demo_tracks_the_figure_eight_and_writes_its_outputs(tmp_path):
    cfg = load_config(KinematicsDemoConfig, None, [
        "duration_s=4", "settle_s=1", "render_width=160", "render_height=90", f"output_dir={tmp_path}"])
    stats = run(cfg, progress=False)
    assert stats["ticks"] == 120
    for side in ("left", "right"):
        s = stats[side]
        assert s["ik_converged_fraction"] == 1.0
        assert s["ik_residual_position_mm"]["max"] <= 0.1
        # Physical tracking by the PD drives (kp 2000, kv 75) lags by a few millimetres at 0.16 m/s.
        assert s["tracking_position_mm"]["mean"] < 8.0 and s["tracking_position_mm"]["max"] < 15.0
        assert s["tracking_rotation_deg"]["max"] < 3.0
    video = iio.imread(tmp_path / "kinematics_demo.mp4")
    assert video.shape == (150, 90, 160, 3)  # settle + figure eight, every 30 Hz tick
    assert video.std() > 10  # a rendered scene, not a blank frame
    plot = iio.imread(tmp_path / "tracking_error.png")
    assert plot.shape[0] > 400 and plot.shape[1] > 600
    saved = json.loads((tmp_path / "kinematics_demo.json").read_text())
    assert saved["left"] == stats["left"]


def test_figure_eight_is_mirrored_and_closed():
    from egovla_sim.kinematics_demo import FigureEightConfig

    cfg = FigureEightConfig()
    start = {"left": np.eye(4), "right": np.eye(4)}
    a, b = figure_eight_targets(0.3, start, cfg), figure_eight_targets(0.3 + cfg.period_s, start, cfg)
    assert np.allclose(a["left"], b["left"])  # periodic
    assert np.isclose(a["left"][1, 3], -a["right"][1, 3])  # mirrored in y
    ys = [figure_eight_targets(t, start, cfg)["left"][1, 3] for t in np.linspace(0, cfg.period_s, 200)]
    assert np.ptp(ys) == pytest.approx(2 * cfg.amplitude_y_m, rel=1e-3)
