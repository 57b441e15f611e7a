"""Search strategies at an equal total epoch budget on the synthetic set (real Ray Tune searches).

(a) random search, every trial trained to the full budget (FIFO): the reference;
(b) TPE + ASHA, single objective (probe FRDist);
(c) the multi-objective search (FRDist min, FRDiv max; MO-ASHA with the Random gate).

The budget is (a)'s: ``--random-trials x epochs`` epochs. (b) and (c) get more trials (their
schedulers stop most early) and are cut at the same budget by replaying every reported epoch in
the order it happened. Printed: the best FRDist each reached (full validation of full-budget
trials, and the per-epoch probe), the budget fraction at which (b)'s probe FRDist first matched
(a)'s best (target <= 1/3), and the hypervolume of (c)'s Pareto front against the front implied
by (a)'s trials (same reference point: the worst FRDist of both, FRDiv 0).

    python benchmarks/bench_hpo.py                       # regnn, 8 random trials x 10 epochs
    python benchmarks/bench_hpo.py --baseline transvae --random-trials 6
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any


def _compose(work: Path, baseline: str, name: str, *extra: str) -> tuple[Any, list[str]]:
    from orchestrator.config import compose

    ov = ["experiment=demo", f"baseline={baseline}", f"paths.work_dir={work}",
          "cluster.dashboard=false", "search.max_concurrent=1", f"search.name={name}",
          f"search.storage_path={work / 'runs'}", *extra]
    return compose(ov), ov


def _epochs_in_order(run: Path) -> list[dict]:
    """Every reported epoch of every trial, in the order they were reported."""
    rows = []
    for f in run.glob("trial_*/result.json"):
        for line in f.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows.append({k: v for k, v in r.items() if k != "config"})
    return sorted(rows, key=lambda r: r["reported_at"])


def _within_budget(rows: list[dict], budget: int) -> list[dict]:
    return rows[:budget]  # one row = one trained epoch


def _best(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))
              and math.isfinite(r[key])]
    return min(values) if values else math.nan


def _matched_at(rows: list[dict], target: float, budget: int) -> float:
    """Fraction of the budget after which the best probe FRDist so far was <= target."""
    for i, r in enumerate(rows, start=1):
        if r.get("probe/FRDist", math.inf) <= target:
            return i / budget
    return math.nan


def _full_rows(rows: list[dict], epochs: int) -> list[dict]:
    return [r for r in rows if r.get("epoch") == epochs and "val/FRDist" in r]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", default="regnn", choices=["transvae", "perfrdiff", "regnn"])
    p.add_argument("--random-trials", type=int, default=8, help="(a)'s trials; sets the budget")
    p.add_argument("--epochs", type=int, default=10, help="full budget of one trial")
    p.add_argument("--extra-trials", type=float, default=3.0,
                   help="(b) and (c) run this many times (a)'s trial count (cut at the budget)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default="reactune_runs/bench_hpo",
                   help="data and runs (the synthetic shards are reused between runs)")
    args = p.parse_args(argv)

    import ray

    from orchestrator import stages
    from orchestrator.multiobjective import Objective, hypervolume, pareto_front
    from orchestrator.tune_driver import run_search

    work = Path(args.work_dir).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    budget = args.random_trials * args.epochs
    many = max(args.random_trials, round(args.random_trials * args.extra_trials))
    common = [f"baseline.trainer.epochs={args.epochs}", f"seed={args.seed}"]
    asha = ["scheduler=asha", "scheduler.grace_period=1", "scheduler.reduction_factor=2"]
    plans = {
        "a_random": ["search=random", "scheduler=fifo", f"search.num_samples={args.random_trials}"],
        "b_tpe_asha": ["search=tpe", *asha, f"search.num_samples={many}"],
        "c_multiobjective": ["search=mo", *asha, f"search.num_samples={many}"],
    }
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    rows, seconds = {}, {}
    try:
        cfg, _ = _compose(work, args.baseline, "x", *common)
        stages.ensure_data(cfg)
        for key, plan in plans.items():
            name = f"{key}-{stamp}"
            cfg, ov = _compose(work, args.baseline, name, *common, *plan)
            t0 = time.monotonic()
            outcome = run_search(cfg, ov)
            seconds[key] = time.monotonic() - t0
            rows[key] = _epochs_in_order(Path(outcome.run_dir))
    finally:
        ray.shutdown()

    cut = {k: _within_budget(v, budget) for k, v in rows.items()}
    a_best_probe = _best(cut["a_random"], "probe/FRDist")
    out: dict[str, Any] = {"baseline": args.baseline, "budget_epochs": budget,
                           "epochs_per_trial": args.epochs, "seed": args.seed}
    for key, r in cut.items():
        full = _full_rows(r, args.epochs)
        out[key] = {"epochs_used": len(r), "epochs_run": len(rows[key]),
                    "full_budget_trials": len(full),
                    "best_val_FRDist": _best(full, "val/FRDist"),
                    "best_probe_FRDist": _best(r, "probe/FRDist"),
                    "seconds": round(seconds[key], 1)}
    out["b_matched_a_at_budget_fraction"] = _matched_at(cut["b_tpe_asha"], a_best_probe, budget)

    objs = [Objective("val/FRDist", "min"), Objective("val/FRDiv", "max")]
    fronts = {k: pareto_front(_full_rows(cut[k], args.epochs), objs)
              for k in ("a_random", "c_multiobjective")}
    worst = max((r["val/FRDist"] for f in fronts.values() for r in f), default=math.nan)
    ref = {"val/FRDist": worst * 1.01, "val/FRDiv": 0.0}
    out["hypervolume"] = {"reference": ref, **{
        k: hypervolume(f, objs, ref) for k, f in fronts.items()}}
    out["fronts"] = {k: [{"FRDist": r["val/FRDist"], "FRDiv": r["val/FRDiv"]} for r in f]
                     for k, f in fronts.items()}
    hv_a, hv_c = out["hypervolume"]["a_random"], out["hypervolume"]["c_multiobjective"]

    print(f"\nequal budget: {budget} epochs of {args.baseline} ({args.random_trials} x "
          f"{args.epochs}); seed {args.seed}")
    for key in plans:
        o = out[key]
        print(f"  {key:17s} best val FRDist {o['best_val_FRDist']:.4g} "
              f"(probe {o['best_probe_FRDist']:.4g}); {o['full_budget_trials']} full-budget "
              f"trials; {o['epochs_used']}/{o['epochs_run']} epochs counted; {o['seconds']} s")
    frac = out["b_matched_a_at_budget_fraction"]
    print(f"  (b) reached (a)'s best probe FRDist {a_best_probe:.4g} at "
          + ("never (within the budget)" if math.isnan(frac) else f"{frac:.2f} of the budget")
          + " (target <= 0.33)")
    print(f"  hypervolume (FRDist min, FRDiv max; ref FRDist {ref['val/FRDist']:.4g}, FRDiv 0): "
          f"(c) {hv_c:.4g} vs (a) {hv_a:.4g} -> ratio "
          + (f"{hv_c / hv_a:.2f}" if hv_a > 0 else "n/a"))
    print(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
