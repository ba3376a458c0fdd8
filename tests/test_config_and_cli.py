"""Typed YAML configuration, the shipped config files, and the command-line tools' behaviour on bad input."""

import subprocess
import sys
from dataclasses import dataclass, field

import pinocchio as pin
import pytest

from egovla_description.config import ConfigError, config_to_dict, load_config
from egovla_description.ik import IKConfig

from conftest import REPO


@dataclass
class Inner:
    rate_hz: float = 30.0
    names: list[str] = field(default_factory=lambda: ["a"])

    def validate(self):
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")


@dataclass
class Outer:
    name: str = "x"
    steps: int = 3
    inner: Inner = field(default_factory=Inner)


def test_yaml_plus_dotted_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\ninner:\n  rate_hz: 15\n")
    cfg = load_config(Outer, path, ["steps=7", "inner.names=[b, c]"])
    assert cfg == Outer(name="demo", steps=7, inner=Inner(rate_hz=15.0, names=["b", "c"]))
    assert config_to_dict(cfg) == {"name": "demo", "steps": 7, "inner": {"rate_hz": 15.0, "names": ["b", "c"]}}


@pytest.mark.parametrize("text, overrides, message", [
    ("nmae: x\n", [], "unknown key(s) ['nmae']; valid keys: ['inner', 'name', 'steps']"),
    ("steps: three\n", [], "steps: expected an integer, got 'three'"),
    ("inner: {rate_hz: -1}\n", [], "rate_hz must be positive, got -1.0"),
    ("", ["inner.rate_hz=fast"], "inner.rate_hz: expected a number, got 'fast'"),
    ("", ["steps"], "must look like key.sub=value"),
    ("- a\n- b\n", [], "top level must be a mapping"),
])
def test_bad_configs_name_the_file_and_key(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path, overrides)
    assert message in str(err.value)
    if "look like" not in message:  # an override's syntax error concerns the command line, not the file
        assert str(path) in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")


def test_shipped_ik_config_states_the_defaults():
    assert load_config(IKConfig, REPO / "config" / "ik.yaml") == IKConfig()


def test_shipped_demo_config_loads():
    from egovla_sim.kinematics_demo import KinematicsDemoConfig

    cfg = load_config(KinematicsDemoConfig, REPO / "config" / "kinematics_demo.yaml")
    assert cfg.control_hz == 30.0 and cfg.ik_mode == "converge"


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120)


def test_description_cli_exports_loadable_files(tmp_path):
    r = _run("egovla_description.cli", "export", "--out", str(tmp_path), "--hand-mimic", "independent")
    assert r.returncode == 0, r.stderr
    model = pin.buildModelFromUrdf(str(tmp_path / "h1_inspire.urdf"))
    assert model.nq == 50
    import mujoco

    assert mujoco.MjModel.from_xml_path(str(tmp_path / "h1_inspire.xml")).nu == 50
    r = _run("egovla_description.cli", "info")
    assert r.returncode == 0 and "L_thumb_distal_joint" in r.stdout and "2.4 x L_thumb_proximal_pitch_joint" in r.stdout


@pytest.mark.parametrize("args, message", [
    (("egovla_description.cli", "--robot", "nope", "info"), "egovla-description: error: unknown robot 'nope'"),
    (("egovla_description.cli", "export", "--out", "/tmp/x", "--fixed", "elbow"),
     "egovla-description: error: fixed_joints names joints that are not movable joints"),
    (("egovla_sim.kinematics_demo", "duration_s=-1"), "egovla-kinematics-demo: error: "),
    (("egovla_sim.kinematics_demo", "ik.posture_gain=2"), "posture_gain must be in [0, 1)"),
])
def test_cli_errors_are_one_clear_line(args, message):
    r = _run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_every_cli_has_help():
    for module in ("egovla_description.cli", "egovla_sim.kinematics_demo", "egovla_training.train",
                   "egovla_training.model.prompt"):
        r = _run(module, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout
