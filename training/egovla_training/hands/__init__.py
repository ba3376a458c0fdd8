"""Hand models: MANO through smplx when its licensed files are present, an open stand-in otherwise."""

from .mano_files import MANO_DIR_ENV, ManoFilesError, convert_mano_pickle, read_mano_pickle
from .model import (
    FINGERTIPS,
    NUM_PCA,
    OPENPOSE_FROM_MANO,
    WRIST,
    HandModel,
    HandModelInfo,
    HandModelMismatchError,
    check_model_id,
    load_hand_model,
)
from .standin import STANDIN_ID, build_standin_struct

__all__ = [
    "FINGERTIPS", "NUM_PCA", "OPENPOSE_FROM_MANO", "WRIST", "HandModel", "HandModelInfo", "HandModelMismatchError",
    "check_model_id", "load_hand_model", "MANO_DIR_ENV", "ManoFilesError", "convert_mano_pickle",
    "read_mano_pickle", "STANDIN_ID", "build_standin_struct",
]
