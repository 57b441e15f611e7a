"""Export the best trial of a search as a model bundle (config, weights, metrics, overrides).

The best trial is the one with the best full-validation objective (``val/<metric>``, reported
after the last epoch) among trials that trained every epoch; when none did, the best probe
objective over all trials. Its latest checkpoint (the weights those metrics were measured on) is
rebuilt and written with ``react_models.save_bundle``, so ``react_models.load_bundle(path)``
gives a model whose ``sample(batch, K)`` generates reactions. A multi-objective search also gets
one bundle per Pareto-optimal trial (`export_pareto`).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import as_overrides
from orchestrator.results import SearchOutcome, TrialRecord, best_trial, finite, pareto_trials
from orchestrator.trainable import load_checkpoint, model_from_checkpoint
from orchestrator.tune_driver import load_search
from react_models import save_bundle


def export_best(run: str, out: str | Path | None = None, *,
                endpoint_url: str | None = None,
                default_dir: str | Path = "reactune_runs/export") -> Path:
    """Write the bundle of the best trial of search folder ``run``.

    Args:
        run: the search folder (local path or ``s3://`` URI).
        out: the bundle file (default ``<default_dir>/<search name>.pt``).
        endpoint_url: S3-compatible endpoint for ``s3://`` runs.
        default_dir: where ``out`` defaults to.

    Returns:
        The bundle path. Its ``extra`` holds the search name, trial id, ranking key, the
        trial's resolved config and its Hydra overrides (the search's own plus the sampled
        parameters), so the same model can be retrained with ``reactune stage=fit <overrides>``.
    """
    outcome = load_search(run, endpoint_url=endpoint_url)
    trial, key = best_trial(outcome)
    out = Path(out) if out else Path(default_dir) / f"{outcome.name}.pt"
    return _export_trial(outcome, trial, key, out)


def export_pareto(run: str, out_dir: str | Path | None = None, *,
                  endpoint_url: str | None = None,
                  default_dir: str | Path = "reactune_runs/export") -> list[Path]:
    """Write one bundle per Pareto-optimal trial of a multi-objective search.

    Args:
        run: the search folder (local path or ``s3://`` URI).
        out_dir: the folder for the bundles (default ``<default_dir>/<search name>-pareto``);
            files are ``<trial id>.pt``, each with the trial's full-validation metrics.
        endpoint_url: S3-compatible endpoint for ``s3://`` runs.
        default_dir: where ``out_dir`` defaults to.

    Returns:
        The bundle paths, in front order.

    Raises:
        ValueError: the search was single-objective, or no trial trained its full budget.
    """
    outcome = load_search(run, endpoint_url=endpoint_url)
    front = pareto_trials(outcome)
    if not front:
        raise ValueError(f"{outcome.run_dir}: no trial trained its full budget "
                         f"({outcome.run_info['epochs']} epochs), so there is no Pareto front; "
                         f"run more trials (`reactune stage=resume run={outcome.run_dir}` "
                         f"continues an interrupted search)")
    folder = Path(out_dir) if out_dir else Path(default_dir) / f"{outcome.name}-pareto"
    key = "val/" + outcome.run_info["objectives"][0]["metric"]
    return [_export_trial(outcome, t, key, folder / f"{t.trial_id}.pt") for t in front]


def _export_trial(outcome: SearchOutcome, trial: TrialRecord, key: str, out: Path) -> Path:
    with trial.checkpoint.as_directory() as d:
        state = load_checkpoint(d)
    model = model_from_checkpoint(state)
    result = state["result"]
    prefix = "val/" if key.startswith("val/") else key.split("/", 1)[0] + "/"
    metrics = {k[len(prefix):]: float(v) for k, v in result.items()
               if k.startswith(prefix) and finite(v)}
    overrides = _dedupe([f"baseline={outcome.run_info['baseline']}",
                         f"task={outcome.run_info['task']}", *outcome.run_info["overrides"],
                         *as_overrides(trial.params)])
    extra = {
        "search": outcome.run_info["name"], "run": outcome.run_dir, "trial_id": trial.trial_id,
        "ranked_by": key, "metrics_from": prefix.rstrip("/"), "epoch": int(state["epoch"]),
        "params": dict(trial.params),
        "overrides": overrides,
        "config": state["config"],
    }
    return save_bundle(out, model, metrics=metrics, extra=extra)


def _dedupe(overrides: list[str]) -> list[str]:
    """One override per key, the last one winning; run-control keys (stage, run) dropped."""
    by_key: dict[str, str] = {}
    for o in overrides:
        key = o.split("=", 1)[0]
        if key not in ("stage", "run", "bundle"):
            by_key.pop(key, None)
            by_key[key] = o
    return list(by_key.values())
