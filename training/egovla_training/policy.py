"""The EgoVLA policy at run time: a stateful wrapper the ROS policy node calls once per control tick.

    policy = EgoVLAPolicy.from_checkpoint(folder)
    policy.reset(); policy.set_instruction("Flip the mug")
    every tick: policy.push_frame(rgb_uint8_hw3); chunk = policy.predict(proprio)   # (30, 48), our layout

It owns the frame history and its spacing (``egovla_training.frames.FrameHistory``: the current frame and the ones
``history_spacing`` ticks apart before it; at an episode's start the earliest frame stands in for missing ones, as
the authors' evaluation does), the image preprocessing (each frame is resized and normalised once, when pushed),
and the prompt (built once per instruction). A caller that keeps the history itself (the ROS camera node) passes
the selected frames to ``predict(proprio, frames=...)`` instead of pushing. ``predict`` runs one forward pass (no sampling, no autoregression) and
returns physical actions: hand PCA denormalised, PCA dimensions beyond ``hand_dims`` zeroed (the authors keep 6
after robot post-training).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .action_space import indices
from .frames import FrameHistory
from .model.checkpoint import load_egovla
from .model.egovla import EgoVLA
from .model.prompt import PromptBuilder


class EgoVLAPolicy:
    """Frames, instruction and proprioception in; a (T, 48) action chunk out."""

    def __init__(self, model: EgoVLA, tokenizer, history_spacing: int = 6, hand_dims: int = 15,
                 device: str | torch.device = "cpu"):
        if history_spacing < 1:
            raise ValueError(f"history_spacing must be >= 1 tick, got {history_spacing}")
        if not 1 <= hand_dims <= 15:
            raise ValueError(f"hand_dims must be in 1..15, got {hand_dims}")
        if tokenizer is None:
            raise ValueError("the policy needs the tokenizer the model was trained with")
        cfg = model.config
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.history_spacing, self.hand_dims = history_spacing, hand_dims
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else pad
        self.prompts = PromptBuilder(tokenizer, cfg.num_frames, cfg.tokens_per_frame, cfg.query_start_id,
                                     cfg.num_queries, pad, end)
        self.history = FrameHistory(cfg.num_frames, history_spacing)
        self._instruction: str | None = None
        self._prompt = None

    @classmethod
    def from_checkpoint(cls, folder: str | Path, hand_model: str | None = None, **kwargs) -> "EgoVLAPolicy":
        model, tokenizer = load_egovla(folder, hand_model=hand_model, device=kwargs.get("device", "cpu"))
        if tokenizer is None:
            raise ValueError(f"{folder}: the checkpoint has no tokenizer folder")
        return cls(model, tokenizer, **kwargs)

    # -- state ---------------------------------------------------------------------------------------------------
    def reset(self):
        """Forget the frame history (a new episode). The instruction stays."""
        self.history.reset()

    def set_instruction(self, instruction: str):
        if not instruction or not instruction.strip():
            raise ValueError("the instruction is empty")
        self._instruction = instruction
        self._prompt = self.prompts([instruction])

    def push_frame(self, frame: np.ndarray, stamp_ns: int | None = None) -> str:
        """One head-camera frame, uint8 (H, W, 3) RGB, any size (squashed to the model's image size). With a
        stamp, a frame of the newest frame's stamp replaces it and an older one is refused (``FrameHistory.push``)."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"a frame must be uint8 (H, W, 3) RGB, got {frame.shape} {frame.dtype}")
        pixels = torch.from_numpy(np.ascontiguousarray(frame))[None, None].to(self.device)
        return self.history.push(self.model.preprocess_frames(pixels)[0, 0], stamp_ns)  # (3, S, S)

    def history_indices(self) -> list[int]:
        """Which pushed frames (0 = first of the episode) the prompt shows, chronological, current last."""
        return self.history.indices()

    # -- inference -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, proprio: dict, frames: np.ndarray | None = None) -> np.ndarray:
        """Proprio per hand, camera frame (``translation`` (2, 3), ``rotation`` (2, 3) axis-angle, ``fingertips``
        (2, 5, 3), optional ``mask`` (2,)) -> action chunk (T, 48), float32, hand PCA physical. ``frames``: the
        prompt's frames, uint8 (num_frames, H, W, 3) chronological, instead of the pushed history."""
        if self._prompt is None:
            raise RuntimeError("set_instruction() before predict()")
        n = self.model.config.num_frames
        if frames is not None:
            frames = np.asarray(frames)
            if frames.dtype != np.uint8 or frames.shape[:1] != (n,) or frames.ndim != 4 or frames.shape[3] != 3:
                raise ValueError(f"frames must be uint8 ({n}, H, W, 3), got {frames.shape} {frames.dtype}")
        elif not len(self.history):
            raise RuntimeError("push_frame() at least once before predict()")
        shapes = {"translation": (2, 3), "rotation": (2, 3), "fingertips": (2, 5, 3)}
        batch = {}
        for key, shape in shapes.items():
            if key not in proprio:
                raise ValueError(f"proprio lacks {key!r} (needs {sorted(shapes)})")
            value = torch.as_tensor(np.asarray(proprio[key], dtype=np.float32), device=self.device)
            if tuple(value.shape) != shape:
                raise ValueError(f"proprio {key!r} must be {shape}, got {tuple(value.shape)}")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"proprio {key!r} has NaN or Inf values")
            batch[key] = value[None]
        if proprio.get("mask") is not None:
            batch["mask"] = torch.as_tensor(np.asarray(proprio["mask"], dtype=bool), device=self.device)[None]
        if frames is not None:
            pixels = self.model.preprocess_frames(torch.from_numpy(np.ascontiguousarray(frames))[None].to(self.device))
        else:
            pixels = torch.stack(self.history.selected())[None]
        actions = self.model.denormalize(self.model(pixels, self._prompt, batch).float())[0]  # (T, 48)
        for side in ("left", "right"):
            pca = indices(side, "pca")
            actions[:, pca[self.hand_dims:]] = 0.0
        return actions.cpu().numpy()
