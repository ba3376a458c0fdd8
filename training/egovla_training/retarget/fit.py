"""Robot hand -> human hand: fit hand-model PCA so its wrist and fingertips match the robot's (paper §3.3).

Per frame and hand, the wrist is fixed by the robot end effector: the hand model's global orientation is
``R_ee @ AXIS_CHANGE[side]`` and its ``transl`` is ``p_ee - root_offset`` (``action_space``). Only the first
``num_pca_fit`` PCA coefficients are optimised (the rest stay 0), so that the model's five fingertips match the
robot's, whose offsets from the wrist are first divided by ``robot_hand_scale`` (the Inspire hand is taken as
1.5x a human hand). SmoothL1 loss, Adam, all frames of a batch at once, as the authors do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from egovla_description.geometry import matrix_to_axis_angle

from ..action_space import AXIS_CHANGE
from ..hands import FINGERTIPS, WRIST, HandModel

_FIT_POINTS = [WRIST, *FINGERTIPS]
LR_SCHEDULES = ("constant", "cosine")  # of the fit's Adam here and of the retargeting net's training


def check_lr_schedule(schedule: str) -> None:
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")


def lr_scheduler(opt: torch.optim.Optimizer, schedule: str, steps: int):
    """The scheduler of ``schedule`` over ``steps`` (``cosine``: decays to 0), or None for ``constant``."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine" else None


@dataclass
class FitConfig:
    num_pca_fit: int = 6  # coefficients optimised (the authors fit 6; up to 15)
    iterations: int = 500
    lr: float = 0.1
    init_scale: float = 0.1  # initial coefficients ~ U(0, init_scale), seeded
    # The same initial coefficients for every frame (init_scale / 2 each): the fit becomes a deterministic
    # function of the frame, which training data for the retargeting net needs (random starts make the fitted
    # fingertips of one robot pose differ by ~0.8 mm on average between runs).
    same_init: bool = False
    robot_hand_scale: float = 1.5
    smooth_l1_beta: float = 0.01  # metres: quadratic below 1 cm, linear above
    # Starts per frame, optimised together; the best fit is kept. The first is the authors' init, the others the
    # nearest poses (by fingertip offsets in the hand frame) in a library sampled uniformly from start_range.
    # One start alone ends in a local minimum on ~6 % of frames.
    starts: int = 2
    start_range: tuple[float, float] = (-1.5, 2.5)
    library_size: int = 16384
    # Frames still off by more than this (worst fingertip, robot scale) are fitted again from more library
    # starts (another library), and keep whichever fit is better.
    retry_above_m: float = 0.001
    retry_starts: int = 8
    seed: int = 0
    # Adam's learning rate: "constant" (the authors') or "cosine" (decays to 0 over the iterations: the fit then
    # settles in its minimum instead of circling it).
    lr_schedule: str = "constant"
    # Weight of the squared PCA coefficients added to the loss (0: none, as the authors). It trades fingertip
    # residual for a fit that depends smoothly on the robot pose (fewer jumps between local minima).
    pca_l2: float = 0.0
    # Iterations without the penalty after the penalised ones (0: none), from where those ended, with the same
    # learning rate and schedule: a continuation that keeps the smooth choice of minimum and gives back the residual.
    # Measured on 500 Inspire poses, all 15 coefficients, each pose moved by 1e-3 rad on every joint: with
    # pca_l2=1e-3, 1000 cosine iterations and 500 refining ones, 1.0 % of poses have a fitted fingertip that moves
    # over 3x as far as the robot's (the fit jumped to another minimum), against 3.8 % with 1000 cosine iterations
    # and no penalty; mean residual 2.80 mm against 2.83 (pca_l2=1e-3 alone: 0.4 % but 6.6 mm). A constant rate
    # never settles: 8000 iterations of it move the fitted tips 1.5x as far as the robot's on the median pose.
    refine_iterations: int = 0

    def validate(self):
        if not 1 <= self.num_pca_fit <= 15:
            raise ValueError(f"num_pca_fit must be in 1..15, got {self.num_pca_fit}")
        if self.iterations < 1 or not self.lr > 0 or not self.robot_hand_scale > 0 or self.starts < 1:
            raise ValueError("iterations and starts must be >= 1, lr and robot_hand_scale positive")
        check_lr_schedule(self.lr_schedule)
        if not self.pca_l2 >= 0 or self.refine_iterations < 0:
            raise ValueError(f"pca_l2 and refine_iterations must be >= 0, got {self.pca_l2}, {self.refine_iterations}")


@dataclass
class FitResult:
    pca: torch.Tensor  # (B, num_pca) fitted coefficients, zeros beyond num_pca_fit
    global_orient: torch.Tensor  # (B, 3) axis-angle, from the end effector
    transl: torch.Tensor  # (B, 3)
    keypoints: torch.Tensor  # (B, 21, 3) at robot scale (offsets from the wrist x robot_hand_scale)
    fingertip_residual_m: torch.Tensor  # (B, 5) robot-scale distance per fingertip (thumb..pinky)


