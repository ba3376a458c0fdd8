"""The action loss of EgoVLA (facts §1.7), on actions in our layout with min-max normalised hand PCA.

    total = 20 * wrist translation + 5 * hand PCA + 5 * wrist rotation

- translation: per (step, hand), the squared error summed over xyz (pretraining, ``"l2"``) or the absolute error
  summed over xyz (post-training, ``"l1"``), averaged over valid (step, hand) pairs;
- hand: squared error summed over the first ``hand_dims`` PCA coefficients (15 pretraining, 6 post-training),
  averaged over valid pairs;
- rotation: mean absolute difference of the 3x3 rotation matrices decoded from rot6d, over valid pairs.

``mask`` (B, T, 2) marks which (step, hand) labels exist (a hand out of view, HOI4D's missing left hand). A batch
with no valid pair gives a zero loss, not NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from egovla_description.geometry import rot6d_to_matrix

from ..action_space import NUM_PCA, SIDES, STEP_SIZE, indices


@dataclass(frozen=True)
class LossConfig:
    translation: str = "l2"  # "l2" (pretraining) or "l1" (post-training)
    hand_dims: int = NUM_PCA  # 15 (pretraining) or 6 (post-training)
    translation_weight: float = 20.0
    hand_weight: float = 5.0
    rotation_weight: float = 5.0

    def __post_init__(self):
        if self.translation not in ("l1", "l2"):
            raise ValueError(f"translation loss must be 'l1' or 'l2', got {self.translation!r}")
        if not 1 <= self.hand_dims <= NUM_PCA:
            raise ValueError(f"hand_dims must be in 1..{NUM_PCA}, got {self.hand_dims}")


def _per_hand(actions: torch.Tensor, part: str) -> torch.Tensor:
    """(B, T, 48) -> (B, T, 2, n) of one part for both hands."""
    return torch.stack([actions[..., torch.as_tensor(indices(s, part), device=actions.device)] for s in SIDES], -2)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B, T, 2, ...) over the (B, T, 2) entries where ``mask`` is True; 0 if there are none."""
    picked = values[mask]
    return picked.mean() if picked.numel() else values.sum() * 0.0


def action_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, cfg: LossConfig = LossConfig()
                ) -> dict[str, torch.Tensor]:
    """pred, target (B, T, 48) with normalised PCA; mask (B, T, 2) bool. Returns the total and its three terms."""
    if pred.shape != target.shape or pred.shape[-1] != STEP_SIZE:
        raise ValueError(f"pred and target must both be (B, T, {STEP_SIZE}), got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if mask.shape != pred.shape[:-1] + (2,):
        raise ValueError(f"mask must be (B, T, 2), got {tuple(mask.shape)}")
    mask = mask.bool()
    target = target.to(pred.dtype)
    d = _per_hand(pred, "transl") - _per_hand(target, "transl")  # (B, T, 2, 3)
    per_pair = (d.abs() if cfg.translation == "l1" else d.square()).sum(-1)
    translation = _masked_mean(per_pair, mask)
    k = cfg.hand_dims
    hand = _masked_mean((_per_hand(pred, "pca")[..., :k] - _per_hand(target, "pca")[..., :k]).square().sum(-1), mask)
    r_pred = rot6d_to_matrix(_per_hand(pred, "rot6d"))  # (B, T, 2, 3, 3)
    r_true = rot6d_to_matrix(_per_hand(target, "rot6d"))
    rotation = _masked_mean((r_pred - r_true).abs().flatten(-2), mask)
    total = cfg.translation_weight * translation + cfg.hand_weight * hand + cfg.rotation_weight * rotation
    return {"loss": total, "translation": translation, "hand": hand, "rotation": rotation}
