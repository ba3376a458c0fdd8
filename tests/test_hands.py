"""Hand models: the open stand-in's anatomy, the real smplx loading path on MANO-format files, and safety."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from egovla_training.hands import (
    FINGERTIPS,
    STANDIN_ID,
    HandModelMismatchError,
    ManoFilesError,
    build_standin_struct,
    check_model_id,
    convert_mano_pickle,
    load_hand_model,
)
from egovla_training.hands.mano_files import main as convert_main
from egovla_training.hands.mano_files import mano_file

torch.manual_seed(0)
BONES = [(0, 1), (1, 2), (2, 3), (3, 4)] + [(0, a) for a in (5, 9, 13, 17)] + [
    (a, a + 1) for f in (5, 9, 13, 17) for a in (f, f + 1, f + 2)]


@pytest.fixture(scope="module")
def hands():
    return {s: load_hand_model(s, kind="standin", dtype=torch.float64) for s in ("left", "right")}


def test_bone_lengths_do_not_change_with_pose(hands):
    h = hands["right"]
    pca = torch.randn(64, 15, dtype=torch.float64) * 2.0
    orient = torch.randn(64, 3, dtype=torch.float64)
    k = h(pca, orient, torch.randn(64, 3, dtype=torch.float64))
    rest = h(torch.zeros(1, 15, dtype=torch.float64))
    for a, b in BONES:
        lengths = torch.linalg.norm(k[:, a] - k[:, b], dim=-1)
        assert torch.allclose(lengths, torch.linalg.norm(rest[:, a] - rest[:, b], dim=-1).expand(64), atol=1e-12)


def test_anatomy_is_plausible(hands):
    h = hands["right"]
    flat = load_hand_model("right", kind="standin", flat_hand_mean=True, dtype=torch.float64)
    k = flat.canonical_keypoints(torch.zeros(1, 15, dtype=torch.float64))[0]
    length = torch.linalg.norm(k[12]).item()  # wrist to middle fingertip, flat hand
    assert 0.17 < length < 0.20
    assert (k[[8, 12, 16, 20], 0] < -0.14).all()  # right hand: fingers along -x
    assert k[4, 2] > 0.05  # thumb on the +z side
    # The first PCA coefficient closes the fist: fingertips come toward the wrist.
    closed = h.canonical_keypoints(torch.tensor([[4.0] + [0.0] * 14], dtype=torch.float64))[0]
    mean = h.canonical_keypoints(torch.zeros(1, 15, dtype=torch.float64))[0]
    assert (torch.linalg.norm(closed[list(FINGERTIPS[1:])], dim=-1) < torch.linalg.norm(mean[list(FINGERTIPS[1:])], dim=-1) - 0.02).all()


def test_pca_zero_is_the_mean_pose(hands):
    h = hands["right"]
    full = load_hand_model("right", kind="standin", num_pca=45, flat_hand_mean=True, dtype=torch.float64)
    mean = h.mean_pose[None]
    assert torch.allclose(h(torch.zeros(1, 15, dtype=torch.float64)), full(mean), atol=1e-12)
    pca = torch.randn(8, 15, dtype=torch.float64)
    assert torch.allclose(h(pca), full(h.pca_to_pose(pca)), atol=1e-12)


def test_keypoint_path_equals_the_full_smplx_mesh_forward(hands):
    for h in hands.values():
        pca, orient, transl = (torch.randn(6, n, dtype=torch.float64) for n in (15, 3, 3))
        vertices, keypoints = h.mesh(pca, orient, transl)
        assert vertices.shape == (6, 778, 3)
        assert torch.allclose(h(pca, orient, transl), keypoints, atol=1e-7)  # 0.1 micrometre
    comps = h.components
    assert torch.allclose(comps @ comps.T, torch.eye(15, dtype=torch.float64), atol=1e-12)  # orthonormal basis


def test_left_is_the_mirror_image_of_right(hands):
    pca = torch.randn(16, 15, dtype=torch.float64)
    orient = torch.randn(16, 3, dtype=torch.float64)
    transl = torch.randn(16, 3, dtype=torch.float64)
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    right = hands["right"](pca, orient, transl)
    left = hands["left"](pca, orient * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64), transl * mirror)
    assert torch.allclose(left, right * mirror, atol=1e-12)


def test_transl_is_wrist_minus_root_offset(hands):
    for h in hands.values():
        transl = torch.randn(10, 3, dtype=torch.float64)
        k = h(torch.randn(10, 15, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64), transl)
        assert torch.allclose(k[:, 0], transl + h.root_offset, atol=1e-12)


def test_differentiable():
    h = load_hand_model("right", kind="standin")
    pca = torch.zeros(4, 15, requires_grad=True)
    h(pca)[:, FINGERTIPS].sum().backward()
    assert pca.grad.abs().sum() > 0


# -- MANO-format files through the restricted unpickler ------------------------------------------------------


def _fake_chumpy_module():
    ch = types.ModuleType("chumpy.ch")

    class Ch:  # what an official file references: chumpy.ch.Ch, holding its value in .x
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    return ch


def write_mano_style_pickle(path, struct, protocol):
    """A MANO-format pickle as the official files are laid out: chumpy shapedirs, sparse J_regressor."""
    ch = _fake_chumpy_module()
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), ch
    try:
        value = ch.Ch()
        value.__dict__.update(x=struct["shapedirs"], _dirty_vars=set())
        data = dict(struct, shapedirs=value, J_regressor=scipy.sparse.csc_matrix(struct["J_regressor"]),
                    bs_style="lbs", bs_type="lrotmin")
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.mark.parametrize("protocol", [0, 2])
def test_mano_format_files_convert_and_load_through_smplx(tmp_path, protocol, hands):
    src = tmp_path / "models"
    src.mkdir()
    for side in ("left", "right"):
        write_mano_style_pickle(src / f"MANO_{side.upper()}.pkl", build_standin_struct(side), protocol)
    dst = tmp_path / "mano"
    assert convert_main(["--src", str(src), "--dst", str(dst)]) == 0
    with np.load(dst / "MANO_RIGHT.npz", allow_pickle=False) as z:
        assert z["J_regressor"].shape == (16, 778) and z["shapedirs"].shape == (778, 3, 10)
    for side in ("left", "right"):
        mano = load_hand_model(side, kind="mano", mano_dir=str(dst), dtype=torch.float64)
        assert mano.model_id.startswith("mano:") and mano.model_id != STANDIN_ID
        pca = torch.randn(5, 15, dtype=torch.float64)
        assert torch.allclose(mano(pca), hands[side](pca), atol=1e-12)  # same content, same keypoints
        with pytest.raises(HandModelMismatchError, match="made with hand model 'standin-hand-v1'"):
            check_model_id(STANDIN_ID, mano, "retargeting net")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_foreign_code(tmp_path):
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(pickle.dumps({"v_template": _Exploit()}, protocol=2))
    with pytest.raises(ManoFilesError, match="refusing to load posix.system"):
        convert_mano_pickle(bad, tmp_path)


def test_missing_files_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("EGOVLA_MANO_DIR", raising=False)
    with pytest.raises(ManoFilesError, match="EGOVLA_MANO_DIR is not set; download MANO v1.2 from https://mano"):
        mano_file("right")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"")
    with pytest.raises(ManoFilesError, match="found MANO_RIGHT.pkl: convert it with `egovla-mano-convert"):
        mano_file("right", tmp_path)
    with pytest.raises(ManoFilesError, match="not a readable MANO model file"):
        convert_mano_pickle(tmp_path / "MANO_RIGHT.pkl", tmp_path)


def test_malformed_fields_are_reported(tmp_path):
    struct = build_standin_struct("right")
    struct["hands_components"] = struct["hands_components"][:10]
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(struct, protocol=2))
    with pytest.raises(ManoFilesError, match=r"field 'hands_components' has shape \(10, 45\), expected \(45, 45\)"):
        convert_mano_pickle(path, tmp_path)


def test_numpy_keypoints_equal_the_torch_forward(hands):
    for h in hands.values():
        pca = torch.randn(7, 15, dtype=torch.float64) * 2
        assert np.allclose(h.canonical_keypoints_numpy(pca.numpy()), h.canonical_keypoints(pca).numpy(), atol=1e-12)


def test_standin_id_does_not_depend_on_the_last_bits():
    """The stand-in is computed, so its last bits vary with the CPU's vector instructions and the maths library:
    its id must not (artefacts made on one machine load on another), while a real change of the geometry must
    change it. MANO ids hash the file's values exactly."""
    from egovla_training.hands.model import STANDIN_DECIMALS, _fingerprint

    right = build_standin_struct("right")
    reference = _fingerprint(right, STANDIN_DECIMALS)
    assert load_hand_model("right", kind="standin").model_id == f"{STANDIN_ID}:{reference}"
    assert load_hand_model("left", kind="standin").model_id == f"{STANDIN_ID}:{reference}"
    for direction in (np.inf, -np.inf):
        nudged = {k: np.nextafter(v, direction) if k in ("v_template", "hands_components") else v
                  for k, v in right.items()}
        assert _fingerprint(nudged, STANDIN_DECIMALS) == reference  # one ulp on every value
        assert _fingerprint(nudged) != _fingerprint(right)  # the exact hash sees it
    moved = dict(right, v_template=right["v_template"] + 1e-6)
    assert _fingerprint(moved, STANDIN_DECIMALS) != reference
