"""Building blocks of the PIRender generator (Ren et al., ICCV 2021), as the REACT renderer uses it.

Module and attribute names follow the released checkpoint's state-dict keys (for example
``encoder0.norm_0.mlp_gamma.weight``), so ``load_state_dict(strict=True)`` accepts it. Every
block takes the 256-d motion descriptor ``z`` of the mapping network where it is modulated by
adaptive instance normalisation (AdaIN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACT = 0.1  # LeakyReLU slope of every PIRender block
ADAIN_HIDDEN = 128  # width of the AdaIN MLP


def act() -> nn.Module:
    return nn.LeakyReLU(ACT)


class LayerNorm2d(nn.Module):
    """Layer norm over (C, H, W); per-channel affine ``weight``/``bias`` of shape (C, 1, 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[1:]
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape))


class ADAIN(nn.Module):
    """Instance norm whose scale (1 + gamma) and shift beta come from the descriptor."""

    def __init__(self, channels: int, descriptor: int) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Linear(descriptor, ADAIN_HIDDEN), nn.ReLU())
        self.mlp_gamma = nn.Linear(ADAIN_HIDDEN, channels)
        self.mlp_beta = nn.Linear(ADAIN_HIDDEN, channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.mlp_shared(z.flatten(1))  # (B, 128)
        gamma = self.mlp_gamma(h)[:, :, None, None]
        beta = self.mlp_beta(h)[:, :, None, None]
        return self.param_free_norm(x) * (1 + gamma) + beta


class ADAINEncoderBlock(nn.Module):
    """AdaIN -> act -> stride-2 conv 4x4, AdaIN -> act -> conv 3x3 (halves H and W)."""

    def __init__(self, cin: int, cout: int, descriptor: int) -> None:
        super().__init__()
        self.conv_0 = nn.Conv2d(cin, cout, 4, stride=2, padding=1)
        self.conv_1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm_0 = ADAIN(cin, descriptor)
        self.norm_1 = ADAIN(cout, descriptor)
        self.actvn = act()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_0(self.actvn(self.norm_0(x, z)))
        return self.conv_1(self.actvn(self.norm_1(x, z)))


class ADAINDecoderBlock(nn.Module):
    """Residual upsampling block (transposed convs, doubles H and W), AdaIN before each conv."""

    def __init__(self, cin: int, cout: int, hidden: int, descriptor: int) -> None:
        super().__init__()
        up = {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}
        self.conv_0 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv_1 = nn.ConvTranspose2d(hidden, cout, **up)
        self.conv_s = nn.ConvTranspose2d(cin, cout, **up)
        self.norm_0 = ADAIN(cin, descriptor)
        self.norm_1 = ADAIN(hidden, descriptor)
        self.norm_s = ADAIN(cin, descriptor)
        self.actvn = act()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        skip = self.conv_s(self.actvn(self.norm_s(x, z)))
        dx = self.conv_1(self.actvn(self.norm_1(self.conv_0(self.actvn(self.norm_0(x, z))), z)))
        return skip + dx


def _width(base: int, level: int, cap: int) -> int:
    return min(base * 2 ** level, cap)


class ADAINEncoder(nn.Module):
    """7x7 input conv, then ``layers`` encoder blocks; returns every level's features."""

    def __init__(self, image_nc: int, descriptor: int, base: int, cap: int, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.input_layer = nn.Conv2d(image_nc, base, 7, padding=3)
        for i in range(layers):
            setattr(self, f"encoder{i}", ADAINEncoderBlock(
                _width(base, i, cap), _width(base, i + 1, cap), descriptor))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.input_layer(x)]
        for i in range(self.layers):
            feats.append(getattr(self, f"encoder{i}")(feats[-1], z))
        return feats


class ADAINDecoder(nn.Module):
    """The top ``decoder_layers`` levels back up, concatenating the encoder's skip features."""

    def __init__(self, descriptor: int, base: int, cap: int, encoder_layers: int,
                 decoder_layers: int) -> None:
        super().__init__()
        self.levels = list(range(encoder_layers - decoder_layers, encoder_layers))[::-1]
        for i in self.levels:
            cin = _width(base, i + 1, cap) * (1 if i == encoder_layers - 1 else 2)
            cout = _width(base, i, cap)
            setattr(self, f"decoder{i}", ADAINDecoderBlock(cin, cout, cout, descriptor))
        self.output_nc = 2 * _width(base, self.levels[-1], cap)

    def forward(self, feats: list[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for i in self.levels:
            out = torch.cat([getattr(self, f"decoder{i}")(out, z), feats.pop()], 1)
        return out


class ADAINHourglass(nn.Module):
    def __init__(self, image_nc: int, descriptor: int, base: int, cap: int, encoder_layers: int,
                 decoder_layers: int) -> None:
        super().__init__()
        self.encoder = ADAINEncoder(image_nc, descriptor, base, cap, encoder_layers)
        self.decoder = ADAINDecoder(descriptor, base, cap, encoder_layers, decoder_layers)
        self.output_nc = self.decoder.output_nc

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x, z), z)


class _ConvNormAct(nn.Module):
    """``model`` = Sequential(conv, LayerNorm2d, act[, extra]) (the checkpoint's key layout)."""

    def __init__(self, cin: int, cout: int, kernel: int, extra: nn.Module | None = None) -> None:
        super().__init__()
        parts = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2), LayerNorm2d(cout), act()]
        self.model = nn.Sequential(*parts, *([extra] if extra is not None else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UpBlock2d(_ConvNormAct):
    """Nearest x2 upsampling, then conv 3x3 -> LayerNorm2d -> act."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(F.interpolate(x, scale_factor=2))


class FineADAINResBlock2d(nn.Module):
    """Residual block ``x + AdaIN(conv2(x))``.

    The reference forward also computes ``act(AdaIN(conv1(x)))`` and then overwrites it, so
    ``conv1``/``norm1`` are in the checkpoint but do not change the output; they are kept (for
    strict loading) and skipped (saves a conv).
    """

    def __init__(self, channels: int, descriptor: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = ADAIN(channels, descriptor)
        self.norm2 = ADAIN(channels, descriptor)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(x), z)


class FineADAINResBlocks(nn.Module):
    def __init__(self, num_blocks: int, channels: int, descriptor: int) -> None:
        super().__init__()
        self.num_blocks = num_blocks
        for i in range(num_blocks):
            setattr(self, f"res{i}", FineADAINResBlock2d(channels, descriptor))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_blocks):
            x = getattr(self, f"res{i}")(x, z)
        return x


class FineEncoder(nn.Module):
    """7x7 conv block, then ``layers`` x (conv 3x3 block + 2x2 average pooling)."""

    def __init__(self, image_nc: int, base: int, cap: int, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.first = _ConvNormAct(image_nc, base, 7)
        for i in range(layers):
            setattr(self, f"down{i}", _ConvNormAct(_width(base, i, cap), _width(base, i + 1, cap),
                                                   3, nn.AvgPool2d(2)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.first(x)]
        for i in range(self.layers):
            feats.append(getattr(self, f"down{i}")(feats[-1]))
        return feats


class FineDecoder(nn.Module):
    """Per level from the top: AdaIN residual blocks, upsample, add the projected skip; tanh out."""

    def __init__(self, image_nc: int, descriptor: int, base: int, cap: int, layers: int,
                 num_blocks: int) -> None:
        super().__init__()
        self.layers = layers
        for i in reversed(range(layers)):
            cin, cout = _width(base, i + 1, cap), _width(base, i, cap)
            setattr(self, f"up{i}", UpBlock2d(cin, cout, 3))
            setattr(self, f"res{i}", FineADAINResBlocks(num_blocks, cin, descriptor))
            setattr(self, f"jump{i}", _ConvNormAct(cout, cout, 3))
        self.final = nn.Module()
        self.final.model = nn.Sequential(nn.Conv2d(base, image_nc, 7, padding=3), nn.Tanh())

    def forward(self, feats: list[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for i in reversed(range(self.layers)):
            out = getattr(self, f"up{i}")(getattr(self, f"res{i}")(out, z))
            out = out + getattr(self, f"jump{i}")(feats.pop())
        return self.final.model(out)
