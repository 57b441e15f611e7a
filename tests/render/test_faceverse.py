"""FaceVerse v2 model files: loading a file of the right structure, and clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from orchestrator.render import load_faceverse

V = 40


def write_model(path, **override):
    rng = np.random.default_rng(0)
    d = {"meanshape": rng.normal(0, 0.3, (1, 3 * V)).astype(np.float32),
         "idBase": rng.normal(0, 0.01, (3 * V, 150)).astype(np.float32),
         "exBase": rng.normal(0, 0.01, (3 * V, 52)).astype(np.float32),
         "tri": rng.integers(0, V, (60, 3)), "meantex": np.full((1, 3 * V), 128.0),
         "select_id": np.arange(0, V, 2), "tri_select": rng.integers(0, V // 2, (20, 3))}
    d.update(override)
    for k in [k for k, v in d.items() if v is None]:
        del d[k]
    np.save(path, np.array(d, dtype=object), allow_pickle=True)
    return path, d


def test_loads_a_faceverse_dict_and_applies_identity_and_expression(tmp_path):
    path, d = write_model(tmp_path / "faceverse_simple_v2.npy")
    ident = np.linspace(-1, 1, 199).astype(np.float32)  # like reference_full.npy: [:150] used
    np.save(tmp_path / "reference_full.npy", ident)
    m = load_faceverse(path, identity=tmp_path / "reference_full.npy")
    assert m.num_vertices == V and tuple(m.faces.shape) == (60, 3)
    expected = (d["meanshape"].reshape(-1) + d["idBase"] @ ident[:150]).reshape(V, 3)
    c = torch.zeros(2, 58)
    c[1, 3] = 2.0  # expression 3
    verts = m(c)
    np.testing.assert_allclose(verts[0].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose((verts[1] - verts[0]).numpy(), 2 * d["exBase"][:, 3].reshape(V, 3),
                               atol=1e-5)
    assert torch.allclose(m.colors, torch.full_like(m.colors, 200 / 255))  # challenge grey
    textured = load_faceverse(path, textured=True)
    assert torch.allclose(textured.colors, torch.full_like(m.colors, 128 / 255))
    small = load_faceverse(path, simplified=True)
    assert small.num_vertices == V // 2 and tuple(small.faces.shape) == (20, 3)


def test_missing_or_invalid_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="render.faceverse"):
        load_faceverse(tmp_path / "nope.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_faceverse(tmp_path / "text.npy")
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ValueError, match="expected FaceVerse's dict"):
        load_faceverse(tmp_path / "array.npy")
    path, _ = write_model(tmp_path / "nokeys.npy", exBase=None)
    with pytest.raises(ValueError, match=r"lacks the FaceVerse key\(s\) \['exBase'\]"):
        load_faceverse(path)
    path, _ = write_model(tmp_path / "shape.npy", exBase=np.zeros((3 * V, 40)))
    with pytest.raises(ValueError, match=r"'exBase' must have shape \(120, 52\)"):
        load_faceverse(path)
    path, _ = write_model(tmp_path / "tri.npy", tri=np.full((4, 3), V + 5))
    with pytest.raises(ValueError, match="triangles"):
        load_faceverse(path)
    path, _ = write_model(tmp_path / "nosel.npy", tri_select=None)
    with pytest.raises(ValueError, match="simplified=True needs"):
        load_faceverse(path, simplified=True)
    good, _ = write_model(tmp_path / "good.npy")
    with pytest.raises(FileNotFoundError, match="identity file"):
        load_faceverse(good, identity=tmp_path / "missing_identity.npy")
    with pytest.raises(ValueError, match="at least 150"):
        load_faceverse(good, identity=np.zeros(10))
    with open(tmp_path / "pickled.npy", "wb") as f:  # np.load reads plain pickles too
        pickle.dump({"meanshape": 1}, f)
    with pytest.raises(ValueError, match="lacks the FaceVerse key"):
        load_faceverse(tmp_path / "pickled.npy")
