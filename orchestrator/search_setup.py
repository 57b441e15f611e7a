"""How a search samples, prunes and gates: its objectives, Optuna sampler, Tune searcher and
scheduler, built from the composed config (see `orchestrator.tune_driver`, which runs them).

Single objective: ``OptunaSearch`` on ``search.metric`` with TPE or random sampling and ASHA on
the per-epoch probe metric. With ``search.objectives`` the study has a direction per objective
(TPE, random, NSGA-II or NSGA-III), ``tune_mo.FidelityAwareOptunaSearch`` tells early-stopped
trials as PRUNED, and ``tune_mo.MOASHAScheduler`` promotes by non-dominated sorting behind the
``search.gate`` minimum-appropriateness bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator import config as config_mod
from orchestrator.multiobjective import Gate, Objective, parse_objectives
from orchestrator.results import full_metric

__all__ = ["SAMPLERS", "check_search_config", "gate", "objectives", "references_on_probe",
           "sampler", "scheduler", "searcher"]

SAMPLERS = ("tpe", "random", "nsga2", "nsga3")


def objectives(cfg: Mapping[str, Any]) -> list[Objective] | None:
    """``search.objectives`` as validated `Objective` s on bare metric names, or None (one
    objective: ``search.metric``). ``FRDist``, ``probe/FRDist`` and ``val/FRDist`` all mean the
    metric FRDist: pruning reads its per-epoch probe value, the front its full-validation one."""
    from metrics import METRICS

    spec = cfg["search"].get("objectives")
    if not spec:
        return None
    try:
        objs = parse_objectives(spec)
    except ValueError as e:
        raise config_mod.ConfigError(f"{e}; see orchestrator/conf/search/mo.yaml") from None
    out = []
    probed = cfg["eval"].get("probe_metrics")
    for o in objs:
        name = o.metric.split("/", 1)[-1]
        if name not in METRICS:
            raise config_mod.ConfigError(
                f"search.objectives: unknown metric {o.metric!r}; allowed: {', '.join(METRICS)}")
        if probed and name not in probed:
            raise config_mod.ConfigError(
                f"search.objectives names {name} but eval.probe_metrics={list(probed)} does not "
                f"score it every epoch; add it there or set eval.probe_metrics=null")
        out.append(Objective(name, o.mode))
    if len({o.metric for o in out}) != len(out):
        raise config_mod.ConfigError(f"search.objectives names a metric twice: {spec}")
    return out


def check_search_config(cfg: Mapping[str, Any]) -> None:
    """Validate ``search.objectives`` and ``search.sampler`` (cheap; before Ray starts).

    Raises:
        ConfigError: naming the key, what is allowed and the file to look in.
    """
    objectives(cfg)
    sampler(cfg)


def sampler(cfg: Mapping[str, Any]) -> Any:
    import optuna

    s = cfg["search"]
    seed, startup = int(s["seed"]), int(s["n_startup_trials"])
    if s["sampler"] == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    if s["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s["sampler"] == "nsga2":  # a generation = n_startup_trials trials
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, startup))
    if s["sampler"] == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed, population_size=max(2, startup))
    raise config_mod.ConfigError(f"search.sampler must be one of {', '.join(SAMPLERS)}, got "
                                 f"{s['sampler']!r}; see orchestrator/conf/search/")


def searcher(cfg: Mapping[str, Any], name: str, storage: Any, concurrency: int) -> Any:
    from ray.tune.search import ConcurrencyLimiter

    import search_spaces
    from orchestrator.tune_mo import FidelityAwareOptunaSearch

    s = cfg["search"]
    space = search_spaces.get(cfg["baseline"]["name"], task=cfg["task"]["name"],
                              size=cfg["size"]["name"])
    objs = objectives(cfg)
    if objs is None:
        metric, mode, final = s["metric"], s["mode"], {}
    else:
        metric = [f"probe/{o.metric}" for o in objs]
        mode = [o.mode for o in objs]
        final = {m: full_metric(m) for m in metric}
    search = FidelityAwareOptunaSearch(
        space=space, metric=metric, mode=mode, sampler=sampler(cfg), study_name=name,
        storage=storage, budget_key="epoch",
        full_budget=int(cfg["baseline"]["trainer"]["epochs"]), final_metrics=final)
    return ConcurrencyLimiter(search, max_concurrent=concurrency)


_GATE_REFERENCES = {"mime": "Mime", "random": "Random", "meanfr": "MeanFr"}


def gate(cfg: Mapping[str, Any]) -> Gate | None:
    """``search.gate`` ({metric, max|min: a number or a reference}) on the probe metric.

    A reference (``random``, ``mime``, ``meanfr``) is that naive reference's value on the same
    probe: ``max: random`` stops any trial no better than noise, ``max: mime`` (stricter) any
    trial no better than copying the speaker.
    """
    from metrics import METRICS

    spec = cfg["search"].get("gate")
    if not spec:
        return None
    if not isinstance(spec, Mapping) or "metric" not in spec or not (set(spec) - {"metric"}) or (
            set(spec) - {"metric", "max", "min"}):
        raise config_mod.ConfigError(
            f"search.gate must be {{metric: FRDist, max: random}} (max and/or min: a number or "
            f"one of {', '.join(_GATE_REFERENCES)}), got {spec!r}")
    name = str(spec["metric"]).split("/", 1)[-1]
    if name not in METRICS:
        raise config_mod.ConfigError(f"search.gate: unknown metric {spec['metric']!r}; "
                                     f"allowed: {', '.join(METRICS)}")
    bounds: dict[str, float | None] = {}
    refs = None
    for side in ("max", "min"):
        v = spec.get(side)
        if isinstance(v, str) and v.lower() in _GATE_REFERENCES:
            ref = _GATE_REFERENCES[v.lower()]
            refs = refs or references_on_probe(cfg)
            v = refs[ref][name]
            print(f"  gate: probe/{name} {'<=' if side == 'max' else '>='} {v:.4g} "
                  f"(the {ref} reference on the probe)", flush=True)
        elif v is not None:
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise config_mod.ConfigError(
                    f"search.gate.{side} must be a number or one of "
                    f"{', '.join(_GATE_REFERENCES)}, got {v!r}") from None
        bounds[side] = v
    return Gate(f"probe/{name}", max=bounds["max"], min=bounds["min"])


def references_on_probe(cfg: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The naive references (GT, Random, Mime, MeanFr) scored on the trials' probe."""
    from orchestrator.leaderboard import reference_rows
    from orchestrator.trainable import probe_set

    return reference_rows(cfg, probe_set(cfg))


