"""XMP in MP4 and QuickTime films: a top-level ``uuid`` box with the XMP UUID, where the XMP
specification (part 3, "MPEG-4") puts it and where exiftool and the C2PA SDK look. Appended
after the last box, it moves no sample, so every chunk offset of the film stays right."""

from __future__ import annotations

import struct
from pathlib import Path

# XMP specification part 3, 1.2.7: the UUID of the top-level box that holds an MP4's XMP.
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
SUFFIXES = frozenset({".mp4", ".m4v", ".mov"})


def append_xmp(path: Path, packet: bytes) -> None:
    """Add ``packet`` to the film ``path`` as a top-level XMP ``uuid`` box at its end."""
    with open(path, "ab") as f:
        f.write(struct.pack(">I4s", 8 + 16 + len(packet), b"uuid") + XMP_UUID + packet)


def read_xmp(path: Path) -> bytes | None:
    """The packet of the film's top-level XMP ``uuid`` box, or None (also for a damaged file)."""
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            at = 0
            while at + 8 <= size:
                f.seek(at)
                length, kind = struct.unpack(">I4s", f.read(8))
                header = 8
                if length == 1:  # a 64-bit size follows
                    (length,) = struct.unpack(">Q", f.read(8))
                    header = 16
                elif length == 0:  # the box runs to the end of the file
                    length = size - at
                if length < header:
                    return None
                if kind == b"uuid" and f.read(16) == XMP_UUID:
                    return f.read(length - header - 16)
                at += length
    except (OSError, struct.error):
        return None
    return None
