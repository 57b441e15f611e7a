"""A run directory of the layout `orchestrator.report` reads, built from real files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

METRICS = ("FRCorr", "FRDist", "FRDiv", "FRVar", "FRDvs", "FRSyn", "FRRea_features")
EPOCHS = 3
# trial id -> (lr, layers, final FRDist, final FRDiv, epochs reached)
TRIALS = {
    "t0": (1e-3, 2, 80.0, 0.010, 3),  # Pareto (lowest FRDist)
    "t1": (3e-4, 4, 85.0, 0.050, 3),  # Pareto (trade-off)
    "t2": (1e-4, 2, 90.0, 0.020, 3),  # dominated by t1
    "t3": (3e-3, 6, 95.0, 0.090, 3),  # Pareto (highest FRDiv)
    "t4": (1e-2, 6, 70.0, 0.200, 1),  # would dominate, but stopped early (under budget)
    "t5": (5e-4, 4, 88.0, 0.040, 3),  # dominated by t1
}
PARETO = {"t0", "t1", "t3"}


def metrics_of(trial: str, prefix: str = "val/") -> dict[str, float]:
    lr, layers, frdist, frdiv, _ = TRIALS[trial]
    return {f"{prefix}FRCorr": 0.1 + layers / 100, f"{prefix}FRDist": frdist,
            f"{prefix}FRDiv": frdiv, f"{prefix}FRVar": 0.01 * layers,
            f"{prefix}FRDvs": frdiv / 2, f"{prefix}FRSyn": 45.0 + lr * 100,
            f"{prefix}FRRea_features": frdist / 10}


def write_search(folder: Path, name: str) -> Path:
    """A Tune experiment folder: run info, Optuna journal, per-trial results and curves."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    folder.mkdir(parents=True)
    (folder / "reactune_run.json").write_text(json.dumps(
        {"name": name, "metric": "probe/FRDist", "mode": "min", "epochs": EPOCHS,
         "baseline": name.split("-")[0], "task": "offline"}))
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(folder /
                                                                     "optuna_journal.log")))
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    dists = {"model.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
             "model.layers": optuna.distributions.IntDistribution(2, 6)}
    for tid, (lr, layers, frdist, _frdiv, reached) in TRIALS.items():
        params = {"model.lr": lr, "model.layers": layers}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  value=frdist))
        d = folder / f"trial_{tid}"
        d.mkdir()
        (d / "params.json").write_text(json.dumps(params))
        rows = []
        for epoch in range(1, reached + 1):
            r = {"epoch": epoch, "trial_id": tid, "training_iteration": epoch,
                 "probe/FRDist": frdist + 10 * (EPOCHS - epoch), "train/loss": 1.0 / epoch}
            if epoch == EPOCHS:
                r.update(metrics_of(tid))
            rows.append(r)
        (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        keys = sorted({k for r in rows for k in r})
        with (d / "progress.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    return folder


def write_render(folder: Path) -> Path:
    from orchestrator.render.plots import png_bytes
    from orchestrator.render.video import write_mp4

    item = folder / "00_0001"
    item.mkdir(parents=True)
    img = np.zeros((24, 32, 3), np.uint8)
    img[:, :16] = (200, 40, 40)
    (item / "faces.png").write_bytes(png_bytes(img))
    write_mp4(item / "faces.mp4", np.stack([img] * 5))
    summary = {"format": "reactune-renders", "version": 1, "model": "transvae",
               "face_model": "procedural", "backend": "torch",
               "items": [{"index": 1, "key": "val/session1/clip/speaker->listener",
                          "files": {"faces_png": "00_0001/faces.png",
                                    "faces_mp4": "00_0001/faces.mp4"}}],
               "realism": {"FRRea_features": {"value": 1.25, "label": "FRRea-feat (x)"}}}
    (folder / "render_summary.json").write_text(json.dumps(summary))
    return folder


def build_run(root: Path) -> dict:
    """run/leaderboard.json (offline, searches + bundle provenance) and run/online/ (pareto
    given); returns the two leaderboard dicts."""
    import torch

    from react_models import build, save_bundle

    search = write_search(root / "runs" / "transvae-offline", "transvae-offline")
    other = write_search(root / "runs" / "perfrdiff-offline", "perfrdiff-offline")
    torch.manual_seed(0)
    save_bundle(root / "export" / "perfrdiff.pt", build("transvae", {}),
                extra={"run": str(other)})  # provenance only: the report reads extra.run
    write_render(root / "renders" / "transvae")
    refs = {"GT": {"FRCorr": 8.5, "FRDist": 0.0, "FRDiv": 0.0, "FRVar": 0.07, "FRDvs": 0.25,
                   "FRSyn": 47.7},
            "Random": {"FRCorr": 0.05, "FRDist": 228.3, "FRDiv": 0.1667, "FRVar": 0.0833,
                       "FRDvs": 0.1667, "FRSyn": 46.3, "FRRea_features": 12.5},
            "Mime": {"FRCorr": 0.37, "FRDist": 84.78, "FRDiv": 0.0, "FRVar": 0.0635,
                     "FRDvs": 0.2483, "FRSyn": 43.5},
            "MeanFr": {"FRCorr": 0.0, "FRDist": 95.1, "FRDiv": 0.0, "FRVar": 0.0,
                       "FRDvs": 0.0, "FRSyn": 49.0}}
    strip = lambda m: {k.split("/", 1)[1]: v for k, v in m.items()}  # noqa: E731
    offline = {"task": "offline",
               "models": {"transvae": strip(metrics_of("t0")),
                          "perfrdiff": {**strip(metrics_of("t3")), "FRCorr": 0.123456789}},
               "references": refs,
               "searches": {"transvae": str(search.relative_to(root))},
               "bundles": {"perfrdiff": "export/perfrdiff.pt"},
               "renders": {"transvae": "renders/transvae"}}
    (root / "leaderboard.json").write_text(json.dumps(offline))
    online = {"models": {"transvae": {"FRCorr": 0.2, "FRDist": 91.5, "FRDiv": 0.02}},
              "pareto": {"transvae": [{"trial_id": "p1", "metrics": {
                  "FRCorr": 0.1, "FRDist": 99.0, "FRDiv": 0.3}}]},
              "references": {"GT": refs["GT"]}}
    (root / "online").mkdir()
    (root / "online" / "leaderboard.json").write_text(json.dumps(online))
    return {"offline": offline, "online": online}
