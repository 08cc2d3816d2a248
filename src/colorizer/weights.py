"""Weights: build a registered architecture, read weight files, the download cache.

Shipped models live in ``colorizer/data/``; published ones are downloaded by ``pull`` into
``cache_dir() / "models"`` (``$COLORIZER_HOME`` or the platform cache directory), verified by
size and full sha256, and re-verified by ``ensure_weights`` before each use. ``ensure_weights``
never touches the network. Importing this module imports ``colorizer.models``, which fills the
registry's tables (``colorizer.registry``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from torch import nn

import colorizer.models  # noqa: F401  (fills the registry's tables)
from colorizer import registry
from colorizer.errors import DownloadError, WeightsError
from colorizer.files import atomic_write, cache_dir
from colorizer.registry import MODELS, ModelSpec, architecture, model_spec

__all__ = [
    "MODELS",
    "ModelSpec",
    "architecture",
    "cache_dir",
    "cached_path",
    "create_model",
    "ensure_weights",
    "load_state_dict_file",
    "model_spec",
    "model_table",
    "pull",
    "verify_file",
]

log = logging.getLogger(__name__)

# Seconds a connect or a single read may stall before a download is abandoned.
DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 1 << 20


def load_state_dict_file(path: str | Path, arch: str) -> dict:
    """Read a weights file (.pth/.pt, .safetensors, or a registered format such as eccv16's
    .caffemodel) into a state dict."""
    return read_weights_file(path, arch)[0]


def read_weights_file(path: str | Path, arch: str) -> tuple[dict, dict]:
    """A weights file's state dict, and the constructor arguments of ``arch`` it records: files
    made by ``colorize export`` and ``colorize train`` checkpoints record theirs (e.g. colornet-v2's
    ``variant``); other files, or files of another architecture, give ``{}``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:  # one open: the header and the tensors
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            recorded = metadata.get("arch") == arch and metadata.get("kwargs")
            return tensors, json.loads(recorded) if recorded else {}
        if suffix in registry.WEIGHT_READERS:  # another format, e.g. eccv16's .caffemodel
            archs, reader = registry.WEIGHT_READERS[suffix]
            if arch not in archs:
                raise WeightsError(f"{path}: a {suffix} can only be loaded into {', '.join(archs)}")
            return reader(path), {}
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as exc:  # any parse failure means a bad file
        raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    kwargs: dict = {}
    # Our training checkpoints keep the weights under "model" next to optimizer state.
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        config = state.get("config")
        if state.get("arch") == arch and isinstance(config, Mapping):
            kwargs = dict(config.get("model_kwargs") or {})
        state = state["model"]
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: does not contain a state dict (found {type(state).__name__})")
    return dict(state), kwargs


def create_model(arch: str, weights: str | Path | None = None, **kwargs) -> nn.Module:
    """Build architecture ``arch``; with ``weights``, load them strictly. The constructor
    arguments a weights file records are used unless ``kwargs`` gives others. Returned in eval
    mode."""
    if weights is None:
        return architecture(arch)(**kwargs).eval()
    state, recorded = read_weights_file(weights, arch)
    model = architecture(arch)(**(recorded | kwargs))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{weights}: weights do not fit architecture {arch!r}: {state_dict_mismatch(exc)}"
        ) from exc
    return model.eval()


def state_dict_mismatch(error: RuntimeError, most: int = 3) -> str:
    """``load_state_dict``'s error, shortened to its first ``most`` findings (a mismatched file
    can list thousands of keys)."""
    findings = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    findings = [f[:300] + " ..." if len(f) > 300 else f for f in findings]
    more = f" (and {len(findings) - most} more)" if len(findings) > most else ""
    return "; ".join(findings[:most]) + more


def cached_path(spec: ModelSpec) -> Path:
    """Where the downloaded weights of ``spec`` live: ``<cache>/models/<filename>``."""
    return cache_dir() / "models" / spec.filename


def _package_data_dir() -> Path:
    return Path(__file__).parent / "data"


def packaged_path(spec: ModelSpec) -> Path:
    """Where the weights of a shipped (``packaged``) model live inside the package."""
    return _package_data_dir() / spec.filename


def human_size(n: int | None) -> str:
    """``128_976_165`` -> ``"123.0 MiB"``; ``None`` -> ``"?"``."""
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _file_facts(spec: ModelSpec) -> str:
    size = "unknown" if spec.size_bytes is None else f"{spec.size_bytes} bytes"
    return (
        f"  file:   {spec.filename}\n"
        f"  url:    {spec.url or '(none published)'}\n"
        f"  sha256: {spec.sha256 or '(unknown)'}\n"
        f"  size:   {size} ({human_size(spec.size_bytes)})"
    )


def manual_install_hint(spec: ModelSpec) -> str:
    """How to get the weights of ``spec`` by hand: the facts, the exact path, the commands."""
    return (
        f"{_file_facts(spec)}\n"
        f"To install it by hand, download the file elsewhere, check its sha256, and place it at\n"
        f"  {cached_path(spec)}\n"
        f"or download it with `colorize models pull {spec.name}`,\n"
        f"or pass the file directly with `--weights PATH`."
    )


