"""Provenance of outputs (issue 24): what every output says about its making.

* XMP (``provenance.xmp``) in every photo and MP4/MOV film: the IPTC digital source type, the
  tool and its version, the model and the SHA-256 of its weights and of the source file, and for
  lossless photos of the pixels. Always written; no dependency beyond the standard library.
* C2PA Content Credentials (``provenance.credentials``) when a signing identity is configured
  (``--sign-key``/``--sign-cert`` or ``COLORIZER_SIGN_KEY``/``COLORIZER_SIGN_CERT``), with the
  ``provenance`` extra (c2pa-python).
* A JSON sidecar per output (``provenance.making``) with ``--record``.

``Provenance`` holds these settings for a ``Colorizer``; ``colorize inspect`` reads them back
(``provenance.inspect``). Nothing here imports the C2PA SDK until a file is signed or read.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from colorizer.errors import ColorizerError

KEY_ENV = "COLORIZER_SIGN_KEY"
CERT_ENV = "COLORIZER_SIGN_CERT"
INSTALL_HINT = "pip install 'colorizer[provenance]' (or: pip install c2pa-python==0.38.1)"


def require_sdk() -> None:
    """The C2PA SDK is importable, or a one-line error that says how to install it."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        raise ColorizerError(
            f"signing needs the C2PA SDK, which is not installed: {INSTALL_HINT}"
        ) from None


@dataclass(frozen=True)
class Signing:
    """A C2PA signing identity: a PEM private key and its PEM certificate chain (end-entity
    first, then the intermediates, the root optional)."""

    key: Path
    cert: Path

    def check(self) -> None:
        """Fail now, with one line, rather than after colorizing a batch."""
        require_sdk()
        for what, path in (("--sign-key", self.key), ("--sign-cert", self.cert)):
            if not Path(path).is_file():
                raise ColorizerError(f"{what} {path}: no such file")


@dataclass(frozen=True)
class Provenance:
    """What a ``Colorizer`` writes about each output beside the XMP, which it always writes:
    a C2PA manifest signed with ``signing``, and with ``record`` a JSON sidecar."""

    signing: Signing | None = None
    record: bool = False

    @classmethod
    def from_env(cls) -> Provenance:
        """The signing identity of ``COLORIZER_SIGN_KEY``/``COLORIZER_SIGN_CERT``, if both are set
        (how the server and the Ray engine's actors get one)."""
        return cls(signing_from(os.environ.get(KEY_ENV), os.environ.get(CERT_ENV)))


def signing_from(key: str | os.PathLike | None, cert: str | os.PathLike | None) -> Signing | None:
    """A checked ``Signing`` from a key and a certificate, or None when neither is given."""
    if not key and not cert:
        return None
    if not key or not cert:
        missing = "key (--sign-key)" if not key else "certificate (--sign-cert)"
        raise ColorizerError(f"signing needs both a key and a certificate chain: no {missing}")
    signing = Signing(Path(key), Path(cert))
    signing.check()
    return signing


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (films can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(functools.partial(f.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key: a replaced file is hashed again
    return file_sha256(path)


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, computed once per process (130 MB take ~0.1 s)."""
    stat = Path(path).stat()
    return _weights_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
