"""The hand model: MANO (through smplx) when its licensed files are available, the open stand-in otherwise.

Both are MANO-format models run by smplx's ``MANO`` class with EgoVLA's settings: 15 PCA components,
``flat_hand_mean=False`` (the PCA coefficients move the hand away from the mean pose), zero shape. The output is
21 keypoints in MANO/OpenPose order (0 wrist; thumb 1-4; index 5-8; middle 9-12; ring 13-16; pinky 17-20): the
16 model joints plus the fingertip vertices 744, 320, 443, 554, 671.

Every artefact made with a hand model records ``model.model_id``; ``check_model_id`` refuses to mix them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from .mano_files import MANO_DIR_ENV, ManoFilesError, load_mano_npz, mano_file
from .standin import FINGERTIP_VERTEX_IDS, STANDIN_ID, build_standin_struct

# Our 21-keypoint order from [16 joints, 5 tip vertices (thumb, index, middle, ring, pinky)].
OPENPOSE_FROM_MANO = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
WRIST = 0
FINGERTIPS = (4, 8, 12, 16, 20)  # thumb, index, middle, ring, pinky in the 21-keypoint order
NUM_PCA = 15


class HandModelMismatchError(ValueError):
    """An artefact made with one hand model was used with another."""


@dataclass(frozen=True)
class HandModelInfo:
    model_id: str
    side: str
    num_pca: int
    flat_hand_mean: bool


class HandModel(torch.nn.Module):
    """One hand (``side``) of a MANO-format model, batched and differentiable, on any torch device."""

    def __init__(self, struct: dict[str, np.ndarray], side: str, model_id: str, num_pca: int = NUM_PCA,
                 flat_hand_mean: bool = False, dtype=torch.float32):
        super().__init__()
        import smplx
        from smplx.utils import Struct

        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        if not 1 <= num_pca <= 45:
            raise ValueError(f"num_pca must be in 1..45, got {num_pca}")
        self.side, self.model_id, self.num_pca, self.flat_hand_mean = side, model_id, num_pca, flat_hand_mean
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about MANO's 10 shape coefficients
            self.mano = smplx.MANO(model_path="", is_rhand=side == "right", data_struct=Struct(**struct),
                                   use_pca=num_pca < 45, num_pca_comps=num_pca, flat_hand_mean=flat_hand_mean,
                                   create_hand_pose=False, create_global_orient=False, create_betas=False,
                                   create_transl=False, dtype=dtype)
        self.register_buffer("tip_vertex_ids", torch.tensor(FINGERTIP_VERTEX_IDS), persistent=False)
        self.register_buffer("openpose_order", torch.tensor(OPENPOSE_FROM_MANO), persistent=False)
        with torch.no_grad():
            j0 = torch.as_tensor(struct["J_regressor"], dtype=torch.float64) @ torch.as_tensor(
                struct["v_template"], dtype=torch.float64)
        # The root (wrist) joint at zero shape: MANO's "pelvis". A wrist at p has transl = p - root_offset.
        self.register_buffer("root_offset", j0[0].to(dtype), persistent=False)
        self.register_buffer("components", torch.as_tensor(struct["hands_components"][:num_pca], dtype=dtype),
                             persistent=False)
        mean = np.zeros(45) if flat_hand_mean else struct["hands_mean"]
        self.register_buffer("mean_pose", torch.as_tensor(mean, dtype=dtype), persistent=False)
        # What the keypoint path needs from the mesh: rest joints, and the 5 fingertip vertices' rest positions,
        # pose blend shapes and skinning weights (zero shape).
        tips = list(FINGERTIP_VERTEX_IDS)
        v = np.asarray(struct["v_template"], float)
        self.register_buffer("joints_rest", torch.as_tensor(struct["J_regressor"] @ v, dtype=dtype)[None],
                             persistent=False)
        self.register_buffer("tip_rest", torch.as_tensor(v[tips], dtype=dtype), persistent=False)
        posedirs = np.asarray(struct["posedirs"], float)[tips].reshape(len(tips) * 3, -1).T  # (135, 15)
        self.register_buffer("tip_posedirs", torch.as_tensor(posedirs, dtype=dtype), persistent=False)
        self.register_buffer("tip_weights", torch.as_tensor(np.asarray(struct["weights"], float)[tips], dtype=dtype),
                             persistent=False)
        self._np = None  # float64 NumPy copies for canonical_keypoints_numpy, made on first use

    @property
    def info(self) -> HandModelInfo:
        return HandModelInfo(self.model_id, self.side, self.num_pca, self.flat_hand_mean)

    def pca_to_pose(self, pca: torch.Tensor) -> torch.Tensor:
        """Hand pose input (B, num_pca) -> the 45-D axis-angle finger pose, mean included (with 45 components
        the input is the axis-angle pose itself, as in smplx)."""
        return (pca @ self.components if self.num_pca < 45 else pca) + self.mean_pose

    def forward(self, pca: torch.Tensor, global_orient: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> torch.Tensor:
        """Keypoints (B, 21, 3) for PCA coefficients (B, num_pca), axis-angle orientation (B, 3), transl (B, 3).

        Zero shape. The same linear blend skinning as smplx's, evaluated only where keypoints need it (the 16
        joints and the 5 fingertip vertices), which makes it ~100x cheaper than the full mesh for large batches.
        """
        from smplx.lbs import batch_rigid_transform, batch_rodrigues

        b = pca.shape[0]
        pose = self.pca_to_pose(pca)
        orient = pca.new_zeros(b, 3) if global_orient is None else global_orient
        full = torch.cat([orient, pose], dim=1)
        rot = batch_rodrigues(full.reshape(-1, 3)).reshape(b, -1, 3, 3)
        eye = torch.eye(3, dtype=pca.dtype, device=pca.device)
        pose_feature = (rot[:, 1:] - eye).reshape(b, -1)
        tips_posed = self.tip_rest + (pose_feature @ self.tip_posedirs).reshape(b, 5, 3)
        joints, rel = batch_rigid_transform(rot, self.joints_rest.expand(b, -1, -1), self.mano.parents,
                                            dtype=pca.dtype)
        t = (self.tip_weights @ rel.reshape(b, 16, 16)).reshape(b, 5, 4, 4)
        tips = (t[..., :3, :3] @ tips_posed[..., None])[..., 0] + t[..., :3, 3]
        out = torch.cat([joints, tips], dim=1).index_select(1, self.openpose_order)
        return out if transl is None else out + transl[:, None]

    def mesh(self, pca: torch.Tensor, global_orient: torch.Tensor | None = None,
             transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The full smplx forward: vertices (B, V, 3) and keypoints (B, 21, 3)."""
        b = pca.shape[0]
        zeros = pca.new_zeros(b, 3)
        out = self.mano(betas=pca.new_zeros(b, self.mano.num_betas), global_orient=zeros if global_orient is None
                        else global_orient, hand_pose=pca, transl=zeros if transl is None else transl)
        tips = out.vertices.index_select(1, self.tip_vertex_ids)
        return out.vertices, torch.cat([out.joints, tips], dim=1).index_select(1, self.openpose_order)

    def canonical_keypoints_numpy(self, pca) -> np.ndarray:
        """``canonical_keypoints`` in float64 NumPy for inference (no autograd): one compiled loop (Numba), 0.01 ms
        for the pose of a control tick against 0.12 ms in NumPy and more in torch. Same skinning as ``forward``;
        equal to it to rounding (tested)."""
        if self._np is None:
            c = {k: getattr(self, k).detach().double().cpu().numpy() for k in
                 ("components", "mean_pose", "joints_rest", "tip_rest", "tip_posedirs", "tip_weights")}
            self._np = {"components": c["components"], "mean_pose": c["mean_pose"].reshape(-1),
                        "rest": np.ascontiguousarray(c["joints_rest"].reshape(16, 3)),
                        "parents": np.ascontiguousarray(self.mano.parents.cpu().numpy(), dtype=np.int64),
                        "tip_rest": np.ascontiguousarray(c["tip_rest"].reshape(5, 3)),
                        "tip_posedirs": np.ascontiguousarray(c["tip_posedirs"].reshape(135, 15)),
                        "tip_weights": np.ascontiguousarray(c["tip_weights"].reshape(5, 16)),
                        "order": np.asarray(OPENPOSE_FROM_MANO, dtype=np.int64)}
        c = self._np
        pca = np.atleast_2d(np.asarray(pca, dtype=np.float64))
        pose = (pca @ c["components"] if self.num_pca < 45 else pca) + c["mean_pose"]  # (b, 45)
        out = np.empty((pose.shape[0], 21, 3))
        _keypoints_kernel(np.ascontiguousarray(pose), c["rest"], c["parents"], c["tip_rest"], c["tip_posedirs"],
                          c["tip_weights"], c["order"], out)
        return out

    def canonical_keypoints(self, pca: torch.Tensor) -> torch.Tensor:
        """Wrist-relative keypoints (B, 21, 3) in the model's canonical frame (zero orientation)."""
        k = self.forward(pca)
        return k - k[:, WRIST:WRIST + 1]


