"""EgoVLA checkpoints: our folder format, and import of the authors' released layout.

Our folder (``save_egovla`` / ``load_egovla``)::

    config.json          EgoVLAConfig (sizes, query ids, hand-model id, PCA normalisation)
    model.safetensors    every weight (tied weights stored once)
    tokenizer/           the tokenizer the prompt was built with

Nothing is unpickled; a reload gives bit-identical outputs.

The authors' layout (VILA's ``save_pretrained``, facts §1.1): ``config.json`` at the top (with
``input_placeholder_start_token_idx``) and one Hugging Face folder per part -- ``llm/`` (Qwen2ForCausalLM, with the
tokenizer), ``vision_tower/`` (SiglipVisionModel), ``mm_projector/`` (``layers.{1,2,4}``: LayerNorm, Linear,
Linear) and ``traj_decoder/`` (``decoder.*`` of their split-action transformer). ``import_authors_checkpoint`` maps
every tensor onto our module names by rule and refuses a checkpoint where any tensor would be left over or missing.
Their per-step output order differs from ours; the model permutes it (``action_space.AUTHORS_TO_OURS``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .config import EgoVLAConfig
from .egovla import EgoVLA
from .prompt import load_tokenizer

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"


class CheckpointError(ValueError):
    """A checkpoint folder is missing something or holds something we will not load."""


# -- our format ------------------------------------------------------------------------------------------------

def save_egovla(model: EgoVLA, folder: str | Path, tokenizer=None, state_dict: dict | None = None) -> Path:
    """Write config, weights (safetensors) and, if given, the tokenizer into ``folder``.

    ``state_dict``: the weights to write instead of the model's own (e.g. gathered from FSDP shards); a full
    state dict with the model's parameter names."""
    from safetensors.torch import save_file, save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
        cfg = EgoVLAConfig.from_dict({**cfg.to_dict(), "tokenizer": TOKENIZER_DIR})
    cfg.save(folder)
    metadata = {"format": "pt", "model_type": cfg.model_type}
    if state_dict is None:
        save_model(model, str(folder / WEIGHTS_FILE), metadata=metadata)
    else:
        # tied parameters (one Parameter under several names) are written once, as save_model does
        first: dict[int, str] = {}
        for name, param in model.named_parameters(remove_duplicate=False):
            first.setdefault(id(param), name)
        tied = {name for name, param in model.named_parameters(remove_duplicate=False) if first[id(param)] != name}
        save_file({k: v.detach().contiguous() for k, v in state_dict.items() if k not in tied},
                  str(folder / WEIGHTS_FILE), metadata)
    return folder


def load_egovla(folder: str | Path, hand_model: str | None = None, device: str | torch.device = "cpu",
                dtype: torch.dtype | None = None):
    """(model in eval mode, tokenizer or None) from a folder written by ``save_egovla``.

    ``hand_model``: if given, the checkpoint must have been trained in that hand model's PCA space.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from ..hands import check_model_id

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    cfg = EgoVLAConfig.load(folder)
    if hand_model is not None:
        check_model_id(cfg.hand_model, hand_model, what=f"checkpoint {folder}")
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing (a checkpoint folder holds {WEIGHTS_FILE} beside config.json)")
    model = EgoVLA(cfg)
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    except RuntimeError as exc:
        raise CheckpointError(f"{weights}: tensor shapes do not match {folder / 'config.json'} ({exc})") from None
    if missing or unexpected:
        raise CheckpointError(f"{weights}: does not match its config: missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]}")
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    tokenizer = load_tokenizer(folder / cfg.tokenizer) if cfg.tokenizer else None
    return model.eval(), tokenizer


# -- the authors' layout ---------------------------------------------------------------------------------------

AUTHORS_PARTS = ("llm", "vision_tower", "mm_projector", "traj_decoder")
VISION_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
               "image_size", "patch_size", "hidden_act", "layer_norm_eps", "attention_dropout")
LLM_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
            "tie_word_embeddings", "attention_dropout", "use_sliding_window", "sliding_window", "max_window_layers")
# Their names -> ours, by rule (applied in order; the first match wins).
_RULES = (
    (r"^llm\.(.*)$", r"llm.\1"),
    (r"^vision_tower\.vision_model\.(.*)$", r"vision_tower.\1"),  # transformers 4 nests SigLIP one level deeper
    (r"^vision_tower\.(.*)$", r"vision_tower.\1"),
    (r"^mm_projector\.layers\.1\.(.*)$", r"projector.norm.\1"),
    (r"^mm_projector\.layers\.2\.(.*)$", r"projector.fc1.\1"),
    (r"^mm_projector\.layers\.4\.(.*)$", r"projector.fc2.\1"),
    (r"^traj_decoder\.decoder\.proprio_projection_3d\.(.*)$", r"action_head.proprio_translation.\1"),
    (r"^traj_decoder\.decoder\.proprio_projection_rot\.(.*)$", r"action_head.proprio_rotation.\1"),
    (r"^traj_decoder\.decoder\.proprio_projection_hand\.(.*)$", r"action_head.proprio_fingertips.\1"),
    (r"^traj_decoder\.decoder\.first_norm\.(.*)$", r"action_head.first_norm.\1"),
    (r"^traj_decoder\.decoder\.layers\.(.*)$", r"action_head.layers.\1"),
    (r"^traj_decoder\.decoder\.output_projection_left\.(.*)$", r"action_head.query_heads.0.\1"),
    (r"^traj_decoder\.decoder\.output_projection_right\.(.*)$", r"action_head.query_heads.1.\1"),
)
# In their checkpoint but not used by their model's forward (``sep_proprio`` is on): dropped, and reported.
UNUSED_AUTHORS_TENSORS = (r"^traj_decoder\.decoder\.proprio_projection\.",)


def authors_name_to_ours(name: str) -> str | None:
    """Map one tensor name of the authors' layout (``part.key``) to ours; None if it is known-unused."""
    if any(re.match(p, name) for p in UNUSED_AUTHORS_TENSORS):
        return None
    for pattern, repl in _RULES:
        if re.match(pattern, name):
            return re.sub(pattern, repl, name)
    raise CheckpointError(f"no rule maps the authors' tensor {name!r} onto our model")


