"""The stages of ``reactune``: plain functions of a composed config (the CLI and tests call them).

``prepare`` shards the data, ``fit`` / ``test`` train or score one configuration without a
search, ``search`` / ``resume`` run a Ray Tune + Optuna search, ``export`` bundles its best trial,
``demo`` chains all of it over every baseline and prints the leaderboard, ``render`` draws a
bundle's reactions and ``report`` writes the HTML report of a run.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from orchestrator import config as config_mod
from orchestrator import leaderboard, storage_io
from orchestrator.runtime import init_ray

log = logging.getLogger(__name__)


def _plain(cfg: DictConfig) -> dict[str, Any]:
    return config_mod.to_plain(cfg)


def _require(cfg: DictConfig, key: str, stage: str, example: str) -> str:
    value = cfg.get(key)
    if not value:
        raise config_mod.ConfigError(f"stage={stage} needs {key}=..., e.g. "
                                     f"`reactune stage={stage} {key}={example}`")
    return str(value)


def _manifest_exists(cfg: dict[str, Any]) -> bool:
    return storage_io.exists(storage_io.join(storage_io.absolute(cfg["data"]["uri"]),
                                             "manifest.json"), cfg["data"]["endpoint_url"])


def prepare(cfg: DictConfig, overrides: Sequence[str] = ()) -> Any:
    """Shard ``data.root`` (or a freshly generated synthetic MARS set) to ``data.uri``.

    Returns:
        The written ``react_data`` manifest.
    """
    from react_data.prepare import prepare as prepare_data

    c = _plain(cfg)
    d = c["data"]
    t0 = time.monotonic()
    opts = {"endpoint_url": d["endpoint_url"]} if d["endpoint_url"] else None
    manifest = prepare_data(storage_io.absolute(d["uri"]), root=d["root"], seed=int(c["seed"]),
                            synthetic_kwargs=d["synthetic"], bidirectional=bool(d["bidirectional"]),
                            progress=True, storage_options=opts)
    print(f"prepared {d['root'] or 'synthetic MARS'} -> {d['uri']} "
          f"({time.monotonic() - t0:.1f} s)", flush=True)
    return manifest


def ensure_data(cfg: DictConfig) -> None:
    """Prepare the synthetic set when ``data.uri`` has no shards yet; a real tree must be prepared
    explicitly (``stage=prepare``) so a typo in ``data.uri`` never starts a long job."""
    c = _plain(cfg)
    if _manifest_exists(c):
        return
    if c["data"]["root"] is not None:
        raise FileNotFoundError(
            f"no shards at data.uri={c['data']['uri']} (manifest.json missing); run "
            f"`reactune stage=prepare data.root={c['data']['root']} data.uri={c['data']['uri']}`")
    print(f"no shards at {c['data']['uri']}: generating the synthetic set", flush=True)
    prepare(cfg)


def fit(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train one configuration (no search): checkpoints, TensorBoard events, a model bundle.

    Writes ``<paths.work_dir>/fit/<baseline>-<task>/{checkpoints,tensorboard}`` and the bundle
    (``bundle=`` or ``<paths.export_dir>/fit-<baseline>-<task>.pt``).

    Returns:
        {"bundle": path, "result": the last epoch's result}.
    """
    from orchestrator.trainable import load_checkpoint, model_from_checkpoint, run_trial
    from react_models import save_bundle

    c = _plain(cfg)
    init_ray(c)
    ensure_data(cfg)
    name = f"{c['baseline']['name']}-{c['task']['name']}"
    out = Path(c["paths"]["work_dir"]) / "fit" / name
    if out.exists():
        shutil.rmtree(out)
    ckpt_root = out / "checkpoints"

    def report(result: dict[str, Any], directory: Path | None) -> None:
        shown = {k: v for k, v in result.items() if k.startswith(("train/total", "probe/"))}
        print(f"[fit {name}] epoch {result.get('epoch')}: "
              + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()), flush=True)
        for old in sorted(ckpt_root.glob("epoch_*"))[:-1]:  # keep the latest checkpoint only
            shutil.rmtree(old)

    result = run_trial(c, report, checkpoint_root=ckpt_root, log_dir=out / "tensorboard")
    latest = sorted(ckpt_root.glob("epoch_*"))[-1]
    model = model_from_checkpoint(load_checkpoint(latest))
    bundle = Path(c["bundle"] or Path(c["paths"]["export_dir"]) / f"fit-{name}.pt")
    metrics = {k[4:]: v for k, v in result.items() if k.startswith("val/")}
    save_bundle(bundle, model, metrics=metrics,
                extra={"overrides": [o for o in overrides if not o.startswith("stage=")],
                       "config": c, "epoch": int(result["epoch"])})
    print(f"[fit {name}] bundle -> {bundle}", flush=True)
    return {"bundle": str(bundle), "result": result}


