"""Packages whose names load on first use, so that `colorize --help` imports no heavy library.

``__getattr__ = lazy_attributes(__name__, {"Name": "module", ...})`` in a package's
``__init__`` makes ``package.Name`` import ``package.module`` the first time it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
