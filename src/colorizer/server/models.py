"""The models a server runs: each loaded once, on first use, and shared by every request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from colorizer.errors import ColorizerError
from colorizer.pipeline import DEFAULT_MODEL, Colorizer


class UnknownModel(ColorizerError):
    """A request named a model this server does not have."""


class ModelPool:
    """Registered models by name, loaded lazily; ``preloaded`` adds or replaces instances.

    A ``Colorizer`` is safe to share between threads, so one instance per model serves every
    request. A request for another network size gets a shallow copy that shares the loaded
    network (no reload) and differs only in ``size``.
    """

    def __init__(
        self,
        default: str | None = None,
        *,
        device: str = "auto",
        max_pixels: int | None = None,
        preloaded: Mapping[str, Colorizer] | None = None,
        loader: Callable[..., Colorizer] | None = None,
    ) -> None:
        self.default = default or DEFAULT_MODEL
        self.device = device
        self.max_pixels = max_pixels
        self._loader = loader
        self._loaded: dict[str, Colorizer] = dict(preloaded or {})
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.loads = 0  # models loaded from disk by this pool (for tests and /healthz)

    def names(self) -> list[str]:
        from colorizer.weights import MODELS

        return list(dict.fromkeys([*self._loaded, *MODELS]))

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def get(self, name: str | None = None, size: int | None = None) -> Colorizer:
        """The shared instance for ``name`` (loading it the first time), at ``size`` if given."""
        name = name or self.default
        colorizer = self._loaded.get(name) or self._load(name)
        if size is None or size == colorizer.size:
            return colorizer
        return colorizer.with_size(size)  # shares the network; only the size differs

    def _load(self, name: str) -> Colorizer:
        if name not in self.names():
            raise UnknownModel(
                f"unknown model {name!r}; this server has: {', '.join(self.names())}"
            )
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:  # concurrent first requests wait for one load instead of loading twice
            if name not in self._loaded:
                load = self._loader or Colorizer  # looked up late: tests can count loads
                colorizer = load(name, device=self.device, max_pixels=self.max_pixels)
                self.loads += 1
                self._loaded[name] = colorizer
            return self._loaded[name]
