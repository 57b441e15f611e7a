"""A real multi-objective search (Ray Tune + Optuna + MO-ASHA) on the smoke set: the study, the
front, the gate and a bundle per Pareto point."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from metrics import METRICS
from orchestrator import stages
from orchestrator.config import compose
from orchestrator.tune_driver import PARETO_FILE, load_search
from react_models import load_bundle
from tests.orchestrator.conftest import overrides, params_key, run_study

pytestmark = pytest.mark.integration

EPOCHS = 3



def _dominates(a: dict, b: dict) -> bool:
    """a dominates b on (FRDist min, FRDiv max): no worse on both, better on one."""
    no_worse = a["FRDist"] <= b["FRDist"] and a["FRDiv"] >= b["FRDiv"]
    return no_worse and (a["FRDist"] < b["FRDist"] or a["FRDiv"] > b["FRDiv"])


def test_multi_objective_search_front_study_and_bundle_per_pareto_point(
        ray_session, smoke_data: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ov = overrides(tmp_path, smoke_data, "stage=search", "search=mo", "search.name=mo",
                   "search.gate=null", "search.num_samples=6", "search.n_startup_trials=3",
                   "baseline=regnn", f"baseline.trainer.epochs={EPOCHS}",
                   "scheduler.grace_period=1", "scheduler.reduction_factor=2")
    outcome = stages.search(compose(ov), ov)
    run = Path(outcome.run_dir)
    assert len(outcome.trials) == 6 and all(t.status == "TERMINATED" for t in outcome.trials)

    # the study is truly multi-objective; every trial is told by the budget it reached
    study = run_study(run)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE,
                                optuna.study.StudyDirection.MAXIMIZE]
    by_params = {params_key(t.params): t for t in study.trials}
    full = []
    for t in outcome.trials:
        st = by_params[params_key(t.params)]
        assert st.user_attrs["budget"] == t.last["epoch"]
        if t.last["epoch"] < EPOCHS:  # stopped by MO-ASHA: pruned, never complete
            assert st.state == optuna.trial.TrialState.PRUNED and st.values is None
        else:
            assert st.state == optuna.trial.TrialState.COMPLETE
            assert st.values == pytest.approx([t.last["val/FRDist"], t.last["val/FRDiv"]])
            full.append(t)
    assert full, "the first trial is always promoted through every rung"

    # the front: exactly the non-dominated full-budget trials, with every metric
    summary = json.loads((run / PARETO_FILE).read_text())
    vals = {t.trial_id: {m: t.last[f"val/{m}"] for m in METRICS} for t in full}
    expected = {i for i, v in vals.items()
                if not any(_dominates(w, v) for j, w in vals.items() if j != i)}
    assert {p["trial_id"] for p in summary["front"]} == expected
    for p in summary["front"]:
        assert p["epoch"] == EPOCHS and set(p["metrics"]) == set(METRICS)
        assert p["metrics"] == pytest.approx(vals[p["trial_id"]])
    assert {by_params[params_key(t.params)].number for t in full if t.trial_id in expected} == \
        {t.number for t in study.best_trials}  # Optuna's own front agrees
    assert sorted(x["budget"] for x in summary["trials"]) == sorted(
        t.last["epoch"] for t in outcome.trials)
    assert summary["proxy"]["probe"] == "probe/FRDist"
    assert "Pareto front (" in capsys.readouterr().out

    # export: the best trial plus one bundle per Pareto point
    ov_e = overrides(tmp_path, smoke_data, "stage=export", f"run={run}")
    stages.export(compose(ov_e), ov_e)
    bundles = sorted((tmp_path / "export" / "mo-pareto").glob("*.pt"))
    assert {b.stem for b in bundles} == expected
    for b in bundles:
        model = load_bundle(b)
        assert model.name == "regnn"
        assert model.bundle_info["metrics"]["FRDist"] == pytest.approx(vals[b.stem]["FRDist"])
    assert len(load_search(str(run)).trials) == 6


def test_mime_gate_stops_every_trial_worse_than_mime_at_its_first_rung(
        ray_session, smoke_data: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from orchestrator import config as config_mod
    from orchestrator.search_setup import references_on_probe

    ov = overrides(tmp_path, smoke_data, "stage=search", "search=mo", "search.name=gated",
                   "search.gate.max=mime", "search.num_samples=3", "baseline=regnn",
                   "baseline.trainer.epochs=2", "scheduler.grace_period=1")
    mime = references_on_probe(config_mod.to_plain(compose(ov)))["Mime"]["FRDist"]
    outcome = stages.search(compose(ov), ov)
    assert "(the Mime reference on the probe)" in capsys.readouterr().out
    for t in outcome.trials:
        first = [r for r in _progress(Path(t.path)) if r["epoch"] == 1][0]
        if first["probe/FRDist"] > mime:
            assert t.last["epoch"] == 1, f"trial {t.trial_id} worse than Mime was promoted"


def _progress(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()
            if line.strip()]
