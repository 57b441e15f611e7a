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

    Subclasses set ``name`` and ``config_cls`` (a frozen dataclass whose every default carries a
    one-line reason) and take ``config`` in ``__init__``. Models never own a device: they follow
    the batch's tensors (``x.device``).

    Online models (``config.online`` True) also implement the causal step API::

        state = model.start(batch_size, num_samples=K, listener_idx=None, device="cpu")
        attr, coef = model.step(state, speaker_attr, speaker_coef, speaker_audio)
        # inputs: the NEXT chunk of speaker frames, (B, n, 25) / (B, n, 58) / (B, n, A) or None,
        # n == config.window_size (the last chunk of a clip may be shorter).
        # outputs: the reaction for exactly those n time steps, (B, K, n, 25) and (B, K, n, 58).

    A chunk's output may use speaker frames up to the end of that chunk and never later ones;
    ``sample`` on an online model generates the same way (window by window), so perturbing speaker
    frames after chunk j leaves the outputs of chunks 0..j unchanged.
    """

    name: ClassVar[str] = ""
    config_cls: ClassVar[type]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def forward(self, batch: ReactionBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, batch: ReactionBatch, num_samples: int = 10) -> ReactionSample:
        raise NotImplementedError

    def start(self, batch_size: int, num_samples: int = 1, listener_idx: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> Any:
        raise NotImplementedError(f"{type(self).__name__} is not an online model")

    def step(self, state: Any, speaker_attr: torch.Tensor, speaker_coef: torch.Tensor | None,
             speaker_audio: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} is not an online model")

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)
