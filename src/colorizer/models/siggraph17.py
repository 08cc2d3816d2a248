"""SIGGRAPH17: Zhang et al., "Real-Time User-Guided Image Colorization with Learned Deep Priors".

Submodule names and indices follow ``SIGGRAPHGenerator`` in richzhang/colorization @4f6009e, so
the published ``siggraph17-df00044c.pth`` loads with ``strict=True``. The network regresses ab
directly (tanh x 110) from L plus optional user hints: sparse ab values and a 0/1 mask.
"""

from __future__ import annotations

import torch
from torch import nn

from colorizer.models.eccv16 import AB_NORM, conv_block, normalize_l
from colorizer.registry import ModelSpec, register_architecture, register_models


def _upconv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))


def _shortcut(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1))


@register_architecture("siggraph17")
class SIGGRAPH17(nn.Module):
    """SIGGRAPH17 colorizer: ``forward(l, hint_ab, hint_mask)`` -> ab (N x 2 x H x W).

    ``l`` is raw L (N x 1 x H x W, 0..100); ``hint_ab`` raw ab (N x 2 x H x W), set where
    ``hint_mask`` (N x 1 x H x W) is 1 and 0 elsewhere. Both default to zeros (no hints).
    H and W must be multiples of 8: the decoder adds skip connections taken at 1/1, 1/2 and 1/4.
    """

    accepts_hints = True
    input_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        # The encoder downsamples by slicing in forward(), so every conv here has stride 1.
        self.model1 = nn.Sequential(*conv_block([4, 64, 64]))
        self.model2 = nn.Sequential(*conv_block([64, 128, 128]))
        self.model3 = nn.Sequential(*conv_block([128, 256, 256, 256]))
        self.model4 = nn.Sequential(*conv_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_block([512, 512, 512, 512]))
        # Decoder blocks open with a ReLU on the (upsampled + shortcut) sum.
        self.model8up = _upconv(512, 256)
        self.model8 = nn.Sequential(nn.ReLU(inplace=True), *conv_block([256, 256, 256]))
        self.model9up = _upconv(256, 128)
        self.model9 = nn.Sequential(nn.ReLU(inplace=True), *conv_block([128, 128]))
        self.model10up = _upconv(128, 128)
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2)
        )
        self.model3short8 = _shortcut(256, 256)
        self.model2short9 = _shortcut(128, 128)
        self.model1short10 = _shortcut(64, 128)
        # The 529-way (23 x 23 ab grid) classification head of the training code. forward() never
        # uses it, but the published weights contain it and strict loading needs the keys.
        self.model_class = nn.Sequential(nn.Conv2d(256, 529, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(
        self,
        l: torch.Tensor,  # noqa: E741 - L is the Lab name
        hint_ab: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n, _, h, w = l.shape
        if h % self.input_multiple or w % self.input_multiple:
            raise ValueError(
                f"siggraph17 needs height and width that are multiples of {self.input_multiple}, "
                f"got {h}x{w}: pad or resize the input"
            )
        if hint_ab is None:
            hint_ab = l.new_zeros(n, 2, h, w)
        if hint_mask is None:
            hint_mask = l.new_zeros(n, 1, h, w)
        # The mask goes in as given (0/1, no centring): the published port's convention.
        x = torch.cat((normalize_l(l), hint_ab / AB_NORM, hint_mask), dim=1)
        conv1_2 = self.model1(x)
        conv2_2 = self.model2(conv1_2[:, :, ::2, ::2])
        conv3_3 = self.model3(conv2_2[:, :, ::2, ::2])
        conv4_3 = self.model4(conv3_3[:, :, ::2, ::2])
        conv7_3 = self.model7(self.model6(self.model5(conv4_3)))
        conv8_3 = self.model8(self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv9_3 = self.model9(self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv10_2 = self.model10(self.model10up(conv9_3) + self.model1short10(conv1_2))
        # The published forward repeats the model9 -> model10 -> model_out lines verbatim; the
        # repeat recomputes identical values, so it is done once here.
        return self.model_out(conv10_2) * AB_NORM


# The trained models of this architecture (its catalogue entries).
MODEL_SPECS = register_models(
    ModelSpec(
        name="siggraph17",
        arch="siggraph17",
        description="Zhang et al. SIGGRAPH 2017 user-guided network, automatic mode",
        input_size=256,
        filename="siggraph17-df00044c.pth",
        url="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
        size_bytes=136_787_426,
        sha256="df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66",
        license="BSD-2-Clause",
        source="richzhang/colorization @4f6009e",
    ),
)
