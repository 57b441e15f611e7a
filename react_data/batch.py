"""`ReactionBatch`: the typed batch every model consumes.

Attributes are kept in metric space (AUs 0/1, valence/arousal, expression probabilities); 3DMM
and audio features are normalised with the train-split statistics stored in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class ReactionBatch:
    """A batch of dyads, padded to a common length T.

    Shapes: B items, T frames. A missing modality is ``None`` (never zeros).

    Attributes:
        speaker_attr: (B, T, 25) speaker facial attributes.
        speaker_coef: (B, T, 58) speaker 3DMM, normalised; or None.
        speaker_audio: (B, T, A) speaker audio features, normalised; or None.
        listener_attr: (B, T, 25) target listener attributes; None at inference.
        listener_coef: (B, T, 58) target listener 3DMM, normalised; or None.
        mask: (B, T) bool, True on real (non-padded) frames.
        listener_idx: (B,) long, listener person index (for personalised models).
        session: (B,) long, session number.
        clip: clip ids (file stems), length B.
        context_frames: online task only: the first ``context_frames`` frames of every item are
            past context (inputs a causal model may use, not loss targets). 0 offline.
    """

    speaker_attr: torch.Tensor
    speaker_coef: torch.Tensor | None
    speaker_audio: torch.Tensor | None
    listener_attr: torch.Tensor | None
    listener_coef: torch.Tensor | None
    mask: torch.Tensor
    listener_idx: torch.Tensor
    session: torch.Tensor
    clip: list[str]
    context_frames: int = 0

    @property
    def batch_size(self) -> int:
        return int(self.speaker_attr.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.speaker_attr.shape[1])

    @property
    def loss_mask(self) -> torch.Tensor:
        """(B, T) bool: valid frames that are targets (context frames excluded)."""
        m = self.mask.clone()
        if self.context_frames:
            m[:, : self.context_frames] = False
        return m

    def to(self, device: torch.device | str) -> ReactionBatch:
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return replace(self, **moved)

    def __post_init__(self) -> None:
        b, t = self.speaker_attr.shape[:2]
        for name in ("speaker_coef", "speaker_audio", "listener_attr", "listener_coef"):
            v = getattr(self, name)
            if v is not None and tuple(v.shape[:2]) != (b, t):
                raise ValueError(
                    f"ReactionBatch.{name} has leading shape {tuple(v.shape[:2])}, expected "
                    f"({b}, {t}) to match speaker_attr"
                )
        if tuple(self.mask.shape) != (b, t):
            raise ValueError(
                f"ReactionBatch.mask has shape {tuple(self.mask.shape)}, expected ({b}, {t})"
            )
