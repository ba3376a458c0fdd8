"""The EgoVLA model: prompt layout, projector order, action head, loss, checkpoints, import, learning."""

import json
import math

import pytest
import torch
from torch import nn

from egovla_description.geometry import axis_angle_to_matrix, matrix_to_rot6d
from egovla_training import action_space as A
from egovla_training.hands import HandModelMismatchError
from egovla_training.model.checkpoint import (
    CheckpointError,
    authors_name_to_ours,
    import_authors_checkpoint,
    load_egovla,
    save_egovla,
)
from egovla_training.model.config import EgoVLAConfig, egovla_2b, egovla_tiny
from egovla_training.model.egovla import DownsampleProjector, EgoVLA, MemoryLayer
from egovla_training.model.loss import LossConfig, action_loss
from egovla_training.model.prompt import (
    TINY_TOKENIZER_DIR,
    PromptBuilder,
    build_tiny_tokenizer,
    conversation_prefix,
    load_tokenizer,
    query_start_id,
    slot_order,
)

HAND = "standin-test"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TINY_TOKENIZER_DIR)


@pytest.fixture(scope="module")
def cfg(tokenizer):
    return egovla_tiny(HAND, tokenizer.vocab_size)


def builder(tokenizer, cfg):
    return PromptBuilder(tokenizer, cfg.num_frames, cfg.tokens_per_frame, cfg.query_start_id, cfg.num_queries,
                         tokenizer.pad_token_id, tokenizer.eos_token_id)


