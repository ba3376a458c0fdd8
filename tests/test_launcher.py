"""Graph descriptions and egovla-launch: the same nodes as the launch files, real processes, supervised."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from ros_harness import ros_env

from egovla.graph import GraphError, load_graph
from egovla.launcher import run_graph

TESTS = Path(__file__).resolve().parent


def write_graph(tmp_path, nodes, arguments=None) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"description": "test graph", "arguments": arguments or {}, "nodes": nodes}))
    return path


def exit_node(name, after_s, code=0, ends_graph=False):
    return {"name": name, "executable": "exit_node", "module": "exit_node", "ends_graph": ends_graph,
            "parameters": {"after_s": float(after_s), "exit_code": code}}


def test_arguments_are_typed_substituted_and_checked(tmp_path):
    path = write_graph(tmp_path, [
        {"name": "bridge", "executable": "sim_bridge", "module": "m", "if": "sim == mujoco",
         "parameters": {"task": "${task}", "episodes": "${episodes}", "out": "runs/${task}-${episodes}",
                        "record": "${record}"}},
        {"name": "isaac_only", "executable": "x", "module": "m", "if": "sim != mujoco"},
        {"name": "recorder", "executable": "r", "module": "m", "if": "record"}],
        {"task": {"default": "close_drawer", "description": "task"},
         "episodes": {"default": 0, "description": "n"},
         "sim": {"default": "mujoco", "choices": ["mujoco", "isaac"], "description": "s"},
         "record": {"default": False, "description": "r"}})
    graph = load_graph(path)
    [bridge] = graph.resolve()
    assert bridge.parameters == {"task": "close_drawer", "episodes": 0, "out": "runs/close_drawer-0",
                                 "record": False}
    names = [s.name for s in graph.resolve({"sim": "isaac", "record": "true", "episodes": "3"})]
    assert names == ["isaac_only", "recorder"]
    for given, message in [({"sim": "gazebo"}, "not one of"), ({"episodes": "many"}, "expected int"),
                           ({"tsak": "x"}, "unknown argument")]:
        with pytest.raises(GraphError, match=message):
            graph.resolve(given)


def test_a_process_hosting_several_nodes_gets_one_parameters_section_per_node(tmp_path):
    """``components``: each hosted node keeps its name and its own substituted parameters; the launcher does not
    rename the process's nodes and the launch action gets no name (either would give every node the entry's)."""
    from egovla.graph import params_file_text
    from egovla.launch_support import _node

    path = write_graph(tmp_path, [
        {"name": "control", "executable": "control", "module": "egovla.nodes.control", "if": "policy == scripted",
         "components": {"smoother": {"k_wrist": 5.0, "use_sim_time": True},
                        "arm_ik": {"max_arm_velocity_rad_s": "${speed}"}, "hand_retarget": None}},
        {"name": "control", "executable": "control", "module": "egovla.nodes.control", "if": "policy != scripted",
         "components": {"smoother": {"k_wrist": 0.2}}}],
        {"policy": {"default": "scripted", "description": "p"}, "speed": {"default": 1.0, "description": "cap"}})
    [spec] = load_graph(path).resolve({"speed": "0.5"})
    assert spec.components and spec.name == "control"
    assert spec.parameters == {"smoother": {"k_wrist": 5.0, "use_sim_time": True},
                               "arm_ik": {"max_arm_velocity_rad_s": 0.5}, "hand_retarget": {}}
    assert yaml.safe_load(params_file_text(spec)) == {
        "smoother": {"ros__parameters": {"k_wrist": 5.0, "use_sim_time": True}},
        "arm_ik": {"ros__parameters": {"max_arm_velocity_rad_s": 0.5}}, "hand_retarget": {"ros__parameters": {}}}
    [other] = load_graph(path).resolve({"policy": "egovla"})
    assert other.parameters == {"smoother": {"k_wrist": 0.2}}
    made = []
    _node(lambda **kw: made.append(kw), lambda: "shutdown", spec)
    [action] = made
    assert "name" not in action and action["executable"] == "control"
    [params_file] = action["parameters"]
    assert yaml.safe_load(Path(params_file).read_text()) == yaml.safe_load(params_file_text(spec))
    Path(params_file).unlink()
    _node(lambda **kw: made.append(kw), lambda: "shutdown",
          load_graph(write_graph(tmp_path, [exit_node("worker", 1.0)])).resolve()[0])
    assert made[-1]["name"] == "worker" and made[-1]["parameters"] == [{"after_s": 1.0, "exit_code": 0}]


@pytest.mark.parametrize("nodes,message", [
    ([{"name": "a", "executable": "x"}], "missing \\['module'\\]"),
    ([{"name": "a", "executable": "x", "module": "m", "if": "nope == 1"}], "condition"),
    ([{"name": "a", "executable": "x", "module": "m", "parameters": {"p": "${nope}"}}], "not an argument"),
    ([{"name": "a", "executable": "x", "module": "m"}, {"name": "a", "executable": "y", "module": "m"}],
     "two nodes named"),
    ([{"name": "a", "executable": "x", "module": "m", "components": {"b": {}}, "parameters": {"p": 1}}],
     "'parameters' beside them"),
    ([{"name": "a", "executable": "x", "module": "m", "components": ["b", "c"]}], "must map each hosted node"),
    ([{"name": "a", "executable": "x", "module": "m", "components": {"b": {"p": "${nope}"}}}],
     "node b, parameter p: .* not an argument"),
])
def test_bad_graph_files_name_the_file_and_the_problem(tmp_path, nodes, message):
    with pytest.raises(GraphError, match=message) as err:
        load_graph(write_graph(tmp_path, nodes))
    assert str(tmp_path / "g.yaml") in str(err.value)


def test_the_shipped_graphs_start_declared_executables():
    """Each node of each shipped graph names a console script of its package whose target is the node's module."""
    import re

    graphs = sorted((REPO / "config" / "graphs").glob("*.yaml"))
    launch_files = {p.name.removesuffix(".launch.py") for p in (REPO / "launch").glob("*.launch.py")}
    assert graphs and {g.stem for g in graphs} <= launch_files
    for path in graphs:
        for spec in load_graph(path).resolve():
            setup = (REPO / "ros2_ws" / "src" / spec.package / "setup.py").read_text()
            scripts = dict(re.findall(r'"([\w\-]+) = ([\w\.]+):main"', setup))
            assert scripts.get(spec.executable) == spec.module, (path, spec.name)


