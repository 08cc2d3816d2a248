"""Plain helpers and constants shared by the tests (fixtures live in the conftest.py files).

Import them by their full name, ``from tests.support import CONSTANT_AB``: with a conftest.py
in several folders, ``from conftest import ...`` would mean whichever pytest imported last.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from torch import nn

from colorizer.registry import ARCHITECTURES, register_architecture

SHARED = Path(__file__).resolve().parents[2] / "shared"
# The ab that the test-constant architecture (tests/conftest.py) paints everywhere.
CONSTANT_AB = (20.0, -10.0)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is not beside this checkout")
    return path


@contextmanager
def registered_architecture(name: str, cls: type[nn.Module]) -> Iterator[type[nn.Module]]:
    """``cls`` is the architecture ``name`` inside the block, and no longer after it.

    For fixtures: a test architecture exists only while the tests that use it run, and the
    registry is left as the package filled it (``colorizer.registry.ARCHITECTURES``; the tests
    register no catalogue entries or weight readers, so ``MODELS`` and ``WEIGHT_READERS`` are
    untouched).
    """
    register_architecture(name)(cls)
    try:
        yield cls
    finally:
        del ARCHITECTURES[name]
