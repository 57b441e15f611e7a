"""Small random-but-valid ReactionBatches for model unit tests."""

from __future__ import annotations

import pytest
import torch

from react_data import schema
from react_data.batch import ReactionBatch


def random_batch(b: int = 2, t: int = 48, *, audio: bool = True, coef: bool = True,
                 targets: bool = True, seed: int = 0, n_persons: int = 4,
                 context_frames: int = 0) -> ReactionBatch:
    """A ReactionBatch with metric-space attributes (binary AUs, VA in [-1,1], softmax expr)."""
    g = torch.Generator().manual_seed(seed)

    def attrs() -> torch.Tensor:
        au = (torch.rand(b, t, schema.N_AU, generator=g) > 0.7).float()
        va = torch.rand(b, t, 2, generator=g) * 2 - 1
        ex = torch.softmax(torch.randn(b, t, schema.N_EXPR, generator=g), -1)
        return torch.cat([au, va, ex], -1)

    mask = torch.ones(b, t, dtype=torch.bool)
    if b > 1:
        mask[-1, t - t // 4:] = False  # one padded item
    return ReactionBatch(
        speaker_attr=attrs(),
        speaker_coef=torch.randn(b, t, schema.COEF_DIM, generator=g) if coef else None,
        speaker_audio=torch.randn(b, t, schema.AUDIO_DIM, generator=g) if audio else None,
        listener_attr=attrs() if targets else None,
        listener_coef=torch.randn(b, t, schema.COEF_DIM, generator=g) if targets and coef else None,
        mask=mask,
        listener_idx=torch.randint(0, n_persons, (b,), generator=g),
        session=torch.randint(0, schema.N_SESSIONS, (b,), generator=g),
        clip=[f"clip{i}" for i in range(b)],
        context_frames=context_frames,
    )


@pytest.fixture
def batch() -> ReactionBatch:
    return random_batch()
