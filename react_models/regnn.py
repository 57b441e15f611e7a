"""REGNN (REACT 2024-2026 baseline; arXiv 2305.15270), offline and online.

Perceptual -> cognitive -> motor processor on windows of ``window_size`` frames (spec §4.3):

- **Perceptual** (MulT-style): a visual and an audio stream, each projected to ``feature_dim``,
  cross-modal attention (visual queries, audio keys/values), a self-attention stack, a residual
  MLP and ``Linear(feature_dim -> percept_dim)`` per frame.
  The baseline's inputs are pre-extracted Swin-T FER video features (768-d) and VGGish/wav2vec
  audio, whose weights cannot be downloaded here. Instead the visual stream is a small trainable
  per-frame encoder (:class:`VisualEncoder`) over the speaker's 25-d attributes and 58-d 3DMM,
  and the audio stream is the 78-d MFCC features. ``visual_weights`` loads a state dict
  into that encoder (frozen by default, like the baseline's pre-extracted features); a missing
  or incompatible file raises an error naming the file and the fix. A bundle of such a model
  keeps the path in its config, so rebuilding it needs the file too (the bundle's own copy of
  the weights then overwrites it).
- **Cognitive**: ``Mlp(percept_dim -> cognitive_hidden -> 25)`` per frame, transposed to 25
  graph nodes x W temporal features; the edge layer (:class:`~react_models.regnn_graph.EdgeLayer`)
  gives C-channel top-k edges. The node features are the predicted latent reaction.
- **Motor**: a reversible Lipschitz graph (:class:`~react_models.regnn_graph.MotorProcessor`).
  Training maps real listener windows forward to the latent; inference inverts it from
  ``z = cognitive output + eps``, ``max|eps| <= sqrt(noise_threshold)``.

Losses: ``latent`` = over the appropriate reactions of each speaker window, the min of
MSE(cognitive output, latent) (the baseline's ``AllThreMseLoss('min')``, without its optional
late-training threshold; nodes weighted, see below), plus ``mid`` (with ``loss_mid``) = mean
squared distance of each appropriate reaction's latent from their mean. A batch holds only the
paired listener (then ``mid`` is 0); the orchestrator can pass more appropriate reactions of the
same speakers through ``forward(batch, neighbors=..., neighbor_valid=...)``, at most
``num_neighbors`` in all are used.

Additions to the baseline, on purpose:

- 3DMM: the baseline outputs attributes only. A per-frame head maps the generated attributes
  (metric space) plus the speaker's perceptual features to 58-d 3DMM, trained with MSE on
  ``listener_coef`` (teacher-forced with the real listener attributes) when the batch has it;
- attributes leave in metric space: AUs thresholded at 0.5 to {0, 1}, valence/arousal clamped
  to [-1, 1], expressions projected onto the probability simplex (the nearest distribution);
- graph fixes (exact top-k per row, provably contractive motor layers, ActNorm statistics
  pooled over several batches): see ``regnn_graph``;
- the latent MSEs weight each node by FRDist's attribute weights (``schema.ATTR_GROUPS``,
  scaled to mean 1) instead of 1/25 each: 15 AU nodes outnumber the 2 valence/arousal nodes
  that carry most of FRDist, and the shared perceptual/cognitive trunk fits what the loss
  weighs (tests/react_models/test_learning.py's setting: FRDist 58.6/59.6 for seeds 0/1
  instead of 60.1/60.7 unweighted);
- the motor's speaker conditioning (edges and mixing matrices) reads the cognitive nodes
  through a stop-gradient. The training target ``z = motor(listener, mixes(nodes))`` depends on
  the prediction ``nodes``; with gradients through that path the cognitive processor lowers
  ``MSE(nodes, z)`` by reshaping its own target instead of predicting the listener, and on
  synthetic MARS its output collapsed to a constant (per-node R^2 <= 0 even on training
  clips). The edge layer and the mixing weights still learn, through ``z``. Inference is
  unchanged (no gradients there).

Windowing: windows are independent, as in the 2025+ baseline. Offline splits the clip into
non-overlapping windows (the last zero-padded; padded frames are masked out of attention and
the losses, and zero-filled so they cannot leak in). Online (``online=True``) runs the same
network through ``start``/``step``: chunk i uses speaker frames of chunk i only, so outputs never
depend on later frames, and ``sample`` is step-driven generation. A stream has no padding, so
online ``sample`` treats every frame of the batch as real.

Training hyper-parameters (lr 1e-4, Adam weight decay 5e-4, milestones, batch 64) belong to the
trainer config, not to this Config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from react_data import schema
from react_data.batch import ReactionBatch
from react_models._blocks import coef_loss
from react_models._regnn_sampling import attrs_to_metric, bounded_noise
from react_models._regnn_visual import VisualEncoder, load_visual_weights
from react_models.base import ReactionModel, ReactionSample
from react_models.registry import register
from react_models.regnn_graph import (
    NODES,
    EdgeLayer,
    MotorProcessor,
    PerceptualProcessor,
)


@dataclass(frozen=True)
class Config:
    """REGNN hyper-parameters (architecture, sampling and loss)."""

    online: bool = False  # offline task by default; True adds the causal start/step API
    window_size: int = 50  # baseline num_frames: nodes carry 50-frame temporal features
    feature_dim: int = 128  # baseline MulT width (Conv1d a, v -> 128)
    num_heads: int = 4  # baseline MulT attention heads
    fusion_layers: int = 5  # baseline cross-modal and self-attention depths (5 each)
    percept_dim: int = 64  # baseline perceptual output Linear(128 -> 64)
    cognitive_hidden: int = 32  # baseline cognitive Mlp(64 -> 32 -> 25)
    dropout: float = 0.1  # baseline attention / relu / residual dropout
    embed_dropout: float = 0.25  # baseline MulT embedding dropout
    audio_dim: int = schema.AUDIO_DIM  # 78-d MFCC: the wav2vec/VGGish features are unavailable
    visual_dim: int = 128  # per-frame visual features (Swin's 768 replaced by a small encoder)
    visual_weights: str | None = None  # state dict for the visual encoder (pretrained stand-in)
    freeze_visual: bool = True  # baseline visual features are pre-extracted, i.e. fixed
    edge_channels: int = 8  # baseline --edge-dim
    top_k: int = 5  # baseline edge-attention top-k
    num_layers: int = 2  # baseline --layers in the 2024-26 scripts (motor graph layers)
    node_dim: int = 100  # baseline Linear(50 -> 100) width of the graph's per-node maps
    norm: bool = True  # baseline scripts pass --norm (ActNorm)
    # Lip(f) bound < 1 keeps layers invertible. Small, like the baseline's (its f is divided by
    # ||I + 2 W_q W_k^T|| + 5 >= 6): the loss has no log-det, so each layer could shrink the
    # latent by up to (1 - lipschitz) to cheapen MSE(nodes, latent); at 0.7 it did (latent var
    # 0.09 for unit-variance inputs, reactions decoded from a collapsed latent).
    lipschitz: float = 0.2
    fixed_point_iters: int = 100  # worst case for 0.2 is ~8 (0.7: ~35); baseline: 5, asserts
    tol: float = 1e-5  # relative max change that ends the fixed point (float32-safe)
    noise_threshold: float = 0.06  # baseline test threshold: max|eps| <= sqrt(0.06)
    loss_mid: bool = True  # baseline scripts pass --loss-mid
    w_mid: float = 1.0  # the baseline adds MidLoss unweighted
    w_coef: float = 1.0  # 3DMM head MSE weight (no baseline counterpart; normalised coefs)
    num_neighbors: int = 10  # baseline uses up to 10 appropriate reactions per speaker window

    def __post_init__(self) -> None:
        if self.feature_dim % self.num_heads or self.feature_dim % 2:
            raise ValueError(
                f"feature_dim ({self.feature_dim}) must be even and a multiple of num_heads "
                f"({self.num_heads}); e.g. feature_dim=128, num_heads=4"
            )
        if not 1 <= self.top_k <= NODES:
            raise ValueError(f"top_k must be in 1..{NODES} (graph nodes), got {self.top_k}")
        if not 0.0 < self.lipschitz < 1.0:
            raise ValueError(f"lipschitz must be in (0, 1) for an invertible motor processor, "
                             f"got {self.lipschitz}")
        if self.noise_threshold < 0 or self.tol <= 0:
            raise ValueError(f"need noise_threshold >= 0 and tol > 0, got "
                             f"{self.noise_threshold}, {self.tol}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.embed_dropout < 1.0:
            raise ValueError(f"dropouts must be in [0, 1), got {self.dropout}, "
                             f"{self.embed_dropout}")
        for name in ("window_size", "fusion_layers", "percept_dim", "cognitive_hidden",
                     "audio_dim", "visual_dim", "edge_channels", "num_layers", "node_dim",
                     "fixed_point_iters", "num_neighbors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class OnlineState:
    """Causal generation state: windows are independent, so only sizes and the frame count."""

    batch_size: int
    num_samples: int
    t: int = 0


def _to_windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, T, ...) -> (B * ceil(T/w), w, ...), zero-padding the last window."""
    b, t = x.shape[:2]
    nw = math.ceil(t / w)
    pad = x.new_zeros(b, nw * w - t, *x.shape[2:])
    return torch.cat([x, pad], 1).reshape(b * nw, w, *x.shape[2:])


