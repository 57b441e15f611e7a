"""Multi-objective search wiring without Ray: config validation, final-metric telling, the proxy
check switching MO-ASHA off, and the Pareto front read back from trial records."""

from __future__ import annotations

import math

import pytest

from orchestrator import config as config_mod
from orchestrator.config import compose
from orchestrator.multiobjective import MOASHARule, Objective
from orchestrator.results import SearchOutcome, TrialRecord, pareto_trials


def _plain(*ov: str) -> dict:
    return config_mod.to_plain(compose(["debug=smoke", *ov]))


def test_objectives_from_config_are_validated_with_the_fix_named() -> None:
    from orchestrator.search_setup import objectives

    assert objectives(_plain()) is None
    objs = objectives(_plain("search=mo"))
    assert objs == [Objective("FRDist", "min"), Objective("FRDiv", "max")]
    cli = objectives(_plain("search.objectives=[{metric:val/FRCorr,mode:max},"
                            "{metric:probe/FRSyn,mode:min}]"))
    assert cli == [Objective("FRCorr", "max"), Objective("FRSyn", "min")]
    with pytest.raises(config_mod.ConfigError, match="unknown metric 'FRFoo'.*FRDist"):
        objectives(_plain("search.objectives=[{metric:FRFoo,mode:min}]"))
    with pytest.raises(config_mod.ConfigError, match="mode must be 'min' or 'max'"):
        objectives(_plain("search.objectives=[{metric:FRDist,mode:up}]"))
    with pytest.raises(config_mod.ConfigError, match="twice"):
        objectives(_plain("search.objectives=[{metric:FRDist,mode:min},"
                          "{metric:val/FRDist,mode:min}]"))
    with pytest.raises(config_mod.ConfigError, match="eval.probe_metrics"):
        objectives(_plain("search=mo", "eval.probe_metrics=[FRDist]"))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_samplers_and_gate_spec() -> None:
    import optuna

    from orchestrator.search_setup import check_search_config, gate, sampler

    assert isinstance(sampler(_plain("search.sampler=nsga2")), optuna.samplers.NSGAIISampler)
    assert isinstance(sampler(_plain("search.sampler=nsga3")), optuna.samplers.NSGAIIISampler)
    with pytest.raises(config_mod.ConfigError, match="nsga2"):
        sampler(_plain("search.sampler=cmaes"))
    with pytest.raises(config_mod.ConfigError, match="nsga2"):
        check_search_config(_plain("search.sampler=cmaes"))  # what stage=search runs first
    check_search_config(_plain("search=mo", "search.sampler=nsga2"))
    g = gate(_plain("search=mo", "search.gate={metric:FRDist,max:80}"))
    assert g.metric == "probe/FRDist" and g.max == 80.0 and g.min is None
    g = gate(_plain("search.gate={metric:val/FRCorr,min:0.5}"))
    assert g.metric == "probe/FRCorr" and g.min == 0.5 and g.max is None
    assert gate(_plain("search=mo", "search.gate=null")) is None
    with pytest.raises(config_mod.ConfigError, match="search.gate must be"):
        gate(_plain("search.gate={metric:FRDist}"))
    with pytest.raises(config_mod.ConfigError, match="a number or one of mime, random"):
        gate(_plain("search.gate={metric:FRDist,max:lots}"))
    with pytest.raises(config_mod.ConfigError, match="unknown metric"):
        gate(_plain("search.gate={metric:FRFoo,max:1}"))


def test_full_budget_trials_are_told_their_full_validation_values() -> None:
    import optuna

    from orchestrator.tune_mo import FidelityAwareOptunaSearch

    search = FidelityAwareOptunaSearch(
        space=lambda t: {"lr": t.suggest_float("lr", 1e-4, 1e-2)},
        metric=["probe/FRDist", "probe/FRDiv"], mode=["min", "max"], seed=0, full_budget=3,
        final_metrics={"probe/FRDist": "val/FRDist", "probe/FRDiv": "val/FRDiv"})
    search.suggest("a")
    search.suggest("b")
    search.on_trial_complete("a", {"epoch": 3, "probe/FRDist": 9.0, "probe/FRDiv": 0.5,
                                   "val/FRDist": 7.0, "val/FRDiv": 0.25})
    search.on_trial_complete("b", {"epoch": 2, "probe/FRDist": 1.0, "probe/FRDiv": 0.9})
    a, b = search._ot_study.get_trials(deepcopy=False)
    assert a.state == optuna.trial.TrialState.COMPLETE and a.values == [7.0, 0.25]
    assert b.state == optuna.trial.TrialState.PRUNED and b.user_attrs["budget"] == 2.0


