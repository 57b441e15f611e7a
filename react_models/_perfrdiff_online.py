"""Online (window-by-window) generation of PerFRDiff: the step state and one step.

Kept apart from ``perfrdiff.py`` for length; ``PerFRDiff.start``/``step`` are the public API.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from react_data import schema
from react_models import diffusion
from react_models._perfrdiff_config import _check
from react_models._perfrdiff_nets import FRAME_DIM, LowRankEdit, to_metric_space

if TYPE_CHECKING:
    from react_models.perfrdiff import PerFRDiff


@dataclass
class PerFRDiffState:
    """Online generation state (see :meth:`PerFRDiff.start`); speaker buffers hold the last
    ``s_ratio*window_size`` frames, (B, S, ·)."""

    batch_size: int
    num_samples: int
    generator: torch.Generator
    options: diffusion.SamplerConfig
    person: torch.Tensor | None  # (B*K, P)
    edits: dict[str, LowRankEdit] | None  # rows B*K
    device: torch.device
    attr: torch.Tensor | None = None
    coef: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    frames_seen: int = 0
    modalities: tuple[bool, bool] | None = None  # (has 3DMM, has audio), fixed at the first step


@contextlib.contextmanager
def eval_mode(m: nn.Module) -> Iterator[None]:
    """Run a block with ``m`` in eval mode, then restore its previous mode."""
    was = m.training
    m.eval()  # sampling never uses dropout; the caller's mode is restored afterwards
    try:
        yield
    finally:
        m.train(was)


def online_step(model: PerFRDiff, state: PerFRDiffState, speaker_attr: torch.Tensor,
                speaker_coef: torch.Tensor | None, speaker_audio: torch.Tensor | None,
                speaker_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One online step (see :meth:`PerFRDiff.step`): buffer the chunk, generate the window
    ending at the last frame seen, return its last n frames."""
    c, b, k = model.config, state.batch_size, state.num_samples
    w, s = c.window_size, c.s_ratio * c.window_size
    n = speaker_attr.shape[1] if speaker_attr.dim() == 3 else -1
    _check(tuple(speaker_attr.shape[::2]) == (b, schema.ATTR_DIM) and 1 <= n <= w,
           f"speaker_attr must be (B={b}, n, {schema.ATTR_DIM}) with 1 <= n <= window_size "
           f"{w}, got {tuple(speaker_attr.shape)}")
    mods = (speaker_coef is not None, speaker_audio is not None)
    _check(state.modalities in (None, mods), f"modalities (3DMM, audio) present changed "
           f"from {state.modalities} to {mods}; keep them fixed within one run")
    state.modalities = mods
    dev = state.device
    _check(speaker_mask is None or tuple(speaker_mask.shape) == (b, n),
           f"speaker_mask must be (B={b}, n={n}), got "
           f"{None if speaker_mask is None else tuple(speaker_mask.shape)}")
    mask = torch.ones(b, n, dtype=torch.bool, device=dev) if speaker_mask is None \
        else speaker_mask.to(dev).bool()

    def push(buf: torch.Tensor | None, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        x = x.to(dev)
        return (x if buf is None else torch.cat([buf, x], 1))[:, -s:]

    state.attr, state.coef = push(state.attr, speaker_attr), push(state.coef, speaker_coef)
    state.audio, state.valid = push(state.audio, speaker_audio), push(state.valid, mask)
    state.frames_seen += n
    lpad = s - state.valid.shape[1]  # frames before the clip start: padding on the left

    def window(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        x = torch.cat([x.new_zeros(b, lpad, *x.shape[2:]), x], 1)  # (B, s, ...)
        return x.repeat_interleave(k, 0)  # (B*K, s, ...)

    valid = window(state.valid)  # (N, s), left padding False
    spk = [window(state.attr), window(state.coef), window(state.audio)]
    with eval_mode(model):
        x = model._generate(spk, ~valid, torch.arange(s, device=dev),
                            torch.arange(s - w, s, device=dev), ~valid[:, s - w:],
                            state.person, state.edits, state.options, state.generator)
    x = x[:, w - n:].reshape(b, k, n, FRAME_DIM)  # the last n frames are the new chunk
    return to_metric_space(x)