def test(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, float]:
    """Score a model bundle (``bundle=``, or the best trial of ``run=``) on the test split.

    Prints the model's metrics with the reference rows on the same split.

    Returns:
        {metric: value} of the model.
    """
    from orchestrator import loop
    from orchestrator.trainable import full_eval_set
    from react_models import load_bundle

    c = _plain(cfg)
    if not c["bundle"] and not c["run"]:
        raise config_mod.ConfigError("stage=test needs bundle=<file.pt> or run=<search folder>, "
                                     "e.g. `reactune stage=test bundle=reactune_runs/export/x.pt`")
    bundle = c["bundle"] or export(cfg, overrides)
    model = load_bundle(bundle)
    eval_set = full_eval_set(c, split="test")
    scores = loop.evaluate(model, eval_set, num_samples=int(c["eval"]["num_samples"]),
                           seed=int(c["seed"]))
    refs = leaderboard.reference_rows(c, eval_set)
    print(leaderboard.render({model.name: scores}, refs, title=f"test split: {bundle}"),
          flush=True)
    return scores


def search(cfg: DictConfig, overrides: Sequence[str] = ()) -> Any:
    """Run a Ray Tune + Optuna search for ``baseline`` on ``task`` (prints the trial table).

    Returns:
        The ``tune_driver.SearchOutcome``.
    """
    from orchestrator.search_setup import check_search_config
    from orchestrator.tune_driver import run_search

    c = _plain(cfg)
    check_search_config(c)  # a bad objective or sampler fails before Ray starts
    init_ray(c)
    ensure_data(cfg)
    outcome = run_search(cfg, overrides)
    _print_outcome(outcome)
    return outcome


def resume(cfg: DictConfig, overrides: Sequence[str] = ()) -> Any:
    """Continue the search in ``run=`` after a crash or an interruption.

    Returns:
        The ``tune_driver.SearchOutcome``.
    """
    from orchestrator.tune_driver import resume_search

    run = _require(cfg, "run", "resume", "reactune_runs/runs/transvae-offline-20250101-120000")
    c = _plain(cfg)
    init_ray(c)
    outcome = resume_search(run, endpoint_url=c["data"]["endpoint_url"])
    _print_outcome(outcome)
    return outcome


def export(cfg: DictConfig, overrides: Sequence[str] = ()) -> str:
    """Write the model bundle of the best trial of ``run=`` (to ``bundle=`` or export_dir); for a
    multi-objective search also one bundle per Pareto-optimal trial
    (``<export_dir>/<search>-pareto/<trial id>.pt``).

    Returns:
        The best trial's bundle path.
    """
    from orchestrator.export import export_best, export_pareto
    from orchestrator.tune_driver import read_run_info

    run = _require(cfg, "run", "export", "reactune_runs/runs/transvae-offline-20250101-120000")
    c = _plain(cfg)
    endpoint = c["data"]["endpoint_url"]
    path = export_best(run, c["bundle"], endpoint_url=endpoint,
                       default_dir=c["paths"]["export_dir"])
    print(f"exported the best trial of {run} -> {path}", flush=True)
    if read_run_info(run, endpoint).get("objectives"):
        paths = export_pareto(run, endpoint_url=endpoint, default_dir=c["paths"]["export_dir"])
        print(f"exported {len(paths)} Pareto-optimal trial(s) -> {paths[0].parent}: "
              + ", ".join(p.name for p in paths), flush=True)
    return str(path)


