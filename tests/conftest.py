import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering without a display; before mujoco is imported

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ros_harness import RosProbe, allocate_domain_id, release_domain_id  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def robot():
    from egovla_description import load_robot

    return load_robot()


@pytest.fixture
def ros_domain():
    """A ROS_DOMAIN_ID of this test's own."""
    domain = allocate_domain_id()
    yield domain
    release_domain_id(domain)


@pytest.fixture
def ros_probe(ros_domain):
    probe = RosProbe(ros_domain)
    yield probe
    probe.close()
