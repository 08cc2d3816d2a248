"""The model registry: two tables that the model files fill, and their look-ups.

This module imports no model file (as timm's ``_registry``): each file under
``colorizer/models/`` registers its architectures and its catalogue entries here when imported,
and ``colorizer.models`` imports them all. Code that builds or loads a model imports
``colorizer.weights``, which imports ``colorizer.models`` first, so the tables are full.

* ``ARCHITECTURES``: name -> ``nn.Module`` class, filled by ``@register_architecture``. Every
  architecture follows one contract: ``forward(l)`` takes L in CIE-Lab units (N x 1 x H x W,
  float32, 0..100) and returns ab in Lab units (N x 2 x H x W). Architectures that predict a
  distribution over ab bins also offer ``distribution(l)``; those that take user hints accept
  ``forward(l, hint_ab, hint_mask)``.
* ``MODELS``: name -> ``ModelSpec``, a trained model: which architecture, where its weights come
  from (URL, size, full sha256) and under which licence; filled by ``register_models`` in the
  architecture's own file, in the order ``colorizer.models`` imports them (``colorize models``
  lists them so).
* ``WEIGHT_READERS``: file suffix -> (architectures, reader) for weight formats other than
  PyTorch's and safetensors (ECCV16's Caffe release, registered by ``colorizer.models.caffe``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorizer.errors import WeightsError

if TYPE_CHECKING:
    from torch import nn

ARCHITECTURES: dict[str, type[nn.Module]] = {}


def register_architecture(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make an ``nn.Module`` available to ``create_model`` under ``name``."""

    def decorate(cls: Any) -> Any:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        cls.arch_name = name
        ARCHITECTURES[name] = cls
        return cls

    return decorate


@dataclass(frozen=True)
class ModelSpec:
    """A trained model that ``Colorizer(name)`` can run."""

    name: str
    arch: str
    description: str
    input_size: int
    filename: str
    url: str | None
    size_bytes: int | None
    sha256: str | None
    license: str
    source: str
    notes: str = ""
    # Shipped models live inside the package and need no download.
    packaged: bool = False
    # The model that takes over when the user gives point hints (one with a hint input).
    hint_model: str | None = None
    # Whether a network with a hint input is given the user's point hints (then corrected
    # towards them), or only corrects its automatic colours towards them, as a model without one
    # does (colorizer.guidance.core): the one that measures better for the model's weights.
    native_hints: bool = True
    # Whether the network also colours the mirror image and the two are averaged (test-time
    # augmentation): two network passes a photo, for colours that do not hang on one view's
    # noise. Set where it measured better on the model's validation split.
    mirror_average: bool = False


MODELS: dict[str, ModelSpec] = {}


def register_models(*specs: ModelSpec) -> tuple[ModelSpec, ...]:
    """Add catalogue entries (a model file's ``default_cfgs``); returns them."""
    for spec in specs:
        if spec.name in MODELS:
            raise ValueError(f"model {spec.name!r} is registered twice")
        MODELS[spec.name] = spec
    return specs


StateReader = Callable[[Path], dict]
WEIGHT_READERS: dict[str, tuple[tuple[str, ...], StateReader]] = {}


def register_weights_reader(suffix: str, archs: tuple[str, ...], reader: StateReader) -> None:
    """Read files ending in ``suffix`` (lower case, with the dot) with ``reader``, for ``archs``."""
    WEIGHT_READERS[suffix] = (archs, reader)


def architecture(name: str) -> type[nn.Module]:
    """The registered class ``name`` (import ``colorizer.weights`` or ``colorizer.models``
    first: this module imports no model file)."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise WeightsError(f"unknown architecture {name!r}; known: {known}") from None


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise WeightsError(
            f"unknown model {name!r}; known models: {known} (see `colorize models`)"
        ) from None
