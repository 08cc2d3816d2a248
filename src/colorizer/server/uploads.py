"""One request's uploaded files: copied into the temp area under random names within the size
limit, then read by ``colorizer.imageio`` (its pixel limit, EXIF orientation and messages), and
the result encoded by it too. A client's file name is never used for anything.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

import numpy as np
from PIL import Image

from colorizer import imageio
from colorizer.errors import ImageReadError
from colorizer.server.errors import ApiError
from colorizer.server.jobs import TempArea
from colorizer.server.settings import MB

_Decoded = TypeVar("_Decoded")

_COPY_CHUNK = 1 << 20
_JPEG_QUALITY = 92
_FORMATS = {"png": ".png", "jpeg": ".jpg"}


def copy_limited(source, path: Path, limit: int, name: str) -> None:
    """Copy the file object ``source`` to ``path``; 413 once it passes ``limit`` bytes."""
    source.seek(0)
    copied = 0
    with path.open("wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise ApiError(413, f"the {name} is too large: the limit is {limit / MB:g} MB")
            out.write(chunk)


class Uploads:
    """The uploaded parts of one request (``UploadFile`` s or bytes), by field name."""

    def __init__(self, temp: TempArea, files: dict, *, max_bytes: int, max_pixels: int) -> None:
        self.temp = temp
        self.files = {name: f for name, f in files.items() if f is not None}
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self.paths: dict[str, Path] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def save(self, name: str) -> Path:
        """Copy an uploaded part into the temp area under a random name, within the limit
        (once: later calls give the same file)."""
        if name in self.paths:
            return self.paths[name]
        upload = self.files[name]
        limit = self.max_bytes
        path = self.temp.upload_path()
        self.paths[name] = path
        if isinstance(upload, bytes):
            if len(upload) > limit:
                raise ApiError(413, f"the {name} is too large: the limit is {limit / MB:g} MB")
            path.write_bytes(upload)
        else:
            copy_limited(upload.file, path, limit, name)
        if path.stat().st_size == 0:
            raise ApiError(400, f"the {name} upload is empty (0 bytes)")
        return path

    def read(self, name: str) -> imageio.Picture:
        """Save and decode an uploaded image (upright); 413 over the pixel limit."""
        path = self.save(name)
        return self._decode(lambda: imageio.read_image(path, max_pixels=self.max_pixels))

    def read_pixels(self, name: str) -> imageio.Picture | imageio.Pixels8:
        """As ``read``, but an 8-bit L, LA, RGB or RGBA image comes as its bytes (``Pixels8``,
        for ``Colorizer.colorize_pixels``: a quarter of the memory, the same result)."""
        path = self.save(name)
        pixels = self._decode(lambda: imageio.read_pixels_u8(path, max_pixels=self.max_pixels))
        if pixels is not None:
            return pixels
        return self._decode(lambda: imageio.read_image(path, max_pixels=self.max_pixels))

    def _decode(self, read: Callable[[], _Decoded]) -> _Decoded:
        try:
            return read()
        except ImageReadError as exc:
            message = self.describe(str(exc))
            if message.startswith("refusing to read"):  # imageio's pixel limit, from the header
                raise ApiError(413, message.split(". If you trust it", 1)[0]) from None
            raise

    def scribbles(self, size: tuple[int, int]) -> Image.Image:
        """The painted strokes scaled to the photo's ``size`` (width, height): the UI paints on
        a canvas of at most 2048 pixels a side."""
        picture = self.read("scribbles")
        strokes = imageio.to_like(picture.rgb, picture.alpha, self.paths["scribbles"])
        if strokes.size != size:
            strokes = strokes.resize(size, Image.Resampling.NEAREST)
        return strokes

    def describe(self, message: str) -> str:
        """``message`` with the temp-area paths of these uploads replaced by their field names."""
        for name, path in self.paths.items():
            message = message.replace(f"image file '{path}'", self.called(name))
            message = message.replace(str(path), self.called(name))
        return message

    def called(self, name: str) -> str:
        """How messages name an upload: its field and the client's own file name, if any."""
        filename = getattr(self.files.get(name), "filename", None) or ""
        filename = re.sub(r"[^\w .,+()-]", "", PurePosixPath(filename.replace("\\", "/")).name)[:64]
        return f"the uploaded {name} '{filename}'" if filename.strip() else f"the uploaded {name}"

    def cleanup(self) -> None:
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.unlink()


def image_header(path: Path) -> tuple[int, str] | None:
    """(width x height, Pillow mode) from an image file's header, decoding no pixels; None
    where Pillow cannot read the header (decoding then says what is wrong)."""
    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1], im.mode
    except Exception:
        return None


def as_array(picture: imageio.Picture) -> np.ndarray:
    """A decoded picture as the float array ``read_image`` gives back unchanged (alpha kept)."""
    if picture.alpha is None:
        return picture.rgb
    return np.dstack([picture.rgb, picture.alpha])


def encode(
    temp: TempArea,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    fmt: str,
    metadata: imageio.Metadata | None = None,
) -> bytes:
    """The result as PNG (alpha kept) or JPEG bytes, written by ``imageio.write_image``, with
    ``metadata`` (the upload's EXIF, DPI and ICC profile, marked machine-colorized)."""
    path = temp.upload_path(_FORMATS[fmt])
    try:
        imageio.write_image(path, rgb, alpha, jpeg_quality=_JPEG_QUALITY, metadata=metadata)
        return path.read_bytes()
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
