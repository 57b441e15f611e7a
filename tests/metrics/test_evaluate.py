"""evaluate: one validated call equals the individual metrics; errors; purity; CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics
from metrics import DEFAULT_METRICS, evaluate

from .conftest import reactions


def _inputs(rng, n=3, k=3, g=2, t=60):
    return (reactions(rng, n, k, frames=t), [reactions(rng, g, frames=t) for _ in range(n)],
            reactions(rng, n, frames=t))


def test_evaluate_equals_the_individual_metrics(rng):
    pred, app, spk = _inputs(rng)
    got = evaluate(pred, app, spk)
    assert list(got) == list(DEFAULT_METRICS)
    assert all(type(v) is float for v in got.values())
    expected = {
        "FRCorr": metrics.frcorr(pred, app), "FRDist": metrics.frdist(pred, app),
        "FRDiv": metrics.frdiv(pred), "FRVar": metrics.frvar(pred),
        "FRDvs": metrics.frdvs(pred), "FRSyn": metrics.frsyn(pred, spk),
        "FRRea_features": metrics.frrea_features(pred, app),
    }
    assert got == pytest.approx(expected, rel=1e-12)


def test_evaluate_a_subset_in_the_order_asked_with_variable_lengths(rng):
    pred, _, _ = _inputs(rng)
    app = [reactions(rng, 2, frames=t) for t in (50, 71, 60)]  # FRDist takes any length
    got = evaluate(pred, app, metrics=["FRDist", "FRDiv"])
    assert list(got) == ["FRDist", "FRDiv"]


def test_default_metrics_are_those_the_inputs_allow(rng):
    pred = reactions(rng, 1, 1, frames=30)  # N = K = 1, T < 51: no FRDvs, FRDiv, FRSyn
    app = [reactions(rng, 2, frames=40)]  # other length: no FRCorr
    assert list(evaluate(pred, app)) == ["FRDist", "FRVar", "FRRea_features"]
    with pytest.raises(ValueError, match=r"T>=51"):
        evaluate(pred, app, reactions(rng, 1, frames=30), metrics=["FRSyn"])


def test_tensors_and_arrays_give_the_same_scores(rng):
    pred, app, spk = _inputs(rng)
    as_tensors = evaluate(torch.from_numpy(pred), [torch.from_numpy(a) for a in app],
                          torch.from_numpy(spk).double())
    assert as_tensors == pytest.approx(evaluate(pred, app, spk), rel=1e-12)


def test_evaluate_leaves_inputs_and_global_state_alone(rng):
    pred, app, spk = _inputs(rng)
    copies = (pred.copy(), [a.copy() for a in app], spk.copy())
    state = (np.geterr(), torch.get_default_dtype(), torch.get_num_threads())
    evaluate(pred, app, spk, nan_policy="challenge")
    assert np.array_equal(pred, copies[0]) and np.array_equal(spk, copies[2])
    assert all(np.array_equal(a, b) for a, b in zip(app, copies[1], strict=True))
    assert (np.geterr(), torch.get_default_dtype(), torch.get_num_threads()) == state


@pytest.mark.parametrize("bad, message", [
    ("nan", r"pred: expected finite values, received NaN/inf at index \(1, 2, 5, 20\)"),
    ("3d", r"pred: expected shape \(N, K, T, 25\), received \(3, 60, 25\); add the K axis"),
    ("dims", r"pred: expected shape \(N, K, T, 25\), received \(3, 3, 60, 24\)"),
    ("k1", r"pred: expected shape \(N, K>=2, T, 25\), received \(3, 1, 60, 25\)"),
    ("metric", r"metrics: expected names from"),
    ("speaker", r"speaker: expected an \(N, T, 25\) array for FRSyn, received None"),
    ("align", r"appropriate\[2\]: expected shape \(G, 60, 25\).*metrics.align"),
    ("list", r"appropriate: expected a sequence of N arrays"),
])
def test_evaluate_errors_name_argument_expected_and_received(rng, bad, message):
    pred, app, spk = _inputs(rng)
    kwargs = {}
    if bad == "nan":
        pred[1, 2, 5, 20] = np.nan
    elif bad == "3d":
        pred = pred[:, 0]
    elif bad == "dims":
        pred = pred[..., :24]
    elif bad == "k1":
        pred, kwargs["metrics"] = pred[:, :1], ["FRDiv"]
    elif bad == "metric":
        kwargs["metrics"] = ["FID"]
    elif bad == "speaker":
        spk, kwargs["metrics"] = None, ["FRSyn"]
    elif bad == "align":
        app[2], kwargs["metrics"] = app[2][:, :40], ["FRCorr", "FRDist"]
    elif bad == "list":
        app = 3
    with pytest.raises((ValueError, TypeError), match=message):
        evaluate(pred, app, spk, **kwargs)


def test_cuda_device_is_refused_without_cuda(rng):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    pred, app, spk = _inputs(rng)
    with pytest.raises(ValueError, match="CUDA is not available"):
        evaluate(pred, app, spk, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_evaluate_equals_cpu(rng):
    pred, app, spk = _inputs(rng, n=4, k=3, g=3, t=80)
    cpu = evaluate(pred, app, spk)
    gpu = evaluate(pred, app, spk, device="cuda")
    assert gpu == pytest.approx(cpu, rel=1e-5)
    on_device = evaluate(torch.from_numpy(pred).cuda(), [torch.from_numpy(a).cuda() for a in app],
                         torch.from_numpy(spk).cuda())
    assert on_device == pytest.approx(cpu, rel=1e-5)
