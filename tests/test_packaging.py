"""The ROS packages are real ament_python packages, and everything they declare exists."""

import ast
import importlib
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO

ROS_PACKAGES = ["egovla", "egovla_description", "egovla_sim"]


def _console_scripts(pkg: str) -> dict[str, str]:
    text = (REPO / "ros2_ws" / "src" / pkg / "setup.py").read_text()
    return dict(re.findall(r'"([\w\-]+) = ([\w\.]+:main)"', text))


@pytest.mark.parametrize("pkg", ROS_PACKAGES)
def test_ament_python_package(pkg):
    root = REPO / "ros2_ws" / "src" / pkg
    xml = ET.parse(root / "package.xml").getroot()
    assert xml.get("format") == "3" and xml.findtext("name") == pkg
    assert xml.find("export/build_type").text == "ament_python"
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", xml.find("maintainer").get("email"))  # colcon rejects bad e-mails
    assert (root / "resource" / pkg).exists()
    assert f"script_dir=$base/lib/{pkg}" in (root / "setup.cfg").read_text()
    for name, target in _console_scripts(pkg).items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name


def test_ros_packages_depend_only_downward():
    """egovla_description imports nothing of ours; only egovla imports rclpy."""
    for pkg in ("egovla_description", "egovla_sim"):
        for path in (REPO / "ros2_ws" / "src" / pkg / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert "rclpy" not in names and "egovla" not in names, path
            if pkg == "egovla_description":
                assert not names & {"egovla_sim", "egovla_training"}, path


def test_launch_files_read_their_graph_description():
    """Every launch file builds its nodes from config/graphs/<name>.yaml (the graph egovla-launch starts too)."""
    files = sorted((REPO / "launch").glob("*.launch.py"))
    assert files and (REPO / "ros2_ws" / "src" / "egovla" / "launch").resolve() == (REPO / "launch").resolve()
    assert (REPO / "ros2_ws" / "src" / "egovla" / "config").resolve() == (REPO / "config").resolve()
    for path in files:
        calls = [n for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "graph_launch_description"]
        assert [c.args[0].value for c in calls] == [path.name.removesuffix(".launch.py")], path
        assert (REPO / "config" / "graphs" / f"{calls[0].args[0].value}.yaml").is_file(), path


def test_colcon_builds_the_three_packages(tmp_path):
    """colcon (from PyPI) sees ament_python packages and installs them so that, once the install tree is sourced,
    ament_index finds egovla's launch files, graph descriptions and executables."""
    import shutil
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    colcon = shutil.which("colcon", path=str(bin_dir)) or shutil.which("colcon")
    assert colcon, "colcon is installed by make setup (requirements.txt)"
    src = REPO / "ros2_ws" / "src"
    listed = subprocess.run([colcon, "list", "--base-paths", str(src)], capture_output=True, text=True, check=True)
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == sorted(ROS_PACKAGES)
    assert all(line.endswith("(ros.ament_python)") for line in listed.stdout.splitlines()), listed.stdout
    subprocess.run([colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(src), "--build-base",
                    str(tmp_path / "build"), "--install-base", str(tmp_path / "install")], check=True,
                   capture_output=True, cwd=tmp_path, timeout=300)
    probe = ("from pathlib import Path; from ament_index_python.packages import get_package_share_directory as d, "
             "get_package_prefix as p; from egovla.graph import config_dir; share = Path(d('egovla')); "
             "print(sorted(x.name for x in (share / 'launch').glob('*.launch.py'))); "
             "print(sorted(x.name for x in (share / 'config' / 'graphs').glob('*.yaml'))); "
             "print(config_dir() == share / 'config'); "
             "print(sorted(x.name for x in (Path(p('egovla')) / 'lib' / 'egovla').iterdir()))")
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    out = subprocess.run(["bash", "-c", f"source {tmp_path / 'install' / 'setup.bash'} && python -c \"{probe}\""],
                         capture_output=True, text=True, env=env, check=True).stdout.splitlines()
    launch_files = sorted(x.name for x in (REPO / "launch").glob("*.launch.py"))
    graphs = sorted(x.name for x in (REPO / "config" / "graphs").glob("*.yaml"))
    assert out[0] == str(launch_files) and out[1] == str(graphs) and out[2] == "True", out
    assert set(_console_scripts("egovla")) <= set(eval(out[3])), out
