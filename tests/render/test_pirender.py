"""PIRender rebuilt for the REACT checkpoint: shapes with random weights, loading, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orchestrator.render.pirender import (
    FaceGenerator,
    load_pirender,
    load_reference,
    render_frames,
    semantic_windows,
)

# A few keys and shapes of the released checkpoint's state dict (58-d FaceVerse coefficients)
KNOWN = {
    "mapping_net.pre.weight": (73, 58, 1),
    "mapping_net.first.0.weight": (256, 73, 7),
    "mapping_net.encoder2.1.weight": (256, 256, 3),
    "warpping_net.hourglass.encoder.input_layer.weight": (32, 3, 7, 7),
    "warpping_net.hourglass.encoder.encoder4.conv_0.weight": (256, 256, 4, 4),
    "warpping_net.hourglass.encoder.encoder0.norm_0.mlp_shared.0.weight": (128, 256),
    "warpping_net.hourglass.decoder.decoder2.conv_s.weight": (512, 128, 3, 3),
    "warpping_net.flow_out.0.weight": (256, 1, 1),
    "warpping_net.flow_out.2.weight": (2, 256, 7, 7),
    "editing_net.encoder.first.model.0.weight": (64, 6, 7, 7),
    "editing_net.encoder.down2.model.1.bias": (256, 1, 1),
    "editing_net.decoder.res1.res1.norm2.mlp_gamma.weight": (256, 128),
    "editing_net.decoder.up0.model.0.weight": (64, 128, 3, 3),
    "editing_net.decoder.jump0.model.1.weight": (64, 1, 1),
    "editing_net.decoder.final.model.0.weight": (3, 64, 7, 7),
}


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FaceGenerator().eval()


def test_state_dict_has_the_checkpoint_layout(net):
    sd = net.state_dict()
    for k, shape in KNOWN.items():
        assert tuple(sd[k].shape) == shape, k
    assert len(sd) == 306
    assert 22_000_000 < sum(v.numel() for v in sd.values()) < 23_000_000


def test_forward_shapes_with_random_weights(net):
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 96) * 2 - 1, torch.randn(1, 58, 27))
    assert out["fake_image"].shape == (1, 3, 64, 96)
    assert out["warp_image"].shape == (1, 3, 64, 96)
    assert out["flow_field"].shape == (1, 2, 16, 24)  # the flow lives at 1/4 resolution
    assert out["fake_image"].abs().max() <= 1  # tanh output
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.rand(1, 3, 40, 64), torch.randn(1, 58, 27))
    with pytest.raises(ValueError, match=">= 64"):
        net(torch.rand(1, 3, 32, 64), torch.randn(1, 58, 27))


def test_windows_clamp_at_the_sequence_ends():
    coef = torch.arange(5, dtype=torch.float32)[:, None].expand(5, 58)
    w = semantic_windows(coef)
    assert w.shape == (5, 58, 27)
    assert w[0, 0, :14].eq(0).all() and w[0, 0, 14:].tolist() == [1, 2, 3, 4] + [4] * 9
    assert w[2, 0, 13] == 2  # centred on its own frame


def test_checkpoint_round_trip_and_render(net, tmp_path):
    path = tmp_path / "cur_model_fold.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
                "epoch": 3}, path)
    loaded = load_pirender(path)
    ref = load_reference(np.full((70, 90, 3), 128, np.uint8), size=64)
    assert ref.shape == (3, 64, 64) and ref.abs().max() < 0.01
    want = net.state_dict()
    got = loaded.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    coef = np.random.default_rng(0).normal(size=(2, 58)).astype(np.float32)
    frames = render_frames(loaded, ref, coef, chunk=1)
    assert frames.shape == (2, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 0  # random weights still draw something


def test_invalid_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="render.pirender"):
        load_pirender(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a loadable torch checkpoint"):
        load_pirender(tmp_path / "junk.pth")
    torch.save({"state_dict": {"mapping_net.first.0.weight": torch.zeros(256, 73, 7)}},
               tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="missing keys"):
        load_pirender(tmp_path / "partial.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="no PIRender state dict"):
        load_pirender(tmp_path / "list.pth")


def test_reference_image_files(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "ref.png")
    ref = load_reference(tmp_path / "ref.png", size=64)
    assert ref.shape == (3, 64, 64) and ref.min() == -1
    with pytest.raises(FileNotFoundError, match="render.reference"):
        load_reference(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_text("x")
    with pytest.raises(ValueError, match="not a readable image"):
        load_reference(tmp_path / "bad.png")
