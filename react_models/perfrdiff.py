"""PerFRDiff: a transformer-decoder diffusion model of listener reactions, with optional
person-specific weight editing (spec §4.4 generic model, §4.5 personalisation).

What is diffused: one 83-d frame per time step = 25 listener attributes (metric space) followed by
58 3DMM coefficients (normalised). The 2025 baseline diffuses the 25-d emotion only; we add 3DMM
because rendering needs it. A missing listener 3DMM (``None``) leaves zeros in those slots and
takes no loss on them.

Denoiser (x0 prediction): queries = Linear(x_t) + learned PE; memory = [timestep token, speaker
audio tokens, speaker 3DMM tokens, speaker attribute tokens, (+ person token)], each plus a learned
frame PE and a learned segment-type embedding; post-norm decoder layers; LayerNorm; Linear -> 83.
Deviation: the spec's one learned memory PE over the concatenated memory is split into a frame PE
shared by the three per-frame segments plus a type embedding (same information, 3x smaller table).
Optional (``distance_bias=True``, off by default as in the spec): an ALiBi-style bias on the
cross-attention logits, ``-slope_h * |i - j|`` between listener frame i and speaker-token frame j
(slopes ``2^(-8 h / H)``; 0 for the timestep and person tokens): the prior that a reaction
follows nearby speaker frames, which the learned PEs otherwise have to discover. On the
synthetic set it made 5-epoch CPU training beat Mime in 12 of 12 runs instead of 8 of 10.

Offline: whole sequences (chunks of ``max_len`` frames, trained on random ``max_len`` crops) with
key-padding masks. Online: windows of ``window_size`` listener frames conditioned on speaker frames
``[end - s_ratio*window_size, end)`` (never beyond the window end), generated window by window;
listener windows are independent given the speaker (the baseline drops past-listener input).

Personalisation (``personalised=True``): person embedding = learned table[listener_idx] + (online
models, when the batch has listener context frames: past listener behaviour, a legitimate input)
a transformer encoder over those frames (at most ``history_max_len``). The current clip's target
frames are never used as history: they would leak the target; offline batches have no context, so
offline models use the table alone. The embedding adds a memory token and drives a
modifier hypernetwork emitting per-sample weight deltas for the cross-attention in-projections of
``edited_layers`` and the output head. Deviation: the spec's full-rank hypernet (~1.6 B params) is
replaced by low-rank deltas ``ΔW = U·V`` of rank ``edit_rank``, applied with explicit bmm.

Training: each item is repeated ``num_preds_train`` times with independent timesteps, noise and
(online) random window ends; speaker condition segments are zeroed per sample with the
``cond_drop_*`` probabilities (the unconditional branch of classifier-free guidance); the loss is
the group-weighted x0 MSE on valid, non-context frames, plus (``temporal_loss_w`` > 0, the
baseline's knob, 0 there) the same weighted MSE on frame-to-frame differences. The spec trains
the hypernetwork on a frozen generic model; here everything trains jointly (freeze ``denoiser``
by hand for that recipe).

Sampling post-processing to metric space: AU -> (x >= 0.5) in {0, 1}; VA clamped to [-1, 1];
expressions clamped at 0 and renormalised to sum 1 (uniform if all zero). Not softmax: the model
predicts probabilities directly, and softmax of values in [0, 1] would flatten them.
"""

from __future__ import annotations

import torch
from torch import nn

from react_data import schema
from react_data.batch import ReactionBatch
from react_models import diffusion
from react_models._blocks import masked_mean
from react_models._perfrdiff_config import PerFRDiffConfig, _check
from react_models._perfrdiff_nets import (
    FRAME_COEF,
    FRAME_DIM,
    Denoiser,
    LowRankEdit,
    Modifier,
    PersonEncoder,
    cat_frames,
    gather_frames,
    to_metric_space,
)
from react_models._perfrdiff_online import PerFRDiffState, eval_mode, online_step
from react_models.base import ReactionModel, ReactionSample
from react_models.registry import register


