"""``colorize cache``: list and clear the user cache. (Being written: issue 22.)"""

from __future__ import annotations


def add_cache_parser(commands) -> None:
    """``colorize cache`` (not yet registered)."""
