"""The XMP packet that says how an output was made, built and read with ``xml.etree``.

One ``rdf:Description`` holds the facts, in the standards' own words where they have them:
IPTC's ``Iptc4xmpExt:DigitalSourceType`` (NewsCodes ``compositeWithTrainedAlgorithmicMedia``),
``AISystemUsed`` and ``AISystemVersionUsed`` (IPTC Photo Metadata 2025.1), XMP's
``xmp:CreatorTool``; and in our namespace the model, the SHA-256 of its weights, of the source
file and of the output's pixels, and the file name of the output's confidence map when one
was written beside it (``--confidence``). An input's own XMP is kept: our description is added
beside its descriptions, after removing the properties we set (an earlier colorizer record, or
a scanner's ``negativeFilm`` source type that no longer describes the output).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

# "Edited using Generative AI": a captured original (the photo's own lightness) augmented with
# content a trained model generated (its colour). ``trainedAlgorithmicMedia`` would claim the
# whole image was generated; see docs/provenance.md.
DIGITAL_SOURCE_TYPE = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
)

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP = "http://ns.adobe.com/xap/1.0/"
IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
COLORIZER = "urn:colorizer:xmp:1.0/"  # our own properties; a URN, since no URL is ours to keep
PREFIXES = {"x": X, "rdf": RDF, "xmp": XMP, "Iptc4xmpExt": IPTC_EXT, "colorizer": COLORIZER}

_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_END = '\n<?xpacket end="w"?>'

# Record field -> the XMP property that holds it.
_FIELDS = {
    "digital_source_type": f"{{{IPTC_EXT}}}DigitalSourceType",
    "ai_system": f"{{{IPTC_EXT}}}AISystemUsed",
    "ai_system_version": f"{{{IPTC_EXT}}}AISystemVersionUsed",
    "creator_tool": f"{{{XMP}}}CreatorTool",
    "tool": f"{{{COLORIZER}}}Tool",
    "version": f"{{{COLORIZER}}}Version",
    "model": f"{{{COLORIZER}}}Model",
    "weights_sha256": f"{{{COLORIZER}}}WeightsSHA256",
    "source_sha256": f"{{{COLORIZER}}}SourceSHA256",
    "pixels_sha256": f"{{{COLORIZER}}}PixelsSHA256",
    "confidence_map": f"{{{COLORIZER}}}ConfidenceMap",
}


@dataclass(frozen=True)
class Record:
    """What the XMP of an output says about its making (None: not known, left out)."""

    version: str
    model: str
    weights_sha256: str | None = None
    source_sha256: str | None = None
    pixels_sha256: str | None = None
    confidence_map: str | None = None  # the file name of the output's confidence map, beside it
    tool: str = "colorizer"
    digital_source_type: str = DIGITAL_SOURCE_TYPE

    def properties(self) -> dict[str, str]:
        values = {
            "digital_source_type": self.digital_source_type,
            "ai_system": f"{self.tool} (model {self.model})",
            "ai_system_version": self.version,
            "creator_tool": f"{self.tool} {self.version}",
            "tool": self.tool,
            "version": self.version,
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "source_sha256": self.source_sha256,
            "pixels_sha256": self.pixels_sha256,
            "confidence_map": self.confidence_map,
        }
        return {_FIELDS[k]: v for k, v in values.items() if v is not None}


def build(record: Record, existing: bytes | None = None) -> bytes:
    """An XMP packet (UTF-8) with ``record``, extending ``existing`` (an input's packet) when it
    parses; an unparsable one is dropped, since half-understood XMP cannot be extended."""
    _register_prefixes()
    root = _parse(existing) if existing else None
    if root is None:
        root = ET.Element(f"{{{X}}}xmpmeta")
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f"{{{RDF}}}RDF")
    if rdf is None:
        rdf = ET.SubElement(root, f"{{{RDF}}}RDF")
    _remove(rdf, set(_FIELDS.values()))
    ours = ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    ours.attrib.update(record.properties())
    return (_BEGIN + ET.tostring(root, encoding="unicode") + _END).encode()


def with_pixels(packet: bytes, pixels: np.ndarray) -> bytes:
    """``packet`` with the SHA-256 of ``pixels`` (see ``pixels_sha256``) added to our record."""
    _register_prefixes()
    root = _parse(packet)
    ours = None if root is None else _our_description(root)
    if root is None or ours is None:
        return packet  # not a colorizer record: nothing of ours to seal
    ours.set(_FIELDS["pixels_sha256"], pixels_sha256(pixels))
    return (_BEGIN + ET.tostring(root, encoding="unicode") + _END).encode()


# Rows hashed per update when the samples are not one little-endian block in memory.
_HASH_BLOCK_BYTES = 1 << 20


def pixels_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of an image's samples as decoded: H x W x C in RGB(A) order, row by row, uint8
    or little-endian uint16. Independent of the file's encoding and of its metadata, so it
    still matches after a lossless re-save and no longer after any change of a pixel.

    A C-contiguous array (what a write hands over) is hashed in place, in one update on its
    buffer; any other (a crop's strided view, big-endian samples) in blocks of rows of about
    1 MiB, each made contiguous little-endian on its own: the same bytes in the same order, so
    the same digest, without a copy of the whole image (36 MB at 12 MP). At 12 MP the hash is
    SHA-256's own speed: no copy is left to save (benchmarks/bench_provenance.py)."""
    wide = pixels.dtype.kind == "u" and pixels.dtype.itemsize == 2
    order = np.dtype("<u2") if wide else pixels.dtype
    if pixels.ndim == 0 or (pixels.dtype == order and pixels.flags.c_contiguous):
        return hashlib.sha256(np.ascontiguousarray(pixels, dtype=order).data).hexdigest()
    digest = hashlib.sha256()
    row_bytes = max(1, pixels[0].size * order.itemsize)
    rows = max(1, _HASH_BLOCK_BYTES // row_bytes)
    for start in range(0, len(pixels), rows):
        digest.update(np.ascontiguousarray(pixels[start : start + rows], dtype=order).data)
    return digest.hexdigest()


def parse(packet: bytes) -> dict[str, str]:
    """The record's fields found in ``packet`` (``Record`` field names), from any description,
    attribute or element form; empty when it holds none or does not parse."""
    root = _parse(packet)
    if root is None:
        return {}
    found: dict[str, str] = {}
    by_tag = {tag: name for name, tag in _FIELDS.items()}
    for description in root.iter(f"{{{RDF}}}Description"):
        for tag, value in description.attrib.items():
            if tag in by_tag:
                found[by_tag[tag]] = value
        for child in description:
            if child.tag in by_tag and child.text and child.text.strip():
                found[by_tag[child.tag]] = child.text.strip()
            elif child.tag in by_tag and f"{{{RDF}}}resource" in child.attrib:
                found[by_tag[child.tag]] = child.attrib[f"{{{RDF}}}resource"]
    return found


def _parse(packet: bytes) -> ET.Element | None:
    start = packet.find(b"<x:xmpmeta")
    end = packet.rfind(b"</x:xmpmeta>")
    if start < 0 or end < 0:  # some writers leave out the x:xmpmeta wrapper
        start, end = packet.find(b"<rdf:RDF"), packet.rfind(b"</rdf:RDF>")
        closing = len(b"</rdf:RDF>")
    else:
        closing = len(b"</x:xmpmeta>")
    if start < 0 or end < 0:
        return None
    root = None
    try:
        events = ET.iterparse(io.BytesIO(packet[start : end + closing]), ("start-ns", "end"))
        for event, item in events:
            if event == "start-ns":
                _keep_prefix(*item)
            else:
                root = item
    except ET.ParseError:
        return None
    return root


def _keep_prefix(prefix: str, uri: str) -> None:
    """Write an input's namespaces back with its own prefixes (photoshop:, xmpMM: ...)."""
    if prefix and uri not in _KNOWN_URIS and not re.fullmatch(r"ns\d+", prefix):
        with contextlib.suppress(ValueError):  # a prefix it will not take: it writes its own
            ET.register_namespace(prefix, uri)


def _our_description(root: ET.Element) -> ET.Element | None:
    tool = _FIELDS["tool"]
    for description in root.iter(f"{{{RDF}}}Description"):
        if tool in description.attrib:
            return description
    return None


def _remove(rdf: ET.Element, tags: set[str]) -> None:
    """Drop ``tags`` from every description, and descriptions that are left empty."""
    for description in list(rdf.findall(f"{{{RDF}}}Description")):
        for tag in tags & set(description.attrib):
            del description.attrib[tag]
        for child in list(description):
            if child.tag in tags:
                description.remove(child)
        if len(description) == 0 and set(description.attrib) <= {f"{{{RDF}}}about"}:
            rdf.remove(description)


_KNOWN_URIS = set(PREFIXES.values())
_registered = False


def _register_prefixes() -> None:
    # ElementTree writes ns0, ns1 ... for namespaces it has no prefix for: still valid XMP,
    # but the usual prefixes keep the packet readable for people and naive tools.
    global _registered
    if not _registered:
        for prefix, uri in PREFIXES.items():
            ET.register_namespace(prefix, uri)
        ET.register_namespace("dc", "http://purl.org/dc/elements/1.1/")
        _registered = True
