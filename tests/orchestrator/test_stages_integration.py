"""`stage=fit`, `stage=test` and the demo chain on the smoke-size synthetic set."""

from __future__ import annotations

import glob
import json
import math
from pathlib import Path

import pytest

from orchestrator import stages
from orchestrator.config import compose
from react_models import load_bundle
from tests.orchestrator.conftest import overrides
from tests.react_models.conftest import random_batch

pytestmark = pytest.mark.integration


def test_fit_trains_one_config_writes_events_and_a_bundle_that_test_scores(
        ray_session, smoke_data: str, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    ov = overrides(tmp_path, smoke_data, "stage=fit", "baseline=regnn",
                   "baseline.trainer.epochs=2", f"bundle={tmp_path / 'regnn.pt'}")
    out = stages.fit(compose(ov), ov)
    assert out["result"]["epoch"] == 2 and math.isfinite(out["result"]["val/FRDist"])
    (events,) = glob.glob(str(tmp_path / "fit" / "regnn-offline" / "tensorboard" / "*tfevents*"))
    acc = event_accumulator.EventAccumulator(events)
    acc.Reload()
    assert [e.step for e in acc.Scalars("probe/FRDist")] == [1, 2]

    model = load_bundle(out["bundle"])
    assert model.name == "regnn" and model.bundle_info["extra"]["epoch"] == 2
    assert model.sample(random_batch(b=1, t=32, targets=False), 2).attr.shape == (1, 2, 32, 25)

    scores = stages.test(compose(overrides(tmp_path, smoke_data, "stage=test",
                                           f"bundle={out['bundle']}")))
    assert {"FRCorr", "FRDist", "FRDiv", "FRSyn"} <= set(scores)


def test_demo_searches_every_baseline_exports_and_prints_the_leaderboard(
        ray_session, smoke_data: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from metrics import METRICS

    ov = ["experiment=demo", *overrides(tmp_path, smoke_data, "search.num_samples=1")]
    result = stages.demo(compose(ov), ov)
    board = json.loads(Path(result["leaderboard"]).read_text())
    assert list(board["models"]) == ["transvae", "perfrdiff", "regnn"]
    assert list(board["references"]) == ["GT", "Random", "Mime", "MeanFr"]
    for row in [*board["models"].values(), *board["references"].values()]:
        assert set(row) == set(METRICS)
    assert board["references"]["GT"]["FRDist"] == pytest.approx(0.0, abs=1e-6)
    for name, path in result["bundles"].items():
        assert load_bundle(path).name == name
    text = capsys.readouterr().out
    assert "REACT leaderboard" in text and "ref:MeanFr" in text and "FRDist (-)" in text

    # stage=render draws a demo bundle's reactions; stage=report turns the demo into HTML.
    bundle = result["bundles"]["regnn"]
    ov_r = [*overrides(tmp_path, smoke_data, "stage=render", f"bundle={bundle}"),
            "render.speakers=[0]", "render.num_samples=2", "render.max_frames=20",
            "render.image_size=64", "render.progress=false",
            f"render.out_dir={tmp_path / 'renders'}"]
    summary = stages.render(compose(ov_r), ov_r)
    assert summary["model"] == "regnn" and summary["num_samples"] == 2
    assert (tmp_path / "renders" / "render_summary.json").is_file()
    for rel in summary["items"][0]["files"].values():
        assert (tmp_path / "renders" / rel).stat().st_size > 0

    page = stages.report(compose(overrides(tmp_path, smoke_data, "stage=report",
                                           f"run={Path(result['leaderboard']).parent}")))
    html = Path(page).read_text()
    assert "Task: offline" in html and "perfrdiff" in html and "MeanFr" in html

    with pytest.raises(FileNotFoundError, match="no leaderboard.json"):
        stages.report(compose(overrides(tmp_path, smoke_data, "stage=report",
                                        f"run={tmp_path / 'nowhere'}")))
    with pytest.raises(Exception, match="stage=render needs bundle"):
        stages.render(compose(overrides(tmp_path, smoke_data, "stage=render")))