def _from_windows(x: torch.Tensor, b: int, t: int) -> torch.Tensor:
    """(..., B * nw, w, F) -> (..., B, T, F): windows concatenated, padding cut."""
    lead, (n, w, f) = x.shape[:-3], x.shape[-3:]
    return x.reshape(*lead, b, (n // b) * w, f)[..., :t, :]


def _node_weights() -> torch.Tensor:
    """(25,) latent-loss weight of each graph node: FRDist's attribute weights, mean 1.

    ``schema.ATTR_GROUPS`` (AU 1/15, valence/arousal 1, expressions 1/8 each): the 15 AU nodes
    together weigh as much as one of valence/arousal, not 7.5x as much.
    """
    w = torch.zeros(NODES)
    for _, nodes, weight in schema.ATTR_GROUPS:
        w[nodes] = weight
    return w * (NODES / w.sum())


def _masked(x: torch.Tensor | None, valid: torch.Tensor) -> torch.Tensor | None:
    return None if x is None else x * valid[..., None].to(x.dtype)


@register
class REGNN(ReactionModel):
    """REGNN: ``forward(batch, neighbors) -> losses``, ``sample``, online ``start``/``step``."""

    name = "regnn"
    config_cls = Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.visual = VisualEncoder(c.visual_dim)
        self.perceptual = PerceptualProcessor(c.visual_dim, c.audio_dim, c.feature_dim,
                                              c.num_heads, c.fusion_layers, c.percept_dim,
                                              c.dropout, c.embed_dropout)
        self.cognitive = nn.Sequential(nn.Linear(c.percept_dim, c.cognitive_hidden), nn.GELU(),
                                       nn.Linear(c.cognitive_hidden, NODES))
        self.edges = EdgeLayer(c.window_size, c.edge_channels, c.top_k)
        self.motor = MotorProcessor(c.window_size, c.node_dim, c.edge_channels, c.num_layers,
                                    c.lipschitz, c.norm, c.fixed_point_iters, c.tol)
        self.coef_head = nn.Sequential(nn.Linear(schema.ATTR_DIM + c.percept_dim, c.feature_dim),
                                       nn.GELU(), nn.Linear(c.feature_dim, schema.COEF_DIM))
        self.register_buffer("node_weight", _node_weights(), persistent=False)
        if c.visual_weights is not None:
            load_visual_weights(self.visual, c.visual_weights)
            self.visual.requires_grad_(not c.freeze_visual)

    # --- building blocks ------------------------------------------------------------------------
    def encode(self, attr: torch.Tensor, coef: torch.Tensor | None, audio: torch.Tensor | None,
               valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Perceptual + cognitive processors on N speaker windows (padded frames zero-filled).

        Args:
            attr: (N, W, 25); coef: (N, W, 58) or None; audio: (N, W, A) or None;
            valid: (N, W) bool real frames.

        Returns:
            percept (N, W, P), cognitive nodes = predicted latent (N, 25, W), and the motor's
            per-layer mixing matrices, each (N, 25, 25).
        """
        percept = self.perceptual(self.visual(attr, coef), audio, valid)  # (N, W, P)
        nodes = self.cognitive(percept).transpose(1, 2)  # (N, V, W)
        cond = nodes.detach()  # the latent target must not bend towards its own prediction
        return percept, nodes, self.motor.condition(cond, self.edges(cond))

    def generate(self, nodes: torch.Tensor, mixes: list[torch.Tensor], k: int) -> torch.Tensor:
        """K raw reaction windows per speaker window: inverse motor of nodes + bounded noise.

        Args:
            nodes: (N, 25, W) cognitive output; mixes: from :meth:`encode`; k: samples.

        Returns:
            (K, N, 25, W) unconstrained attributes.
        """
        n = nodes.shape[0]
        z = nodes.repeat(k, 1, 1) + bounded_noise(  # (K*N, V, W), sample-major
            (k * n, *nodes.shape[1:]), self.config.noise_threshold, device=nodes.device,
            dtype=nodes.dtype)
        x = self.motor.inverse(z, [m.repeat(k, 1, 1) for m in mixes])
        return x.view(k, n, *nodes.shape[1:])

    def _decode(self, x: torch.Tensor, percept: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, N, 25, W) raw windows + (N, W, P) -> attrs (K, N, W, 25), 3DMM (K, N, W, 58)."""
        attr = attrs_to_metric(x.transpose(-1, -2))
        ctx = percept.expand(x.shape[0], *percept.shape)
        return attr, self.coef_head(torch.cat([attr, ctx], -1))

    def _windows(self, batch: ReactionBatch) -> tuple[torch.Tensor, ...]:
        """Speaker windows with padded frames zero-filled, and the (N, W) valid mask."""
        w, valid = self.config.window_size, batch.mask
        win = [None if x is None else _to_windows(_masked(x, valid), w)
               for x in (batch.speaker_attr, batch.speaker_coef, batch.speaker_audio)]
        return (*win, _to_windows(valid, w))

    def _targets(self, batch: ReactionBatch, neighbors: torch.Tensor | None,
                 neighbor_valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Paired listener + at most ``num_neighbors - 1`` extra: (G,B,T,25), valid (G,B)."""
        b, t = batch.batch_size, batch.num_frames
        paired = batch.listener_attr[None]
        ones = torch.ones(1, b, dtype=torch.bool, device=paired.device)
        if neighbors is None:
            return paired, ones
        if neighbors.dim() != 4 or tuple(neighbors.shape[:1] + neighbors.shape[2:]) != (
                b, t, schema.ATTR_DIM):
            raise ValueError(f"neighbors must have shape (B={b}, M, T={t}, {schema.ATTR_DIM}) "
                             f"(extra appropriate listener attributes), got "
                             f"{tuple(neighbors.shape)}")
        m = neighbors.shape[1]
        nv = (torch.ones(b, m, dtype=torch.bool, device=paired.device)
              if neighbor_valid is None else neighbor_valid)
        if tuple(nv.shape) != (b, m) or nv.dtype != torch.bool:
            raise ValueError(f"neighbor_valid must be a bool tensor of shape ({b}, {m}), got "
                             f"{nv.dtype} {tuple(nv.shape)}")
        keep = self.config.num_neighbors - 1
        if m > keep:  # a random subset per speaker, valid ones first (baseline random.sample)
            keys = torch.rand(b, m, device=nv.device).masked_fill(~nv, 2.0)
            idx = keys.argsort(1)[:, :keep]  # (B, keep)
            neighbors = neighbors.gather(1, idx[..., None, None].expand(-1, -1, t,
                                                                        schema.ATTR_DIM))
            nv = nv.gather(1, idx)
        return torch.cat([paired, neighbors.transpose(0, 1)], 0), torch.cat([ones, nv.T], 0)

    # --- public API -----------------------------------------------------------------------------
    def forward(self, batch: ReactionBatch, neighbors: torch.Tensor | None = None,
                neighbor_valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training losses on a batch with listener targets.

        Args:
            batch: with ``listener_attr``; padded frames and ``context_frames`` are excluded
                from every loss term.
            neighbors: optional (B, M, T, 25) further appropriate listener reactions of each
                speaker, aligned and padded like the batch.
            neighbor_valid: optional (B, M) bool, False for filler rows of ``neighbors``.

        Returns:
            0-d tensors: "total", "latent", "mid" (with ``loss_mid``), "coef" (when the batch
            has listener 3DMM).
        """
        if batch.listener_attr is None:
            raise ValueError("REGNN.forward needs batch.listener_attr (the training targets), "
                             "got None; use sample() for inference")
        cfg, b, t = self.config, batch.batch_size, batch.num_frames
        targets, tvalid = self._targets(batch, neighbors, neighbor_valid)  # (G,B,T,25), (G,B)
        g = targets.shape[0]
        attr, coef, audio, valid = self._windows(batch)
        percept, nodes, mixes = self.encode(attr, coef, audio, valid)
        n, v, w = nodes.shape
        x = _masked(targets, batch.mask)  # padded target frames zero-filled
        xw = _to_windows(x.reshape(g * b, t, -1), w).transpose(1, 2)  # (G*N, V, W)
        z = self.motor(xw, [m.repeat(g, 1, 1) for m in mixes], valid.repeat(g, 1))
        z = z.view(g, n, v, w)
        lw = _to_windows(batch.loss_mask, w).to(z.dtype)  # (N, W)
        frames = lw.sum(-1)  # (N,)
        denom = (frames * v).clamp_min(1.0)
        gv = tvalid[:, :, None].expand(g, b, n // b).reshape(g, n)  # (G, N)
        lw = lw[:, None] * self.node_weight[:, None]  # (N, V, W) frame x node weights
        err = ((nodes - z) ** 2 * lw).sum((-1, -2)) / denom  # (G, N)
        best = err.masked_fill(~gv, math.inf).amin(0)  # (N,) min over appropriate reactions
        losses = {"latent": (best * frames).sum() / frames.sum().clamp_min(1.0)}
        total = losses["latent"]
        if cfg.loss_mid:
            gf = gv.to(z.dtype)[..., None, None]
            zbar = (z * gf).sum(0) / gf.sum(0)  # (N, V, W) mean latent of the group
            dev = ((z - zbar) ** 2 * lw).sum((-1, -2)) / denom  # (G, N)
            wts = gv.to(z.dtype) * frames
            losses["mid"] = (dev * wts).sum() / wts.sum().clamp_min(1.0)
            total = total + cfg.w_mid * losses["mid"]
        if batch.listener_coef is not None:
            pred = self.coef_head(torch.cat([x[0], _from_windows(percept, b, t)], -1))
            losses["coef"] = coef_loss(pred, batch.listener_coef, batch.loss_mask)
            total = total + cfg.w_coef * losses["coef"]
        losses["total"] = total
        return losses

    @torch.no_grad()
    def sample(self, batch: ReactionBatch, num_samples: int = 10) -> ReactionSample:
        """K reactions per speaker: attributes (B, K, T, 25) in metric space, 3DMM (B, K, T, 58).

        Online models generate through :meth:`start` / :meth:`step` (same result as driving
        ``step`` by hand with the same RNG state).
        """
        b, t, k = batch.batch_size, batch.num_frames, num_samples
        if self.config.online:
            state = self.start(b, k, batch.listener_idx, batch.speaker_attr.device)
            w = self.config.window_size
            streams = (batch.speaker_attr, batch.speaker_coef, batch.speaker_audio)
            outs = [self.step(state, *(None if x is None else x[:, s:s + w] for x in streams))
                    for s in range(0, t, w)]
            return ReactionSample(attr=torch.cat([a for a, _ in outs], 2),
                                  coef=torch.cat([c for _, c in outs], 2))
        attr, coef, audio, valid = self._windows(batch)
        percept, nodes, mixes = self.encode(attr, coef, audio, valid)
        out_attr, out_coef = self._decode(self.generate(nodes, mixes, k), percept)
        # (K, B*nw, W, F) -> (K, B, T, F) -> (B, K, T, F)
        return ReactionSample(attr=_from_windows(out_attr, b, t).transpose(0, 1),
                              coef=_from_windows(out_coef, b, t).transpose(0, 1))

    def start(self, batch_size: int, num_samples: int = 1, listener_idx: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> OnlineState:
        """Empty causal state for ``batch_size`` speakers and K = ``num_samples`` reactions.

        ``listener_idx`` and ``device`` are accepted for the common API; REGNN is not
        personalised and its windows carry no state between them.
        """
        if not self.config.online:
            raise NotImplementedError("REGNN was built with online=False; build it with "
                                      "online=True to use start/step")
        return OnlineState(batch_size=batch_size, num_samples=num_samples)

    @torch.no_grad()
    def step(self, state: OnlineState, speaker_attr: torch.Tensor,
             speaker_coef: torch.Tensor | None, speaker_audio: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate the reaction for the next chunk of n <= window_size speaker frames.

        Args:
            state: from :meth:`start`, updated in place.
            speaker_attr: (B, n, 25); speaker_coef: (B, n, 58) or None;
                speaker_audio: (B, n, A) or None.

        Returns:
            attributes (B, K, n, 25) in metric space, and 3DMM (B, K, n, 58).
        """
        b, n = speaker_attr.shape[:2]
        w = self.config.window_size
        if b != state.batch_size:
            raise ValueError(f"step got {b} speakers, the state was started for "
                             f"{state.batch_size}; call start() with this batch size")
        if not 0 < n <= w:
            raise ValueError(f"step takes 1..window_size={w} frames, got {n}; feed the speaker "
                             f"in chunks of window_size frames")
        pad = [None if x is None else F.pad(x, (0, 0, 0, w - n))
               for x in (speaker_attr, speaker_coef, speaker_audio)]
        valid = (torch.arange(w, device=speaker_attr.device) < n).expand(b, w)
        percept, nodes, mixes = self.encode(*pad, valid)
        attr, coef = self._decode(self.generate(nodes, mixes, state.num_samples), percept)
        state.t += n
        return attr.transpose(0, 1)[:, :, :n], coef.transpose(0, 1)[:, :, :n]


__all__ = ["REGNN", "Config", "OnlineState", "VisualEncoder", "load_visual_weights"]
