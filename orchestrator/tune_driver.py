"""The only module that calls Ray Tune: build, run, resume and read back a search.

A search = ``Tuner`` over the function trainable :func:`_trial` (which runs
``orchestrator.trainable.run_trial``) with ``OptunaSearch`` (define-by-run space from
``search_spaces``, seeded TPE or random, study persisted in an Optuna journal file or RDB) inside
a ``ConcurrencyLimiter``, ASHA or FIFO, per-trial CPU/GPU bundles (with CPUs left free for the
trials' Ray Data tasks, which run outside the trials' placement groups), a checkpoint every epoch
ranked by the objective, and ``FailureConfig`` retries that resume from the latest checkpoint.

The experiment folder (``<search.storage_path>/<name>``, local or ``s3://``) also holds
``reactune_run.json``: the base config (interpolations kept, paths made absolute) and the
overrides, so ``stage=resume`` / ``stage=export`` need only the folder.

With ``search.objectives`` (``[{metric: FRDist, mode: min}, {metric: FRDiv, mode: max}]``) the
search is multi-objective: one Optuna study with a direction per objective (TPE, random,
NSGA-II or NSGA-III), ``tune_mo.FidelityAwareOptunaSearch`` (a trial stopped early is told to
Optuna as PRUNED with the budget it reached; a full-budget trial is told its end-of-training
full-validation values), ``tune_mo.MOASHAScheduler`` (promotion by non-dominated sorting on the
per-epoch probe metrics, a minimum-appropriateness gate, the proxy check), and ``pareto.json``
in the run folder: the front over full-budget trials only, with every metric.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from ray import tune

from orchestrator import config as config_mod
from orchestrator import storage_io
from orchestrator.progress import ProgressPrinter
from orchestrator.results import SearchOutcome, TrialRecord, format_front, pareto_summary
from orchestrator.runtime import trial_concurrency
from orchestrator.search_setup import objectives, scheduler, searcher

log = logging.getLogger(__name__)

RUN_FILE = "reactune_run.json"
JOURNAL_FILE = "optuna_journal.log"
PARETO_FILE = "pareto.json"


# ---------------------------------------------------------------------------------------------
# the trainable


def _trial(config: dict[str, Any], base: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``config`` holds the sampled parameters only."""
    from orchestrator.trainable import load_checkpoint, run_trial  # torch: in the worker only

    _quiet_data_progress()
    cfg = config_mod.to_plain(config_mod.apply_params(base, config))
    state = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = load_checkpoint(d)

    import ray

    node = ray.get_runtime_context().get_node_id()  # which node ran it (clusters, node loss)

    def report(result: dict[str, Any], directory: Path | None) -> None:
        checkpoint = tune.Checkpoint.from_directory(str(directory)) if directory else None
        tune.report({**result, "node_id": node, "reported_at": time.time()},
                    checkpoint=checkpoint)

    with tempfile.TemporaryDirectory(prefix="reactune-ckpt-") as tmp:
        run_trial(cfg, report, resume_state=state, checkpoint_root=tmp)


