"""The user cache: what is in it, how big it is, clearing it, and keeping it bounded.

Everything colorizer caches lives under ``cache_dir()`` (``$COLORIZER_HOME`` or the platform
cache folder), in three kinds of entries:

* ``weights``: published weights downloaded by ``colorize models pull`` (``models/``). Never
  evicted: they are slow to fetch again and are needed offline. Only ``clear`` removes them.
* ``export``: a model's network exported as ONNX with its JSON record (``onnx/<key>.onnx`` and
  ``.json``), made on first use with OpenVINO.
* ``blob``: a network compiled by OpenVINO for one input shape (``onnx/openvino/*.blob``),
  which makes the next process's compile cheap.

Exports and blobs are remade on demand, so they are bounded: after each export or compile,
``trim`` removes the least recently used until they total at most ``limit()`` bytes
(``$COLORIZER_CACHE_LIMIT``, default 1 GiB; ``0`` keeps only what is in use). "Used" is the later
of a file's access and modification times; an export's record is touched each time it is used.

Removal is safe beside running processes: only plain files and links inside the cache folder are
unlinked (a link is removed, never followed), only in colorizer's own folders (``models/``,
``onnx/``: the cache folder may hold other files), folders are left in place (a writer may be
about to create a file in one), temp files are left to their writers unless the writer is dead
(see ``colorizer.files``), and entries used in the last ``GRACE`` seconds are never evicted.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from colorizer.errors import ColorizerError
from colorizer.files import _LEFTOVER, cache_dir, remove_leftovers

KINDS = ("weights", "export", "blob")
COMPILED = ("export", "blob")  # remade on demand: bounded and evicted
LIMIT_ENV = "COLORIZER_CACHE_LIMIT"
DEFAULT_LIMIT = "1G"
GRACE = 60.0  # seconds: an entry used this recently may be in use by another process
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class Entry:
    """One cache entry: its main file, the files that make it up, its kind, bytes, last use."""

    path: Path
    kind: str
    size: int
    used: float  # seconds since the epoch
    files: tuple[Path, ...] = field(default=())


def blob_dir() -> Path:
    """Where OpenVINO keeps its compiled networks (its ``CACHE_DIR``)."""
    return cache_dir() / "onnx" / "openvino"


def parse_size(text: str) -> int:
    """``"500M"`` -> 524288000: plain bytes, or K, M, G, T (powers of 1024), ``B`` optional."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ColorizerError(f"{LIMIT_ENV}={text!r} is not a size such as 500M or 2G")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def limit() -> int:
    """The most bytes exports and blobs may take together."""
    return parse_size(os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT)


def human_size(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# -- listing -----------------------------------------------------------------------------------


def _files(folder: Path, recursive: bool) -> Iterator[os.DirEntry]:
    """Plain files and links in ``folder`` (below it, with ``recursive``), never through a link,
    less the temp files of writers (``colorizer.files``: live ones are being written, dead ones
    are removed as leftovers)."""
    try:
        scan = list(os.scandir(folder))
    except OSError:  # absent, or removed while we look
        return
    for item in scan:
        if item.is_dir(follow_symlinks=False):
            if recursive:
                yield from _files(Path(item.path), recursive)
        elif not _LEFTOVER.fullmatch(item.name):
            yield item


def _facts(item: os.DirEntry) -> tuple[int, float] | None:
    try:
        facts = item.stat(follow_symlinks=False)
    except OSError:  # removed while we look
        return None
    return facts.st_size, max(facts.st_atime, facts.st_mtime)


def _root(root: Path | None) -> Path:
    return Path(os.path.abspath(root or cache_dir()))


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of the cache, least recently used first. Only colorizer's own folders are
    looked at (``models/``, ``onnx/``): the cache folder may be shared with other files. An
    export's graph and record are one entry."""
    root = _root(root)
    found = []
    for item in _files(root / "models", recursive=True):
        if (facts := _facts(item)) is not None:
            found.append(Entry(Path(item.path), "weights", *facts, (Path(item.path),)))
    for item in _files(root / "onnx" / "openvino", recursive=True):
        if (facts := _facts(item)) is not None:
            found.append(Entry(Path(item.path), "blob", *facts, (Path(item.path),)))
    exports: dict[Path, list[tuple[Path, int, float]]] = {}
    for item in _files(root / "onnx", recursive=False):
        path = Path(item.path)
        if path.suffix in (".onnx", ".json") and (facts := _facts(item)) is not None:
            exports.setdefault(path.with_suffix(".onnx"), []).append((path, *facts))
    for graph, parts in exports.items():
        # The record first: once it is gone, no process takes the graph for a valid export.
        files = tuple(sorted((p for p, _, _ in parts), key=lambda p: p.suffix != ".json"))
        size, used = sum(s for _, s, _ in parts), max(u for _, _, u in parts)
        found.append(Entry(graph, "export", size, used, files))
    return sorted(found, key=lambda e: e.used)


def total(found: Iterable[Entry], kinds: Iterable[str] = KINDS) -> int:
    kinds = set(kinds)
    return sum(e.size for e in found if e.kind in kinds)


# -- removing ----------------------------------------------------------------------------------


def _remove(entry: Entry, root: Path) -> bool:
    """Unlink the files of ``entry``, each only if it lies inside ``root``; whether all went."""
    done = True
    for path in entry.files:
        if not _inside(path, root):
            done = False
            continue
        try:
            path.unlink()  # a link is removed, not followed
        except FileNotFoundError:
            pass  # removed by another process meanwhile: the result we want
        except OSError:
            done = False
    return done


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``'s folder (links resolved) lies inside ``root``: the name itself is
    never resolved, so a link inside the cache counts as inside and is what gets removed."""
    try:
        return path.parent.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def clear(kinds: Iterable[str] = KINDS, root: Path | None = None) -> tuple[int, int]:
    """Remove every entry of ``kinds`` (and the leftovers of killed writers); returns
    (entries removed, bytes freed)."""
    root = _root(root)
    kinds = set(kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise ColorizerError(
            f"unknown cache kind {sorted(unknown)[0]!r}; known: {', '.join(KINDS)}"
        )
    removed = freed = 0
    for entry in entries(root):
        if entry.kind in kinds and _remove(entry, root):
            removed, freed = removed + 1, freed + entry.size
    _remove_leftovers(root)
    return removed, freed


def _remove_leftovers(root: Path) -> None:
    for folder in (root / "models", root / "onnx", blob_dir()):
        remove_leftovers(folder)


def trim(
    keep: Iterable[str | Path] = (), max_bytes: int | None = None, root: Path | None = None
) -> list[Entry]:
    """Evict the least recently used exports and blobs until they total at most ``max_bytes``
    (default ``limit()``); entries in ``keep`` (by any of their files) and entries used in the
    last ``GRACE`` seconds stay. Returns what was removed. Never raises for a file it cannot
    remove: a cache that stays too big is better than a failed colorizing run."""
    root = _root(root)
    budget = limit() if max_bytes is None else max_bytes
    kept = {Path(os.path.abspath(p)) for p in keep}
    compiled = [e for e in entries(root) if e.kind in COMPILED]
    excess = total(compiled) - budget
    recent = time.time() - GRACE
    removed = []
    for entry in compiled:  # least recently used first
        if excess <= 0:
            break
        if kept.intersection(entry.files) or entry.used >= recent:
            continue
        if _remove(entry, root):
            removed.append(entry)
            excess -= entry.size
    _remove_leftovers(root)
    return removed


def touch(path: Path) -> None:
    """Mark ``path`` used now (its modification time), for LRU eviction."""
    with contextlib.suppress(OSError):
        os.utime(path)
