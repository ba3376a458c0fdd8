"""An open stand-in for the MANO hand: same parameterisation, built procedurally, NOT the MANO model.

MANO's model files are licensed and may not be redistributed, so a fresh install, the demo, the CPU pipeline and
the tests run on this stand-in. It is written out as a MANO-format model (the fields smplx reads) and goes through
exactly the same smplx code path as the real files:

- 16 joints in MANO's order (wrist; index, middle, pinky, ring: 3 joints each; thumb: 3), with adult human
  proportions (wrist to middle fingertip 0.184 m) in MANO's canonical frame convention for each hand (right
  hand: fingers along -x, palm facing -y, thumb on the +z side; the left hand is its mirror image in x);
- 778 vertices: capsule-like rings around every bone, a vertex at each joint centre (the joint regressor picks
  them), and the five fingertip vertices at MANO's fingertip ids (744, 320, 443, 554, 671); rigid skinning;
- the 45-D pose in axis-angle per joint; a relaxed mean pose (``hands_mean``); and a 45x45 orthonormal PCA basis
  whose first 15 components are designed finger synergies (whole-hand curl, thumb opposition, finger gradients,
  thumb flexion, spread, ...).

Its keypoints are plausible, not MANO's: a dataset or checkpoint records which hand model made it
(``model_id``) and mixing the two is refused.
"""

from __future__ import annotations

import numpy as np

STANDIN_ID = "standin-hand-v1"
NUM_VERTICES = 778
FINGERTIP_VERTEX_IDS = (744, 320, 443, 554, 671)  # thumb, index, middle, ring, pinky (MANO's ids)
# MANO joint order: 0 wrist; 1-3 index; 4-6 middle; 7-9 pinky; 10-12 ring; 13-15 thumb.
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
FINGERS = {"index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15)}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")

_WRIST = np.array([0.09, 0.005, 0.005])  # the root joint's rest position (the model's "root offset")
_PALM_NORMAL = np.array([0.0, -1.0, 0.0])  # right hand: the palm faces -y
# Right hand, relative to the wrist: knuckle (MCP) offsets, phalanx lengths (proximal, middle, distal to tip)
# and finger directions.
_FINGER_SPECS = {
    "index": ((-0.088, 0.000, 0.025), (0.039, 0.024, 0.021), (-1.0, 0.0, 0.06)),
    "middle": ((-0.090, 0.000, 0.004), (0.044, 0.027, 0.023), (-1.0, 0.0, 0.0)),
    "ring": ((-0.084, -0.002, -0.015), (0.041, 0.026, 0.022), (-1.0, 0.0, -0.06)),
    "pinky": ((-0.076, -0.005, -0.031), (0.032, 0.019, 0.020), (-1.0, 0.0, -0.13)),
}
_THUMB_CMC = (-0.022, -0.012, 0.020)
_THUMB_DIRS = ((-0.55, -0.12, 0.83), (-0.80, -0.10, 0.59))
_THUMB_LENGTHS = (0.046, 0.032, 0.027)  # metacarpal, proximal, distal to tip
_BONE_RADIUS = {"palm": 0.012, "thumb": 0.010, "finger": 0.0085}


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def right_hand_skeleton() -> tuple[np.ndarray, np.ndarray]:
    """Rest joint positions (16, 3) and fingertip positions (5, 3, order thumb..pinky) of the right hand."""
    joints = np.zeros((16, 3))
    joints[0] = _WRIST
    tips = {}
    for name, (mcp, lengths, direction) in _FINGER_SPECS.items():
        d = _unit(direction)
        a, b, c = FINGERS[name]
        joints[a] = _WRIST + mcp
        joints[b] = joints[a] + lengths[0] * d
        joints[c] = joints[b] + lengths[1] * d
        tips[name] = joints[c] + lengths[2] * d
    d1, d2 = _unit(_THUMB_DIRS[0]), _unit(_THUMB_DIRS[1])
    joints[13] = _WRIST + _THUMB_CMC
    joints[14] = joints[13] + _THUMB_LENGTHS[0] * d1
    joints[15] = joints[14] + _THUMB_LENGTHS[1] * d2
    tips["thumb"] = joints[15] + _THUMB_LENGTHS[2] * d2
    return joints, np.stack([tips[n] for n in TIP_ORDER])


def _segment_direction(joints, tips, j):
    """Direction of the bone that joint j rotates (from j toward its child, or its fingertip)."""
    children = [c for c, p in enumerate(PARENTS) if p == j]
    if children:
        return _unit(joints[children[0]] - joints[j])
    finger = next(n for n, ids in FINGERS.items() if ids[-1] == j)
    return _unit(tips[TIP_ORDER.index(finger)] - joints[j])


