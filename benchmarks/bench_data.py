"""Training-data speed and size: frame codec (JPEG vs PNG) and the streaming loader with 2 workers.

A synthetic dataset of realistic size (8 episodes x 150 frames at 384x384, a sample at every frame, history
spacing 6) is written to a temporary directory. Frames are image-like, not noise (which JPEG handles
unrealistically): a textured background panning like a moving head camera, plus moving shapes.
"""

from __future__ import annotations

import io
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from egovla_training.data import DatasetWriter, EpisodeLabels, SampleStream, collate_samples, decode_frame
from egovla_training.data.storage import bytes_per_frame, encode_frame

EPISODES, FRAMES, SIZE = 8, 150, 384


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A (2*SIZE, 2*SIZE, 3) textured background: smooth shading, flat objects with edges, sensor noise."""
    s = 2 * SIZE
    y, x = np.mgrid[0:s, 0:s] / s
    img = np.full((s, s, 3), 110.0)
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 2 * np.pi)
            img[..., c] += 35 * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    for _ in range(40):
        x0, y0 = rng.integers(0, s, 2)
        w, h = rng.integers(8, s // 6, 2)
        img[y0:y0 + h, x0:x0 + w] = img[y0:y0 + h, x0:x0 + w] * 0.3 + rng.uniform(0, 255, 3) * 0.7
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


class _Episode:
    """Frames made on demand (the writer reads only the frames samples show), as a video reader would."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.scene = _scene(self.rng)
        self.path = np.cumsum(self.rng.normal(0, 1.5, (FRAMES, 2)), axis=0).astype(int) + SIZE // 2

    def __len__(self):
        return FRAMES

    def __getitem__(self, i):
        oy, ox = np.clip(self.path[i], 0, SIZE)
        frame = self.scene[oy:oy + SIZE, ox:ox + SIZE].copy()
        cy, cx = SIZE // 2 + int(60 * np.sin(i / 15)), SIZE // 2 + int(80 * np.cos(i / 20))
        frame[cy - 30:cy + 30, cx - 20:cx + 20] = (200, 160, 130)  # a "hand"
        return frame


def _labels(n: int, rng: np.random.Generator) -> EpisodeLabels:
    return EpisodeLabels(frame_index=np.arange(n), instruction="put can on the saucer",
                         proprio_translation=rng.normal(size=(n, 2, 3)), proprio_rotation=rng.normal(size=(n, 2, 3)),
                         proprio_fingertips=rng.normal(size=(n, 2, 5, 3)), proprio_mask=np.ones((n, 2), bool),
                         actions=rng.normal(size=(n, 30, 48)), action_mask=np.ones((n, 30, 2), bool))


def _codec_figures(frames: list[np.ndarray]) -> dict:
    out = {}
    for codec in ("jpeg", "png"):
        blobs = [encode_frame(f, codec) for f in frames]
        t0 = time.perf_counter()
        for b in blobs:
            decode_frame(b)
        out[f"frame_{codec}_bytes_per_frame"] = int(np.mean([len(b) for b in blobs]))
        out[f"frame_{codec}_decode_ms_per_frame"] = round((time.perf_counter() - t0) / len(blobs) * 1e3, 3)
    jpeg = [np.asarray(Image.open(io.BytesIO(encode_frame(f, "jpeg")))) for f in frames]
    out["frame_jpeg_mean_abs_error_grey_levels"] = round(float(np.mean(
        [np.abs(a.astype(int) - f).mean() for a, f in zip(jpeg, frames)])), 2)
    return out


def run() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with DatasetWriter(tmp, hand_model="standin:bench", fps=30, history_spacing=6,
                           max_frames_per_shard=2 * FRAMES) as writer:
            for e in range(EPISODES):
                episode = _Episode(e)
                writer.add_episode(f"episode_{e:03d}", episode, _labels(FRAMES, episode.rng), source="synthetic",
                                   embodiment="human")
        out["data_write_frames_per_s"] = round(EPISODES * FRAMES / (time.perf_counter() - t0), 1)
        out["data_jpeg_bytes_per_frame"] = int(bytes_per_frame(tmp))
        episode = _Episode(99)
        out.update(_codec_figures([episode[i] for i in range(0, FRAMES, 5)]))

        stream = SampleStream(tmp, seed=0, image_size=SIZE)
        loader = DataLoader(stream, batch_size=8, num_workers=2, collate_fn=collate_samples)
        t0 = time.perf_counter()
        count = 0
        for batch in loader:
            count += len(batch["episode"])
        elapsed = time.perf_counter() - t0
        assert count == EPISODES * FRAMES and tuple(batch["frames"].shape[1:]) == (6, SIZE, SIZE, 3)
        out["data_loader_samples_per_s"] = round(count / elapsed, 1)
        out["data_loader_frames_per_sample"] = 6
        out["data_loader_image_px"] = SIZE
    torch.set_num_threads(threads)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
