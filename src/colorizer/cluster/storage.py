"""Photos at URIs (``s3://bucket/scans``, ``gs://...``, anything pyarrow or fsspec opens).

Local paths never come here: they go through ``colorizer.batch``'s ``find_inputs``/``plan_jobs``
and are read and written in place, exactly as the local engine does. A URI is resolved by
pyarrow's file systems first (S3, GCS, HDFS, ``file://``) and by fsspec for the rest.

A worker copies a photo at a URI into a private temp folder, colorizes that copy with the very
code the local engine runs (``Colorizer.colorize_file``), and uploads the result: an object
store shows an object only once its upload completes, so readers never see half a photo.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from colorizer.errors import ColorizerError

_SEPARATOR = "://"


@dataclass(frozen=True)
class UriJob:
    """One photo to colorize: ``src`` and ``dst`` are URIs (or a local ``dst`` folder's path)."""

    src: str
    dst: str


def is_uri(name: str | None) -> bool:
    return name is not None and _SEPARATOR in name


def filesystem(uri: str) -> tuple[Any, str]:
    """(pyarrow file system, path inside it) for ``uri``, or for a local path."""
    import pyarrow.fs as pafs

    if not is_uri(uri):
        return pafs.LocalFileSystem(), str(Path(uri).resolve())
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pafs.ArrowInvalid, ValueError) as pyarrow_error:  # a scheme only fsspec knows
        try:
            import fsspec
        except ImportError:
            raise ColorizerError(f"{uri}: cannot open ({pyarrow_error})") from None
        try:
            fs, path = fsspec.core.url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise ColorizerError(f"{uri}: no file system opens this URI ({exc})") from exc
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def _scheme(uri: str) -> str:
    return uri.split(_SEPARATOR, 1)[0] + _SEPARATOR if is_uri(uri) else ""


def _join(base: str, relative: str) -> str:
    return base.rstrip("/") + "/" + relative


def plan_uri_jobs(
    patterns: list[str], output: str | None, recursive: bool, suffix: str, mark: str
) -> tuple[list[UriJob], list[str]]:
    """Photos under ``patterns`` (files or folders; no globs) and where each goes: ``output``
    + the path below its folder, suffix replaced, or beside it with ``mark`` added to its
    name, as ``colorizer.batch.plan_jobs`` lays out local files. Also the patterns that gave
    none."""
    jobs: list[UriJob] = []
    unmatched = []
    for pattern in patterns:
        found = list(_photos(pattern, recursive, mark))
        unmatched += [] if found else [pattern]
        for src, relative in found:
            if output is None:
                name = PurePosixPath(src.rsplit("/", 1)[-1])
                dst = src.rsplit("/", 1)[0] + "/" + f"{name.stem}{mark}{suffix}"
            else:
                dst = _join(output, str(PurePosixPath(relative).with_suffix(suffix)))
            jobs.append(UriJob(src, dst))
    return list(dict.fromkeys(jobs)), unmatched


def _photos(pattern: str, recursive: bool, mark: str) -> Iterator[tuple[str, str]]:
    """(URI, path below the pattern's folder) of each photo ``pattern`` names."""
    import pyarrow.fs as pafs

    from colorizer.imageio import IMAGE_SUFFIXES

    fs, root = filesystem(pattern)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        entries, root = [info], root.rsplit("/", 1)[0]
    elif info.type == pafs.FileType.Directory:
        entries = fs.get_file_info(pafs.FileSelector(root, recursive=recursive))
    else:
        return
    scheme = _scheme(pattern)
    for entry in sorted(entries, key=lambda e: e.path):
        name = PurePosixPath(entry.path)
        photo = name.suffix.lower() in IMAGE_SUFFIXES and not name.stem.endswith(mark)
        if entry.type == pafs.FileType.File and photo:
            yield scheme + entry.path, str(name.relative_to(root.rstrip("/") or "/"))


def modified(location: str) -> float | None:
    """When ``location`` (a path or URI) was last written, in seconds since the epoch; None
    when it does not exist."""
    import pyarrow.fs as pafs

    fs, path = filesystem(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        return None
    return info.mtime.timestamp() if info.mtime is not None else 0.0


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local file with ``uri``'s content (and name), removed after the block."""
    fs, path = filesystem(uri)
    with _temp_folder() as folder:
        copy = folder / PurePosixPath(path).name
        try:
            with fs.open_input_stream(path) as source, copy.open("wb") as target:
                shutil.copyfileobj(source, target)
        except FileNotFoundError:
            raise ColorizerError(f"cannot read image '{uri}': no such file") from None
        except OSError as exc:
            raise ColorizerError(f"cannot read image '{uri}': {exc}") from exc
        yield copy


@contextlib.contextmanager
def upload_on_success(uri: str) -> Iterator[Path]:
    """A local path to write ``uri``'s new content to; uploaded when the block ends cleanly."""
    fs, path = filesystem(uri)
    with _temp_folder() as folder:
        result = folder / PurePosixPath(path).name
        yield result
        parent = path.rsplit("/", 1)[0]
        try:
            fs.create_dir(parent, recursive=True)
            with result.open("rb") as source, fs.open_output_stream(path) as target:
                shutil.copyfileobj(source, target)
        except OSError as exc:
            raise ColorizerError(f"cannot write '{uri}': {exc}") from exc


@contextlib.contextmanager
def _temp_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="colorize-") as folder:
        yield Path(folder)
