"""Shared fixtures: a tiny registered architecture whose output is known exactly."""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from colorizer.registry import ARCHITECTURES, register_architecture

# Colorizers run on PyTorch unless a test asks for a backend (tests/test_runtime.py): the
# fixture models are checked against PyTorch, and nothing is exported to the user's cache.
# Set here, before any fixture builds a colorizer; subprocesses inherit it.
os.environ["COLORIZER_BACKEND"] = "torch"

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONSTANT_AB = (20.0, -10.0)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is not beside this checkout")
    return path


if "test-constant" not in ARCHITECTURES:

    @register_architecture("test-constant")
    class ConstantColour(nn.Module):
        """A 1x1 conv whose trained weights make ab constant: the expected output is exact."""

        input_multiple = 8

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)

        def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
            return self.conv((l - 50) / 100) * 110


@pytest.fixture(scope="session")
def constant_weights(tmp_path_factory) -> Path:
    """Weights for test-constant that give ab = CONSTANT_AB everywhere."""
    path = tmp_path_factory.mktemp("weights") / "constant.safetensors"
    state = {
        "conv.weight": torch.zeros(2, 1, 1, 1),
        "conv.bias": torch.tensor(CONSTANT_AB) / 110,
    }
    save_file(state, str(path))
    return path


@pytest.fixture(scope="session")
def constant(constant_weights):
    """A colorizer of test-constant at side 64 on the CPU, shared (colorizers are read-only)."""
    from colorizer.pipeline import Colorizer

    return Colorizer("test-constant", weights=constant_weights, size=64, device="cpu")
