"""Config composition: every group option composes, bad overrides say what to change."""

from __future__ import annotations

import dataclasses

import pytest

import react_models
from orchestrator import cli
from orchestrator.config import (
    ConfigError,
    apply_params,
    as_overrides,
    compose,
    group_options,
    groups,
    to_plain,
)


def test_groups_are_the_parts_of_a_run() -> None:
    assert set(groups()) >= {"baseline", "task", "data", "search", "scheduler", "resources",
                             "cluster", "paths", "debug", "experiment"}
    assert group_options("baseline") == react_models.available()


@pytest.mark.parametrize("group", ["baseline", "task", "search", "scheduler", "resources",
                                   "cluster", "debug", "experiment", "size"])
def test_every_group_option_composes_and_resolves(group: str) -> None:
    for option in group_options(group):
        cfg = to_plain(compose([f"{group}={option}"]))
        assert cfg["stage"] == "demo"


def test_defaults_are_local_cpu_loopback_dashboard_and_relative_work_dir() -> None:
    cfg = to_plain(compose())
    assert cfg["cluster"]["address"] is None
    assert cfg["cluster"]["dashboard_host"] == "127.0.0.1"
    assert cfg["paths"]["work_dir"] == "reactune_runs"
    assert cfg["search"]["mode"] == "min" and cfg["search"]["metric"] == "probe/FRDist"


@pytest.mark.parametrize("name", react_models.available())
def test_baseline_model_section_matches_the_model_config_fields(name: str) -> None:
    fields = {f.name for f in dataclasses.fields(react_models.model_class(name).config_cls)}
    for size in ("full", "tiny"):
        model = to_plain(compose([f"baseline={name}", f"size={size}"]))["baseline"]["model"]
        assert set(model) == fields
        react_models.make_config(name, model)


def test_tiny_size_shrinks_the_model_and_task_drives_online() -> None:
    full = to_plain(compose(["baseline=perfrdiff"]))["baseline"]["model"]
    tiny = to_plain(compose(["baseline=perfrdiff", "size=tiny", "task=online"]))
    assert tiny["baseline"]["model"]["latent_dim"] < full["latent_dim"]
    assert tiny["baseline"]["model"]["online"] is True


def test_unknown_group_option_names_allowed_options_and_folder() -> None:
    with pytest.raises(ConfigError) as e:
        compose(["baseline=belfusion"])
    msg = str(e.value)
    assert "perfrdiff, regnn, transvae" in msg and "orchestrator/conf/baseline" in msg


def test_unknown_key_names_allowed_keys_and_file() -> None:
    with pytest.raises(ConfigError) as e:
        compose(["search.num_sample=3"])
    msg = str(e.value)
    assert "'search.num_sample'" in msg and "num_samples" in msg
    assert "orchestrator/conf/search/tpe.yaml" in msg
    with pytest.raises(ConfigError, match="baseline/regnn.yaml"):
        compose(["baseline=regnn", "baseline.model.kl_p=1e-5"])


def test_wrong_value_type_is_rejected_with_the_default() -> None:
    with pytest.raises(ConfigError, match="expected a int like the default 16"):
        compose(["search.num_samples=many"])
    with pytest.raises(ConfigError, match="expected a bool"):
        compose(["task.online=1"])


def test_missing_required_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="data.root is required"):
        to_plain(compose(["data=mars"]))


def test_sampled_params_round_trip_as_hydra_overrides() -> None:
    params = {"baseline.trainer.lr": 3.3e-05, "task.window_size": 8,
              "baseline.model.speaker_frames": False}
    via_cli = to_plain(compose(["task=online", *as_overrides(params)]))
    via_apply = to_plain(apply_params(compose(["task=online"]), params))
    assert via_cli == via_apply
    assert via_apply["baseline"]["model"]["window_size"] == 8  # interpolation follows the task


def test_apply_params_rejects_a_key_the_config_lacks() -> None:
    with pytest.raises(ConfigError, match="baseline.model has no 'latent_dim'"):
        apply_params(compose(), {"baseline.model.latent_dim": 64})


def test_cli_rejects_bad_override_before_starting(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["stage=search", "scheduler=hyperband"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "scheduler=hyperband" in err and "asha, fifo" in err


def test_plain_reactune_runs_the_demo_preset() -> None:
    assert cli._stage_overrides([], "demo", None) == ["experiment=demo"]
    assert cli._stage_overrides(["stage=search"], "search", None) == ["stage=search"]
    cfg = to_plain(compose(cli._stage_overrides([], "demo", None)))
    assert cfg["size"]["name"] == "tiny"


def test_frozen_base_keeps_interpolations_and_makes_paths_absolute(tmp_path, monkeypatch) -> None:
    from orchestrator.config import frozen_base

    monkeypatch.chdir(tmp_path)
    base = frozen_base(compose(["task=online", "search.storage_path=s3://bucket/runs"]))
    assert base["baseline"]["model"]["window_size"] == "${task.window_size}"
    assert base["paths"]["work_dir"] == str(tmp_path / "reactune_runs")
    assert base["data"]["uri"] == str(tmp_path / "reactune_runs" / "data" / "synthetic")
    assert base["search"]["storage_path"] == "s3://bucket/runs"
    moved = to_plain(apply_params(base, {"task.window_size": 4}))
    assert moved["baseline"]["model"]["window_size"] == 4


def test_trial_concurrency_leaves_cpus_for_ray_data() -> None:
    from orchestrator.runtime import trial_concurrency

    cfg = to_plain(compose(["search.max_concurrent=4"]))  # 1 CPU per trial, 1 CPU for data
    assert trial_concurrency(cfg, total_cpus=8) == 4
    assert trial_concurrency(cfg, total_cpus=3) == 2
    with pytest.raises(ConfigError, match="resources.cpu_per_trial"):
        trial_concurrency(cfg, total_cpus=1)
    half = to_plain(compose(["search.max_concurrent=2", "resources.cpu_per_trial=0.5"]))
    assert trial_concurrency(half, total_cpus=2) == 2
