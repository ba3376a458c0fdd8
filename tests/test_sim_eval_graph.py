"""The sim_eval graph end to end: every node a separate process over DDS, started from the graph description as
`egovla-launch` / `make demo` start it."""

import json

import numpy as np
import pytest

from ros_harness import ros_env

from egovla.launcher import run_graph

pytestmark = pytest.mark.ros
SMALL = {"image_width": "128", "image_height": "72"}


def test_the_graph_with_the_scripted_policy_succeeds_where_the_direct_expert_does(ros_domain, tmp_path):
    from egovla_sim.env import BenchmarkEnv
    from egovla_sim.evaluation import run_rollout
    from egovla_sim.experts import make_policy
    from egovla_sim.tasks import get_task, protocol_rollouts

    out = tmp_path / "eval"
    code = run_graph("sim_eval", {"task": "close_drawer", "episodes": "2", "out": str(out), **SMALL},
                     tmp_path / "logs", echo=False, env=ros_env(ros_domain))
    assert code == 0, (tmp_path / "logs" / "evaluator.log").read_text()
    results = json.loads((out / "results.json").read_text())
    records = results["records"]
    assert len(records) == 2 and all(r["policy"] == "scripted" for r in records)
    env = BenchmarkEnv("close_drawer")
    direct = [run_rollout(env, make_policy("scripted", "close_drawer"), r)
              for r in protocol_rollouts(get_task("close_drawer"), "seen")[:2]]
    assert [r["success"] for r in records] == [d["success"] for d in direct] == [True, True]
    for r in records:  # through chunks, IK and retargeting the drawer still closes, cleanly
        assert r["missed_ticks"] == 0 and not r["faults"], r
    assert "| Close-Drawer | 2 | 100.0 | 100.0 |" in (out / "results.md").read_text()


def test_the_graph_runs_an_egovla_checkpoint(ros_domain, tmp_path, tiny_checkpoint):
    """An untrained egovla-tiny drives the robot through the whole graph: every tick answered, nothing refused."""
    out = tmp_path / "eval"
    code = run_graph("sim_eval", {"task": "close_drawer", "episodes": "1", "out": str(out), "policy": "egovla",
                                  "checkpoint": str(tiny_checkpoint), **SMALL},
                     tmp_path / "logs", echo=False,
                     env=ros_env(ros_domain))
    assert code == 0, (tmp_path / "logs" / "evaluator.log").read_text()
    [record] = json.loads((out / "results.json").read_text())["records"]
    assert record["policy"] == "egovla" and record["missed_ticks"] == 0
    assert record["steps"] > 0 and np.isfinite(record["progress"])
    policy_log = (tmp_path / "logs" / "policy.log").read_text()
    assert "error" not in policy_log.lower(), policy_log
    # the checkpoint's image size (frame_size left at 0): the history message holds 6 small frames, not 6 camera ones
    assert "squashed to 112 px" in (tmp_path / "logs" / "camera.log").read_text()


def test_record_teleop_writes_one_bag_per_episode_that_converts(ros_domain, tmp_path):
    """The record_teleop graph with the scripted source: episodes driven through IK and retargeting, recorded."""
    from egovla_training.data import DatasetReader
    from egovla_training.data.convert_bags import convert_bags
    from egovla_training.data.rosbag_episodes import read_episode_bag
    from egovla_training.retarget import FitConfig

    out = tmp_path / "teleop"
    code = run_graph("record_teleop", {"task": "close_drawer", "episodes": "1", "out": str(out)}, tmp_path / "logs",
                     echo=False, env=ros_env(ros_domain))
    assert code == 0, (tmp_path / "logs" / "evaluator.log").read_text()
    [record] = json.loads((out / "results.json").read_text())["records"]
    bags = sorted(p for p in (out / "bags").iterdir() if p.is_dir())
    recorded = [read_episode_bag(b, read_images=False) for b in bags]
    [episode] = [r for r in recorded if any(s["info"].get("placement_index") == str(record["placement_index"])
                                            for s in r.status)]
    assert episode.metadata["source"] == "teleop_scripted" and episode.metadata["success"] == record["success"]
    assert len(episode.joint_stamps_ns) >= record["steps"] and len(episode.command_stamps_ns) > 0
    assert len(episode.action_chunk_stamps_ns) >= record["steps"] - 1
    convert_bags([episode.path], tmp_path / "dataset", hand_model="standin", image_size=(36, 64),
                 fit_config=FitConfig(iterations=100, retry_starts=0))
    assert len(DatasetReader(tmp_path / "dataset")) == len(episode.image_stamps_ns) > 0