def launcher_env(domain):
    env = ros_env(domain)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def test_a_finished_node_ends_the_graph_with_success(tmp_path, ros_domain):
    graph = write_graph(tmp_path, [exit_node("worker", -1), exit_node("evaluator", 1.5, ends_graph=True)])
    code = run_graph(str(graph), {}, tmp_path / "logs", echo=False, env=launcher_env(ros_domain))
    assert code == 0
    assert "exiting" in (tmp_path / "logs" / "evaluator.log").read_text()
    assert "interrupted, shutting down cleanly" in (tmp_path / "logs" / "worker.log").read_text()


def test_a_dying_node_stops_the_graph_with_an_error(tmp_path, ros_domain, capsys):
    graph = write_graph(tmp_path, [exit_node("worker", -1), exit_node("crasher", 1.0, code=3)])
    assert run_graph(str(graph), {}, tmp_path / "logs", echo=False, env=launcher_env(ros_domain)) == 1
    err = capsys.readouterr().err
    assert "node crasher exited with code 3" in err and str(tmp_path / "logs" / "crasher.log") in err


def test_ctrl_c_stops_every_node_cleanly(tmp_path, ros_domain):
    graph = write_graph(tmp_path, [exit_node("a", -1), exit_node("b", -1)])
    launcher = subprocess.Popen([sys.executable, "-m", "egovla.launcher", str(graph), "--log-dir",
                                 str(tmp_path / "logs")], env=launcher_env(ros_domain), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    logs = [tmp_path / "logs" / f"{n}.log" for n in "ab"]
    while not all(p.is_file() and "up;" in p.read_text() for p in logs):
        assert time.monotonic() < deadline and launcher.poll() is None, "nodes did not come up"
        time.sleep(0.1)
    launcher.send_signal(signal.SIGINT)
    out, _ = launcher.communicate(timeout=20)
    assert launcher.returncode == 0, out
    assert all("interrupted, shutting down cleanly" in p.read_text() for p in logs)
    assert "[a] " in out and "[b] " in out  # the terminal shows every node's output, prefixed


def test_the_description_graph_publishes_the_urdf(tmp_path, ros_domain, ros_probe):
    from std_msgs.msg import String

    from egovla.robot_description_publisher import LATCHED

    launcher = subprocess.Popen([sys.executable, "-m", "egovla.launcher", "description", "free_torso:=true",
                                 "--quiet", "--log-dir", str(tmp_path / "logs")], env=launcher_env(ros_domain))
    try:
        msg = ros_probe.wait_for_message(String, "robot_description", timeout_s=20, qos=LATCHED)
        assert 'name="torso_joint" type="revolute"' in msg.data
    finally:
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=20) == 0
