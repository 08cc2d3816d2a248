"""Tests for colorizer.imageio. Every fixture is made here, in tmp_path; nothing is downloaded."""

from __future__ import annotations

import io
import os
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from colorizer.errors import ColorizerError, ImageReadError
from colorizer.imageio import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_PNG_COMPRESSION,
    Picture,
    read_image,
    read_pixels_u8,
    to_like,
    write_image,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"


# --- helpers ---------------------------------------------------------------------------------


def _u8(values) -> np.ndarray:
    return np.asarray(values, dtype=np.uint8)


def _f(values, top: int = 255) -> np.ndarray:
    """The float32 values read_image must return for integer `values` with white = `top`."""
    return np.asarray(values).astype(np.float32) / top


def _save(im: Image.Image, path: Path, **options) -> Path:
    im.save(path, **options)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(data: np.ndarray, colour_type: int, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG made by hand: Pillow cannot write 16-bit colour, and OpenCV writes no EXIF."""
    height, width = data.shape[:2]
    rows = b"".join(b"\0" + data[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if exif is not None:
        chunks.append(_png_chunk(b"eXIf", exif))
    chunks += [_png_chunk(b"IDAT", zlib.compress(rows)), _png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _tiff16(data: np.ndarray, orientation: int) -> bytes:
    """An uncompressed 16-bit RGB TIFF made by hand, with an Orientation tag OpenCV cannot write."""
    height, width, _ = data.shape
    pixels = data.astype("<u2").tobytes()
    count = 10
    bits_at = 8 + 2 + 12 * count + 4  # header, IFD, then the BitsPerSample values, then pixels
    short, long_ = "<HHIHxx", "<HHII"
    entries = [
        (long_, 256, 4, 1, width),
        (long_, 257, 4, 1, height),
        (long_, 258, 3, 3, bits_at),
        (short, 259, 3, 1, 1),  # no compression
        (short, 262, 3, 1, 2),  # RGB
        (long_, 273, 4, 1, bits_at + 6),
        (short, 274, 3, 1, orientation),
        (short, 277, 3, 1, 3),
        (long_, 278, 4, 1, height),
        (long_, 279, 4, 1, len(pixels)),
    ]
    ifd = struct.pack("<H", count) + b"".join(struct.pack(f, *e) for f, *e in entries)
    return (
        b"II*\0" + struct.pack("<I", 8) + ifd + b"\0" * 4 + struct.pack("<3H", 16, 16, 16) + pixels
    )


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _png_exif(orientation: int) -> bytes:
    return _exif(orientation).tobytes()[6:]  # PNG's eXIf chunk has no "Exif\0\0" prefix


def _gradient(height: int = 64, width: int = 96) -> np.ndarray:
    """A smooth grey H x W ramp in [0.05, 0.95]: the base of the colour-detection fixtures."""
    ramp = np.linspace(0.05, 0.95, width, dtype=np.float32)
    wave = 0.5 + 0.5 * np.sin(np.linspace(0, 3 * np.pi, height, dtype=np.float32))[:, None]
    return 0.7 * ramp[None, :] + 0.3 * wave * ramp[None, :]


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- reading every Pillow mode ---------------------------------------------------------------


def test_mode_1_bilevel(tmp_path):
    im = Image.new("1", (3, 2), 0)
    im.putpixel((1, 0), 1)
    pic = read_image(_save(im, tmp_path / "a.png"))
    expected = np.zeros((2, 3, 3), np.float32)
    expected[0, 1] = 1.0
    np.testing.assert_array_equal(pic.rgb, expected)
    assert (pic.alpha, pic.bit_depth, pic.source_mode, pic.looks_colour) == (None, 8, "1", False)


def test_mode_l_exact(tmp_path):
    grey = _u8([[0, 1, 128], [200, 254, 255]])
    pic = read_image(_save(Image.fromarray(grey), tmp_path / "a.png"))
    assert pic.rgb.dtype == np.float32 and pic.rgb.shape == (2, 3, 3)
    for c in range(3):
        np.testing.assert_array_equal(pic.rgb[..., c], _f(grey))
    assert (pic.alpha, pic.bit_depth, pic.source_mode) == (None, 8, "L")


def test_mode_la_keeps_alpha(tmp_path):
    la = _u8([[[10, 0], [20, 128]], [[30, 255], [40, 7]]])
    pic = read_image(_save(Image.fromarray(la), tmp_path / "a.png"))
    np.testing.assert_array_equal(pic.rgb[..., 1], _f(la[..., 0]))
    np.testing.assert_array_equal(pic.alpha, _f(la[..., 1]))
    assert pic.source_mode == "LA" and not pic.looks_colour


def test_mode_rgb_and_rgba_exact(tmp_path):
    rgba = _u8([[[255, 0, 0, 255], [0, 255, 0, 128]], [[0, 0, 255, 0], [12, 34, 56, 78]]])
    pic = read_image(_save(Image.fromarray(rgba), tmp_path / "a.png"))
    np.testing.assert_array_equal(pic.rgb, _f(rgba[..., :3]))
    np.testing.assert_array_equal(pic.alpha, _f(rgba[..., 3]))
    assert (pic.bit_depth, pic.source_mode) == (8, "RGBA")
    pic = read_image(_save(Image.fromarray(rgba[..., :3]), tmp_path / "b.tif"))
    np.testing.assert_array_equal(pic.rgb, _f(rgba[..., :3]))
    assert (pic.alpha, pic.source_mode) == (None, "RGB")


def _palette_image() -> Image.Image:
    im = Image.fromarray(_u8([[0, 1, 2, 3]]), mode="L").convert("P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    return im


def test_mode_p_without_transparency(tmp_path):
    pic = read_image(_save(_palette_image(), tmp_path / "a.png"))
    np.testing.assert_array_equal(
        pic.rgb[0], _f([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]])
    )
    assert (pic.alpha, pic.source_mode, pic.looks_colour) == (None, "P", True)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_mode_p_with_transparency_gives_alpha(tmp_path, suffix):
    path = _save(_palette_image(), tmp_path / f"a{suffix}", transparency=3)
    pic = read_image(path)
    np.testing.assert_array_equal(pic.alpha, [[1, 1, 1, 0]])
    np.testing.assert_array_equal(pic.rgb[0, :3], np.eye(3, dtype=np.float32))
    assert pic.source_mode == "P"


def test_mode_cmyk_jpeg(tmp_path):
    im = Image.new("CMYK", (32, 16), (0, 255, 255, 0))  # red
    im.paste((255, 255, 0, 0), (16, 0, 32, 16))  # blue
    pic = read_image(_save(im, tmp_path / "a.jpg", quality=95))
    np.testing.assert_allclose(pic.rgb[8, 4], [1, 0, 0], atol=0.03)
    np.testing.assert_allclose(pic.rgb[8, 28], [0, 0, 1], atol=0.03)
    assert (pic.source_mode, pic.bit_depth, pic.looks_colour) == ("CMYK", 8, True)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grey_keeps_precision(tmp_path, suffix):
    grey = np.array([[0, 1, 1000], [32768, 65534, 65535]], np.uint16)
    pic = read_image(_save(Image.fromarray(grey), tmp_path / f"a{suffix}"))
    assert (pic.bit_depth, pic.source_mode) == (16, "I;16")
    np.testing.assert_array_equal(np.round(pic.rgb[..., 0] * 65535), grey)
    assert pic.rgb[0, 2, 0] == np.float32(1000) / 65535


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_read_with_opencv(tmp_path, suffix, channels):
    rgba = np.array(
        [[[1000, 2, 65535, 65535], [0, 40000, 3, 1000]], [[7, 8, 9, 0], [65535, 0, 123, 30000]]],
        np.uint16,
    )[..., :channels]
    path = tmp_path / f"a{suffix}"
    assert cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3][:channels]])  # OpenCV takes BGR(A)
    pic = read_image(path)
    np.testing.assert_array_equal(np.round(pic.rgb * 65535), rgba[..., :3])
    assert pic.rgb[0, 0, 0] == np.float32(1000) / 65535  # red channel first: BGR was undone
    assert pic.bit_depth == 16
    if channels == 4:
        np.testing.assert_array_equal(np.round(pic.alpha * 65535), rgba[..., 3])
        assert pic.source_mode == "RGBA16"
    else:
        assert (pic.alpha, pic.source_mode) == (None, "RGB16")


def test_16bit_grey_alpha_png(tmp_path):
    la = np.array([[[1000, 65535], [2000, 0]], [[65535, 1], [0, 40000]]], np.uint16)
    path = tmp_path / "a.png"
    path.write_bytes(_png16(la, colour_type=4))
    pic = read_image(path)
    for c in range(3):
        np.testing.assert_array_equal(np.round(pic.rgb[..., c] * 65535), la[..., 0])
    np.testing.assert_array_equal(np.round(pic.alpha * 65535), la[..., 1])
    assert pic.bit_depth == 16 and not pic.looks_colour


def test_other_formats_read(tmp_path):
    rgb = _u8([[[255, 0, 0], [0, 0, 255]], [[10, 20, 30], [250, 240, 230]]])
    for suffix in (".bmp", ".tiff"):
        pic = read_image(_save(Image.fromarray(rgb), tmp_path / f"a{suffix}"))
        np.testing.assert_array_equal(pic.rgb, _f(rgb))
    pic = read_image(_save(Image.fromarray(rgb), tmp_path / "a.webp", lossless=True))
    np.testing.assert_array_equal(pic.rgb, _f(rgb))


# --- EXIF orientation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "options"),
    [
        (".jpg", {"exif": _exif(6), "quality": 95}),
        (".png", {"exif": _exif(6)}),
        (".tif", {"tiffinfo": {274: 6}}),  # uncompressed: Pillow would memory-map it
        (".tif", {"tiffinfo": {274: 6}, "compression": "tiff_deflate"}),
    ],
)
def test_orientation_6_is_rotated_upright(tmp_path, suffix, options):
    stored = np.zeros((20, 40), np.uint8)  # 40 wide, 20 high as stored
    stored[:6, :6] = 255  # marker in the stored top-left corner
    pic = read_image(_save(Image.fromarray(stored), tmp_path / f"a{suffix}", **options))
    assert pic.rgb.shape == (40, 20, 3)  # orientation 6: turn 90 degrees clockwise to view
    corners = {
        "top-left": pic.rgb[:3, :3],
        "top-right": pic.rgb[:3, -3:],
        "bottom-left": pic.rgb[-3:, :3],
        "bottom-right": pic.rgb[-3:, -3:],
    }
    means = {k: float(v.mean()) for k, v in corners.items()}
    assert means["top-right"] > 0.9, means
    assert max(v for k, v in means.items() if k != "top-right") < 0.1, means


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_orientation_matches_pillow(tmp_path, orientation, suffix):
    # The 16-bit path turns arrays itself; it must agree with Pillow's exif_transpose (8-bit path).
    rgb8 = (np.arange(18).reshape(2, 3, 3) * 13).astype(np.uint8)
    path8 = _save(Image.fromarray(rgb8), tmp_path / "a8.png", exif=_exif(orientation))
    rgb16 = rgb8.astype(np.uint16) * 257  # v * 257 / 65535 == v / 255
    path16 = tmp_path / f"a16{suffix}"
    if suffix == ".png":
        path16.write_bytes(_png16(rgb16, 2, exif=_png_exif(orientation)))
    else:
        path16.write_bytes(_tiff16(rgb16, orientation))
    pic8, pic16 = read_image(path8), read_image(path16)
    assert (pic16.bit_depth, pic16.source_mode) == (16, "RGB16")
    assert pic8.rgb.shape == ((3, 2, 3) if orientation >= 5 else (2, 3, 3))
    np.testing.assert_allclose(pic16.rgb, pic8.rgb, atol=1e-6)
    if orientation == 6:  # turn clockwise: the stored top-left pixel ends up top-right
        np.testing.assert_allclose(pic16.rgb[0, -1], rgb8[0, 0] / 255, atol=1e-6)


def test_pil_input_with_orientation_is_rotated(tmp_path):
    path = _save(Image.new("L", (4, 2), 50), tmp_path / "a.jpg", exif=_exif(8))
    with Image.open(path) as im:
        pic = read_image(im)
    assert pic.rgb.shape == (4, 2, 3)


# --- broken inputs -----------------------------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("photo.txt", "not a photo")
    return buffer.getvalue()


def _truncated(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def _truncated_png16() -> bytes:
    data = np.random.default_rng(0).integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    full = cv2.imencode(".png", data)[1].tobytes()
    return full[: len(full) // 2]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.png", b"", "empty"),
        ("notes.png", b"hello, this is text\nnot pixels\n", "text file"),
        ("archive.png", _zip_bytes(), "ZIP"),
        ("noise.jpg", bytes(range(256)) * 4, "not in any image format"),
        ("cut.png", _truncated("PNG"), "truncated"),
        ("cut.jpg", _truncated("JPEG"), "truncated"),
        ("cut16.png", _truncated_png16(), "truncated"),
    ],
)
def test_bad_files_name_the_file_and_problem(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="no such file") as info:
        read_image(tmp_path / "nope.png")
    assert str(tmp_path / "nope.png") in str(info.value)
    with pytest.raises(ImageReadError, match="directory") as info:
        read_image(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_truncated_pil_input_raises(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(_truncated("JPEG"))
    with Image.open(path) as im, pytest.raises(ImageReadError, match="truncated") as info:
        read_image(im)
    assert str(path) in str(info.value)


def test_wrong_input_type():
    with pytest.raises(ImageReadError, match="expected a file path, a PIL image or a numpy array"):
        read_image(42)


# --- decompression-bomb guard ------------------------------------------------------------------


def _huge_header_png(path: Path, width: int, height: int) -> Path:
    # Only the header is real: nothing may decode this, the guard must fire first.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = _png_chunk(b"IDAT", zlib.compress(b"\0" * 100))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + idat)
    return path


def test_bomb_guard_message(tmp_path):
    path = _huge_header_png(tmp_path / "bomb.png", 20000, 20000)
    pillow_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageReadError) as info:
            read_image(path)
    message = str(info.value)
    for part in (str(path), "400,000,000", "20000 x 20000", f"{DEFAULT_MAX_PIXELS:,}"):
        assert part in message
    assert "max_pixels=None" in message and "--max-pixels 0" in message
    assert pillow_limit == Image.MAX_IMAGE_PIXELS  # Pillow's global is restored


def test_a_side_no_photograph_has_is_refused_before_decoding(tmp_path):
    """1 x 50,000,000 px is under the pixel limit, but a one-row strip is the whole image: it
    took 2.7 GB to colorize (issue 22's hostile battery). Refused from the header; a long but
    real panorama is not."""
    thin = _huge_header_png(tmp_path / "thin.png", 50_000_000, 1)
    with pytest.raises(ImageReadError) as info:
        read_image(thin)
    assert "50000000 x 1" in str(info.value) and "65,535" in str(info.value)
    with pytest.raises(ImageReadError):
        read_pixels_u8(thin)
    panorama = tmp_path / "panorama.png"
    Image.new("L", (6000, 400), 128).save(panorama)
    assert read_image(panorama).rgb.shape == (400, 6000, 3)


def test_default_limit_allows_100_megapixel_scans():
    assert 12_000_000 < 100_000_000 <= DEFAULT_MAX_PIXELS < 1_000_000_000


def test_limit_and_override(tmp_path):
    path = _save(Image.new("L", (10, 10), 7), tmp_path / "a.png")
    with pytest.raises(ImageReadError, match="100 pixels"):
        read_image(path, max_pixels=99)
    assert read_image(path, max_pixels=100).rgb.shape == (10, 10, 3)
    assert read_image(path, max_pixels=None).rgb.shape == (10, 10, 3)
    assert read_image(path, max_pixels=0).rgb.shape == (10, 10, 3)  # as the CLI passes it
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(path, max_pixels=-1)


def test_limit_applies_to_pil_and_arrays():
    with pytest.raises(ImageReadError, match="max_pixels=None"):
        read_image(Image.new("RGB", (10, 10)), max_pixels=50)
    with pytest.raises(ImageReadError, match="max_pixels=None"):
        read_image(np.zeros((10, 10), np.uint8), max_pixels=50)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_pillow_global_limit_does_not_interfere(tmp_path, monkeypatch, suffix):
    # 100 x 100 is over twice this limit: Pillow alone would raise, or warn, before we look.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _save(Image.new("L", (100, 100), 9), tmp_path / f"a{suffix}")
    small = _save(Image.new("L", (40, 40), 9), tmp_path / f"b{suffix}")  # warning range
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).rgb.shape == (100, 100, 3)
        assert read_image(small).rgb.shape == (40, 40, 3)
        with pytest.raises(ImageReadError, match="10,000 pixels"):
            read_image(path, max_pixels=5000)  # our message, not DecompressionBombError
    assert Image.MAX_IMAGE_PIXELS == 1000


# --- colour detection --------------------------------------------------------------------------


def _colour_fixture(kind: str) -> np.ndarray:
    grey = _gradient()
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if kind == "sepia":
        rgb = grey[..., None] * np.array([1.0, 0.85, 0.65], np.float32)
    elif kind == "cyanotype":
        rgb = 0.15 + 0.8 * grey[..., None] * np.array([0.55, 0.8, 1.0], np.float32)
    elif kind == "patches":
        rgb = np.zeros_like(rgb)
        rgb[:, :32, 0] = rgb[:, 32:64, 1] = rgb[:, 64:, 2] = 0.9
    elif kind == "small red object":
        rgb[10:26, 40:56] = [0.9, 0.1, 0.1]  # one hue, but on 4% of the picture only
    return rgb.astype(np.float32)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("grey", False),
        ("sepia", False),
        ("cyanotype", False),
        ("patches", True),
        ("small red object", True),
    ],
)
def test_looks_colour_synthetic(tmp_path, kind, expected):
    rgb = _colour_fixture(kind)
    assert read_image(rgb).looks_colour is expected
    path = write_image(tmp_path / "a.jpg", rgb, jpeg_quality=90)  # and after JPEG's chroma loss
    assert read_image(path).looks_colour is expected


@pytest.mark.parametrize(("size", "suffix"), [(128, ".png"), (512, ".jpg")])
def test_looks_colour_noisy_grey(tmp_path, size, suffix):
    rng = np.random.default_rng(1)
    grey = cv2.resize(_gradient(), (size, size))[..., None]
    noisy = np.clip(grey + rng.normal(0, 0.03, (size, size, 3)), 0, 1)  # independent per channel
    path = _save(Image.fromarray(np.round(noisy * 255).astype(np.uint8)), tmp_path / f"a{suffix}")
    assert read_image(path).looks_colour is False


def test_looks_colour_ignores_transparent_pixels():
    rgba = np.zeros((20, 20, 4), np.float32)
    rgba[:, 10:] = [0.2, 0.6, 0.2, 1.0]  # opaque, one flat green: a tint, not colour
    rgba[:, :10] = [1.0, 0.0, 1.0, 0.0]  # magenta that nobody sees: fully transparent
    assert read_image(rgba).looks_colour is False
    rgba[:, :10, 3] = 1.0  # now both hues show
    assert read_image(rgba).looks_colour is True


@pytest.mark.skipif(not (SHARED / "data" / "bw").is_dir(), reason=f"shared data not at {SHARED}")
def test_looks_colour_on_shared_photos():
    bw = sorted((SHARED / "data" / "bw").glob("*.jpg"))
    assert len(bw) >= 5
    assert [p.name for p in bw if read_image(p).looks_colour] == []  # includes a sepia print
    train = SHARED / "data" / "train"
    names = [
        "imagenet/imagenet_n02165456_ladybug.jpg",
        "imagenet/imagenet_n07754684_jackfruit.jpg",
        "imagenet/imagenet_n03662601_lifeboat.jpg",
        "set5/set5_butterfly.jpg",
        "set14/set14_flowers.jpg",
    ]
    colour = [train / n for n in names if (train / n).is_file()]
    if not colour:
        pytest.skip(f"no colour photos found under {train}")
    assert [p.name for p in colour if not read_image(p).looks_colour] == []


# --- numpy and PIL inputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "mode", "bit_depth", "top"),
    [
        (_u8([[0, 51], [204, 255]]), "L", 8, 255),
        (_u8([[[0], [51]], [[204], [255]]]), "L", 8, 255),
        (np.array([[0, 1000], [40000, 65535]], np.uint16), "I;16", 16, 65535),
        (np.array([[0.0, 0.25], [0.5, 1.0]], np.float64), "F", 16, 1),
    ],
)
def test_grey_arrays(array, mode, bit_depth, top):
    pic = read_image(array)
    expected = array.reshape(2, 2).astype(np.float32) / top
    for c in range(3):
        np.testing.assert_array_equal(pic.rgb[..., c], expected)
    assert (pic.source_mode, pic.bit_depth, pic.alpha) == (mode, bit_depth, None)


def test_colour_arrays():
    rgba = _u8([[[255, 0, 0, 255], [0, 255, 0, 0]]])
    pic = read_image(rgba)
    np.testing.assert_array_equal(pic.rgb, _f(rgba[..., :3]))
    np.testing.assert_array_equal(pic.alpha, [[1, 0]])
    assert (pic.source_mode, pic.bit_depth) == ("RGBA", 8)
    pic = read_image(rgba[..., :3].astype(np.uint16) * 257)
    np.testing.assert_allclose(pic.rgb, _f(rgba[..., :3]), atol=1e-7)
    assert (pic.source_mode, pic.bit_depth, pic.alpha) == ("RGB16", 16, None)
    pic = read_image(np.full((2, 2, 3), 1.02, np.float32))  # mild overshoot is clipped
    assert pic.rgb.max() == 1.0 and pic.source_mode == "RGBF"
    la = read_image(np.dstack([np.full((2, 2), 0.5), np.zeros((2, 2))]).astype(np.float32))
    assert la.source_mode == "LAF" and la.alpha is not None and la.alpha.max() == 0


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((4, 4, 5), np.uint8), "got shape (4, 4, 5)"),
        (np.zeros((2, 4, 4, 3), np.uint8), "got shape (2, 4, 4, 3)"),
        (np.zeros((0, 4), np.uint8), "got shape (0, 4"),
        (np.zeros(7, np.uint8), "expected an H x W"),
        (np.zeros((4, 4), np.int32), "unsupported dtype int32"),
        (np.zeros((4, 4), bool), "unsupported dtype bool"),
        (np.full((4, 4, 3), 200.0), "must lie in [0, 1], got 200 to 200"),
        (np.full((4, 4), np.nan, np.float32), "must lie in [0, 1]"),
    ],
)
def test_bad_arrays(array, words):
    with pytest.raises(ImageReadError) as info:
        read_image(array)
    assert words in str(info.value)


def test_pil_deep_modes():
    pic = read_image(Image.fromarray(np.array([[0, 1000, 65535, 70000]], np.int32)))
    assert pic.source_mode == "I" and pic.bit_depth == 16
    np.testing.assert_allclose(pic.rgb[0, :, 0], [0, 1000 / 65535, 1, 1], rtol=1e-6)
    pic = read_image(Image.fromarray(np.array([[0.0, 0.5, 2.0]], np.float32)))
    assert pic.source_mode == "F"
    np.testing.assert_array_equal(pic.rgb[0, :, 1], [0, 0.5, 1])


@pytest.mark.parametrize(("height", "width"), [(1, 1), (30, 10000), (10000, 30)])
def test_extreme_sizes(tmp_path, height, width):
    rgb = np.random.default_rng(2).random((height, width, 3), dtype=np.float32)
    for suffix in (".png", ".jpg"):
        pic = read_image(write_image(tmp_path / f"a{suffix}", rgb))
        assert pic.rgb.shape == (height, width, 3)
        assert isinstance(pic.looks_colour, bool)
    assert read_image(rgb).rgb.shape == (height, width, 3)


# --- writing -----------------------------------------------------------------------------------


def _random_rgb(seed: int = 3, shape=(5, 7)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, 3)).astype(np.float32) / 255


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff", ".bmp", ".PNG"])
def test_write_lossless_8bit_round_trip(tmp_path, suffix):
    rgb = _random_rgb()
    path = write_image(tmp_path / f"out{suffix}", rgb)
    assert path == tmp_path / f"out{suffix}"
    pic = read_image(path)
    np.testing.assert_array_equal(pic.rgb, rgb)
    assert pic.bit_depth == 8


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_write_lossy_round_trip(tmp_path, suffix):
    rgb = np.repeat(_gradient()[..., None], 3, axis=2) * np.array([1.0, 0.8, 0.6], np.float32)
    pic = read_image(write_image(tmp_path / f"out{suffix}", rgb))
    np.testing.assert_allclose(pic.rgb, rgb, atol=0.04)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_write_16bit_keeps_precision(tmp_path, suffix):
    rgb = np.array([[[1000, 2, 65535], [0, 40000, 3]]], np.float32) / 65535
    alpha = np.array([[1000, 65535]], np.float32) / 65535
    path = write_image(tmp_path / f"out{suffix}", rgb, alpha, bit_depth=16)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw[0, 0], [65535, 2, 1000, 1000])  # BGRA in the file
    pic = read_image(path)
    assert pic.bit_depth == 16 and pic.source_mode == "RGBA16"
    np.testing.assert_array_equal(np.round(pic.rgb * 65535), np.round(rgb * 65535))
    np.testing.assert_array_equal(np.round(pic.alpha * 65535), [[1000, 65535]])
    assert pic.rgb[0, 0, 0] == np.float32(1000) / 65535


def test_write_16bit_rgb_without_alpha(tmp_path):
    rgb = np.array([[[1000, 2, 65535]]], np.float32) / 65535
    pic = read_image(write_image(tmp_path / "out.png", rgb, bit_depth=16))
    assert (pic.source_mode, pic.alpha) == ("RGB16", None)
    assert pic.rgb[0, 0, 0] == np.float32(1000) / 65535


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp"])
def test_write_16bit_request_for_8bit_format_gives_8bit(tmp_path, suffix):
    path = write_image(tmp_path / f"out{suffix}", _random_rgb(), bit_depth=16)
    with Image.open(path) as im:
        assert im.mode == "RGB"


@pytest.mark.parametrize(
    ("suffix", "kept"),
    [(".png", True), (".tif", True), (".webp", True), (".jpg", False), (".bmp", False)],
)
def test_write_alpha_kept_or_dropped(tmp_path, suffix, kept):
    rgb = np.full((16, 16, 3), 0.5, np.float32)
    alpha = np.zeros((16, 16), np.float32)
    alpha[:, 8:] = 1.0
    path = write_image(tmp_path / f"out{suffix}", rgb, alpha)
    with Image.open(path) as im:
        assert im.mode == ("RGBA" if kept else "RGB")
    pic = read_image(path)
    if kept:
        np.testing.assert_array_equal(pic.alpha, alpha)
    else:
        assert pic.alpha is None
        np.testing.assert_allclose(pic.rgb, 0.5, atol=0.01)  # dropped, not composited


def test_write_unknown_suffix(tmp_path):
    path = tmp_path / "sub" / "out.gif"
    with pytest.raises(ColorizerError) as info:
        write_image(path, _random_rgb())
    message = str(info.value)
    assert str(path) in message and ".png, .jpg, .jpeg, .tif, .tiff, .webp, .bmp" in message
    assert not (tmp_path / "sub").exists()


def test_write_creates_parent_directories(tmp_path):
    path = write_image(tmp_path / "a" / "b" / "out.png", _random_rgb())
    assert path.is_file() and _names(path.parent) == ["out.png"]


@pytest.mark.parametrize(
    ("rgb", "alpha", "options", "words"),
    [
        (np.zeros((4, 4), np.float32), None, {}, "H x W x 3"),
        (np.zeros((4, 4, 3), np.int32), None, {}, "float in .0, 1. or uint8"),
        (np.zeros((4, 4, 3), np.float32), np.zeros((4, 5)), {}, "alpha"),
        (np.zeros((4, 4, 3), np.float32), None, {"bit_depth": 12}, "bit_depth"),
        (np.zeros((4, 4, 3), np.float32), None, {"jpeg_quality": 0}, "jpeg_quality"),
    ],
)
def test_write_rejects_bad_arguments(tmp_path, rgb, alpha, options, words):
    with pytest.raises(ValueError, match=words):
        write_image(tmp_path / "out.png", rgb, alpha, **options)
    assert _names(tmp_path) == []


def _failing_pillow_save(self, fp, *args, **kwargs):
    fp.write(b"half an image")
    raise OSError("disk full")


def _failing_imencode(*args, **kwargs):
    raise OSError("OpenCV ran out of memory")


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_write_is_atomic_on_encoder_failure(tmp_path, monkeypatch, bit_depth):
    existing = tmp_path / "out.png"
    existing.write_bytes(b"old picture")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(Image.Image, "save", _failing_pillow_save)
    monkeypatch.setattr(cv2, "imencode", _failing_imencode)
    for target in (existing, tmp_path / "empty" / "new.png"):
        with pytest.raises(OSError):
            write_image(target, _random_rgb(), bit_depth=bit_depth)
    assert existing.read_bytes() == b"old picture"
    assert _names(tmp_path) == ["empty", "out.png"]
    assert _names(tmp_path / "empty") == []


def test_write_is_atomic_when_failing_after_the_data_is_written(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_image(tmp_path / "out.tif", _random_rgb(), bit_depth=16)
    assert _names(tmp_path) == []


def test_write_onto_a_directory_leaves_no_temp_file(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(OSError):
        write_image(tmp_path / "out.png", _random_rgb())
    assert _names(tmp_path) == ["out.png"]


def test_write_replaces_and_uses_normal_permissions(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    write_image(path, _random_rgb())
    assert read_image(path).rgb.shape == (5, 7, 3)
    assert _names(tmp_path) == ["out.png"]
    if sys.platform != "win32":
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
        assert path.stat().st_mode == plain.stat().st_mode  # the umask decides, not 0o600


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_compression_changes_the_size_not_the_pixels(tmp_path, bit_depth):
    smooth = np.linspace(0, 1, 64 * 96 * 3, dtype=np.float32).reshape(64, 96, 3)
    default = write_image(tmp_path / "default.png", smooth, bit_depth=bit_depth)
    stored = write_image(tmp_path / "stored.png", smooth, bit_depth=bit_depth, png_compression=0)
    best = write_image(tmp_path / "best.png", smooth, bit_depth=bit_depth, png_compression=9)
    assert stored.stat().st_size > default.stat().st_size >= best.stat().st_size
    for path in (stored, best):
        np.testing.assert_array_equal(read_image(path).rgb, read_image(default).rgb)


def test_png_compression_default_is_level_1_and_checked(tmp_path):
    rgb = _random_rgb(shape=(40, 50))
    path = write_image(tmp_path / "out.png", rgb)
    pillow = io.BytesIO()
    pixels = np.round(rgb * 255).astype(np.uint8)
    Image.fromarray(pixels).save(pillow, format="PNG", compress_level=DEFAULT_PNG_COMPRESSION)
    assert DEFAULT_PNG_COMPRESSION == 1
    assert path.read_bytes() == pillow.getvalue()
    write_image(tmp_path / "out.jpg", rgb, png_compression=1)  # ignored for other formats
    for level in (-1, 10):
        with pytest.raises(ValueError, match="png_compression"):
            write_image(tmp_path / "bad.png", rgb, png_compression=level)


# --- to_like -----------------------------------------------------------------------------------

_RGB = np.array([[[0.0, 0.5, 1.0], [0.2, 0.4, 0.6]]], np.float32)
_ALPHA = np.array([[1.0, 0.0]], np.float32)


@pytest.mark.parametrize(
    ("like", "shape", "expected_first"),
    [
        (np.zeros((1, 2), np.uint8), (1, 2, 3), [0, 128, 255]),
        (np.zeros((1, 2, 3), np.uint8), (1, 2, 3), [0, 128, 255]),
        (np.zeros((1, 2, 4), np.uint8), (1, 2, 4), [0, 128, 255, 255]),
        (np.zeros((1, 2, 2), np.uint16), (1, 2, 4), [0, 32768, 65535, 65535]),
        (np.zeros((1, 2, 3), np.uint16), (1, 2, 3), [0, 32768, 65535]),
        (np.zeros((1, 2, 3), np.float32), (1, 2, 3), [0, 0.5, 1]),
        (np.zeros((1, 2, 4), np.float64), (1, 2, 4), [0, 0.5, 1, 1]),
    ],
)
def test_to_like_array(like, shape, expected_first):
    out = to_like(_RGB, _ALPHA, like)
    assert isinstance(out, np.ndarray) and out.dtype == like.dtype and out.shape == shape
    np.testing.assert_allclose(out[0, 0], expected_first, rtol=1e-6)
    if shape[2] == 4:
        assert out[0, 1, 3] == 0  # the given alpha, not a made-up one


@pytest.mark.parametrize(
    ("like", "mode"),
    [
        (Image.new("L", (2, 1)), "RGB"),
        (Image.new("RGB", (2, 1)), "RGB"),
        (Image.new("I;16", (2, 1)), "RGB"),
        (Image.new("LA", (2, 1)), "RGBA"),
        (Image.new("RGBA", (2, 1)), "RGBA"),
        (Image.new("P", (2, 1)), "RGB"),
    ],
)
def test_to_like_pil(like, mode):
    out = to_like(_RGB, _ALPHA, like)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == (2, 1)
    assert out.getpixel((0, 0))[:3] == (0, 128, 255)


def test_to_like_pil_palette_with_transparency(tmp_path):
    path = _save(_palette_image(), tmp_path / "a.png", transparency=3)
    with Image.open(path) as like:
        pic = read_image(like)
        out = to_like(pic.rgb, pic.alpha, like)
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0)) == (255, 0, 0, 255)
    assert out.getpixel((3, 0)) == (9, 9, 9, 0)


def test_to_like_alpha_missing_or_unwanted():
    assert to_like(_RGB, None, Image.new("RGBA", (2, 1))).getpixel((1, 0))[3] == 255
    assert to_like(_RGB, _ALPHA, np.zeros((1, 2, 3), np.uint8)).shape == (1, 2, 3)


def test_to_like_path(tmp_path):
    out = to_like(_RGB, None, tmp_path / "in.png")
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    out = to_like(_RGB, _ALPHA, str(tmp_path / "in.png"))
    assert out.mode == "RGBA" and out.getpixel((1, 0)) == (51, 102, 153, 0)


def test_to_like_rejects_other_kinds():
    with pytest.raises(TypeError):
        to_like(_RGB, None, 3.5)


def test_picture_is_what_read_image_returns(tmp_path):
    pic = read_image(_save(Image.new("RGB", (3, 2), (10, 20, 30)), tmp_path / "a.png"))
    assert isinstance(pic, Picture)
    assert pic.rgb.flags.c_contiguous and pic.rgb.dtype == np.float32


def test_a_16_bit_png_keeps_the_metadata(tmp_path):
    from colorizer.imageio import Metadata

    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"  # Artist
    metadata = Metadata(exif, None, (600.0, 600.0)).marked("colorizer test", "Colorized by machine")
    rgb = _random_rgb(shape=(20, 30))
    plain = write_image(tmp_path / "plain.png", rgb, bit_depth=16)
    kept = write_image(tmp_path / "kept.png", rgb, bit_depth=16, metadata=metadata)
    with Image.open(kept) as image:
        tags = image.getexif()
        assert tags[0x013B] == "A. Photographer" and tags[0x0131] == "colorizer test"
        assert tags[0x010E] == "Colorized by machine"
        assert round(image.info["dpi"][0]) == 600
    # The pixels are OpenCV's 16-bit ones, untouched.
    unchanged = cv2.IMREAD_UNCHANGED
    np.testing.assert_array_equal(
        cv2.imread(str(kept), unchanged), cv2.imread(str(plain), unchanged)
    )
    assert cv2.imread(str(kept), unchanged).dtype == np.uint16


def test_a_tiffs_layout_tags_are_not_taken_for_its_metadata(tmp_path):
    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"  # Artist
    src = _save(
        Image.new("RGB", (9, 7), (90, 90, 90)), tmp_path / "scan.tif", exif=exif, dpi=(300, 300)
    )
    kept = read_image(src).metadata.exif
    assert kept[0x013B] == "A. Photographer"
    # ImageWidth, BitsPerSample, Compression, StripOffsets ... describe scan.tif only.
    assert not {0x0100, 0x0102, 0x0103, 0x0111, 0x0117} & set(kept)


def test_a_16_bit_tiff_keeps_the_metadata_text_as_ascii(tmp_path):
    from colorizer.imageio import Metadata

    exif = Image.Exif()
    exif[0x013B] = "Café"  # Artist; TIFF text is 7-bit ASCII
    exif[0x8298] = "(c) The Archive"  # Copyright
    metadata = Metadata(exif, None, (600.0, 600.0)).marked("colorizer test", "Colorized by machine")
    rgb = _random_rgb(shape=(20, 30))
    out = write_image(tmp_path / "kept.tif", rgb, bit_depth=16, metadata=metadata)
    with Image.open(out) as image:
        tags = image.getexif()
        assert tags[0x013B] == "Caf?" and tags[0x8298] == "(c) The Archive"
        assert tags[0x0131] == "colorizer test" and tags[0x010E] == "Colorized by machine"
        assert round(image.info["dpi"][0]) == 600
    back = read_image(out)
    assert back.bit_depth == 16
    np.testing.assert_allclose(back.rgb, rgb, atol=0.5 / 65535)


def test_read_pixels_u8_keeps_the_bytes_upright(tmp_path):
    from colorizer.imageio import read_pixels_u8

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    exif = Image.Exif()
    exif[0x0112] = 8  # Orientation: turn 90 degrees counter-clockwise to view
    src = _save(Image.fromarray(grey), tmp_path / "scan.png", exif=exif)
    pixels = read_pixels_u8(src)
    np.testing.assert_array_equal(pixels.data, np.rot90(grey, 1))
    assert pixels.alpha is None and not pixels.looks_colour
    # The float reader agrees on the orientation.
    np.testing.assert_array_equal(read_image(src).rgb[..., 0] * 255, np.rot90(grey, 1))


def test_read_pixels_u8_leaves_other_kinds_to_read_image(tmp_path):
    from colorizer.imageio import read_pixels_u8

    deep = _save(Image.fromarray(np.zeros((4, 5), np.uint16)), tmp_path / "deep.png")
    palette = _save(Image.new("P", (4, 5)), tmp_path / "palette.png")
    assert read_pixels_u8(deep) is None and read_pixels_u8(palette) is None
    with pytest.raises(ImageReadError, match=r"nosuch\.png.*no such file"):
        read_pixels_u8(tmp_path / "nosuch.png")


def test_read_pixels_u8_finds_colour(tmp_path):
    from colorizer.imageio import read_pixels_u8

    rng = np.random.default_rng(0)
    colour = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    grey = np.repeat(colour[..., :1], 3, axis=2)
    assert read_pixels_u8(_save(Image.fromarray(colour), tmp_path / "c.png")).looks_colour
    assert not read_pixels_u8(_save(Image.fromarray(grey), tmp_path / "g.png")).looks_colour


def test_write_image_takes_bytes_at_8_bits_only(tmp_path):
    rgb = (_random_rgb() * 255).round().astype(np.uint8)
    out = write_image(tmp_path / "bytes.png", rgb, np.full(rgb.shape[:2], 128, np.uint8))
    np.testing.assert_array_equal(np.asarray(Image.open(out))[..., :3], rgb)
    with pytest.raises(ValueError, match="bit_depth 8 only"):
        write_image(tmp_path / "deep.png", rgb, bit_depth=16)
    with pytest.raises(ValueError, match="alpha must be of rgb's kind"):
        write_image(tmp_path / "mixed.png", rgb, np.ones(rgb.shape[:2], np.float32))
