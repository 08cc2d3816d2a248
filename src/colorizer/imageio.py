"""Read and write every image kind the project handles: files, PIL images and numpy arrays.

Everything leaves `read_image` in one form, a `Picture`: float32 sRGB in [0, 1], H x W x 3, turned
upright by its EXIF orientation, plus an optional H x W alpha plane. `write_image` takes the same
form back, and `to_like` converts a result into the kind the caller originally passed in.

Pillow decodes most files. OpenCV decodes 16-bit colour PNG and TIFF, which Pillow would cut to
8 bits, and encodes 16-bit PNG, since Pillow cannot write 48-bit RGB; tifffile writes 16-bit TIFF
(with its metadata, which OpenCV cannot). Arrays are in RGB order everywhere in this module, never
OpenCV's BGR.

Embedded ICC profiles are not applied: pixel values are taken to be sRGB as stored.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import cv2
import numpy as np
import tifffile
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from colorizer.errors import ColorizerError, ImageReadError
from colorizer.files import atomic_write
from colorizer.planes import is_grey
from colorizer.provenance import xmp as xmp_packet

# zlib level 1: on photos within ~1% of level 6's file size at 1/4 of its time (level 6
# spends 0.41 s on a 1.2 MP photo, level 1 0.11 s; `python -m benchmarks runtime`, PNG levels).
DEFAULT_PNG_COMPRESSION = 1

# 200 MP lets a 12 MP photo and a 100 MP film or flatbed scan through with room to spare (a
# 16000 x 12000 drum scan is 192 MP). Beyond that a header is far likelier to be a decompression
# bomb (a few KB of PNG can claim 50000 x 50000) than a photograph, and 200 MP already needs 2.4 GB
# as float32 RGB before any model runs. Pillow's own limit (89 MP warning, 179 MP error) is too low.
DEFAULT_MAX_PIXELS = 200_000_000

_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
WRITE_SUFFIXES = tuple(_WRITE_FORMATS)
# The one list of photo suffixes that commands pick out of folders (``colorize image DIR``).
# GIF is read (its first frame) like any photo; training leaves it out (``train.data``).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"})
# Photos to train or evaluate on: no GIF (palette images, rarely photographs).
PHOTO_SUFFIXES = IMAGE_SUFFIXES - {".gif"}
# Films that `colorize eval --video` picks out of folders and `colorize image` points elsewhere.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})
_ALPHA_FORMATS = {"PNG", "TIFF", "WEBP"}
_LOSSLESS_FORMATS = {"PNG", "TIFF"}  # their XMP records the pixels' SHA-256 (see Metadata)

# Single-channel Pillow modes that hold more than 8 bits, with the value that means white.
_DEEP_GREY_MODES = {
    "I;16": 65535,
    "I;16L": 65535,
    "I;16B": 65535,
    "I;16N": 65535,
    "I": 65535,
    "F": 1,
}

# The longest side read while a pixel limit is on (JPEG's own maximum): a longer one is a bomb's
# shape, not a photograph's.
MAX_SIDE = 65_535

# Mild overshoot (resampling, model output) is clipped; anything wider is a scale mistake.
_FLOAT_SLACK = 0.1

# looks_colour works on a copy at most this many pixels on its long side, blurred a little: enough
# to keep small coloured objects, while averaging away scan noise and JPEG chroma noise.
_COLOUR_SIDE = 256
_COLOUR_BLUR = 1.5  # Gaussian sigma in pixels of that copy
# 99th percentiles, in Lab units, of chroma off the dominant hue and of tint strength unusual for
# the pixel's lightness (see _looks_colour). Calibration: the B&W scans in shared/data/bw (two of
# them sepia) score at most 1.4 and 2.2, sepia-toned photos in the colour data sets at most 2.5
# and 6.9; about 98% of 800 photos from COCO, ImageNet and BSDS exceed a limit, the rest being
# toned B&W or near-monochrome scenes (snow, fog, a grey car mirror) where either answer is fine.
_OFF_HUE_LIMIT = 6.0
_OFF_STRENGTH_LIMIT = 15.0

_Read = TypeVar("_Read")

# Serialises the rare retries that lift Pillow's global MAX_IMAGE_PIXELS (see _pillow_may_refuse).
_PILLOW_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Metadata:
    """What an archive keeps beside the pixels: EXIF (orientation reset to 1, since the pixels
    are turned upright on reading), an RGB ICC profile, the resolution. Written back by
    ``write_image(..., metadata=...)`` to JPEG, PNG, TIFF and WebP; 16-bit TIFF keeps the EXIF's
    main-directory tags (text and bytes: Artist, Copyright, Software, XMP ...) but not its
    Exif and GPS sub-directories, which tifffile cannot write.

    ``xmp``: an XMP packet (``colorizer.provenance``), written where each format keeps XMP (JPEG
    APP1, PNG iTXt, WebP chunk, TIFF tag 700); in PNG and TIFF outputs it gets the SHA-256 of
    the pixels as written. ``sign``: signs the encoded file (encoded, out, path) before it
    appears, as ``provenance.credentials.sign`` adds a C2PA manifest."""

    exif: Image.Exif | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    sign: Callable[[BinaryIO, BinaryIO, Path], None] | None = None

    def marked(self, software: str, description: str) -> Metadata:
        """A copy that says it was made by a machine: EXIF Software and ImageDescription."""
        exif = Image.Exif()
        if self.exif is not None:
            exif.update(self.exif)
        exif[ExifTags.Base.Software] = software
        exif[ExifTags.Base.ImageDescription] = description
        return dataclasses.replace(self, exif=exif)

    def save_options(self, fmt: str) -> dict[str, object]:
        options: dict[str, object] = {}
        exif = self.exif
        if self.xmp and (fmt == "TIFF" or (exif is not None and _XMP_TAG in exif)):
            # A TIFF's XMP is tag 700 of its first directory, which Pillow writes from the EXIF
            # (a tiffinfo would drop the EXIF); elsewhere an input TIFF's tag 700 is left out,
            # the new packet (which extends it) going where the format keeps XMP.
            exif, old = Image.Exif(), exif
            exif.update({tag: value for tag, value in (old or {}).items() if tag != _XMP_TAG})
            if fmt == "TIFF":
                exif[_XMP_TAG] = self.xmp
        if exif is not None and len(exif):
            options["exif"] = exif.tobytes()
        if self.xmp and fmt != "TIFF":
            options.update(_xmp_options(fmt, self.xmp))
        if self.icc_profile:
            options["icc_profile"] = self.icc_profile
        if self.dpi and fmt != "WEBP":
            options["dpi"] = self.dpi
        return options


_XMP_TAG = 700  # TIFF's XMP tag


def _xmp_options(fmt: str, packet: bytes) -> dict[str, object]:
    """Pillow's save options that put an XMP packet where ``fmt`` keeps it."""
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8"), zip=False)
        return {"pnginfo": info}
    return {"xmp": packet}  # JPEG (APP1) and WebP (XMP chunk)


