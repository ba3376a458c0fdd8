# EgoVLA ROS 2 stack. `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-complete
PACKAGES := ros2_ws/src/egovla_description ros2_ws/src/egovla ros2_ws/src/egovla_sim training
PACKAGE_FILES := $(wildcard ros2_ws/src/*/setup.py ros2_ws/src/*/setup.cfg) training/pyproject.toml
# Where torch 2.13.0 comes from. Empty = pip's configured indexes; on a generic machine set
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu to get the CPU build instead of a multi-GB CUDA build.
TORCH_INDEX_URL ?=
export MUJOCO_GL ?= egl
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo kinematics-demo test bench lock clean help

help:
	@echo "make demo   - set up, then evaluate close_drawer through the whole ROS graph (writes outputs/demo)"
	@echo "make kinematics-demo - the IK figure-eight demo"
	@echo "make test   - set up, then run the test suite"
	@echo "make bench  - set up, then print every benchmark as one JSON object"
	@echo "make setup  - create $(VENV) with pinned dependencies and the project's packages (idempotent)"
	@echo "make lock   - rewrite constraints.txt from the current environment"

setup: $(STAMP)

# torch first, from its CPU build (a plain `torch` requirement would pull a multi-GB CUDA build).
$(STAMP): requirements.txt constraints.txt $(PACKAGE_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PIP) install --disable-pip-version-check -q -r requirements.txt -c constraints.txt
	$(PIP) install --disable-pip-version-check -q --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	@touch $(STAMP)
	@echo "environment ready: $(VENV)"

# The main job: a short-horizon task's protocol episodes through the whole ROS 2 graph on the MuJoCo twin.
demo: setup
	$(PY) -m egovla.demo --task close_drawer --split seen --episodes 3 --out outputs/demo

# The robot's IK tracking a figure eight, seen from the head camera (the earlier demo).
kinematics-demo: setup
	$(PY) -m egovla_sim.kinematics_demo --config config/kinematics_demo.yaml

test: setup
	$(PY) -m pytest tests

bench: setup
	@$(PY) benchmarks/run_all.py

lock: setup
	$(PIP) freeze --exclude-editable | grep -v -E '^(egovla|-e )' > constraints.txt

clean:
	rm -rf $(VENV) outputs .pytest_cache
