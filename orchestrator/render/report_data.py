"""Read what the HTML report shows from a run directory (files only; no Ray, no Tune imports).

A run directory holds one or more leaderboards, ``leaderboard.json`` at its top or one level
down (one per task), each written by the orchestrator::

    {"task": "offline",                                   optional (default: folder name)
     "models": {"transvae": {"FRCorr": 0.1, ...}, ...},   best model per baseline (required)
     "references": {"GT": {...}, "Random": {...}, ...},   optional reference rows
     "bundles": {"transvae": "export/transvae.pt"},       optional
     "searches": {"transvae": "runs/transvae-offline-..."}, optional search folders
     "pareto": {"transvae": [{"trial_id": "a1", "metrics": {...}}]}, optional
     "objectives": [{"metric": "FRDist", "mode": "min"}, {"metric": "FRDiv", "mode": "max"}],
     "renders": {"transvae": "renders/transvae"}}          optional render_summary.json folders

Paths are relative to the leaderboard's folder (or absolute). A search folder is a Ray Tune
experiment written by ``stage=search``: ``reactune_run.json``, ``optuna_journal.log`` and
``trial_<id>/{params.json, result.json, progress.csv}``. Without ``pareto`` the Pareto rows are
computed from the search's trials (full-budget trials, ``val/`` metrics); without ``searches``
the search folder is taken from each bundle's provenance (``extra.run``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BETTER", "Board", "Row", "Search", "find_boards", "read_board", "read_search"]

BETTER = {"FRCorr": "max", "FRDist": "min", "FRDiv": "max", "FRVar": "max", "FRDvs": "max",
          "FRRea": "min", "FRRea_features": "min", "FRSyn": "min"}
DEFAULT_OBJECTIVES = (("FRDist", "min"), ("FRDiv", "max"))
LEADERBOARD_FILE = "leaderboard.json"


@dataclass
class Row:
    """One leaderboard row: ``kind`` is "best", "pareto" or "reference"."""

    name: str
    kind: str
    baseline: str
    metrics: dict[str, float]
    trial_id: str | None = None


@dataclass
class Search:
    """A search folder: its run info, trials (params, final metrics, curves), importances."""

    name: str
    path: Path
    info: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] | None = None
    importance_note: str = ""

    @property
    def objective(self) -> str:
        return str(self.info.get("metric", ""))


@dataclass
class Board:
    """One leaderboard (one task) with everything the report shows next to it."""

    task: str
    path: Path
    rows: list[Row]
    objectives: list[tuple[str, str]]
    searches: dict[str, Search] = field(default_factory=dict)
    renders: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def final_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Metric values of a trial result: ``val/<m>`` when present, else ``probe/<m>``."""
    out: dict[str, float] = {}
    for prefix in ("probe/", "val/"):  # val overwrites probe
        for k, v in result.items():
            if k.startswith(prefix) and _finite(v):
                out[k[len(prefix):]] = float(v)
    return out


def find_boards(run_dir: Path) -> list[Path]:
    """``leaderboard.json`` files in ``run_dir`` and its direct subfolders, sorted."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist; `run=` must be the "
                                f"folder holding leaderboard.json (e.g. reactune_runs/demo)")
    found = sorted([*run_dir.glob(LEADERBOARD_FILE), *run_dir.glob(f"*/{LEADERBOARD_FILE}")])
    if not found:
        raise FileNotFoundError(f"no {LEADERBOARD_FILE} in {run_dir} or its subfolders; run "
                                f"the search/demo stage first (it writes the leaderboard)")
    return found


def _resolve(base: Path, p: str | Path) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else base / p


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not readable JSON ({e})") from e


def _metric_map(where: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must map metric names to numbers, got {type(value).__name__}")
    return {str(k): float(v) for k, v in value.items() if _finite(v)}


def read_search(path: Path) -> Search:
    """Read a Tune experiment folder written by ``stage=search`` (missing parts are noted)."""
    path = Path(path)
    info = _read_json(path / "reactune_run.json") if (path / "reactune_run.json").is_file() else {}
    s = Search(name=str(info.get("name", path.name)), path=path, info=info)
    for trial_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        result_file, progress_file = trial_dir / "result.json", trial_dir / "progress.csv"
        if not (result_file.is_file() or progress_file.is_file()):
            continue
        last: dict[str, Any] = {}
        if result_file.is_file():
            lines = [ln for ln in result_file.read_text().splitlines() if ln.strip()]
            if lines:
                last = json.loads(lines[-1])
        params = (_read_json(trial_dir / "params.json")
                  if (trial_dir / "params.json").is_file() else {})
        curve: dict[str, list[float]] = {}
        if progress_file.is_file():
            with progress_file.open(newline="") as f:
                for rec in csv.DictReader(f):
                    for k, v in rec.items():
                        try:
                            curve.setdefault(k, []).append(float(v))
                        except (TypeError, ValueError):
                            curve.setdefault(k, []).append(math.nan)
        trial_id = str(last.get("trial_id") or trial_dir.name.removeprefix("trial_"))
        s.trials.append({"trial_id": trial_id, "params": params, "last": last,
                         "metrics": final_metrics(last), "curve": curve})
    s.importance, s.importance_note = _importance(path, s.name)
    return s


def _importance(path: Path, name: str) -> tuple[dict[str, float] | None, str]:
    """fANOVA parameter importances from the search's Optuna journal, or why there are none."""
    journal = path / "optuna_journal.log"
    if not journal.is_file():
        return None, f"no Optuna journal ({journal.name}) in the search folder"
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    names = optuna.get_all_study_names(storage)
    if not names:
        return None, "the Optuna journal holds no study"
    study = optuna.load_study(study_name=name if name in names else names[0], storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.params]
    if len(done) < 2 or not any(len({str(t.params.get(p)) for t in done}) > 1
                                for p in done[0].params):
        return None, f"needs at least 2 completed trials with varied parameters ({len(done)} done)"
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        imp = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
    except (ValueError, RuntimeError) as e:
        return None, f"Optuna could not compute importances ({e})"
    return {k: float(v) for k, v in imp.items()}, f"fANOVA over {len(done)} completed trials"


