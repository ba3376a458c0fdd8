"""Human-prediction metrics (paper §5.1): how well predicted 30-step chunks match the recorded human future.

All inputs are action steps in our layout (``action_space.ACTION_NAMES``): arrays (B, T, 48) of predictions and
targets, with hand PCA physical (not min-max normalised), and a mask (B, T, 2) per step and hand (left, right)
that is True where the target is valid. Everything is expressed in the OpenCV optical frame of the CURRENT head
camera (x right, y down, z forward, metres), as the labels are (``data.camera_frame``).

Per (sample, step, hand) the metrics are:

- **wrist translation error** (cm): ``100 * || p_pred - p_true ||_2`` with ``p = transl + root_offset`` the 3-D
  wrist position (``action_space``: the action stores the MANO ``transl``, i.e. the wrist minus the hand model's
  root offset). The offset is the same for prediction and target, so this error does not depend on it. This is
  the paper's "average future prediction error for the human wrist translation" (about 8 cm for EgoVLA).
- **normalised 2-D wrist error** (unitless): both wrist positions are projected with the pinhole intrinsics of the
  camera, pixel coordinates are divided by the image size, ``(u / W, v / H)``, and the error is the Euclidean
  distance of those normalised coordinates. Only (step, hand) pairs whose predicted AND true wrists are in front of
  the camera (z > 0) count. By default both normalised points are first clipped to [0, 1] (``clip=True``).
  The paper (about 0.13, "comparable to HOI-forecast") does not spell the normalisation out. We read it as the
  authors' own 2-D label definition (facts §1.7: ``ee_2d`` normalised by image width and height, clamped to
  0..1), which is also the convention of HOI-forecast's trajectory errors (image coordinates divided by the image
  size). With this definition the value is independent of the image resolution, and an error of 0.13 is about
  13 % of the image side. Clipping keeps a wrist far outside the view (close to the image plane) from dominating
  the mean, as the clamped labels do; ``clip=False`` gives the unclipped variant.
- **wrist rotation error** (degrees): the geodesic angle between the predicted and true MANO global orientations,
  ``arccos((trace(R_pred^T R_true) - 1) / 2)``, with rot6d decoded by ``action_space.split_step``.
- **hand pose (PCA) error** (unitless PCA coefficients): ``|| pca_pred - pca_true ||_2`` over the first
  ``hand_dims`` (default all 15) physical PCA coefficients.

``HumanMetricsAccumulator`` keeps sums and counts per (step, hand), so its means over a dataset are exact means
over valid entries (not means of batch means), available overall, per hand and per future step (a curve).
``evaluate_human_prediction`` runs a model or policy over a stored dataset and returns the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from egovla_description.geometry import PinholeCamera, rotation_distance

from ..action_space import CHUNK_STEPS, NUM_PCA, SIDES, STEP_SIZE, indices, split_step

METRICS = ("wrist_translation_error_cm", "wrist_2d_error_normalised", "wrist_rotation_error_deg",
           "hand_pca_l2_error")
RootOffset = Mapping[str, np.ndarray] | None


def head_camera() -> PinholeCamera:
    """The head camera's intrinsics as the robot description owns them (1280x720, fx = fy = 488.67)."""
    from egovla_description import load_robot

    return load_robot().head_camera.intrinsics


# -- per-entry errors ------------------------------------------------------------------------------------------

def _check_steps(name: str, steps: np.ndarray) -> np.ndarray:
    steps = np.asarray(steps, dtype=np.float64)
    if steps.ndim < 2 or steps.shape[-1] != STEP_SIZE:
        raise ValueError(f"{name} must be (..., T, {STEP_SIZE}) action steps, got shape {steps.shape}")
    return steps


