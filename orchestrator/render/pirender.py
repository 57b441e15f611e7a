"""PIRender, rebuilt so the REACT challenge's released checkpoint loads (``render.pirender``).

The challenge renders photoreal listener frames with PIRender (Ren et al., "PIRenderer", ICCV
2021) re-trained on 58-d FaceVerse coefficients (``external/PIRender/cur_model_fold.pth``,
licence-gated). For each target frame t:

    window   = coefficients of frames t-13 .. t+13 (clamped at the ends)   (58, 27)
    z        = MappingNet(window)                                           (256,)
    flow     = WarpingNet(reference, z)      AdaIN hourglass -> 2-channel flow at 1/4 size
    warped   = grid_sample(reference, identity grid + flow)
    frame    = EditingNet(reference, warped, z)                             (3, H, W) in [-1, 1]

MappingNet: conv1d 58->73 (k1), 73->256 (k7), three residual dilated conv1d (k3, dilation 3),
average pool. The reference portrait is the listener's first frame, 224 x 224 in [-1, 1]
(Resize 256 -> CenterCrop 224 -> Normalize 0.5/0.5). H and W: multiples of 32, at least 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from orchestrator.render._pirender_blocks import (
    ADAINHourglass,
    FineDecoder,
    FineEncoder,
    LayerNorm2d,
    act,
)
from react_data import schema

__all__ = ["FaceGenerator", "PIRenderConfig", "load_pirender", "load_reference", "render_frames",
           "semantic_windows"]

SEMANTIC_RADIUS = 13  # window of 27 frames centred on the target frame


@dataclass(frozen=True)
class PIRenderConfig:
    """Sizes of the released REACT PIRender (defaults = the checkpoint's)."""

    coef_dim: int = schema.COEF_DIM  # FaceVerse 58-d per-frame coefficients
    coeff_nc: int = 73  # the original PIRender's 73-d input, reached by a 1x1 conv
    descriptor_nc: int = 256
    mapping_layers: int = 3
    image_nc: int = 3
    warp_base: int = 32
    warp_encoder_layers: int = 5
    warp_decoder_layers: int = 3
    edit_base: int = 64
    edit_layers: int = 3
    edit_res_blocks: int = 2
    max_nc: int = 256


class MappingNet(nn.Module):
    """(B, 58, 27) coefficient window -> (B, 256, 1) motion descriptor."""

    def __init__(self, c: PIRenderConfig) -> None:
        super().__init__()
        self.layers = c.mapping_layers
        self.pre = nn.Conv1d(c.coef_dim, c.coeff_nc, kernel_size=1)
        self.first = nn.Sequential(nn.Conv1d(c.coeff_nc, c.descriptor_nc, kernel_size=7))
        for i in range(c.mapping_layers):
            setattr(self, f"encoder{i}", nn.Sequential(
                act(), nn.Conv1d(c.descriptor_nc, c.descriptor_nc, kernel_size=3, dilation=3)))
        self.pooling = nn.AdaptiveAvgPool1d(1)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        out = self.first(self.pre(window))  # (B, 256, 21)
        for i in range(self.layers):
            out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]  # 21 -> 15 -> 9 -> 3
        return self.pooling(out)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (B, C, H, W) at the identity grid displaced by ``flow`` (B, 2, h, w) px.

    The flow is in pixels of its own (h, w) grid; the sampling grid is upsampled bilinearly to
    (H, W) when the sizes differ.
    """
    b, _, h, w = flow.shape
    ys = torch.linspace(-1, 1, h, device=flow.device, dtype=flow.dtype)
    xs = torch.linspace(-1, 1, w, device=flow.device, dtype=flow.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], -1).expand(b, h, w, 2)
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)], device=flow.device, dtype=flow.dtype)
    grid = grid + flow.permute(0, 2, 3, 1) * scale
    if (h, w) != tuple(image.shape[-2:]):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=image.shape[-2:], mode="bilinear")
        grid = grid.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, align_corners=False)


class WarpingNet(nn.Module):
    """Reference image + descriptor -> flow field and the warped reference."""

    def __init__(self, c: PIRenderConfig) -> None:
        super().__init__()
        self.hourglass = ADAINHourglass(c.image_nc, c.descriptor_nc, c.warp_base, c.max_nc,
                                        c.warp_encoder_layers, c.warp_decoder_layers)
        n = self.hourglass.output_nc
        self.flow_out = nn.Sequential(LayerNorm2d(n), act(), nn.Conv2d(n, 2, 7, padding=3))

    def forward(self, image: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        flow = self.flow_out(self.hourglass(image, z))
        return {"flow_field": flow, "warp_image": warp(image, flow)}


class EditingNet(nn.Module):
    """Refines the warped reference (with the original) into the output frame."""

    def __init__(self, c: PIRenderConfig) -> None:
        super().__init__()
        self.encoder = FineEncoder(2 * c.image_nc, c.edit_base, c.max_nc, c.edit_layers)
        self.decoder = FineDecoder(c.image_nc, c.descriptor_nc, c.edit_base, c.max_nc,
                                   c.edit_layers, c.edit_res_blocks)

    def forward(self, image: torch.Tensor, warped: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(torch.cat([image, warped], 1)), z)


class FaceGenerator(nn.Module):
    """PIRender: ``forward(reference (B,3,H,W), window (B,58,27))`` -> dict with ``fake_image``.

    Attribute names (``mapping_net``, ``warpping_net`` [sic], ``editing_net``) are the
    checkpoint's.
    """

    def __init__(self, config: PIRenderConfig | None = None) -> None:
        super().__init__()
        self.config = config or PIRenderConfig()
        self.mapping_net = MappingNet(self.config)
        self.warpping_net = WarpingNet(self.config)
        self.editing_net = EditingNet(self.config)

    def forward(self, image: torch.Tensor, window: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = image.shape[-2:]
        if h % 32 or w % 32 or min(h, w) < 64:
            raise ValueError(f"PIRender needs H and W divisible by 32 and >= 64 (5 halvings, "
                             f"instance norm needs >1 pixel), got {(h, w)}; use 224 x 224 like "
                             f"the challenge")
        z = self.mapping_net(window)
        out = self.warpping_net(image, z)
        out["fake_image"] = self.editing_net(image, out["warp_image"], z)
        return out


def semantic_windows(coef: torch.Tensor | np.ndarray,
                     radius: int = SEMANTIC_RADIUS) -> torch.Tensor:
    """(T, 58) coefficients -> (T, 58, 2 radius + 1) windows centred on each frame (clamped)."""
    coef = torch.as_tensor(np.asarray(coef), dtype=torch.float32)
    t = coef.shape[0]
    idx = (torch.arange(t)[:, None] + torch.arange(-radius, radius + 1)[None]).clamp(0, t - 1)
    return coef[idx].transpose(1, 2).contiguous()


def load_pirender(path: str | Path, *, map_location: str | torch.device = "cpu"
                  ) -> FaceGenerator:
    """Build `FaceGenerator` and load the REACT PIRender checkpoint into it (strict).

    Accepts a raw state dict or a dict holding it under ``state_dict`` (the challenge's
    ``cur_model_fold.pth``), ``net_G_ema`` or ``net_G`` (PIRender's own trainer); a
    ``module.`` prefix (DataParallel) is stripped. Loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, no state dict found, or keys/shapes that do not fit (the first
            few are listed).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"PIRender checkpoint {path} does not exist; pass render.pirender=<path of the REACT "
            f"challenge's cur_model_fold.pth> (licence-gated), or leave it unset to skip "
            f"photoreal rendering")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for foreign or corrupt files
        raise ValueError(f"{path} is not a loadable torch checkpoint ({type(e).__name__}: "
                         f"{str(e)[:300]}); render.pirender must be the REACT PIRender "
                         f"cur_model_fold.pth") from e
    state = payload
    if isinstance(payload, dict):
        for key in ("state_dict", "net_G_ema", "net_G"):
            if isinstance(payload.get(key), dict):
                state = payload[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f"{path} holds no PIRender state dict (top-level keys: "
                         f"{sorted(payload)[:8] if isinstance(payload, dict) else type(payload)})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = FaceGenerator()
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
             for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} does not fit the REACT PIRender generator (58-d coefficients): "
            f"{len(missing)} missing keys {missing[:4]}, {len(unexpected)} unexpected "
            f"{unexpected[:4]}, {len(wrong)} wrong shapes {wrong[:3]}; the original PIRender "
            f"(73-d Deep3DFaceRecon coefficients) is a different model")
    net.load_state_dict(state, strict=True)
    return net.to(map_location).eval()


