"""A small procedural head with 52 expression blendshapes, built in numpy (no licensed assets).

The default face of the render stage when no FaceVerse file is given: an ellipsoid head with a
nose, neck and hair, and decal parts laid on the face surface (eyes with irises and lids, brows,
lips, mouth interior, teeth, tongue). Each of the 52 expression coefficients moves these parts
by a displacement field (mouth opening as a jaw rotation, smiles at the mouth corners, lids
sliding over the eyes, brows rising, cheeks puffing), so coefficient vectors render as
recognisable expressions. The 52 shapes carry the ARKit blendshape names in ARKit order; that
FaceVerse v2's expression basis follows the same order is an assumption (UNVERIFIED), so with
real FaceVerse-fitted data the procedural head shows motion and timing, not the exact expression.

Units: the head is ~1.44 high, centred at the origin, facing +z at zero rotation; with the
FaceVerse camera (z = 10, focal 1315 at 224 px) it fills ~85% of the frame.
"""

from __future__ import annotations

import numpy as np

from orchestrator.render.face_model import FaceModel
from react_data import schema

__all__ = ["EXPRESSION_NAMES", "procedural_face"]

_SIDES = (("Left", 1.0), ("Right", -1.0))  # the subject's left is image right (+x)
EXPRESSION_NAMES: tuple[str, ...] = (
    *[f"eye{k}{s}" for s, _ in _SIDES for k in
      ("Blink", "LookDown", "LookIn", "LookOut", "LookUp", "Squint", "Wide")],
    "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp",
    "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)
assert len(EXPRESSION_NAMES) == schema.N_COEF_EXP  # a wrong table is a programming error

# --- head and feature placement (face-plane x right, y up) ---------------------------------------
A, B, C = 0.56, 0.72, 0.60  # ellipsoid semi-axes x, y, z
EX, EY, RX, RY = 0.20, 0.12, 0.085, 0.045  # eye centre (|x|, y) and radii
IRIS = 0.036
BX, BY, BHALF, BTHICK = 0.20, 0.25, 0.10, 0.018  # brow centre, half length, half thickness
MY, MHALF, LIP = -0.33, 0.16, 0.035  # mouth line, half width, lip thickness at the centre
JAW_ALPHA, JAW_PIVOT = 0.30, (0.0, -0.15)  # jawOpen rotation (rad) about (y, z) pivot
HEAD, NECK, SCLERA, IRIS_P, LID, LOWLID, BROW, LIP_UP, LIP_LO, MOUTH, TEETH_UP, TEETH_LO, \
    TONGUE = range(13)
# Layers above the head surface (z offsets): later parts cover earlier ones.
OFFSET = {SCLERA: 0.003, IRIS_P: 0.006, LOWLID: 0.009, LID: 0.011, BROW: 0.006, MOUTH: 0.003,
          TONGUE: 0.0045, TEETH_UP: 0.006, TEETH_LO: 0.006, LIP_UP: 0.010, LIP_LO: 0.010}
SKIN = (0.88, 0.71, 0.60)
COLOR = {SCLERA: (0.96, 0.96, 0.95), IRIS_P: (0.33, 0.22, 0.13), LID: (0.85, 0.67, 0.57),
         LOWLID: SKIN, BROW: (0.30, 0.20, 0.14), LIP_UP: (0.78, 0.38, 0.38),
         LIP_LO: (0.80, 0.42, 0.42), MOUTH: (0.30, 0.06, 0.08), TEETH_UP: (0.95, 0.94, 0.88),
         TEETH_LO: (0.93, 0.92, 0.86), TONGUE: (0.85, 0.42, 0.45), NECK: (0.83, 0.66, 0.56)}
HAIR, LASH, PUPIL = (0.24, 0.16, 0.11), (0.12, 0.08, 0.07), (0.05, 0.04, 0.04)


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _nose(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the nose above the ellipsoid: a ridge growing from the bridge to the tip."""
    t = np.clip((0.14 - y) / 0.22, 0.0, 1.0)  # 0 at the bridge, 1 at the tip (y = -0.08)
    below = np.minimum(y + 0.08, 0.0)
    width = 0.032 + 0.03 * t
    return 0.13 * t ** 1.5 * np.exp(-(below / 0.03) ** 2) * np.exp(-(x / width) ** 2)


def _surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z of the front face surface at face-plane (x, y)."""
    base = C * np.sqrt(np.clip(1.0 - (x / A) ** 2 - (y / B) ** 2, 0.0, None))
    return base + _nose(x, y)


class _Mesh:
    """Accumulates parts: vertices, triangles, colours and per-vertex (part, u, v) labels."""

    def __init__(self) -> None:
        self.verts, self.faces, self.colors = [], [], []
        self.part, self.u, self.v = [], [], []
        self.n = 0

    def add(self, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, part: int,
            u: np.ndarray, v: np.ndarray, outward: np.ndarray) -> None:
        tri = verts[faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flip = np.einsum("fk,fk->f", normal, outward[faces].mean(1)) < 0
        faces = np.where(flip[:, None], faces[:, ::-1], faces)  # counter-clockwise from outside
        self.verts.append(verts)
        self.faces.append(faces + self.n)
        self.colors.append(np.broadcast_to(colors, verts.shape).astype(np.float32))
        self.part.append(np.full(len(verts), part))
        self.u.append(u)
        self.v.append(v)
        self.n += len(verts)


def _grid(nu: int, nv: int, closed_u: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v) in [0, 1]^2 on a (nv+1) x (nu+1) lattice and its triangles (u wraps if closed)."""
    cols = nu if closed_u else nu + 1
    u, v = np.meshgrid(np.arange(cols) / nu, np.arange(nv + 1) / nv)
    idx = np.arange((nv + 1) * cols).reshape(nv + 1, cols)
    right = np.roll(idx, -1, axis=1) if closed_u else idx[:, 1:]
    left = idx if closed_u else idx[:, :-1]
    a, b, c, d = left[:-1], right[:-1], left[1:], right[1:]
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3),
                            np.stack([a, d, c], -1).reshape(-1, 3)])
    return u.ravel(), v.ravel(), faces


def _head(mesh: _Mesh) -> None:
    """Warped UV ellipsoid: dense near the face, sparse at the back."""
    nu, nv = 96, 72
    u, v, faces = _grid(nu, nv, closed_u=True)
    s = 2.0 * u - 1.0
    phi = np.pi * np.sign(s) * np.abs(s) ** 1.7  # 0 = front (+z)
    w = 2.0 * v - 1.0
    theta_c = 1.65  # face centre latitude (y ~ -0.06)
    aw = np.abs(w) ** 1.5
    theta = np.where(w < 0, theta_c * (1 - aw), theta_c + (np.pi - theta_c) * aw)
    x, y = A * np.sin(theta) * np.sin(phi), B * np.cos(theta)
    z = C * np.sin(theta) * np.cos(phi)
    z = z + np.where(z > 0, _nose(x, y), 0.0)
    verts = np.stack([x, y, z], -1)
    colors = np.tile(np.asarray(SKIN, np.float32), (len(verts), 1))
    soft = [_smooth((y - 0.47 + 0.12 * (x / A) ** 2) / 0.05 + 0.5),  # hairline, back, temples
            _smooth((-z - 0.05) / 0.1 + 0.5) * _smooth((y + 0.3) / 0.08 + 0.5),
            _smooth((0.2 - z) / 0.1 + 0.5) * _smooth((np.abs(x) - 0.42) / 0.05 + 0.5)
            * _smooth((y - 0.18) / 0.06 + 0.5)]
    hair = np.max(soft, axis=0)[:, None]
    colors = colors * (1 - hair) + np.asarray(HAIR, np.float32) * hair
    nostril = np.minimum(np.hypot(x - 0.028, y + 0.112), np.hypot(x + 0.028, y + 0.112)) < 0.016
    colors[nostril & (z > 0)] = (0.45, 0.28, 0.24)
    outward = np.stack([x / A ** 2, y / B ** 2, z / C ** 2], -1)
    mesh.add(verts, faces, colors, HEAD, x, y, outward)


def _neck(mesh: _Mesh) -> None:
    u, v, faces = _grid(32, 6, closed_u=True)
    a = 2 * np.pi * u
    verts = np.stack([0.24 * np.sin(a), -0.42 - 0.9 * v, 0.24 * np.cos(a) - 0.08], -1)
    mesh.add(verts, faces, np.asarray(COLOR[NECK]), NECK, u, v,
             np.stack([np.sin(a), 0 * a, np.cos(a)], -1))


def _decal(mesh: _Mesh, part: int, x: np.ndarray, y: np.ndarray, faces: np.ndarray,
           u: np.ndarray, v: np.ndarray, colors: np.ndarray | tuple | None = None,
           bulge: np.ndarray | float = 0.0) -> None:
    """A part laid on the face surface at face-plane (x, y), raised by its layer offset."""
    z = _surface(x, y) + OFFSET[part] + bulge
    verts = np.stack([x, y, z], -1)
    out = np.tile(np.asarray([0.0, 0.0, 1.0]), (len(x), 1))
    mesh.add(verts, faces, np.asarray(COLOR[part] if colors is None else colors), part, u, v,
             out)


def _features(mesh: _Mesh) -> None:
    """Eyes, lids, brows, lips, mouth interior, teeth, tongue (u, v: each part's own grid)."""
    for _, s in _SIDES:
        ex = s * EX
        r, a, faces = _grid(24, 6, closed_u=True)  # polar discs: u = angle, v = radius
        ang = 2 * np.pi * r
        _decal(mesh, SCLERA, ex + a * RX * np.cos(ang), EY + a * RY * np.sin(ang), faces,
               np.cos(ang) * a, np.sin(ang) * a)
        iris_col = np.where((a < 0.45)[:, None], PUPIL, COLOR[IRIS_P])
        _decal(mesh, IRIS_P, ex + a * IRIS * np.cos(ang), EY + a * IRIS * np.sin(ang), faces,
               np.cos(ang) * a, np.sin(ang) * a, iris_col)
        g, t, faces = _grid(16, 7)  # lids: u across (inner -1 .. outer +1), t top -> edge
        u = 2 * g - 1
        t = np.array([0, 0.25, 0.5, 0.7, 0.82, 0.9, 0.96, 1.0])[np.rint(t * 7).astype(int)]
        x = ex + s * u * RX * 1.02
        top, rest = EY + 1.25 * RY, EY + 0.55 * RY * np.sqrt(1 - u ** 2)
        lid_col = np.where((t >= 0.9)[:, None], LASH, COLOR[LID])
        _decal(mesh, LID, x, top - t * (top - rest), faces, u, t, lid_col)
        low_top = EY - RY * np.sqrt(np.clip(1 - u ** 2, 0, None))
        _decal(mesh, LOWLID, x, low_top - t * (low_top - (EY - 1.5 * RY)), faces, u, t)
        g, h, faces = _grid(16, 2)  # brows: u inner -> outer, w across the thickness
        u, w = 2 * g - 1, 2 * h - 1
        _decal(mesh, BROW, s * (BX + u * BHALF), BY + 0.025 * (1 - u ** 2) +
               w * BTHICK * (1 - 0.45 * (u + 1) / 2), faces, u, w)
    g, t, faces = _grid(24, 4)  # lips: u across the mouth, t from the mouth line outwards
    u = 2 * g - 1
    thick = LIP * (0.35 + 0.65 * (1 - u ** 2))
    bulge = 0.012 * (1 - u ** 2) * np.sin(np.pi * t)
    _decal(mesh, LIP_UP, u * MHALF, MY + 0.002 + t * thick, faces, u, t, bulge=bulge)
    _decal(mesh, LIP_LO, u * MHALF, MY - 0.002 - t * thick * 1.15, faces, u, t, bulge=bulge)
    g, h, faces = _grid(24, 4)  # interior: rows v = -1 (jaw side) .. +1 (upper lip side)
    u, w = 2 * g - 1, 2 * h - 1
    _decal(mesh, MOUTH, u * MHALF * 0.97, MY + w * 0.004 * (1 - u ** 2), faces, u, w)
    g, h, faces = _grid(12, 2)
    u = 2 * g - 1
    _decal(mesh, TEETH_UP, u * 0.11, MY + 0.002 - h * 0.022 * (1 - 0.5 * u ** 4), faces, u, h)
    _decal(mesh, TEETH_LO, u * 0.10, MY + h * 0.016 * (1 - 0.5 * u ** 4), faces, u, h)
    r, a, faces = _grid(16, 4, closed_u=True)
    ang = 2 * np.pi * r
    _decal(mesh, TONGUE, a * 0.07 * np.cos(ang), MY - 0.012 + a * 0.03 * np.sin(ang), faces,
           np.cos(ang) * a, np.sin(ang) * a)


class _Geo:
    """Rest vertices with their labels; helpers for the displacement fields below."""

    def __init__(self, mesh: _Mesh) -> None:
        self.p = np.concatenate(mesh.verts)
        self.part = np.concatenate(mesh.part)
        self.u = np.concatenate(mesh.u)
        self.v = np.concatenate(mesh.v)
        self.x, self.y, self.z = self.p.T

    def of(self, *parts: int) -> np.ndarray:
        return np.isin(self.part, parts).astype(np.float64)

    def gauss(self, cx: float, cy: float, r: float) -> np.ndarray:
        """Smooth bump on the front of the head (zero on parts and the back)."""
        front = _smooth(self.z / 0.25) * (self.part == HEAD)
        return front * np.exp(-((self.x - cx) ** 2 + (self.y - cy) ** 2) / r ** 2)

    def side(self, s: float) -> np.ndarray:
        return (np.sign(self.x) == s).astype(np.float64)

    def corner(self, s: float) -> np.ndarray:
        """Weight of the mouth corner on side s: lips and interior by u, skin by distance."""
        on = self.of(LIP_UP, LIP_LO, MOUTH) * np.clip(s * self.u, 0, 1) ** 1.5
        return on + self.gauss(s * MHALF, MY, 0.07)

    def jaw(self) -> np.ndarray:
        """How much each vertex follows the lower jaw (lower lip, lower teeth, chin skin)."""
        taper = 1 - 0.7 * np.abs(self.u) ** 2.5
        head = (self.part == HEAD) * _smooth((self.z + 0.15) / 0.3) * _smooth(
            (MY - self.y) / (0.02 + 0.2 * _smooth((np.abs(self.x) - 0.12) / 0.12)))
        mouth = self.of(MOUTH) * taper * (1 - (self.v + 1) / 2)
        return head + self.of(LIP_LO) * taper + mouth + self.of(TEETH_LO, TONGUE)

    def move(self, w: np.ndarray, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0
             ) -> np.ndarray:
        """Displacement ``w * (dx, dy, dz)``; parts laid on the face also follow its surface.

        Without the surface term an iris sliding towards the nose would sink under the eye
        white: the face bulges there by more than the gap between the two layers.
        """
        d = w[:, None] * np.asarray([dx, dy, dz])
        laid = ~np.isin(self.part, (HEAD, NECK)) & (w != 0)
        x, y = self.x[laid], self.y[laid]
        d[laid, 2] += _surface(x + d[laid, 0], y + d[laid, 1]) - _surface(x, y)
        return d

    def jaw_open(self, w: np.ndarray) -> np.ndarray:
        py, pz = JAW_PIVOT  # linearised rotation about the x axis through the jaw pivot
        d = np.stack([0 * self.x, -JAW_ALPHA * (self.z - pz), JAW_ALPHA * (self.y - py)], -1)
        return w[:, None] * d


def _lid(g: _Geo, s: float, amount: float) -> np.ndarray:
    """Upper lid of side s slides down by ``amount`` of the way to closed (negative: opens)."""
    rest = EY + 0.55 * RY * np.sqrt(np.clip(1 - g.u ** 2, 0, None))
    closed = EY - 1.05 * RY * np.sqrt(np.clip(1 - g.u ** 2, 0, None))
    w = g.of(LID) * g.side(s) * g.v
    return g.move(w * (closed - rest) * amount, dy=1.0)


def _basis(g: _Geo) -> dict[str, np.ndarray]:
    """The 52 displacement fields (coefficient 1 = the full expression)."""
    f: dict[str, np.ndarray] = {}
    lips, mouth = g.of(LIP_UP, LIP_LO, MOUTH), g.of(LIP_UP, LIP_LO, MOUTH, TONGUE)
    for name, s in _SIDES:
        iris, brow = g.of(IRIS_P) * g.side(s), g.of(BROW) * g.side(s)
        f[f"eyeBlink{name}"] = _lid(g, s, 1.0)
        f[f"eyeLookDown{name}"] = g.move(iris, dy=-0.02) + _lid(g, s, 0.25)
        f[f"eyeLookIn{name}"] = g.move(iris, dx=-s * 0.03)
        f[f"eyeLookOut{name}"] = g.move(iris, dx=s * 0.03)
        f[f"eyeLookUp{name}"] = g.move(iris, dy=0.014) + _lid(g, s, -0.3)
        f[f"eyeSquint{name}"] = _lid(g, s, 0.35) + g.move(g.gauss(s * EX, EY - 0.09, 0.06) +
                                                         g.of(LOWLID) * g.side(s), dy=0.012)
        f[f"eyeWide{name}"] = _lid(g, s, -0.4) + g.move(brow, dy=0.015)
        corner = g.corner(s)
        f[f"mouthSmile{name}"] = (g.move(corner, dx=s * 0.025, dy=0.04, dz=-0.01)
                                  + g.move(g.gauss(s * 0.26, -0.15, 0.09), dy=0.02, dz=0.012))
        f[f"mouthFrown{name}"] = g.move(corner, dy=-0.035)
        f[f"mouthDimple{name}"] = g.move(corner, dx=s * 0.02, dy=0.005, dz=-0.015)
        f[f"mouthStretch{name}"] = g.move(corner, dx=s * 0.035, dy=-0.012)
        half = np.clip(0.5 + 0.6 * s * g.u, 0, 1)
        thick = LIP * (0.35 + 0.65 * (1 - g.u ** 2)) * g.v
        f[f"mouthPress{name}"] = g.move(half * thick * 0.4 * (g.of(LIP_LO) - g.of(LIP_UP)), dy=1)
        low = (g.of(LIP_LO) + g.of(MOUTH) * (g.v < 0)) * half
        f[f"mouthLowerDown{name}"] = g.move(low, dy=-0.03)
        up = (g.of(LIP_UP) + g.of(MOUTH) * (g.v > 0)) * half
        f[f"mouthUpperUp{name}"] = g.move(up, dy=0.025)
        f[f"browDown{name}"] = (g.move(brow, dx=-s * 0.01, dy=-0.03)
                                + g.move(g.gauss(s * BX, BY, 0.08), dy=-0.012))
        outer = brow * np.clip((1 + g.u) / 2, 0, 1) ** 1.2
        f[f"browOuterUp{name}"] = g.move(outer, dy=0.045)
        f[f"cheekSquint{name}"] = g.move(g.gauss(s * 0.24, -0.04, 0.08) + 0.5 * g.of(LOWLID)
                                       * g.side(s), dy=0.022)
        f[f"noseSneer{name}"] = (g.move(g.gauss(s * 0.05, -0.05, 0.05), dy=0.02)
                                 + g.move(brow * np.clip((1 - g.u) / 2, 0, 1), dy=-0.01))
    jaw = g.jaw()
    f["jawForward"] = g.move(jaw, dz=0.05)
    f["jawLeft"] = g.move(jaw, dx=0.05)
    f["jawRight"] = g.move(jaw, dx=-0.05)
    f["jawOpen"] = g.jaw_open(jaw)
    lower = (g.of(LIP_LO) + g.of(MOUTH) * (g.v < 0)) * (1 - 0.7 * np.abs(g.u) ** 2.5)
    f["mouthClose"] = -g.jaw_open(lower)
    f["mouthFunnel"] = (g.move(lips * (1 - g.u ** 2), dz=0.03) + g.move(lips * g.x, dx=-0.25)
                        + g.move(g.of(MOUTH) * g.v, dy=0.012) + g.move(g.of(LIP_LO), dy=-0.01)
                        + g.move(g.of(LIP_UP), dy=0.01))
    f["mouthPucker"] = (g.move(lips * g.x, dx=-0.35) + g.move(lips * (1 - g.u ** 2), dz=0.035)
                        + g.move(g.gauss(0, MY, 0.12), dz=0.015))
    f["mouthLeft"] = g.move(mouth + g.gauss(0, MY, 0.1), dx=0.04)
    f["mouthRight"] = g.move(mouth + g.gauss(0, MY, 0.1), dx=-0.04)
    thick = LIP * (0.35 + 0.65 * (1 - g.u ** 2)) * g.v
    for part, sign, name in ((LIP_LO, 1, "Lower"), (LIP_UP, -1, "Upper")):  # lips roll in
        f[f"mouthRoll{name}"] = (g.move(g.of(part) * thick * 0.6, dy=sign)
                                 + g.move(g.of(part), dz=-0.005))
    f["mouthShrugLower"] = g.move(g.of(LIP_LO) + g.gauss(0, MY - 0.15, 0.1), dy=0.02, dz=0.01)
    f["mouthShrugUpper"] = g.move(g.of(LIP_UP), dy=0.012)
    inner = g.of(BROW) * np.clip((1 - g.u) / 2, 0, 1) ** 1.2
    f["browInnerUp"] = g.move(inner, dy=0.045) + g.move(g.gauss(0, 0.33, 0.12), dy=0.01)
    puff = g.gauss(0.27, -0.2, 0.12) + g.gauss(-0.27, -0.2, 0.12)
    f["cheekPuff"] = g.move(puff * np.sign(g.x), dx=0.05) + g.move(puff, dz=0.04)
    f["tongueOut"] = g.move(g.of(TONGUE), dy=-0.05, dz=0.03) + g.move(g.of(TONGUE) * g.v, dy=0.02)
    return f


def procedural_face(*, expression_scale: float = 1.0,
                    rotation_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> FaceModel:
    """Build the procedural head.

    Args:
        expression_scale: multiplies every blendshape (1 = coefficient 1 is the full ARKit-style
            expression); raise it to exaggerate small coefficients.
        rotation_offset: Euler radians added to each frame's rotation (see `FaceModel`).

    Returns:
        A `FaceModel` (~10k vertices) with ``expression_names`` = `EXPRESSION_NAMES`.
    """
    if not np.isfinite(expression_scale):
        raise ValueError(f"expression_scale must be finite, got {expression_scale}")
    mesh = _Mesh()
    _head(mesh)
    _neck(mesh)
    _features(mesh)
    geo = _Geo(mesh)
    fields = _basis(geo)
    basis = np.stack([fields[n] for n in EXPRESSION_NAMES]).astype(np.float32) * expression_scale
    model = FaceModel(geo.p, basis, np.concatenate(mesh.faces), np.concatenate(mesh.colors),
                      name="procedural", rotation_offset=rotation_offset, oriented=True)
    model.expression_names = EXPRESSION_NAMES
    return model