def _check_mask(mask, steps: np.ndarray) -> np.ndarray:
    want = steps.shape[:-1] + (len(SIDES),)
    if mask is None:
        return np.ones(want, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != want:
        raise ValueError(f"mask must have shape {want} (per step and hand), got {mask.shape}")
    return mask


def wrist_positions(steps: np.ndarray, root_offset: RootOffset = None) -> np.ndarray:
    """Action steps (..., 48) -> 3-D wrist positions (..., 2, 3) in metres, camera optical frame, left then right.

    ``root_offset``: per side, the hand model's root offset (``HandModel.root_offset``); the wrist is
    ``transl + root_offset``. None uses zero offsets (the wrist is then approximated by ``transl``)."""
    steps = np.asarray(steps, dtype=np.float64)
    if steps.shape[-1:] != (STEP_SIZE,):
        raise ValueError(f"steps must be (..., {STEP_SIZE}) action steps, got shape {steps.shape}")
    out = []
    for side in SIDES:
        p = steps[..., indices(side, "transl")]
        if root_offset is not None:
            p = p + np.asarray(root_offset[side], dtype=np.float64)
        out.append(p)
    return np.stack(out, axis=-2)


def project_points(points: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """Optical-frame points (..., 3) in metres -> pixels (..., 2) and a mask (...,) of points in front (z > 0).

    Points at or behind the camera get NaN pixels."""
    uv, in_front = camera.project(np.asarray(points, dtype=np.float64))
    return np.asarray(uv), np.asarray(in_front, dtype=bool)


def normalised_image_coordinates(points: np.ndarray, camera: PinholeCamera, clip: bool = True
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """Optical-frame points (..., 3) -> ``(u / W, v / H)`` (..., 2), and the in-front mask (...,).

    With ``clip`` the coordinates are clipped to [0, 1] (the authors' 2-D labels are)."""
    uv, in_front = project_points(points, camera)
    norm = uv / np.array([camera.width, camera.height], dtype=np.float64)
    if clip:
        norm = np.clip(norm, 0.0, 1.0)
    return norm, in_front


def wrist_translation_errors_cm(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Euclidean distance of the 3-D wrist positions, in cm, per (..., step, hand): shape (..., T, 2)."""
    pred, target = _check_steps("pred", pred), _check_steps("target", target)
    return 100.0 * np.linalg.norm(wrist_positions(pred) - wrist_positions(target), axis=-1)


def wrist_2d_errors_normalised(pred: np.ndarray, target: np.ndarray, camera: PinholeCamera | None = None,
                               root_offset: RootOffset = None, clip: bool = True
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised 2-D wrist errors (..., T, 2) (module docstring) and where they are defined (both in front).

    Undefined entries hold NaN."""
    camera = camera or head_camera()
    pred, target = _check_steps("pred", pred), _check_steps("target", target)
    p, p_ok = normalised_image_coordinates(wrist_positions(pred, root_offset), camera, clip)
    t, t_ok = normalised_image_coordinates(wrist_positions(target, root_offset), camera, clip)
    ok = p_ok & t_ok
    err = np.where(ok, np.linalg.norm(p - t, axis=-1), np.nan)
    return err, ok


def wrist_rotation_errors_deg(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Geodesic angle between predicted and true wrist orientations, degrees, per (..., step, hand)."""
    pred, target = _check_steps("pred", pred), _check_steps("target", target)
    out = [np.degrees(np.asarray(rotation_distance(split_step(pred, s).rotation, split_step(target, s).rotation)))
           for s in SIDES]
    return np.stack(out, axis=-1)


def hand_pca_errors(pred: np.ndarray, target: np.ndarray, hand_dims: int = NUM_PCA) -> np.ndarray:
    """L2 norm of the difference of the first ``hand_dims`` physical PCA coefficients, per (..., step, hand)."""
    if not 1 <= hand_dims <= NUM_PCA:
        raise ValueError(f"hand_dims must be in 1..{NUM_PCA}, got {hand_dims}")
    pred, target = _check_steps("pred", pred), _check_steps("target", target)
    out = [np.linalg.norm(pred[..., indices(s, "pca")[:hand_dims]] - target[..., indices(s, "pca")[:hand_dims]],
                          axis=-1) for s in SIDES]
    return np.stack(out, axis=-1)


def masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``values`` over ``mask`` (NaN where nothing is valid)."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    return float(np.where(mask, values, 0.0).sum() / n) if n else float("nan")


# -- aggregation -------------------------------------------------------------------------------------------------

@dataclass
class HumanMetricsAccumulator:
    """Sums and counts per (future step, hand) of every metric, over any number of batches.

    ``camera``: intrinsics used for the 2-D error (default: the head camera); ``root_offset``: per side, the
    hand model's root offset (None: zero); ``clip``: clip normalised image coordinates to [0, 1];
    ``hand_dims``: PCA coefficients compared."""

    camera: PinholeCamera | None = None
    root_offset: RootOffset = None
    clip: bool = True
    hand_dims: int = NUM_PCA
    steps: int = CHUNK_STEPS
    sums: dict[str, np.ndarray] = field(init=False)
    counts: dict[str, np.ndarray] = field(init=False)
    num_samples: int = field(init=False, default=0)
    behind_camera: int = field(init=False, default=0)  # valid entries left out of the 2-D error (z <= 0)

    def __post_init__(self):
        self.camera = self.camera or head_camera()
        self.sums = {m: np.zeros((self.steps, len(SIDES))) for m in METRICS}
        self.counts = {m: np.zeros((self.steps, len(SIDES)), dtype=np.int64) for m in METRICS}

    def update(self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Add a batch: ``pred`` and ``target`` (B, T, 48), ``mask`` (B, T, 2) True where the target is valid."""
        pred, target = _check_steps("pred", pred), _check_steps("target", target)
        if pred.ndim != 3 or pred.shape != target.shape or pred.shape[1] != self.steps:
            raise ValueError(f"pred and target must both be (B, {self.steps}, {STEP_SIZE}), got {pred.shape} "
                             f"and {target.shape}")
        mask = _check_mask(mask, target)
        err2d, ok2d = wrist_2d_errors_normalised(pred, target, self.camera, self.root_offset, self.clip)
        per_entry = {
            "wrist_translation_error_cm": (wrist_translation_errors_cm(pred, target), mask),
            "wrist_2d_error_normalised": (err2d, mask & ok2d),
            "wrist_rotation_error_deg": (wrist_rotation_errors_deg(pred, target), mask),
            "hand_pca_l2_error": (hand_pca_errors(pred, target, self.hand_dims), mask),
        }
        for name, (values, valid) in per_entry.items():
            self.sums[name] += np.where(valid, values, 0.0).sum(axis=0)
            self.counts[name] += valid.sum(axis=0)
        self.behind_camera += int((mask & ~ok2d).sum())
        self.num_samples += pred.shape[0]

    def merge(self, other: "HumanMetricsAccumulator") -> None:
        """Add another accumulator's sums and counts (e.g. from another process)."""
        for name in METRICS:
            self.sums[name] += other.sums[name]
            self.counts[name] += other.counts[name]
        self.num_samples += other.num_samples
        self.behind_camera += other.behind_camera

    @staticmethod
    def _mean(s, n) -> float | None:
        n = int(np.sum(n))
        return float(np.sum(s) / n) if n else None

    def summary(self) -> dict:
        """Exact means over valid entries. Keys carry units; a metric with no valid entry is None.

        For each metric ``m``: ``m`` (all steps and hands), ``m_left`` / ``m_right``, ``m_final_step`` (step 30,
        the "final displacement"), ``m_per_step`` (a list of T means over both hands, for a curve), and
        ``m_count``. Also ``num_samples``, ``wrist_2d_behind_camera_count`` and ``future_step_seconds``."""
        out: dict = {"num_samples": self.num_samples}
        for name in METRICS:
            s, n = self.sums[name], self.counts[name]
            out[name] = self._mean(s, n)
            for h, side in enumerate(SIDES):
                out[f"{name}_{side}"] = self._mean(s[:, h], n[:, h])
            out[f"{name}_final_step"] = self._mean(s[-1], n[-1])
            out[f"{name}_per_step"] = [self._mean(s[k], n[k]) for k in range(self.steps)]
            out[f"{name}_count"] = int(n.sum())
        out["wrist_2d_behind_camera_count"] = self.behind_camera
        out["wrist_2d_clipped_to_image"] = self.clip
        out["future_step_seconds"] = [round((k + 1) / 30.0, 6) for k in range(self.steps)]
        return out


# -- running a model over a dataset ---------------------------------------------------------------------------------

@dataclass
class Prediction:
    """One evaluated sample: its current image, labels and the predicted chunk (for plots)."""

    image: np.ndarray  # (H, W, 3) uint8, the current frame as stored
    instruction: str
    pred: np.ndarray  # (T, 48), PCA physical
    target: np.ndarray  # (T, 48)
    mask: np.ndarray  # (T, 2)
    current_translation: np.ndarray  # (2, 3) MANO transl of the current wrists (proprio)
    current_mask: np.ndarray  # (2,)
    episode: str
    frame_index: int


def _model_and_prompts(policy_or_model, tokenizer):
    """(EgoVLA model, PromptBuilder, hand_dims) from an ``EgoVLAPolicy`` or an ``EgoVLA`` and its tokenizer."""
    from ..model.prompt import PromptBuilder
    from ..policy import EgoVLAPolicy

    if isinstance(policy_or_model, EgoVLAPolicy):
        return policy_or_model.model, policy_or_model.prompts, policy_or_model.hand_dims
    model = policy_or_model
    if tokenizer is None:
        raise ValueError("evaluating a bare model needs its tokenizer (or pass an EgoVLAPolicy)")
    cfg = model.config
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else pad
    return model, PromptBuilder(tokenizer, cfg.num_frames, cfg.tokens_per_frame, cfg.query_start_id,
                                cfg.num_queries, pad, end), NUM_PCA


def hand_root_offsets(hand_model_id: str) -> dict[str, np.ndarray] | None:
    """Root offsets per side of the hand model in use, if its id is ``hand_model_id`` (else None)."""
    from ..hands import load_hand_model

    hands = {s: load_hand_model(s) for s in SIDES}
    if any(h.model_id != hand_model_id for h in hands.values()):
        return None
    return {s: h.root_offset.detach().double().cpu().numpy() for s, h in hands.items()}


def iter_predictions(policy_or_model, dataset_root: str | Path, *, tokenizer=None, max_samples: int | None = None,
                     batch_size: int = 4) -> Iterator[Prediction]:
    """Run the model on the samples of one dataset in storage order, ``batch_size`` at a time (one forward each,
    as the policy does per tick); yields each sample's prediction with physical PCA."""
    import torch

    from ..data import DatasetReader
    from ..hands import check_model_id

    model, prompts, hand_dims = _model_and_prompts(policy_or_model, tokenizer)
    reader = DatasetReader(dataset_root)
    check_model_id(reader.hand_model, model.config.hand_model, what=f"dataset {reader.root}")
    device = next(model.parameters()).device
    done = 0
    batch = []

    def run(samples):
        frames = torch.from_numpy(np.stack([s.frames for s in samples])).to(device)
        proprio = {k: torch.from_numpy(np.stack([getattr(s, f) for s in samples])).to(device)
                   for k, f in (("translation", "proprio_translation"), ("rotation", "proprio_rotation"),
                                ("fingertips", "proprio_fingertips"), ("mask", "proprio_mask"))}
        prompt = prompts([s.instruction for s in samples])
        prompt = type(prompt)(*(t.to(device) for t in (prompt.input_ids, prompt.attention_mask, prompt.image_mask,
                                                         prompt.query_mask)))
        with torch.no_grad():
            actions = model.denormalize(model(model.preprocess_frames(frames), prompt, proprio).float())
        actions = actions.cpu().numpy().astype(np.float64)
        for side in SIDES:
            actions[..., indices(side, "pca")[hand_dims:]] = 0.0
        for s, a in zip(samples, actions):
            yield Prediction(s.frames[-1], s.instruction, a, s.actions.astype(np.float64), s.action_mask,
                             s.proprio_translation.astype(np.float64), s.proprio_mask, s.episode, s.frame_index)

    was_training = model.training
    model.eval()
    try:
        for sample in reader.iter_samples():
            if max_samples is not None and done >= max_samples:
                break
            batch.append(sample)
            done += 1
            if len(batch) == batch_size:
                yield from run(batch)
                batch = []
        if batch:
            yield from run(batch)
    finally:
        model.train(was_training)


def evaluate_human_prediction(policy_or_model, dataset_root: str | Path, *, tokenizer=None,
                              max_samples: int | None = None, batch_size: int = 4,
                              camera: PinholeCamera | None = None, root_offset: RootOffset = None,
                              clip: bool = True, on_prediction: Callable[[Prediction], None] | None = None) -> dict:
    """The human-prediction metrics of a model (``EgoVLA`` + ``tokenizer``) or an ``EgoVLAPolicy`` on a dataset.

    ``root_offset``: per side; by default the root offsets of the hand model in use when its id matches the
    dataset's, else zero (then only the 2-D error is affected, by the few-cm offset). ``camera``: intrinsics of
    the dataset's images (default: the robot head camera). ``on_prediction`` sees every evaluated sample (plots).
    Returns ``HumanMetricsAccumulator.summary()`` plus ``dataset``, ``hand_model`` and ``root_offset_source``."""
    from ..data import read_meta

    hand_model = read_meta(dataset_root)["hand_model"]
    source = "given"
    if root_offset is None:
        root_offset = hand_root_offsets(hand_model)
        source = f"hand model {hand_model}" if root_offset is not None else \
            "zero (the hand model in use differs from the dataset's; wrist approximated by transl)"
    hand_dims = _model_and_prompts(policy_or_model, tokenizer)[2]
    acc = HumanMetricsAccumulator(camera=camera, root_offset=root_offset, clip=clip, hand_dims=hand_dims)
    for p in iter_predictions(policy_or_model, dataset_root, tokenizer=tokenizer, max_samples=max_samples,
                              batch_size=batch_size):
        acc.update(p.pred[None], p.target[None], p.mask[None])
        if on_prediction is not None:
            on_prediction(p)
    return {**acc.summary(), "dataset": str(dataset_root), "hand_model": hand_model,
            "root_offset_source": source, "hand_pca_dims": hand_dims,
            "camera": {k: getattr(acc.camera, k) for k in ("width", "height", "fx", "fy", "cx", "cy")}}


def write_metrics(summary: dict, path: str | Path) -> Path:
    """Write a summary as JSON (None for undefined values)."""
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


# -- command line ----------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    """``egovla-eval-human``: metrics.json and trajectory plots of a checkpoint on a stored dataset."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="egovla-eval-human",
        description="Evaluate an EgoVLA checkpoint on human (or robot) samples of a stored dataset (paper 5.1): "
                    "future wrist translation error (cm), normalised 2-D wrist error on the image, wrist rotation "
                    "error (deg) and hand PCA error, overall, per hand and per future step. Writes "
                    "OUT/metrics.json and K plots OUT/plot_000.png, ... of predicted (green) vs true (red) future "
                    "wrist trajectories on the current image (paper Fig. 11).")
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="model folder written by egovla-train")
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder written by DatasetWriter")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--max-samples", type=int, default=None, metavar="N", help="evaluate the first N samples")
    parser.add_argument("--plots", type=int, default=4, metavar="K", help="plots of the first K samples (4)")
    parser.add_argument("--batch-size", type=int, default=4, help="samples per forward pass (4)")
    parser.add_argument("--hand-dims", type=int, default=NUM_PCA,
                        help="PCA dimensions kept and compared (15; 6 after robot post-training)")
    parser.add_argument("--no-clip", action="store_true",
                        help="do not clip normalised image coordinates to [0, 1] for the 2-D error")
    args = parser.parse_args(argv)

    def fail(message: str) -> int:
        print(f"egovla-eval-human: {message}", file=sys.stderr)
        return 2

    from ..data import DatasetFormatError, read_meta
    from ..hands import HandModelMismatchError
    from ..model.checkpoint import CheckpointError, load_egovla
    from ..policy import EgoVLAPolicy
    from .trajectory_plot import save_trajectory_plot

    if args.max_samples is not None and args.max_samples < 1:
        return fail(f"--max-samples must be >= 1, got {args.max_samples}")
    if args.plots < 0 or args.batch_size < 1:
        return fail("--plots must be >= 0 and --batch-size >= 1")
    if not Path(args.checkpoint).is_dir():
        return fail(f"{args.checkpoint}: no such checkpoint folder")
    try:
        hand_model = read_meta(args.data)["hand_model"]
        model, tokenizer = load_egovla(args.checkpoint, hand_model=hand_model)
        if tokenizer is None:
            return fail(f"{args.checkpoint}: the checkpoint has no tokenizer folder")
        policy = EgoVLAPolicy(model, tokenizer, hand_dims=args.hand_dims)
    except (DatasetFormatError, CheckpointError, HandModelMismatchError, ValueError, OSError) as exc:
        return fail(str(exc))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root_offset = hand_root_offsets(hand_model)
    camera = head_camera()
    plotted: list[str] = []

    def plot(p: Prediction) -> None:
        if len(plotted) < args.plots:
            name = f"plot_{len(plotted):03d}.png"
            save_trajectory_plot(out / name, p.image, p.pred, p.target, p.mask, camera=camera,
                                 root_offset=root_offset, current_translation=p.current_translation,
                                 current_mask=p.current_mask, caption=f"{p.instruction} ({p.episode} #{p.frame_index})")
            plotted.append(name)

    summary = evaluate_human_prediction(policy, args.data, max_samples=args.max_samples,
                                        batch_size=args.batch_size, camera=camera, root_offset=root_offset,
                                        clip=not args.no_clip, on_prediction=plot)
    summary["root_offset_source"] = (f"hand model {hand_model}" if root_offset is not None else
                                     "zero (the hand model in use differs from the dataset's)")
    summary.update(checkpoint=str(args.checkpoint), plots=plotted)
    write_metrics(summary, out / "metrics.json")
    print(json.dumps({k: summary[k] for k in ("num_samples", *METRICS)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