def fit_hand_to_robot(hand: HandModel, ee_pose, fingertips, config: FitConfig | None = None) -> FitResult:
    """Fit ``hand`` to robot frames: end-effector poses (B, 4, 4) and fingertip positions (B, 5, 3) in one frame."""
    cfg = config or FitConfig()
    cfg.validate()
    result = _fit(hand, ee_pose, fingertips, cfg)
    worst = result.fingertip_residual_m.max(1).values
    retry = torch.nonzero(worst > cfg.retry_above_m).flatten()
    if len(retry) and cfg.retry_starts > 0:
        from dataclasses import replace

        again = _fit(hand, np.asarray(ee_pose)[retry.numpy()], np.asarray(fingertips)[retry.numpy()],
                     replace(cfg, starts=cfg.retry_starts + 2, seed=cfg.seed + 1))
        better = again.fingertip_residual_m.sum(1) < result.fingertip_residual_m[retry].sum(1)
        idx = retry[better]
        for name in ("pca", "keypoints", "fingertip_residual_m"):
            getattr(result, name)[idx] = getattr(again, name)[better]
    return result


def _fit(hand: HandModel, ee_pose, fingertips, cfg: FitConfig) -> FitResult:
    dtype = hand.components.dtype
    ee = torch.as_tensor(np.asarray(ee_pose), dtype=dtype)
    tips = torch.as_tensor(np.asarray(fingertips), dtype=dtype)
    if ee.ndim != 3 or ee.shape[1:] != (4, 4) or tips.shape != (ee.shape[0], 5, 3):
        raise ValueError(f"need ee_pose (B, 4, 4) and fingertips (B, 5, 3), got {tuple(ee.shape)} and "
                         f"{tuple(tips.shape)}")
    if not (torch.isfinite(ee).all() and torch.isfinite(tips).all()):
        raise ValueError("ee_pose and fingertips must be finite")
    b = ee.shape[0]
    axis = torch.as_tensor(AXIS_CHANGE[hand.side], dtype=dtype)
    orient = matrix_to_axis_angle(ee[:, :3, :3] @ axis)
    wrist = ee[:, :3, 3]
    transl = wrist - hand.root_offset
    target = torch.cat([wrist[:, None], wrist[:, None] + (tips - wrist[:, None]) / cfg.robot_hand_scale], dim=1)

    gen = torch.Generator().manual_seed(cfg.seed)
    lo, hi = cfg.start_range
    if cfg.same_init:
        inits = [torch.full((b, cfg.num_pca_fit), 0.5 * cfg.init_scale, dtype=dtype)]
    else:
        inits = [torch.rand(b, cfg.num_pca_fit, generator=gen, dtype=dtype) * cfg.init_scale]
    if cfg.starts > 1:
        inits += list(_library_starts(hand, orient, target, cfg, gen, cfg.starts - 1))
    s = cfg.starts
    free = torch.cat(inits).requires_grad_(True)  # (s * b, n)
    fixed = torch.zeros(s * b, hand.num_pca - cfg.num_pca_fit, dtype=dtype)
    orient_s, transl_s, target_s = orient.repeat(s, 1), transl.repeat(s, 1), target.repeat(s, 1, 1)
    loss_fn = torch.nn.SmoothL1Loss(beta=cfg.smooth_l1_beta, reduction="sum")
    stages = [(cfg.iterations, cfg.pca_l2)] + ([(cfg.refine_iterations, 0.0)] if cfg.refine_iterations else [])
    with torch.enable_grad():
        for iterations, l2 in stages:
            opt = torch.optim.Adam([free], lr=cfg.lr)
            sched = lr_scheduler(opt, cfg.lr_schedule, iterations)
            for _ in range(iterations):
                opt.zero_grad()
                k = hand(torch.cat([free, fixed], dim=1), orient_s, transl_s)[:, _FIT_POINTS]
                loss = loss_fn(k, target_s)
                if l2:
                    loss = loss + l2 * torch.sum(free * free)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
    with torch.no_grad():
        all_pca = torch.cat([free.detach(), fixed], dim=1)
        k = hand(all_pca, orient_s, transl_s)
        err = torch.linalg.norm(k[:, list(FINGERTIPS)] - target_s[:, 1:], dim=-1)  # (s * b, 5)
        best = err.sum(1).reshape(s, b).argmin(0)  # per frame, the best start
        pick = best * b + torch.arange(b)
        pca, k = all_pca[pick], k[pick]
        residual = err[pick] * cfg.robot_hand_scale
        robot_scale = wrist[:, None] + (k - wrist[:, None]) * cfg.robot_hand_scale
    return FitResult(pca, orient, transl, robot_scale, residual)


def _library_starts(hand: HandModel, orient, target, cfg: FitConfig, gen, k: int) -> torch.Tensor:
    """Per frame, the ``k`` library poses whose fingertip offsets (in the hand's own frame) are nearest the
    target's: (k, b, num_pca_fit)."""
    from egovla_description.geometry import axis_angle_to_matrix

    dtype = target.dtype
    lo, hi = cfg.start_range
    library = lo + (hi - lo) * torch.rand(cfg.library_size, cfg.num_pca_fit, generator=gen, dtype=dtype)
    full = torch.cat([library, torch.zeros(cfg.library_size, hand.num_pca - cfg.num_pca_fit, dtype=dtype)], dim=1)
    with torch.no_grad():
        lib_offsets = hand.canonical_keypoints(full)[:, list(FINGERTIPS)].reshape(cfg.library_size, -1)
        rot = axis_angle_to_matrix(orient)  # (b, 3, 3): hand frame -> observation frame
        offsets = torch.einsum("bji,bkj->bki", rot, target[:, 1:] - target[:, :1]).reshape(len(target), -1)
        best = torch.cat([torch.cdist(chunk, lib_offsets).topk(k, largest=False).indices
                          for chunk in offsets.split(4096)])  # (b, k)
    return library[best.T].clone()
