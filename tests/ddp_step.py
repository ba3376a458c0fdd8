"""Two optimizer steps of the tiny EgoVLA on a fixed global batch of 4, split over however many processes run
this script (``torchrun --nproc_per_node N``; one process without torchrun). Writes the losses and a weight
checksum to the JSON file given as the only argument."""

import json
import sys

import torch
from accelerate import Accelerator

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_egovla_model import HAND, builder, make_inputs, random_targets  # noqa: E402

from egovla_training.model.config import egovla_tiny  # noqa: E402
from egovla_training.model.egovla import EgoVLA  # noqa: E402
from egovla_training.model.loss import action_loss  # noqa: E402
from egovla_training.model.prompt import TINY_TOKENIZER_DIR, load_tokenizer  # noqa: E402


def main(out: str):
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(TINY_TOKENIZER_DIR)
    model = EgoVLA(egovla_tiny(HAND, tokenizer.vocab_size))
    instructions = ["Flip the mug", "open the laptop", "push box to the marker", "Close the opened drawer"]
    pixels, _, proprio = make_inputs(model, tokenizer, instructions, seed=1)
    target, mask = random_targets(4, seed=1), torch.ones(4, 30, 2, dtype=torch.bool)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    n, r = accelerator.num_processes, accelerator.process_index
    mine = slice(r * 4 // n, (r + 1) * 4 // n)
    prompt = builder(tokenizer, accelerator.unwrap_model(model).config)(instructions[mine])
    losses = []
    for _ in range(2):
        loss = action_loss(model(pixels[mine], prompt, {k: v[mine] for k, v in proprio.items()}), target[mine],
                           mask[mine])["loss"]
        optimizer.zero_grad()
        accelerator.backward(loss)
        optimizer.step()
        losses.append(accelerator.gather(loss.detach()[None]).mean().item())  # equal shares: mean of means
    checksum = sum(p.double().sum().item() for p in accelerator.unwrap_model(model).parameters())
    if accelerator.is_main_process:
        with open(out, "w") as f:
            json.dump({"processes": n, "losses": losses, "checksum": checksum}, f)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the process group (gloo's threads aborted an exit now and then)


if __name__ == "__main__":
    main(sys.argv[1])
