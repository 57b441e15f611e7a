"""Shared fixtures for the orchestrator's integration tests: one tiny prepared dataset."""

from __future__ import annotations

from pathlib import Path

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
