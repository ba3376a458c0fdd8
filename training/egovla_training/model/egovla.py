"""The EgoVLA model, top to bottom (paper §3.2; what the authors' code does: facts §1.1-1.5).

    frames (B, F, 3, S, S) --SigLIP, layer -2--> (B*F, P*P, Dv) --2x2 downsample MLP--> (B*F, T, D)
    prompt ids (B, L) --embeddings--> (B, L, D), visual tokens written at the image positions
    --Qwen2 (causal)--> hidden (B, L, D)
        queries = hidden at the 60 action-query positions (B, 60, D)   (30 steps x 2 queries per step)
        memory  = all of hidden, minus padding and queries
    proprio (per hand: wrist translation, wrist rotation as axis-angle, 5 fingertips) --3 MLPs--> (B, 6, D)
    action head: [proprio | queries] (B, 66, D), each layer attends over [memory | latent] --> queries (B, 60, D)
        query 2k -> head 0, query 2k+1 -> head 1, 24 values each -> (B, 30, 48) in the authors' order
    --> permuted into our named layout (``action_space.ACTION_NAMES``), hand PCA min-max normalised.

Backbones are real ``transformers`` classes (``SiglipVisionModel``, ``Qwen2ForCausalLM``); the projector and the
head are small torch modules named so that the authors' checkpoint maps onto them by rule (``checkpoint.py``).
The LM loss is off (as the authors'): only the action losses train the network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..action_space import AUTHORS_TO_OURS, STEP_SIZE, PCANormalizer, indices
from .config import EgoVLAConfig
from .prompt import PromptBatch, slot_order

HAND_VALUES = STEP_SIZE // 2  # 24 values per action query: one head's output
SIGLIP_MEAN_STD = (0.5, 0.5)  # SigLIP normalises every channel with mean 0.5, std 0.5


class DownsampleProjector(nn.Module):
    """2x2 neighbour concatenation of the patch grid (padded to even), then LayerNorm -> Linear -> GELU -> Linear.

    The concatenation order is the authors' (``DownSampleBlock.flat_square``): first pairs along the second grid
    axis, then along the first, and the output grid is transposed. Checkpoints depend on this order.
    """

    def __init__(self, vision_hidden: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * vision_hidden)
        self.fc1 = nn.Linear(4 * vision_hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        n, p, c = x.shape  # (N, P*P, C)
        side = int(round(p ** 0.5))
        x = x.reshape(n, side, side, c)
        if side % 2:
            x = F.pad(x, (0, 0, 0, 1, 0, 1))  # one zero row and column
            side += 1
        x = x.reshape(n, side, side // 2, 2 * c)  # pairs along axis 2
        x = x.permute(0, 2, 1, 3)  # (N, side/2, side, 2C)
        x = x.reshape(n, side // 2, side // 2, 4 * c)  # pairs along the other axis
        return x.reshape(n, (side // 2) ** 2, 4 * c)  # (N, T, 4C)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(self.downsample(patches)))))


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ELU(), nn.Linear(hidden, n_out))


class MemoryLayer(nn.Module):
    """A post-norm transformer encoder layer over ``[memory | latent]`` whose memory rows are not computed.

    Equal, for the latent rows, to ``nn.TransformerEncoderLayer(d, nhead, ff, dropout, elu, batch_first)`` run on
    the concatenation and cut to its last rows (what the authors do): attention, feed-forward and the norms act
    per row, so only the latent rows need queries. Parameter names are those of ``nn.TransformerEncoderLayer``.
    """

    def __init__(self, d: int, heads: int, feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d, feedforward)
        self.linear2 = nn.Linear(feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, latent: torch.Tensor, memory: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
        keys = torch.cat([memory, latent], dim=1)  # (B, Lm + Ll, D)
        attended, _ = self.self_attn(latent, keys, keys, key_padding_mask=ignore, need_weights=False)
        x = self.norm1(latent + self.dropout1(attended))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.elu(self.linear1(x))))))


class ActionHead(nn.Module):
    """Proprio tokens + action queries, refined with the LM's hidden states as memory in every layer."""

    def __init__(self, cfg: EgoVLAConfig):
        super().__init__()
        d = cfg.hidden_size
        self.proprio_translation = _mlp(3, d, d)
        self.proprio_rotation = _mlp(3, d, d)
        self.proprio_fingertips = _mlp(15, d, d)
        self.first_norm = nn.LayerNorm(d)  # shared by latent and memory
        self.layers = nn.ModuleList(MemoryLayer(d, cfg.head_heads, cfg.head_feedforward, cfg.head_dropout)
                                    for _ in range(cfg.head_layers))
        # One output MLP per query of a step (even / odd); each emits 24 of the step's 48 values.
        self.query_heads = nn.ModuleList(_mlp(d, d, HAND_VALUES) for _ in range(2))

    def proprio_tokens(self, translation, rotation, fingertips) -> torch.Tensor:
        """(B, 2, 3), (B, 2, 3), (B, 2, 5, 3) -> (B, 6, D): [transl L, R | rot L, R | tips L, R]."""
        return torch.cat([self.proprio_translation(translation), self.proprio_rotation(rotation),
                          self.proprio_fingertips(fingertips.flatten(-2))], dim=1)

    def forward(self, queries, proprio, memory, memory_ignore) -> torch.Tensor:
        """queries (B, 2T, D), proprio (B, 6, D), memory (B, L, D), memory_ignore (B, L) -> (B, T, 48)."""
        latent = self.first_norm(torch.cat([proprio, queries], dim=1))  # (B, 6 + 2T, D)
        memory = self.first_norm(memory)
        ignore = torch.cat([memory_ignore, memory_ignore.new_zeros(latent.shape[:2])], dim=1)
        for layer in self.layers:
            latent = layer(latent, memory, ignore)
        latent = latent[:, proprio.shape[1]:]  # (B, 2T, D)
        out = torch.cat([self.query_heads[0](latent[:, 0::2]), self.query_heads[1](latent[:, 1::2])], dim=-1)
        return out  # (B, T, 48), authors' order


