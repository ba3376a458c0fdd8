"""The steps of ``ddp_step.py`` with the tiny EgoVLA sharded by FSDP2 (``fully_shard`` per Qwen2 decoder layer,
per SigLIP encoder layer and at the root, as ``training/configs/accelerate/fsdp_2b.yaml`` wraps it) over gloo on
CPU processes, then a trainer checkpoint written from the shards. Run with ``torchrun --nproc_per_node 2``;
writes losses, a weight checksum (from the gathered checkpoint) and the checkpoint folder into the JSON file given
as the first argument. (accelerate turns FSDP off on CPUs, so this applies FSDP2 directly.)"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch.distributed.fsdp import fully_shard
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer
from transformers.models.siglip.modeling_siglip import SiglipEncoderLayer

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_egovla_model import HAND, builder, make_inputs, random_targets  # noqa: E402

from egovla_training.model.config import egovla_tiny  # noqa: E402
from egovla_training.model.egovla import EgoVLA  # noqa: E402
from egovla_training.model.loss import action_loss  # noqa: E402
from egovla_training.model.prompt import TINY_TOKENIZER_DIR, load_tokenizer  # noqa: E402
from egovla_training.train import save_training_state  # noqa: E402


def main(out: str):
    dist.init_process_group("gloo")
    n, r = dist.get_world_size(), dist.get_rank()
    torch.manual_seed(0)
    tokenizer = load_tokenizer(TINY_TOKENIZER_DIR)
    net = EgoVLA(egovla_tiny(HAND, tokenizer.vocab_size))
    instructions = ["Flip the mug", "open the laptop", "push box to the marker", "Close the opened drawer"]
    pixels, _, proprio = make_inputs(net, tokenizer, instructions, seed=1)
    target, mask = random_targets(4, seed=1), torch.ones(4, 30, 2, dtype=torch.bool)
    layers = [m for m in net.modules() if isinstance(m, (Qwen2DecoderLayer, SiglipEncoderLayer))]
    for layer in layers:
        fully_shard(layer)
    fully_shard(net)
    sharded = type(next(net.parameters())).__name__
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    mine = slice(r * 4 // n, (r + 1) * 4 // n)
    prompt = builder(tokenizer, net.config)(instructions[mine])
    losses = []
    for _ in range(2):
        loss = action_loss(net(pixels[mine], prompt, {k: v[mine] for k, v in proprio.items()}), target[mine],
                           mask[mine])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total = loss.detach().clone()
        dist.all_reduce(total)
        losses.append(total.item() / n)
    folder = Path(out).with_suffix("") / "checkpoint-2"
    save_training_state(folder, net, net, tokenizer, optimizer, {"step": 2, "epoch": 0, "step_in_epoch": 2}, r == 0)
    if r == 0:
        weights = load_file(str(folder / "model.safetensors"))
        checksum = sum(v.double().sum().item() for v in weights.values())
        with open(out, "w") as f:
            json.dump({"processes": n, "parameter_type": sharded, "wrapped_layers": len(layers), "losses": losses,
                       "checksum": checksum, "checkpoint": str(folder)}, f)
    dist.barrier()  # both ranks done before the group goes: gloo's threads aborted an exit now and then
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
