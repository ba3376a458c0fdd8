"""egovla-train: a recipe trains the tiny model on a dataset in our format, and resuming is exact."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from egovla_description.geometry import axis_angle_to_matrix, matrix_to_rot6d
from egovla_training.data import DatasetWriter, EpisodeLabels
from egovla_training.train import TrainConfig, learning_rate, main, train


def write_dataset(root, episodes=2, frames=12):
    rng = np.random.default_rng(0)
    with DatasetWriter(root, hand_model="standin-test", fps=30.0, history_spacing=2, image_codec="png") as writer:
        for e in range(episodes):
            rot = matrix_to_rot6d(axis_angle_to_matrix(rng.normal(size=(frames, 30, 2, 3))))
            actions = np.concatenate([np.concatenate([0.1 * rng.normal(size=(frames, 30, 3)), rot[:, :, h],
                                                      rng.uniform(-1, 2, size=(frames, 30, 15))], -1)
                                      for h in range(2)], -1)
            labels = EpisodeLabels(
                frame_index=np.arange(frames), instruction="Flip the mug",
                proprio_translation=0.1 * rng.normal(size=(frames, 2, 3)),
                proprio_rotation=rng.normal(size=(frames, 2, 3)),
                proprio_fingertips=0.1 * rng.normal(size=(frames, 2, 5, 3)),
                proprio_mask=np.ones((frames, 2), bool), actions=actions,
                action_mask=np.ones((frames, 30, 2), bool))
            writer.add_episode(f"ep{e}", rng.integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8), labels,
                               source="synthetic", embodiment="h1_inspire")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "ds")


def recipe(dataset, out, **kw):
    base = dict(data=[str(dataset)], out=str(out), batch_size=4, lr=1e-3, num_workers=0, log_every_steps=1,
                translation_loss="l1", hand_dims=6, schedule="step")
    return TrainConfig(**{**base, **kw})


def test_resuming_continues_exactly(dataset, tmp_path):
    full = train(recipe(dataset, tmp_path / "full", max_steps=5, save_every_steps=2), progress=False)
    train(recipe(dataset, tmp_path / "resumed", resume=str(tmp_path / "full" / "checkpoint-2"), max_steps=5),
          progress=False)
    a = load_file(str(tmp_path / "full" / "checkpoint-5" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint-5" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    resumed = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in resumed] == [3, 4, 5] and resumed[-1]["loss"] == full["loss"]


def test_training_lowers_the_loss(dataset, tmp_path):
    train(recipe(dataset, tmp_path, epochs=4), progress=False)  # 24 samples, 6 steps per epoch
    metrics = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 24 and metrics[-1]["epoch"] == 3
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-18",
                                                                      "checkpoint-24", "checkpoint-6"]
    assert (tmp_path / "final" / "model.safetensors").is_file()
    # random frames and labels: what can be learnt is the labels' distribution (the loss halves, then levels off)
    first, last = np.mean([m["loss"] for m in metrics[:6]]), np.mean([m["loss"] for m in metrics[-6:]])
    assert last < first / 1.8, (first, last)
    # the same scalars as TensorBoard event files, read back with TensorBoard's own reader
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "tensorboard"))
    board.Reload()
    for key in ("loss", "lr", "translation"):
        events = board.Scalars(f"train/{key}")
        assert [e.step for e in events] == [m["step"] for m in metrics]
        np.testing.assert_allclose([e.value for e in events], [m[key] for m in metrics], rtol=1e-6)


def test_every_rank_knows_how_many_batches_each_rank_gets(tmp_path):
    """Episodes are the grain of sharding, so ranks get different sample counts; the trainer stops all ranks at the
    smallest batch count, which must match what their DataLoaders really yield."""
    from torch.utils.data import DataLoader

    from egovla_training.data import SampleStream, collate_samples

    root = write_dataset(tmp_path / "uneven", episodes=5, frames=5)
    for workers in (0, 2):
        streams = [SampleStream([root], seed=1, rank=r, world_size=2) for r in range(2)]
        predicted = streams[0].batches_per_rank(epoch=1, batch_size=2, num_workers=workers)
        for s in streams:
            s.set_epoch(1)
        actual = [len(list(DataLoader(s, batch_size=2, collate_fn=collate_samples, num_workers=workers)))
                  for s in streams]
        assert predicted == actual and predicted[0] != predicted[1], (workers, predicted, actual)


def test_the_paper_schedules():
    pre = TrainConfig(data=["x"], out="o", lr=1e-4, schedule="cosine", warmup_ratio=0.03)
    assert learning_rate(pre, 0, 100, 1000) == pytest.approx(1e-4 / 30)
    assert learning_rate(pre, 30, 100, 1000) == pytest.approx(1e-4)
    assert learning_rate(pre, 999, 100, 1000) < 1e-7
    post = TrainConfig(data=["x"], out="o", lr=2e-5, schedule="step", lr_drop_epoch=100, lr_after_drop=2e-6)
    assert learning_rate(post, 99 * 10 + 9, 10, 1150) == 2e-5 and learning_rate(post, 1000, 10, 1150) == 2e-6


def test_bad_recipes_give_one_clear_line(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("data: [x]\nout: o\nlearning_rate: 1\n")
    assert main(["--config", str(path)]) == 2
    assert "unknown key(s) ['learning_rate']" in capsys.readouterr().err
    path.write_text("data: [x]\nout: o\n")
    assert main(["--config", str(path), "schedule=linear"]) == 2
    assert "schedule must be" in capsys.readouterr().err


def test_the_shipped_recipes_parse():
    from pathlib import Path

    for name in ("pretrain", "posttrain", "nopretrain", "posttrain_50pct"):
        cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[1] / "training" / "configs" / f"{name}.yaml")
        cfg.validate()
        assert cfg.epochs == (20 if name == "pretrain" else 115)
        assert cfg.data_fractions == ([0.5] if name == "posttrain_50pct" else [])


def test_a_data_fraction_keeps_the_same_half_of_the_episodes(tmp_path):
    from egovla_training.data import SampleStream

    root = write_dataset(tmp_path / "ds", episodes=6, frames=3)
    every = SampleStream([root], seed=3, shuffle=False)
    half = [SampleStream([root], seed=3, rank=r, world_size=2, episode_fractions=[0.5]) for r in range(2)]
    kept = {ref.episode for _, ref in half[0].units}
    assert len(kept) == 3 and kept == {ref.episode for _, ref in half[1].units}
    assert kept < {ref.episode for _, ref in every.units} and half[0].num_samples == 9
    for epoch in range(3):  # every epoch: the ranks split the kept episodes between them, nothing else
        for s in half:
            s.set_epoch(epoch)
        seen = [sample.episode for s in half for sample in s]
        assert sorted(seen) == sorted(e for e in kept for _ in range(3))
    other_seed = SampleStream([root], seed=4, episode_fractions=[0.5])
    assert len(other_seed.units) == 3
    assert len(SampleStream([root], episode_fractions=[0.01]).units) == 1  # never empty
    with pytest.raises(ValueError, match="episode_fractions"):
        SampleStream([root], episode_fractions=[0.5, 0.5])
    with pytest.raises(ValueError, match="data_fractions"):
        recipe(root, tmp_path / "o", data_fractions=[1.5]).validate()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fsdp_shards_take_the_same_steps_and_checkpoint_whole(dataset, tmp_path):
    """FSDP2 over 2 CPU processes (gloo; parameters, gradients and optimizer state sharded, wrapped per layer as the
    shipped config does) takes the same two AdamW steps as one unsharded process, and the trainer's checkpoint
    gathers the shards into whole weights and optimizer state that resume in one process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(here / "ddp_step.py"), str(tmp_path / "one.json")], check=True, env=env,
                   timeout=300)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(here / "fsdp_step.py"), str(tmp_path / "two.json")], env=env, timeout=300,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (two["processes"], two["parameter_type"], two["wrapped_layers"]) == (2, "DTensor", 4)
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    assert abs(two["checksum"] - one["checksum"]) < 1e-5 * abs(one["checksum"])
    # the gathered checkpoint: every parameter whole, AdamW moments of the trained ones, resumable in one process
    from egovla_training.model.checkpoint import load_egovla

    model, _ = load_egovla(two["checkpoint"])
    state = load_file(str(Path(two["checkpoint"]) / "optimizer.safetensors"))
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert all(state[f"state.{n}.exp_avg"].shape == p.shape for n, p in trained)
    assert sum(float(state[f"state.{n}.exp_avg_sq"].sum()) for n, _ in trained) > 0
    resumed = train(recipe(dataset, tmp_path / "resumed", model="unused", max_steps=3, resume=two["checkpoint"]),
                    progress=False)
    assert resumed["step"] == 3 and np.isfinite(resumed["loss"])


