"""The vectorised z-buffer rasterizer against a per-pixel reference, and the shader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orchestrator.render import LambertShader, MeshRasterizer, RasterSettings, ShaderSettings
from orchestrator.render.raster import PerspectiveCamera


def reference_faces(verts: np.ndarray, faces: np.ndarray, settings: RasterSettings) -> np.ndarray:
    """Plain path: for every pixel centre and triangle, inside test + perspective depth."""
    cam = PerspectiveCamera(settings)
    p = cam.project(torch.as_tensor(verts)[None].double())[0].numpy()
    size = cam.size
    out = np.full((size, size), -1)
    best = np.full((size, size), np.inf)
    for f, (a, b, c) in enumerate(faces):
        (xa, ya, da), (xb, yb, db), (xc, yc, dc) = p[a], p[b], p[c]
        area = (xb - xa) * (yc - ya) - (yb - ya) * (xc - xa)
        if abs(area) < 1e-10:
            continue
        for y in range(size):
            for x in range(size):
                px, py = x + 0.5, y + 0.5
                w0 = ((xc - xb) * (py - yb) - (yc - yb) * (px - xb)) / area
                w1 = ((xa - xc) * (py - yc) - (ya - yc) * (px - xc)) / area
                w2 = 1 - w0 - w1
                if min(w0, w1, w2) < -1e-6:
                    continue
                depth = 1.0 / (w0 / da + w1 / db + w2 / dc)
                if depth < best[y, x]:
                    best[y, x], out[y, x] = depth, f
    return out


def test_rasterizer_matches_the_per_pixel_reference_on_overlapping_triangles():
    rng = np.random.default_rng(3)
    n = 12
    centres = rng.uniform(-0.6, 0.6, (n, 1, 3)) * np.array([1, 1, 2])
    verts = (centres + rng.normal(0, 0.35, (n, 3, 3))).reshape(-1, 3).astype(np.float32)
    faces = np.arange(3 * n).reshape(n, 3)
    settings = RasterSettings(image_size=24, supersample=1)
    frags = MeshRasterizer(settings)(torch.from_numpy(verts)[None], torch.from_numpy(faces))
    expected = reference_faces(verts, faces, settings)
    got = frags.face[0].numpy()
    assert (expected >= 0).mean() > 0.15  # the scene covers a good part of the image
    assert len(np.unique(expected)) > 6  # with several triangles visible
    # pixel centres exactly on an edge may go either way; allow a handful
    assert (got != expected).sum() <= 3
    covered = got >= 0
    torch.testing.assert_close(frags.bary[0][torch.from_numpy(covered)].sum(-1),
                               torch.ones(int(covered.sum())), atol=1e-5, rtol=0)


def test_nearer_triangle_wins_and_back_faces_can_be_culled():
    # two parallel squares-worth of triangles, the second one nearer the camera (larger z)
    far = np.array([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], np.float32)
    near = far * np.array([0.5, 0.5, 1], np.float32) + np.array([0, 0, 1], np.float32)
    verts = torch.from_numpy(np.concatenate([far, near]))[None]
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    settings = RasterSettings(image_size=32, supersample=1)
    frags = MeshRasterizer(settings)(verts, faces)
    c = 16
    assert frags.face[0, c, c] == 1
    assert frags.depth[0, c, c] == pytest.approx(settings.camera_distance - 1.0, rel=1e-4)
    # counter-clockwise seen from +z (the camera): kept; reversed winding: culled
    kept = MeshRasterizer(settings)(verts, faces, cull_backfaces=True)
    culled = MeshRasterizer(settings)(verts, faces.flip(1), cull_backfaces=True)
    assert (kept.face[0] >= 0).sum() > 0 and (culled.face[0] >= 0).sum() == 0


def test_shader_lights_faces_towards_the_light_brighter():
    tri = np.array([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], np.float32)
    tilted = tri.copy()
    tilted[:, 2] = tri[:, 0] * 0.8  # turned away from a light straight above the camera
    settings = RasterSettings(image_size=16, supersample=1)
    shader = LambertShader(ShaderSettings(light_direction=(0.0, 0.0, 1.0), ambient=0.0,
                                          diffuse=1.0))
    faces = torch.tensor([[0, 1, 2]])
    colors = torch.ones(3, 3)
    out = []
    for v in (tri, tilted):
        verts = torch.from_numpy(v)[None]
        img = shader(MeshRasterizer(settings)(verts, faces), verts, faces, colors)
        out.append(img[0, 8, 8, 0].item())
    assert out[0] == pytest.approx(1.0, abs=1e-5)
    assert out[1] == pytest.approx(1 / np.sqrt(1 + 0.8 ** 2), abs=1e-3)


def test_raster_settings_are_checked():
    with pytest.raises(ValueError, match="image_size"):
        RasterSettings(image_size=2)
