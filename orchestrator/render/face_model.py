"""A linear 3DMM face: mean shape + expression blendshapes, posed by the 58-d coefficients.

Both face models reactune renders are this class: the FaceVerse v2 model read from the user's
licence-gated file (`orchestrator.render.faceverse`) and the procedural head shipped in code
(`orchestrator.render.procedural`). Per frame, with ``c`` the de-normalised 58-d coefficients::

    V     = mean + sum_k c[k] * basis[k]          k < 52 (schema.COEF_EXP)
    R     = Rz(c[54]) @ Ry(c[53]) @ Rx(c[52])     Euler radians (schema.COEF_ROT)
    V'    = V @ R^T + c[55:58]                    translation (schema.COEF_TRANS)

which is FaceVerse's ``rigid_transform(vs, compute_rotation_matrix(angles), t)``: its
``compute_rotation_matrix`` returns ``(Rz Ry Rx)^T`` and right-multiplies row vectors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from react_data import schema

__all__ = ["FaceModel", "denormalize", "euler_matrix"]


def euler_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``Rz @ Ry @ Rx`` from Euler angles (FaceVerse's convention).

    Args:
        angles: (..., 3) rotations about x, y, z in radians.

    Returns:
        (..., 3, 3) matrices that rotate column vectors (``v' = R @ v``).
    """
    sx, sy, sz = torch.sin(angles).unbind(-1)
    cx, cy, cz = torch.cos(angles).unbind(-1)
    one, zero = torch.ones_like(sx), torch.zeros_like(sx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1)
    shape = (*angles.shape[:-1], 3, 3)
    return rz.reshape(shape) @ ry.reshape(shape) @ rx.reshape(shape)


def denormalize(coef: np.ndarray | torch.Tensor, mean: np.ndarray | None,
                std: np.ndarray | None) -> np.ndarray:
    """Undo the dataset's 3DMM normalisation: ``coef * std + mean`` (each optional).

    Bundles and eval sets carry coefficients normalised with the train statistics of the
    manifest (``stats["coef"]``); the face models take raw FaceVerse coefficients.

    Args:
        coef: (..., 58) normalised coefficients.
        mean: (58,) train mean, or None (the coefficients were not centred).
        std: (58,) train std, or None (not scaled).

    Returns:
        (..., 58) float32 raw coefficients.
    """
    x = coef.detach().cpu().numpy() if isinstance(coef, torch.Tensor) else np.asarray(coef)
    x = x.astype(np.float32)
    if x.shape[-1] != schema.COEF_DIM:
        raise ValueError(f"coefficients must end in {schema.COEF_DIM} (3DMM) values, got shape "
                         f"{x.shape}")
    for name, v in (("std", std), ("mean", mean)):
        if v is not None and np.shape(v) != (schema.COEF_DIM,):
            raise ValueError(f"coefficient {name} must have shape ({schema.COEF_DIM},), got "
                             f"{np.shape(v)}; pass the manifest's stats['coef'] {name}")
    if std is not None:
        x = x * np.asarray(std, np.float32)
    if mean is not None:
        x = x + np.asarray(mean, np.float32)
    return x


class FaceModel(nn.Module):
    """Mean shape + 52 expression blendshapes + per-vertex colours, posed by 3DMM coefficients.

    Models never own a device: move it with ``.to(device)``; coefficients follow the buffers.

    Args:
        mean: (V, 3) rest vertices (identity already applied).
        basis: (52, V, 3) expression displacement per unit coefficient.
        faces: (F, 3) vertex indices of the triangles.
        colors: (V, 3) albedo in [0, 1].
        name: shown in logs and render summaries.
        rotation_offset: (3,) Euler radians added to every frame's rotation (e.g. ``(pi, 0, 0)``
            to view data fitted in a frame where the face looks down -z).
        oriented: every triangle is counter-clockwise seen from outside, so renderers may cull
            back faces (False for meshes of unknown winding).
    """

    def __init__(self, mean: np.ndarray, basis: np.ndarray, faces: np.ndarray,
                 colors: np.ndarray, *, name: str,
                 rotation_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 oriented: bool = False) -> None:
        super().__init__()
        mean = np.asarray(mean, np.float32)
        basis = np.asarray(basis, np.float32)
        faces = np.asarray(faces)
        colors = np.asarray(colors, np.float32)
        v = mean.shape[0]
        if mean.shape != (v, 3):
            raise ValueError(f"{name}: mean shape must be (V, 3), got {mean.shape}")
        if basis.shape != (schema.N_COEF_EXP, v, 3):
            raise ValueError(f"{name}: expression basis must be ({schema.N_COEF_EXP}, {v}, 3), "
                             f"got {basis.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
            raise ValueError(f"{name}: faces must be (F, 3) integers, got {faces.shape} "
                             f"{faces.dtype}")
        if faces.size and (faces.min() < 0 or faces.max() >= v):
            raise ValueError(f"{name}: face indices must be in [0, {v}), got "
                             f"[{faces.min()}, {faces.max()}]")
        if colors.shape != (v, 3):
            raise ValueError(f"{name}: colors must be (V, 3), got {colors.shape}")
        self.name = name
        self.oriented = bool(oriented)
        self.register_buffer("mean", torch.from_numpy(mean), persistent=False)
        self.register_buffer("basis", torch.from_numpy(basis.reshape(schema.N_COEF_EXP, -1)),
                             persistent=False)
        self.register_buffer("faces", torch.from_numpy(faces.astype(np.int64)), persistent=False)
        self.register_buffer("colors", torch.from_numpy(colors), persistent=False)
        self.register_buffer("rotation_offset", torch.tensor(rotation_offset, dtype=torch.float32),
                             persistent=False)

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    def shape(self, expression: torch.Tensor) -> torch.Tensor:
        """Unposed vertices: (T, 52) expression coefficients -> (T, V, 3)."""
        flat = expression.to(self.basis) @ self.basis  # (T, V*3)
        return self.mean + flat.view(-1, self.num_vertices, 3)

    def forward(self, coef: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Posed vertices of each frame.

        Args:
            coef: (T, 58) raw (de-normalised) coefficients.

        Returns:
            (T, V, 3) world coordinates (the camera looks down -z from z = +distance).
        """
        coef = torch.as_tensor(coef, dtype=torch.float32, device=self.mean.device)
        if coef.ndim != 2 or coef.shape[1] != schema.COEF_DIM:
            raise ValueError(f"{self.name}: coefficients must be (T, {schema.COEF_DIM}), got "
                             f"{tuple(coef.shape)}")
        verts = self.shape(coef[:, schema.COEF_EXP])
        rot = euler_matrix(coef[:, schema.COEF_ROT] + self.rotation_offset)  # (T, 3, 3)
        return verts @ rot.transpose(1, 2) + coef[:, None, schema.COEF_TRANS]