@njit(cache=True)
def _keypoints_kernel(pose, rest, parents, tip_rest, tip_posedirs, tip_weights, order, out):
    """Wrist-relative OpenPose-order keypoints ``out`` (b, 21, 3) of full axis-angle poses (b, 45): Rodrigues with
    smplx's epsilon, the kinematic chain from the rest joints, then linear blend skinning of the five fingertip
    vertices with their pose correctives (``tip_posedirs`` (135, 15): rows are (rotation - I) entries)."""
    rot = np.empty((16, 3, 3))
    wr = np.empty((16, 3, 3))
    wt = np.empty((16, 3))
    at = np.empty((16, 3))
    posed = np.empty((5, 3))
    full = np.empty((21, 3))
    for n in range(pose.shape[0]):
        for i in range(3):
            for k in range(3):
                rot[0, i, k] = 1.0 if i == k else 0.0
        for j in range(15):
            vx, vy, vz = pose[n, 3 * j], pose[n, 3 * j + 1], pose[n, 3 * j + 2]
            angle = np.sqrt((vx + 1e-8) ** 2 + (vy + 1e-8) ** 2 + (vz + 1e-8) ** 2)
            kx, ky, kz = vx / angle, vy / angle, vz / angle
            c, s = np.cos(angle), np.sin(angle)
            t = 1.0 - c
            # I + s K + (1 - c) K^2 with K the cross-product matrix of the unit axis (K^2 = k k^T - |k|^2 I)
            kk = kx * kx + ky * ky + kz * kz
            r = rot[j + 1]
            r[0, 0] = 1.0 + t * (kx * kx - kk)
            r[0, 1] = -s * kz + t * kx * ky
            r[0, 2] = s * ky + t * kx * kz
            r[1, 0] = s * kz + t * ky * kx
            r[1, 1] = 1.0 + t * (ky * ky - kk)
            r[1, 2] = -s * kx + t * ky * kz
            r[2, 0] = -s * ky + t * kz * kx
            r[2, 1] = s * kx + t * kz * ky
            r[2, 2] = 1.0 + t * (kz * kz - kk)
        wr[0] = rot[0]
        wt[0] = rest[0]
        for j in range(1, 16):
            p = parents[j]
            for i in range(3):
                acc = wt[p, i]
                for k in range(3):
                    acc += wr[p, i, k] * (rest[j, k] - rest[p, k])
                    wr[j, i, k] = wr[p, i, 0] * rot[j, 0, k] + wr[p, i, 1] * rot[j, 1, k] + wr[p, i, 2] * rot[j, 2, k]
                wt[j, i] = acc
        for j in range(16):
            for i in range(3):
                at[j, i] = wt[j, i] - (wr[j, i, 0] * rest[j, 0] + wr[j, i, 1] * rest[j, 1] + wr[j, i, 2] * rest[j, 2])
        for v in range(5):
            for i in range(3):
                posed[v, i] = tip_rest[v, i]
        for f in range(135):
            j, e = f // 9 + 1, f % 9
            feature = rot[j, e // 3, e % 3] - (1.0 if e // 3 == e % 3 else 0.0)
            if feature != 0.0:
                for q in range(15):
                    posed[q // 3, q % 3] += feature * tip_posedirs[f, q]
        for j in range(16):
            for i in range(3):
                full[j, i] = wt[j, i]
        for v in range(5):
            for i in range(3):
                acc = 0.0
                for j in range(16):
                    w = tip_weights[v, j]
                    if w != 0.0:
                        acc += w * (wr[j, i, 0] * posed[v, 0] + wr[j, i, 1] * posed[v, 1] + wr[j, i, 2] * posed[v, 2]
                                    + at[j, i])
                full[16 + v, i] = acc
        for m in range(21):
            for i in range(3):
                out[n, m, i] = full[order[m], i] - full[order[0], i]


STANDIN_DECIMALS = 9  # the stand-in's fingerprint rounds to 1e-9 (m, rad): see _fingerprint


def _fingerprint(struct, decimals: int | None = None) -> str:
    """12 hex digits identifying the model's geometry and pose basis. ``decimals``: round the values first (the
    stand-in, which is computed: its last bits depend on the CPU's vector instructions and the maths library, so an
    exact hash would differ from one machine to the next; rounded to 1e-9 of its units it is the same everywhere)."""
    h = hashlib.sha1()
    for key in ("v_template", "J_regressor", "hands_components", "hands_mean"):
        values = np.ascontiguousarray(struct[key], dtype=np.float64)
        if decimals is not None:
            values = np.round(values, decimals) + 0.0  # + 0.0: -0.0 and 0.0 hash alike
        h.update(values.tobytes())
    return h.hexdigest()[:12]


def load_hand_model(side: str, kind: str = "auto", mano_dir: str | None = None, num_pca: int = NUM_PCA,
                    flat_hand_mean: bool = False, dtype=torch.float32) -> HandModel:
    """A hand model for ``side``. ``kind``: ``"mano"`` (the licensed files, else an error naming them),
    ``"standin"``, or ``"auto"`` (MANO when ``mano_dir`` or ``$EGOVLA_MANO_DIR`` is set, else the stand-in)."""
    if kind not in ("auto", "mano", "standin"):
        raise ValueError(f"kind must be 'auto', 'mano' or 'standin', got {kind!r}")
    if kind == "auto":
        kind = "mano" if (mano_dir or os.environ.get(MANO_DIR_ENV)) else "standin"
    if kind == "standin":
        struct = build_standin_struct(side)
        right = struct if side == "right" else build_standin_struct("right")
        # one id for both sides: the left is the right's mirror image
        model_id = f"{STANDIN_ID}:{_fingerprint(right, STANDIN_DECIMALS)}"
    else:
        struct = load_mano_npz(mano_file(side, mano_dir))
        model_id = f"mano:{_fingerprint(struct)}"
    return HandModel(struct, side, model_id, num_pca, flat_hand_mean, dtype)


def check_model_id(recorded: str, model: HandModel | str, what: str = "artefact"):
    """Raise ``HandModelMismatchError`` unless ``recorded`` (from an artefact) matches the model in use."""
    current = model if isinstance(model, str) else model.model_id
    if recorded != current:
        raise HandModelMismatchError(
            f"this {what} was made with hand model {recorded!r} but the hand model in use is {current!r}; "
            f"use the same hand model (MANO files via {MANO_DIR_ENV}, or the stand-in) or regenerate the {what}")


__all__ = ["HandModel", "HandModelInfo", "HandModelMismatchError", "ManoFilesError", "load_hand_model",
           "check_model_id", "OPENPOSE_FROM_MANO", "FINGERTIPS", "WRIST", "NUM_PCA"]
