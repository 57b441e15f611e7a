"""FRRea: the Fréchet distance between real and generated listener frames (FID when an
Inception feature extractor is given), and its rendering-free stand-in.

The challenge computes FRRea with ``pytorch_fid`` (Inception-v3 pool3, 2048-d) between real
listener frames and PIRender frames of the predicted coefficients, every 30th frame. reactune
runs the same computation when the user gives a feature extractor file (torchvision, which holds
Inception-v3, does not install with the pinned torch): a module mapping (N, 3, H, W) float RGB
in [0, 1] to (N, D) or (N, D, 1, 1) features, saved with ``torch.export`` (``.pt2``, batch
dimension dynamic) or, older, TorchScript (``torch.jit.save``). To make one that matches the
challenge, on a machine with ``pytorch-fid``::

    from pytorch_fid.inception import InceptionV3
    m = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()   # resizes to 299 inside
    class Pool3(torch.nn.Module):
        def forward(self, x): return m(x)[0].flatten(1)
    batch = torch.export.Dim("batch", min=1, max=4096)
    ep = torch.export.export(Pool3(), (torch.rand(2, 3, 224, 224),),
                             dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, "inception_fid.pt2")

Without it, the render stage reports the feature-space Fréchet distance of the 25-d attributes
(``metrics.frrea_features``, labelled `FRREA_FEAT_LABEL`), never called FID.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

__all__ = ["FID_LABEL", "FRAME_STRIDE", "FRREA_FEAT_LABEL", "extract", "feature_stats", "fid",
           "frechet_distance", "load_feature_extractor"]

FID_LABEL = "FRRea (FID)"
FRREA_FEAT_LABEL = "FRRea-feat (feature-space Fréchet, not FID)"
FRAME_STRIDE = 30  # the challenge scores every 30th frame


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians (pytorch-fid's formula).

    ``d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))``; when the product is singular an
    ``eps`` ridge is added to both covariances; a tiny imaginary part from sqrtm is dropped.

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) covariances.
        eps: ridge for a singular product.

    Returns:
        The distance (>= 0 up to round-off).

    >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2)), 6)
    2.0
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2,
                                                                                    np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2,
                                                                                     np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: means {mu1.shape}/{mu2.shape} and covariances "
                         f"{s1.shape}/{s2.shape} must be (D,) and (D, D) of one D")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: sqrtm has an imaginary component "
                             f"{np.max(np.abs(covmean.imag)):.3g}; the covariances are not "
                             f"positive semi-definite")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> (D,) mean and (D, D) covariance (unbiased, as pytorch-fid)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features for a covariance, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def load_feature_extractor(path: str | Path, map_location: str | torch.device = "cpu"
                           ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Load the user's Inception feature extractor (see the module docstring).

    ``.pt2`` files are read with ``torch.export.load``, anything else as TorchScript.

    Raises:
        FileNotFoundError: no such file.
        ValueError: neither an exported program nor a TorchScript module.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception feature extractor {path} does not exist; pass render.inception=<a "
            f"torch.export .pt2 (or TorchScript) file mapping (N,3,H,W) RGB in [0,1] to pool3 "
            f"features> (how to make one: orchestrator/render/fid.py), or leave it unset for "
            f"{FRREA_FEAT_LABEL}")
    how = "torch.export.save(torch.export.export(...), 'x.pt2')"
    if path.suffix == ".pt2":
        try:
            return torch.export.load(str(path)).module().to(map_location)
        except Exception as e:  # torch raises several types for foreign files
            raise ValueError(f"{path} is not a torch.export program ({str(e)[:200]}); save the "
                             f"extractor with {how}") from e
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=map_location)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"{path} is not a TorchScript module ({str(e)[:200]}); save the "
                         f"extractor with {how}") from e
    return module.eval()


@torch.no_grad()
def extract(extractor: Callable[[torch.Tensor], torch.Tensor], frames: np.ndarray,
            batch: int = 50) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, D) features of the extractor."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    out = []
    for s in range(0, len(frames), batch):
        x = torch.from_numpy(frames[s:s + batch]).permute(0, 3, 1, 2).float() / 255.0
        f = extractor(x)
        if isinstance(f, (list, tuple)):
            f = f[0]
        out.append(f.reshape(f.shape[0], -1).cpu().numpy())
    return np.concatenate(out)


def fid(extractor: Callable[[torch.Tensor], torch.Tensor], real: np.ndarray, fake: np.ndarray,
        stride: int = FRAME_STRIDE) -> float:
    """FID between real and generated frames, every ``stride``-th frame of each.

    Args:
        extractor: from `load_feature_extractor`.
        real: (N, H, W, 3) uint8 real listener frames.
        fake: (M, H, W, 3) uint8 generated (rendered) frames.
        stride: frame subsampling (the challenge's 30).
    """
    fr, ff = extract(extractor, real[::stride]), extract(extractor, fake[::stride])
    return frechet_distance(*feature_stats(fr), *feature_stats(ff))