def _synergies(joints, tips) -> tuple[np.ndarray, np.ndarray]:
    """Designed synergies (15 x 45, before orthonormalisation) and the relaxed mean pose (45,), right hand."""
    flex = {j: _unit(np.cross(_segment_direction(joints, tips, j), _PALM_NORMAL)) for j in range(1, 16)}
    spread = -_PALM_NORMAL  # rotation about the back-of-hand normal moves a finger toward the thumb
    twist = {j: _segment_direction(joints, tips, j) for j in range(1, 16)}
    opposition = np.array([1.0, 0.0, 0.0])  # swings the thumb across the palm

    def pose(**by_joint):
        v = np.zeros(45)
        for key, vec in by_joint.items():
            j = int(key[1:])
            v[3 * (j - 1):3 * j] += vec
        return v

    def fingers(weights_mcp, weights_pip, weights_dip, names=("index", "middle", "ring", "pinky"), per=None):
        v = np.zeros(45)
        for n in names:
            a, b, c = FINGERS[n]
            s = 1.0 if per is None else per[n]
            v += pose(**{f"j{a}": s * weights_mcp * flex[a], f"j{b}": s * weights_pip * flex[b],
                         f"j{c}": s * weights_dip * flex[c]})
        return v

    curl = fingers(1.0, 1.1, 0.7) + pose(j13=0.3 * opposition, j14=0.5 * flex[14], j15=0.5 * flex[15])
    per_finger = lambda i, m, r, p: fingers(1.0, 1.0, 0.7, per={"index": i, "middle": m, "ring": r, "pinky": p})  # noqa: E731
    # Ordered so that the first six span the motions of a 6-actuator robot hand (four finger flexions, thumb
    # opposition and flexion), as the authors fit the first six components to the Inspire hand.
    syn = [
        curl,  # 1 whole-hand curl
        pose(j13=1.0 * opposition, j14=0.3 * flex[14], j15=0.3 * flex[15]) + fingers(0.3, 0.0, 0.0, ("index", "middle")),
        per_finger(-1.0, -0.4, 0.5, 1.0),  # 3 radial-ulnar gradient (pinch vs power)
        per_finger(-1.0, 1.0, 1.0, -1.0),  # 4 middle + ring against index + pinky
        pose(j14=1.0 * flex[14], j15=1.0 * flex[15]),  # 5 thumb flexion
        per_finger(1.0, -1.0, 1.0, -1.0),  # 6 alternating fingers
        sum(pose(**{f"j{FINGERS[n][0]}": w * spread}) for n, w in
            (("index", 1.0), ("middle", 0.25), ("ring", -0.6), ("pinky", -1.0))) + pose(j13=0.5 * spread),  # 7 spread
        fingers(1.0, -0.8, -0.8),  # 8 knuckles against finger joints (flat fist / hook)
        per_finger(-1.0, 0.5, 0.5, 0.5),  # 9 pointing
        fingers(1.0, 1.0, 1.0, ("pinky",)),  # 10
        pose(j13=1.0 * flex[13]),  # 11 palmar abduction of the thumb
        fingers(0.0, 0.0, 1.0),  # 12 fingertip joints only
        sum(pose(**{f"j{FINGERS[n][0]}": twist[FINGERS[n][0]]}) for n in ("index", "middle", "ring", "pinky")),
        pose(j14=1.0 * flex[14], j15=-1.0 * flex[15]),  # 14
        fingers(1.0, 1.0, 1.0, ("ring",)),  # 15
    ]
    mean = fingers(0.25, 0.35, 0.2) + pose(j13=0.15 * opposition, j14=0.15 * flex[14], j15=0.15 * flex[15])
    return np.stack(syn), mean


def _orthonormal_basis(synergies: np.ndarray) -> np.ndarray:
    """45 x 45 orthonormal rows: Gram-Schmidt of the synergies (in order), then a fixed completion."""
    rng = np.random.default_rng(20250101)
    rows = list(synergies) + list(rng.normal(size=(45, 45)))
    basis = []
    for r in rows:
        v = r.copy()
        for b in basis:
            v -= (v @ b) * b
        n = np.linalg.norm(v)
        if n > 1e-8:
            basis.append(v / n)
        if len(basis) == 45:
            break
    return np.stack(basis)


