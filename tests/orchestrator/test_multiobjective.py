"""Multi-objective logic on synthetic metric streams with known dominance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.multiobjective import (
    CONTINUE,
    STOP,
    Gate,
    MOASHARule,
    Objective,
    crowding_distance,
    hypervolume,
    mo_order,
    nondomination_ranks,
    pareto_front,
    parse_objectives,
    proxy_check,
)

OBJ = [Objective("FRDist", "min"), Objective("FRDiv", "max")]


def test_parse_objectives_names_the_bad_entry() -> None:
    assert parse_objectives([{"metric": "FRDist", "mode": "min"}]) == [Objective("FRDist", "min")]
    with pytest.raises(ValueError, match=r"objectives\[1\].*metric and mode"):
        parse_objectives([{"metric": "FRDist", "mode": "min"}, {"metric": "FRDiv"}])
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'up'"):
        parse_objectives([{"metric": "FRDiv", "mode": "up"}])
    with pytest.raises(ValueError, match="twice"):
        parse_objectives([{"metric": "A", "mode": "min"}, {"metric": "A", "mode": "max"}])
    with pytest.raises(ValueError, match="empty"):
        parse_objectives([])


def test_nondomination_ranks_and_crowding_on_a_known_set() -> None:
    # losses (both minimised): three on the front, one dominated by (1,1), one by everything
    losses = np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0], [1.5, 1.5], [3.0, 3.0]])
    assert nondomination_ranks(losses).tolist() == [0, 0, 0, 1, 2]
    d = crowding_distance(losses[:3])
    assert math.isinf(d[0]) and math.isinf(d[2]) and d[1] == pytest.approx(2.0)
    assert mo_order(losses)[:3].tolist() in ([0, 2, 1], [2, 0, 1])
    assert mo_order(losses)[3:].tolist() == [3, 4]


def test_pareto_front_ignores_trials_that_did_not_reach_the_full_budget() -> None:
    rows = [
        {"id": "good", "FRDist": 10.0, "FRDiv": 0.05, "epoch": 9},
        {"id": "diverse", "FRDist": 14.0, "FRDiv": 0.20, "epoch": 9},
        {"id": "dominated", "FRDist": 15.0, "FRDiv": 0.04, "epoch": 9},
        # under-trained noise generator: would dominate everything on diversity + luck
        {"id": "noise", "FRDist": 9.0, "FRDiv": 0.50, "epoch": 1},
        {"id": "failed", "FRDist": float("nan"), "FRDiv": 0.1, "epoch": 9},
    ]
    ids = {r["id"] for r in pareto_front(rows, OBJ, budget_key="epoch", full_budget=9)}
    assert ids == {"good", "diverse"}
    assert {r["id"] for r in pareto_front(rows, OBJ)} == {"noise"}


def test_hypervolume_matches_hand_computed_areas() -> None:
    ref = {"FRDist": 3.0, "FRDiv": 0.0}
    assert hypervolume([{"FRDist": 1.0, "FRDiv": 2.0}], OBJ, ref) == pytest.approx(4.0)
    two = [{"FRDist": 1.0, "FRDiv": 2.0}, {"FRDist": 2.0, "FRDiv": 3.0}]
    assert hypervolume(two, OBJ, ref) == pytest.approx(5.0)
    assert hypervolume([{"FRDist": 5.0, "FRDiv": 2.0}], OBJ, ref) == 0.0


def _rule(**kw) -> MOASHARule:
    return MOASHARule(objectives=OBJ, max_t=9, grace_period=1, reduction_factor=3, **kw)


def test_rungs_follow_the_geometric_schedule() -> None:
    assert _rule().rungs == [1, 3]
    with pytest.raises(ValueError, match="grace_period"):
        MOASHARule(objectives=OBJ, max_t=2, grace_period=3)


def test_mo_asha_stops_dominated_trials_and_promotes_the_front() -> None:
    rule = _rule()
    # nine trials reach rung 1 in this order; the non-dominated ones are a, e, i
    stream = {
        "a": (10.0, 0.10), "b": (12.0, 0.05), "c": (13.0, 0.06), "d": (12.5, 0.07),
        "e": (11.0, 0.20), "f": (14.0, 0.01), "g": (13.5, 0.02), "h": (12.2, 0.08),
        "i": (15.0, 0.40),
    }
    decisions = {tid: rule.on_result(tid, {"epoch": 1, "FRDist": d, "FRDiv": v})
                 for tid, (d, v) in stream.items()}
    assert decisions["a"] == CONTINUE  # first come: nothing to compare with
    # with all nine recorded, only the front survives
    for tid in "bcdfgh":
        assert decisions[tid] == STOP, tid
    for tid in "aei":
        assert decisions[tid] == CONTINUE, tid
    assert set(rule.stopped) == set("bcdfgh")
    # results between rungs and at full budget never stop a trial
    assert rule.on_result("a", {"epoch": 2, "FRDist": 99.0, "FRDiv": 0.0}) == CONTINUE
    assert rule.on_result("a", {"epoch": 9, "FRDist": 99.0, "FRDiv": 0.0}) == CONTINUE


def test_gate_stops_a_noise_generator_whatever_its_diversity() -> None:
    rule = _rule(gate=Gate("FRDist", max=20.0))  # e.g. the Mime reference
    assert rule.on_result("model", {"epoch": 1, "FRDist": 12.0, "FRDiv": 0.05}) == CONTINUE
    noise = {"epoch": 1, "FRDist": 40.0, "FRDiv": 5.0}  # on the front, fails the gate
    assert rule.on_result("noise", noise) == STOP
    assert "gate" in rule.stopped["noise"]


def test_missing_or_nan_objective_stops_at_the_rung() -> None:
    rule = _rule()
    assert rule.on_result("x", {"epoch": 1, "FRDist": float("nan"), "FRDiv": 0.1}) == STOP
    assert rule.on_result("y", {"epoch": 0.5}) == CONTINUE


def test_state_round_trip_gives_the_same_decisions() -> None:
    rule = _rule()
    for i, (d, v) in enumerate([(10, 0.1), (11, 0.05), (12, 0.2)]):
        rule.on_result(f"t{i}", {"epoch": 1, "FRDist": d, "FRDiv": v})
    restored = _rule()
    restored.load_state_dict(rule.state_dict())
    probe = {"epoch": 1, "FRDist": 13.0, "FRDiv": 0.01}
    assert restored.on_result("new", dict(probe)) == rule.on_result("new", dict(probe)) == STOP


def test_proxy_check_flags_a_probe_that_ranks_trials_differently() -> None:
    good = [{"p": i, "f": 2 * i + 1} for i in range(6)]
    rho, ok = proxy_check(good, "p", "f", threshold=0.5)
    assert rho == pytest.approx(1.0) and ok
    bad = [{"p": i, "f": -i} for i in range(6)]
    rho, ok = proxy_check(bad, "p", "f", threshold=0.5)
    assert rho == pytest.approx(-1.0) and not ok
    rho, ok = proxy_check(good[:2], "p", "f", threshold=0.5)
    assert math.isnan(rho) and ok


def test_fidelity_aware_search_tells_under_budget_trials_as_pruned() -> None:
    import optuna

    from orchestrator.tune_mo import FidelityAwareOptunaSearch

    def space(trial: optuna.Trial) -> None:
        trial.suggest_float("lr", 1e-5, 1e-3, log=True)

    search = FidelityAwareOptunaSearch(space=space, metric=["FRDist", "FRDiv"],
                                       mode=["min", "max"], seed=1, full_budget=4)
    for tid in ("full", "early", "crashed"):
        assert "lr" in search.suggest(tid)
    search.on_trial_complete("full", {"epoch": 4, "FRDist": 10.0, "FRDiv": 0.1})
    search.on_trial_complete("early", {"epoch": 1, "FRDist": 5.0, "FRDiv": 0.9})
    search.on_trial_complete("crashed", None, error=True)
    states = {t.number: (t.state, t.user_attrs.get("budget")) for t in
              search._ot_study.get_trials(deepcopy=False)}
    assert states[0] == (optuna.trial.TrialState.COMPLETE, 4.0)
    assert states[1] == (optuna.trial.TrialState.PRUNED, 1.0)
    assert states[2][0] == optuna.trial.TrialState.FAIL
    front = search._ot_study.best_trials
    assert [t.number for t in front] == [0]