def read_metadata(im: Image.Image) -> Metadata:
    """The metadata of an opened image; anything broken is left out, never an error."""
    try:
        # A PNG's getexif() without an eXIf chunk ahead of the pixels decodes the whole image to
        # look further (see _orientation): not worth it for a chunk that is almost never late.
        found = Image.Exif() if im.format == "PNG" and "exif" not in im.info else im.getexif()
        for tag in _TIFF_LAYOUT_TAGS.intersection(found):
            del found[tag]  # a TIFF's own layout (size, strips, compression), not the output's
        found[ExifTags.Base.Orientation] = 1
        exif = found if len(found) > 1 else None
    except Exception:
        exif = None
    icc = im.info.get("icc_profile")
    # A grey or CMYK profile would describe our RGB output wrongly: only RGB ones are kept.
    icc = icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None
    dpi = im.info.get("dpi")
    dpi = tuple(float(v) for v in dpi[:2]) if isinstance(dpi, tuple) and len(dpi) >= 2 else None
    return Metadata(exif, icc, dpi)


# The TIFF tags that describe how a file's pixels are laid out. Pillow's getexif() of a TIFF is its
# first directory, these included; copied into another file's EXIF they would describe it wrongly.
_TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284}
    | {292, 293, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 530, 531, 532, 34675}
    | set(range(512, 522))  # old-style JPEG
)


@dataclass(eq=False)
class Picture:
    """A decoded image, in the form the rest of the project works with."""

    rgb: np.ndarray  # H x W x 3 float32 in [0, 1], sRGB, EXIF-rotated upright
    alpha: np.ndarray | None  # H x W float32 in [0, 1], or None
    bit_depth: int  # 8 or 16: precision of the source, used to choose the output depth
    source_mode: str  # e.g. "L", "RGB", "P", "CMYK", "I;16", "RGB16" (informative only)
    looks_colour: bool  # the input has real colour, not grey or one uniform tint such as sepia
    metadata: Metadata | None = None  # of a file or PIL input; None for arrays
    grey: bool = False  # one grey channel in the source: R = G = B in ``rgb``, no colour


# Photos this large are colorized one at a time (``Colorizer.colorize_file``): even in bytes a
# 200 MP scan needs ~1.8 GB while it is worked on.
LARGE_PHOTO_PIXELS = 40_000_000


@dataclass(eq=False)
class Pixels8:
    """An 8-bit photo file kept as its bytes, upright: how ``Colorizer.colorize_file`` reads
    8-bit photos, which a float ``Picture`` would hold in 4 to 12 times the memory (2.4 GB for
    a 200 MP scan). Only files in Pillow's L, LA, RGB and RGBA modes."""

    data: np.ndarray  # H x W (grey, also a grey source stored as RGB) or H x W x 3 uint8, a view
    alpha: np.ndarray | None  # H x W uint8, or None
    looks_colour: bool  # as Picture.looks_colour
    metadata: Metadata | None