def _bone_rings(start, end, radius, n_around=8, n_along=4):
    """Points on a capsule-like surface around the segment start->end (n_along rings of n_around points)."""
    d = _unit(end - start)
    a = _unit(np.cross(d, [0.0, 1.0, 0.0] if abs(d[1]) < 0.9 else [1.0, 0.0, 0.0]))
    b = np.cross(d, a)
    pts = []
    for t in np.linspace(0.15, 0.85, n_along):
        c = start + t * (end - start)
        for k in range(n_around):
            phi = 2 * np.pi * k / n_around
            pts.append(c + radius * (np.cos(phi) * a + np.sin(phi) * b))
    return np.array(pts)


def build_standin_struct(side: str = "right") -> dict[str, np.ndarray]:
    """The stand-in as a MANO-format model: the arrays smplx's MANO reads (float64, int64)."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    joints, tips = right_hand_skeleton()
    # Bones: the palm (wrist to each finger's first joint) and every finger segment, skinned to the joint that
    # moves them.
    bones = []
    for first in (1, 4, 7, 10, 13):
        bones.append((0, joints[0], joints[first], _BONE_RADIUS["palm"] if first != 13 else _BONE_RADIUS["thumb"]))
    for name, ids in FINGERS.items():
        radius = _BONE_RADIUS["thumb" if name == "thumb" else "finger"]
        ends = [joints[i] for i in ids] + [tips[TIP_ORDER.index(name)]]
        for k, j in enumerate(ids):
            bones.append((j, ends[k], ends[k + 1], radius))
    faces = []
    reserved = set(range(16)) | set(FINGERTIP_VERTEX_IDS)
    free_ids = iter(i for i in range(NUM_VERTICES) if i not in reserved)
    v_template = np.zeros((NUM_VERTICES, 3))
    weights = np.zeros((NUM_VERTICES, 16))
    for j in range(16):  # joint-centre vertices at ids 0..15: the regressor's rows pick them
        v_template[j] = joints[j]
        weights[j, j] = 1.0
    for t, vid in enumerate(FINGERTIP_VERTEX_IDS):
        finger = TIP_ORDER[t]
        v_template[vid] = tips[t]
        weights[vid, FINGERS[finger][-1]] = 1.0
    n_around, n_along = 8, 4
    for owner, start, end, radius in bones:
        ring = _bone_rings(start, end, radius, n_around, n_along)
        ids = [next(free_ids) for _ in range(len(ring))]
        for vid, p in zip(ids, ring):
            v_template[vid] = p
            weights[vid, owner] = 1.0
        for r in range(n_along - 1):
            for k in range(n_around):
                a = ids[r * n_around + k]
                b = ids[r * n_around + (k + 1) % n_around]
                c = ids[(r + 1) * n_around + k]
                d = ids[(r + 1) * n_around + (k + 1) % n_around]
                faces += [(a, b, c), (b, d, c)]
    # Remaining ids: points on the back and front of the palm, skinned to the wrist.
    rest = list(free_ids)
    rng = np.random.default_rng(7)
    knuckles = joints[[1, 4, 7, 10]]
    for vid in rest:
        w = rng.dirichlet(np.ones(5))
        p = w[0] * joints[0] + w[1:] @ knuckles
        p[1] += rng.choice([-1.0, 1.0]) * 0.012
        v_template[vid] = p
        weights[vid, 0] = 1.0

    syn, mean = _synergies(joints, tips)
    components = _orthonormal_basis(syn)
    j_regressor = np.zeros((16, NUM_VERTICES))
    j_regressor[np.arange(16), np.arange(16)] = 1.0
    shapedirs = np.zeros((NUM_VERTICES, 3, 10))
    shapedirs[:, :, 0] = 0.05 * (v_template - joints[0])  # beta_0: overall size, 5 % per unit
    faces = np.array(faces, dtype=np.int64)
    if side == "left":
        mirror = np.array([-1.0, 1.0, 1.0])
        v_template = v_template * mirror
        shapedirs = shapedirs * mirror[None, :, None]
        # A reflection in x maps a joint rotation's axis-angle (x, y, z) to (x, -y, -z).
        flip = np.tile([1.0, -1.0, -1.0], 15)
        components = components * flip
        mean = mean * flip
        faces = faces[:, ::-1].copy()
    kintree = np.array([[4294967295 if p < 0 else p for p in PARENTS], list(range(16))], dtype=np.int64)
    return {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((NUM_VERTICES, 3, 135)),
        "J_regressor": j_regressor,
        "kintree_table": kintree,
        "weights": weights,
        "f": faces,
        "hands_components": components,
        "hands_mean": mean,
    }