def demo(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Synthetic set -> shards -> one small search per baseline -> export -> leaderboard.

    Args:
        cfg: the composed config (``experiment=demo`` gives the 2-core, < 10 minute sizes).
        overrides: the overrides ``cfg`` was composed with; each baseline's search is composed
            from them plus ``baseline=<name>``.

    Returns:
        {"leaderboard": path of the JSON, "bundles": {baseline: path}, "models": {baseline:
        metrics}, "references": {name: metrics}}.
    """
    from orchestrator.export import export_best
    from orchestrator.tune_driver import run_search
    from react_models import load_bundle

    t0 = time.monotonic()
    c = _plain(cfg)
    init_ray(c)
    ensure_data(cfg)
    base = [o for o in overrides if not o.startswith(("baseline=", "stage="))]
    bundles, models = {}, {}
    for name in c["demo"]["baselines"]:
        cfg_b = config_mod.compose([*base, f"baseline={name}"])
        outcome = run_search(cfg_b, [*base, f"baseline={name}"])
        _print_outcome(outcome)
        path = export_best(outcome.run_dir, endpoint_url=c["data"]["endpoint_url"],
                           default_dir=c["paths"]["export_dir"])
        model = load_bundle(path)  # the bundle rebuilds and generates on its own
        bundles[name], models[name] = str(path), dict(model.bundle_info["metrics"])
        print(f"[demo] {name}: bundle {path}", flush=True)
    refs = leaderboard.reference_rows(c)
    minutes = (time.monotonic() - t0) / 60
    title = (f"REACT leaderboard ({c['eval']['split']} split, K={c['eval']['num_samples']}, "
             f"best trial per baseline; {minutes:.1f} min)")
    print(leaderboard.render(models, refs, title=title), flush=True)
    out = leaderboard.write(Path(c["paths"]["work_dir"]) / "demo" / "leaderboard.json", models,
                            refs, {"task": c["task"]["name"], "minutes": minutes,
                                   "bundles": {k: str(Path(v).resolve())
                                               for k, v in bundles.items()}})
    print(f"leaderboard -> {out}  (HTML: `reactune stage=report run={out.parent}`)", flush=True)
    return {"leaderboard": str(out), "bundles": bundles, "models": models, "references": refs}


def render(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Draw what the model in ``bundle=`` does for ``render.speakers`` (attribute plots, 3D faces,
    optional PIRender frames and FID), as its own Ray task.

    Returns:
        The render summary (files written, per-speaker realism scores).
    """
    from orchestrator.render_stage import render_from_config

    _require(cfg, "bundle", "render", "reactune_runs/export/transvae-offline.pt")
    c = _plain(cfg)
    init_ray(c)
    summary = render_from_config(c)
    print(f"rendered {c['bundle']} -> {summary.get('out_dir', '')}", flush=True)
    return summary


def report(cfg: DictConfig, overrides: Sequence[str] = ()) -> str:
    """Write ``<run>/report.html`` (leaderboards, Pareto plot, curves, importances, renders)
    for a folder holding ``leaderboard.json`` (default: the demo's, ``<work_dir>/demo``)."""
    from orchestrator import report as report_mod

    c = _plain(cfg)
    run = c["run"] or str(Path(c["paths"]["work_dir"]) / "demo")
    if not (Path(run) / "leaderboard.json").exists() and not any(
            Path(run).glob("*/leaderboard.json")):
        raise FileNotFoundError(f"no leaderboard.json in {run} (or one level down); run "
                                f"`reactune` (the demo) first or give run=<folder with one>")
    out = report_mod.report(run)
    print(f"report -> {out}", flush=True)
    return str(out)


def _print_outcome(outcome: Any) -> None:
    from orchestrator.results import best_trial

    done = sum(t.status == "TERMINATED" for t in outcome.trials)
    errors = sum(t.status == "ERROR" for t in outcome.trials)
    line = (f"search {outcome.name}: {len(outcome.trials)} trials ({done} terminated, "
            f"{errors} errored) in {outcome.run_dir}")
    try:
        trial, key = best_trial(outcome)
        line += f"; best {trial.trial_id} {key}={trial.last[key]:.4g}"
    except ValueError as e:
        line += f"; no best trial ({e})"
    print(line, flush=True)


STAGES: dict[str, Callable[[DictConfig, Sequence[str]], Any]] = {
    "prepare": prepare, "fit": fit, "test": test, "search": search, "resume": resume,
    "export": export, "demo": demo, "render": render, "report": report,
}


def run_stage(cfg: DictConfig, overrides: Sequence[str] = ()) -> Any:
    """Dispatch ``cfg.stage`` to its function."""
    stage = cfg.stage
    if stage not in STAGES:
        raise config_mod.ConfigError(f"stage={stage!r} is not a stage; allowed: "
                                     f"{', '.join(STAGES)} (see orchestrator/conf/config.yaml)")
    return STAGES[stage](cfg, overrides)
