"""Finding and reading the licensed MANO model files, without chumpy and without unrestricted unpickling.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (mano.is.tue.mpg.de, registration and licence required; never
commit them) are Python 2 pickles holding numpy arrays, a scipy sparse matrix and chumpy objects.
``convert_mano_pickle`` reads one with a restricted unpickler that resolves only the classes such a file needs
(numpy array reconstruction, scipy sparse matrices, chumpy's plain ``Ch`` value holder) into inert stand-ins,
refuses everything else, and writes a plain ``.npz`` that later loads with ``allow_pickle=False``:

    egovla-mano-convert --src ~/Downloads/mano_v1_2/models --dst ~/.egovla/mano

Where the files are looked up: an explicit folder, else the ``EGOVLA_MANO_DIR`` environment variable.
"""

from __future__ import annotations

import argparse
import codecs
import copyreg
import os
import pickle
import sys
from pathlib import Path

import numpy as np

MANO_DIR_ENV = "EGOVLA_MANO_DIR"
MANO_FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f",
               "hands_components", "hands_mean")
_EXPECTED_SHAPES = {"v_template": (None, 3), "shapedirs": (None, 3, None), "posedirs": (None, 3, 135),
                    "J_regressor": (16, None), "kintree_table": (2, 16), "weights": (None, 16), "f": (None, 3),
                    "hands_components": (45, 45), "hands_mean": (45,)}
HOW_TO_GET = ("download MANO v1.2 from https://mano.is.tue.mpg.de (registration and licence required), then run "
              "`egovla-mano-convert --src <mano_v1_2/models> --dst <folder>` and set EGOVLA_MANO_DIR=<folder>")


class ManoFilesError(RuntimeError):
    """The MANO files are missing or malformed; the message says which file, what is wrong and what to do."""


# -- restricted unpickling ----------------------------------------------------------------------------------


class _Inert:
    """Stands in for an allowed foreign class: keeps the pickled state, runs no foreign code."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _ChumpyValue(_Inert):
    kind = "chumpy"


class _SparseMatrix(_Inert):
    kind = "sparse"


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover
        from numpy.core.multiarray import scalar
    return scalar


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _numpy_reconstruct()
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return _numpy_scalar()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return copyreg._reconstructor
        if module in ("__builtin__", "builtins") and name in ("object", "set", "frozenset"):
            return {"object": object, "set": set, "frozenset": frozenset}[name]  # chumpy keeps sets in its state
        if module == "_codecs" and name == "encode":  # byte strings in protocol-2 pickles written by Python 3
            return codecs.encode
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _SparseMatrix
        if module.startswith("chumpy") and name == "Ch":
            return _ChumpyValue
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: not part of a MANO model file (only numpy arrays, scipy sparse "
            f"matrices and chumpy value holders are allowed)")


def _to_array(key, value, path):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, _ChumpyValue):
        state = getattr(value, "state", None)
        if isinstance(state, dict) and isinstance(state.get("x"), np.ndarray):
            return state["x"]
        raise ManoFilesError(f"{path}: field {key!r} is a chumpy expression, not a stored value; this converter "
                             f"only reads plain values (as in the official MANO v1.2 files)")
    if isinstance(value, _SparseMatrix):
        st = getattr(value, "state", None) or {}
        shape = st.get("_shape") or st.get("shape")
        data, indices, indptr = st.get("data"), st.get("indices"), st.get("indptr")
        if shape is None or data is None:
            raise ManoFilesError(f"{path}: field {key!r}: unreadable sparse matrix")
        fmt = st.get("format", "csc")
        dense = np.zeros(shape)
        outer = shape[1] if fmt == "csc" else shape[0]
        for o in range(outer):
            for k in range(indptr[o], indptr[o + 1]):
                if fmt == "csc":
                    dense[indices[k], o] = data[k]
                else:
                    dense[o, indices[k]] = data[k]
        return dense
    return np.asarray(value)


def read_mano_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """The MANO fields of an official (chumpy) pickle, as plain arrays, via the restricted unpickler."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = _RestrictedUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise ManoFilesError(f"{path}: file not found; {HOW_TO_GET}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ManoFilesError(f"{path}: not a readable MANO model file: {e}") from None
    if not isinstance(raw, dict):
        raise ManoFilesError(f"{path}: expected a dict of model fields, got {type(raw).__name__}")
    out = {}
    for key in MANO_FIELDS:
        if key not in raw:
            raise ManoFilesError(f"{path}: missing field {key!r} (fields present: {sorted(raw)})")
        out[key] = _to_array(key, raw[key], path)
    return validate_mano_struct(out, path)


