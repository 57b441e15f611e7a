"""Crash the search driver with SIGKILL mid-search, resume it: nothing finished is lost or rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from orchestrator import stages
from orchestrator.config import compose
from orchestrator.tune_driver import JOURNAL_FILE
from tests.orchestrator.conftest import overrides, params_key, run_study

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NUM_SAMPLES, EPOCHS = 3, 2



def _finished_before_kill(run: Path, proc: subprocess.Popen, timeout: float) -> dict:
    """Poll the study the driver writes until a trial is COMPLETE; {params: objective}."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the search exited early with code {proc.returncode}"
        if (run / JOURNAL_FILE).is_file():
            try:
                done = {params_key(t.params): t.value for t in run_study(run).trials
                        if t.state == optuna.trial.TrialState.COMPLETE}
            except KeyError:  # the study record is not written yet
                done = {}
            if done:
                return done
        time.sleep(0.3)
    raise AssertionError(f"no trial completed within {timeout} s")


def test_sigkilled_search_resumes_without_losing_or_rerunning_finished_trials(
        ray_session, smoke_data: str, tmp_path: Path) -> None:
    ov = overrides(tmp_path, smoke_data, "search.name=crash",
                   f"search.num_samples={NUM_SAMPLES}", f"baseline.trainer.epochs={EPOCHS}")
    run = tmp_path / "runs" / "crash"
    log = (tmp_path / "driver.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "stage=search", "resources.num_cpus=2",
         f"hydra.run.dir={tmp_path / 'hydra'}", *ov],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        finished = _finished_before_kill(run, proc, timeout=240)
        os.kill(proc.pid, signal.SIGKILL)  # the driver dies mid-search, without any cleanup
        proc.wait(timeout=30)
    finally:
        try:  # Ray processes the dead driver had started (its own process group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()
    assert proc.returncode == -signal.SIGKILL

    outcome = stages.resume(compose([*ov, "stage=resume", f"run={run}"]))

    assert len(outcome.trials) == NUM_SAMPLES
    assert {t.status for t in outcome.trials} == {"TERMINATED"}
    for params, objective in finished.items():
        # not lost: a Tune trial carries the sampled parameters (plus derived ones)
        (trial,) = [t for t in outcome.trials if set(params) <= set(t.params.items())]
        assert trial.last["probe/FRDist"] == pytest.approx(objective)
        assert trial.last["epoch"] == EPOCHS
        # not retrained: no checkpoint beyond the original run's last epoch
        ckpts = sorted(p.name for p in Path(trial.path).glob("checkpoint_*"))
        assert ckpts[-1] == f"checkpoint_{EPOCHS - 1:06d}"
    # every Tune trial told once: complete at the full budget, pruned when ASHA stopped it
    study = run_study(run).trials
    for t in outcome.trials:
        (st,) = [s for s in study if s.state != optuna.trial.TrialState.FAIL  # orphans
                 and set(s.params.items()) <= set(t.params.items())]
        assert st.state == (optuna.trial.TrialState.COMPLETE if t.last["epoch"] == EPOCHS
                            else optuna.trial.TrialState.PRUNED)
    states = [s.state for s in study]
    assert states.count(optuna.trial.TrialState.COMPLETE) + states.count(
        optuna.trial.TrialState.PRUNED) == NUM_SAMPLES
    assert optuna.trial.TrialState.RUNNING not in states
