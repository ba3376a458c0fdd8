"""The benchmark's 5 rooms x 5 tables, as procedural textures and colours for the MuJoCo twin.

The benchmark swaps room and table USDs (not public) to test visual generalisation: the *seen* configurations
are rooms 1-3 with table 1, the *unseen* ones the other 22 pairs. Here each room is a floor texture and a wall
texture, each table a top texture, all generated from a fixed seed (no image files ship with the project).
Every material of all 25 configurations is compiled into one model and a configuration is selected at reset by
switching the material of the floor, wall and table geoms, so changing the look costs no recompilation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

TEXTURE_SIZE = 256
ROOMS = (1, 2, 3, 4, 5)
TABLES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Look:
    name: str
    kind: str  # generator name
    colors: tuple
    repeat: tuple[float, float]


# floor, wall per room; top per table
ROOM_LOOKS = {
    1: (Look("oak floor", "wood", ((0.72, 0.55, 0.36), (0.55, 0.39, 0.24)), (6, 6)),
        Look("beige plaster", "noise", ((0.86, 0.8, 0.7), (0.8, 0.74, 0.64)), (4, 2))),
    2: (Look("grey tiles", "tiles", ((0.62, 0.63, 0.65), (0.35, 0.36, 0.38)), (10, 10)),
        Look("pale blue wall", "noise", ((0.62, 0.74, 0.86), (0.56, 0.68, 0.8)), (4, 2))),
    3: (Look("dark carpet", "noise", ((0.25, 0.22, 0.3), (0.15, 0.13, 0.18)), (8, 8)),
        Look("white brick", "bricks", ((0.9, 0.9, 0.88), (0.62, 0.6, 0.58)), (6, 3))),
    4: (Look("chequered floor", "checker", ((0.92, 0.92, 0.9), (0.1, 0.1, 0.12)), (12, 12)),
        Look("green stripes", "stripes", ((0.4, 0.6, 0.42), (0.62, 0.78, 0.6)), (8, 1))),
    5: (Look("terracotta tiles", "tiles", ((0.72, 0.38, 0.25), (0.45, 0.3, 0.25)), (8, 8)),
        Look("red concrete", "noise", ((0.55, 0.2, 0.18), (0.42, 0.14, 0.12)), (3, 2))),
}
TABLE_LOOKS = {
    1: Look("light wood", "wood", ((0.8, 0.66, 0.47), (0.66, 0.5, 0.33)), (2, 1)),
    2: Look("white laminate", "noise", ((0.93, 0.93, 0.92), (0.88, 0.88, 0.87)), (1, 1)),
    3: Look("walnut", "wood", ((0.4, 0.26, 0.16), (0.27, 0.16, 0.09)), (2, 1)),
    4: Look("grey marble", "marble", ((0.78, 0.78, 0.8), (0.45, 0.45, 0.5)), (1, 1)),
    5: Look("black slate", "noise", ((0.16, 0.17, 0.19), (0.1, 0.1, 0.11)), (2, 2)),
}

SEEN_LOOKS = ((1, 1), (2, 1), (3, 1))


def check_visual(room: int, table: int) -> tuple[int, int]:
    if room not in ROOMS or table not in TABLES:
        raise ValueError(f"visual configuration (room {room}, table {table}) does not exist: rooms and tables are "
                         f"numbered {ROOMS[0]}..{ROOMS[-1]}")
    return int(room), int(table)


def _smooth_noise(rng, size, cells):
    coarse = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)
    a = coarse[i][:, i] * (1 - f)[None, :] + coarse[i][:, i + 1] * f[None, :]
    b = coarse[i + 1][:, i] * (1 - f)[None, :] + coarse[i + 1][:, i + 1] * f[None, :]
    return a * (1 - f)[:, None] + b * f[:, None]


def texture(look: Look, seed: int, size: int = TEXTURE_SIZE) -> np.ndarray:
    """RGB uint8 (size, size, 3) for a look."""
    rng = np.random.default_rng(seed)
    c0, c1 = (np.asarray(c, float) for c in look.colors)
    y, x = np.mgrid[0:size, 0:size] / size
    if look.kind == "wood":
        grain = _smooth_noise(rng, size, 6)
        m = 0.5 + 0.5 * np.sin(2 * np.pi * (y * 9 + 2.5 * grain))
        m = m ** 3 + 0.15 * rng.random((size, size))
    elif look.kind == "tiles":
        n = 4
        m = (((x * n) % 1 < 0.04) | ((y * n) % 1 < 0.04)).astype(float)
        m = np.maximum(m, 0.15 * _smooth_noise(rng, size, 16))
    elif look.kind == "checker":
        m = ((np.floor(x * 2) + np.floor(y * 2)) % 2).astype(float)
    elif look.kind == "stripes":
        m = ((x * 6) % 1 < 0.5).astype(float)
    elif look.kind == "bricks":
        rows = 8
        row = np.floor(y * rows)
        xs = (x * 4 + 0.5 * (row % 2)) % 1
        m = (((y * rows) % 1 < 0.08) | (xs < 0.03)).astype(float)
        m = np.maximum(m, 0.2 * _smooth_noise(rng, size, 32))
    elif look.kind == "marble":
        n = _smooth_noise(rng, size, 4) + 0.5 * _smooth_noise(rng, size, 12)
        m = np.abs(np.sin(6 * (x + y) + 4 * n)) ** 6
    else:  # noise
        m = 0.6 * _smooth_noise(rng, size, 24) + 0.4 * rng.random((size, size))
    m = np.clip(m, 0, 1)[..., None]
    return (255 * (c0 * (1 - m) + c1 * m)).clip(0, 255).astype(np.uint8)


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def material_names() -> dict[str, dict[int, str]]:
    return {"floor": {r: f"room{r}_floor" for r in ROOMS}, "wall": {r: f"room{r}_wall" for r in ROOMS},
            "table": {t: f"table{t}_top" for t in TABLES}}


def add_visual_assets(asset_el, files: dict[str, bytes]):
    """Textures and materials of every room and table (files are added to ``files``, MuJoCo's asset dict)."""
    import xml.etree.ElementTree as ET

    names = material_names()
    entries = [(names["floor"][r], ROOM_LOOKS[r][0], 100 + r) for r in ROOMS]
    entries += [(names["wall"][r], ROOM_LOOKS[r][1], 200 + r) for r in ROOMS]
    entries += [(names["table"][t], TABLE_LOOKS[t], 300 + t) for t in TABLES]
    for name, look, seed in entries:
        fname = f"{name}.png"
        files[fname] = _png(texture(look, seed))
        ET.SubElement(asset_el, "texture", name=name, type="2d", file=fname)
        ET.SubElement(asset_el, "material", name=name, texture=name, texrepeat=f"{look.repeat[0]} {look.repeat[1]}",
                      texuniform="true" if name.endswith("floor") else "false", specular="0.1", shininess="0.1")