def validate_mano_struct(data: dict, path) -> dict[str, np.ndarray]:
    out = {}
    for key in MANO_FIELDS:
        if key not in data:
            raise ManoFilesError(f"{path}: missing field {key!r}")
        a = np.asarray(data[key])
        want = _EXPECTED_SHAPES[key]
        if a.ndim != len(want) or any(w is not None and w != s for w, s in zip(want, a.shape)):
            raise ManoFilesError(f"{path}: field {key!r} has shape {a.shape}, expected {want} (None = any)")
        if a.dtype.kind not in "fiu":
            raise ManoFilesError(f"{path}: field {key!r} is not numeric ({a.dtype})")
        out[key] = a.astype(np.int64 if key in ("f", "kintree_table") else np.float64)
    if out["v_template"].shape[0] < 745:
        raise ManoFilesError(f"{path}: {out['v_template'].shape[0]} vertices; MANO's fingertip ids need >= 745")
    return out


def convert_mano_pickle(src: str | Path, dst: str | Path) -> Path:
    """Official pickle -> plain ``.npz`` (same base name) loadable without pickle. Returns the written path."""
    data = read_mano_pickle(src)
    dst = Path(dst)
    if dst.suffix != ".npz":
        dst = dst / (Path(src).stem + ".npz")
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **data)
    return dst


def mano_file(side: str, folder: str | Path | None = None) -> Path:
    """The converted ``MANO_{RIGHT,LEFT}.npz`` for ``side`` in ``folder`` (default: ``$EGOVLA_MANO_DIR``)."""
    if folder is None:
        folder = os.environ.get(MANO_DIR_ENV)
        if not folder:
            raise ManoFilesError(f"no MANO folder given and {MANO_DIR_ENV} is not set; {HOW_TO_GET}")
    path = Path(folder).expanduser() / f"MANO_{side.upper()}.npz"
    if not path.exists():
        pkl = path.with_suffix(".pkl")
        hint = (f"found {pkl.name}: convert it with `egovla-mano-convert --src {pkl.parent} --dst {pkl.parent}`"
                if pkl.exists() else HOW_TO_GET)
        raise ManoFilesError(f"{path}: not found; {hint}")
    return path


def load_mano_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ManoFilesError(f"{path}: not a readable .npz: {e}") from None
    return validate_mano_struct(data, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="egovla-mano-convert",
        description="Convert the official MANO_RIGHT.pkl / MANO_LEFT.pkl (chumpy pickles) into plain .npz files "
                    "that load without chumpy and without unpickling. Only the fields the hand model needs are kept.")
    parser.add_argument("--src", required=True, help="folder with MANO_RIGHT.pkl and MANO_LEFT.pkl, or one .pkl")
    parser.add_argument("--dst", required=True, help="output folder")
    args = parser.parse_args(argv)
    src = Path(args.src).expanduser()
    files = [src] if src.suffix == ".pkl" else [src / "MANO_RIGHT.pkl", src / "MANO_LEFT.pkl"]
    try:
        for f in files:
            out = convert_mano_pickle(f, Path(args.dst).expanduser())
            print(f"wrote {out}")
    except ManoFilesError as e:
        print(f"egovla-mano-convert: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
