"""Networks of PerFRDiff (see ``perfrdiff.py``): the transformer-decoder denoiser whose chosen
weights accept per-sample low-rank edits, the person-specific history encoder and the modifier
hypernetwork that turns a person embedding into those edits.

Frames are 83-d: 25 facial attributes then 58 3DMM coefficients (``FRAME_ATTR``/``FRAME_COEF``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from react_data import schema
from react_models._blocks import sinusoidal_pe

FRAME_DIM = schema.ATTR_DIM + schema.COEF_DIM  # 83: the diffused listener frame
FRAME_ATTR = slice(0, schema.ATTR_DIM)
FRAME_COEF = slice(schema.ATTR_DIM, FRAME_DIM)


def to_metric_space(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split generated frames (..., 83) into metric-space attrs (..., 25) and 3DMM (..., 58).

    AU -> {0, 1} at 0.5; VA clamped to [-1, 1]; expressions clamped at 0 and renormalised
    (uniform when all are 0): the model predicts probabilities, a softmax would flatten them.
    """
    a = x[..., FRAME_ATTR]
    au = (a[..., schema.AU] >= 0.5).to(x.dtype)
    va = a[..., schema.VA].clamp(-1.0, 1.0)
    ex = a[..., schema.EXPR].clamp_min(0.0)
    s = ex.sum(-1, keepdim=True)
    ex = torch.where(s > 1e-6, ex / s.clamp_min(1e-6), torch.full_like(ex, 1.0 / schema.N_EXPR))
    return torch.cat([au, va, ex], -1), x[..., FRAME_COEF]


