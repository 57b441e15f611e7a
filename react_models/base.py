"""The contract every reaction model follows (offline and online)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from react_data.batch import ReactionBatch


@dataclass
class ReactionSample:
    """K generated listener reactions per speaker.

    Attributes:
        attr: (B, K, T, 25) listener facial attributes in metric space (AUs in {0,1} after
            ``binarize``; valence/arousal; expression probabilities).
        coef: (B, K, T, 58) listener 3DMM (normalised like the batch's coefficients).
    """

    attr: torch.Tensor
    coef: torch.Tensor


class ReactionModel(nn.Module):
    """Base class: ``forward(batch) -> losses``, ``sample(batch, K) -> ReactionSample``.

    Subclasses set ``name`` and ``config_cls`` (a frozen dataclass) and take ``config`` in
    ``__init__``. Online models (``config.online``) also implement the causal step API:
    ``state = start(batch_size, device, listener_idx)`` then ``step(state, speaker_frames) ->
    (attr, coef)`` for the next frames, seeing speaker frames only up to the current one.
    """

    name: ClassVar[str] = ""
    config_cls: ClassVar[type]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def forward(self, batch: ReactionBatch) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, batch: ReactionBatch, num_samples: int = 10) -> ReactionSample:  # pragma: no cover
        raise NotImplementedError

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)
