"""EgoVLA model configuration: one dataclass, saved as JSON beside the weights, and the named presets.

``egovla-2b`` is the paper's model (facts §1.1, §1.4): SigLIP-so400m at 384 px (27x27 patches, feature layer -2)
-> 2x2 downsampling projector (196 tokens per image) -> Qwen2-1.5B (hidden 1536), action head of 6 post-norm
transformer layers (1 head, feed-forward 2048, dropout 0.1, ELU). ``egovla-tiny`` has the same classes and
wiring at tiny sizes (64-wide, 2 layers, 112 px images -> 16 tokens per image) and the locally built tokenizer; it
trains and runs on a CPU in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..action_space import CHUNK_STEPS, PCANormalizer

CONFIG_FILE = "config.json"
MODEL_TYPE = "egovla"


@dataclass
class EgoVLAConfig:
    """Everything needed to rebuild an EgoVLA model (weights come separately, from safetensors)."""

    name: str
    vision: dict  # transformers.SiglipVisionConfig keyword arguments
    llm: dict  # transformers.Qwen2Config keyword arguments
    query_start_id: int  # the first of the action-query token ids (they count down)
    hand_model: str  # id of the hand model whose PCA space the actions live in
    vision_feature_layer: int = -2
    num_frames: int = 6  # history + current
    chunk_steps: int = CHUNK_STEPS
    head_layers: int = 6
    head_heads: int = 1
    head_feedforward: int = 2048
    head_dropout: float = 0.1
    pca_normalizer: dict = field(default_factory=lambda: PCANormalizer().to_dict())
    tokenizer: str | None = None  # a folder, relative to the checkpoint folder when saved with one
    pretrained: dict | None = None  # hub ids of the backbones ({"vision": ..., "llm": ...}) for from_pretrained
    model_type: str = MODEL_TYPE

    def __post_init__(self):
        self.validate()

    # -- derived sizes ----------------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(self.llm["hidden_size"])

    @property
    def vision_hidden_size(self) -> int:
        return int(self.vision["hidden_size"])

    @property
    def image_size(self) -> int:
        return int(self.vision["image_size"])

    @property
    def patches_per_side(self) -> int:
        return self.image_size // int(self.vision["patch_size"])

    @property
    def tokens_per_frame(self) -> int:
        """Visual tokens per image after the 2x2 downsampling (odd grids are padded by one row and column)."""
        return ((self.patches_per_side + 1) // 2) ** 2

    @property
    def num_queries(self) -> int:
        return 2 * self.chunk_steps

    def validate(self):
        def fail(msg):
            raise ValueError(f"EgoVLA config {self.name!r}: {msg}")

        for key in ("hidden_size", "image_size", "patch_size", "num_hidden_layers", "num_attention_heads"):
            if key not in self.vision:
                fail(f"vision config lacks {key!r}")
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
            if key not in self.llm:
                fail(f"llm config lacks {key!r}")
        if self.model_type != MODEL_TYPE:
            fail(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")
        if self.num_frames < 1:
            fail(f"num_frames must be >= 1, got {self.num_frames}")
        if self.chunk_steps < 1:
            fail(f"chunk_steps must be >= 1, got {self.chunk_steps}")
        if self.hidden_size % self.head_heads:
            fail(f"head_heads {self.head_heads} must divide the hidden size {self.hidden_size}")
        if not 0.0 <= self.head_dropout < 1.0:
            fail(f"head_dropout must be in [0, 1), got {self.head_dropout}")
        if not self.num_queries - 1 <= self.query_start_id < int(self.llm["vocab_size"]):
            fail(f"query_start_id {self.query_start_id} leaves no room for {self.num_queries} ids in a vocabulary "
                 f"of {self.llm['vocab_size']}")
        if not -int(self.vision["num_hidden_layers"]) <= self.vision_feature_layer < 0:
            fail(f"vision_feature_layer must index the tower's layers from the end, got {self.vision_feature_layer}")
        PCANormalizer.from_dict(self.pca_normalizer)

    # -- JSON ---------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "EgoVLAConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown EgoVLA config keys {unknown}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "EgoVLAConfig":
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no EgoVLA config (is {folder} a checkpoint folder?)")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(d, where=str(path))


# -- presets ---------------------------------------------------------------------------------------------------

QWEN2_15B_VOCAB = 151643  # the Qwen2 tokenizer's base vocabulary (the authors' action ids count down from here)


def egovla_2b(hand_model: str) -> EgoVLAConfig:
    """The paper's model: SigLIP-so400m-patch14-384 + Qwen2-1.5B, head 6 layers x 1536."""
    vision = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                  image_size=384, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    llm = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
               num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0,
               rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu")
    return EgoVLAConfig(name="egovla-2b", vision=vision, llm=llm, query_start_id=QWEN2_15B_VOCAB - 268,
                        hand_model=hand_model,
                        pretrained={"vision": "google/siglip-so400m-patch14-384", "llm": "Qwen/Qwen2-1.5B-Instruct"})


def egovla_tiny(hand_model: str, vocab_size: int) -> EgoVLAConfig:
    """Same classes and wiring, tiny sizes; ``vocab_size`` is the tiny tokenizer's."""
    from .prompt import query_start_id

    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  image_size=112, patch_size=14)
    llm = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
               num_key_value_heads=1, vocab_size=vocab_size, max_position_embeddings=1024,
               tie_word_embeddings=True)
    return EgoVLAConfig(name="egovla-tiny", vision=vision, llm=llm, query_start_id=query_start_id(vocab_size),
                        hand_model=hand_model, head_layers=2, head_feedforward=128, head_dropout=0.0)


PRESETS = ("egovla-2b", "egovla-tiny")