def load_reference(image: str | Path | np.ndarray, size: int = 224) -> torch.Tensor:
    """The reference portrait as PIRender takes it: (3, size, size) in [-1, 1].

    Resize the short side to ``size * 256 / 224``, centre-crop ``size`` (the challenge's
    Resize 256 -> CenterCrop 224).

    Args:
        image: an image file (PNG/JPEG) or an (H, W, 3) uint8 RGB array (e.g. a video frame).
        size: output side.
    """
    from PIL import Image

    if isinstance(image, (str, Path)):
        p = Path(image).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"reference portrait {p} does not exist; pass "
                                    f"render.reference=<an image of the listener's face>")
        try:
            pil = Image.open(p).convert("RGB")
        except OSError as e:
            raise ValueError(f"{p} is not a readable image ({e})") from e
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"reference image must be (H, W, 3) uint8, got {arr.shape} "
                             f"{arr.dtype}")
        pil = Image.fromarray(arr)
    short = round(size * 256 / 224)
    w, h = pil.size
    scale = short / min(w, h)
    pil = pil.resize((max(short, round(w * scale)), max(short, round(h * scale))),
                     Image.BILINEAR)
    w, h = pil.size
    left, top = (w - size) // 2, (h - size) // 2
    pil = pil.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(pil, np.float32) / 127.5 - 1.0)
    return x.permute(2, 0, 1).contiguous()


@torch.no_grad()
def render_frames(net: FaceGenerator, reference: torch.Tensor, coef: np.ndarray | torch.Tensor,
                  *, chunk: int = 32) -> np.ndarray:
    """Photoreal frames of one sequence.

    Args:
        net: the generator (its device is used).
        reference: (3, H, W) portrait in [-1, 1] (`load_reference`).
        coef: (T, 58) raw (de-normalised) coefficients.
        chunk: frames per forward pass.

    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    device = next(net.parameters()).device
    windows = semantic_windows(coef).to(device)
    ref = reference.to(device)[None]
    out = []
    for s in range(0, windows.shape[0], chunk):
        w = windows[s:s + chunk]
        fake = net(ref.expand(w.shape[0], -1, -1, -1), w)["fake_image"]
        img = ((fake.clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)
        out.append(img.permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)
