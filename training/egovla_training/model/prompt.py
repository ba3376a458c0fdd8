"""The text side of EgoVLA: the prompt the authors use, its token layout, and the locally built tiny tokenizer.

The authors' prompt (facts §1.1-1.3) is the ``vicuna_v1`` conversation around the ``v0`` template with history
images::

    {SYSTEM} USER: You have been given a video of history observations:<image>\\n<image>\\n<image>\\n<image>\\n
    <image>\\nand current observation:<image>\\nWhere should i move hand to: {instruction} ? A:  ASSISTANT: {queries}

followed by one end token. Each ``<image>`` becomes that frame's visual tokens (196 at 384 px), and the assistant's
reply is a block of 60 *action query* tokens (30 steps x 2 per step) whose ids are distinct, existing vocabulary
ids counting down from ``query_start_id`` (the authors' ``vocab_size - 256 - 1 - 11``). The LM's last hidden states
at those 60 positions feed the action head. We tokenise the text between images piece by piece (as the authors'
``tokenizer_image_token`` does) and mark image and query positions with boolean masks, so no tokenizer needs an
``<image>`` token.

History slots are filled newest first and the current frame last: ``[t-d, t-2d, ..., t-5d, t]`` (facts §1.2);
frames elsewhere in this package are chronological, ``[t-5d, ..., t-d, t]``; ``slot_order`` maps one to the other.

The tiny tokenizer (``build_tiny_tokenizer``) is a byte-level BPE trained here on the prompt and the benchmark's
instructions, with 328 reserved tokens at the end of its vocabulary so the query ids never collide with text.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

SYSTEM_PROMPT = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")
IMAGE = "<image>"
# The authors' action tokenizer keeps 256 bins + 1 + 11 ids clear at the end of the vocabulary.
QUERY_ID_OFFSET = 256 + 1 + 11
NUM_RESERVED = QUERY_ID_OFFSET + 60


def query_start_id(vocab_size: int) -> int:
    """The first (highest) action-query id for a tokenizer whose base vocabulary has ``vocab_size`` entries."""
    return vocab_size - QUERY_ID_OFFSET


def user_message(instruction: str, num_frames: int) -> str:
    """The ``v0`` template with ``num_frames - 1`` history images and the current image."""
    history = "You have been given a video of history observations:" + f"{IMAGE}\n" * (num_frames - 1)
    history += f"and current observation:{IMAGE}\n"
    return history + f"Where should i move hand to: {instruction} ? A: "


def conversation_prefix(instruction: str, num_frames: int) -> str:
    """Everything before the action queries (the ``vicuna_v1`` template, separators " " and "</s>")."""
    return f"{SYSTEM_PROMPT} USER: {user_message(instruction, num_frames)} ASSISTANT: "


def slot_order(num_frames: int) -> list[int]:
    """Chronological frame index for each image slot of the prompt: newest history first, current last."""
    return list(range(num_frames - 2, -1, -1)) + [num_frames - 1]


@dataclass
class PromptBatch:
    """Token ids and position masks of a right-padded batch of prompts, all (B, L)."""

    input_ids: torch.Tensor  # long
    attention_mask: torch.Tensor  # bool, False on padding
    image_mask: torch.Tensor  # bool, True where a visual token goes (num_frames * tokens_per_frame per row)
    query_mask: torch.Tensor  # bool, True at the action-query positions (num_queries per row)


class PromptBuilder:
    """Builds the authors' prompt for a batch of instructions with any tokenizer.

    ``tokenizer`` is a transformers tokenizer; ``placeholder_id`` is the id put at image positions (its embedding
    is replaced by visual tokens, so any valid id works); ``end_id`` is the token after the queries.
    """

    def __init__(self, tokenizer, num_frames: int, tokens_per_frame: int, query_start: int, num_queries: int,
                 pad_id: int, end_id: int):
        if query_start - num_queries + 1 < 0:
            raise ValueError(f"query ids {query_start}..{query_start - num_queries + 1} go below 0")
        self.tokenizer = tokenizer
        self.num_frames, self.tokens_per_frame = num_frames, tokens_per_frame
        self.query_ids = [query_start - k for k in range(num_queries)]
        self.pad_id, self.end_id = pad_id, end_id
        self._cache: dict[str, tuple[list[int], list[bool], list[bool]]] = {}

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def sequence(self, instruction: str) -> tuple[list[int], list[bool], list[bool]]:
        """(ids, image flags, query flags) of one prompt. Cached: a policy asks for the same one every tick."""
        if instruction not in self._cache:
            pieces = conversation_prefix(instruction, self.num_frames).split(IMAGE)
            ids, image = [], []
            for i, piece in enumerate(pieces):
                text_ids = self._encode(piece)
                ids += text_ids
                image += [False] * len(text_ids)
                if i < len(pieces) - 1:
                    ids += [self.pad_id] * self.tokens_per_frame
                    image += [True] * self.tokens_per_frame
            query = [False] * len(ids) + [True] * len(self.query_ids) + [False]
            ids += self.query_ids + [self.end_id]
            image += [False] * (len(self.query_ids) + 1)
            bad = set(self.query_ids) & set(i for i, q in zip(ids, query) if not q)
            if bad:
                raise ValueError(f"the prompt's text tokenises to action-query ids {sorted(bad)}: the tokenizer's "
                                 "reserved range is used by text")
            self._cache[instruction] = (ids, image, query)
        return self._cache[instruction]

    def __call__(self, instructions: list[str]) -> PromptBatch:
        rows = [self.sequence(s) for s in instructions]
        length = max(len(r[0]) for r in rows)
        b = len(rows)
        input_ids = torch.full((b, length), self.pad_id, dtype=torch.long)
        attention = torch.zeros((b, length), dtype=torch.bool)
        image = torch.zeros((b, length), dtype=torch.bool)
        query = torch.zeros((b, length), dtype=torch.bool)
        for i, (ids, img, q) in enumerate(rows):
            n = len(ids)
            input_ids[i, :n] = torch.tensor(ids)
            attention[i, :n] = True
            image[i, :n] = torch.tensor(img)
            query[i, :n] = torch.tensor(q)
        return PromptBatch(input_ids, attention, image, query)


# -- the tiny tokenizer --------------------------------------------------------------------------------------

TINY_TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "assets" / "tokenizer_tiny"
TINY_BPE_VOCAB = 700

# What the tiny model will ever read: the prompt and the benchmark's instructions, plus some everyday words.
TINY_CORPUS = [
    SYSTEM_PROMPT,
    user_message("{}", 6),
    "push box to the marker", "Flip the mug", "pour balls in cup into bowl", "Close the opened drawer",
    "Open the closed drawer", "open the laptop", "put can on the saucer",
    "Put sprite cans to the left box, and orange cans to the right box", "Insert cans into the boxes",
    "unload the right cans and then unload the left cans",
    "Insert the left can into the slot and insert the right can into the slot, unload the left cans andd then "
    "unload the right cans",
    "Open the drawer, and Put can on the saucer", "manipulate the object", "finish the task",
    "pick up the cup and place it on the table, then move the bottle next to the plate",
    "wipe the counter with the towel, open the door, turn the knob, cut the bread with a knife",
    "stir the soup in the pot, pour water into the glass, close the box, lift the lid",
]


def build_tiny_tokenizer(out_dir: str | Path = TINY_TOKENIZER_DIR):
    """Train the tiny byte-level BPE on ``TINY_CORPUS`` and save it (tokenizer.json + config) in ``out_dir``.

    Deterministic: the same files every time. The vocabulary ends with ``NUM_RESERVED`` reserved tokens that no
    text produces, so ``query_start_id(vocab_size)`` and the 59 ids below it are free for the action queries.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "</s>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=TINY_BPE_VOCAB, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(TINY_CORPUS * 4, trainer)
    vocab = bpe.get_vocab()
    merges = [tuple(m) for m in bpe.model.get_merges()] if hasattr(bpe.model, "get_merges") else None
    if merges is None:  # older tokenizers: read the merges from the serialised model
        import json
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                  for m in json.loads(bpe.to_str())["model"]["merges"]]
    for k in range(NUM_RESERVED):
        vocab[f"<|reserved_{k:03d}|>"] = len(vocab)
    full = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    full.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    full.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=full, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    return tok


def load_tokenizer(path: str | Path):
    """A tokenizer folder (``tokenizer.json`` + ``tokenizer_config.json``), read without network access."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"no tokenizer in {path}: expected tokenizer.json / tokenizer_config.json")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the tiny model's tokenizer (byte-level BPE trained on "
                                     "the EgoVLA prompt and the benchmark's instructions).")
    parser.add_argument("--out", default=str(TINY_TOKENIZER_DIR), help="output folder (default: the packaged one)")
    args = parser.parse_args(argv)
    tok = build_tiny_tokenizer(args.out)
    print(f"wrote {args.out}: vocabulary {tok.vocab_size}, action queries from id {query_start_id(tok.vocab_size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
