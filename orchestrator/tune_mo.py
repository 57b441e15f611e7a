"""Ray Tune adapters for multi-objective, fidelity-aware search.

The decisions live in `orchestrator.multiobjective` (pure, tested on metric streams); these
classes only plug them into Ray Tune. Like `tune_driver`, this module is an adapter over Ray Tune's
API (which moved several times): nothing else subclasses Tune classes.

* `FidelityAwareOptunaSearch`: Ray's `OptunaSearch` tells Optuna a trial stopped early by a
  scheduler as COMPLETE with its partial-training values, so an under-trained generator can land
  on the Pareto front. Here a trial whose last result did not reach the full budget is told as
  PRUNED; every trial records the budget it reached (user attribute ``budget``).
* `MOASHAScheduler`: asynchronous successive halving promoting by non-dominated sorting with a
  minimum-appropriateness gate (`MOASHARule`).
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from optuna.trial import TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from orchestrator.multiobjective import STOP, MOASHARule

log = logging.getLogger(__name__)


class FidelityAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that tells under-budget trials to Optuna as PRUNED, never COMPLETE.

    Args:
        budget_key: the budget counter in results (e.g. ``"epoch"``).
        full_budget: the value of ``budget_key`` at the end of a full training run.
        **kwargs: passed to `ray.tune.search.optuna.OptunaSearch`.
    """

    def __init__(self, *args: Any, budget_key: str = "epoch", full_budget: float,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget_key = budget_key
        self.full_budget = float(full_budget)
        self.pruned_trials: set[str] = set()

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        ot_trial = self._ot_trials[trial_id]
        budget = float(result.get(self.budget_key, 0.0)) if result else 0.0
        ot_trial.set_user_attr("budget", budget)
        ot_trial.set_user_attr("full_budget", self.full_budget)
        if error or budget >= self.full_budget:
            return super().on_trial_complete(trial_id, result, error)
        self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        self._completed_trials.add(trial_id)
        self.pruned_trials.add(trial_id)
        log.info("trial %s stopped at %s=%s < %s: told to Optuna as pruned", trial_id,
                 self.budget_key, budget, self.full_budget)
        return None


class MOASHAScheduler(FIFOScheduler):
    """Ray Tune scheduler running `MOASHARule` (multi-objective ASHA with a gate)."""

    def __init__(self, rule: MOASHARule) -> None:
        super().__init__()
        self.rule = rule

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # objectives come from the rule, not from TuneConfig(metric, mode)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.rule.on_result(trial.trial_id, result) == STOP:
            log.info("MO-ASHA stops %s: %s", trial.trial_id, self.rule.stopped[trial.trial_id])
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return (f"Using MO-ASHA: rungs={self.rule.rungs}, stopped={len(self.rule.stopped)}, "
                f"gate={self.rule.gate}")

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.rule.state_dict(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.rule.load_state_dict(pickle.load(f))