def _quiet_data_progress() -> None:
    """Ray Data's per-dataset progress bars and INFO lines (and Ray Train's checkpoint lines),
    once per epoch and trial, would bury the trial table; this worker process only runs trials,
    so silence them here."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # "Checkpoint ... created" per epoch


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _with_resources(base: Mapping[str, Any]) -> Any:
    res = config_mod.to_plain(config_mod.apply_params(base, {}))["resources"]
    bundle = {"CPU": float(res["cpu_per_trial"])}
    if float(res["gpu_per_trial"] or 0) > 0:
        bundle["GPU"] = float(res["gpu_per_trial"])
    trainable = tune.with_parameters(_trial, base=dict(base))
    return tune.with_resources(trainable, tune.PlacementGroupFactory([bundle]))


# ---------------------------------------------------------------------------------------------
# search construction


def journal_path(cfg: Mapping[str, Any], run_dir: str) -> Path:
    """Where a search's Optuna journal lives: in the run folder when it is local, else under
    ``paths.work_dir/studies/`` (a journal needs a local file)."""
    if storage_io.is_remote(run_dir):
        name = run_dir.rstrip("/").rsplit("/", 1)[-1]
        return Path(cfg["paths"]["work_dir"]) / "studies" / f"{name}.journal"
    return Path(run_dir) / JOURNAL_FILE


def _study_storage(cfg: Mapping[str, Any], run_dir: str) -> Any:
    """Optuna storage: a journal file (``search.study_storage=journal``), an RDB URL, or None."""
    import optuna

    spec = cfg["search"]["study_storage"]
    if spec is None:
        return None
    if spec != "journal":
        return optuna.storages.RDBStorage(str(spec))
    from optuna.storages.journal import JournalFileBackend

    local = journal_path(cfg, run_dir)
    local.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(local)))


def _run_config(cfg: Mapping[str, Any], name: str, storage_path: str) -> Any:
    from ray.tune.logger import TBXLoggerCallback

    s = cfg["search"]
    fs, path = storage_io.filesystem(storage_path, cfg["data"]["endpoint_url"])
    return tune.RunConfig(
        name=name, storage_path=path, storage_filesystem=fs,
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=int(s["keep_checkpoints"]), checkpoint_score_attribute=s["metric"],
            checkpoint_score_order=s["mode"]),
        failure_config=tune.FailureConfig(max_failures=int(s["max_failures"])),
        callbacks=[TBXLoggerCallback(), ProgressCallback(name, s["metric"], s["mode"])],
        verbose=0,  # the ProgressCallback prints the table instead of Tune's status dumps
    )


def run_search(cfg: DictConfig, overrides: Sequence[str] = ()) -> SearchOutcome:
    """Run a search for ``cfg.baseline`` on ``cfg.task`` (Ray must be initialised).

    Args:
        cfg: the composed config.
        overrides: the overrides it was composed with (kept in ``reactune_run.json``).

    Returns:
        The outcome, with every trial's last result.
    """
    base = config_mod.frozen_base(cfg)
    plain = config_mod.to_plain(cfg)
    objs = objectives(plain)
    if objs is not None:  # checkpoints, the progress table and "best" rank by the first one
        plain["search"]["metric"], plain["search"]["mode"] = f"probe/{objs[0].metric}", objs[0].mode
    name = plain["search"]["name"] or (
        f"{plain['baseline']['name']}-{plain['task']['name']}-{time.strftime('%Y%m%d-%H%M%S')}")
    storage_path = storage_io.absolute(plain["search"]["storage_path"])
    run_dir = storage_io.join(storage_path, name)
    endpoint = plain["data"]["endpoint_url"]
    if storage_io.exists(storage_io.join(run_dir, RUN_FILE), endpoint):
        raise FileExistsError(f"{run_dir} already holds a search; resume it with "
                              f"`reactune stage=resume run={run_dir}` or choose search.name")
    info = {"name": name, "config": base, "overrides": list(overrides),
            "baseline": plain["baseline"]["name"], "task": plain["task"]["name"],
            "metric": plain["search"]["metric"], "mode": plain["search"]["mode"],
            "epochs": int(plain["baseline"]["trainer"]["epochs"]),
            "study_storage": plain["search"]["study_storage"],
            "objectives": None if objs is None else [
                {"metric": o.metric, "mode": o.mode} for o in objs],
            "proxy_min_rho": float(plain["search"]["proxy_min_rho"])}
    storage_io.write_text(storage_io.join(run_dir, RUN_FILE), json.dumps(info, indent=1),
                          endpoint)
    goal = (f"objective {info['metric']} ({info['mode']})" if objs is None else
            "objectives " + ", ".join(f"{o.metric} ({o.mode})" for o in objs)
            + f" [{plain['search']['sampler']}, Pareto front over full-budget trials]")
    print(f"search {name}: {plain['search']['num_samples']} trials of {info['baseline']} "
          f"({info['task']}), {goal} -> {run_dir}", flush=True)
    import ray

    concurrency = trial_concurrency(plain, float(ray.cluster_resources().get("CPU", 0.0)))
    storage = _study_storage(plain, run_dir)
    tuner = tune.Tuner(
        _with_resources(base),
        tune_config=tune.TuneConfig(
            search_alg=searcher(plain, name, storage, concurrency),
            scheduler=scheduler(plain),
            num_samples=int(plain["search"]["num_samples"]),
            reuse_actors=bool(plain["search"]["reuse_actors"]),
            trial_dirname_creator=_trial_dirname),
        run_config=_run_config(plain, name, storage_path),
    )
    tuner.fit()
    return finish_search(run_dir, endpoint_url=endpoint)


def resume_search(run: str, *, endpoint_url: str | None = None) -> SearchOutcome:
    """Continue an interrupted search: searcher and scheduler state, unfinished trials.

    Finished trials keep their results and are not rerun; trials that were running or had
    errored resume from their latest checkpoint.

    Args:
        run: the experiment folder (local path or ``s3://bucket/prefix/name``).
        endpoint_url: S3-compatible endpoint for ``s3://`` runs.
    """
    run = storage_io.absolute(run)
    info = read_run_info(run, endpoint_url)
    fs, path = storage_io.filesystem(run, endpoint_url)
    if not tune.Tuner.can_restore(path, storage_filesystem=fs):
        raise FileNotFoundError(f"{run} has no Tune experiment state (experiment_state-*.json); "
                                f"it is not a search folder or the search never started")
    print(f"resuming search {info['name']} from {run}", flush=True)
    tuner = tune.Tuner.restore(path, trainable=_with_resources(info["config"]),
                               resume_unfinished=True, resume_errored=True,
                               storage_filesystem=fs)
    tuner.fit()
    _close_orphan_study_trials(info, run)
    return finish_search(run, endpoint_url=endpoint_url)


def finish_search(run: str, *, endpoint_url: str | None = None) -> SearchOutcome:
    """Read a finished search back; for a multi-objective one also write and print its front."""
    outcome = load_search(run, endpoint_url=endpoint_url)
    if outcome.run_info.get("objectives"):
        summary = pareto_summary(outcome)
        storage_io.write_text(storage_io.join(outcome.run_dir, PARETO_FILE),
                              json.dumps(summary, indent=1), endpoint_url)
        print(format_front(summary), flush=True)
    return outcome


def _print_monitoring(cfg: Mapping[str, Any], run_dir: str) -> None:
    print(f"  TensorBoard: tensorboard --logdir {run_dir}", flush=True)
    spec = cfg["search"]["study_storage"]
    if spec is not None:
        where = journal_path(cfg, run_dir) if spec == "journal" else spec
        print(f"  Optuna study {Path(run_dir).name!r}: optuna-dashboard {where}", flush=True)


def _close_orphan_study_trials(info: Mapping[str, Any], run: str) -> None:
    """Mark study trials asked just before a driver crash (never run by Tune) as FAIL.

    After a resumed search has finished, no trial is running; any study trial still RUNNING was
    asked by the killed driver after its last state snapshot and never reached Tune.
    """
    import optuna

    cfg = config_mod.to_plain(config_mod.apply_params(info["config"], {}))
    storage = _study_storage(cfg, run)
    if storage is None:
        return
    study = optuna.load_study(study_name=info["name"], storage=storage)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        log.info("study trial %d was never run (driver crash): marked FAIL", t.number)


def read_run_info(run: str, endpoint_url: str | None = None) -> dict[str, Any]:
    """``reactune_run.json`` of an experiment folder (base config, overrides, objective)."""
    path = storage_io.join(storage_io.absolute(run), RUN_FILE)
    if not storage_io.exists(path, endpoint_url):
        raise FileNotFoundError(f"{path} not found: `run=` must be a search folder written by "
                                f"`reactune stage=search` (<search.storage_path>/<name>)")
    return json.loads(storage_io.read_text(path, endpoint_url))


def load_search(run: str, *, endpoint_url: str | None = None) -> SearchOutcome:
    """Read every trial of a search folder back (last result, latest checkpoint, error)."""
    run = storage_io.absolute(run)
    info = read_run_info(run, endpoint_url)
    fs, path = storage_io.filesystem(run, endpoint_url)
    analysis = tune.ExperimentAnalysis(path, storage_filesystem=fs, default_metric=info["metric"],
                                  default_mode=info["mode"])
    trials = []
    for t in analysis.trials:
        last = dict(t.last_result or {})
        ckpt = t.checkpoint
        trials.append(TrialRecord(
            trial_id=t.trial_id, status=t.status,
            params={k: v for k, v in (t.config or {}).items()},
            last={k: v for k, v in last.items() if k != "config"},
            checkpoint=ckpt, path=str(t.path), num_failures=int(t.run_metadata.num_failures),
            error=str(t.get_error()) if t.status == "ERROR" else None))
    return SearchOutcome(run_dir=run, name=info["name"], run_info=info, trials=trials)


class ProgressCallback(tune.Callback):
    """Prints the trial table (status, epoch, objective, parameters) as trials progress."""

    def __init__(self, name: str, metric: str, mode: str) -> None:
        self.printer = ProgressPrinter(name, metric, mode)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.printer.update(_rows(trials))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.printer.update(_rows(trials), force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.printer.update(_rows(trials), force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.printer.update(_rows(trials), force=True)


def _rows(trials: list) -> list[dict[str, Any]]:
    return [{"trial_id": t.trial_id, "status": t.status, "params": dict(t.config or {}),
             "last": dict(t.last_result or {})} for t in trials]


# ---------------------------------------------------------------------------------------------
# scheduling overhead (benchmarks/bench_search.py)


def _quadratic(x: float, y: float) -> float:
    return (x - 0.3) ** 2 + (y + 0.1) ** 2


def quadratic_space(trial: Any) -> dict[str, float]:
    """A 2-parameter define-by-run space for overhead measurements."""
    return {"x": trial.suggest_float("x", -1.0, 1.0), "y": trial.suggest_float("y", -1.0, 1.0)}


def _trivial_trial(config: dict[str, Any]) -> None:
    tune.report({"loss": _quadratic(config["x"], config["y"])})


def time_trivial_search(num_trials: int, *, max_concurrent: int = 1, seed: int = 0,
                        reuse_actors: bool = True, storage_path: str) -> tuple[float, float]:
    """Wall time of a Tune + OptunaSearch run of ``num_trials`` instant trials (Ray running).

    Args:
        num_trials: trials to run.
        max_concurrent: trials at once (ConcurrencyLimiter).
        seed: TPE seed.
        reuse_actors: run successive trials in the same worker process.
        storage_path: a scratch folder for the experiment.

    Returns:
        (seconds for ``Tuner.fit``, best loss found).
    """
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    searcher = ConcurrencyLimiter(
        OptunaSearch(space=quadratic_space, metric="loss", mode="min",
                     sampler=optuna.samplers.TPESampler(seed=seed)),
        max_concurrent=max_concurrent)
    tuner = tune.Tuner(
        tune.with_resources(_trivial_trial, {"cpu": 1}),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=num_trials,
                                    reuse_actors=reuse_actors,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=f"overhead-{time.time_ns()}",
                                  storage_path=os.path.abspath(storage_path), verbose=0))
    t0 = time.perf_counter()
    grid = tuner.fit()
    seconds = time.perf_counter() - t0
    return seconds, float(grid.get_best_result(metric="loss", mode="min").metrics["loss"])