def _read_part(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of one Hugging Face folder (single or sharded safetensors). Pickled weights are refused."""
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / WEIGHTS_FILE).is_file():
        files = [WEIGHTS_FILE]
    elif any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        raise CheckpointError(f"{folder}: only pickled weights (*.bin / *.pt), which we never load; convert them "
                              "to safetensors on a trusted machine first")
    else:
        raise CheckpointError(f"{folder}: no model.safetensors or model.safetensors.index.json")
    tensors = {}
    for name in files:
        tensors.update(load_file(str(folder / name)))
    return tensors


def _json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def authors_config(folder: str | Path, hand_model: str, head: dict[str, torch.Tensor]) -> EgoVLAConfig:
    """Our config for an authors' checkpoint: sizes from its sub-configs, head sizes from its tensors."""
    folder = Path(folder)
    top = _json(folder / "config.json")
    vision = {k: v for k, v in _json(folder / "vision_tower" / "config.json").items() if k in VISION_KEYS}
    llm = {k: v for k, v in _json(folder / "llm" / "config.json").items() if k in LLM_KEYS}
    if "input_placeholder_start_token_idx" not in top:
        raise CheckpointError(f"{folder / 'config.json'}: no input_placeholder_start_token_idx (the action-query ids)")
    n_layers = 1 + max((int(k.split(".")[3]) for k in head if k.startswith("traj_decoder.decoder.layers.")), default=-1)
    if "traj_decoder.decoder.layers.0.linear1.weight" not in head:
        raise CheckpointError(f"{folder / 'traj_decoder'}: no decoder layers (decoder.layers.0.linear1.weight)")
    ff = head["traj_decoder.decoder.layers.0.linear1.weight"].shape[0]
    tokenizer = "llm" if (folder / "llm" / "tokenizer_config.json").is_file() else None
    return EgoVLAConfig(name=f"authors:{folder.name}", vision=vision, llm=llm, hand_model=hand_model,
                        query_start_id=int(top["input_placeholder_start_token_idx"]), head_layers=n_layers,
                        head_heads=1, head_feedforward=int(ff), tokenizer=tokenizer)


def import_authors_checkpoint(folder: str | Path, hand_model: str) -> tuple[EgoVLA, object]:
    """(model, tokenizer or None) from a checkpoint in the authors' layout. Every tensor must land.

    ``hand_model`` names the hand model of the checkpoint's PCA space (theirs is MANO: pass the MANO model id).
    """
    folder = Path(folder)
    missing_parts = [p for p in AUTHORS_PARTS if not (folder / p).is_dir()]
    if missing_parts:
        raise CheckpointError(f"{folder}: not in the authors' layout, missing {missing_parts} "
                              f"(expected sub-folders {list(AUTHORS_PARTS)})")
    theirs = {f"{part}.{k}": v for part in AUTHORS_PARTS for k, v in _read_part(folder / part).items()}
    cfg = authors_config(folder, hand_model, {k: v for k, v in theirs.items() if k.startswith("traj_decoder.")})
    model = EgoVLA(cfg)
    ours = {}
    for name, tensor in theirs.items():
        target = authors_name_to_ours(name)
        if target is not None:
            ours[target] = tensor
    expected = model.state_dict()
    tied = {k for k in expected if k == "llm.lm_head.weight" and cfg.llm.get("tie_word_embeddings", False)}
    missing = sorted(set(expected) - set(ours) - tied)
    unexpected = sorted(set(ours) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{folder}: tensors do not line up with the model: missing {missing[:5]}"
                              f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}")
    wrong = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in ours.items() if v.shape != expected[k].shape]
    if wrong:
        raise CheckpointError(f"{folder}: tensor shapes differ (name, theirs, ours): {wrong[:5]}")
    model.load_state_dict(ours, strict=False)
    if tied:
        model.llm.tie_weights()
    tokenizer = load_tokenizer(folder / "llm") if cfg.tokenizer else None
    return model.eval(), tokenizer


def from_pretrained_backbones(cfg: EgoVLAConfig, dtype: torch.dtype = torch.bfloat16) -> EgoVLA:
    """A fresh EgoVLA whose vision tower and LM come from the hub ids in ``cfg.pretrained`` (needs hub access)."""
    from transformers import Qwen2ForCausalLM, SiglipVisionModel

    if not cfg.pretrained:
        raise ValueError(f"config {cfg.name!r} names no pretrained backbones")
    try:
        vision = SiglipVisionModel.from_pretrained(cfg.pretrained["vision"], dtype=dtype)
        llm = Qwen2ForCausalLM.from_pretrained(cfg.pretrained["llm"], dtype=dtype)
    except OSError as exc:
        raise CheckpointError(f"could not load the backbones {cfg.pretrained} from the Hugging Face hub: {exc}. "
                              "On a machine without hub access, use an already downloaded checkpoint folder.") from None
    return EgoVLA(cfg, vision_tower=vision, llm=llm).to(dtype)
