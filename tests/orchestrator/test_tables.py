"""Trial table, leaderboard text and best-trial selection (pure functions, no Ray)."""

from __future__ import annotations

import io

import pytest

from orchestrator import leaderboard
from orchestrator.export import _dedupe
from orchestrator.progress import ProgressPrinter, format_table
from orchestrator.results import SearchOutcome, TrialRecord, best_trial, full_metric


def _trial(tid: str, epoch: int, probe: float, val: float | None = None, status="TERMINATED",
           ckpt: object | None = "ckpt") -> TrialRecord:
    last = {"epoch": epoch, "probe/FRDist": probe}
    if val is not None:
        last["val/FRDist"] = val
    return TrialRecord(tid, status, {"baseline.trainer.lr": 1e-4}, last, checkpoint=ckpt)


def _outcome(*trials: TrialRecord) -> SearchOutcome:
    info = {"metric": "probe/FRDist", "mode": "min", "epochs": 3, "name": "s"}
    return SearchOutcome("/runs/s", "s", info, list(trials))


def test_best_trial_ranks_completed_trials_by_full_validation() -> None:
    # b has the best probe but was stopped early; c beats a on the full validation set
    out = _outcome(_trial("a", 3, 50.0, val=60.0), _trial("b", 1, 10.0),
                   _trial("c", 3, 55.0, val=58.0))
    trial, key = best_trial(out)
    assert (trial.trial_id, key) == ("c", "val/FRDist")


def test_best_trial_falls_back_to_the_probe_when_no_trial_finished() -> None:
    trial, key = best_trial(_outcome(_trial("a", 1, 50.0), _trial("b", 2, 40.0)))
    assert (trial.trial_id, key) == ("b", "probe/FRDist")


def test_best_trial_ignores_trials_without_checkpoint_and_fails_clearly() -> None:
    with pytest.raises(ValueError, match="stage=resume"):
        best_trial(_outcome(_trial("a", 3, 1.0, val=1.0, ckpt=None)))


def test_full_metric_and_override_dedupe() -> None:
    assert full_metric("probe/FRCorr") == "val/FRCorr"
    assert _dedupe(["baseline=regnn", "stage=search", "seed=1", "baseline=regnn", "seed=2"]) == \
        ["baseline=regnn", "seed=2"]


def test_progress_table_shows_status_objective_params_and_best() -> None:
    out = io.StringIO()
    p = ProgressPrinter("demo", "probe/FRDist", "min", interval=1e9, stream=out)
    rows = [{"trial_id": "t1", "status": "TERMINATED", "params": {"baseline.model.kl_p": 1e-5},
             "last": {"epoch": 2, "probe/FRDist": 41.5}},
            {"trial_id": "t2", "status": "RUNNING", "params": {"baseline.model.kl_p": 3e-4},
             "last": {"epoch": 1, "probe/FRDist": 44.0}}]
    text = p.update(rows, force=True)
    assert text is not None and "best probe/FRDist 41.5 (trial t1)" in text
    assert "kl_p" in text and "1e-05" in text and "1 running, 1 terminated" in text
    assert p.update(rows) is None  # not due yet
    assert out.getvalue().count("[demo]") == 1


def test_format_table_aligns_columns() -> None:
    lines = format_table(["name", "x"], [["a", 1.23456], ["bbbb", None]]).splitlines()
    assert lines[0].index("x") == lines[2].index("1.235") == lines[3].index("-")


def test_leaderboard_lists_every_metric_models_then_references_and_stars_the_best() -> None:
    from metrics import METRICS

    models = {"transvae": {m: 1.0 for m in METRICS}, "regnn": {m: 2.0 for m in METRICS}}
    refs = {name: {m: 0.5 for m in METRICS} for name in leaderboard.REFERENCES}
    text = leaderboard.render(models, refs, title="board")
    lines = text.splitlines()
    assert lines[0] == "board"
    assert leaderboard.columns(models)[:2] == ["FRCorr", "FRDist"]
    for m in METRICS:
        assert m in lines[1]
    names = [line.split()[0] for line in lines[3:9]]
    assert names == ["transvae", "regnn", "ref:GT", "ref:Random", "ref:Mime", "ref:MeanFr"]
    assert "2*" in lines[4]  # FRCorr: higher is better -> regnn starred
    assert "1*" in lines[3]  # FRDist: lower is better -> transvae starred
