"""Guided colorization: point hints, global hints, scribbles, a reference photo, propagation.

``Colorizer.colorize(image, guidance=Guidance(...))`` applies it; ``colorizer.guidance.core``
explains how each kind of guidance is used.
"""

from colorizer.guidance.core import Guidance
from colorizer.guidance.hints import (
    PointHint,
    encode_hints,
    parse_hint_arg,
    parse_hints,
    read_hints_file,
    sample_hints,
)

__all__ = [
    "Guidance",
    "PointHint",
    "encode_hints",
    "parse_hint_arg",
    "parse_hints",
    "read_hints_file",
    "sample_hints",
]
