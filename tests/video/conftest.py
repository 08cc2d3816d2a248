"""Fixtures of the video tests: a tiny registered architecture, its weights, a clip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from colorizer.pipeline import Colorizer
from tests.support import registered_architecture
from tests.video.clips import write_clip


class TextureColour(nn.Module):
    """A fixed random 5x5 conv: colours that follow the image content, as a real model's."""

    input_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 5, padding=2)

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        return torch.tanh(self.conv((l - 50) / 25)) * 60


@pytest.fixture(scope="package", autouse=True)
def texture_architecture():
    """The architecture "test-video-conv" while the tests of this folder run (the CLI tests name
    it without asking for a colorizer), removed after the last of them."""
    with registered_architecture("test-video-conv", TextureColour) as cls:
        yield cls


@pytest.fixture(scope="module")
def texture_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "texture.safetensors"
    save_file(TextureColour().state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def colorizer(texture_architecture, texture_weights) -> Colorizer:
    return Colorizer("test-video-conv", weights=texture_weights, size=32, device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")
