"""Shared fixtures for the orchestrator's integration tests: one tiny prepared dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SMOKE = ["debug=smoke", "cluster.dashboard=false", "seed=0"]


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Shards of the debug=smoke synthetic set on local disk (prepared once per module)."""
    from orchestrator import stages
    from orchestrator.config import compose

    root = tmp_path_factory.mktemp("smoke-data")
    uri = str(root / "shards")
    stages.prepare(compose([*SMOKE, f"paths.work_dir={root}", f"data.uri={uri}"]))
    assert (Path(uri) / "manifest.json").is_file()
    return uri


def overrides(work: Path, data_uri: str, *extra: str) -> list[str]:
    """Smoke-size overrides writing under ``work`` and reading ``data_uri``."""
    return [*SMOKE, f"paths.work_dir={work}", f"data.uri={data_uri}", *extra]


def run_study(run: Path) -> Any:
    """The Optuna study a search keeps in its run folder's journal (read while it runs, too)."""
    import optuna

    from orchestrator.tune_driver import JOURNAL_FILE

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run / JOURNAL_FILE)))
    return optuna.load_study(study_name=run.name, storage=storage)


def params_key(params: dict) -> tuple:
    """Sampled parameters as a hashable key (matches a Tune trial to its study trial)."""
    return tuple(sorted(params.items()))
