"""Predicted vs true future wrist trajectories drawn on the current image (paper Fig. 11).

Both hands' 30 future wrist positions (camera optical frame, metres; ``transl + root_offset``) are projected with
the camera intrinsics onto the current frame: the true trajectory in red, the predicted one in green (the paper's
colours), as dotted lines through points shaded by time (pale = near future, full colour = 1 s ahead). A white dot
with a black edge marks each wrist's current position. Points behind the camera (z <= 0) and masked steps are
skipped (the line breaks there); everything is clipped to the image.

Drawn with matplotlib's Agg canvas (no display, no pyplot state): ``render_trajectories`` returns the RGB array
(for video frames), ``save_trajectory_plot`` writes a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egovla_description.geometry import PinholeCamera

from ..action_space import SIDES
from .human_metrics import RootOffset, head_camera, project_points, wrist_positions

TRUE_COLOUR = (0.85, 0.1, 0.1)  # red: ground truth (as in the paper)
PRED_COLOUR = (0.1, 0.75, 0.1)  # green: prediction
CURRENT_COLOUR = (1.0, 1.0, 1.0)
PALEST = 0.3  # the first future step's share of the full colour (the rest is white)


def camera_for_image(camera: PinholeCamera, width: int, height: int) -> PinholeCamera:
    """The camera's intrinsics for an image of ``width`` x ``height``: the image is taken to be the camera's full
    view, scaled (squashed if the aspect ratio differs), as the datasets and the model store frames."""
    if (camera.width, camera.height) == (width, height):
        return camera
    return camera.resized(width, height)


def _pixels(points: np.ndarray, valid: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Points (T, 3) -> pixels (T, 2), NaN where invalid or behind the camera."""
    uv, in_front = project_points(points, camera)
    return np.where((valid & in_front)[:, None], uv, np.nan)


def _shades(colour, n: int) -> np.ndarray:
    """(n, 3) colours from pale (first step) to ``colour`` (last step)."""
    s = np.linspace(PALEST, 1.0, n)[:, None]
    return (1.0 - s) * np.ones(3) + s * np.asarray(colour)


def render_trajectories(image: np.ndarray, pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
                        *, camera: PinholeCamera | None = None, root_offset: RootOffset = None,
                        current_translation: np.ndarray | None = None, current_mask: np.ndarray | None = None,
                        caption: str | None = None, legend: bool = True) -> np.ndarray:
    """Draw both hands' predicted and true wrist trajectories on ``image``; returns a new (H, W, 3) uint8 array.

    ``image`` (H, W, 3) uint8 RGB: the current frame. ``pred``, ``target`` (T, 48) action steps (our layout);
    ``mask`` (T, 2) True where the target is valid (predicted points are drawn where the target is valid, so the
    two are compared on the same steps; None: all). ``camera``: intrinsics of the camera that took the image
    (default: the head camera), rescaled to the image size. ``current_translation`` (2, 3): the current MANO
    ``transl`` per hand (proprio), drawn as a dot where ``current_mask`` (2,) is True. ``caption``: e.g. the
    instruction, written at the bottom. ``legend``: a key in the top-left corner (images of 200 px and more)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    cam = camera_for_image(camera or head_camera(), w, h)
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(f"pred and target must both be (T, 48), got {pred.shape} and {target.shape}")
    mask = np.ones((len(target), len(SIDES)), bool) if mask is None else np.asarray(mask, dtype=bool)

    dpi = 100.0
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(image, extent=(0, w, h, 0), interpolation="nearest")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()

    scale = max(min(w, h) / 720.0, 0.05)  # marker and line sizes follow the image size (720 px tall: 1)
    line_width = max(2.5 * scale, 0.5)
    marker_area = (max(6.0 * scale, 1.5)) ** 2  # points^2 (1 pt = 1 px at dpi 72; here dpi 100)
    n = len(target)
    pred_xyz, true_xyz = wrist_positions(pred, root_offset), wrist_positions(target, root_offset)
    for h_idx in range(len(SIDES)):
        for xyz, colour, z in ((true_xyz, TRUE_COLOUR, 2), (pred_xyz, PRED_COLOUR, 3)):
            uv = _pixels(xyz[:, h_idx], mask[:, h_idx], cam)
            ax.plot(uv[:, 0], uv[:, 1], linestyle=":", color=colour, linewidth=line_width, zorder=z)
            ok = np.isfinite(uv[:, 0])
            ax.scatter(uv[ok, 0], uv[ok, 1], s=marker_area, c=_shades(colour, n)[ok], edgecolors="none",
                       zorder=z + 0.5)
    if current_translation is not None:
        cur = wrist_positions_from_translation(np.asarray(current_translation, dtype=np.float64), root_offset)
        cmask = np.ones(len(SIDES), bool) if current_mask is None else np.asarray(current_mask, dtype=bool)
        uv = _pixels(cur, cmask, cam)
        ok = np.isfinite(uv[:, 0])
        ax.scatter(uv[ok, 0], uv[ok, 1], s=marker_area * 2.5, c=[CURRENT_COLOUR], edgecolors="black",
                   linewidths=max(1.5 * scale, 0.5), zorder=5)
    font = max(12.0 * scale, 4.0)
    if legend and min(w, h) >= 200:  # on thumbnails a legend would hide the picture
        handles = [Line2D([], [], color=TRUE_COLOUR, linestyle=":", marker="o", label="true future wrist"),
                   Line2D([], [], color=PRED_COLOUR, linestyle=":", marker="o", label="predicted"),
                   Line2D([], [], color="black", marker="o", markerfacecolor=CURRENT_COLOUR, linestyle="",
                          label="current wrist")]
        ax.legend(handles=handles, loc="upper left", fontsize=font, framealpha=0.7)
    if caption:
        ax.text(0.5, 0.02, caption, transform=ax.transAxes, ha="center", va="bottom", fontsize=font,
                color="white", bbox=dict(facecolor="black", alpha=0.6, edgecolor="none"))
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    if rgba.shape[:2] != (h, w):  # figure sizes are floats; guard against a one-pixel rounding
        from PIL import Image

        rgba = np.asarray(Image.fromarray(rgba).resize((w, h), Image.NEAREST))
    return np.ascontiguousarray(rgba[..., :3])


def wrist_positions_from_translation(translation: np.ndarray, root_offset: RootOffset = None) -> np.ndarray:
    """Current MANO ``transl`` (2, 3) per hand -> wrist positions (2, 3) (``transl + root_offset``)."""
    out = np.array(translation, dtype=np.float64, copy=True)
    if root_offset is not None:
        for i, side in enumerate(SIDES):
            out[i] += np.asarray(root_offset[side], dtype=np.float64)
    return out


def save_trajectory_plot(path: str | Path, image: np.ndarray, pred: np.ndarray, target: np.ndarray,
                         mask: np.ndarray | None = None, **kwargs) -> Path:
    """``render_trajectories`` written as a PNG at ``path`` (matplotlib's PNG writer); returns the path."""
    from matplotlib.image import imsave

    path = Path(path)
    imsave(path, render_trajectories(image, pred, target, mask, **kwargs), format="png")
    return path
