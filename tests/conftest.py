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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    import torch

    from egovla_training.hands import load_hand_model
    from egovla_training.model.checkpoint import save_egovla
    from egovla_training.model.config import egovla_tiny
    from egovla_training.model.egovla import EgoVLA
    from egovla_training.model.prompt import TINY_TOKENIZER_DIR, load_tokenizer

    tok = load_tokenizer(TINY_TOKENIZER_DIR)
    torch.manual_seed(0)
    model = EgoVLA(egovla_tiny(load_hand_model("left", kind="auto").model_id, tok.vocab_size)).eval()
    return save_egovla(model, tmp_path_factory.mktemp("ckpt") / "tiny", tok)