def pixel_count(path: str | os.PathLike) -> int | None:
    """Width x height from an image file's header, or None where it cannot be read (the
    full read then says what is wrong)."""

    def header() -> int:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]

    if not Path(path).is_file():  # a FIFO would block Image.open; the full read refuses it
        return None
    try:
        return _pillow_may_refuse(header)  # the scans this is for are over Pillow's own limit
    except Exception:
        return None


def read_pixels_u8(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """The upright 8-bit pixels of an image file as a `Pixels8`, or None where the file is not
    8-bit L, LA, RGB or RGBA (``read_image`` reads those). Checks and errors as ``read_image``.
    """
    path, limit = Path(path), _pixel_limit(max_pixels)
    name = f"image file '{path}'"
    _check_file(path, name)
    return _pillow_may_refuse(lambda: _read_file_u8(path, name, limit))


def pixels_of_array(
    arr: np.ndarray, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Pixels8 | None:
    """A uint8 H x W (x 1, 2, 3 or 4) array as `Pixels8` (views, no copy), or None for any
    other array, which ``read_image`` reads (and refuses with its messages)."""
    shape_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4))
    if arr.dtype != np.uint8 or not shape_ok or arr.size == 0:
        return None
    _check_pixels("array", (arr.shape[1], arr.shape[0]), _pixel_limit(max_pixels))
    return _pixels8(arr, None)