@register
class PerFRDiff(ReactionModel):
    """Diffusion listener-reaction generator (offline or online), optionally personalised."""

    name = "perfrdiff"
    config_cls = PerFRDiffConfig

    def __init__(self, config: PerFRDiffConfig) -> None:
        super().__init__(config)
        c = config
        self.schedule = diffusion.NoiseSchedule(c.num_train_steps, c.noise_schedule)
        self.denoiser = Denoiser(d=c.latent_dim, layers=c.num_layers, heads=c.num_heads,
                                 ff=c.ff_dim, dropout=c.dropout, max_len=c.max_len,
                                 time_dim=c.time_embed_dim, audio_dim=c.audio_dim,
                                 person_dim=c.person_embed_dim if c.personalised else None,
                                 distance_bias=c.distance_bias)
        self.person_table = self.person_encoder = self.modifier = None
        if c.personalised:
            self.person_table = nn.Embedding(c.num_persons, c.person_embed_dim)
            if c.online and c.person_encoder_layers:  # history = listener context (online only)
                self.person_encoder = PersonEncoder(
                    d=c.latent_dim, heads=c.num_heads, ff=c.ff_dim, layers=c.person_encoder_layers,
                    dropout=c.dropout, out_dim=c.person_embed_dim)
            d = c.latent_dim
            targets = {f"layer{i}": (3 * d, d) for i in c.edit_targets()}
            if c.edit_head:
                targets["head"] = (FRAME_DIM, d)
            self.modifier = Modifier(c.person_embed_dim, c.hyper_hidden, targets, c.edit_rank)

    # ----------------------------------------------------------------------------- inputs
    def _check_batch(self, batch: ReactionBatch, targets: bool) -> None:
        if not isinstance(batch, ReactionBatch):
            raise TypeError(f"expected a ReactionBatch, got {type(batch).__name__}")
        dims = {"speaker_attr": schema.ATTR_DIM, "speaker_coef": schema.COEF_DIM,
                "speaker_audio": self.config.audio_dim, "listener_attr": schema.ATTR_DIM,
                "listener_coef": schema.COEF_DIM}
        for f, dim in dims.items():
            v = getattr(batch, f)
            if v is not None and v.shape[-1] != dim:
                raise ValueError(f"batch.{f} has {v.shape[-1]} features per frame, expected {dim}"
                                 + ("; set the config's audio_dim" if f == "speaker_audio" else ""))
        if targets and batch.listener_attr is None:
            raise ValueError("PerFRDiff.forward needs batch.listener_attr (training targets); "
                             "got None (an inference batch?)")

    def _person(self, listener_idx: torch.Tensor | None, history: tuple | None,
                device: torch.device) -> torch.Tensor | None:
        """(B,) person indices (+ listener history) -> (B, person_embed_dim) or None."""
        if not self.config.personalised:
            return None
        if listener_idx is None or listener_idx.dim() != 1 or listener_idx.is_floating_point():
            raise ValueError("a personalised PerFRDiff needs listener_idx as a (B,) integer tensor,"
                             f" got {None if listener_idx is None else tuple(listener_idx.shape)}")
        n = self.config.num_persons
        if listener_idx.numel() and not 0 <= int(listener_idx.min()) <= int(listener_idx.max()) < n:
            raise ValueError(f"listener_idx must lie in [0, {n}), got max "
                             f"{int(listener_idx.max())}; raise the config's num_persons")
        e = self.person_table(listener_idx.to(device).long())
        if history is not None and self.person_encoder is not None:
            attr, coef, valid = history
            e = e + self.person_encoder(cat_frames(attr, coef).to(device), ~valid.to(device))
        return e

    def _batch_history(self, batch: ReactionBatch) -> tuple | None:
        """The listener's context frames (online task) as person history, or None."""
        c, n = self.config, batch.context_frames
        if self.person_encoder is None or n <= 0 or batch.listener_attr is None:
            return None
        lo = max(0, n - c.history_max_len)
        coef = None if batch.listener_coef is None else batch.listener_coef[:, lo:n]
        return batch.listener_attr[:, lo:n], coef, batch.mask[:, lo:n]

    def _personal_rows(self, e: torch.Tensor | None, k: int
                       ) -> tuple[torch.Tensor | None, dict[str, LowRankEdit] | None]:
        """(B, P) person embedding -> per-row (B*k) embedding and weight edits."""
        if e is None:
            return None, None
        edits = {n: ed.repeat(k) for n, ed in self.modifier(e).items()}
        return e.repeat_interleave(k, 0), edits

    # ----------------------------------------------------------------------------- training
    def forward(self, batch: ReactionBatch) -> dict[str, torch.Tensor]:
        """Diffusion training losses (x0 MSE per group on valid, non-context frames).

        Returns:
            {"total", "au", "va", "expr"(, "coef")} 0-d tensors.
        """
        self._check_batch(batch, targets=True)
        c, k = self.config, self.config.num_preds_train
        dev = batch.speaker_attr.device

        def rep(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.repeat_interleave(k, 0)  # (B*K, ...)

        x0 = rep(cat_frames(batch.listener_attr, batch.listener_coef))  # (N, T, 83)
        spk = [rep(batch.speaker_attr), rep(batch.speaker_coef), rep(batch.speaker_audio)]
        mask, loss_mask = rep(batch.mask), rep(batch.loss_mask)
        n, t_len = x0.shape[:2]
        if c.online:
            w, s = c.window_size, c.s_ratio * c.window_size
            end = self._window_ends(mask, batch.context_frames)  # (N,)
            lis = end[:, None] - w + torch.arange(w, device=dev)  # (N, w) frame indices
            sp = end[:, None] - s + torch.arange(s, device=dev)  # (N, s)
            x0, q_valid, loss_mask = (gather_frames(v, lis) for v in (x0, mask, loss_mask))
            spk, s_valid = [gather_frames(x, sp) for x in spk], gather_frames(mask, sp)
            q_pos, m_pos = torch.arange(s - w, s, device=dev), torch.arange(s, device=dev)
        else:
            if t_len > c.max_len:  # random max_len crop, the same for the whole batch
                o = int(torch.randint(0, t_len - c.max_len + 1, ()))
                x0, mask, loss_mask = (v[:, o:o + c.max_len] for v in (x0, mask, loss_mask))
                spk = [None if x is None else x[:, o:o + c.max_len] for x in spk]
            q_valid = s_valid = mask
            q_pos = m_pos = torch.arange(x0.shape[1], device=dev)
        person, edits = self._personal_rows(
            self._person(batch.listener_idx, self._batch_history(batch), dev), k)
        keep = None
        if self.training:
            p = torch.tensor([c.cond_drop_audio, c.cond_drop_3dmm, c.cond_drop_emotion], device=dev)
            keep = (torch.rand(n, 3, device=dev) >= p).to(x0.dtype)  # (N, 3)
        memory, memory_pad, m_frames = self.denoiser.condition(*spk, ~s_valid, m_pos, keep,
                                                               person)
        t = self.schedule.sample_timesteps(n, device=dev)
        x_t = self.schedule.q_sample(x0, t)
        x0_hat = self.denoiser(x_t, t, memory, memory_pad, q_pos, ~q_valid, edits,
                               memory_frames=m_frames)
        return self._losses(x0_hat, x0, loss_mask, batch.listener_coef is not None)

    def _window_ends(self, mask: torch.Tensor, context: int) -> torch.Tensor:
        """(N, T) validity -> (N,) random window ends e (exclusive) with a target frame in
        [e - w, e): e ~ U[max(min(w, L), context + 1), L], L = valid length."""
        t = mask.shape[1]
        length = (mask * torch.arange(1, t + 1, device=mask.device)).amax(1)  # (N,)
        lo = torch.minimum(length.clamp(max=self.config.window_size).clamp(min=context + 1),
                           length)
        u = torch.rand(length.shape, device=mask.device)
        return lo + (u * (length - lo + 1)).long().clamp(max=(length - lo).clamp(min=0))

    def _losses(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                has_coef: bool) -> dict[str, torch.Tensor]:
        c = self.config
        se = (pred - target) ** 2  # (N, L, 83)
        out = {"au": masked_mean(se[..., schema.AU], mask),
               "va": masked_mean(se[..., schema.VA], mask),
               "expr": masked_mean(se[..., schema.EXPR], mask)}
        total = c.w_au * out["au"] + c.w_va * out["va"] + c.w_em * out["expr"]
        if has_coef:
            out["coef"] = masked_mean(se[..., FRAME_COEF], mask)
            total = total + c.w_coef * out["coef"]
        if c.temporal_loss_w > 0:  # frame-to-frame differences of x0_hat vs the target's
            ve = ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2
            pair = mask[:, 1:] & mask[:, :-1]
            vel = (c.w_au * masked_mean(ve[..., schema.AU], pair)
                   + c.w_va * masked_mean(ve[..., schema.VA], pair)
                   + c.w_em * masked_mean(ve[..., schema.EXPR], pair))
            if has_coef:
                vel = vel + c.w_coef * masked_mean(ve[..., FRAME_COEF], pair)
            out["temporal"] = vel
            total = total + c.temporal_loss_w * vel
        return {"total": total, **out}

    # ----------------------------------------------------------------------------- sampling
    def _generate(self, spk: list, spk_pad: torch.Tensor, m_pos: torch.Tensor,
                  q_pos: torch.Tensor, q_pad: torch.Tensor, person: torch.Tensor | None,
                  edits: dict | None, opts: diffusion.SamplerConfig,
                  generator: torch.Generator) -> torch.Tensor:
        """Run the sampler for (N, L) query frames; returns (N, L, 83) x0."""
        n = spk_pad.shape[0]
        mem, mpad, m_frames = self.denoiser.condition(*spk, spk_pad, m_pos, None, person)
        cache = self.denoiser.memory_cache(mem, edits)  # constant over the sampling steps

        def cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, t, None, mpad, q_pos, q_pad, edits, cache, m_frames)

        uncond = None
        if opts.guidance_scale != 1.0:  # unconditional branch: all speaker tokens dropped
            zeros = spk_pad.new_zeros(n, 3, dtype=spk[0].dtype)
            umem, umpad, _ = self.denoiser.condition(*spk, spk_pad, m_pos, zeros, person)
            ucache = self.denoiser.memory_cache(umem, edits)

            def uncond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return self.denoiser(x, t, None, umpad, q_pos, q_pad, edits, ucache, m_frames)

        return opts.run(self.schedule, cond, uncond, (n, q_pad.shape[1], FRAME_DIM),
                        generator=generator, device=spk_pad.device)

    @staticmethod
    def _generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
        if generator is not None:
            return generator
        seed = int(torch.randint(0, 2**62, ()))  # follows torch.manual_seed
        return torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def sample(self, batch: ReactionBatch, num_samples: int = 10, *, sampler: str | None = None,
               steps: int | None = None, eta: float | None = None,
               guidance_scale: float | None = None,
               generator: torch.Generator | None = None) -> ReactionSample:
        """K reactions per speaker: attrs (B, K, T, 25) in metric space, 3DMM (B, K, T, 58).

        ``sampler``/``steps``/``eta``/``guidance_scale`` override the config for this call.
        ``generator`` seeds all noise (default: one seeded from torch's global RNG). Runs in
        eval mode (restored after). Online models generate window by window via start/step.
        """
        self._check_batch(batch, targets=False)
        _check(isinstance(num_samples, int) and num_samples >= 1,
               f"num_samples must be an int >= 1, got {num_samples!r}")
        c, b, k = self.config, batch.batch_size, num_samples
        dev = batch.speaker_attr.device
        g = self._generator(generator, dev)
        if c.online:
            state = self.start(b, k, batch.listener_idx, dev, generator=g, sampler=sampler,
                               steps=steps, eta=eta, guidance_scale=guidance_scale,
                               listener_history=self._batch_history(batch))
            outs = [self.step(state, batch.speaker_attr[:, i:i + c.window_size],
                              *(None if x is None else x[:, i:i + c.window_size]
                                for x in (batch.speaker_coef, batch.speaker_audio)),
                              speaker_mask=batch.mask[:, i:i + c.window_size])
                    for i in range(0, batch.num_frames, c.window_size)]
            return ReactionSample(torch.cat([a for a, _ in outs], 2),
                                  torch.cat([m for _, m in outs], 2))
        opts = c.sampler_config(kind=sampler, steps=steps, eta=eta, guidance_scale=guidance_scale)
        with eval_mode(self):
            person, edits = self._personal_rows(
                self._person(batch.listener_idx, self._batch_history(batch), dev), k)
            rows = [None if x is None else x.repeat_interleave(k, 0)
                    for x in (batch.speaker_attr, batch.speaker_coef, batch.speaker_audio)]
            pad = ~batch.mask.repeat_interleave(k, 0)  # (N, T)
            chunks = []
            for i in range(0, batch.num_frames, c.max_len):  # baseline: 750-frame chunks
                sl = slice(i, min(i + c.max_len, batch.num_frames))
                pos = torch.arange(sl.stop - sl.start, device=dev)
                chunks.append(self._generate([None if x is None else x[:, sl] for x in rows],
                                             pad[:, sl], pos, pos, pad[:, sl], person, edits,
                                             opts, g))
        x = torch.cat(chunks, 1).view(b, k, batch.num_frames, FRAME_DIM)  # (B, K, T, 83)
        return ReactionSample(*to_metric_space(x))

    # ----------------------------------------------------------------------------- online API
    @torch.no_grad()
    def start(self, batch_size: int, num_samples: int = 1,
              listener_idx: torch.Tensor | None = None, device: torch.device | str = "cpu", *,
              generator: torch.Generator | None = None, sampler: str | None = None,
              steps: int | None = None, eta: float | None = None,
              guidance_scale: float | None = None,
              listener_history: tuple | None = None) -> PerFRDiffState:
        """Begin online generation for ``batch_size`` speakers x ``num_samples`` reactions.

        Args:
            listener_idx: (B,) person indices (required when personalised).
            generator: seeds all noise (default: seeded from torch's global RNG).
            sampler, steps, eta, guidance_scale: per-run sampler overrides.
            listener_history: optional (attr (B, H, 25), coef (B, H, 58) | None, valid (B, H))
                past listener frames for the person encoder.
        """
        if not self.config.online:
            raise NotImplementedError("this PerFRDiff is offline; build it with online=True "
                                      "to use start/step")
        _check(batch_size >= 1 and num_samples >= 1,
               f"batch_size and num_samples must be >= 1, got {batch_size}, {num_samples}")
        device = torch.device(device)
        opts = self.config.sampler_config(kind=sampler, steps=steps, eta=eta,
                                           guidance_scale=guidance_scale)
        with eval_mode(self):
            person, edits = self._personal_rows(self._person(listener_idx, listener_history,
                                                             device), num_samples)
        return PerFRDiffState(batch_size, num_samples, self._generator(generator, device), opts,
                              person, edits, device)

    @torch.no_grad()
    def step(self, state: PerFRDiffState, speaker_attr: torch.Tensor,
             speaker_coef: torch.Tensor | None, speaker_audio: torch.Tensor | None, *,
             speaker_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate the reaction for the next chunk of n <= window_size speaker frames.

        Args:
            speaker_attr: (B, n, 25); speaker_coef (B, n, 58) or None; speaker_audio (B, n, A)
                or None (presence must not change between steps).
            speaker_mask: (B, n) bool, False on padded frames (default all True).

        Returns:
            attrs (B, K, n, 25) in metric space and 3DMM (B, K, n, 58).
        """
        return online_step(self, state, speaker_attr, speaker_coef, speaker_audio, speaker_mask)
