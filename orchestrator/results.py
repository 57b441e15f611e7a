"""What a search left behind, as plain data: its trials and the best one.

Read back by ``orchestrator.tune_driver.load_search``; ranked here without Ray, and the
Pareto front of a multi-objective search summarised for ``pareto.json`` and the console.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.multiobjective import proxy_check


@dataclass
class TrialRecord:
    """One trial of a search, read back from its experiment folder.

    Attributes:
        trial_id: Tune's trial id.
        status: TERMINATED (finished or stopped by the scheduler), ERROR, RUNNING, PENDING.
        params: the sampled parameters (Hydra override path -> value).
        last: the trial's last reported result.
        checkpoint: the latest checkpoint (a ``ray.tune.Checkpoint``) or None.
        path: the trial folder (local path or URI).
        error: the error text of an errored trial.
        num_failures: how many times the trial failed and was retried.
    """

    trial_id: str
    status: str
    params: dict[str, Any]
    last: dict[str, Any]
    checkpoint: Any = None
    path: str = ""
    error: str | None = None
    num_failures: int = 0

    def completed(self, epochs: int) -> bool:
        """Whether this trial trained all ``epochs`` (not stopped early, not errored)."""
        return self.error is None and int(self.last.get("epoch", 0)) >= epochs


@dataclass
class SearchOutcome:
    """A finished (or resumed) search: where it is and what its trials reported."""

    run_dir: str
    name: str
    run_info: dict[str, Any]
    trials: list[TrialRecord] = field(default_factory=list)


def full_metric(metric: str) -> str:
    """``probe/FRDist`` -> ``val/FRDist`` (the end-of-trial full-validation counterpart)."""
    return "val/" + metric.split("/", 1)[-1]


def best_trial(outcome: SearchOutcome) -> tuple[TrialRecord, str]:
    """The best trial of a search and the result key it was ranked by.

    Trials that trained every epoch are ranked by the full-validation objective
    (``val/<metric>``); when none did, all trials by the probe objective. Only trials with a
    checkpoint qualify (the winner must be exportable).

    Raises:
        ValueError: no trial reported the objective (every trial failed before epoch 1).
    """
    info = outcome.run_info
    metric, mode, epochs = info["metric"], info["mode"], int(info["epochs"])
    sign = 1.0 if mode == "min" else -1.0
    for key, pool in ((full_metric(metric), [t for t in outcome.trials if t.completed(epochs)]),
                      (metric, outcome.trials)):
        scored = [t for t in pool if finite(t.last.get(key)) and t.checkpoint is not None]
        if scored:
            return min(scored, key=lambda t: sign * float(t.last[key])), key
    raise ValueError(
        f"no trial of {outcome.run_dir} reported {metric!r} with a checkpoint (statuses: "
        f"{sorted({t.status for t in outcome.trials})}); look at the trial errors in that "
        f"folder, fix the cause and run `reactune stage=resume run={outcome.run_dir}`")


def pareto_trials(outcome: SearchOutcome) -> list[TrialRecord]:
    """The Pareto-optimal trials of a multi-objective search, on the full-validation metrics.

    Only trials that trained the full budget (``epoch == epochs``, no error) and left a
    checkpoint take part: a generator stopped early, however diverse its noise, is never on it.

    Raises:
        ValueError: the search was single-objective (no ``objectives`` in its run info).
    """
    from orchestrator.multiobjective import Objective, pareto_front

    info = outcome.run_info
    if not info.get("objectives"):
        raise ValueError(f"{outcome.run_dir} is a single-objective search "
                         f"({info.get('metric')}); it has no Pareto front")
    epochs = int(info["epochs"])
    objs = [Objective(full_metric(o["metric"]), o["mode"]) for o in info["objectives"]]
    rows = [{**t.last, "_index": i} for i, t in enumerate(outcome.trials)
            if t.completed(epochs) and t.checkpoint is not None]
    front = pareto_front(rows, objs, budget_key="epoch", full_budget=epochs)
    return [outcome.trials[r["_index"]] for r in front]


def finite(v: Any) -> bool:
    """A real, finite number (not a bool, None or NaN)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pareto_summary(outcome: SearchOutcome) -> dict[str, Any]:
    """The front of a multi-objective search, the budget each trial reached, the proxy check.

    Returns:
        {"objectives", "full_budget", "front": [{"trial_id", "epoch", "params", "metrics"
        (every full-validation metric)}], "trials": [{"trial_id", "status", "budget",
        "full_budget_reached"}], "proxy": {"probe", "full", "rho", "ok", "threshold", "trials"}}.
    """
    info = outcome.run_info
    epochs = int(info["epochs"])
    front = pareto_trials(outcome)
    first = f"probe/{info['objectives'][0]['metric']}"
    finished = [t.last for t in outcome.trials if t.completed(epochs)]
    rho, ok = proxy_check(finished, first, full_metric(first), float(info["proxy_min_rho"]))
    return {
        "objectives": info["objectives"], "full_budget": epochs,
        "front": [{"trial_id": t.trial_id, "epoch": int(t.last.get("epoch", 0)),
                   "params": t.params,
                   "metrics": {k[4:]: v for k, v in t.last.items() if k.startswith("val/")}}
                  for t in front],
        "trials": [{"trial_id": t.trial_id, "status": t.status,
                    "budget": int(t.last.get("epoch", 0)),
                    "full_budget_reached": t.completed(epochs)} for t in outcome.trials],
        "proxy": {"probe": first, "full": full_metric(first),
                  "rho": None if rho != rho else rho, "ok": ok,
                  "threshold": float(info["proxy_min_rho"]), "trials": len(finished)},
    }


def format_front(summary: Mapping[str, Any]) -> str:
    """The Pareto front as a text table (objectives first, then the other metrics)."""
    from orchestrator.progress import format_table

    objs = [o["metric"] for o in summary["objectives"]]
    rest = sorted({k for p in summary["front"] for k in p["metrics"]} - set(objs))
    rows = [[p["trial_id"], str(p["epoch"])]
            + [f"{p['metrics'][m]:.4g}" if m in p["metrics"] else "-" for m in objs + rest]
            for p in summary["front"]]
    full = sum(t["full_budget_reached"] for t in summary["trials"])
    pr = summary["proxy"]
    rho = "n/a (too few trials)" if pr["rho"] is None else f"{pr['rho']:.3f}"
    head = (f"Pareto front ({len(rows)} of {full} full-budget trials; "
            f"{len(summary['trials']) - full} stopped early, told to Optuna as pruned):")
    table = format_table(["trial", "epoch"] + [f"{m} ({o['mode']})" for m, o in
                                               zip(objs, summary["objectives"], strict=True)]
                         + rest, rows) if rows else "  (empty: no trial trained its full budget)"
    return f"{head}\n{table}\nproxy check: Spearman rho({pr['probe']}, {pr['full']}) = {rho}"
