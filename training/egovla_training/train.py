"""``egovla-train --config recipe.yaml [key=value ...]``: train EgoVLA on datasets in our Parquet format.

The recipe (``TrainConfig``) names the model to start from (a preset, one of our checkpoint folders, or an authors'
checkpoint as ``authors:<folder>``), the datasets, the schedule and the loss. The two schedules of the paper:
``cosine`` (pretraining: 1e-4, 3 % warm-up) and ``step`` (post-training: 2e-5, then 2e-6 from ``lr_drop_epoch``).

Checkpoints go to ``<out>/checkpoint-<step>/``: the model folder (safetensors + config + tokenizer), the optimizer
state (safetensors), the RNG state and the position in the data (JSON). ``<out>/final/`` gets the last model. ``resume=<folder>`` continues exactly:
the data order is a function of (seed, epoch), so the batches already seen in the current epoch are skipped, and
the learning rate is a pure function of the step. Metrics are appended to ``<out>/metrics.jsonl``
and written as TensorBoard scalars under ``<out>/tensorboard`` (``tensorboard --logdir <out>``).

Runs on one process as is, and on several through ``accelerate launch`` / ``torchrun`` (the loader shards episodes
over ranks); bf16 autocast is used on GPUs when ``bf16`` is on.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .model.checkpoint import import_authors_checkpoint, load_egovla, save_egovla
from .model.config import egovla_2b, egovla_tiny
from .model.egovla import EgoVLA
from .model.loss import LossConfig, action_loss
from .model.prompt import TINY_TOKENIZER_DIR, PromptBuilder, load_tokenizer

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


@dataclass
class TrainConfig:
    data: list[str]  # dataset roots (written by data.DatasetWriter)
    out: str
    # Share of each dataset's episodes to train on (one value per root, or empty for all): a seeded subset, the same
    # in every epoch and on every rank. The paper's "EgoVLA (50%)" ablation is data_fractions=[0.5] on robot demos.
    data_fractions: list[float] = field(default_factory=list)
    model: str = "egovla-tiny"  # egovla-tiny | egovla-2b | a checkpoint folder | authors:<folder>
    epochs: int = 1
    max_steps: int = 0  # 0 = no limit besides epochs
    batch_size: int = 8
    lr: float = 1e-4
    schedule: str = "cosine"  # cosine | step
    warmup_ratio: float = 0.03  # cosine only
    lr_drop_epoch: int = 0  # step only: from this epoch on, lr_after_drop
    lr_after_drop: float = 0.0
    weight_decay: float = 0.0
    translation_loss: str = "l2"  # l2 (pretraining) | l1 (post-training)
    hand_dims: int = 15  # 15 (pretraining) | 6 (post-training)
    freeze: list[str] = field(default_factory=list)  # vision_tower, projector, llm, action_head
    gradient_checkpointing: bool = False
    bf16: bool = True  # on GPUs only
    num_workers: int = 2
    seed: int = 0
    save_every_steps: int = 0  # 0 = at the end of each epoch only
    log_every_steps: int = 10
    tensorboard: bool = True  # scalars also to <out>/tensorboard (TensorBoard event files)
    resume: str = ""  # a checkpoint-<step> folder written by this trainer

    def validate(self):
        if not self.data:
            raise ValueError("data: give at least one dataset root")
        if self.schedule not in ("cosine", "step"):
            raise ValueError(f"schedule must be 'cosine' or 'step', got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        LossConfig(self.translation_loss, self.hand_dims)
        if self.data_fractions:
            if len(self.data_fractions) != len(self.data):
                raise ValueError(f"data_fractions: one value per dataset root ({len(self.data)}), got "
                                 f"{len(self.data_fractions)}")
            for f in self.data_fractions:
                if not 0.0 < f <= 1.0:
                    raise ValueError(f"data_fractions: each value must be in (0, 1], got {f}")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] = ()) -> "TrainConfig":
        """The recipe in ``path`` with ``key=value`` overrides (the project's typed YAML loader)."""
        from egovla_description.config import load_config

        return load_config(cls, path, overrides)


def learning_rate(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The learning rate at optimizer step ``step`` (0-based): a pure function, so resuming needs no state."""
    if cfg.schedule == "step":
        return cfg.lr_after_drop if cfg.lr_drop_epoch and step // steps_per_epoch >= cfg.lr_drop_epoch else cfg.lr
    warmup = int(cfg.warmup_ratio * total_steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_model(cfg: TrainConfig, hand_model: str) -> tuple[EgoVLA, object]:
    if cfg.model == "egovla-tiny":
        tokenizer = load_tokenizer(TINY_TOKENIZER_DIR)
        return EgoVLA(egovla_tiny(hand_model, tokenizer.vocab_size)), tokenizer
    if cfg.model == "egovla-2b":
        from .model.checkpoint import from_pretrained_backbones

        model = from_pretrained_backbones(egovla_2b(hand_model), dtype=torch.float32)
        from transformers import AutoTokenizer

        return model, AutoTokenizer.from_pretrained(model.config.pretrained["llm"])
    if cfg.model.startswith("authors:"):
        return import_authors_checkpoint(cfg.model.split(":", 1)[1], hand_model=hand_model)
    model, tokenizer = load_egovla(cfg.model, hand_model=hand_model)
    return model.train(), tokenizer


def _batch_inputs(model: EgoVLA, prompts: PromptBuilder, batch: dict, device):
    pixels = model.preprocess_frames(batch["frames"].to(device))
    proprio = {"translation": batch["proprio_translation"], "rotation": batch["proprio_rotation"],
               "fingertips": batch["proprio_fingertips"], "mask": batch["proprio_mask"]}
    proprio = {k: v.to(device) for k, v in proprio.items()}
    prompt = prompts(batch["instruction"])
    prompt = type(prompt)(*(t.to(device) for t in (prompt.input_ids, prompt.attention_mask, prompt.image_mask,
                                                     prompt.query_mask)))
    return pixels, prompt, proprio


def _full_state_options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def save_training_state(folder: Path, model, net: EgoVLA, tokenizer, optimizer, state: dict, is_main: bool = True):
    """Checkpoint ``folder``: the model folder, the optimizer state and the RNG (safetensors), the position (JSON).

    Call it on every process: with FSDP the weights and the optimizer state are gathered from the shards (full,
    unsharded state dicts keyed by parameter name, so a checkpoint resumes on any number of processes); the main
    process writes. ``model`` is the prepared (possibly wrapped) module, ``net`` the unwrapped model."""
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    weights = get_model_state_dict(model, options=_full_state_options(cpu_offload=True))
    optim = get_optimizer_state_dict(model, optimizer, options=_full_state_options(cpu_offload=True))
    if not is_main:
        return
    save_egovla(net, folder, tokenizer, state_dict=weights)
    tensors = {"rng.torch": torch.get_rng_state()}
    for name, values in optim["state"].items():
        for key, value in values.items():
            tensors[f"state.{name}.{key}"] = torch.as_tensor(value).clone()
    save_file(tensors, str(folder / OPTIMIZER_FILE))
    (folder / STATE_FILE).write_text(json.dumps({**state, "param_groups": optim["param_groups"]}, indent=2) + "\n")


def load_training_state(folder: Path, model, optimizer) -> dict:
    """Restore the optimizer state and the RNG of a checkpoint written by ``save_training_state``; returns the
    position. Every process reads the folder, so it must be visible to all of them."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    path = folder / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; resume= must name a checkpoint-<step> folder of this trainer")
    state = json.loads(path.read_text())
    tensors = load_file(str(folder / OPTIMIZER_FILE))
    per_param: dict[str, dict] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            param, key = name[len("state."):].rsplit(".", 1)
            per_param.setdefault(param, {})[key] = value
    set_optimizer_state_dict(model, optimizer, {"state": per_param, "param_groups": state.pop("param_groups")},
                             options=_full_state_options())
    torch.set_rng_state(tensors["rng.torch"])
    return state


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run the recipe; returns the last logged metrics."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from .data import SampleStream, collate_samples, read_meta

    cfg.validate()
    accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                              mixed_precision="bf16" if cfg.bf16 and torch.cuda.is_available() else "no")
    torch.manual_seed(cfg.seed)
    hand_models = {read_meta(root)["hand_model"] for root in cfg.data}
    if len(hand_models) != 1:
        raise ValueError(f"the datasets were made with different hand models: {sorted(hand_models)}")
    hand_model = hand_models.pop()
    if cfg.resume:  # the weights come from the checkpoint, the rest of the state after prepare()
        model, tokenizer = load_egovla(cfg.resume, hand_model=hand_model)
        model.train()
    else:
        model, tokenizer = build_model(cfg, hand_model)
    if tokenizer is None:
        raise ValueError(f"{cfg.model}: no tokenizer with the model")
    model.freeze(cfg.freeze)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    mc = model.config
    prompts = PromptBuilder(tokenizer, mc.num_frames, mc.tokens_per_frame, mc.query_start_id, mc.num_queries,
                            tokenizer.pad_token_id or 0, tokenizer.eos_token_id or 0)
    stream = SampleStream(cfg.data, seed=cfg.seed, image_size=mc.image_size, rank=accelerator.process_index,
                          world_size=accelerator.num_processes, hand_model=mc.hand_model,
                          episode_fractions=cfg.data_fractions or None)
    loader = DataLoader(stream, batch_size=cfg.batch_size, collate_fn=collate_samples, num_workers=cfg.num_workers,
                        persistent_workers=cfg.num_workers > 0)
    # Batches per epoch: the same on every rank (the smallest rank's count), or DDP would wait for a missing step.
    def epoch_steps(e: int) -> int:
        return min(stream.batches_per_rank(e, cfg.batch_size, cfg.num_workers))

    steps_per_epoch = epoch_steps(0)  # for the schedule (epochs differ by a batch or so at most)
    total = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    net = accelerator.unwrap_model(model)
    loss_cfg = LossConfig(cfg.translation_loss, cfg.hand_dims)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    step, epoch, skip = 0, 0, 0
    if cfg.resume:
        state = load_training_state(Path(cfg.resume), model, optimizer)
        step, epoch, skip = state["step"], state["epoch"], state["step_in_epoch"]
    last: dict = {}
    board = None
    if cfg.tensorboard and accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter

        board = SummaryWriter(str(out / "tensorboard"), purge_step=step if cfg.resume else None)
        if not cfg.resume:
            board.add_text("config", "```\n" + json.dumps(asdict(cfg), indent=2) + "\n```", 0)
            board.add_text("data", f"{stream.num_samples} samples in {len(stream.units)} episodes", 0)
    bar = tqdm(total=total, initial=step, disable=not progress or not accelerator.is_main_process, unit="step")
    model.train()
    while step < total and epoch < cfg.epochs:
        stream.set_epoch(epoch)
        this_epoch = epoch_steps(epoch)
        for i, batch in enumerate(loader):
            if i < skip:
                continue
            lr = learning_rate(cfg, step, steps_per_epoch, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pixels, prompt, proprio = _batch_inputs(net, prompts, batch, accelerator.device)
            with accelerator.autocast():
                pred = model(pixels, prompt, proprio)
            target = net.normalize(batch["actions"].to(accelerator.device))
            losses = action_loss(pred.float(), target, batch["action_mask"].to(accelerator.device), loss_cfg)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(losses["loss"])
            optimizer.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every_steps == 0 or step == total:
                last = {"step": step, "epoch": epoch, "lr": lr, **{k: float(v.detach()) for k, v in losses.items()}}
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                if accelerator.is_main_process:
                    with open(out / "metrics.jsonl", "a") as f:
                        f.write(json.dumps(last) + "\n")
                    if board is not None:
                        for key, value in last.items():
                            if key not in ("step", "epoch"):
                                board.add_scalar(f"train/{key}", value, step)
                        board.add_scalar("train/epoch", epoch, step)
            end_of_epoch = i + 1 >= this_epoch
            if (cfg.save_every_steps and step % cfg.save_every_steps == 0) or step == total or end_of_epoch:
                position = {"step": step, "epoch": epoch + end_of_epoch, "step_in_epoch": 0 if end_of_epoch
                            else i + 1, "processes": accelerator.num_processes,
                            "distributed": accelerator.distributed_type.value, "config": asdict(cfg)}
                save_training_state(out / f"checkpoint-{step}", model, net, tokenizer, optimizer, position,
                                    accelerator.is_main_process)
            if step >= total or end_of_epoch:
                break
        epoch, skip = epoch + 1, 0
    bar.close()
    if board is not None:
        board.close()
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    weights = get_model_state_dict(model, options=_full_state_options(cpu_offload=True))  # gathered under FSDP
    if accelerator.is_main_process:
        save_egovla(net, out / "final", tokenizer, state_dict=weights)  # the model alone, for the next stage
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the process group: gloo's threads must not outlive the interpreter
    return last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train EgoVLA from a recipe (YAML); key=value pairs override it.")
    parser.add_argument("--config", required=True, help="recipe YAML, e.g. training/configs/posttrain.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. epochs=2 data=[my/dataset]")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        cfg = TrainConfig.from_yaml(args.config, args.overrides)
    except ValueError as exc:  # ConfigError included
        print(f"egovla-train: {exc}", file=sys.stderr)
        return 2
    metrics = train(cfg, progress=not args.no_progress)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
