"""Model bundles: round trip for every registered model, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from react_data import schema
from react_models import build, load_bundle, save_bundle
from react_models.bundle import BUNDLE_FORMAT
from tests.react_models.conftest import random_batch
from tests.react_models.test_contract import CASES, small_config


@pytest.mark.parametrize("name,online", CASES)
def test_round_trip_rebuilds_a_model_that_samples_identically(tmp_path, name, online):
    torch.manual_seed(0)
    model = build(name, small_config(name, online))
    model.train()
    model(random_batch(t=32))["total"].backward()  # data-dependent init (e.g. ActNorm) runs
    model.eval()
    path = save_bundle(tmp_path / "sub" / f"{name}.pt", model,
                       metrics={"FRDist": np.float32(81.5), "FRCorr": 0.25},
                       extra={"overrides": ["model.kl_p=1e-5"], "seed": np.int64(3)})
    assert path.is_file() and not list(path.parent.glob("*.tmp"))

    loaded = load_bundle(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    info = loaded.bundle_info
    assert info["model"] == name and info["schema_version"] == schema.SCHEMA_VERSION
    assert info["metrics"] == {"FRDist": 81.5, "FRCorr": 0.25}
    assert info["extra"] == {"overrides": ["model.kl_p=1e-5"], "seed": 3}
    assert "state_dict" not in info and info["reactune_version"]

    batch = random_batch(t=32, targets=False)
    torch.manual_seed(4)
    a = model.sample(batch, 2)
    torch.manual_seed(4)
    b = loaded.sample(batch, 2)
    assert torch.equal(a.attr, b.attr) and torch.equal(a.coef, b.coef)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bundle(tmp_path / "nope.pt")


def test_foreign_files_are_rejected(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable model bundle"):
        load_bundle(garbage)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="not a reactune model bundle"):
        load_bundle(plain)


def _tamper(path, **changes):
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)


@pytest.fixture
def bundle_path(tmp_path):
    return save_bundle(tmp_path / "m.pt", build("transvae", {"feature_dim": 16, "n_heads": 2}))


def test_schema_version_mismatch_is_reported(bundle_path):
    _tamper(bundle_path, schema_version=schema.SCHEMA_VERSION + 1)
    with pytest.raises(ValueError, match="schema version"):
        load_bundle(bundle_path)


def test_unknown_model_is_reported(bundle_path):
    _tamper(bundle_path, model="nosuchmodel")
    with pytest.raises(ValueError, match="nosuchmodel.*not registered"):
        load_bundle(bundle_path)


def test_weights_that_do_not_fit_the_config_are_reported(bundle_path):
    payload = torch.load(bundle_path, weights_only=True)
    _tamper(bundle_path, config={**payload["config"], "feature_dim": 32})
    with pytest.raises(ValueError, match="weights do not fit"):
        load_bundle(bundle_path)


def test_bundle_holds_only_plain_values(bundle_path):
    payload = torch.load(bundle_path, weights_only=True)
    assert payload["format"] == BUNDLE_FORMAT
    assert set(payload) >= {"model", "config", "state_dict", "schema_version", "metrics", "extra"}


def test_non_plain_provenance_is_refused(tmp_path):
    model = build("transvae", {"feature_dim": 16, "n_heads": 2})
    with pytest.raises(TypeError, match="extra\\['obj'\\]"):
        save_bundle(tmp_path / "m.pt", model, extra={"obj": object()})
    with pytest.raises(ValueError, match="finite"):
        save_bundle(tmp_path / "m.pt", model, metrics={"FRDist": float("nan")})

