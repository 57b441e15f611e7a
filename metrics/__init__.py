"""REACT challenge metrics: pure functions of arrays, fast enough to score every epoch.

Inputs are numpy arrays or torch tensors (CPU or CUDA): predictions ``pred`` (N, K, T, 25),
appropriate sets ``appropriate`` (N arrays (G_n, T_n, 25)), speaker behaviour ``speaker``
(N, T, 25). Each metric returns a Python float; `evaluate` returns a dict of them. See
``metrics/README.md`` for the formulas, directions and scales.
"""

from metrics import baselines
from metrics.align import align
from metrics.appropriateness import frcorr, frdist
from metrics.ccc import ccc
from metrics.diversity import frdiv, frdvs, frvar
from metrics.dtw import dtw, grouped_dtw
from metrics.evaluate import DEFAULT_METRICS, METRICS, evaluate
from metrics.realism import frrea_features
from metrics.synchrony import frsyn

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "align",
    "baselines",
    "ccc",
    "dtw",
    "evaluate",
    "frcorr",
    "frdist",
    "frdiv",
    "frdvs",
    "frrea_features",
    "frsyn",
    "frvar",
    "grouped_dtw",
]