def _bundle_run(path: Path) -> str | None:
    """The search folder recorded in a bundle's provenance (``extra.run``), if any."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # an unreadable bundle only means no learning curves for that row
        return None
    run = (payload.get("extra") or {}).get("run") if isinstance(payload, dict) else None
    return str(run) if run else None


def _pareto_rows(name: str, search: Search, objectives: list[tuple[str, str]]) -> list[Row]:
    from orchestrator.multiobjective import Objective, pareto_front

    epochs = search.info.get("epochs")
    rows = [{**t["metrics"], "_trial": t["trial_id"], "_epoch": t["last"].get("epoch", 0)}
            for t in search.trials]
    front = pareto_front(rows, [Objective(m, mode) for m, mode in objectives],
                         budget_key="_epoch" if epochs else None,
                         full_budget=float(epochs) if epochs else None)
    return [Row(name=f"{name} · Pareto {r['_trial']}", kind="pareto", baseline=name,
                metrics={k: v for k, v in r.items() if not k.startswith("_")},
                trial_id=str(r["_trial"])) for r in front]


def read_board(path: Path) -> Board:
    """Read one leaderboard file and everything it points to (see the module docstring)."""
    path = Path(path)
    d = _read_json(path)
    if not isinstance(d, dict) or not isinstance(d.get("models"), dict):
        raise ValueError(f"{path} must be a JSON object with a 'models' mapping (baseline -> "
                         f"metrics); it is written by the orchestrator's leaderboard stage")
    base = path.parent
    task = str(d.get("task") or (base.name if base.name else "leaderboard"))
    objectives = [(str(o["metric"]), str(o["mode"])) for o in d.get("objectives") or []] or \
        list(DEFAULT_OBJECTIVES)
    rows = [Row(name=n, kind="best", baseline=n, metrics=_metric_map(f"{path}: models[{n!r}]", m))
            for n, m in d["models"].items()]
    board = Board(task=task, path=path, rows=rows, objectives=objectives)
    searches = dict(d.get("searches") or {})
    for n, bundle in (d.get("bundles") or {}).items():
        if n not in searches and _resolve(base, bundle).is_file():
            run = _bundle_run(_resolve(base, bundle))
            if run:
                searches[n] = run
    for n, p in searches.items():
        sp = _resolve(base, p)
        if sp.is_dir():
            board.searches[n] = read_search(sp)
        else:
            board.notes.append(f"search folder of {n} not found: {sp}")
    given = d.get("pareto") or {}
    for n in d["models"]:
        if n in given:
            board.rows += [Row(name=f"{n} · Pareto {p.get('trial_id', i)}", kind="pareto",
                               baseline=n, metrics=_metric_map(f"{path}: pareto[{n!r}]",
                                                               p.get("metrics", {})),
                               trial_id=str(p.get("trial_id", i)))
                           for i, p in enumerate(given[n])]
        elif n in board.searches:
            best = board.rows[[r.name for r in board.rows].index(n)].metrics
            board.rows += [r for r in _pareto_rows(n, board.searches[n], objectives)
                           if r.metrics != best]
    board.rows += [Row(name=n, kind="reference", baseline="", metrics=_metric_map(
        f"{path}: references[{n!r}]", m)) for n, m in (d.get("references") or {}).items()]
    board.renders = _renders(base, d)
    return board


def _renders(base: Path, d: dict[str, Any]) -> dict[str, tuple[Path, dict[str, Any]]]:
    from orchestrator.render_stage import SUMMARY_FILE

    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for n, p in (d.get("renders") or {}).items():
        f = _resolve(base, p) / SUMMARY_FILE
        if f.is_file():
            out[n] = (f.parent, _read_json(f))
    for n, bundle in (d.get("bundles") or {}).items():  # the render stage's default folder
        b = _resolve(base, bundle)
        f = b.parent / "renders" / b.stem / SUMMARY_FILE
        if n not in out and f.is_file():
            out[n] = (f.parent, _read_json(f))
    for f in sorted(base.glob(f"renders/*/{SUMMARY_FILE}")):
        if f.parent.name not in out and all(f.parent != v[0] for v in out.values()):
            out[f.parent.name] = (f.parent, _read_json(f))
    return out
