"""Attribute-like random data for the metric tests (binary AUs, VA, expression probabilities)."""

from __future__ import annotations

import numpy as np
import pytest

from react_data.schema import ATTR_DIM, AU, EXPR, VA


def reactions(rng: np.random.Generator, *shape: int, frames: int,
              au_rate: float = 0.3) -> np.ndarray:
    """(*shape, frames, 25) float32: Bernoulli AUs (often constant at low rates), VA, probs."""
    x = np.empty(shape + (frames, ATTR_DIM), dtype=np.float32)
    x[..., AU] = rng.random(shape + (frames, AU.stop - AU.start)) < au_rate
    x[..., VA] = rng.uniform(-1, 1, shape + (frames, VA.stop - VA.start))
    e = rng.random(shape + (frames, EXPR.stop - EXPR.start)) + 0.05
    x[..., EXPR] = e / e.sum(-1, keepdims=True)
    return x


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)
