"""Atomic file writes: readers see the old file or the whole new one, never half of it.

The one home for the idea. The new content goes to a temp file beside the destination (same
directory, so ``os.replace`` is an atomic rename), named ``.<name>.<random>.tmp<suffix>`` (the
destination's suffix kept last, for writers that pick a format from it), is flushed to disk
(``fsync``) and only then renamed over the destination. On any failure, Ctrl-C included, the
temp file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temp_path(path: str | Path) -> Path:
    """A fresh temp name beside ``path`` (see the module docstring)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def commit(temp: Path, path: str | Path) -> None:
    """Flush ``temp`` to disk and rename it over ``path``."""
    _fsync(temp)
    os.replace(temp, path)


def discard(temp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temp)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path to write ``path``'s new content to (by any library); renamed on success."""
    temp = temp_path(path)
    try:
        yield temp
        commit(temp, path)
    except BaseException:
        discard(temp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` atomically when the block ends cleanly.

    The file is created with mode 0o666 less the umask, as any new file (``mkstemp`` would force
    0o600). An error opening it names ``path``, not the temp name.
    """
    path = Path(path)
    temp = temp_path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(temp, flags, 0o666)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        discard(temp)
        raise
