"""REGNN's processors: the MulT-style perceptual fusion, the cognitive edge layer and the motor
processor (a reversible Lipschitz graph). The model and its Config live in ``react_models.regnn``;
the bounded latent noise and the metric-space projection of generated attributes in
``react_models._regnn_sampling``.

Shapes: N windows (items x windows x samples), V = 25 graph nodes (one per facial attribute),
W = window_size temporal features per node, C = edge channels, H = node_dim.

Differences from the baseline code, on purpose (spec §4.3, §7.17):

- top-k masking keeps exactly the k largest attention weights of *each row* (the baseline's
  indexing fills every row with the union of all rows' top-k);
- in the motor processor the node-mixing matrix ``E`` is conditioned on the speaker (the
  cognitive node features and edges), not on the layer input ``x``, and the input path of
  ``f`` is spectrally normalised. Then ``Lip(f) <= lipschitz < 1`` holds exactly (the
  baseline divides ``E(x) x`` by ``||I + 2 W_q W_k^T|| + 5``, which does not bound the
  Lipschitz constant of a map whose ``E`` depends on ``x``), so every
  layer ``y = x + f(x)`` is a bijection and the fixed-point inverse converges geometrically
  (Banach) instead of asserting at inference;
- ActNorm's scale is set from the data and then kept fixed (only its bias learns): the loss has
  no log-determinant (as in the baseline), so a learnable scale could shrink the latent space
  and trivially minimise MSE(cognitive output, latent). Its statistics are pooled over the first
  ``_INIT_BATCHES`` training batches instead of the baseline's first batch alone (see
  :class:`ActNorm`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from react_data import schema
from react_models._blocks import sinusoidal_pe

NODES = schema.ATTR_DIM  # one graph node per facial attribute
_EPS = 1e-8  # guards normalisations of rows/columns that can sum to ~0
_MIN_STD = 0.1  # ActNorm init: a channel (nearly) constant in the data is scaled at most 10x
_INIT_BATCHES = 10  # ActNorm statistics pooled over the first 10 training batches, then frozen


class CrossModalLayer(nn.Module):
    """MulT cross-modal block (pre-norm): queries attend to another modality, then an FFN."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = (nn.LayerNorm(dim) for _ in range(3))
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(mem)
        x = x + self.drop(self.attn(self.norm_q(x), kv, kv, key_padding_mask=pad,
                                    need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))


