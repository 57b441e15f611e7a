"""A real search on local Ray: S3 shards and checkpoints, retries, TensorBoard, export."""

from __future__ import annotations

import glob
import math
from pathlib import Path

import optuna
import pyarrow.fs as pafs
import pytest
import torch

from orchestrator import stages
from orchestrator.config import compose
from orchestrator.tune_driver import journal_path, load_search
from react_models import load_bundle
from tests.orchestrator.conftest import SMOKE, overrides
from tests.react_models.conftest import random_batch

pytestmark = pytest.mark.integration


def _scalars(event_file: str, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(event_file)
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_search_streams_s3_shards_checkpoints_to_s3_and_exports_a_sampling_bundle(
        ray_session, s3_server, s3_uri, tmp_path: Path) -> None:
    ov = [*SMOKE, f"paths.work_dir={tmp_path}", f"data.uri={s3_uri}/data",
          f"data.endpoint_url={s3_server.endpoint}", f"search.storage_path={s3_uri}/runs",
          "search.name=s3search", "search.num_samples=2", "baseline.trainer.epochs=2",
          "stage=search"]
    cfg = compose(ov)
    stages.prepare(cfg)
    outcome = stages.search(cfg, ov)
    assert outcome.run_dir == f"{s3_uri}/runs/s3search"
    assert [t.status for t in outcome.trials] == ["TERMINATED", "TERMINATED"]
    for t in outcome.trials:
        assert t.last["epoch"] == 2 and math.isfinite(t.last["probe/FRDist"])
        assert {"val/FRCorr", "val/FRDist", "val/FRDiv", "val/FRSyn"} <= set(t.last)

    # every epoch's checkpoint and the TensorBoard events went to the S3 server
    from react_data.storage import filesystem

    fs, path = filesystem(outcome.run_dir, endpoint_url=s3_server.endpoint)
    files = [i.path for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))]
    for t in outcome.trials:
        assert f"{path}/trial_{t.trial_id}/checkpoint_000001/trial_state.pt" in files
    events = [f for f in files if "events.out.tfevents" in f]
    assert len(events) == 2
    local = tmp_path / "events"
    local.mkdir()
    copy = local / Path(events[0]).name  # the reader wants "tfevents" in the file name
    pafs.copy_files(events[0], str(copy), source_filesystem=fs)
    assert [s for s, _ in _scalars(str(copy), "ray/tune/probe/FRDist")] == [1, 2]

    # the Optuna study is persisted locally (S3 runs keep the journal under paths.work_dir)
    journal = journal_path({"paths": {"work_dir": str(tmp_path)}}, outcome.run_dir)
    study = optuna.load_study(study_name="s3search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 2

    # resuming a finished S3 search restores it from the bucket and reruns nothing
    resumed = stages.resume(compose([*ov[:-1], "stage=resume", f"run={outcome.run_dir}"]))
    assert {t.trial_id: t.last["epoch"] for t in resumed.trials} == \
        {t.trial_id: t.last["epoch"] for t in outcome.trials}

    bundle = stages.export(compose([*ov[:-1], "stage=export", f"run={outcome.run_dir}"]))
    model = load_bundle(bundle)
    info = model.bundle_info
    assert info["extra"]["ranked_by"] == "val/FRDist" and "FRDist" in info["metrics"]
    assert "baseline=transvae" in info["extra"]["overrides"]
    out = model.sample(random_batch(b=2, t=40, targets=False, seed=3), num_samples=3)
    assert tuple(out.attr.shape) == (2, 3, 40, 25) and torch.isfinite(out.attr).all()


def test_trial_that_raises_once_is_retried_from_its_checkpoint(
        ray_session, smoke_data: str, tmp_path: Path) -> None:
    ov = overrides(tmp_path, smoke_data, "stage=search", "search.name=retry",
                   "search.num_samples=1", "baseline.trainer.epochs=2", "search.max_failures=1",
                   "faults.fail_after_epoch=1")
    outcome = stages.search(compose(ov), ov)
    (trial,) = outcome.trials
    assert trial.status == "TERMINATED" and trial.num_failures == 1
    # resumed from the epoch-1 checkpoint: epoch 1 is reported once, not retrained
    assert trial.last["epoch"] == 2 and trial.last["iterations_since_restore"] == 1
    import pandas as pd

    assert pd.read_csv(Path(trial.path) / "progress.csv")["epoch"].tolist() == [1, 2]
    # TensorBoard's own reader: one event file per (re)start, each epoch logged once
    steps = [s for f in sorted(glob.glob(str(Path(trial.path) / "events.out.tfevents*")))
             for s, _ in _scalars(f, "ray/tune/probe/FRDist")]
    assert sorted(steps) == [1, 2]
    again = load_search(outcome.run_dir)
    assert again.trials[0].last["val/FRDist"] == trial.last["val/FRDist"]
