"""Trans-VAE (REACT 2023-2026 baseline), offline and online, on attributes + 3DMM + audio.

Speaker frames -> per-frame fused features -> a speaker-conditioned latent (learned mu / logvar
tokens read out by a transformer encoder) -> z ~ N(mu, sigma) -> a causal transformer decoder ->
listener 3DMM (58) and 25 facial attributes. Diversity across the K reactions comes only from z.

Differences from the baseline code, on purpose:
- no raw video branch: the per-frame inputs are 25-d attributes, 58-d 3DMM and 78-d audio; a
  missing modality (None) is skipped, never zero-filled;
- attributes leave through metric-space activations (AU sigmoid, VA tanh, expression softmax;
  trained with BCE / MSE / KL) instead of an unconstrained linear head, and ``sample``
  binarises AUs at 0.5, so every output is a valid attribute vector;
- the decoder sees the encoded speaker frames as well as z (``speaker_frames``): each query
  frame starts from its own speaker features (+ position) instead of a position alone, and the
  decoder cross-attends to all speaker frames it may use; the baseline's single z token carries
  no timing, so its reactions cannot follow the speaker (``speaker_frames=False`` restores it);
- a causal depthwise temporal filter over the last ``speaker_context`` speaker frames (the
  listener follows the speaker with a lag of a fraction of a second; attention with absolute
  sinusoidal positions learns such a fixed offset slowly; ``speaker_context=1`` removes it);
- online: the last ``T mod window_size`` frames are predicted too (a shorter final window), and
  the re-encoded history is bounded by ``max_history`` frames, so a window costs O(max_history)
  instead of O(t) and a clip O(T * max_history / w) instead of O(T^2 / w). The online loop's
  past-3DMM smoothing LSTM is replaced by feeding the model's own past outputs into the history
  features (the baseline does both).

Training hyper-parameters (lr 1e-5 in the README, AdamW weight decay 5e-4, epochs, batch size,
crop length) belong to the trainer config (``orchestrator.loop.make_optimizer``), not to this
Config: a model bundle rebuilds the network and its loss, nothing about how it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from react_data import schema
from react_data.batch import ReactionBatch
from react_models._blocks import (
    AttributeHead,
    SpeakerEncoder,
    attr_to_metric,
    attribute_loss,
    causal_mask,
    coef_loss,
    sinusoidal_pe,
)
from react_models.base import ReactionModel, ReactionSample
from react_models.registry import register

_FB_DIM = schema.ATTR_DIM + schema.COEF_DIM  # fed-back listener output per frame


@dataclass(frozen=True)
class Config:
    """Trans-VAE hyper-parameters (architecture and loss)."""

    feature_dim: int = 128  # baseline width of every token (spec 4.1)
    n_heads: int = 4  # baseline attention heads
    ff_dim: int = 256  # baseline transformer feed-forward width
    num_layers: int = 1  # baseline: one layer in the latent encoder and in each decoder stage
    dropout: float = 0.1  # baseline transformer / positional-encoding dropout
    audio_dim: int = schema.AUDIO_DIM  # 78-d MFCC features, the baseline's audio input
    speaker_frames: bool = True  # decoder also sees speaker frames (z alone cannot time it)
    speaker_context: int = 16  # causal temporal filter over the last 16 speaker frames (0.64 s)
    online: bool = False  # offline task by default; True = causal windowed generation
    window_size: int = 16  # README trains online with --window-size 16
    max_history: int = 256  # frames re-encoded per online window (= the online training crop)
    kl_p: float = 1e-5  # README command's KL weight
    div_p: float = 10.0  # baseline diversity-loss weight
    w_emo: float = 1.0  # attribute reconstruction weight (2025 VAELoss default)
    w_va: float = 1.0  # extra weight of valence/arousal within the attributes (FRDist weighs VA 1)
    w_exp: float = 1.0  # 3DMM expression weight (2025 VAELoss default)
    w_rot: float = 10.0  # 3DMM rotation weight: the baseline weights pose 10x
    w_trans: float = 10.0  # 3DMM translation weight: the baseline weights pose 10x
    au_loss: str = "bce"  # AUs are binary: BCE on logits trains the sigmoid head best

    def __post_init__(self) -> None:
        if self.feature_dim % (2 * self.n_heads):
            raise ValueError(
                f"feature_dim ({self.feature_dim}) must be a multiple of 2 * n_heads "
                f"({2 * self.n_heads}); e.g. feature_dim=128, n_heads=4"
            )
        if self.window_size < 1 or self.max_history < self.window_size:
            raise ValueError(
                f"need 1 <= window_size <= max_history, got window_size={self.window_size}, "
                f"max_history={self.max_history}"
            )
        if self.speaker_context < 1:
            raise ValueError(f"speaker_context must be >= 1 frame (1 = none), got "
                             f"{self.speaker_context}")
        if self.au_loss not in ("bce", "mse"):
            raise ValueError(f"au_loss must be 'bce' or 'mse', got {self.au_loss!r}")


@dataclass
class OnlineState:
    """Causal generation state: the last ``max_history`` frames seen and generated.

    Attributes:
        num_samples: K reactions per speaker.
        spk: (B, h, D) per-frame speaker features (before the temporal filter, no position
            encoding); h <= max_history + speaker_context - 1.
        fb: (B*K, h, 83) the model's own listener outputs (attribute probabilities + 3DMM).
        t: frames generated so far.
    """

    num_samples: int
    spk: torch.Tensor
    fb: torch.Tensor
    t: int = 0


def _layer(cfg: Config, decoder: bool) -> nn.Module:
    kind = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    return kind(cfg.feature_dim, cfg.n_heads, cfg.ff_dim, cfg.dropout, batch_first=True)


@register
class TransVAE(ReactionModel):
    """Trans-VAE: ``forward(batch) -> losses``, ``sample(batch, K)``, online ``start``/``step``."""

    name = "transvae"
    config_cls = Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        d = config.feature_dim
        self.speaker = SpeakerEncoder(d, config.audio_dim)
        if config.speaker_context > 1:
            # Depthwise causal filter: each channel can delay/smooth the speaker signal, so the
            # listener's lagged following is one linear step (not a learnt attention offset).
            self.context = nn.Conv1d(d, d, config.speaker_context, groups=d, bias=False)
            nn.init.zeros_(self.context.weight)  # starts as the identity (residual)
        if config.online:
            # Fuses each history frame with the model's own past output there (zeros for the
            # window being generated), as the baseline's online buffers do.
            self.feedback = nn.Linear(d + _FB_DIM, d)
        self.pre = nn.Linear(d, d)
        self.dist_tokens = nn.Parameter(torch.randn(2, d) * 0.02)  # mu, logvar read-out tokens
        self.encoder = nn.TransformerEncoder(_layer(config, False), config.num_layers,
                                             enable_nested_tensor=False)
        self.dec1 = nn.TransformerDecoder(_layer(config, True), config.num_layers)
        self.dec2 = nn.TransformerDecoder(_layer(config, True), config.num_layers)
        self.query_drop = nn.Dropout(config.dropout)
        self.coef_head = nn.Linear(d, schema.COEF_DIM)
        self.attr_hidden = nn.Sequential(nn.Linear(d + schema.COEF_DIM, d), nn.GELU())
        self.attr_head = AttributeHead(d)

    # --- building blocks ------------------------------------------------------------------------
    def _pe(self, start: int, n: int, like: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(start, start + n, device=like.device)
        return sinusoidal_pe(pos, self.config.feature_dim).to(like.dtype)  # (n, D)

    def _latent(self, h: torch.Tensor, pad: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L, D) history features -> mu, logvar, each (N, D)."""
        n = h.shape[0]
        x = torch.cat([self.dist_tokens.expand(n, -1, -1), self.pre(h)], dim=1)  # (N, 2+L, D)
        kpm = None
        if pad is not None:
            kpm = torch.cat([pad.new_zeros(n, 2), pad], dim=1)
        out = self.encoder(x, src_key_padding_mask=kpm)
        return out[:, 0], out[:, 1]

    @staticmethod
    def _draw(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def _decode(self, z: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor | None,
                q_start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode n frames at positions q_start.. from z (N, D) and speaker features.

        ``memory`` (N, L, D) holds the (position-encoded) features of every frame the decoder
        may see, the n decoded frames last. ``pad`` (N, n) marks padded frames (offline, where
        memory and queries are the same n frames); None online (a chunk carries no padding).

        Returns:
            coef (N, n, 58) and raw attribute outputs (N, n, 25).
        """
        mem, mem_pad = z[:, None], None
        if self.config.speaker_frames:
            q = self.query_drop(memory[:, -n:])  # the decoded frames' own features (with PE)
            mem = torch.cat([mem, memory], dim=1)  # (N, 1+L, D)
            if pad is not None:
                mem_pad = torch.cat([pad.new_zeros(pad.shape[0], 1), pad], dim=1)
        else:
            q = self.query_drop(self._pe(q_start, n, z)).expand(z.shape[0], -1, -1)  # (N, n, D)
        causal = causal_mask(n, z.device)
        h = self.dec1(q, mem, tgt_mask=causal, memory_key_padding_mask=mem_pad)
        # Stage 2 attends to stage-1 features of the whole clip/window (baseline), real frames only.
        h = self.dec2(h, h, tgt_mask=causal, memory_key_padding_mask=pad)  # (N, n, D)
        coef = self.coef_head(h)
        logits = self.attr_head(self.attr_hidden(torch.cat([coef, h], dim=-1)))
        return coef, logits

    def _temporal(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, D) per-frame features -> + causal depthwise filter over the last frames."""
        if self.config.speaker_context == 1:
            return h
        x = F.pad(h.transpose(1, 2), (self.config.speaker_context - 1, 0))  # (B, D, k-1+T)
        return h + self.context(x).transpose(1, 2)

    # --- offline --------------------------------------------------------------------------------
    def _speaker_offline(self, batch: ReactionBatch) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._temporal(self.speaker(batch.speaker_attr, batch.speaker_coef,
                                        batch.speaker_audio))
        h = h + self._pe(0, batch.num_frames, h)  # (B, T, D)
        return h, ~batch.mask

    # --- online ---------------------------------------------------------------------------------
    def start(self, batch_size: int, num_samples: int = 1, listener_idx: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> OnlineState:
        """Empty causal state for ``batch_size`` speakers and K = ``num_samples`` reactions each.

        ``listener_idx`` is accepted for the common API; Trans-VAE is not personalised.
        """
        if not self.config.online:
            raise NotImplementedError("TransVAE was built with online=False; build it with "
                                      "online=True to use start/step")
        dtype = self.dist_tokens.dtype
        d = self.config.feature_dim
        return OnlineState(
            num_samples=num_samples,
            spk=torch.zeros(batch_size, 0, d, device=device, dtype=dtype),
            fb=torch.zeros(batch_size * num_samples, 0, _FB_DIM, device=device, dtype=dtype),
        )

    def _step(self, state: OnlineState, attr: torch.Tensor, coef: torch.Tensor | None,
              audio: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One window, with gradients.

        Returns:
            coef (B*K, n, 58), raw attributes (B*K, n, 25), mu and logvar (B*K, D).
        """
        b, n = attr.shape[:2]
        if state.spk.shape[0] != b:
            raise ValueError(f"step got {b} speakers, the state was started for "
                             f"{state.spk.shape[0]}; call start() with this batch size")
        if not 0 < n <= self.config.window_size:
            raise ValueError(
                f"step takes 1..window_size={self.config.window_size} frames, got {n}; feed the "
                f"speaker in chunks of window_size frames"
            )
        k, hmax = state.num_samples, self.config.max_history
        # keep speaker_context - 1 extra frames so the filter is exact on the whole history
        keep = hmax + self.config.speaker_context - 1
        spk = torch.cat([state.spk, self.speaker(attr, coef, audio)], dim=1)[:, -keep:]
        ctx = self._temporal(spk)[:, -hmax:]  # (B, h, D)
        h = ctx.shape[1]
        fb = torch.cat([state.fb, state.fb.new_zeros(b * k, n, _FB_DIM)], dim=1)[:, -hmax:]
        hist = self.feedback(torch.cat([ctx.repeat_interleave(k, dim=0), fb], dim=-1))
        hist = hist + self._pe(0, h, hist)  # (B*K, h, D), positions relative to the history
        mu, logvar = self._latent(hist, None)
        out_coef, logits = self._decode(self._draw(mu, logvar), hist, None, h - n, n)
        # Feed back the model's own (probability-valued) outputs, without gradients through time.
        own = torch.cat([attr_to_metric(logits), out_coef], dim=-1).detach()
        state.spk = spk
        state.fb = torch.cat([fb[:, :h - n], own], dim=1)
        state.t += n
        return out_coef, logits, mu, logvar

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
            attributes (B, K, n, 25) with binary AUs, and 3DMM (B, K, n, 58).
        """
        coef, logits, _, _ = self._step(state, speaker_attr, speaker_coef, speaker_audio)
        b, k, n = speaker_attr.shape[0], state.num_samples, speaker_attr.shape[1]
        attr = attr_to_metric(logits, binarize=True)
        return attr.view(b, k, n, -1), coef.view(b, k, n, -1)

    def _chunks(self, batch: ReactionBatch):
        w = self.config.window_size
        for s in range(0, batch.num_frames, w):
            sl = slice(s, s + w)
            yield (batch.speaker_attr[:, sl],
                   None if batch.speaker_coef is None else batch.speaker_coef[:, sl],
                   None if batch.speaker_audio is None else batch.speaker_audio[:, sl])

    def _run_online(self, batch: ReactionBatch
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whole clip, K=1, window by window: coef (B,T,58), raw attrs (B,T,25), mean KL."""
        state = self.start(batch.batch_size, 1, batch.listener_idx, batch.speaker_attr.device)
        coefs, logits, kls = [], [], []
        for chunk in self._chunks(batch):
            c, lg, mu, logvar = self._step(state, *chunk)
            coefs.append(c)
            logits.append(lg)
            kls.append(_kl(mu, logvar))
        return torch.cat(coefs, 1), torch.cat(logits, 1), torch.stack(kls).mean()

    # --- public API -----------------------------------------------------------------------------
    def forward(self, batch: ReactionBatch) -> dict[str, torch.Tensor]:
        """Training losses on a batch with listener targets.

        Returns:
            0-d tensors: "total", "rec", "attr", "kl", "div" and "coef" when the batch has
            listener 3DMM. Padded frames and ``context_frames`` are excluded from every term.
        """
        if batch.listener_attr is None:
            raise ValueError("TransVAE.forward needs batch.listener_attr (the training targets), "
                             "got None; use sample() for inference")
        cfg, mask = self.config, batch.loss_mask
        if cfg.online:
            coef, logits, kl = self._run_online(batch)
            with torch.no_grad():  # baseline: the diversity pass has no gradient
                coef2, logits2, _ = self._run_online(batch)
        else:
            h, pad = self._speaker_offline(batch)
            mu, logvar = self._latent(h, pad)
            coef, logits = self._decode(self._draw(mu, logvar), h, pad, 0, batch.num_frames)
            kl = _kl(mu, logvar)
            with torch.no_grad():
                coef2, logits2 = self._decode(self._draw(mu, logvar), h, pad, 0, batch.num_frames)
        losses = {"attr": attribute_loss(logits, batch.listener_attr, mask, au_loss=cfg.au_loss,
                                         w_va=cfg.w_va)}
        rec = cfg.w_emo * losses["attr"]
        if batch.listener_coef is not None:
            losses["coef"] = coef_loss(coef, batch.listener_coef, mask, w_exp=cfg.w_exp,
                                       w_rot=cfg.w_rot, w_trans=cfg.w_trans)
            rec = rec + losses["coef"]
        div = _similarity(coef, coef2, mask) + _similarity(
            attr_to_metric(logits), attr_to_metric(logits2), mask)
        losses.update(rec=rec, kl=kl, div=div)
        losses["total"] = rec + cfg.kl_p * kl + cfg.div_p * div
        return losses

    @torch.no_grad()
    def sample(self, batch: ReactionBatch, num_samples: int = 10) -> ReactionSample:
        """K reactions per speaker: attributes (B, K, T, 25) with binary AUs, 3DMM (B, K, T, 58).

        Online models generate window by window through :meth:`start` / :meth:`step`, so the
        result equals driving ``step`` by hand (same RNG state) and is causal.
        """
        b, t, k = batch.batch_size, batch.num_frames, num_samples
        if self.config.online:
            state = self.start(b, k, batch.listener_idx, batch.speaker_attr.device)
            outs = [self.step(state, *chunk) for chunk in self._chunks(batch)]
            return ReactionSample(attr=torch.cat([a for a, _ in outs], dim=2),
                                  coef=torch.cat([c for _, c in outs], dim=2))
        h, pad = self._speaker_offline(batch)
        mu, logvar = self._latent(h, pad)
        z = self._draw(mu.repeat_interleave(k, 0), logvar.repeat_interleave(k, 0))  # (B*K, D)
        coef, logits = self._decode(z, h.repeat_interleave(k, 0), pad.repeat_interleave(k, 0),
                                    0, t)
        attr = attr_to_metric(logits, binarize=True)
        return ReactionSample(attr=attr.view(b, k, t, -1), coef=coef.view(b, k, t, -1))


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, I)), mean over elements (the baseline's KLLoss)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()


def _similarity(y1: torch.Tensor, y2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Baseline diversity term: mean_b exp(-||y1_b - y2_b||^2 / 100) over masked frames.

    Args:
        y1, y2: (B, T, F) two samples for the same speakers.
        mask: (B, T) bool frames that count.
    """
    sq = ((y1 - y2) ** 2 * mask[..., None].to(y1.dtype)).flatten(1).sum(1)  # (B,)
    return torch.exp(-sq / 100.0).mean()


__all__ = ["Config", "OnlineState", "TransVAE"]