class EgoVLA(nn.Module):
    """Vision tower + projector + Qwen2 + action head. ``forward`` returns (B, T, 48) normalised actions."""

    def __init__(self, cfg: EgoVLAConfig, vision_tower: nn.Module | None = None, llm: nn.Module | None = None):
        super().__init__()
        from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

        self.config = cfg
        self.vision_tower = vision_tower or SiglipVisionModel(SiglipVisionConfig(**cfg.vision))
        self.projector = DownsampleProjector(cfg.vision_hidden_size, cfg.hidden_size)
        self.llm = llm or Qwen2ForCausalLM(Qwen2Config(**cfg.llm))
        self.action_head = ActionHead(cfg)
        self.pca_normalizer = PCANormalizer.from_dict(cfg.pca_normalizer)
        self.register_buffer("authors_to_ours", torch.as_tensor(AUTHORS_TO_OURS), persistent=False)
        self.register_buffer("slots", torch.as_tensor(slot_order(cfg.num_frames)), persistent=False)
        for p in self.unused_vision_parameters():
            p.requires_grad_(False)

    def unused_vision_parameters(self) -> list[nn.Parameter]:
        """Vision-tower weights the features never pass through: the layers after ``vision_feature_layer``, the
        final norm and the pooling head. Kept (checkpoints hold them) but frozen: they would get no gradient, which
        distributed data parallel refuses."""
        tower = self.vision_tower
        layers = tower.encoder.layers
        used = len(layers) + 1 + self.config.vision_feature_layer  # hidden_states[k] is the output of k layers
        modules = list(layers[used:]) + [getattr(tower, "post_layernorm", None), getattr(tower, "head", None)]
        return [p for m in modules if m is not None for p in m.parameters()]

    # -- inputs -------------------------------------------------------------------------------------------------
    def preprocess_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames (B, F, H, W, 3) -> SigLIP input (B, F, 3, S, S): squashed to S x S (aspect ratio not
        kept, as the authors), bilinear with antialiasing, scaled to [-1, 1]."""
        if frames.dtype != torch.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (B, F, H, W, 3), got {tuple(frames.shape)} {frames.dtype}")
        b, f, h, w, _ = frames.shape
        x = frames.reshape(b * f, h, w, 3).permute(0, 3, 1, 2).float() / 255.0
        s = self.config.image_size
        if (h, w) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        mean, std = SIGLIP_MEAN_STD
        return ((x - mean) / std).reshape(b, f, 3, s, s)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, S, S) chronological -> visual tokens (B, F * T, D) in prompt-slot order."""
        b, f = pixel_values.shape[:2]
        if f != self.config.num_frames:
            raise ValueError(f"expected {self.config.num_frames} frames per sample, got {f}")
        pixels = pixel_values[:, self.slots].flatten(0, 1)  # (B*F, 3, S, S)
        out = self.vision_tower(pixel_values=pixels.to(self.projector.fc1.weight.dtype), output_hidden_states=True)
        patches = out.hidden_states[self.config.vision_feature_layer]  # (B*F, P*P, Dv)
        tokens = self.projector(patches)  # (B*F, T, D)
        return tokens.reshape(b, f * tokens.shape[1], tokens.shape[2])

    # -- forward ------------------------------------------------------------------------------------------------
    def forward(self, pixel_values: torch.Tensor, prompt: PromptBatch, proprio: dict) -> torch.Tensor:
        """pixel_values (B, F, 3, S, S); proprio: ``translation`` (B, 2, 3), ``rotation`` (B, 2, 3) axis-angle,
        ``fingertips`` (B, 2, 5, 3), optional ``mask`` (B, 2) (a missing hand's proprio is zeroed).

        Returns actions (B, T, 48) in our layout with min-max normalised hand PCA (``denormalize`` undoes it).
        """
        cfg = self.config
        b = pixel_values.shape[0]
        visual = self.encode_images(pixel_values)  # (B, F*T, D)
        embed = self.llm.get_input_embeddings()
        inputs = embed(prompt.input_ids)  # (B, L, D)
        n_image = int(prompt.image_mask[0].sum())
        if n_image != visual.shape[1] or not bool((prompt.image_mask.sum(1) == n_image).all()):
            raise ValueError(f"the prompt has {n_image} image positions, the frames give {visual.shape[1]} tokens")
        inputs = inputs.masked_scatter(prompt.image_mask[..., None], visual.to(inputs.dtype))
        hidden = self.llm.model(inputs_embeds=inputs, attention_mask=prompt.attention_mask.long()).last_hidden_state
        if not bool((prompt.query_mask.sum(1) == cfg.num_queries).all()):
            raise ValueError(f"every prompt needs {cfg.num_queries} action-query positions")
        queries = hidden[prompt.query_mask].reshape(b, cfg.num_queries, -1)  # (B, 2T, D)
        memory_ignore = ~prompt.attention_mask | prompt.query_mask  # padding and queries are not memory
        dtype = queries.dtype
        translation, rotation, tips = (proprio[k].to(dtype) for k in ("translation", "rotation", "fingertips"))
        if proprio.get("mask") is not None:
            m = proprio["mask"].to(dtype)
            translation, rotation, tips = translation * m[..., None], rotation * m[..., None], tips * m[..., None, None]
        tokens = self.action_head.proprio_tokens(translation, rotation, tips)  # (B, 6, D)
        authors = self.action_head(queries, tokens, hidden, memory_ignore)  # (B, T, 48)
        return authors[..., self.authors_to_ours]

    # -- PCA normalisation --------------------------------------------------------------------------------------
    def normalize(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions with physical PCA coefficients -> the network's space (PCA min-max normalised)."""
        return self._map_pca(actions, self.pca_normalizer.normalize)

    def denormalize(self, actions: torch.Tensor) -> torch.Tensor:
        return self._map_pca(actions, self.pca_normalizer.denormalize)

    @staticmethod
    def _map_pca(actions, fn):
        out = actions.clone()
        for side in ("left", "right"):
            idx = torch.as_tensor(indices(side, "pca"), device=actions.device)
            out[..., idx] = fn(actions[..., idx])
        return out

    # -- training helpers ---------------------------------------------------------------------------------------
    def freeze(self, parts: list[str]):
        """Stop gradients into named parts: ``vision_tower``, ``projector``, ``llm``, ``action_head``."""
        for name in parts:
            module = getattr(self, name, None)
            if not isinstance(module, nn.Module):
                raise ValueError(f"unknown part {name!r}; parts are vision_tower, projector, llm, action_head")
            module.requires_grad_(False)

    def gradient_checkpointing_enable(self):
        self.vision_tower.gradient_checkpointing_enable()
        self.llm.gradient_checkpointing_enable()
