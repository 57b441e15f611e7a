"""Blocks shared by several reaction models: positional encodings, masks, the speaker-feature
fusion encoder, the metric-space attribute head and the masked reconstruction losses.

Kept additive and stable: other model files import from here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from react_data import schema


def sinusoidal_pe(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal position encoding (Vaswani et al.) at arbitrary (fractional) positions.

    Args:
        positions: (T,) positions (any dtype; converted to float32).
        dim: encoding width (even).

    Returns:
        (T, dim) float32 on ``positions.device``: sin on even, cos on odd channels.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal_pe needs an even dim, got {dim}; use an even feature size")
    pos = positions.to(torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(
        torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)
        * (-math.log(10_000.0) / dim)
    )  # (dim/2,)
    pe = torch.zeros(pos.shape[0], dim, device=positions.device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def causal_mask(n: int, device: torch.device | str = "cpu", *, offset: int = 0) -> torch.Tensor:
    """Boolean attention mask for ``nn.MultiheadAttention``: True where attention is forbidden.

    Args:
        n: number of queries.
        device: where the mask lives.
        offset: keys before the queries (a past prefix all queries may see): the mask is
            (n, offset + n) and query i may attend keys 0 .. offset + i.

    Returns:
        (n, offset + n) bool.
    """
    q = torch.arange(n, device=device)[:, None]
    k = torch.arange(offset + n, device=device)[None, :]
    return k > q + offset


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the frames where ``mask`` is True.

    Args:
        x: (B, T) or (B, T, F) per-frame values.
        mask: (B, T) bool.

    Returns:
        0-d tensor: mean over selected frames (and features). Zero (with a gradient path) when
        no frame is selected, so an all-context batch contributes nothing instead of NaN.
    """
    m = mask.to(x.dtype)
    if x.dim() == 3:
        m = m[..., None].expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1.0)


class SpeakerEncoder(nn.Module):
    """Per-frame fusion of the speaker's attributes, 3DMM and audio into one feature per frame.

    Each modality has its own linear branch; the branches present are averaged (a missing
    modality, ``None``, is skipped, never zero-filled, so a model trained without audio and one
    given no audio see the same statistics), then a GELU, a linear fusion layer and LayerNorm.
    """

    def __init__(self, dim: int, audio_dim: int = schema.AUDIO_DIM) -> None:
        super().__init__()
        self.attr = nn.Linear(schema.ATTR_DIM, dim)
        self.coef = nn.Linear(schema.COEF_DIM, dim)
        self.audio = nn.Linear(audio_dim, dim)
        # LayerNorm: unit-scale features, comparable with an added position encoding.
        self.fuse = nn.Sequential(nn.GELU(), nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, attr: torch.Tensor, coef: torch.Tensor | None,
                audio: torch.Tensor | None) -> torch.Tensor:
        """Encode speaker frames.

        Args:
            attr: (B, T, 25) speaker attributes.
            coef: (B, T, 58) speaker 3DMM or None.
            audio: (B, T, A) speaker audio features or None.

        Returns:
            (B, T, dim) per-frame speaker features.
        """
        if audio is not None and audio.shape[-1] != self.audio.in_features:
            raise ValueError(
                f"speaker_audio has {audio.shape[-1]} features per frame, the model expects "
                f"{self.audio.in_features}; set the model config's audio_dim to match the data"
            )
        branches = [self.attr(attr)]
        if coef is not None:
            branches.append(self.coef(coef))
        if audio is not None:
            branches.append(self.audio(audio))
        return self.fuse(torch.stack(branches).mean(0))  # (B, T, dim)


def attr_to_metric(logits: torch.Tensor, *, binarize: bool = False) -> torch.Tensor:
    """Map raw 25-d attribute head outputs to metric space.

    AUs -> sigmoid probabilities (or {0, 1} with ``binarize``, threshold 0.5), valence/arousal
    -> tanh in [-1, 1], expressions -> softmax probabilities summing to 1.

    Args:
        logits: (..., 25) raw head outputs.
        binarize: threshold AU probabilities at 0.5 (what the metrics score).

    Returns:
        (..., 25) attributes in metric space.
    """
    au = torch.sigmoid(logits[..., schema.AU])
    if binarize:
        au = (au >= 0.5).to(logits.dtype)
    va = torch.tanh(logits[..., schema.VA])
    expr = torch.softmax(logits[..., schema.EXPR], dim=-1)
    return torch.cat([au, va, expr], dim=-1)


class AttributeHead(nn.Module):
    """Features -> 25 raw attribute outputs (map with :func:`attr_to_metric`).

    A deliberate change from the baselines' unconstrained linear output: the activations put
    every prediction in the attribute's own range (probabilities, [-1, 1], a distribution).
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, schema.ATTR_DIM)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., 25) raw outputs (AU logits, VA pre-tanh, expression logits)."""
        return self.proj(h)


def attribute_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                   *, au_loss: str = "bce", w_au: float = 1.0, w_va: float = 1.0,
                   w_expr: float = 1.0) -> torch.Tensor:
    """Masked reconstruction loss of 25-d attributes from raw head outputs.

    AU: binary cross-entropy on the logits (``au_loss="bce"``) or MSE of the probabilities
    (``"mse"``); VA: MSE of tanh outputs; expressions: KL(target || softmax) (soft targets).
    The three groups are summed with weights ``w_au``, ``w_va``, ``w_expr``, each averaged
    over its own dimensions.

    Args:
        logits: (B, T, 25) raw head outputs.
        target: (B, T, 25) metric-space targets.
        mask: (B, T) bool, frames that count.
        au_loss: "bce" or "mse".
        w_au, w_va, w_expr: group weights.

    Returns:
        0-d loss.
    """
    au_t = target[..., schema.AU]
    if au_loss == "bce":
        au = F.binary_cross_entropy_with_logits(logits[..., schema.AU], au_t, reduction="none")
    elif au_loss == "mse":
        au = (torch.sigmoid(logits[..., schema.AU]) - au_t) ** 2
    else:
        raise ValueError(f"au_loss must be 'bce' or 'mse', got {au_loss!r}")
    va = (torch.tanh(logits[..., schema.VA]) - target[..., schema.VA]) ** 2
    ex_t = target[..., schema.EXPR]
    ex = (torch.xlogy(ex_t, ex_t) - ex_t * torch.log_softmax(logits[..., schema.EXPR], -1)).sum(-1)
    return (w_au * masked_mean(au, mask) + w_va * masked_mean(va, mask)
            + w_expr * masked_mean(ex, mask))


def coef_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
              w_exp: float = 1.0, w_rot: float = 1.0, w_trans: float = 1.0) -> torch.Tensor:
    """Masked, group-weighted MSE of 58-d 3DMM coefficients.

    Args:
        pred: (B, T, 58) predicted coefficients.
        target: (B, T, 58) target coefficients (same normalisation).
        mask: (B, T) bool, frames that count.
        w_exp, w_rot, w_trans: weights of the expression, rotation and translation groups.

    Returns:
        0-d loss: ``w_exp·MSE(exp) + w_rot·MSE(rot) + w_trans·MSE(trans)``.
    """
    se = (pred - target) ** 2
    return (w_exp * masked_mean(se[..., schema.COEF_EXP], mask)
            + w_rot * masked_mean(se[..., schema.COEF_ROT], mask)
            + w_trans * masked_mean(se[..., schema.COEF_TRANS], mask))
