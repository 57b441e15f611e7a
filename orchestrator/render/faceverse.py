"""Load the FaceVerse v2 model (licence-gated; the user gives the file) as a `FaceModel`.

``faceverse_simple_v2.npy`` is a pickled dict (read with ``np.load(allow_pickle=True)``, so only
load a file you trust). reactune uses:

    meanshape  (3V,) or (1, 3V)   mean vertices, flattened x0 y0 z0 x1 ...
    idBase     (3V, 150)          identity basis
    exBase     (3V, 52)           expression basis
    tri        (F, 3)             triangles (0-based vertex indices)
    meantex    (3V,) optional     mean albedo, 0..255 (used for colour when ``textured``)

and, with ``simplified=True``, ``select_id`` (vertex ids) and ``tri_select`` (triangles over
them), FaceVerse's own simplified mesh. The identity is fixed for a whole render (FaceVerse's
renderer uses ``reference_full.npy[:150]``); rendering is untextured grey by default, like the
challenge's mesh previews.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from orchestrator.render.face_model import FaceModel
from react_data import schema

__all__ = ["FACEVERSE_KEYS", "ID_DIM", "load_faceverse"]

FACEVERSE_KEYS = ("meanshape", "idBase", "exBase", "tri")
ID_DIM = 150  # FaceVerse v2 identity coefficients
GREY = 200.0 / 255.0  # the challenge renders the mesh with constant albedo 200


def _read_dict(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"FaceVerse model file {path} does not exist; download faceverse_simple_v2.npy "
            f"from the FaceVerse authors (licence-gated) and pass render.faceverse=<its path>, "
            f"or leave render.faceverse unset to use the built-in procedural head")
    try:
        obj = np.load(path, allow_pickle=True)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"{path} is not a readable .npy file ({type(e).__name__}: {e}); "
                         f"render.faceverse must be FaceVerse's faceverse_simple_v2.npy") from e
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, expected FaceVerse's dict of "
                         f"arrays ({', '.join(FACEVERSE_KEYS)}, ...); is it "
                         f"faceverse_simple_v2.npy?")
    missing = [k for k in FACEVERSE_KEYS if k not in obj]
    if missing:
        raise ValueError(f"{path} lacks the FaceVerse key(s) {missing} (has {sorted(obj)}); "
                         f"render.faceverse must be FaceVerse v2's faceverse_simple_v2.npy")
    return obj


def _array(d: dict, key: str, path: Path, ndim: int) -> np.ndarray:
    a = np.asarray(d[key])
    if a.ndim != ndim or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{path}: {key!r} must be a {ndim}-d numeric array, got shape "
                         f"{a.shape} dtype {a.dtype}")
    return a


def load_faceverse(path: str | Path, *, identity: np.ndarray | str | Path | None = None,
                   simplified: bool = False, textured: bool = False,
                   rotation_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> FaceModel:
    """Read a FaceVerse v2 model file.

    Args:
        path: ``faceverse_simple_v2.npy``.
        identity: (150,) identity coefficients (or a .npy file whose first 150 values are
            them, like the challenge's ``reference_full.npy``); None = the mean identity.
        simplified: use FaceVerse's simplified mesh (``select_id`` / ``tri_select``).
        textured: colour vertices with ``meantex`` instead of the challenge's flat grey.
        rotation_offset: Euler radians added to every frame's rotation.

    Returns:
        A `FaceModel` named "faceverse".

    Raises:
        FileNotFoundError: no such file (or identity file).
        ValueError: not a FaceVerse dict, missing keys, or inconsistent shapes (the message
            names the key, the expected and the found shape).
    """
    path = Path(path).expanduser()
    d = _read_dict(path)
    mean = np.asarray(d["meanshape"])
    if not np.issubdtype(mean.dtype, np.number):
        raise ValueError(f"{path}: 'meanshape' must be numeric, got dtype {mean.dtype}")
    mean = mean.reshape(-1)
    if mean.size % 3:
        raise ValueError(f"{path}: 'meanshape' has {mean.size} values, not a multiple of 3 "
                         f"(x, y, z per vertex)")
    n3 = mean.size
    ex = _array(d, "exBase", path, 2)
    id_base = _array(d, "idBase", path, 2)
    for key, arr, cols in (("exBase", ex, schema.N_COEF_EXP), ("idBase", id_base, ID_DIM)):
        if arr.shape != (n3, cols):
            raise ValueError(f"{path}: {key!r} must have shape ({n3}, {cols}) for "
                             f"{n3 // 3} vertices, got {arr.shape}")
    if simplified and not {"tri_select", "select_id"} <= set(d):
        raise ValueError(f"{path}: simplified=True needs 'tri_select' and 'select_id', which "
                         f"this file lacks; use simplified=False")
    tri = _array(d, "tri_select" if simplified else "tri", path, 2)
    if identity is None:
        id_coef = np.zeros(ID_DIM, np.float32)
    else:
        id_coef = _identity(identity)
    shape = mean.astype(np.float32) + id_base.astype(np.float32) @ id_coef
    verts = shape.reshape(-1, 3)
    basis = ex.astype(np.float32).T.reshape(schema.N_COEF_EXP, -1, 3)  # (52, V, 3)
    if textured and "meantex" in d:
        colors = np.asarray(d["meantex"], np.float32).reshape(-1, 3) / 255.0
    else:
        colors = np.full_like(verts, GREY)
    if simplified:
        sel = np.asarray(d["select_id"], np.int64).reshape(-1)
        verts, basis, colors = verts[sel], basis[:, sel], colors[sel]
    tri = tri.astype(np.int64)
    if tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= len(verts):
        raise ValueError(f"{path}: triangles must be (F, 3) indices in [0, {len(verts)}), got "
                         f"shape {tri.shape} range [{tri.min()}, {tri.max()}]")
    return FaceModel(verts, basis, tri, colors, name="faceverse", rotation_offset=rotation_offset)


def _identity(identity: np.ndarray | str | Path) -> np.ndarray:
    if isinstance(identity, (str, Path)):
        p = Path(identity).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"identity file {p} does not exist; pass the challenge's "
                                    f"reference_full.npy (first 150 values) or leave it unset")
        identity = np.load(p, allow_pickle=False)
    flat = np.asarray(identity, np.float32).reshape(-1)
    if flat.size < ID_DIM:
        raise ValueError(f"identity needs at least {ID_DIM} values (FaceVerse v2 identity), got "
                         f"{flat.size}")
    return flat[:ID_DIM]
