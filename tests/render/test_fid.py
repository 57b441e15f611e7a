"""Fréchet distance, the Inception feature-extractor file, and the FID over frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics.realism import frechet_distance as metrics_frechet
from orchestrator.render import fid as fid_mod
from orchestrator.render.fid import feature_stats, frechet_distance, load_feature_extractor


def test_frechet_distance_closed_forms():
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(0)
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]),
                            np.array([[1.0]])) == pytest.approx(4 + 1)


def test_frechet_distance_agrees_with_the_metrics_package():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(0.3, 1.5, size=(150, 6))
    got = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert got == pytest.approx(metrics_frechet(*feature_stats(a), *feature_stats(b)), rel=1e-6)
    with pytest.raises(ValueError, match=r"\(D,\) and \(D, D\)"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(3))


class _ColourStats(torch.nn.Module):
    """A stand-in feature extractor: per-channel means and stds of the image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)


def test_fid_with_an_exported_extractor(tmp_path):
    path = tmp_path / "extractor.pt2"
    batch = torch.export.Dim("batch", min=1, max=4096)
    ep = torch.export.export(_ColourStats(), (torch.rand(2, 3, 16, 16),),
                             dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, str(path))
    ex = load_feature_extractor(path)
    rng = np.random.default_rng(1)
    real = rng.integers(0, 255, (60, 16, 16, 3), dtype=np.uint8)
    same = fid_mod.fid(ex, real, real.copy(), stride=1)
    darker = fid_mod.fid(ex, real, (real // 3).astype(np.uint8), stride=1)
    assert same == pytest.approx(0, abs=1e-6)
    assert darker > 0.01
    # every 30th frame: 60 frames -> 2 per side, the minimum for a covariance
    assert np.isfinite(fid_mod.fid(ex, real, real[::-1].copy()))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_extractors_still_load(tmp_path):
    path = tmp_path / "extractor.pt"
    torch.jit.trace(_ColourStats(), torch.rand(2, 3, 8, 8)).save(str(path))
    ex = load_feature_extractor(path)
    frames = np.random.default_rng(2).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    assert fid_mod.extract(ex, frames).shape == (4, 6)


def test_feature_extractor_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="render.inception"):
        load_feature_extractor(tmp_path / "missing.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="not a TorchScript module"):
        load_feature_extractor(tmp_path / "state.pt")
    (tmp_path / "junk.pt2").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a torch.export program"):
        load_feature_extractor(tmp_path / "junk.pt2")
