"""Fixtures shared by every test folder: a tiny registered architecture whose output is known.

Fixtures used by one folder only live in that folder's conftest.py; plain helpers and
constants live in tests/support.py.
"""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from tests.support import CONSTANT_AB, registered_architecture

# Colorizers run on PyTorch unless a test asks for a backend (tests/test_runtime.py): the
# fixture models are checked against PyTorch, and nothing is exported to the user's cache.
# Set here, before any fixture builds a colorizer; subprocesses inherit it.
os.environ["COLORIZER_BACKEND"] = "torch"


class ConstantColour(nn.Module):
    """A 1x1 conv whose trained weights make ab constant: the expected output is exact."""

    input_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        return self.conv((l - 50) / 100) * 110


@pytest.fixture(scope="session", autouse=True)
def constant_architecture():
    """The architecture "test-constant", registered for the whole session (tests name it in
    CLI arguments and server settings without asking for a fixture) and removed at its end."""
    with registered_architecture("test-constant", ConstantColour) as cls:
        yield cls


@pytest.fixture(scope="session")
def constant_weights(constant_architecture, tmp_path_factory) -> Path:
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
