"""Training data: the sample schema, Parquet storage, the streaming loader, and camera-frame labels.

See ``docs/training_data.md`` for the format and the reasons behind it.
"""

from .camera_frame import (
    future_indices,
    future_points_in_current_camera,
    future_poses_in_current_camera,
    points_to_current_camera,
    to_current_camera,
)
from .loader import SampleStream
from .schema import HISTORY_FRAMES, Sample, SampleError, collate_samples, history_frame_indices, validate_sample
from .storage import (
    DatasetFormatError,
    DatasetReader,
    DatasetWriter,
    EpisodeLabels,
    EpisodeRef,
    decode_frame,
    encode_frame,
    read_meta,
)

__all__ = [
    "future_indices", "future_points_in_current_camera", "future_poses_in_current_camera",
    "points_to_current_camera", "to_current_camera", "SampleStream", "HISTORY_FRAMES", "Sample",
    "SampleError", "collate_samples", "history_frame_indices", "validate_sample", "DatasetFormatError",
    "DatasetReader", "DatasetWriter", "EpisodeLabels", "EpisodeRef", "decode_frame", "encode_frame", "read_meta",
]