@pytest.mark.parametrize("metric,mode", [("probe/FRDist", "min"),
                                         (["probe/FRDist", "probe/FRDiv"], ["min", "max"])])
def test_a_trial_told_before_a_driver_crash_is_not_told_again(metric, mode) -> None:
    # the resumed searcher comes from a snapshot older than the journal: it still thinks "a"
    # runs, and the restarted trial reports its final result again
    import copy

    import optuna

    from orchestrator.tune_mo import FidelityAwareOptunaSearch

    search = FidelityAwareOptunaSearch(
        space=lambda t: {"lr": t.suggest_float("lr", 1e-4, 1e-2)}, metric=metric, mode=mode,
        seed=0, full_budget=2)
    search.suggest("a")
    snapshot = (copy.copy(search._completed_trials), dict(search._ot_trials))
    final = {"epoch": 2, "training_iteration": 2, "probe/FRDist": 5.0, "probe/FRDiv": 0.5}
    search.on_trial_result("a", final)
    search.on_trial_complete("a", final)
    search._completed_trials, search._ot_trials = snapshot  # restored from the older snapshot
    search.on_trial_result("a", {**final, "probe/FRDist": 9.0})  # no UpdateFinishedTrialError
    search.on_trial_complete("a", {**final, "probe/FRDist": 9.0})
    (a,) = search._ot_study.get_trials(deepcopy=False)
    assert a.state == optuna.trial.TrialState.COMPLETE and a.values[0] == 5.0  # the first telling
    assert "a" in search._completed_trials


def test_proxy_check_switches_mo_asha_off_when_the_probe_misranks() -> None:
    from ray.tune.schedulers import TrialScheduler

    from orchestrator.tune_mo import MOASHAScheduler

    class _T:
        def __init__(self, tid: str) -> None:
            self.trial_id = tid

    rule = MOASHARule([Objective("probe/FRDist", "min")], max_t=4, grace_period=1,
                      reduction_factor=2)
    sched = MOASHAScheduler(rule, proxy=("probe/FRDist", "val/FRDist"), proxy_threshold=0.3,
                            proxy_min_trials=4)
    # the probe ranks finished trials in the reverse order of the full validation
    for i in range(3):
        sched.on_trial_complete(None, _T(f"f{i}"), {"epoch": 4, "probe/FRDist": float(i),
                                                    "val/FRDist": float(-i)})
    assert sched.early_stopping  # 3 trials: not enough evidence to act yet
    sched.on_trial_complete(None, _T("early"), {"epoch": 2, "probe/FRDist": 0.0})  # ignored
    assert len(sched.finished) == 3
    sched.on_trial_complete(None, _T("f3"), {"epoch": 4, "probe/FRDist": 3.0,
                                             "val/FRDist": -3.0})
    assert not sched.early_stopping and sched.proxy_rho == pytest.approx(-1.0)
    # a trial far behind at the first rung would be stopped by ASHA; now it continues
    assert sched.on_trial_result(None, _T("x"), {"epoch": 1, "probe/FRDist": 1e9}) == \
        TrialScheduler.CONTINUE


def test_pareto_trials_skip_under_budget_and_checkpointless_trials() -> None:
    def rec(tid: str, epoch: int, dist: float, div: float, ckpt: object = "c") -> TrialRecord:
        return TrialRecord(tid, "TERMINATED", {}, {"epoch": epoch, "val/FRDist": dist,
                                                   "val/FRDiv": div}, checkpoint=ckpt)

    trials = [rec("a", 3, 10, 0.1), rec("b", 3, 12, 0.3), rec("c", 3, 11, 0.05),
              rec("noise", 1, 50, 0.9), rec("lost", 3, 1, 0.9, ckpt=None)]
    info = {"objectives": [{"metric": "FRDist", "mode": "min"},
                           {"metric": "FRDiv", "mode": "max"}], "epochs": 3, "metric": "x"}
    front = pareto_trials(SearchOutcome("r", "r", info, trials))
    assert [t.trial_id for t in front] == ["a", "b"]
    with pytest.raises(ValueError, match="single-objective"):
        pareto_trials(SearchOutcome("r", "r", {"metric": "probe/FRDist"}, trials))
    assert not math.isnan(front[0].last["val/FRDist"])
