"""Ray Tune adapters for multi-objective, fidelity-aware search.

The decisions live in `orchestrator.multiobjective` (pure, tested on metric streams); these
classes only plug them into Ray Tune. Like `tune_driver`, this module is an adapter over Ray Tune's
API (which moved several times): nothing else subclasses Tune classes.

* `FidelityAwareOptunaSearch`: Ray's `OptunaSearch` tells Optuna a trial stopped early by a
  scheduler as COMPLETE with its partial-training values, so an under-trained generator can land
  on the Pareto front. Here a trial whose last result did not reach the full budget is told as
  PRUNED; every trial records the budget it reached (user attribute ``budget``).
* `MOASHAScheduler`: asynchronous successive halving promoting by non-dominated sorting with a
  minimum-appropriateness gate (`MOASHARule`), and the proxy check: once enough trials trained
  the full budget, the Spearman correlation between the probe metric it prunes on and the full
  validation metric is computed; below the threshold, early stopping is switched off.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Mapping
from typing import Any

from optuna.trial import TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from orchestrator.multiobjective import STOP, MOASHARule, proxy_check

log = logging.getLogger(__name__)


class FidelityAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that tells under-budget trials to Optuna as PRUNED, never COMPLETE.

    Args:
        budget_key: the budget counter in results (e.g. ``"epoch"``).
        full_budget: the value of ``budget_key`` at the end of a full training run.
        final_metrics: optional {searched metric: final metric}: a full-budget trial is told to
            Optuna with the final metric's value (e.g. ``probe/FRDist`` -> ``val/FRDist``, the
            end-of-training full validation) when its last result has it. Tune requires the
            searched metrics in every result, so the per-epoch names are the searched ones.
        **kwargs: passed to `ray.tune.search.optuna.OptunaSearch`.
    """

    def __init__(self, *args: Any, budget_key: str = "epoch", full_budget: float,
                 final_metrics: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget_key = budget_key
        self.full_budget = float(full_budget)
        self.final_metrics = dict(final_metrics or {})
        self.pruned_trials: set[str] = set()

    def _told_already(self, trial_id: str) -> bool:
        """True when the study holds this trial as finished but this searcher does not know it.

        That happens after a driver dies between telling Optuna (the journal is written at
        once) and Tune's next experiment-state snapshot: the resumed run restores the searcher
        from the older snapshot and restarts the trial from its last checkpoint, which reports
        its final result again. Reporting or telling it twice would fail the search
        (``UpdateFinishedTrialError``); the first telling stands.
        """
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return False
        ot_trial = self._ot_trials[trial_id]
        # Trial._trial_id: the storage key (Optuna exposes only the per-study ``number``)
        if not self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished():
            return False
        self._completed_trials.add(trial_id)
        log.info("trial %s (Optuna trial %d) was told before the driver restarted; its "
                 "repeated results are not told again", trial_id, ot_trial.number)
        return True

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._told_already(trial_id):
            return None
        return super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if self._told_already(trial_id):
            return None
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        ot_trial = self._ot_trials[trial_id]
        budget = float(result.get(self.budget_key, 0.0)) if result else 0.0
        ot_trial.set_user_attr("budget", budget)
        ot_trial.set_user_attr("full_budget", self.full_budget)
        if error or budget >= self.full_budget:
            if result and not error:
                result = {**result, **{k: result[v] for k, v in self.final_metrics.items()
                                       if _finite(result.get(v))}}
            return super().on_trial_complete(trial_id, result, error)
        self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        self._completed_trials.add(trial_id)
        self.pruned_trials.add(trial_id)
        log.info("trial %s stopped at %s=%s < %s: told to Optuna as pruned", trial_id,
                 self.budget_key, budget, self.full_budget)
        return None


class MOASHAScheduler(FIFOScheduler):
    """Ray Tune scheduler running `MOASHARule` (multi-objective ASHA with a gate).

    Args:
        rule: the promotion rule (objectives on the per-epoch probe metrics).
        proxy: optional (probe key, full key): after each full-budget trial the Spearman rank
            correlation between the two over finished trials is computed (`proxy_check`).
        proxy_threshold: below this rho early stopping is switched off (with a warning); every
            later trial trains its full budget.
        proxy_min_trials: finished trials needed before the check can switch anything off.
    """

    def __init__(self, rule: MOASHARule, *, proxy: tuple[str, str] | None = None,
                 proxy_threshold: float = 0.0, proxy_min_trials: int = 4) -> None:
        super().__init__()
        self.rule = rule
        self.proxy = proxy
        self.proxy_threshold = float(proxy_threshold)
        self.proxy_min_trials = int(proxy_min_trials)
        self.finished: list[dict[str, float]] = []
        self.proxy_rho = math.nan
        self.early_stopping = True

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # objectives come from the rule, not from TuneConfig(metric, mode)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if not self.early_stopping:
            return TrialScheduler.CONTINUE
        if self.rule.on_result(trial.trial_id, result) == STOP:
            log.info("MO-ASHA stops %s: %s", trial.trial_id, self.rule.stopped[trial.trial_id])
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.record_finished(result)

    def record_finished(self, result: Mapping[str, Any] | None) -> None:
        """Add a finished trial's last result to the proxy check (full-budget trials only)."""
        if self.proxy is None or not result:
            return
        if float(result.get(self.rule.time_attr, 0)) < self.rule.max_t:
            return
        probe, full = self.proxy
        if not (_finite(result.get(probe)) and _finite(result.get(full))):
            return
        self.finished.append({probe: float(result[probe]), full: float(result[full])})
        rho, ok = proxy_check(self.finished, probe, full, self.proxy_threshold)
        self.proxy_rho = rho
        if (not ok and self.early_stopping and len(self.finished) >= self.proxy_min_trials):
            self.early_stopping = False
            log.warning(
                "proxy check: Spearman rho(%s, %s) = %.3f over %d finished trials is below "
                "search.proxy_min_rho=%.2f; the probe does not rank trials like the full "
                "validation, so early stopping is switched OFF for the rest of this search "
                "(raise eval.probe_items or eval.probe_frames to make the probe faithful)",
                probe, full, rho, len(self.finished), self.proxy_threshold)

    def debug_string(self) -> str:
        return (f"Using MO-ASHA: rungs={self.rule.rungs}, stopped={len(self.rule.stopped)}, "
                f"gate={self.rule.gate}, early stopping "
                f"{'on' if self.early_stopping else 'off (proxy check)'}")

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"rule": self.rule.state_dict(), "finished": self.finished,
                         "early_stopping": self.early_stopping}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.rule.load_state_dict(state["rule"])
        self.finished = list(state["finished"])
        self.early_stopping = bool(state["early_stopping"])


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
