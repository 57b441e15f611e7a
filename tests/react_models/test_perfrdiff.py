"""PerFRDiff: shapes, losses, sampler switching, personal weight edits, online causality."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from react_data import schema
from react_models import build
from react_models._perfrdiff_nets import DecoderLayer, LowRankEdit
from react_models.perfrdiff import PerFRDiff, PerFRDiffConfig
from tests.react_models.conftest import random_batch

TINY = dict(latent_dim=32, num_layers=2, num_heads=2, ff_dim=64, num_train_steps=100,
            sample_steps=4, num_preds_train=2, window_size=8, max_len=64, person_embed_dim=16,
            hyper_hidden=32, edit_rank=2, person_encoder_layers=1, edited_layers=(0, -1))


def tiny(**kw) -> PerFRDiff:
    torch.manual_seed(0)
    return build("perfrdiff", {**TINY, **kw})


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomise_modifier(m: PerFRDiff) -> None:
    """Stand-in for a trained hypernetwork: the zero-initialised U halves become non-zero."""
    with torch.no_grad():
        for p in m.modifier.parameters():
            p.normal_(0, 0.5, generator=seeded(1))


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("personalised", [False, True])
def test_forward_losses_and_sample_shapes(online: bool, personalised: bool) -> None:
    m = tiny(online=online, personalised=personalised)
    b = random_batch(2, 20, context_frames=4 if online else 0)
    losses = m(b)
    assert set(losses) == {"total", "au", "va", "expr", "coef"}
    assert losses["total"].dim() == 0 and torch.isfinite(losses["total"])
    losses["total"].backward()
    assert m.denoiser.head.weight.grad is not None
    s = m.sample(b, 3, generator=seeded())
    assert s.attr.shape == (2, 3, 20, schema.ATTR_DIM)
    assert s.coef.shape == (2, 3, 20, schema.COEF_DIM)


def test_samples_are_in_metric_space() -> None:
    s = tiny().sample(random_batch(2, 16), 2, generator=seeded())
    assert set(s.attr[..., schema.AU].unique().tolist()) <= {0.0, 1.0}
    assert s.attr[..., schema.VA].abs().max() <= 1.0
    ex = s.attr[..., schema.EXPR]
    assert ex.min() >= 0
    torch.testing.assert_close(ex.sum(-1), torch.ones(ex.shape[:-1]))


@pytest.mark.parametrize("online", [False, True])
def test_missing_modalities_are_skipped_not_zero_filled(online: bool) -> None:
    m = tiny(online=online)
    b = random_batch(2, 16, audio=False, coef=False)
    losses = m(b)
    assert "coef" not in losses and torch.isfinite(losses["total"])
    assert m.sample(b, 2, generator=seeded()).coef.shape == (2, 2, 16, schema.COEF_DIM)


@pytest.mark.parametrize("online", [False, True])
def test_loss_ignores_padded_target_frames(online: bool) -> None:
    m = tiny(online=online)
    b = random_batch(2, 24)
    changed = dataclasses.replace(b, listener_attr=b.listener_attr.clone(),
                                  listener_coef=b.listener_coef.clone())
    changed.listener_attr[~b.mask] = 7.0
    changed.listener_coef[~b.mask] = -7.0
    torch.manual_seed(3)
    ref = m(b)["total"]
    torch.manual_seed(3)
    torch.testing.assert_close(m(changed)["total"], ref)


def test_temporal_loss_penalises_velocity_errors_only_when_weighted() -> None:
    b = random_batch(2, 24)
    torch.manual_seed(3)
    plain = tiny()(b)
    assert "temporal" not in plain  # the baseline's default: temporal_loss_w 0
    m = tiny(temporal_loss_w=2.0)
    torch.manual_seed(3)
    losses = m(b)
    assert float(losses["temporal"]) > 0
    rest = sum(w * losses[k] for k, w in (("au", 1.0), ("va", 5.0), ("expr", 5.0), ("coef", 1.0)))
    torch.testing.assert_close(losses["total"], rest + 2.0 * losses["temporal"])
    # a prediction that is the target plus a constant offset has zero velocity error
    se = m._losses(b.listener_attr.new_ones(2, 24, 83) + 0.3, b.listener_attr.new_ones(2, 24, 83),
                   b.mask, True)
    assert float(se["temporal"]) == 0.0 and float(se["va"]) > 0


def test_distance_bias_favours_nearby_speaker_frames_per_head() -> None:
    assert tiny().denoiser.slopes is None  # the spec's denoiser: no bias
    den = tiny(distance_bias=True, num_heads=2).denoiser
    assert den.slopes == [2.0 ** -4, 2.0 ** -8]
    frames = torch.tensor([0, 1, 2, 0, 1, 2, -1])  # two 3-frame segments and a person token
    bias = den.distance_bias(torch.tensor([1, 2]), frames)
    assert bias.shape == (2, 2, 8)  # (heads, queries, timestep token + memory)
    assert bias[:, :, 0].eq(0).all() and bias[:, :, -1].eq(0).all()
    torch.testing.assert_close(bias[0, 0, 1:4], -(2.0 ** -4) * torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(bias[1, 1, 4:7], -(2.0 ** -8) * torch.tensor([2.0, 1.0, 0.0]))


@pytest.mark.parametrize("online", [False, True])
def test_distance_bias_changes_the_prediction_and_trains(online: bool) -> None:
    b = random_batch(2, 20, context_frames=4 if online else 0)
    plain, biased = tiny(online=online).eval(), tiny(online=online, distance_bias=True).eval()
    biased.load_state_dict(plain.state_dict())  # same weights: only the bias differs
    s0 = plain.sample(b, 2, generator=seeded())
    s1 = biased.sample(b, 2, generator=seeded())
    assert not torch.equal(s0.coef, s1.coef)
    biased.train()
    biased(b)["total"].backward()
    assert all(p.grad is not None for p in biased.denoiser.parameters() if p.requires_grad)


def test_context_frames_are_not_targets() -> None:
    b = random_batch(2, 16, context_frames=16)
    assert float(tiny(online=True)(b)["total"].detach()) == 0.0


def _count_denoiser_calls(m: PerFRDiff) -> list[int]:
    calls = [0]
    m.denoiser.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("kw,calls", [({}, 4), ({"sampler": "ddpm", "steps": 3}, 3),
                                      ({"sampler": "ddim", "steps": 7, "eta": 1.0}, 7),
                                      ({"steps": 2, "guidance_scale": 2.0}, 4)])
def test_sampler_kind_steps_and_guidance_switch_at_sample_time(kw: dict, calls: int) -> None:
    m = tiny()
    counter = _count_denoiser_calls(m)
    s = m.sample(random_batch(2, 16), 2, generator=seeded(), **kw)
    assert counter[0] == calls and torch.isfinite(s.coef).all()


def test_different_samplers_give_different_reactions_from_the_same_weights() -> None:
    m, b = tiny(), random_batch(2, 16)
    a = m.sample(b, 2, generator=seeded()).coef
    assert not torch.allclose(a, m.sample(b, 2, generator=seeded(), sampler="ddpm").coef)
    assert not torch.allclose(a, m.sample(b, 2, generator=seeded(), steps=9).coef)


def test_invalid_sampling_arguments_raise_clear_errors() -> None:
    m, b = tiny(), random_batch(1, 8)
    with pytest.raises(ValueError, match="sampler must be one of"):
        m.sample(b, 1, sampler="euler")
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        m.sample(b, 1, steps=101)
    with pytest.raises(ValueError, match="guidance_scale"):
        m.sample(b, 1, guidance_scale=-1.0)
    with pytest.raises(ValueError, match="num_samples"):
        m.sample(b, 0)


@pytest.mark.parametrize("online", [False, True])
def test_sampling_is_deterministic_for_a_seed_and_restores_train_mode(online: bool) -> None:
    m, b = tiny(online=online), random_batch(2, 16)
    m.train()
    a = m.sample(b, 2, generator=seeded(5)).coef
    assert m.training
    torch.testing.assert_close(a, m.sample(b, 2, generator=seeded(5)).coef)
    assert not torch.allclose(a, m.sample(b, 2, generator=seeded(6)).coef)
    torch.manual_seed(11)
    c = m.sample(b, 2).coef
    torch.manual_seed(11)
    torch.testing.assert_close(c, m.sample(b, 2).coef)


def test_person_weight_edits_make_outputs_person_specific() -> None:
    m = tiny(personalised=True)
    randomise_modifier(m)
    with torch.no_grad():  # silence the person token: only the weight edits carry identity
        m.denoiser.person.weight.zero_()
        m.denoiser.person.bias.zero_()
    b = random_batch(2, 16)

    def run(idx: list[int]) -> torch.Tensor:
        return m.sample(dataclasses.replace(b, listener_idx=torch.tensor(idx)), 2,
                        generator=seeded()).coef

    torch.testing.assert_close(run([0, 1]), run([0, 1]))
    assert not torch.allclose(run([0, 1]), run([2, 3]))


def test_generic_model_ignores_the_listener_identity() -> None:
    m, b = tiny(), random_batch(2, 16)
    a = m.sample(b, 2, generator=seeded()).coef
    b2 = dataclasses.replace(b, listener_idx=torch.tensor([3, 2]))
    torch.testing.assert_close(a, m.sample(b2, 2, generator=seeded()).coef)


def test_an_untrained_modifier_leaves_the_generic_denoiser_unchanged() -> None:
    m = tiny(personalised=True)
    edits = m.modifier(torch.randn(3, 16))
    for e in edits.values():
        assert torch.count_nonzero(e.u @ e.v) == 0


def test_low_rank_edit_equals_editing_the_weight_itself() -> None:
    torch.manual_seed(0)
    d, r = 16, 3
    layer = DecoderLayer(d, 2, 32, 0.0).eval()
    x, mem = torch.randn(2, 5, d), torch.randn(2, 7, d)
    pad_x, pad_m = torch.zeros(2, 5, dtype=torch.bool), torch.zeros(2, 7, dtype=torch.bool)
    edit = LowRankEdit(torch.randn(2, 3 * d, r), torch.randn(2, r, d))
    out = layer(x, layer.memory_kv(mem, edit), pad_x, pad_m, edit)
    for i in range(2):
        ref = DecoderLayer(d, 2, 32, 0.0).eval()
        ref.load_state_dict(layer.state_dict())
        with torch.no_grad():
            ref.cross_in.weight += edit.u[i] @ edit.v[i]
        ref_out = ref(x[i:i + 1], ref.memory_kv(mem[i:i + 1]), pad_x[:1], pad_m[:1])
        torch.testing.assert_close(out[i:i + 1], ref_out)


def test_person_history_from_listener_context_changes_the_embedding() -> None:
    m = tiny(personalised=True, online=True)
    b = random_batch(1, 24, context_frames=8)
    other = dataclasses.replace(b, listener_attr=b.listener_attr.clone())
    other.listener_attr[:, :8] = 1.0 - other.listener_attr[:, :8]
    h1, h2 = m._batch_history(b), m._batch_history(other)
    e1, e2 = m._person(b.listener_idx, h1, "cpu"), m._person(b.listener_idx, h2, "cpu")
    assert not torch.allclose(e1, e2)
    assert m._person(b.listener_idx, None, "cpu").shape == (1, 16)
    inference = dataclasses.replace(b, listener_attr=None, listener_coef=None)
    assert m.sample(inference, 2, generator=seeded()).attr.shape == (1, 2, 24, schema.ATTR_DIM)


def test_listener_index_outside_the_person_table_is_rejected() -> None:
    m, b = tiny(personalised=True, num_persons=3), random_batch(2, 8)
    with pytest.raises(ValueError, match="num_persons"):
        m(dataclasses.replace(b, listener_idx=torch.tensor([0, 3])))


@pytest.mark.parametrize("distance_bias", [False, True])
def test_online_sample_equals_step_driven_generation(distance_bias: bool) -> None:
    m = tiny(online=True, personalised=True, distance_bias=distance_bias)
    randomise_modifier(m)
    b = random_batch(2, 21)  # 8 + 8 + 5: the last chunk is shorter than the window
    s = m.sample(b, 2, generator=seeded(4))
    state = m.start(2, 2, b.listener_idx, generator=seeded(4))
    outs = [m.step(state, b.speaker_attr[:, i:i + 8], b.speaker_coef[:, i:i + 8],
                   b.speaker_audio[:, i:i + 8], speaker_mask=b.mask[:, i:i + 8])
            for i in range(0, 21, 8)]
    assert [a.shape[2] for a, _ in outs] == [8, 8, 5]
    torch.testing.assert_close(s.attr, torch.cat([a for a, _ in outs], 2))
    torch.testing.assert_close(s.coef, torch.cat([c for _, c in outs], 2))


@pytest.mark.parametrize("distance_bias", [False, True])
def test_online_outputs_never_depend_on_later_speaker_frames(distance_bias: bool) -> None:
    m, b = tiny(online=True, distance_bias=distance_bias), random_batch(2, 32)
    ref = m.sample(b, 2, generator=seeded(2))
    cut = 16  # end of chunk 1
    late = dataclasses.replace(
        b, speaker_attr=b.speaker_attr.clone(), speaker_coef=b.speaker_coef.clone(),
        speaker_audio=b.speaker_audio.clone())
    for x in (late.speaker_attr, late.speaker_coef, late.speaker_audio):
        x[:, cut:] = torch.randn_like(x[:, cut:]) * 3
    out = m.sample(late, 2, generator=seeded(2))
    torch.testing.assert_close(out.coef[:, :, :cut], ref.coef[:, :, :cut])
    torch.testing.assert_close(out.attr[:, :, :cut], ref.attr[:, :, :cut])
    assert not torch.allclose(out.coef[:, :, cut:], ref.coef[:, :, cut:])


def test_online_step_rejects_misuse() -> None:
    m = tiny(online=True)
    state = m.start(1, 1)
    with pytest.raises(ValueError, match="window_size"):
        m.step(state, torch.zeros(1, 9, schema.ATTR_DIM), None, None)
    m.step(state, torch.zeros(1, 8, schema.ATTR_DIM), None, None)
    with pytest.raises(ValueError, match="modalities"):
        m.step(state, torch.zeros(1, 8, schema.ATTR_DIM), torch.zeros(1, 8, schema.COEF_DIM), None)
    with pytest.raises(NotImplementedError, match="online=True"):
        tiny().start(1)


def test_offline_sequences_longer_than_max_len_are_cropped_and_chunked() -> None:
    m, b = tiny(max_len=16), random_batch(2, 40)
    assert torch.isfinite(m(b)["total"])
    assert m.sample(b, 1, generator=seeded()).coef.shape == (2, 1, 40, schema.COEF_DIM)


def test_config_validation_names_the_field_and_the_fix() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads"):
        PerFRDiffConfig(latent_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="edited_layers"):
        PerFRDiffConfig(num_layers=2, personalised=True, edited_layers=(5,))
    with pytest.raises(ValueError, match="cond_drop_audio"):
        PerFRDiffConfig(cond_drop_audio=1.5)
    with pytest.raises(ValueError, match="exceeds max_len"):
        PerFRDiffConfig(window_size=400, s_ratio=2)
    with pytest.raises(ValueError, match="sampler"):
        PerFRDiffConfig(sampler="plms")
    with pytest.raises(ValueError, match="temporal_loss_w is a loss weight"):
        PerFRDiffConfig(temporal_loss_w=-1.0)
    with pytest.raises(ValueError, match="temporal_loss_w is a loss weight"):
        PerFRDiffConfig(temporal_loss_w="0.5")
    with pytest.raises(ValueError, match="distance_bias must be true or false, got 'yes'"):
        PerFRDiffConfig(distance_bias="yes")
    assert PerFRDiffConfig(edited_layers=[1, 2]).edited_layers == (1, 2)  # from YAML lists
    with pytest.raises(ValueError, match="audio_dim"):
        tiny()(dataclasses.replace(random_batch(1, 8), speaker_audio=torch.zeros(1, 8, 5)))


@pytest.mark.parametrize("online", [False, True])
def test_a_tiny_model_overfits_one_batch(online: bool) -> None:
    m = tiny(online=online, num_preds_train=8, dropout=0.0, cond_drop_audio=0.0,
             cond_drop_3dmm=0.0, cond_drop_emotion=0.0)
    b = random_batch(2, 16)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    torch.manual_seed(0)
    hist = []
    for _ in range(60):
        loss = m(b)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
    first, last = sum(hist[:10]) / 10, sum(hist[-10:]) / 10
    assert last < 0.5 * first, (first, last)