def test_the_shipped_accelerate_configs_parse():
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    folder = Path(__file__).resolve().parents[1] / "training" / "configs" / "accelerate"
    fsdp = load_config_from_file(str(folder / "fsdp_2b.yaml"))
    assert fsdp.distributed_type.value == "FSDP" and fsdp.fsdp_config["fsdp_version"] == 2
    assert set(fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")) == {"Qwen2DecoderLayer",
                                                                                      "SiglipEncoderLayer"}
    assert load_config_from_file(str(folder / "ddp.yaml")).distributed_type.value == "MULTI_GPU"


def test_two_processes_take_the_same_steps_as_one(tmp_path):
    """Data parallel over gloo (`accelerate launch`, 2 CPU processes, batch 2 each) against one process with the
    global batch of 4: equal losses and weights after two AdamW steps."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent / "ddp_step.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "one.json")], check=True, env=env, timeout=300)
    # accelerate 1.15 starts several CPU processes through its torchrun launcher when the config says MULTI_GPU with
    # use_cpu (its MULTI_CPU type wants MPI, and `--cpu --num_processes 2` starts one process).
    config = tmp_path / "accelerate.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nuse_cpu: true\n"
                      f"num_processes: 2\nnum_machines: 1\nmachine_rank: 0\nmixed_precision: 'no'\n"
                      f"main_process_port: {_free_port()}\n")
    run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                          str(script), str(tmp_path / "two.json")], env=env, timeout=300, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (one["processes"], two["processes"]) == (1, 2)
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    assert abs(two["checksum"] - one["checksum"]) < 1e-5 * abs(one["checksum"])
