"""``Making``: the facts about one output (who made it, from what, how), and what they become:
the XMP packet, the C2PA signing step and the ``--record`` sidecar."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from colorizer.provenance import Provenance, file_sha256, weights_sha256, xmp

if TYPE_CHECKING:
    from colorizer.imageio import Metadata

SIDECAR_SUFFIX = ".json"

# The file name of the confidence map beside the output being made (``confidence_beside``).
_CONFIDENCE_MAP: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "confidence_map", default=None
)


@contextlib.contextmanager
def confidence_beside(name: str | None) -> Iterator[None]:
    """Within the block, in this thread, every ``Making`` records that its output's confidence
    map is the file ``name`` beside it (its XMP ``colorizer:ConfidenceMap`` and the sidecar's
    ``confidence_map``); None records none."""
    token = _CONFIDENCE_MAP.set(name)
    try:
        yield
    finally:
        _CONFIDENCE_MAP.reset(token)


@dataclasses.dataclass(frozen=True)
class Making:
    """How one output is made. ``source_xmp``: the source's own XMP packet, kept and extended."""

    version: str
    model: str
    arch: str
    weights: str
    weights_sha256: str
    backend: str
    device: str
    size: int
    provenance: Provenance
    source: str | None = None
    source_sha256: str | None = None
    source_xmp: bytes | None = None
    guidance: dict[str, Any] | None = None
    confidence_map: str | None = None  # the file name of the confidence map beside the output

    @classmethod
    def of(cls, colorizer: Any, source: str | os.PathLike | None = None, guidance=None) -> Making:
        """The making of ``colorizer``'s output from the file ``source`` (None: not a file)."""
        from colorizer.version import __version__

        source_sha256 = source_xmp = None
        if source is not None and Path(source).is_file():
            source_sha256 = file_sha256(source)
            source_xmp = read_xmp(Path(source))
        return cls(
            version=__version__,
            model=colorizer.name,
            arch=colorizer.arch,
            weights=str(colorizer.weights),
            weights_sha256=weights_sha256(colorizer.weights),
            backend=colorizer.backend,
            device=colorizer._device_name,
            size=colorizer.size,
            provenance=getattr(colorizer, "provenance", None) or Provenance(),
            source=None if source is None else str(source),
            source_sha256=source_sha256,
            source_xmp=source_xmp,
            guidance=describe_guidance(guidance),
            confidence_map=_CONFIDENCE_MAP.get(),
        )

    def record(self) -> xmp.Record:
        return xmp.Record(
            self.version,
            self.model,
            self.weights_sha256,
            self.source_sha256,
            confidence_map=self.confidence_map,
        )

    def xmp_packet(self) -> bytes:
        return xmp.build(self.record(), self.source_xmp)

    def metadata(self, base: Metadata) -> Metadata:
        """``base`` with this making's XMP and, with a signing identity, its C2PA signing."""
        return dataclasses.replace(base, xmp=self.xmp_packet(), sign=self.signer())

    def signer(self) -> Callable[[BinaryIO, BinaryIO, Path], None] | None:
        signing = self.provenance.signing
        if signing is None:
            return None
        from colorizer.provenance import credentials

        facts = self.facts()
        return lambda encoded, out, path: credentials.sign(signing, facts, encoded, out, path)

    def facts(self) -> dict[str, Any]:
        """The sidecar's content and the C2PA manifest's colorizer assertion."""
        facts = dataclasses.asdict(self)
        for private in ("provenance", "source_xmp"):
            del facts[private]
        facts["digital_source_type"] = xmp.DIGITAL_SOURCE_TYPE
        return facts

    def recorded(self, written: Path) -> Path:
        """Write ``written``'s sidecar (NAME.EXT.json) when ``--record`` asks; ``written``."""
        if self.provenance.record:
            from colorizer.files import atomic_write

            sidecar = written.with_name(written.name + SIDECAR_SUFFIX)
            with atomic_write(sidecar, "w", encoding="utf-8") as f:
                json.dump({"output": written.name, **self.facts()}, f, indent=2)
                f.write("\n")
        return written


def read_xmp(path: Path) -> bytes | None:
    """The XMP packet of a photo (JPEG, PNG, TIFF, WebP) or an MP4/MOV film, or None."""
    from colorizer.provenance import mp4

    if path.suffix.lower() in mp4.SUFFIXES:
        return mp4.read_xmp(path)
    from PIL import Image

    try:
        with Image.open(path) as im:
            packet = im.info.get("xmp")
            if packet is None and im.format == "TIFF":
                packet = getattr(im, "tag_v2", {}).get(700)
    except Exception:
        return None  # an unreadable source says nothing; reading it reports the error
    if isinstance(packet, str):
        packet = packet.encode()
    return packet if isinstance(packet, bytes) and packet else None


def describe_guidance(guidance) -> dict[str, Any] | None:
    """The guidance as plain JSON values: hints, palette, saturation, images by path."""
    if guidance is None or getattr(guidance, "empty", False):
        return None
    described = {}
    for field in dataclasses.fields(guidance):
        value = getattr(guidance, field.name)
        if value is None or value == () or value is False:
            continue
        described[field.name] = _plain(value)
    return described


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return f"<{type(value).__name__}>"  # an image in memory: not reproducible from a record


def mark_film(path: Path, making: Making) -> None:
    """Put ``making``'s XMP (MP4 and QuickTime) and, with a signing identity, its C2PA
    manifest into the finished film ``path`` (named like the output: the suffix says its type)."""
    from colorizer.provenance import mp4

    if path.suffix.lower() in mp4.SUFFIXES:
        mp4.append_xmp(path, making.xmp_packet())
    signing = making.provenance.signing
    if signing is None:
        return
    from colorizer.files import atomic_write
    from colorizer.provenance import credentials

    with open(path, "rb") as source, atomic_write(path, tag="sign") as out:
        credentials.sign(signing, making.facts(), source, cast(BinaryIO, out), path)