def gather_frames(x: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    """(N, T, F) values at (N, L) frame indices -> (N, L, F); negative indices read frame 0
    (callers mask them). A (N, T) bool mask gathers to (N, L), False at negative indices."""
    if x is None:
        return None
    if x.dim() == 2:
        return x.gather(1, idx.clamp_min(0)) & (idx >= 0)
    return x.gather(1, idx.clamp_min(0)[..., None].expand(-1, -1, x.shape[-1]))


def cat_frames(attr: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
    """(B, T, 25) + (B, T, 58)|None -> (B, T, 83); a missing 3DMM becomes zero slots."""
    if coef is None:
        coef = attr.new_zeros(*attr.shape[:2], schema.COEF_DIM)
    return torch.cat([attr, coef], -1)


# memory segment types (learned type embedding added to every memory token)
SEG_TIME, SEG_AUDIO, SEG_COEF, SEG_ATTR, SEG_PERSON = range(5)


class LowRankEdit(NamedTuple):
    """Per-sample weight delta ``ΔW = u @ v`` of a (out, in) weight.

    Attributes:
        u: (N, out, r).
        v: (N, r, in).
    """

    u: torch.Tensor
    v: torch.Tensor

    def repeat(self, k: int) -> LowRankEdit:
        """Repeat every sample ``k`` times (rows b*k .. b*k+k-1 belong to sample b)."""
        return LowRankEdit(self.u.repeat_interleave(k, 0), self.v.repeat_interleave(k, 0))


def _delta(x: torch.Tensor, edit: LowRankEdit, rows: slice = slice(None)) -> torch.Tensor:
    """``x @ ΔW[rows]^T`` without forming ΔW: (N, L, in) -> (N, L, out_rows)."""
    return (x @ edit.v.transpose(1, 2)) @ edit.u[:, rows].transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_pad: torch.Tensor | None,
            heads: int, dropout_p: float, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head attention on projected inputs: (N, L, d), (N, S, d) x2 -> (N, L, d).

    ``key_pad`` (N, S) is True on keys to ignore; every row must keep at least one key.
    ``bias`` (h, L, S): added to the attention logits.
    """
    n, length, d = q.shape
    q = q.view(n, length, heads, d // heads).transpose(1, 2)  # (N, h, L, dh)
    k = k.view(n, k.shape[1], heads, d // heads).transpose(1, 2)  # (N, h, S, dh)
    v = v.view(n, v.shape[1], heads, d // heads).transpose(1, 2)
    mask = None if key_pad is None else ~key_pad[:, None, None, :]  # True = attend
    if bias is not None:
        bias = bias[None].to(q.dtype)
        mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    return o.transpose(1, 2).reshape(n, length, d)


def safe_key_pad(key_pad: torch.Tensor) -> torch.Tensor:
    """Unmask rows whose keys are all padding (their outputs are never used; avoids NaN)."""
    return key_pad & ~key_pad.all(-1, keepdim=True)


class DecoderLayer(nn.Module):
    """Post-norm transformer decoder layer (self-attn, cross-attn, GELU MLP).

    The cross-attention in-projection ``cross_in`` (3d x d: q, k, v rows) accepts a per-sample
    low-rank edit ``W' = W + u v``.
    """

    def __init__(self, d: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.p = heads, dropout
        self.self_in, self.self_out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.cross_in, self.cross_out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def memory_kv(self, mem: torch.Tensor, edit: LowRankEdit | None = None) -> torch.Tensor:
        """Cross-attention keys and values of memory tokens: (N, M, d) -> (N, M, 2d).

        Depends on the memory and the edit only, so samplers compute it once per sequence.
        """
        d = mem.shape[-1]
        kv = F.linear(mem, self.cross_in.weight[d:], self.cross_in.bias[d:])
        return kv if edit is None else kv + _delta(mem, edit, slice(d, 3 * d))

    def forward(self, x: torch.Tensor, kv: torch.Tensor, x_pad: torch.Tensor,
                mem_pad: torch.Tensor, edit: LowRankEdit | None = None,
                cross_bias: torch.Tensor | None = None) -> torch.Tensor:
        """(N, L, d) queries, (N, M, 2d) memory keys/values (:meth:`memory_kv`), (N, L)/(N, M)
        padding, optional (h, L, M) cross-attention logit bias -> (N, L, d)."""
        p = self.p if self.training else 0.0
        q, k, v = self.self_in(x).chunk(3, -1)
        x = self.norms[0](x + self.drop(self.self_out(_attend(q, k, v, x_pad, self.heads, p))))
        d = x.shape[-1]
        q = F.linear(x, self.cross_in.weight[:d], self.cross_in.bias[:d])
        if edit is not None:
            q = q + _delta(x, edit, slice(0, d))
        k, v = kv.chunk(2, -1)
        x = self.norms[1](x + self.drop(self.cross_out(_attend(q, k, v, mem_pad, self.heads, p,
                                                                  cross_bias))))
        return self.norms[2](x + self.drop(self.ff(x)))


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal timestep features, cosines first (flip_sin_to_cos): (N,) -> (N, dim)."""
    half = dim // 2
    freq = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    arg = t.float()[:, None] * freq[None]
    return torch.cat([torch.cos(arg), torch.sin(arg)], -1)


class Denoiser(nn.Module):
    """x_t (N, L, 83) + timestep + condition memory -> predicted x0 (N, L, 83)."""

    def __init__(self, *, d: int, layers: int, heads: int, ff: int, dropout: float, max_len: int,
                 time_dim: int, audio_dim: int, person_dim: int | None,
                 distance_bias: bool = False) -> None:
        super().__init__()
        self.time_dim = time_dim
        # ALiBi-style slopes 2^(-8 h / H), h = 1..H: head h's logit falls by slope_h per frame of
        # distance between a listener frame and a speaker frame (None: no bias, the spec).
        self.slopes = (2.0 ** (-8.0 * torch.arange(1, heads + 1) / heads)).tolist() \
            if distance_bias else None
        self.in_proj = nn.Linear(FRAME_DIM, d)
        # Learned PEs, both initialised with the same sinusoidal table: query frame i and memory
        # frame j start aligned (their dot products peak near i == j) and at the scale of the
        # projected frames, so cross-attention can find the speaker's nearby frames even when x_t
        # is pure noise (random 0.02-scale tables gave queries no usable position at high t).
        pe = sinusoidal_pe(torch.arange(max_len), d)
        self.query_pe = nn.Parameter(pe.clone())
        self.memory_pe = nn.Parameter(pe.clone())
        self.segment = nn.Parameter(torch.randn(5, d) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.audio = nn.Linear(audio_dim, d)
        self.coef = nn.Linear(schema.COEF_DIM, d)
        self.attr = nn.Linear(schema.ATTR_DIM, d)
        self.person = nn.Linear(person_dim, d) if person_dim else None
        self.layers = nn.ModuleList(DecoderLayer(d, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, FRAME_DIM)

    def condition(self, attr: torch.Tensor, coef: torch.Tensor | None,
                  audio: torch.Tensor | None, pad: torch.Tensor, positions: torch.Tensor,
                  keep: torch.Tensor | None = None,
                  person: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Speaker (and person) memory tokens, without the timestep token.

        Args:
            attr: (N, S, 25) speaker attributes; coef (N, S, 58) or None; audio (N, S, A) or None.
            pad: (N, S) True on padded speaker frames.
            positions: (S,) frame positions (index into the learned memory PE).
            keep: (N, 3) 0/1 keep flags for audio, 3DMM, attributes (condition dropout); None = 1.
            person: (N, P) person embedding (personalised models) or None.

        Returns:
            memory (N, M, d), its padding mask (N, M) and each token's frame position (M,)
            (-1 for the person token).
        """
        pe = self.memory_pe[positions]  # (S, d)
        toks, pads, frames = [], [], []
        for j, (x, proj, seg) in enumerate(((audio, self.audio, SEG_AUDIO),
                                            (coef, self.coef, SEG_COEF),
                                            (attr, self.attr, SEG_ATTR))):
            if x is None:  # a missing modality contributes no tokens
                continue
            h = proj(x)  # (N, S, d)
            if keep is not None:
                h = h * keep[:, j, None, None]  # dropped condition: zeroed tokens
            toks.append(h + pe + self.segment[seg])
            pads.append(pad)
            frames.append(positions)
        if person is not None and self.person is not None:
            toks.append((self.person(person) + self.segment[SEG_PERSON])[:, None])
            pads.append(torch.zeros_like(pad[:, :1]))
            frames.append(positions.new_full((1,), -1))
        return torch.cat(toks, 1), torch.cat(pads, 1), torch.cat(frames)

    def distance_bias(self, positions: torch.Tensor, memory_frames: torch.Tensor) -> torch.Tensor:
        """(h, L, 1 + M) cross-attention logit bias: ``-slope_h * |i - j|`` between listener
        frame i and a speaker token of frame j; 0 for the timestep and person tokens."""
        frames = torch.cat([memory_frames.new_full((1,), -1), memory_frames]).to(torch.float32)
        dist = (positions.to(torch.float32)[:, None] - frames[None]).abs()  # (L, 1 + M)
        dist = dist.masked_fill(frames[None] < 0, 0.0)
        slopes = torch.tensor(self.slopes, device=dist.device)[:, None, None]
        return -slopes * dist[None]

    def memory_cache(self, memory: torch.Tensor,
                     edits: dict[str, LowRankEdit] | None = None) -> list[torch.Tensor]:
        """Per-layer cross-attention keys/values of the condition memory, (N, M, 2d) each:
        constant over a sampling run, so computed once instead of once per step."""
        edits = edits or {}
        return [layer.memory_kv(memory, edits.get(f"layer{i}"))
                for i, layer in enumerate(self.layers)]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, memory: torch.Tensor | None,
                memory_pad: torch.Tensor, positions: torch.Tensor, pad: torch.Tensor,
                edits: dict[str, LowRankEdit] | None = None,
                cache: list[torch.Tensor] | None = None,
                memory_frames: torch.Tensor | None = None) -> torch.Tensor:
        """Predict x0.

        Args:
            x_t: (N, L, 83) noisy listener frames; t: (N,) long timesteps.
            memory, memory_pad: (N, M, d) and (N, M) from :meth:`condition` (``memory`` may be
                None when ``cache`` is given).
            positions: (L,) query frame positions; pad: (N, L) True on padded queries.
            edits: per-sample low-rank edits keyed "layer<i>" / "head".
            cache: :meth:`memory_cache` of ``memory`` with the same edits.
            memory_frames: (M,) frame positions of the memory tokens (:meth:`condition`); used
                by the distance bias.

        Returns:
            (N, L, 83) x0 prediction.
        """
        edits = edits or {}
        if cache is None:
            cache = self.memory_cache(memory, edits)
        tok = self.time_mlp(timestep_features(t, self.time_dim)) + self.segment[SEG_TIME]
        tok = tok[:, None]  # (N, 1, d): the timestep token leads the memory
        mem_pad = safe_key_pad(torch.cat([torch.zeros_like(memory_pad[:, :1]), memory_pad], 1))
        pad = safe_key_pad(pad)
        h = self.in_proj(x_t) + self.query_pe[positions]  # (N, L, d)
        bias = None if self.slopes is None or memory_frames is None else \
            self.distance_bias(positions, memory_frames)
        for i, layer in enumerate(self.layers):
            edit = edits.get(f"layer{i}")
            kv = torch.cat([layer.memory_kv(tok, edit), cache[i]], 1)  # (N, 1 + M, 2d)
            h = layer(h, kv, pad, mem_pad, edit, bias)
        h = self.norm(h)
        out = self.head(h)
        if "head" in edits:
            out = out + _delta(h, edits["head"])
        return out


class PersonEncoder(nn.Module):
    """Transformer over a listener's past frames (N, H, 83) -> person embedding (N, out_dim)."""

    def __init__(self, *, d: int, heads: int, ff: int, layers: int, dropout: float,
                 out_dim: int) -> None:
        super().__init__()
        self.d = d
        self.in_proj = nn.Linear(FRAME_DIM, d)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.Linear(d, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    def forward(self, frames: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(N, H, 83) history and (N, H) padding -> (N, out_dim) (masked mean pooling)."""
        pos = torch.arange(frames.shape[1], device=frames.device)
        h = self.in_proj(frames) + sinusoidal_pe(pos, self.d)
        h = self.encoder(h, src_key_padding_mask=safe_key_pad(pad))
        m = (~pad).to(h.dtype)[..., None]  # (N, H, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)  # (N, d); all-padding rows -> 0
        return self.out(pooled)


class Modifier(nn.Module):
    """Hypernetwork: person embedding -> low-rank weight deltas for the named targets.

    Shared ReLU MLP, then one linear branch per target emitting ``u`` (out x r) and ``v``
    (r x in). The ``u`` half starts at zero, so an untrained modifier leaves the generic
    denoiser unchanged (as LoRA does).
    """

    def __init__(self, embed_dim: int, hidden: int, targets: dict[str, tuple[int, int]],
                 rank: int) -> None:
        super().__init__()
        self.rank, self.shapes = rank, dict(targets)
        self.shared = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(),
                                    nn.Linear(hidden, hidden), nn.ReLU())
        self.branches = nn.ModuleDict(
            {name: nn.Linear(hidden, rank * (o + i)) for name, (o, i) in self.shapes.items()}
        )
        with torch.no_grad():
            for name, (o, _) in self.shapes.items():
                self.branches[name].weight[: rank * o].zero_()
                self.branches[name].bias[: rank * o].zero_()

    def forward(self, e: torch.Tensor) -> dict[str, LowRankEdit]:
        """(N, embed_dim) -> {target: LowRankEdit with u (N, out, r), v (N, r, in)}."""
        h = self.shared(e)
        edits = {}
        for name, (o, i) in self.shapes.items():
            flat = self.branches[name](h)  # (N, r*(o+i))
            u = flat[:, : self.rank * o].view(-1, o, self.rank)
            v = flat[:, self.rank * o:].view(-1, self.rank, i) / math.sqrt(i)  # O(1) per row
            edits[name] = LowRankEdit(u, v)
        return edits