def scheduler(cfg: Mapping[str, Any]) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    sc, epochs = cfg["scheduler"], int(cfg["baseline"]["trainer"]["epochs"])
    if sc["name"] == "fifo":
        return FIFOScheduler()
    if sc["name"] != "asha":
        raise config_mod.ConfigError(f"scheduler.name must be asha or fifo, got {sc['name']!r}; "
                                     f"see orchestrator/conf/scheduler/")
    grace, rf = min(int(sc["grace_period"]), epochs), float(sc["reduction_factor"])
    objs = objectives(cfg)
    if objs is not None:
        from orchestrator.multiobjective import MOASHARule
        from orchestrator.tune_mo import MOASHAScheduler

        s = cfg["search"]
        rule = MOASHARule([Objective(f"probe/{o.metric}", o.mode) for o in objs], max_t=epochs,
                          grace_period=grace, reduction_factor=rf, gate=gate(cfg))
        first = f"probe/{objs[0].metric}"
        return MOASHAScheduler(rule, proxy=(first, full_metric(first)),
                               proxy_threshold=float(s["proxy_min_rho"]),
                               proxy_min_trials=int(s["proxy_min_trials"]))
    return ASHAScheduler(time_attr="epoch", metric=cfg["search"]["metric"],
                         mode=cfg["search"]["mode"], max_t=epochs, grace_period=grace,
                         reduction_factor=rf)
