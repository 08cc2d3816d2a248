"""Guided colorization: point hints, global hints, scribbles, a reference photo, propagation.

``Colorizer.colorize(image, guidance=Guidance(...))`` applies it; ``colorizer.guidance.core``
explains how each kind of guidance is used.

The names are loaded on first use, so ``colorize --help`` (which reads
``colorizer.guidance.cli``) does not load PyTorch or SciPy.
"""

from __future__ import annotations

from colorizer.lazy import lazy_attributes

_WHERE = {
    "Guidance": "core",
    "PointHint": "hints",
    "encode_hints": "hints",
    "parse_hint_arg": "hints",
    "parse_hints": "hints",
    "read_hints_file": "hints",
    "sample_hints": "hints",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_attributes(__name__, _WHERE)
