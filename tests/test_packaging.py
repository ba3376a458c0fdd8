"""The ROS packages are real ament_python packages, and everything they declare exists."""

import ast
import importlib
import re
import xml.etree.ElementTree as ET

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


def test_launch_files_start_declared_executables():
    scripts = {pkg: _console_scripts(pkg) for pkg in ROS_PACKAGES}
    files = sorted((REPO / "launch").glob("*.launch.py"))
    assert files and (REPO / "ros2_ws" / "src" / "egovla" / "launch").resolve() == (REPO / "launch").resolve()
    for path in files:
        tree = ast.parse(path.read_text())
        nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Node"]
        assert nodes, path
        for call in nodes:
            kw = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
            assert kw["executable"] in scripts[kw["package"]], (path, kw)