def make_inputs(model, tokenizer, instructions, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = len(instructions)
    frames = torch.randint(0, 256, (b, 6, 96, 128, 3), dtype=torch.uint8, generator=g)
    proprio = dict(translation=0.1 * torch.randn(b, 2, 3, generator=g), rotation=torch.randn(b, 2, 3, generator=g),
                   fingertips=0.1 * torch.randn(b, 2, 5, 3, generator=g))
    return model.preprocess_frames(frames), builder(tokenizer, model.config)(instructions), proprio


def random_targets(b, t=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    transl = 0.1 * torch.randn(b, t, 2, 3, generator=g)
    rot = matrix_to_rot6d(axis_angle_to_matrix(torch.randn(b, t, 2, 3, generator=g)))
    pca = torch.rand(b, t, 2, 15, generator=g)
    return torch.cat([torch.cat([transl[:, :, i], rot[:, :, i], pca[:, :, i]], -1) for i in range(2)], -1)


# -- prompt ------------------------------------------------------------------------------------------------------

def test_the_prompt_is_the_authors_with_images_and_queries_in_place(tokenizer, cfg):
    ids, image, query = builder(tokenizer, cfg).sequence("Flip the mug")
    assert sum(image) == 6 * cfg.tokens_per_frame == 6 * 16
    assert [i for i, q in zip(ids, query) if q] == [cfg.query_start_id - k for k in range(60)]
    assert query[-61:-1] == [True] * 60 and not query[-1] and ids[-1] == tokenizer.eos_token_id
    text = tokenizer.decode([i for i, m, q in zip(ids, image, query) if not m and not q][:-1])
    assert text == conversation_prefix("Flip the mug", 6).replace("<image>", "")
    assert "history observations:\n\n\n\n\nand current observation:\nWhere should i move hand to: Flip the mug ? A:  " \
        "ASSISTANT: " in text
    # no text token falls in the reserved range the queries use
    assert max(i for i, m, q in zip(ids, image, query) if not m and not q) < query_start_id(tokenizer.vocab_size) - 59


def test_history_slots_go_newest_first_then_the_current_frame():
    assert slot_order(6) == [4, 3, 2, 1, 0, 5]  # frames are chronological: index 5 is t, 4 is t - d


def test_the_shipped_tiny_tokenizer_rebuilds_identically(tmp_path):
    build_tiny_tokenizer(tmp_path)
    shipped = json.loads((TINY_TOKENIZER_DIR / "tokenizer.json").read_text())
    rebuilt = json.loads((tmp_path / "tokenizer.json").read_text())
    assert rebuilt["model"]["vocab"] == shipped["model"]["vocab"]
    assert rebuilt["model"]["merges"] == shipped["model"]["merges"]


# -- components ---------------------------------------------------------------------------------------------------

def test_downsampling_pads_odd_grids_and_keeps_the_authors_order():
    c = 1
    grid = torch.arange(1, 10, dtype=torch.float32).reshape(1, 9, c)  # 3x3 grid, row-major values 1..9
    out = DownsampleProjector.downsample(grid)  # padded to 4x4, 2x2 blocks -> 4 tokens of 4 values
    assert out.shape == (1, 4, 4)
    # authors' flat_square: token (i, j) of the output grid holds rows 2j, 2j+1 and columns 2i, 2i+1
    # of the padded input, as [x[2j, 2i], x[2j, 2i+1], x[2j+1, 2i], x[2j+1, 2i+1]]
    assert out[0].tolist() == [[1, 2, 4, 5], [7, 8, 0, 0], [3, 0, 6, 0], [9, 0, 0, 0]]


def test_a_memory_layer_equals_a_torch_encoder_layer_on_the_concatenation():
    torch.manual_seed(0)
    d, ff = 32, 48
    ref = nn.TransformerEncoderLayer(d, 1, ff, dropout=0.1, activation=nn.functional.elu, batch_first=True).eval()
    ours = MemoryLayer(d, 1, ff, 0.1).eval()
    ours.load_state_dict(ref.state_dict())
    memory, latent = torch.randn(2, 7, d), torch.randn(2, 5, d)
    ignore = torch.zeros(2, 12, dtype=torch.bool)
    ignore[0, 2] = ignore[1, 5] = True
    with torch.no_grad():
        expected = ref(torch.cat([memory, latent], 1), src_key_padding_mask=ignore)[:, -5:]
        got = ours(latent, memory, ignore)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_a_samples_actions(tokenizer, cfg):
    torch.manual_seed(1)
    model = EgoVLA(cfg).eval()
    pix, prompt, proprio = make_inputs(model, tokenizer, ["Flip the mug", "Insert cans into the boxes"])
    with torch.no_grad():
        both = model(pix, prompt, proprio)
        alone = model(pix[:1], builder(tokenizer, cfg)(["Flip the mug"]), {k: v[:1] for k, v in proprio.items()})
    assert both.shape == (2, 30, 48)
    assert prompt.attention_mask[0].sum() < prompt.attention_mask.shape[1]  # the first row is padded
    torch.testing.assert_close(both[:1], alone, atol=1e-5, rtol=1e-4)


def test_actions_depend_on_frames_instruction_and_proprio(tokenizer, cfg):
    torch.manual_seed(2)
    model = EgoVLA(cfg).eval()
    pix, prompt, proprio = make_inputs(model, tokenizer, ["Flip the mug"])
    with torch.no_grad():
        base = model(pix, prompt, proprio)
        current = pix.clone()
        current[:, -1] = 0  # change only the current frame
        changes = [model(current, prompt, proprio),
                   model(pix, builder(tokenizer, cfg)(["open the laptop"]), proprio),
                   model(pix, prompt, {**proprio, "fingertips": proprio["fingertips"] + 0.05})]
        hidden = {**proprio, "mask": torch.tensor([[False, True]])}
        zeroed = {k: v.clone() for k, v in proprio.items()}
        for k in ("translation", "rotation", "fingertips"):
            zeroed[k][:, 0] = 0
        masked = model(pix, prompt, hidden), model(pix, prompt, zeroed)
    for other in changes:
        assert (other - base).abs().max() > 1e-4
    torch.testing.assert_close(masked[0], masked[1])


def test_pca_normalisation_round_trips(tokenizer, cfg):
    model = EgoVLA(cfg)
    steps = random_targets(2)
    torch.testing.assert_close(model.denormalize(model.normalize(steps)), steps, atol=1e-6, rtol=1e-6)
    pca = steps[..., A.indices("left", "pca")]
    torch.testing.assert_close(model.normalize(steps)[..., A.indices("left", "pca")],
                               (pca - torch.tensor(A.AUTHORS_PCA_MIN, dtype=pca.dtype))
                               / torch.tensor(A.AUTHORS_PCA_MAX - A.AUTHORS_PCA_MIN, dtype=pca.dtype))


def test_the_2b_configuration_is_the_papers_model():
    cfg = egovla_2b("mano-x")
    assert (cfg.hidden_size, cfg.tokens_per_frame, cfg.head_layers, cfg.num_queries) == (1536, 196, 6, 60)
    assert cfg.query_start_id == 151643 - 268
    with torch.device("meta"):
        model = EgoVLA(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 1.9e9 < n < 2.4e9, n


def test_bad_configs_are_refused(cfg):
    with pytest.raises(ValueError, match="query_start_id"):
        EgoVLAConfig.from_dict({**cfg.to_dict(), "query_start_id": 10})
    with pytest.raises(ValueError, match="unknown EgoVLA config keys"):
        EgoVLAConfig.from_dict({**cfg.to_dict(), "heads": 3})


# -- loss ---------------------------------------------------------------------------------------------------------

def test_the_loss_matches_hand_computed_values():
    target = torch.zeros(1, 2, 48)
    eye6 = torch.tensor([1.0, 0, 0, 0, 1, 0])
    for side in ("left", "right"):
        target[..., A.indices(side, "rot6d")] = eye6
    pred = target.clone()
    left_t, right_t = A.indices("left", "transl"), A.indices("right", "transl")
    pred[0, 0, left_t] = torch.tensor([0.1, -0.2, 0.2])  # step 0, left: err (0.1, -0.2, 0.2)
    pred[0, 1, right_t] = torch.tensor([0.3, 0.0, 0.0])  # step 1, right
    pred[0, 0, A.indices("left", "pca")[:2]] = torch.tensor([1.0, 2.0])
    pred[0, 0, A.indices("left", "pca")[10]] = 3.0  # beyond 6 dims: ignored in post-training
    # step 1, left: rotation by 90 deg about z: R = [[0,-1,0],[1,0,0],[0,0,1]] -> |R - I| sums to 4
    pred[0, 1, A.indices("left", "rot6d")] = torch.tensor([0.0, 1, 0, -1, 0, 0])
    mask = torch.ones(1, 2, 2, dtype=torch.bool)
    pre = action_loss(pred, target, mask, LossConfig("l2", 15))
    assert pre["translation"].item() == pytest.approx((0.01 + 0.04 + 0.04 + 0.09) / 4)
    assert pre["hand"].item() == pytest.approx((1 + 4 + 9) / 4)
    assert pre["rotation"].item() == pytest.approx(4 / (4 * 9))
    assert pre["loss"].item() == pytest.approx(20 * 0.18 / 4 + 5 * 14 / 4 + 5 * 4 / 36)
    post = action_loss(pred, target, mask, LossConfig("l1", 6))
    assert post["translation"].item() == pytest.approx((0.5 + 0.3) / 4)
    assert post["hand"].item() == pytest.approx(5 / 4)
    mask[0, 0, 0] = False  # the left hand at step 0 is unlabelled: its errors leave the averages
    masked = action_loss(pred, target, mask, LossConfig("l1", 6))
    assert masked["translation"].item() == pytest.approx(0.3 / 3)
    assert masked["hand"].item() == 0.0
    empty = action_loss(pred, target, torch.zeros_like(mask))
    assert empty["loss"].item() == 0.0 and not math.isnan(empty["loss"].item())


# -- checkpoints ----------------------------------------------------------------------------------------------------

def test_save_and_load_give_bit_identical_actions(tokenizer, cfg, tmp_path):
    torch.manual_seed(3)
    model = EgoVLA(cfg).eval()
    pix, prompt, proprio = make_inputs(model, tokenizer, ["push box to the marker"])
    with torch.no_grad():
        before = model(pix, prompt, proprio)
    save_egovla(model, tmp_path / "ckpt", tokenizer)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors", "tokenizer"]
    loaded, tok = load_egovla(tmp_path / "ckpt", hand_model=HAND)
    assert tok.vocab_size == tokenizer.vocab_size
    with torch.no_grad():
        after = loaded(pix, builder(tok, loaded.config)(["push box to the marker"]), proprio)
    assert torch.equal(before, after)
    with pytest.raises(HandModelMismatchError):
        load_egovla(tmp_path / "ckpt", hand_model="mano-something-else")


def test_broken_checkpoints_are_reported_with_their_path(tokenizer, cfg, tmp_path):
    model = EgoVLA(cfg)
    folder = save_egovla(model, tmp_path / "ckpt")
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_egovla(folder)
    (folder / "config.json").write_text("{ nope")
    with pytest.raises(ValueError, match="config.json"):
        load_egovla(folder)
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_egovla(tmp_path / "missing")


# -- the authors' layout ------------------------------------------------------------------------------------------------

class AuthorsHead(nn.Module):
    """The authors' split-action decoder as their code builds and runs it (a reference for the import test)."""

    def __init__(self, d, ff, layers):
        super().__init__()
        mlp = lambda n_in, n_out: nn.Sequential(nn.Linear(n_in, d), nn.ELU(), nn.Linear(d, n_out))  # noqa: E731
        self.proprio_projection = mlp(16, d)  # present in their checkpoints, unused with sep_proprio
        self.proprio_projection_3d, self.proprio_projection_rot = mlp(3, d), mlp(3, d)
        self.proprio_projection_hand = mlp(15, d)
        self.first_norm = nn.LayerNorm(d)
        self.output_projection_left, self.output_projection_right = mlp(d, 24), mlp(d, 24)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(d, 1, ff, batch_first=True,
                                                               activation=nn.functional.elu)
                                    for _ in range(layers))

    def forward(self, queries, proprio, memory, memory_keep):
        latent = torch.cat([self.proprio_projection_3d(proprio["translation"]),
                            self.proprio_projection_rot(proprio["rotation"]),
                            self.proprio_projection_hand(proprio["fingertips"].flatten(-2)), queries], 1)
        mask = torch.cat([~memory_keep, torch.zeros(latent.shape[:2], dtype=torch.bool)], 1)
        latent, memory = self.first_norm(latent), self.first_norm(memory)
        for layer in self.layers:
            latent = layer(torch.cat([memory, latent], 1), src_key_padding_mask=mask)[:, -latent.shape[1]:]
        latent = latent[:, 6:]
        return torch.cat([self.output_projection_left(latent[:, ::2]),
                          self.output_projection_right(latent[:, 1::2])], -1)


def write_authors_checkpoint(folder, cfg, tokenizer, seed=0):
    """A tiny checkpoint in the authors' layout, built from their module structure with random weights."""
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    llm = Qwen2ForCausalLM(Qwen2Config(**cfg.llm))
    vision = SiglipVisionModel(SiglipVisionConfig(**cfg.vision))
    d, dv = cfg.hidden_size, cfg.vision_hidden_size
    projector = nn.Sequential(nn.Identity(), nn.LayerNorm(4 * dv), nn.Linear(4 * dv, d), nn.GELU(), nn.Linear(d, d))
    for p in projector[1].parameters():  # LayerNorm starts at (1, 0): give it values that a mix-up would show
        nn.init.normal_(p)
    head = AuthorsHead(d, cfg.head_feedforward, cfg.head_layers)
    llm.save_pretrained(folder / "llm")
    tokenizer.save_pretrained(str(folder / "llm"))
    vision.save_pretrained(folder / "vision_tower")
    (folder / "mm_projector").mkdir()
    save_file({f"layers.{k}": v.contiguous() for k, v in projector.state_dict().items()},
              str(folder / "mm_projector" / "model.safetensors"))
    (folder / "traj_decoder").mkdir()
    save_file({f"decoder.{k}": v.contiguous() for k, v in head.state_dict().items()},
              str(folder / "traj_decoder" / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"input_placeholder_start_token_idx": cfg.query_start_id,
                                                    "mm_projector_type": "mlp_downsample"}))
    return llm.eval(), vision.eval(), projector.eval(), head.eval()


def test_an_authors_checkpoint_imports_with_every_tensor_and_equal_outputs(tokenizer, cfg, tmp_path):
    folder = tmp_path / "authors"
    llm, vision, projector, head = write_authors_checkpoint(folder, cfg, tokenizer)
    model, tok = import_authors_checkpoint(folder, hand_model=HAND)
    assert tok is not None and model.config.query_start_id == cfg.query_start_id
    pix, prompt, proprio = make_inputs(model, tokenizer, ["Flip the mug", "open the laptop"])
    with torch.no_grad():
        ours = model(pix, prompt, proprio)
        # the authors' forward, written out: their vision layer -2, their projector, their decoder
        b = pix.shape[0]
        slots = pix[:, slot_order(6)].flatten(0, 1)
        patches = vision(pixel_values=slots, output_hidden_states=True).hidden_states[-2]
        visual = projector(DownsampleProjector.downsample(patches))
        embeds = llm.get_input_embeddings()(prompt.input_ids)
        embeds[prompt.image_mask] = visual.reshape(-1, visual.shape[-1])
        hidden = llm.model(inputs_embeds=embeds, attention_mask=prompt.attention_mask.long()).last_hidden_state
        queries = hidden[prompt.query_mask].reshape(b, 60, -1)
        theirs = head(queries, proprio, hidden, prompt.attention_mask & ~prompt.query_mask)
    torch.testing.assert_close(A.to_authors_layout(ours), theirs, atol=1e-5, rtol=1e-4)


def test_an_incomplete_or_pickled_authors_checkpoint_is_refused(tokenizer, cfg, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "authors"
    write_authors_checkpoint(folder, cfg, tokenizer)
    path = folder / "traj_decoder" / "model.safetensors"
    tensors = load_file(str(path))
    save_file({k: v for k, v in tensors.items() if k != "decoder.layers.1.linear2.weight"}, str(path))
    with pytest.raises(CheckpointError, match="missing"):
        import_authors_checkpoint(folder, hand_model=HAND)
    path.unlink()
    (folder / "traj_decoder" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="pickled"):
        import_authors_checkpoint(folder, hand_model=HAND)
    with pytest.raises(CheckpointError, match="no rule"):
        authors_name_to_ours("something_else.weight")
    # SigLIP saved by transformers 4 (the authors') nests its weights under vision_model.
    assert authors_name_to_ours("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight") == \
        "vision_tower.encoder.layers.0.mlp.fc1.weight"
    assert authors_name_to_ours("traj_decoder.decoder.proprio_projection.0.weight") is None


# -- learning ---------------------------------------------------------------------------------------------------------

def test_the_tiny_model_overfits_a_fixed_batch(tokenizer, cfg):
    torch.manual_seed(4)
    model = EgoVLA(cfg).train()
    pix, prompt, proprio = make_inputs(model, tokenizer, ["Flip the mug", "open the laptop"], seed=4)
    target, mask = random_targets(2, seed=4), torch.ones(2, 30, 2, dtype=torch.bool)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 300)
    losses = []
    for _ in range(300):
        loss = action_loss(model(pix, prompt, proprio), target, mask)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100, (losses[0], losses[-1])


def test_every_trainable_weight_gets_a_gradient(tokenizer, cfg):
    """Distributed data parallel needs it; the vision tower's unused last layer, norm and head are frozen."""
    model = EgoVLA(cfg)
    pix, prompt, proprio = make_inputs(model, tokenizer, ["Flip the mug"])
    action_loss(model(pix, prompt, proprio), random_targets(1), torch.ones(1, 30, 2, dtype=torch.bool))["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    frozen = {n.split(".")[1] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder", "post_layernorm", "head"}  # encoder: its last layer only (feature layer -2)


# -- the policy API ---------------------------------------------------------------------------------------------------

def test_the_policy_spaces_its_history_and_matches_a_direct_forward(tokenizer, cfg, tmp_path):
    import numpy as np

    from egovla_training.policy import EgoVLAPolicy

    torch.manual_seed(5)
    save_egovla(EgoVLA(cfg), tmp_path / "ckpt", tokenizer)
    policy = EgoVLAPolicy.from_checkpoint(tmp_path / "ckpt", hand_model=HAND, history_spacing=3, hand_dims=6)
    policy.set_instruction("Flip the mug")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (72, 128, 3), dtype=np.uint8) for _ in range(20)]
    policy.push_frame(frames[0])
    assert policy.history_indices() == [0] * 6
    for f in frames[1:]:
        policy.push_frame(f)
    assert policy.history_indices() == [4, 7, 10, 13, 16, 19]
    proprio = dict(translation=np.full((2, 3), 0.1), rotation=np.zeros((2, 3)), fingertips=np.zeros((2, 5, 3)))
    chunk = policy.predict(proprio)
    assert chunk.shape == (30, 48) and chunk.dtype == np.float32
    assert np.all(chunk[:, A.indices("left", "pca")[6:]] == 0) and np.all(chunk[:, A.indices("right", "pca")[6:]] == 0)
    model = policy.model
    shown = torch.from_numpy(np.stack([frames[i] for i in [4, 7, 10, 13, 16, 19]]))[None]
    with torch.no_grad():
        direct = model.denormalize(model(model.preprocess_frames(shown), builder(tokenizer, cfg)(["Flip the mug"]),
                                         {k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in proprio.items()}))
    np.testing.assert_allclose(chunk[:, A.indices("left", "pca")[:6]], direct[0, :, A.indices("left", "pca")[:6]],
                               atol=1e-6)
    np.testing.assert_allclose(chunk[:, :9], direct[0, :, :9], atol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        policy.predict({**proprio, "translation": np.full((2, 3), np.nan)})
    with pytest.raises(ValueError, match="fingertips"):
        policy.predict({**proprio, "fingertips": np.zeros((2, 4, 3))})
    with pytest.raises(ValueError, match="uint8"):
        policy.push_frame(np.zeros((10, 10, 3), np.float32))
    # The same frames given as the camera node publishes them (selected, chronological) give the same chunk.
    given = policy.predict(proprio, frames=np.stack([frames[i] for i in [4, 7, 10, 13, 16, 19]]))
    np.testing.assert_allclose(given, chunk, atol=1e-6)
    with pytest.raises(ValueError, match=r"frames must be uint8 \(6, H, W, 3\)"):
        policy.predict(proprio, frames=np.stack(frames[:5]))
    # A re-sent tick (same stamp) replaces its frame instead of shifting the history.
    policy.reset()
    assert [policy.push_frame(f, stamp_ns=i) for i, f in enumerate(frames[:3])] == ["added"] * 3
    assert policy.push_frame(frames[5], stamp_ns=2) == "replaced" and policy.history_indices()[-1] == 2
    assert policy.push_frame(frames[6], stamp_ns=1) == "refused"
    policy.reset()
    with pytest.raises(RuntimeError, match="push_frame"):
        policy.predict(proprio)
