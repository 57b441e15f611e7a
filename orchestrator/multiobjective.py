"""Multi-objective search logic, free of Ray: objectives, fronts, MO-ASHA promotion, proxy check.

REACT ranks generators on appropriateness (FRCorr, FRDist) and diversity (FRDiv, FRVar) and
synchrony at once. This module holds the pure decisions; the Ray Tune adapters
(`orchestrator.tune_mo`) only forward Tune's callbacks here, so every rule is testable on plain
metric streams.

* **Fidelity-aware fronts**: a trial's budget is the epoch it reached; the Pareto front is taken
  over full-budget trials only, so an under-trained generator that emits diverse noise never lands
  on it.
* **MO-ASHA** (asynchronous successive halving, promotion by non-dominated sorting with crowding
  distance for ties, after Schmucker et al. 2021, "Multi-objective ASHA"): at each rung a trial
  continues only if it is in the best ``ceil(n / reduction_factor)`` of the ``n`` results
  recorded at that rung, ordered by non-domination rank then crowding distance; a
  minimum-appropriateness gate (e.g. FRDist no worse than the Mime reference) stops a trial at any
  rung whatever its diversity.
* **Proxy check**: Spearman rank correlation between the per-epoch probe metric used for pruning
  and the full validation metric on finished trials.

Non-dominated sorting and hypervolume are Optuna's own implementations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna._hypervolume import compute_hypervolume
from optuna.study._multi_objective import _fast_non_domination_rank

CONTINUE = "CONTINUE"
STOP = "STOP"


@dataclass(frozen=True)
class Objective:
    """One objective: a reported metric name and whether lower (min) or higher (max) is better."""

    metric: str
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(
                f"objective {self.metric!r}: mode must be 'min' or 'max', got {self.mode!r}"
            )


def parse_objectives(spec: Sequence[Mapping[str, Any]] | Sequence[Objective]) -> list[Objective]:
    """Objectives from config (``[{metric: FRDist, mode: min}, ...]``), validated."""
    if not spec:
        raise ValueError("search.objectives is empty; give at least one {metric, mode} entry")
    out = []
    for i, item in enumerate(spec):
        if isinstance(item, Objective):
            out.append(item)
            continue
        if not isinstance(item, Mapping) or set(item) != {"metric", "mode"}:
            raise ValueError(
                f"search.objectives[{i}] must be a mapping with exactly the keys metric and mode "
                f"(e.g. {{metric: FRDist, mode: min}}), got {item!r}"
            )
        out.append(Objective(str(item["metric"]), str(item["mode"])))
    names = [o.metric for o in out]
    if len(set(names)) != len(names):
        raise ValueError(f"search.objectives names a metric twice: {names}")
    return out


def loss_matrix(rows: Sequence[Mapping[str, float]], objectives: Sequence[Objective]) -> np.ndarray:
    """(n, m) matrix where lower is better on every column (max objectives negated)."""
    sign = np.array([1.0 if o.mode == "min" else -1.0 for o in objectives])
    values = np.array([[float(r[o.metric]) for o in objectives] for r in rows], dtype=np.float64)
    return values.reshape(len(rows), len(objectives)) * sign


def nondomination_ranks(losses: np.ndarray) -> np.ndarray:
    """Rank 0 = Pareto front, 1 = front after removing rank 0, ... (Optuna's fast sort)."""
    if len(losses) == 0:
        return np.zeros(0, dtype=int)
    return _fast_non_domination_rank(np.asarray(losses, dtype=np.float64))


def crowding_distance(losses: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within its set (boundary points: inf)."""
    n, m = losses.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(losses[:, j], kind="stable")
        col = losses[order, j]
        width = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if width > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / width
    return dist


def mo_order(losses: np.ndarray) -> np.ndarray:
    """Indices best-first: by non-domination rank, then larger crowding distance within a rank."""
    losses = np.asarray(losses, dtype=np.float64)
    ranks = nondomination_ranks(losses)
    crowd = np.zeros(len(losses))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        crowd[idx] = crowding_distance(losses[idx])
    return np.lexsort((-crowd, ranks))


def pareto_front(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective], *,
                 budget_key: str | None = None, full_budget: float | None = None
                 ) -> list[Mapping[str, Any]]:
    """The non-dominated rows, taken over full-budget rows only when a budget is given.

    Rows missing an objective value (failed trials) are left out.
    """
    rows = [r for r in rows if all(_finite(r.get(o.metric)) for o in objectives)]
    if budget_key is not None and full_budget is not None:
        rows = [r for r in rows if float(r.get(budget_key, -math.inf)) >= full_budget]
    if not rows:
        return []
    ranks = nondomination_ranks(loss_matrix(rows, objectives))
    return [r for r, k in zip(rows, ranks, strict=True) if k == 0]


def hypervolume(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective],
                reference: Mapping[str, float]) -> float:
    """Hypervolume dominated by ``rows`` up to the reference point (in objective units).

    Points not strictly better than the reference on every objective add nothing.
    """
    if not rows:
        return 0.0
    losses = loss_matrix(rows, objectives)
    ref = loss_matrix([reference], objectives)[0]
    keep = np.all(losses < ref, axis=1)
    if not keep.any():
        return 0.0
    return float(compute_hypervolume(losses[keep], ref))


@dataclass(frozen=True)
class Gate:
    """A minimum-appropriateness gate: ``metric`` must be <= ``max`` (or >= ``min``)."""

    metric: str
    max: float | None = None
    min: float | None = None

    def passes(self, result: Mapping[str, Any]) -> bool:
        v = result.get(self.metric)
        if not _finite(v):
            return False
        v = float(v)
        return (self.max is None or v <= self.max) and (self.min is None or v >= self.min)


@dataclass
class MOASHARule:
    """Asynchronous successive halving with multi-objective promotion (see module docstring).

    Args:
        objectives: what to optimise.
        max_t: full budget (value of ``time_attr`` at the end of training).
        grace_period: first rung.
        reduction_factor: keep the best 1/reduction_factor at every rung.
        gate: optional minimum-appropriateness gate checked at every rung.
        time_attr: the budget counter in reported results.
    """

    objectives: list[Objective]
    max_t: int
    grace_period: int = 1
    reduction_factor: float = 3.0
    gate: Gate | None = None
    time_attr: str = "epoch"
    recorded: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)  # trial id -> reason

    def __post_init__(self) -> None:
        if self.grace_period < 1 or self.max_t < self.grace_period:
            raise ValueError(
                f"MO-ASHA needs 1 <= grace_period <= max_t, got grace_period="
                f"{self.grace_period}, max_t={self.max_t}"
            )
        if self.reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {self.reduction_factor}")
        rungs, r = [], self.grace_period
        while r < self.max_t:
            rungs.append(int(r))
            r *= self.reduction_factor
        self.rungs = sorted(set(rungs))
        for rung in self.rungs:
            self.recorded.setdefault(rung, {})

    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> str:
        """Decide CONTINUE or STOP for a trial that just reported ``result``."""
        if self.time_attr not in result:
            return CONTINUE
        t = float(result[self.time_attr])
        if t >= self.max_t:
            return CONTINUE  # full budget reached: the trial ends by itself
        reached = [r for r in self.rungs if t >= r and trial_id not in self.recorded[r]]
        if not reached:
            return CONTINUE
        rung = max(reached)
        if not all(_finite(result.get(o.metric)) for o in self.objectives):
            return self._stop(trial_id, f"rung {rung}: objective missing or not finite")
        vector = [float(result[o.metric]) for o in self.objectives]
        for r in reached:  # lower rungs skipped over count the same result
            self.recorded[r][trial_id] = vector
        if self.gate is not None and not self.gate.passes(result):
            return self._stop(trial_id, f"rung {rung}: failed the gate on {self.gate.metric}")
        ids = list(self.recorded[rung])
        sign = np.array([1.0 if o.mode == "min" else -1.0 for o in self.objectives])
        order = mo_order(np.array([self.recorded[rung][i] for i in ids]) * sign)
        keep = max(1, math.ceil(len(ids) / self.reduction_factor))
        promoted = {ids[i] for i in order[:keep]}
        if trial_id in promoted:
            return CONTINUE
        return self._stop(trial_id, f"rung {rung}: not in the best {keep} of {len(ids)}")

    def _stop(self, trial_id: str, reason: str) -> str:
        self.stopped[trial_id] = reason
        return STOP

    def state_dict(self) -> dict[str, Any]:
        return {"recorded": {str(k): v for k, v in self.recorded.items()},
                "stopped": dict(self.stopped)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.recorded = {int(k): dict(v) for k, v in state["recorded"].items()}
        for rung in self.rungs:
            self.recorded.setdefault(rung, {})
        self.stopped = dict(state["stopped"])


def proxy_check(rows: Sequence[Mapping[str, Any]], probe_key: str, full_key: str,
                threshold: float) -> tuple[float, bool]:
    """Spearman rank correlation between the probe metric and the full metric over finished trials.

    Returns (rho, ok): ok is False when rho < threshold (early stopping should be switched off).
    With fewer than 3 usable trials rho is nan and ok is True (not enough evidence either way).
    """
    from scipy.stats import spearmanr

    pairs = [(float(r[probe_key]), float(r[full_key])) for r in rows
             if _finite(r.get(probe_key)) and _finite(r.get(full_key))]
    if len(pairs) < 3:
        return math.nan, True
    a, b = np.array(pairs).T
    if np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan, True
    rho = float(spearmanr(a, b).statistic)
    return rho, rho >= threshold


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
