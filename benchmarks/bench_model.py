"""EgoVLA model benchmark: per-tick policy latency of egovla-tiny on the CPU, size and FLOPs of egovla-2b."""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch


def _tiny_policy_latency(ticks: int = 60) -> dict:
    from egovla_training.model.checkpoint import save_egovla
    from egovla_training.model.config import egovla_tiny
    from egovla_training.model.egovla import EgoVLA
    from egovla_training.model.prompt import TINY_TOKENIZER_DIR, load_tokenizer
    from egovla_training.policy import EgoVLAPolicy

    tokenizer = load_tokenizer(TINY_TOKENIZER_DIR)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        save_egovla(EgoVLA(egovla_tiny("standin-bench", tokenizer.vocab_size)), tmp, tokenizer)
        policy = EgoVLAPolicy.from_checkpoint(tmp)
    policy.set_instruction("push box to the marker")
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)  # the twin's head camera at 640x360
    proprio = dict(translation=np.zeros((2, 3)), rotation=np.zeros((2, 3)), fingertips=np.zeros((2, 5, 3)))
    times = []
    for i in range(ticks + 10):
        t0 = time.perf_counter()
        policy.push_frame(frame)
        policy.predict(proprio)
        if i >= 10:  # warm-up
            times.append((time.perf_counter() - t0) * 1e3)
    return {"policy_tiny_tick_median_ms": round(statistics.median(times), 2),
            "policy_tiny_tick_p95_ms": round(float(np.percentile(times, 95)), 2),
            "policy_tiny_threads": torch.get_num_threads()}


def _model_2b_size_and_flops() -> dict:
    """Parameters and forward FLOPs of one tick (batch 1, 6 frames at 384 px) of the paper's model, counted on
    the meta device (no weights are allocated)."""
    from torch.utils.flop_counter import FlopCounterMode

    from egovla_training.model.config import egovla_2b
    from egovla_training.model.egovla import EgoVLA

    cfg = egovla_2b("mano")
    with torch.device("meta"):
        model = EgoVLA(cfg).eval()
        params = sum(p.numel() for p in model.parameters())
        text_tokens = 110  # the prompt's text around a short instruction, as the Qwen2 tokenizer splits it
        length = text_tokens + cfg.num_frames * cfg.tokens_per_frame + cfg.num_queries + 1
        d = cfg.hidden_size
        pixels = torch.zeros(1, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
        counter = FlopCounterMode(display=False)
        # The forward's parts one by one (its input checks read tensor values, which meta tensors do not have).
        with counter, torch.no_grad():
            model.encode_images(pixels)
            hidden = model.llm.model(inputs_embeds=torch.zeros(1, length, d)).last_hidden_state
            tokens = model.action_head.proprio_tokens(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3),
                                                      torch.zeros(1, 2, 5, 3))
            model.action_head(hidden[:, :cfg.num_queries], tokens, hidden, torch.zeros(1, length, dtype=torch.bool))
    return {"model_2b_parameters": params, "model_2b_sequence_tokens": length,
            "model_2b_forward_gflops_per_tick": round(counter.get_total_flops() / 1e9, 1)}


def run() -> dict:
    out = _tiny_policy_latency()
    out.update(_model_2b_size_and_flops())
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
