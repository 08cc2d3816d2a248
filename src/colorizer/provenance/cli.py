"""Command-line options for provenance: signing and records on ``colorize image|video``, and
``colorize inspect FILE``. (Being written: issue 24.)"""

from __future__ import annotations

import argparse


def add_provenance_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that ``colorize image`` and ``colorize video`` share (none yet)."""


def add_inspect_parser(commands) -> None:
    """``colorize inspect`` (not yet registered)."""
