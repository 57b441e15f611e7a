"""Per-trial scheduling overhead of Ray Tune + OptunaSearch versus a plain Optuna loop.

Both run the same number of instant trials (a 2-parameter quadratic, TPE with the same seed):
the plain loop costs only Optuna's sampling, so the difference is what Tune adds per trial
(actor start-up, placement groups, result and experiment-state bookkeeping). The ratio tells
when a search is "small-trial dominated": a trial should run well above the per-trial overhead.

    python benchmarks/bench_search.py --trials 30 --concurrency 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import optuna


def plain_optuna(num_trials: int, seed: int) -> tuple[float, float]:
    """Seconds for ``study.optimize`` over the same space and objective, and its best loss."""
    from orchestrator.tune_driver import _quadratic, quadratic_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    t0 = time.perf_counter()
    study.optimize(lambda t: _quadratic(**quadratic_space(t)), n_trials=num_trials)
    return time.perf_counter() - t0, float(study.best_value)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--concurrency", type=int, default=1, help="Tune trials at once")
    p.add_argument("--cpus", type=int, default=2, help="CPUs for the local Ray")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import ray

    from orchestrator.tune_driver import time_trivial_search

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        with tempfile.TemporaryDirectory(prefix="reactune-bench-") as tmp:
            time_trivial_search(2, storage_path=tmp)  # warm-up: worker start-up, imports
            tune = {reuse: time_trivial_search(args.trials, max_concurrent=args.concurrency,
                                               seed=args.seed, reuse_actors=reuse,
                                               storage_path=tmp)
                    for reuse in (True, False)}
    finally:
        ray.shutdown()
    optuna_s, optuna_best = plain_optuna(args.trials, args.seed)
    out = {"trials": args.trials, "concurrency": args.concurrency,
           "plain_optuna_s": round(optuna_s, 4),
           "plain_per_trial_ms": round(1000 * optuna_s / args.trials, 2),
           "best_loss_plain": optuna_best}
    for reuse, (tune_s, tune_best) in tune.items():
        tag = "reuse_actors" if reuse else "fresh_actors"
        out[tag] = {
            "tune_optuna_s": round(tune_s, 3),
            "tune_per_trial_ms": round(1000 * tune_s / args.trials, 1),
            "overhead_per_trial_ms": round(1000 * (tune_s - optuna_s) / args.trials, 1),
            "ratio": round(tune_s / optuna_s, 1),
            "best_loss": tune_best,
        }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
