"""The ``colorize`` command as a user runs it: the installed console script, in a subprocess.

The benchmarks never import the CLI module: what they time is the command itself, start-up
included, whatever module it lives in.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path


def colorize(*arguments: str) -> list[str]:
    """The command line ``colorize ARGUMENTS...`` for ``subprocess``.

    The script installed beside this interpreter comes first: a ``PATH`` lookup may find a
    version manager's shim, which adds its own start-up to every timing.
    """
    script = Path(sysconfig.get_path("scripts")) / "colorize"
    found = str(script) if script.exists() else shutil.which("colorize")
    if found is None:
        raise RuntimeError("the colorize command is not installed (pip install -e .)")
    return [found, *arguments]
