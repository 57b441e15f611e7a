"""REGNN specifics (the shared contract lives in test_contract.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from react_data import schema
from react_models import build
from react_models._regnn_sampling import attrs_to_metric, bounded_noise, project_simplex
from react_models.regnn import REGNN, Config, _node_weights, _to_windows
from react_models.regnn_graph import (
    ActNorm,
    EdgeLayer,
    topk_mask,
)
from tests.react_models.conftest import random_batch

W = 8  # window_size in these tests
SMALL = {"feature_dim": 32, "num_heads": 2, "fusion_layers": 1, "window_size": W,
         "node_dim": 16, "visual_dim": 32, "percept_dim": 16, "edge_channels": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matmuls on a shared 2-core machine: a second OpenMP thread only adds contention
    # (measured 40x slower per step under load). Restored after each test.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make(**kw) -> REGNN:
    torch.manual_seed(0)
    return build("regnn", {**SMALL, **kw})


def initialised(model: REGNN, batch=None) -> REGNN:
    """One training-mode forward (ActNorm data init), then eval mode."""
    model.train()(batch if batch is not None else random_batch(t=4 * W, seed=9))
    return model.eval()


@pytest.mark.parametrize("kw,match", [
    ({"feature_dim": 30, "num_heads": 4}, "multiple of num_heads"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": 26}, "top_k"),
    ({"lipschitz": 1.0}, "lipschitz"),
    ({"noise_threshold": -0.1}, "noise_threshold"),
    ({"window_size": 0}, "window_size"),
    ({"num_neighbors": 0}, "num_neighbors"),
])
def test_config_rejects_inconsistent_values(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


def test_forward_without_targets_and_wrong_audio_width_raise_clear_errors():
    model = make()
    with pytest.raises(ValueError, match="listener_attr"):
        model(random_batch(targets=False))
    b = random_batch()
    with pytest.raises(ValueError, match="audio_dim"):
        model(replace(b, speaker_audio=torch.randn(b.batch_size, b.num_frames, 768)))


@pytest.mark.parametrize("online", [False, True])
def test_losses_and_sample_shapes_when_the_clip_is_not_a_multiple_of_the_window(online):
    model = make(online=online)
    t = 3 * W + 5
    losses = model.train()(random_batch(b=3, t=t))
    assert set(losses) == {"latent", "mid", "coef", "total"}
    torch.testing.assert_close(losses["total"], losses["latent"] + losses["mid"] + losses["coef"])
    s = model.eval().sample(random_batch(b=3, t=t, targets=False), num_samples=4)
    assert s.attr.shape == (3, 4, t, schema.ATTR_DIM)
    assert s.coef.shape == (3, 4, t, schema.COEF_DIM)
    au = s.attr[..., schema.AU]
    assert torch.all((au == 0) | (au == 1)) and s.attr[..., schema.VA].abs().max() <= 1
    torch.testing.assert_close(s.attr[..., schema.EXPR].sum(-1), torch.ones(3, 4, t))


def _motor_inputs(model: REGNN, n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    b = random_batch(b=2, t=3 * W, seed=seed)
    attr, coef, audio, valid = model._windows(b)
    _, _, mixes = model.encode(attr, coef, audio, valid)
    x = torch.randn(mixes[0].shape[0], schema.ATTR_DIM, W, generator=g) * 2
    return x, mixes


@torch.no_grad()
def test_motor_inverse_recovers_the_input():
    model = initialised(make(num_layers=3))
    assert all(bool(layer.norm.initialized) for layer in model.motor.layers)
    assert any(layer.norm.log_scale.abs().max() > 0.1 for layer in model.motor.layers)
    x, mixes = _motor_inputs(model)
    z = model.motor(x, mixes)
    assert (z - x).abs().max() > 0.1  # the map is far from the identity
    torch.testing.assert_close(model.motor.inverse(z, mixes), x, atol=1e-4, rtol=0)


@torch.no_grad()
def test_actnorm_pools_statistics_over_the_first_batches_then_freezes():
    g = torch.Generator().manual_seed(0)
    v, w = 3, 5
    # three batches with different per-node means/scales; node 2 is constant in the first
    xs = [torch.randn(4, v, w, generator=g) * torch.tensor([1.0, 0.2, s])[:, None] + i
          for i, s in enumerate((0.0, 2.0, 1.0))]
    valids = [torch.rand(4, w, generator=g) > 0.3 for _ in xs]
    norm = ActNorm(v, init_batches=3)
    norm.initialize(xs[0], valids[0])
    assert bool(norm.initialized) and norm.pooling
    assert float(norm.log_scale[2]) == pytest.approx(-math.log(0.1))  # floored, not frozen yet
    for x, valid in zip(xs[1:], valids[1:], strict=True):
        norm.initialize(x, valid)
    frames = torch.cat([x.transpose(1, 2)[m] for x, m in zip(xs, valids, strict=True)])  # (F, V)
    torch.testing.assert_close(-norm.bias, frames.mean(0))
    torch.testing.assert_close((-norm.log_scale).exp(), frames.std(0, correction=0))
    assert not norm.pooling
    frozen = norm.state_dict()
    norm.initialize(xs[0] * 5, valids[0])  # a later batch changes nothing
    torch.testing.assert_close(norm.state_dict(), frozen)
    loaded = ActNorm(v, init_batches=3)
    loaded.load_state_dict(frozen)  # e.g. a bundle: initialised, so it stays frozen
    loaded.initialize(xs[1], valids[1])
    torch.testing.assert_close(loaded.state_dict(), frozen)
    with pytest.raises(ValueError, match="init_batches"):
        ActNorm(v, init_batches=0)


def test_latent_loss_weights_nodes_like_frdist_groups():
    w = _node_weights()
    assert w.mean().item() == pytest.approx(1.0)
    au, va, expr = w[schema.AU], w[schema.VA], w[schema.EXPR]
    assert torch.all(au == au[0]) and torch.all(va == va[0]) and torch.all(expr == expr[0])
    assert (va[0] / au[0]).item() == pytest.approx(15.0)  # the 15 AUs weigh as one VA node
    assert (expr[0] / au[0]).item() == pytest.approx(15.0 / 8.0)


def test_speaker_conditioning_learns_but_does_not_backprop_into_the_nodes():
    model = make().train()
    batch = random_batch(t=2 * W, seed=3)
    model(batch)["latent"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.edges.parameters())
    # the conditioning input is detached: the edge layer sees no graph back to the cognition
    attr, coef, audio, valid = model._windows(batch)
    _, nodes, mixes = model.encode(attr, coef, audio, valid)
    assert nodes.requires_grad
    (grad,) = torch.autograd.grad(mixes[0].sum(), [nodes], allow_unused=True)
    assert grad is None


@torch.no_grad()
def test_motor_residual_is_a_contraction_even_with_large_weights():
    model = make(lipschitz=0.6).eval()
    layer = model.motor.layers[0]
    layer.w1.mul_(50.0)
    layer.w2.mul_(50.0)
    x, mixes = _motor_inputs(model)
    assert torch.linalg.matrix_norm(mixes[0], ord=2).max() <= 1 + 1e-5
    # a perturbation shared by all nodes survives the node averaging of E (the worst case)
    y = x + torch.randn(x.shape[0], 1, W).expand_as(x) * 0.3
    num = torch.linalg.norm((layer.residual(x, mixes[0]) - layer.residual(y, mixes[0])).flatten(1),
                            dim=1)
    den = torch.linalg.norm((x - y).flatten(1), dim=1)
    ratio = num / den
    assert ratio.max() <= 0.6 + 1e-5
    assert ratio.max() > 0.03  # f is not trivially zero


@torch.no_grad()
def test_inverse_without_enough_iterations_names_the_knob():
    model = initialised(make(fixed_point_iters=1, tol=1e-9))
    x, mixes = _motor_inputs(model)
    with pytest.raises(RuntimeError, match="fixed_point_iters"):
        model.motor.inverse(model.motor(x, mixes), mixes)


def test_bounded_noise_never_exceeds_sqrt_threshold():
    torch.manual_seed(0)
    eps = bounded_noise((64, 25, 50), 0.06, device="cpu")
    peak = eps.flatten(1).abs().amax(1)
    assert peak.max() <= math.sqrt(0.06)
    torch.testing.assert_close(peak, torch.full((64,), math.sqrt(0.06)))  # rescaled, not zero
    assert torch.equal(bounded_noise((3, 4), 0.0, device="cpu"), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="threshold"):
        bounded_noise((3, 4), -1.0, device="cpu")


@torch.no_grad()
@pytest.mark.parametrize("threshold", [0.06, 0.3])
def test_generated_reactions_lie_within_the_noise_bound_of_the_cognitive_output(threshold):
    model = initialised(make(noise_threshold=threshold))
    b = random_batch(b=2, t=3 * W, targets=False)
    attr, coef, audio, valid = model._windows(b)
    _, nodes, mixes = model.encode(attr, coef, audio, valid)
    x = model.generate(nodes, mixes, 3)  # (K, N, 25, W)
    z = model.motor(x.flatten(0, 1), [m.repeat(3, 1, 1) for m in mixes]).view_as(x)
    dev = (z - nodes).flatten(2).abs().amax(-1)  # (K, N)
    assert dev.max() <= math.sqrt(threshold) + 1e-4
    assert dev.min() >= 0.5 * math.sqrt(threshold)


@torch.no_grad()
def test_the_k_samples_differ():
    model = initialised(make())
    s = model.sample(random_batch(b=2, t=3 * W, targets=False), num_samples=5)
    for x in (s.attr, s.coef):
        pair = (x[:, :, None] - x[:, None]) ** 2  # (B, K, K, T, F)
        frdiv = pair.mean((-1, -2)).sum((1, 2)) / (5 * 4)  # mean over ordered pairs
        assert frdiv.min() > 1e-4


def test_topk_mask_keeps_exactly_k_per_row_even_with_ties():
    scores = torch.rand(3, 4, 25, 25)
    scores[0, 0] = 0.5  # a row of ties
    for k in (1, 5, 25):
        mask = topk_mask(scores, k)
        assert torch.equal(mask.sum(-1), torch.full((3, 4, 25), k))
        kth = scores.topk(k, -1).values[..., -1:]
        assert torch.all(scores[mask.logical_not()].view(-1) <= kth.expand_as(scores)[~mask])
        assert torch.all(scores[mask] >= kth.expand_as(scores)[mask])
    with pytest.raises(ValueError, match="k"):
        topk_mask(scores, 26)


def test_edge_layer_keeps_k_neighbours_per_row_and_gives_symmetric_edges():
    torch.manual_seed(0)
    layer = EdgeLayer(window=W, channels=4, top_k=5)
    nodes = torch.randn(6, schema.ATTR_DIM, W)
    a = layer.masked_attention(nodes)
    assert torch.equal((a > 0).sum(-1), torch.full((6, 4, schema.ATTR_DIM), 5))
    edges = layer(nodes)
    assert edges.shape == (6, 4, schema.ATTR_DIM, schema.ATTR_DIM)
    torch.testing.assert_close(edges, edges.transpose(-1, -2))


def test_simplex_projection_and_metric_space_mapping():
    v = torch.randn(100, 8) * 2
    p = project_simplex(v)
    assert p.min() >= 0
    torch.testing.assert_close(p.sum(-1), torch.ones(100))
    # the projection is the nearest distribution: closer than random points of the simplex
    others = torch.distributions.Dirichlet(torch.ones(8)).sample((100, 50))
    assert torch.all(((p - v) ** 2).sum(-1) <= ((others - v[:, None]) ** 2).sum(-1).min(1).values
                     + 1e-5)
    on = torch.softmax(torch.randn(10, 8), -1)
    torch.testing.assert_close(project_simplex(on), on)
    m = attrs_to_metric(torch.tensor([[0.49, 0.5, 2.0] + [0.0] * 12 + [1.7, -3.0] + [0.2] * 8]))
    assert m[0, :3].tolist() == [0.0, 1.0, 1.0]
    assert m[0, schema.VA].tolist() == [1.0, -1.0]
    torch.testing.assert_close(m[0, schema.EXPR], torch.full((8,), 0.125))


@torch.no_grad()
def test_online_windows_ignore_later_speaker_frames_even_from_mid_window():
    model = initialised(make(online=True))
    batch = random_batch(b=2, t=4 * W, targets=False)
    cut = 2 * W + 3  # inside window 2
    g = torch.Generator().manual_seed(5)

    def perturb(x):
        y = x.clone()
        y[:, cut:] = torch.randn(y[:, cut:].shape, generator=g) * 3
        return y

    future = replace(batch, speaker_attr=perturb(batch.speaker_attr),
                     speaker_coef=perturb(batch.speaker_coef),
                     speaker_audio=perturb(batch.speaker_audio))
    torch.manual_seed(11)
    a = model.sample(batch, num_samples=2)
    torch.manual_seed(11)
    b = model.sample(future, num_samples=2)
    done = 2 * W  # windows 0 and 1 end before the cut
    assert torch.equal(a.coef[:, :, :done], b.coef[:, :, :done])
    assert torch.equal(a.attr[:, :, :done], b.attr[:, :, :done])
    assert not torch.equal(a.coef[:, :, done:cut], b.coef[:, :, done:cut])  # same window as cut


@torch.no_grad()
def test_same_seed_builds_the_same_model_and_samples():
    m1, m2 = make(), make()
    for (k1, v1), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    batch = random_batch(t=3 * W, targets=False)
    outs = []
    for m in (m1.eval(), m2.eval()):
        torch.manual_seed(4)
        outs.append(m.sample(batch, num_samples=2))
    assert torch.equal(outs[0].attr, outs[1].attr) and torch.equal(outs[0].coef, outs[1].coef)


def test_visual_weights_missing_file_is_a_clear_error(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt.*visual_weights=None"):
        make(visual_weights=str(path))


def test_visual_weights_that_do_not_fit_are_reported(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a state dict")
    with pytest.raises(ValueError, match="junk.pt.*not a readable"):
        make(visual_weights=str(junk))
    other = tmp_path / "other.pt"
    torch.save(make(visual_dim=16).visual.state_dict(), other)
    with pytest.raises(ValueError, match=r"shape mismatches.*attr.weight: expected \(32, 25\), "
                                         r"got \(16, 25\)"):
        make(visual_weights=str(other))
    partial = tmp_path / "partial.pt"
    torch.save({"attr.weight": torch.zeros(32, 25)}, partial)
    with pytest.raises(ValueError, match="missing keys.*coef.weight"):
        make(visual_weights=str(partial))


def test_visual_weights_load_from_an_encoder_or_a_whole_model_state_dict(tmp_path):
    torch.manual_seed(123)
    donor = build("regnn", SMALL)
    enc, full = tmp_path / "visual.pt", tmp_path / "regnn.pt"
    torch.save(donor.visual.state_dict(), enc)
    torch.save(donor.state_dict(), full)
    for path, freeze in ((enc, True), (full, False)):
        model = make(visual_weights=str(path), freeze_visual=freeze)
        for k, v in donor.visual.state_dict().items():
            assert torch.equal(model.visual.state_dict()[k], v), k
        assert all(p.requires_grad == (not freeze) for p in model.visual.parameters())
        assert all(p.requires_grad for p in model.perceptual.parameters())
        assert torch.isfinite(model(random_batch())["total"])


def _neighbours(batch, m: int, seed: int = 3) -> torch.Tensor:
    other = random_batch(b=batch.batch_size * m, t=batch.num_frames, seed=seed).listener_attr
    return other.view(batch.batch_size, m, batch.num_frames, -1)


@torch.no_grad()
def test_latent_loss_is_the_min_over_appropriate_reactions():
    model = initialised(make())
    batch = random_batch(t=3 * W)
    base = model(batch)
    assert base["mid"] == 0  # one appropriate reaction per speaker: no spread
    extra = _neighbours(batch, 3)
    more = model(batch, neighbors=extra)
    assert more["latent"] < base["latent"] and more["mid"] > 0
    # invalid rows and a cap of 1 reaction both leave only the paired listener
    none_valid = torch.zeros(batch.batch_size, 3, dtype=torch.bool)
    torch.testing.assert_close(model(batch, extra, none_valid)["latent"], base["latent"])
    capped = build("regnn", {**SMALL, "num_neighbors": 1})
    capped.load_state_dict(model.state_dict())
    torch.testing.assert_close(capped.eval()(batch, extra)["latent"], base["latent"])
    # the paired listener repeated: same min, zero spread
    same = model(batch, batch.listener_attr[:, None])
    torch.testing.assert_close(same["latent"], base["latent"])
    assert same["mid"] < 1e-10
    with pytest.raises(ValueError, match="neighbors must have shape"):
        model(batch, extra[:, :, :-1])
    with pytest.raises(ValueError, match="neighbor_valid"):
        model(batch, extra, none_valid[:, :2])


def test_a_tiny_model_overfits_one_batch_and_generates_closer_reactions():
    model = make(dropout=0.0, embed_dropout=0.0)
    batch = random_batch(b=2, t=2 * W, seed=2)
    tgt = _to_windows(batch.listener_attr * batch.mask[..., None], W)  # (N, W, 25)
    real = _to_windows(batch.mask, W)

    @torch.no_grad()
    def recon_error() -> float:  # zero-noise generation vs the paired listener, real frames
        model.eval()
        attr, coef, audio, valid = model._windows(batch)
        _, nodes, mixes = model.encode(attr, coef, audio, valid)
        x = model.motor.inverse(nodes, mixes).transpose(1, 2)
        model.train()
        return float(((x - tgt) ** 2)[real].mean())

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    # the first training forward also initialises ActNorm
    first = {k: float(v.detach()) for k, v in model.train()(batch).items()}
    before = recon_error()
    for _ in range(40):
        losses = model(batch)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in model(batch).items()}
    assert last["latent"] < 0.5 * first["latent"]
    assert last["coef"] < 0.5 * first["coef"]
    assert recon_error() < 0.6 * before
