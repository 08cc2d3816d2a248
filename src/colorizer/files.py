"""Atomic file writes: readers see the old file or the whole new one, never half of it.

The one home for the idea. The new content goes to a temp file beside the destination (same
directory, so ``os.replace`` is an atomic rename), named ``.<name>.<pid>-<random>.tmp<suffix>`` (the
destination's suffix kept last, for writers that pick a format from it), is flushed to disk
(``fsync``) and only then renamed over the destination. On any failure, Ctrl-C included, the
temp file is removed and the destination is untouched.

Two parameters serve writers whose temp files must be told apart: ``tag`` replaces ``tmp`` in
the name (the video work folder's files are ``partial``), and ``folder`` puts the temp file in
another directory on the same file system (a film is remuxed inside its work folder, so a killed
run leaves nothing beside the output). Writers that cannot use a ``with`` block (a segment
encoded frame by frame) call ``temp_path``, ``commit`` and ``discard`` themselves.

A process killed with SIGKILL cannot remove its temp file; ``remove_leftovers(folder)`` deletes
those whose writer (the pid in the name) is no longer running on this machine, so a rerun
cleans up after the run it replaces.

``cache_dir()`` is the root of everything colorizer caches (weights, exported networks).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temp_path(path: str | Path, *, tag: str = "tmp", folder: str | Path | None = None) -> Path:
    """A fresh temp name for ``path``: ``.<name>.<random>.<tag><suffix>`` beside it, or in
    ``folder`` (which must be on the same file system) when given."""
    path = Path(path)
    if not tag or "/" in tag or os.sep in tag or tag.startswith("."):
        raise ValueError(f"tag must be a plain name part, got {tag!r}")
    name = f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.{tag}{path.suffix}"
    return Path(folder) / name if folder is not None else path.with_name(name)


_LEFTOVER = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.[^./]+(\.[^./]*)?")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete the temp files in ``folder`` left by writers that are no longer running (killed
    mid-write); returns them. Temp files of live writers are left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _LEFTOVER.fullmatch(entry.name)
            if match and entry.is_file() and not _running(int(match[1])):
                discard(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


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
def atomic_path(
    path: str | Path, *, tag: str = "tmp", folder: str | Path | None = None
) -> Iterator[Path]:
    """A temp path to write ``path``'s new content to (by any library); flushed and renamed
    over ``path`` when the block ends cleanly, removed otherwise. ``tag``, ``folder``: see
    ``temp_path``."""
    temp = temp_path(path, tag=tag, folder=folder)
    try:
        yield temp
        commit(temp, path)
    except BaseException:
        discard(temp)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | Path,
    mode: str = "wb",
    *,
    tag: str = "tmp",
    folder: str | Path | None = None,
    **kwargs: Any,
) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` atomically when the block ends cleanly.

    ``mode`` and ``kwargs`` (``newline=``, ``encoding=``) are ``open``'s; ``tag``, ``folder``: see
    ``temp_path``. The file is created with mode 0o666 less the umask, as any new file
    (``mkstemp`` would force 0o600). An error opening it names ``path``, not the temp name.
    """
    path = Path(path)
    temp = temp_path(path, tag=tag, folder=folder)
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


def cache_dir() -> Path:
    """Root of colorizer's cache: ``$COLORIZER_HOME`` if set, else the platform cache dir."""
    home = os.environ.get("COLORIZER_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("colorizer"))