def verify_file(path: str | Path, spec: ModelSpec) -> None:
    """Check size and full sha256 of ``path`` against ``spec``; raise ``WeightsError`` if off."""
    path = Path(path)
    try:
        actual_size = path.stat().st_size
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read weights file ({exc})") from exc
    if spec.size_bytes is not None and actual_size != spec.size_bytes:
        raise WeightsError(
            f"{path}: wrong size for model {spec.name!r}: expected {spec.size_bytes} bytes, "
            f"actual {actual_size} bytes (corrupt or incomplete download)"
        )
    if spec.sha256 is None:
        return
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read weights file ({exc})") from exc
    actual = digest.hexdigest()
    if actual != spec.sha256.lower():
        raise WeightsError(
            f"{path}: sha256 mismatch for model {spec.name!r}: expected {spec.sha256}, "
            f"actual {actual} (corrupt file or a different release)"
        )


def ensure_weights(name: str) -> Path:
    """The verified local weights file of model ``name``; never touches the network."""
    spec = model_spec(name)
    if spec.packaged:
        path = packaged_path(spec)
        if not path.is_file():
            raise WeightsError(
                f"{path}: weights of shipped model {name!r} are missing from the installed "
                f"package; reinstall colorizer"
            )
        verify_file(path, spec)
        return path
    path = cached_path(spec)
    if not path.is_file():
        raise WeightsError(
            f"weights of model {name!r} are not downloaded (looked for {path}).\n"
            f"{manual_install_hint(spec)}"
        )
    try:
        verify_file(path, spec)
    except WeightsError as exc:
        raise WeightsError(
            f"{exc}\nDelete it and download again with `colorize models pull {name}`.\n"
            f"{manual_install_hint(spec)}"
        ) from None
    return path


def _progress_bar(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
    )


def _download_error(spec: ModelSpec, reason: str) -> DownloadError:
    return DownloadError(
        f"cannot download weights of model {spec.name!r} from {spec.url}: {reason}\n"
        f"{manual_install_hint(spec)}"
    )


def pull(name: str, *, progress: bool = True, force: bool = False) -> Path:
    """Download the weights of model ``name`` into the cache (verified, atomic); return the path.

    A cached file that verifies is returned without any network access unless ``force``.
    Shipped models are never downloaded. On any failure (network, HTTP error, truncated body,
    hash mismatch, Ctrl-C) no partial file is left behind.
    """
    spec = model_spec(name)
    if spec.packaged:
        return ensure_weights(name)
    dest = cached_path(spec)
    if dest.is_file() and not force:
        try:
            verify_file(dest, spec)
        except WeightsError as exc:
            log.warning("%s; downloading it again", exc)
        else:
            return dest
    if not spec.url:
        raise DownloadError(
            f"model {name!r} has no download URL; its weights must be placed by hand.\n"
            f"{manual_install_hint(spec)}"
        )

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _download_error(spec, f"cannot create cache directory {dest.parent}: {exc}") from exc

    # Ctrl-C included: never leave a partial file behind.
    with atomic_write(dest) as out:
        received, actual = _stream(spec, out, progress)
        if spec.size_bytes is not None and received != spec.size_bytes:
            raise _download_error(
                spec,
                f"wrong size: expected {spec.size_bytes} bytes, got {received} bytes "
                f"(sha256 expected {spec.sha256}, actual {actual})",
            )
        if spec.sha256 is not None and actual != spec.sha256.lower():
            raise _download_error(spec, f"sha256 mismatch: expected {spec.sha256}, actual {actual}")
    return dest


def _stream(spec: ModelSpec, out, progress: bool) -> tuple[int, str]:
    """Copy ``spec.url`` into ``out`` while hashing; return (bytes received, sha256 hex)."""
    import http.client
    import urllib.error
    import urllib.request

    from colorizer.version import __version__

    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(
            str(spec.url), headers={"User-Agent": f"colorizer/{__version__}"}
        )
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            length_header = response.headers.get("Content-Length")
            expected_length = int(length_header) if length_header else None
            with _progress_bar(expected_length or spec.size_bytes, spec.filename, progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise _download_error(spec, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _download_error(spec, f"{exc.reason} (offline or broken link?)") from exc
    except TimeoutError as exc:
        raise _download_error(
            spec, f"timed out: no data for {DOWNLOAD_TIMEOUT:g} s after {received} bytes"
        ) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _download_error(spec, f"{type(exc).__name__}: {exc}") from exc
    # http.client does not raise when the server closes the connection early: check here.
    if expected_length is not None and received != expected_length:
        raise _download_error(
            spec, f"connection closed after {received} of {expected_length} bytes"
        )
    return received, digest.hexdigest()


def model_table() -> list[dict]:
    """One row per registered model for ``colorize models``.

    Keys: name, description, arch, size (human readable), license, status ("packaged",
    "cached", "not downloaded" or "corrupt" when the cached file has the wrong size; the hash is
    not checked here, for speed), path (where the file lives or would live).
    """
    rows = []
    for spec in registry.MODELS.values():
        if spec.packaged:
            status, path = "packaged", packaged_path(spec)
        else:
            path = cached_path(spec)
            try:
                actual = path.stat().st_size if path.is_file() else None
            except OSError:
                actual = None
            if actual is None:
                status = "not downloaded"
            elif spec.size_bytes is not None and actual != spec.size_bytes:
                status = "corrupt"
            else:
                status = "cached"
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "arch": spec.arch,
                "size": human_size(spec.size_bytes),
                "license": spec.license,
                "status": status,
                "path": str(path),
            }
        )
    return rows
