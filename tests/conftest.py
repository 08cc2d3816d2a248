"""Fixtures shared by every test folder: a tiny registered architecture whose output is known.

Fixtures used by one folder only live in that folder's conftest.py; plain helpers and
constants live in tests/support.py.
"""

import os
import shutil
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
def private_cache(tmp_path_factory) -> Path:
    """One temporary cache folder ($COLORIZER_HOME) for the whole session: exports, OpenVINO's
    compiled blobs and downloads never land in the user's cache. Session-wide because the
    compile cache is what makes the suite's many OpenVINO loads cheap. Shipped weights live in
    the package and are found as before; published weights are never in it, so tests that need
    them use local servers. Tests may still point it elsewhere with monkeypatch; subprocesses
    inherit it. Removed at the end: its blobs (about 700 MB) are of no use to a later session,
    and pytest keeps the last three sessions' temp folders."""
    folder = tmp_path_factory.mktemp("colorizer-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLORIZER_HOME", str(folder))
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


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
