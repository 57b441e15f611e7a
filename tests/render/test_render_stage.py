"""stage=render end to end on a tiny synthetic dataset and an (untrained) exported bundle."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from orchestrator.render import count_frames
from orchestrator.render.fid import FRREA_FEAT_LABEL
from orchestrator.render_stage import RenderOptions, render, render_from_config, run_render_job

FRAMES = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from react_data.prepare import prepare
    from react_models import build, save_bundle

    root = tmp_path_factory.mktemp("render_data")
    prepare(str(root / "shards"), work_dir=root / "work", progress=False,
            synthetic_kwargs={"sessions": 3, "clips_per_session": 2, "frames": 40,
                              "video": True})
    torch.manual_seed(0)
    bundle = save_bundle(root / "export" / "transvae.pt", build("transvae", {}))
    return {"uri": str(root / "shards"), "mars": str(root / "work" / "mars"), "bundle": bundle}


def options(**kw) -> RenderOptions:
    base = {"speakers": (1,), "num_samples": 2, "max_frames": FRAMES, "image_size": 64,
            "progress": False}
    return RenderOptions(**{**base, **kw})


def test_render_writes_views_videos_and_a_summary(dataset, tmp_path):
    out = tmp_path / "renders"
    s = render(dataset["bundle"], dataset["uri"], options(video_root=dataset["mars"]),
               out_dir=out)
    assert s == json.loads((out / "render_summary.json").read_text())
    assert s["model"] == "transvae" and s["face_model"] == "procedural"
    assert s["backend"] == "torch" and s["denormalized"] and s["frames"] == FRAMES
    (item,) = s["items"]
    assert item["index"] == 1 and item["listener_clip"].startswith("val/listener/")
    files = {k: out / v for k, v in item["files"].items()}
    assert set(files) == {"attributes_png", "attributes_mp4", "faces_mp4", "faces_png"}
    for k in ("attributes_mp4", "faces_mp4"):
        assert count_frames(files[k]) == FRAMES
    from PIL import Image

    faces = np.asarray(Image.open(files["faces_png"]))
    # 5 tiles: speaker video, speaker, real listener, 2 generated (64 px each, one row)
    assert faces.shape[1] == 5 * 64
    tiles = [faces[22:, i * 64:(i + 1) * 64].astype(float) for i in range(5)]
    assert all(t.std() > 5 for t in tiles)  # none blank
    real = s["realism"]["FRRea_features"]
    assert real["label"] == FRREA_FEAT_LABEL and math.isfinite(real["value"])
    assert "FRRea" not in s["realism"]  # no Inception extractor given


def test_render_selects_by_key_and_checks_inputs(dataset, tmp_path):
    from react_data.evalset import load_eval_set

    keys = load_eval_set(dataset["uri"], "val").keys
    s = render(dataset["bundle"], dataset["uri"], options(speakers=(keys[2],), num_samples=1,
                                                          max_frames=3), out_dir=tmp_path)
    assert s["items"][0]["key"] == keys[2] and s["frames"] == 3
    with pytest.raises(ValueError, match="out of range"):
        render(dataset["bundle"], dataset["uri"], options(speakers=(99,)), out_dir=tmp_path)
    with pytest.raises(ValueError, match="matches 0 dyad keys"):
        render(dataset["bundle"], dataset["uri"], options(speakers=("nope",)), out_dir=tmp_path)
    with pytest.raises(ValueError, match="also needs render.pirender"):
        render(dataset["bundle"], dataset["uri"], options(inception="x.pt2"), out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="render.faceverse"):
        render(dataset["bundle"], dataset["uri"], options(faceverse=str(tmp_path / "fv.npy")),
               out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="render.pirender"):
        render(dataset["bundle"], dataset["uri"], options(pirender=str(tmp_path / "p.pth")),
               out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown render option"):
        RenderOptions.from_mapping({"speakerz": [0]})
    with pytest.raises(ValueError, match="needs bundle="):
        render_from_config({"bundle": None, "data": {"uri": dataset["uri"]}})


@pytest.mark.slow
def test_render_with_pirender_and_fid_frames(dataset, tmp_path):
    from orchestrator.render.pirender import FaceGenerator

    torch.manual_seed(0)
    ckpt = tmp_path / "cur_model_fold.pth"
    torch.save({"state_dict": FaceGenerator().state_dict()}, ckpt)
    s = render(dataset["bundle"], dataset["uri"],
               options(pirender=str(ckpt), video_root=dataset["mars"], fid_frames=True,
                       num_samples=1, max_frames=31), out_dir=tmp_path / "r")
    item = s["items"][0]
    assert s["pirender"] and count_frames(tmp_path / "r" / item["files"]["pirender_mp4"]) == 31
    assert len(list((tmp_path / "r" / "fid" / "real").glob("*.png"))) == 2  # frames 0 and 30
    assert len(list((tmp_path / "r" / "fid" / "fake").glob("*.png"))) == 2


@pytest.mark.integration
def test_render_runs_as_a_ray_task(dataset, tmp_path, ray_session):
    s = run_render_job(dataset["bundle"], dataset["uri"], options(num_samples=1, max_frames=4),
                       out_dir=tmp_path / "ray")
    assert (tmp_path / "ray" / "render_summary.json").is_file()
    assert count_frames(tmp_path / "ray" / s["items"][0]["files"]["faces_mp4"]) == 4
