"""Offline evaluation: human-prediction metrics (paper §5.1) and predicted-vs-true trajectory plots (Fig. 11).

``egovla-eval-human --checkpoint DIR --data DIR --out DIR`` runs both over a stored dataset.
"""

from .human_metrics import (
    METRICS,
    HumanMetricsAccumulator,
    Prediction,
    evaluate_human_prediction,
    hand_pca_errors,
    head_camera,
    iter_predictions,
    normalised_image_coordinates,
    project_points,
    wrist_2d_errors_normalised,
    wrist_positions,
    wrist_rotation_errors_deg,
    wrist_translation_errors_cm,
)
from .trajectory_plot import render_trajectories, save_trajectory_plot

__all__ = [
    "METRICS", "HumanMetricsAccumulator", "Prediction", "evaluate_human_prediction", "hand_pca_errors",
    "head_camera", "iter_predictions", "normalised_image_coordinates", "project_points",
    "wrist_2d_errors_normalised", "wrist_positions", "wrist_rotation_errors_deg", "wrist_translation_errors_cm",
    "render_trajectories", "save_trajectory_plot",
]