class PerceptualProcessor(nn.Module):
    """Fuse visual (N,W,Dv) and audio (N,W,A) streams into (N,W,percept_dim)."""

    def __init__(self, visual_dim: int, audio_dim: int, dim: int, heads: int, layers: int,
                 out_dim: int, dropout: float, embed_dropout: float) -> None:
        super().__init__()
        d = dim
        self.proj_v = nn.Linear(visual_dim, d)  # the baseline's Conv1d(k=1)
        self.proj_a = nn.Linear(audio_dim, d)
        self.embed_drop = nn.Dropout(embed_dropout)
        self.cross = nn.ModuleList(CrossModalLayer(d, heads, dropout) for _ in range(layers))
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout, batch_first=True,
                                           norm_first=True)
        self.self_attn = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.res_mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(d, d))
        self.out = nn.Linear(d, out_dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor | None,
                valid: torch.Tensor) -> torch.Tensor:
        """Args: visual (N,W,Dv), audio (N,W,A) or None, valid (N,W) bool. Returns (N,W,P)."""
        if audio is not None and audio.shape[-1] != self.proj_a.in_features:
            raise ValueError(
                f"speaker_audio has {audio.shape[-1]} features per frame, REGNN expects "
                f"{self.proj_a.in_features}; set the model config's audio_dim to match the data"
            )
        pad = ~valid
        pad = pad & ~pad.all(-1, keepdim=True)  # an all-padding window attends everywhere (no NaN)
        pe = sinusoidal_pe(torch.arange(visual.shape[1], device=visual.device),
                           self.proj_v.out_features).to(visual.dtype)  # (W, D)
        x = self.embed_drop(self.proj_v(visual) + pe)  # (N, W, D)
        if audio is not None:  # MulT: video queries, audio keys/values
            a = self.embed_drop(self.proj_a(audio) + pe)
            for layer in self.cross:
                x = layer(x, a, pad)
        h = self.norm(self.self_attn(x, src_key_padding_mask=pad))
        return self.out(h + self.res_mlp(h))  # (N, W, P)


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask keeping the k largest entries of every row (last dim), exactly k per row.

    Ties are broken by ``torch.topk`` (still exactly k), so the count never depends on values.

    Args:
        scores: (..., V) scores.
        k: entries kept per row, 1 <= k <= V.

    Returns:
        (..., V) bool, True at each row's k largest scores.

    >>> topk_mask(torch.tensor([[0.1, 0.5, 0.3], [0.9, 0.0, 0.2]]), 1).tolist()
    [[False, True, False], [True, False, False]]
    """
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"top-k needs 1 <= k <= {scores.shape[-1]} (row length), got k={k}")
    idx = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)


class EdgeLayer(nn.Module):
    """Multi-channel attention between the 25 nodes, top-k sparsified: (N,V,W) -> (N,C,V,V)."""

    def __init__(self, window: int, channels: int, top_k: int) -> None:
        super().__init__()
        self.channels, self.top_k = channels, top_k
        self.mlp = nn.Sequential(nn.Linear(window, window), nn.GELU(), nn.Linear(window, window))
        self.qk = nn.Linear(window, 2 * channels * window)

    def masked_attention(self, nodes: torch.Tensor) -> torch.Tensor:
        """Top-k attention, normalised over rows then columns.

        Args:
            nodes: (N, V, W) cognitive node features.

        Returns:
            (N, C, V, V), exactly ``top_k`` non-zero entries per row.
        """
        n, v, w = nodes.shape
        qk = self.qk(self.mlp(nodes)).view(n, v, 2, self.channels, w)
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, C, V, W)
        attn = torch.softmax(q @ k.transpose(-1, -2) * w ** -0.5, dim=-1)  # (N, C, V, V)
        a = attn * topk_mask(attn, self.top_k)
        a = a / a.sum(-1, keepdim=True).clamp_min(_EPS)
        return a / a.sum(-2, keepdim=True).clamp_min(_EPS)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        """(N, V, W) nodes -> (N, C, V, V) symmetric non-negative edges ``A A^T``."""
        a = self.masked_attention(nodes)
        return a @ a.transpose(-1, -2)


class ActNorm(nn.Module):
    """Per-node affine ``y = (x + bias) * exp(log_scale)``; data-initialised, scale then fixed.

    The statistics are pooled over the first ``init_batches`` training batches (Chan et al.'s
    parallel mean/variance update), then frozen: Glow's one-batch init assumes a batch that is
    representative of the data, but a few clips are not (a rare AU can be nearly constant in
    them, e.g. std 0.03 vs 0.29 over the data, and would be amplified ~10x for good, dominating
    the latent MSE). ``bias`` and ``log_scale`` follow the pooled estimate meanwhile; afterwards
    only ``bias`` learns. The pooling state is not saved: a loaded, initialised norm stays frozen.
    """

    def __init__(self, nodes: int = NODES, init_batches: int = _INIT_BATCHES) -> None:
        super().__init__()
        if init_batches < 1:
            raise ValueError(f"ActNorm init_batches must be >= 1, got {init_batches}")
        self.init_batches = init_batches
        self.bias = nn.Parameter(torch.zeros(nodes))
        self.register_buffer("log_scale", torch.zeros(nodes))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("_count", torch.zeros(()), persistent=False)  # frames pooled
        self.register_buffer("_mean", torch.zeros(nodes), persistent=False)
        self.register_buffer("_m2", torch.zeros(nodes), persistent=False)  # sum of sq. deviations
        self.pooled = 0  # training batches pooled so far in this process

    @property
    def pooling(self) -> bool:
        """True while batches still update the statistics (not yet frozen, not loaded)."""
        return self.pooled < self.init_batches and (self.pooled > 0 or not bool(self.initialized))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, valid: torch.Tensor) -> None:
        """Pool one batch into the per-node statistics and set zero mean, unit variance.

        No-op once frozen (``init_batches`` pooled, or initialised by a loaded state dict).

        Args:
            x: (N, V, W) inputs; valid: (N, W) bool real frames.
        """
        if not self.pooling:
            return
        m = valid[:, None, :].to(x.dtype).expand_as(x)  # (N, V, W)
        n_b = m[:, 0].sum()
        if n_b == 0:
            return
        mean_b = (x * m).sum((0, 2)) / n_b
        m2_b = ((x - mean_b[:, None]) ** 2 * m).sum((0, 2))
        n = self._count + n_b
        delta = mean_b - self._mean
        self._mean += delta * n_b / n
        self._m2 += m2_b + delta ** 2 * self._count * n_b / n
        self._count.copy_(n)
        self.bias.copy_(-self._mean)
        std = (self._m2 / n).sqrt()
        self.log_scale.copy_(-torch.log(std.clamp_min(_MIN_STD)))
        self.initialized.fill_(True)
        self.pooled += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.bias[:, None]) * self.log_scale.exp()[:, None]

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (-self.log_scale).exp()[:, None] - self.bias[:, None]


def _spectral_normalised(w: torch.Tensor) -> torch.Tensor:
    """``w / max(1, sigma_max(w))``: exact spectral norm <= 1 (SVD of a small matrix)."""
    return w / torch.linalg.matrix_norm(w, ord=2).clamp_min(1.0)


class GraphLayer(nn.Module):
    """One reversible layer ``y = h + f(h)``, ``h = ActNorm(x)``, with ``Lip(f) <= lipschitz``.

    ``f(h) = lipschitz * E_hat @ (elu(h W1_hat + b1) W2_hat + b2)`` where ``E_hat`` (speaker
    conditioned, see :meth:`mixing`) and ``W1_hat, W2_hat`` (spectrally normalised) all have
    operator norm <= 1 and ELU is 1-Lipschitz.
    """

    def __init__(self, window: int, hidden: int, channels: int, lipschitz: float,
                 norm: bool) -> None:
        super().__init__()
        self.lipschitz = lipschitz
        self.norm = ActNorm() if norm else None
        self.q = nn.Linear(window, hidden)
        self.k = nn.Linear(window, hidden)
        self.channel_logits = nn.Parameter(torch.zeros(channels))  # learned w / sum(w)
        self.w1 = nn.Parameter(torch.randn(window, hidden) / math.sqrt(window))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.randn(hidden, window) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(window))

    def mixing(self, nodes: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """Speaker-conditioned node mixing with spectral norm <= 1.

        ``E = rownorm(softmax(q k^T / sqrt(H)) * sum_c w_c edges_c)``; a row-stochastic E has
        ``||E||_inf = 1`` and ``||E||_2 <= sqrt(||E||_1 ||E||_inf)``, so dividing by
        ``sqrt(max column sum)`` bounds the spectral norm by 1 without an SVD.

        Args:
            nodes: (N, V, W) cognitive node features; edges: (N, C, V, V).

        Returns:
            (N, V, V).
        """
        x = torch.sigmoid(F.elu(nodes))  # baseline's bounded q/k input
        q, k = self.q(x), self.k(x)  # (N, V, H)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        w = torch.softmax(self.channel_logits, 0)
        e = att * torch.einsum("c,ncij->nij", w, edges)  # (N, V, V)
        e = e / e.sum(-1, keepdim=True).clamp_min(_EPS)
        col = e.sum(-2).amax(-1).clamp_min(1.0)  # ||E||_1 (>= 1 for row-stochastic E)
        return e / col.sqrt()[:, None, None]

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The spectrally normalised ``(W1_hat (W, H), W2_hat (H, W))``."""
        return _spectral_normalised(self.w1), _spectral_normalised(self.w2)

    def residual(self, h: torch.Tensor, mix: torch.Tensor,
                 weights: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``f(h)``: (N, V, W) -> (N, V, W), a contraction with constant <= ``lipschitz``.

        ``weights`` (from :meth:`weights`) saves the SVDs when ``f`` is applied repeatedly.
        """
        w1, w2 = self.weights() if weights is None else weights
        u = F.elu(h @ w1 + self.b1)  # (N, V, H)
        return self.lipschitz * (mix @ (u @ w2 + self.b2))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        h = x if self.norm is None else self.norm(x)
        return h + self.residual(h, mix)


class MotorProcessor(nn.Module):
    """Reversible Lipschitz graph: listener reaction window (N,V,W) <-> latent (N,V,W)."""

    def __init__(self, window: int, hidden: int, channels: int, num_layers: int,
                 lipschitz: float, norm: bool, iters: int, tol: float) -> None:
        super().__init__()
        self.iters, self.tol = iters, tol
        self.layers = nn.ModuleList(GraphLayer(window, hidden, channels, lipschitz, norm)
                                    for _ in range(num_layers))

    def condition(self, nodes: torch.Tensor, edges: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer mixing matrices, each (N, V, V), for speakers' nodes (N,V,W) / edges."""
        return [layer.mixing(nodes, edges) for layer in self.layers]

    def forward(self, x: torch.Tensor, mixes: list[torch.Tensor],
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """Map reaction windows to the latent space.

        Args:
            x: (N, V, W) reaction windows (padded frames zero-filled).
            mixes: from :meth:`condition`, each (N, V, V).
            valid: (N, W) bool real frames; when given in training mode, an ActNorm still
                pooling its statistics (:class:`ActNorm`) pools these frames first.

        Returns:
            (N, V, W) latents.
        """
        for layer, mix in zip(self.layers, mixes, strict=True):
            if layer.norm is not None and valid is not None and self.training:
                layer.norm.initialize(x, valid)  # no-op once its statistics are frozen
            x = layer(x, mix)
        return x

    def inverse(self, z: torch.Tensor, mixes: list[torch.Tensor]) -> torch.Tensor:
        """Invert :meth:`forward` layer by layer (fixed-point iteration ``h <- y - f(h)``).

        Args:
            z: (N, V, W) latents; mixes: as for :meth:`forward`.

        Returns:
            (N, V, W) reaction windows.

        Raises:
            RuntimeError: no convergence within ``iters`` (only possible when the iteration
                budget is too small for ``tol``; each layer is a strict contraction).
        """
        y = z
        for layer, mix in zip(reversed(self.layers), reversed(mixes), strict=True):
            h = self._fixed_point(layer, y, mix)
            y = h if layer.norm is None else layer.norm.inverse(h)
        return y

    def _fixed_point(self, layer: GraphLayer, y: torch.Tensor, mix: torch.Tensor
                     ) -> torch.Tensor:
        h, limit = y, self.tol * max(1.0, float(y.abs().max()))
        weights, delta = layer.weights(), float("inf")
        for _ in range(self.iters):
            h_new = y - layer.residual(h, mix, weights)
            delta = float((h_new - h).abs().max())
            h = h_new
            if delta <= limit:
                return h
        if not math.isfinite(delta):
            raise FloatingPointError("REGNN motor inverse produced non-finite values; check the "
                                     "latent input and the model weights")
        raise RuntimeError(
            f"REGNN motor inverse did not converge in fixed_point_iters={self.iters} (last "
            f"change {delta:.3g} > tol {limit:.3g}); raise fixed_point_iters or tol, or lower "
            f"lipschitz (convergence rate)"
        )


__all__ = ["ActNorm", "CrossModalLayer", "EdgeLayer", "GraphLayer", "MotorProcessor",
           "PerceptualProcessor", "topk_mask"]