def read_image(src, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    """Read `src` (a path, a PIL image or a numpy array) into a `Picture`.

    Arrays are H x W, H x W x 1, H x W x 2 (grey + alpha), H x W x 3 (RGB) or H x W x 4 (RGBA), of
    dtype uint8, uint16 or float in [0, 1]. Images over `max_pixels` are refused before decoding;
    None (or 0, as the command line's `--max-pixels 0` passes it) means no limit. Every failure is
    an `ImageReadError` that names the input and the problem.
    """
    limit = _pixel_limit(max_pixels)
    if isinstance(src, np.ndarray):
        return _read_array(src, limit)
    if isinstance(src, Image.Image):
        filename = getattr(src, "filename", "")
        name = f"PIL image '{filename}'" if filename else "PIL image"
        return _pillow_may_refuse(lambda: _read_pil(src, name, limit))
    if isinstance(src, str | os.PathLike):
        return _read_path(Path(src), limit)
    raise ImageReadError(
        f"cannot read {type(src).__name__}: expected a file path, a PIL image or a numpy array"
    )


def write_image(
    path,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    bit_depth: int = 8,
    jpeg_quality: int = 95,
    png_compression: int | None = DEFAULT_PNG_COMPRESSION,
    metadata: Metadata | None = None,
) -> Path:
    """Write float RGB in [0, 1] (H x W x 3) and optional alpha to `path`; return the path.
    8-bit RGB (uint8, with uint8 alpha) is written as it is, at bit_depth 8 only.

    The format follows the suffix (see WRITE_SUFFIXES). bit_depth=16 gives 16-bit PNG and TIFF;
    JPEG, WebP and BMP hold 8 bits only and get 8. Alpha is kept in PNG, TIFF and WebP and
    dropped (not composited) for JPEG and BMP. `jpeg_quality` also sets the WebP quality.
    `png_compression` (0-9, PNG only; still lossless) trades size for speed; None keeps the
    encoder's own default (Pillow's 6, OpenCV's 1).
    `metadata` (EXIF, ICC profile, DPI) is written to JPEG, PNG, TIFF and WebP outputs (WebP
    without DPI; 16-bit TIFF without EXIF sub-directories, see Metadata). The file appears
    atomically: a failure leaves no partial file, no temp file, and any old file intact.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ColorizerError(
            f"cannot write '{path}': unknown image suffix {path.suffix!r}; "
            f"supported: {', '.join(WRITE_SUFFIXES)}"
        )
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if getattr(rgb, "dtype", None) == np.uint8 and bit_depth != 8:
        raise ValueError("8-bit (uint8) rgb is written at bit_depth 8 only")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be between 1 and 100, got {jpeg_quality!r}")
    if png_compression is not None and png_compression not in range(10):
        raise ValueError(f"png_compression must be between 0 and 9, got {png_compression!r}")
    if fmt != "PNG":
        png_compression = None
    pixels = _with_alpha(rgb, alpha, keep=alpha is not None and fmt in _ALPHA_FORMATS)
    if metadata is not None and metadata.xmp and fmt in _LOSSLESS_FORMATS:
        # Quantised once, here, so that the XMP can name the exact pixels the file holds.
        pixels = _quantize(pixels, np.dtype(np.uint16 if bit_depth == 16 else np.uint8))
        metadata = dataclasses.replace(metadata, xmp=xmp_packet.with_pixels(metadata.xmp, pixels))
    if bit_depth == 16 and fmt == "TIFF":
        encode = _tiff16_encoder(pixels, metadata)
    elif bit_depth == 16 and fmt == "PNG":
        encode = _png16_encoder(pixels, png_compression, metadata)
    else:
        extra = metadata.save_options(fmt) if metadata is not None and fmt != "BMP" else {}
        encode = _pillow_encoder(pixels, fmt, jpeg_quality, png_compression, extra)
    if metadata is not None and metadata.sign is not None and fmt != "BMP":
        encode = _signed(encode, metadata.sign, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, encode)
    return path


def to_like(rgb: np.ndarray, alpha: np.ndarray | None, like):
    """Return `rgb` (and `alpha`) in the same kind as `like`, the original input to read_image.

    ndarray -> ndarray of like's dtype with 3 channels, or 4 if like had alpha (H x W x 2 or 4).
    PIL image -> PIL "RGBA" if like had transparency, else "RGB" (8-bit even for 16-bit modes).
    Path -> PIL "RGBA" if `alpha` is given, else "RGB". If `like` had no alpha, `alpha` is
    dropped; if it had one and `alpha` is None, the result is opaque.
    """
    if isinstance(like, np.ndarray):
        keep = like.ndim == 3 and like.shape[2] in (2, 4)
        return _quantize(_with_alpha(rgb, alpha, keep), like.dtype)
    if isinstance(like, Image.Image):
        keep = like.has_transparency_data
    elif isinstance(like, str | os.PathLike):
        keep = alpha is not None
    else:
        raise TypeError(f"like must be a path, PIL image or numpy array, not {type(like).__name__}")
    return Image.fromarray(_quantize(_with_alpha(rgb, alpha, keep), np.dtype(np.uint8)))


# --- reading -------------------------------------------------------------------------------


def _pixel_limit(max_pixels: int | None) -> int | None:
    if max_pixels is None or max_pixels == 0:
        return None
    if max_pixels < 0:
        raise ValueError(f"max_pixels must be positive, 0 or None, got {max_pixels!r}")
    return int(max_pixels)


def _fail(name: str, problem: str) -> ImageReadError:
    return ImageReadError(f"cannot read {name}: {problem}")


def _check_pixels(name: str, size: tuple[int, int], limit: int | None) -> None:
    width, height = size
    if limit is not None and max(width, height) > MAX_SIDE:
        # A 67-byte PNG of 1 x 50,000,000 pixels is under the pixel limit, but a one-row strip
        # is the whole image, so strip-wise work no longer bounds memory (2.7 GB measured).
        raise ImageReadError(
            f"refusing to read {name}: it is {width} x {height} pixels, and no photograph has a "
            f"side over {MAX_SIDE:,} pixels (JPEG's own limit). If you trust it, pass "
            "max_pixels=None in Python or --max-pixels 0 on the command line."
        )
    if limit is not None and width * height > limit:
        raise ImageReadError(
            f"refusing to read {name}: it has {width * height:,} pixels ({width} x {height}), "
            f"over the limit of {limit:,} pixels that guards against decompression bombs. "
            "If you trust it, pass max_pixels=None in Python or --max-pixels 0 on the command line."
        )


def _pillow_may_refuse(read: Callable[[], _Read]) -> _Read:
    """Run `read` so that our pixel limit, not Pillow's global one, decides what is too big."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return read()
    except Image.DecompressionBombError:
        pass
    # Pillow refused before we could look (over 2 x Image.MAX_IMAGE_PIXELS). Lift its limit for
    # this retry only; _check_pixels still applies ours, and the old value is always restored.
    # Pillow calls in other threads meanwhile run unchecked, so this is kept to the rare case.
    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return read()
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _read_path(path: Path, limit: int | None) -> Picture:
    name = f"image file '{path}'"
    _check_file(path, name)
    return _pillow_may_refuse(lambda: _read_file(path, name, limit))


def _check_file(path: Path, name: str) -> None:
    if not path.exists():
        raise _fail(name, "no such file")
    if path.is_dir():
        raise _fail(name, "it is a directory, not an image file")
    if not path.is_file():  # opening a FIFO would wait for a writer, forever
        raise _fail(name, "not a regular file (a FIFO, socket or device)")
    if path.stat().st_size == 0:
        raise _fail(name, "the file is empty (0 bytes)")


def _open_file(path: Path, name: str) -> BinaryIO:
    # Pillow gets a file object, not the path: from a path it memory-maps uncompressed TIFFs,
    # and that route garbles those with a rotating Orientation tag (seen with Pillow 13).
    try:
        return path.open("rb")
    except PermissionError:
        raise _fail(name, "permission denied") from None
    except OSError as exc:
        raise _fail(name, exc.strerror or str(exc)) from exc


def _read_file(path: Path, name: str, limit: int | None) -> Picture:
    with _open_file(path, name) as f, _open(f, path, name) as im:
        _check_pixels(name, im.size, limit)  # Image.open read only the header so far
        if _is_deep_colour(im, path):
            return _read_deep_colour(path, name, im)
        return _read_pil(im, name, limit=None)


def _read_file_u8(path: Path, name: str, limit: int | None) -> Pixels8 | None:
    with _open_file(path, name) as f, _open(f, path, name) as im:
        _check_pixels(name, im.size, limit)
        if im.mode not in ("L", "LA", "RGB", "RGBA") or _is_deep_colour(im, path):
            return None
        if "transparency" in im.info:  # a colour key (PNG tRNS): Pillow's convert makes alpha
            return None
        try:
            im.load()
            data = np.asarray(im)
        except (Image.DecompressionBombError, MemoryError):
            raise
        except Exception as exc:
            raise _fail(name, f"the image data is corrupt or truncated ({exc})") from exc
        data = _ORIENT.get(_orientation(im), lambda a: a)(data)  # views, as exif_transpose
        metadata = read_metadata(im)
    return _pixels8(data, metadata)


def _pixels8(data: np.ndarray, metadata: Metadata | None) -> Pixels8:
    """H x W (x 1, 2, 3 or 4) uint8 -> Pixels8: grey or RGB, and alpha where there is one."""
    if data.ndim == 2 or data.shape[2] == 1:
        return Pixels8(data if data.ndim == 2 else data[..., 0], None, False, metadata)
    alpha = np.ascontiguousarray(data[..., -1]) if data.shape[2] in (2, 4) else None
    rgb = data[..., :3]
    if data.shape[2] == 2 or is_grey(rgb):  # grey, stored as such or as R = G = B
        return Pixels8(data[..., 0], alpha, False, metadata)
    return Pixels8(rgb, alpha, _looks_colour_u8(rgb, alpha), metadata)


def _open(f: BinaryIO, path: Path, name: str) -> Image.Image:
    try:
        return Image.open(f)
    except UnidentifiedImageError:
        raise _fail(name, _describe_non_image(path)) from None
    except Image.DecompressionBombError:
        raise
    except Exception as exc:
        raise _fail(name, f"the file is damaged or not an image ({exc})") from exc


def _describe_non_image(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive (or a document packed as one), not an image"
    if head.startswith(b"%PDF"):
        return "it is a PDF document, not an image"
    if _is_video_container(head):
        return f"it is a video, not an image; colorize films with `colorize video {path}`"
    if _is_text(head):
        return "it is a text file, not an image"
    return "it is not in any image format Pillow recognises (damaged or unsupported)"


def _is_video_container(head: bytes) -> bool:
    """MP4/MOV (an ``ftyp`` box first), Matroska/WebM (EBML) or AVI (RIFF ... AVI)."""
    riff_avi = head.startswith(b"RIFF") and head[8:12] == b"AVI "
    return head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3") or riff_avi


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut off by the 512-byte read
    return True


def _is_deep_colour(im: Image.Image, path: Path) -> bool:
    """True for 16-bit colour (or grey + alpha) files that Pillow would decode to 8 bits."""
    if im.mode not in ("RGB", "RGBA", "LA"):
        return False  # 16-bit grey opens as "I;16", which Pillow keeps at full precision
    if im.format == "PNG":
        with path.open("rb") as f:
            header = f.read(26)
        return header[12:16] == b"IHDR" and header[24] == 16
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2").get(258, 8)  # noqa: B009 - TIFF only; BitsPerSample: one value, or one per channel
        return max(bits) > 8 if isinstance(bits, tuple) else bits > 8
    return False


def _read_deep_colour(path: Path, name: str, im: Image.Image) -> Picture:
    # imdecode, not imread: imread cannot open non-ASCII paths on Windows. IMREAD_UNCHANGED
    # keeps 16 bits and alpha.
    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise _fail(name, "its 16-bit image data is corrupt or truncated (OpenCV cannot decode it)")
    if data.ndim == 3 and data.shape[2] >= 3:
        data = data[..., [2, 1, 0, 3][: data.shape[2]]]  # BGR(A) -> RGB(A)
    # IMREAD_UNCHANGED leaves EXIF orientation to us, except that OpenCV's TIFF decoder always
    # applies the TIFF Orientation tag itself (grfmt_tiff.cpp, fixOrientation).
    if im.format != "TIFF":
        data = _ORIENT.get(_orientation(im), lambda a: a)(data)
    channels = 1 if data.ndim == 2 else data.shape[2]
    mode = {1: "I;16", 2: "LA16", 3: "RGB16", 4: "RGBA16"}[channels]
    picture = _from_array(data, name, mode, clip=True)
    picture.metadata = read_metadata(im)
    return picture


def _read_pil(im: Image.Image, name: str, limit: int | None) -> Picture:
    _check_pixels(name, im.size, limit)
    try:
        # Decode everything now: with Pillow's LOAD_TRUNCATED_IMAGES off (its default), a
        # truncated file raises here instead of coming back partly grey.
        im.load()
        upright = ImageOps.exif_transpose(im) if _orientation(im) != 1 else im
        picture = _from_pil(upright, name, im.mode)
        picture.metadata = read_metadata(im)
        return picture
    except (ImageReadError, Image.DecompressionBombError, MemoryError):
        raise
    except Exception as exc:
        raise _fail(name, f"the image data is corrupt or truncated ({exc})") from exc


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8 (1 when absent or unreadable)."""
    # On a PNG with no eXIf chunk before its pixel data, Pillow's getexif() decodes the whole image
    # to look for one after it: a full 8-bit decode the 16-bit path must not pay for. (Once an
    # image is loaded, such a late chunk is in im.info as well.)
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1  # broken EXIF must not make a good image unreadable
    return value if value in range(1, 9) else 1


# EXIF orientation -> the array operation that makes the image upright (as exif_transpose does).
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _from_pil(im: Image.Image, name: str, source_mode: str) -> Picture:
    if im.mode in _DEEP_GREY_MODES:
        grey = np.asarray(im).astype(np.float32) / _DEEP_GREY_MODES[im.mode]
        grey = np.clip(np.nan_to_num(grey), 0, 1)  # "I" and "F" have no fixed range
        return _picture(grey[..., None], 16, source_mode)
    try:
        rgb = im.convert("RGBA" if im.has_transparency_data else "RGB")
    except ValueError:
        raise _fail(name, f"its colour mode {im.mode!r} is not supported") from None
    return _picture(np.asarray(rgb, dtype=np.float32) / 255, 8, source_mode)


def _read_array(arr: np.ndarray, limit: int | None) -> Picture:
    name = "array"
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.size == 0:
        raise _fail(
            name,
            "expected an H x W, H x W x 1, H x W x 2 (grey + alpha), H x W x 3 (RGB) or "
            f"H x W x 4 (RGBA) array, got shape {arr.shape}",
        )
    _check_pixels(name, (arr.shape[1], arr.shape[0]), limit)
    base = ("L", "LA", "RGB", "RGBA")[arr.shape[2] - 1]
    suffix = "16" if arr.dtype == np.uint16 else "F" if arr.dtype.kind == "f" else ""
    mode = {"L16": "I;16", "LF": "F"}.get(base + suffix, base + suffix)
    return _from_array(arr, name, mode, clip=False)


def _from_array(data: np.ndarray, name: str, mode: str, *, clip: bool) -> Picture:
    """Scale uint8 / uint16 / float data (channels in RGB order) to [0, 1] and build a Picture."""
    if data.ndim == 2:
        data = data[..., None]
    if data.dtype == np.uint8:
        return _picture(data.astype(np.float32) / 255, 8, mode)
    if data.dtype == np.uint16:
        return _picture(data.astype(np.float32) / 65535, 16, mode)
    if data.dtype.kind != "f":
        raise _fail(name, f"unsupported dtype {data.dtype}; expected uint8, uint16 or float")
    x = data.astype(np.float32)
    low, high = float(x.min()), float(x.max())
    if not clip and not (low >= -_FLOAT_SLACK and high <= 1 + _FLOAT_SLACK):
        raise _fail(
            name,
            f"float values must lie in [0, 1], got {low:g} to {high:g} "
            "(divide 0-255 data by 255, or pass uint8)",
        )
    # Float data carries more than 8 bits, so ask for a 16-bit output where the format allows.
    return _picture(np.clip(np.nan_to_num(x), 0, 1), 16, mode)


def _picture(x: np.ndarray, bit_depth: int, source_mode: str) -> Picture:
    """Build a Picture from H x W x C float32, C = 1 (grey), 2 (grey + alpha), 3 or 4 (RGB(A))."""
    channels = x.shape[2]
    colour = x[..., :3] if channels >= 3 else np.repeat(x[..., :1], 3, axis=2)
    rgb = np.ascontiguousarray(colour, dtype=np.float32)
    alpha = np.ascontiguousarray(x[..., -1]) if channels in (2, 4) else None
    if channels < 3:  # a grey source: nothing to look for (saves 0.05 s on 12 MP)
        return Picture(rgb, alpha, bit_depth, source_mode, False, grey=True)
    return Picture(rgb, alpha, bit_depth, source_mode, _looks_colour(rgb, alpha))


def _looks_colour(rgb: np.ndarray, alpha: np.ndarray | None) -> bool:
    """True when the chroma holds more than one tint: grey, sepia or toned prints are not colour.

    A toned print has one hue, and its strength follows lightness (neutral paper white, warm
    shadows). So take the dominant hue (the mean a*b* direction) and look at the chroma that is
    off that hue, or whose strength is unusual for the pixel's lightness.
    """
    lab = _small_lab(rgb, alpha)
    if len(lab) == 0:
        return False
    lightness, ab = lab[:, 0], lab[:, 1:]
    mean = ab.mean(axis=0)
    norm = float(np.hypot(*mean))
    hue = mean / norm if norm > 1e-6 else np.array([1.0, 0.0])
    along = np.clip(ab @ hue, 0, None)
    across = np.hypot(*(ab - along[:, None] * hue).T)
    bins = np.minimum(lightness // 10, 9).astype(int)
    typical = np.zeros(10)
    for b in np.unique(bins):
        typical[b] = np.median(along[bins == b])
    unusual = np.abs(along - typical[bins])
    return bool(
        np.percentile(across, 99) > _OFF_HUE_LIMIT
        or np.percentile(unusual, 99) > _OFF_STRENGTH_LIMIT
    )


def _looks_colour_u8(rgb: np.ndarray, alpha: np.ndarray | None) -> bool:
    """``_looks_colour`` of 8-bit RGB, from a small copy (never the whole image as floats)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, 4 * _COLOUR_SIDE / max(height, width))  # _looks_colour shrinks it further
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    small_alpha = None if alpha is None else cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return _looks_colour(
        small.astype(np.float32) / 255,
        None if small_alpha is None else small_alpha.astype(np.float32) / 255,
    )


def _small_lab(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """N x 3 Lab values of a small, slightly blurred copy, without its transparent pixels."""
    if alpha is None:
        return cv2.cvtColor(_shrink(rgb), cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    # Transparent pixels often hold arbitrary colour that nobody sees: weight by alpha so that
    # shrinking and blurring do not smear it into visible neighbours.
    weight = _shrink(alpha)
    rgb = np.clip(_shrink(rgb * alpha[..., None]) / np.maximum(weight, 1e-6)[..., None], 0, 1)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    return lab[weight.reshape(-1) >= 0.5]


def _shrink(plane: np.ndarray) -> np.ndarray:
    """Downsample and blur a little: small objects survive, sensor and JPEG chroma noise do not."""
    height, width = plane.shape[:2]
    scale = min(1.0, _COLOUR_SIDE / max(height, width))
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        plane = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(plane, (0, 0), _COLOUR_BLUR)


# --- writing and conversion ------------------------------------------------------------------


def _with_alpha(rgb: np.ndarray, alpha: np.ndarray | None, keep: bool) -> np.ndarray:
    """Validate and return H x W x 3, or H x W x 4 with alpha (opaque if missing) when `keep`."""
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size):
        raise ValueError(f"rgb must be an H x W x 3 array, got {getattr(rgb, 'shape', rgb)!r}")
    if rgb.dtype.kind != "f" and rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be float in [0, 1] or uint8, got dtype {rgb.dtype}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha must be H x W = {rgb.shape[:2]}, got shape {alpha.shape}")
        if (alpha.dtype == np.uint8) != (rgb.dtype == np.uint8):
            raise ValueError(f"alpha must be of rgb's kind ({rgb.dtype}), got {alpha.dtype}")
    if not keep:
        return rgb
    if alpha is None:
        opaque = 255 if rgb.dtype == np.uint8 else 1
        alpha = np.full(rgb.shape[:2], opaque, dtype=rgb.dtype)
    return np.dstack([rgb, alpha])


def _quantize(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Clip to [0, 1] (NaN -> 0) and round to ``dtype``; a 12 MP photo is a hot path here."""
    if x.dtype == dtype and dtype.kind == "u":
        return x  # already quantised (8-bit output composed straight into bytes)
    x = np.clip(x, 0, 1)
    if dtype == np.uint8:
        return cv2.convertScaleAbs(x, alpha=255)  # scale, round and saturate in one pass
    x = np.nan_to_num(x, copy=False, nan=0.0)
    if dtype == np.uint16:
        x *= 65535
        x += 0.5
        return x.astype(np.uint16)
    return x.astype(dtype if dtype.kind == "f" else np.float32)


def _pillow_encoder(
    pixels: np.ndarray,
    fmt: str,
    quality: int,
    png_compression: int | None = None,
    extra: dict[str, object] | None = None,
) -> Callable[[BinaryIO], None]:
    options: dict[str, object] = {  # type: ignore[assignment]
        "JPEG": {"quality": quality},
        "WEBP": {"quality": quality},
        "TIFF": {"compression": "tiff_deflate"},
    }.get(fmt, {})
    if png_compression is not None:
        options = {"compress_level": png_compression}
    options = {**options, **(extra or {})}

    def encode(f: BinaryIO) -> None:
        Image.fromarray(_quantize(pixels, np.dtype(np.uint8))).save(f, format=fmt, **options)

    return encode


def _png16_encoder(
    pixels: np.ndarray, png_compression: int | None, metadata: Metadata | None
) -> Callable[[BinaryIO], None]:
    params = [] if png_compression is None else [cv2.IMWRITE_PNG_COMPRESSION, png_compression]

    def encode(f: BinaryIO) -> None:
        data = _quantize(pixels, np.dtype(np.uint16))
        bgr = data[..., [2, 1, 0, 3][: data.shape[2]]]  # OpenCV expects BGR(A)
        ok, buffer = cv2.imencode(".png", bgr, params)
        if not ok:
            raise OSError("OpenCV could not encode a 16-bit PNG image")
        encoded = buffer.tobytes()
        f.write(_with_png_metadata(encoded, metadata) if metadata is not None else encoded)

    return encode


def _tiff16_encoder(pixels: np.ndarray, metadata: Metadata | None) -> Callable[[BinaryIO], None]:
    # Deflate at level 1 with the horizontal predictor, strips compressed on two threads: on a
    # 12 MP 16-bit photo 0.97 s and 56 MB, against OpenCV's LZW at 1.13 s and 67 MB.
    options: dict[str, Any] = {
        "photometric": "rgb",
        "compression": "zlib",
        "compressionargs": {"level": 1},
        "predictor": True,
        "rowsperstrip": 256,
        "maxworkers": 2,
        "metadata": None,  # no tifffile JSON in ImageDescription
        "software": False,
    }
    if metadata is not None:
        options.update(_tifffile_metadata(metadata))

    def encode(f: BinaryIO) -> None:
        # Into memory first: tifffile wants a named file, and ours is an open temp file.
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, _quantize(pixels, np.dtype(np.uint16)), **options)
        f.write(buffer.getbuffer())

    return encode


def _tifffile_metadata(metadata: Metadata) -> dict[str, Any]:
    """tifffile's arguments for ``metadata``: the EXIF main directory's text and byte tags as
    extra tags (Software and ImageDescription among them), the ICC profile and the DPI."""
    options: dict[str, Any] = {}
    tags = []
    for tag, value in sorted((metadata.exif or {}).items()):
        if tag in _TIFF_LAYOUT_TAGS or tag in (282, 283, 296):  # resolution: from dpi below
            continue
        if isinstance(value, str):
            # TIFF text is 7-bit ASCII: other characters become "?", as Pillow writes them.
            tags.append((int(tag), "s", 0, value.encode("ascii", "replace"), True))
        elif isinstance(value, bytes):
            tags.append((int(tag), "B", len(value), value, True))
    if metadata.xmp:
        tags = [tag for tag in tags if tag[0] != _XMP_TAG]  # the new packet extends the old
        tags.append((_XMP_TAG, "B", len(metadata.xmp), metadata.xmp, True))
    options["extratags"] = tags
    if metadata.icc_profile:
        options["iccprofile"] = metadata.icc_profile
    if metadata.dpi:
        options["resolution"] = metadata.dpi
        options["resolutionunit"] = "INCH"
    return options


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, the whole chunk: length, type, data, CRC) of each chunk of a PNG file."""
    chunks, at = [], len(_PNG_SIGNATURE)
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        chunks.append((png[at + 4 : at + 8], png[at : at + 12 + length]))
        at += 12 + length
    return chunks


def _with_png_metadata(png: bytes, metadata: Metadata) -> bytes:
    """A 16-bit PNG from OpenCV (which writes no metadata) with ``metadata``'s chunks (eXIf,
    iCCP, pHYs) made by Pillow on a 1-pixel carrier and put right after the header."""
    carrier = io.BytesIO()
    Image.new("RGB", (1, 1)).save(carrier, "PNG", **metadata.save_options("PNG"))
    extra = [raw for kind, raw in _png_chunks(carrier.getvalue()) if kind not in _PNG_OWN]
    (_, header), *rest = _png_chunks(png)
    return _PNG_SIGNATURE + header + b"".join(extra) + b"".join(raw for _, raw in rest)


_PNG_OWN = {b"IHDR", b"IDAT", b"IEND"}  # the image's own chunks, never copied from the carrier


def _signed(
    encode: Callable[[BinaryIO], None], sign: Callable[[BinaryIO, BinaryIO, Path], None], path: Path
) -> Callable[[BinaryIO], None]:
    """``encode``, then ``sign`` the encoded file into the output: the output appears signed."""

    def encode_signed(f: BinaryIO) -> None:
        encoded = io.BytesIO()
        encode(encoded)
        encoded.seek(0)
        sign(encoded, f, path)

    return encode_signed


def _write_atomically(path: Path, encode: Callable[[BinaryIO], None]) -> None:
    # Readers see the old file or the whole new one, never half an image (colorizer.files).
    with atomic_write(path) as f:
        encode(cast(BinaryIO, f))
