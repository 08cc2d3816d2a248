"""``colorize inspect FILE``: what a file says about its making, and whether it still holds.

Exit codes, for scripts:
  0  provenance found and nothing contradicts it (XMP record; a valid C2PA manifest if any;
     the pixels match their recorded SHA-256 where one is recorded)
  1  no provenance: neither an XMP digital source type nor a C2PA manifest
  2  error: the file cannot be read
  3  tampered: the pixels differ from the recorded SHA-256, or the C2PA manifest does not
     validate (a changed pixel or byte gives assertion.dataHash.mismatch)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorizer.errors import ColorizerError
from colorizer.provenance import xmp
from colorizer.provenance.credentials import UNTRUSTED  # the SDK itself is imported on use
from colorizer.provenance.making import read_xmp

VERIFIED, NO_PROVENANCE, ERROR, TAMPERED = 0, 1, 2, 3

# The pixel check holds for lossless outputs only: JPEG and WebP decoders may differ by a level.
_PIXEL_SUFFIXES = {".png", ".tif", ".tiff"}


@dataclass
class Inspection:
    path: Path
    record: dict[str, str] = field(default_factory=dict)  # xmp.parse of the file's XMP
    pixels: str = "not recorded"  # "match", "differ", "not recorded", "unreadable"
    credentials: Any = None  # credentials.Credentials, or None when there is no manifest
    c2pa_note: str | None = None  # why the manifest could not be looked at

    @property
    def tampered(self) -> bool:
        broken = self.credentials is not None and not self.credentials.valid
        return self.pixels == "differ" or broken

    @property
    def exit_code(self) -> int:
        if self.tampered:
            return TAMPERED
        if "digital_source_type" not in self.record and self.credentials is None:
            return NO_PROVENANCE
        return VERIFIED

    @property
    def confidence_map_found(self) -> bool | None:
        """Whether the confidence map the XMP names is beside the file (None: none named)."""
        name = self.record.get("confidence_map")
        if not name:
            return None
        return Path(name).name == name and (self.path.parent / name).is_file()

    def lines(self) -> list[str]:
        lines = [str(self.path)]
        if self.record:
            lines.append(
                f"  XMP digital source type: {self.record.get('digital_source_type', '-')}"
            )
            lines += [
                f"  XMP {k}: {v}"
                for k, v in self.record.items()
                if k not in ("digital_source_type", "confidence_map")
            ]
            if "confidence_map" in self.record:
                found = "beside it" if self.confidence_map_found else "MISSING from beside it"
                lines.append(f"  confidence map: {self.record['confidence_map']} ({found})")
        else:
            lines.append("  XMP: no provenance record")
        if self.record:
            lines.append(f"  pixels: {_PIXELS[self.pixels]}")
        lines += self._c2pa_lines()
        lines.append(f"  verdict: {_VERDICT[self.exit_code]}")
        return lines

    def _c2pa_lines(self) -> list[str]:
        if self.c2pa_note:
            return [f"  C2PA: {self.c2pa_note}"]
        found = self.credentials
        if found is None:
            return ["  C2PA: no manifest"]
        trust = " (signer not in the trust list: --trust ROOT.pem)" if found.untrusted else ""
        lines = [f"  C2PA: {found.state}{trust}; signed by {found.signer() or 'unknown'}"]
        lines += [f"  C2PA failure: {code}" for code in found.failures if code != UNTRUSTED]
        making = found.making()
        if making:
            lines.append(f"  C2PA model: {making.get('model')} ({making.get('weights_sha256')})")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """What ``colorize inspect --json`` prints and ``POST /v1/inspect`` answers."""
        found = self.credentials
        code = self.exit_code
        return {
            "file": str(self.path),
            "xmp": self.record,
            "pixels": self.pixels,
            "c2pa": None
            if found is None
            else {
                "state": found.state,
                "failures": found.failures,
                "untrusted": found.untrusted,
                "signer": found.signer() or None,
                "manifest": found.manifest,
            },
            "c2pa_note": self.c2pa_note,
            "confidence_map_found": self.confidence_map_found,
            "exit_code": code,
            "verdict": VERDICT_NAMES[code],
            "meaning": _VERDICT[code],
        }


_PIXELS = {
    "match": "match the SHA-256 recorded in the XMP",
    "differ": "DIFFER from the SHA-256 recorded in the XMP (changed after colorizing)",
    "not recorded": "no SHA-256 recorded (JPEG, WebP and films: the C2PA data hash covers them)",
    "unreadable": "cannot be decoded to check them",
}
_VERDICT = {
    VERIFIED: "provenance recorded and intact",
    NO_PROVENANCE: "no provenance recorded",
    TAMPERED: "TAMPERED: the file changed after its provenance was recorded",
}
# The verdict of each exit code in one word or two, for JSON readers (``verdict``).
VERDICT_NAMES = {VERIFIED: "intact", NO_PROVENANCE: "no provenance", TAMPERED: "tampered"}


def inspect(path: str | Path, trust: str | Path | None = None) -> Inspection:
    """Read ``path``'s XMP record and C2PA manifest and check them against the file."""
    path = Path(path)
    if not path.is_file():
        raise ColorizerError(f"{path}: no such file")
    packet = read_xmp(path)
    found = Inspection(path, xmp.parse(packet) if packet else {})
    recorded = found.record.get("pixels_sha256")
    if recorded and path.suffix.lower() in _PIXEL_SUFFIXES:
        pixels = decoded_pixels(path)
        if pixels is None:
            found.pixels = "unreadable"
        else:
            found.pixels = "match" if xmp.pixels_sha256(pixels) == recorded else "differ"
    try:
        from colorizer.provenance import credentials

        found.credentials = credentials.read(path, Path(trust) if trust else None)
    except ImportError:
        found.c2pa_note = "not checked: the C2PA SDK is not installed (pip install c2pa-python)"
    return found


def decoded_pixels(path: Path) -> np.ndarray | None:
    """A PNG's or TIFF's samples as ``xmp.pixels_sha256`` hashes them (RGB(A) order)."""
    import cv2

    try:
        if path.suffix.lower() == ".png":
            data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if data is not None and data.ndim == 3 and data.shape[2] >= 3:
                data = data[..., [2, 1, 0, 3][: data.shape[2]]]  # BGR(A) -> RGB(A)
            return data
        import tifffile

        return tifffile.imread(path, key=0)  # the first page: what was written, and no more
    except Exception:
        return None
