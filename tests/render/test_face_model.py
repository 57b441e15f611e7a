"""The 3DMM face model: pose convention, de-normalisation and the procedural head's renders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from orchestrator.render import (
    EXPRESSION_NAMES,
    MeshRenderer,
    RasterSettings,
    ShaderSettings,
    denormalize,
    euler_matrix,
    procedural_face,
)
from react_data import schema

SIZE = 96


@pytest.fixture(scope="module")
def face():
    return procedural_face()


@pytest.fixture(scope="module")
def renderer():
    # frontal light: the rest face should then render mirror-symmetric
    return MeshRenderer(RasterSettings(image_size=SIZE, supersample=1),
                        ShaderSettings(light_direction=(0.0, 0.0, 1.0)))


def coef(**kw: float) -> np.ndarray:
    c = np.zeros(schema.COEF_DIM, np.float32)
    for k, v in kw.items():
        if k in ("rx", "ry", "rz"):
            c[schema.COEF_ROT.start + "xyz".index(k[1])] = v
        elif k in ("tx", "ty", "tz"):
            c[schema.COEF_TRANS.start + "xyz".index(k[1])] = v
        else:
            c[EXPRESSION_NAMES.index(k)] = v
    return c


def test_euler_matrix_is_rz_ry_rx_and_orthonormal():
    a = torch.tensor([[0.3, -0.7, 1.1]])
    r = euler_matrix(a)[0]
    def rot(axis: int, t: float) -> torch.Tensor:
        c, s = math.cos(t), math.sin(t)
        m = torch.eye(3)
        i, j = [(1, 2), (0, 2), (0, 1)][axis]
        m[i, i], m[j, j] = c, c
        m[i, j], m[j, i] = (-s, s) if axis != 1 else (s, -s)
        return m
    expected = rot(2, 1.1) @ rot(1, -0.7) @ rot(0, 0.3)
    torch.testing.assert_close(r, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)


def test_pose_applies_rotation_then_translation(face):
    rest = face(coef()[None])[0]
    posed = face(coef(ry=0.4, tx=0.1, tz=-0.2)[None])[0]
    rot = euler_matrix(torch.tensor([[0.0, 0.4, 0.0]]))[0]
    torch.testing.assert_close(posed, rest @ rot.T + torch.tensor([0.1, 0.0, -0.2]),
                               atol=1e-5, rtol=0)


def test_denormalize_scales_then_shifts_and_checks_shapes():
    x = np.ones((2, 3, schema.COEF_DIM), np.float32)
    mean, std = np.full(58, 0.5, np.float32), np.full(58, 2.0, np.float32)
    np.testing.assert_allclose(denormalize(x, mean, std), 2.5)
    np.testing.assert_allclose(denormalize(torch.ones(4, 58), None, None), 1.0)
    with pytest.raises(ValueError, match="58"):
        denormalize(np.ones((3, 57)), None, None)
    with pytest.raises(ValueError, match="std"):
        denormalize(x, mean, np.ones(3))


def test_procedural_face_renders_a_non_blank_symmetric_face_at_rest(face, renderer):
    img = renderer(face, coef()[None])[0].astype(float)
    assert img.shape == (SIZE, SIZE, 3)
    covered = (img.sum(-1) > 0).mean()
    assert 0.3 < covered < 0.9  # a head, not an empty or a filled frame
    assert img.std() > 20
    mirror = np.abs(img - img[:, ::-1]).mean()
    assert mirror < 0.1 * img.mean()  # the head is built symmetric; sampling differs a little


def test_two_expressions_give_different_images(face, renderer):
    a = renderer(face, np.stack([coef(), coef(jawOpen=1.0), coef(mouthSmileLeft=1.0,
                                                                mouthSmileRight=1.0)]))
    a = a.astype(float)
    assert np.abs(a[0] - a[1]).mean() > 0.5
    assert np.abs(a[0] - a[2]).mean() > 0.2
    assert np.abs(a[1] - a[2]).mean() > 0.5
    # the open jaw shows the dark mouth interior below the mouth line: more dark-red pixels
    def mouth_dark(img: np.ndarray) -> int:
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        return int(((r > 40) & (r < 120) & (g < 40) & (b < 50)).sum())
    assert mouth_dark(a[1]) > mouth_dark(a[0]) + 10


def test_every_expression_coefficient_moves_the_face(face):
    rest = face(coef()[None])[0]
    moved = face(np.stack([coef(**{n: 1.0}) for n in EXPRESSION_NAMES]))
    largest = (moved - rest).norm(dim=-1).max(dim=-1).values  # (52,) biggest vertex shift
    still = [n for n, d in zip(EXPRESSION_NAMES, largest.tolist(), strict=True) if d < 0.01]
    assert still == []  # 0.01 = ~1.5 px at 224 px: every shape is visible


def test_rotation_and_translation_move_the_silhouette(face, renderer):
    imgs = renderer(face, np.stack([coef(), coef(rz=0.6), coef(tx=0.2), coef(tz=-3.0),
                                    coef(ry=0.6)]))
    masks = imgs.sum(-1) > 0
    cx = [np.nonzero(m)[1].mean() for m in masks]
    assert abs(cx[2] - cx[0]) > 1.5  # translation along x shifts the head sideways
    assert (masks[1] != masks[0]).mean() > 0.02  # rolling the oval head changes its outline
    assert masks[3].sum() < 0.8 * masks[0].sum()  # moved away from the camera: smaller
    assert np.abs(imgs[4].astype(float) - imgs[0]).mean() > 3  # turned: the face slides over


def test_expression_scale_and_bad_coefficients(face):
    big = procedural_face(expression_scale=2.0)
    d1 = face(coef(jawOpen=1.0)[None]) - face(coef()[None])
    d2 = big(coef(jawOpen=1.0)[None]) - big(coef()[None])
    torch.testing.assert_close(d2, 2 * d1, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="58"):
        face(np.zeros((3, 50)))
