"""Point hints: parsing, the published SIGGRAPH17 encoding, and ground-truth sampling.

A hint is a point in *image* pixel coordinates (x to the right, y down, 0-based, the pixel's
centre at integer coordinates) with a colour, ``"#RRGGBB"`` or Lab ``(a, b)``, and a square
patch measured on the network's input grid (SIGGRAPH17's 256 x 256), as the published tool and
its evaluation protocol use it (5 x 5 by default).

Encoding (``encode_hints``), exactly as the published networks take it: the photo is resized to
the S x S grid, a point at image (x, y) falls on grid cell (floor(x * S / W), floor(y * S / H));
its P x P patch starts P // 2 cells up and left of it (clipped to the grid), and there the hint
ab is the colour's raw ab and the mask 1; elsewhere both are 0. The network input is then
[ab / 110, mask] (``colornet_hints.hint_channels``; ``siggraph17`` divides by 110 itself).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from colorizer import color, planes
from colorizer.errors import ColorizerError

DEFAULT_PATCH = 5
MAX_PATCH = 64


@dataclass(frozen=True)
class PointHint:
    """A user's colour at one point: image pixel coordinates, a colour, a patch side (grid)."""

    x: float
    y: float
    color: str | tuple[float, float]
    patch: int = DEFAULT_PATCH

    @property
    def ab(self) -> tuple[float, float]:
        """The hint's colour as Lab (a, b)."""
        return hint_ab(self.color)


def hint_ab(value) -> tuple[float, float]:
    """``"#RRGGBB"`` -> its Lab ab; a pair of numbers -> (a, b) as given."""
    if isinstance(value, str):
        return color.hex_to_ab(value)
    a, b = value
    return float(a), float(b)


def _entry_hint(entry, where: str) -> PointHint:
    if isinstance(entry, dict):
        unknown = set(entry) - {"x", "y", "color", "colour", "ab", "patch"}
        if unknown:
            raise ColorizerError(f"{where}: unknown keys {sorted(unknown)}")
        if "x" not in entry or "y" not in entry:
            raise ColorizerError(f"{where}: needs 'x' and 'y' (image pixel coordinates)")
        x, y = entry["x"], entry["y"]
        value = entry.get("color", entry.get("colour", entry.get("ab")))
        patch = entry.get("patch", DEFAULT_PATCH)
    elif isinstance(entry, list | tuple) and len(entry) in (3, 4):
        x, y, value = entry[:3]
        patch = entry[3] if len(entry) == 4 else DEFAULT_PATCH
    else:
        raise ColorizerError(
            f"{where}: expected an object {{'x', 'y', 'color', 'patch'?}} or [x, y, color], "
            f"got {entry!r}"
        )
    for name, number in (("x", x), ("y", y)):
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ColorizerError(f"{where}: {name} must be a number, got {number!r}")
        if not math.isfinite(number):
            raise ColorizerError(f"{where}: {name} must be finite, got {number!r}")
    if value is None:
        raise ColorizerError(f"{where}: needs a 'color' ('#RRGGBB' or Lab [a, b])")
    if isinstance(value, list | tuple):
        if len(value) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        ):
            raise ColorizerError(f"{where}: a Lab colour is two numbers [a, b], got {value!r}")
        if max(abs(v) for v in value) > 128:
            raise ColorizerError(f"{where}: Lab a and b lie within [-128, 127], got {value!r}")
        value = (float(value[0]), float(value[1]))
    elif isinstance(value, str):
        try:
            color.hex_to_ab(value)
        except ValueError as exc:
            raise ColorizerError(f"{where}: {exc}") from None
    else:
        raise ColorizerError(f"{where}: colour must be '#RRGGBB' or [a, b], got {value!r}")
    if isinstance(patch, bool) or not isinstance(patch, int) or not 1 <= patch <= MAX_PATCH:
        raise ColorizerError(f"{where}: patch must be an integer 1..{MAX_PATCH}, got {patch!r}")
    return PointHint(float(x), float(y), value, patch)


def parse_hints(data, source: str = "hints") -> list[PointHint]:
    """Point hints from parsed JSON (a list, or ``{"points": [...]}``) or a JSON string.

    Raises ``ColorizerError`` naming ``source`` and the bad entry's index.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ColorizerError(f"{source}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        if "points" not in data:
            raise ColorizerError(f"{source}: expected a list of points or {{'points': [...]}}")
        data = data["points"]
    if not isinstance(data, list):
        raise ColorizerError(f"{source}: expected a list of points, got {type(data).__name__}")
    return [_entry_hint(entry, f"{source}: point {i}") for i, entry in enumerate(data)]


def read_hints_file(path) -> list[PointHint]:
    try:
        text = open(path, encoding="utf-8").read()  # noqa: SIM115 - closed by the GC at once
    except OSError as exc:
        raise ColorizerError(f"{path}: cannot read hints file ({exc.strerror})") from None
    return parse_hints(text, source=str(path))


def parse_hint_arg(text: str) -> PointHint:
    """``X,Y,#RRGGBB`` or ``X,Y,A,B`` (Lab), optionally ``...,pPATCH`` (command line)."""
    parts = [p.strip() for p in text.split(",")]
    patch = DEFAULT_PATCH
    if parts and parts[-1].lower().startswith("p") and parts[-1][1:].isdigit():
        patch = int(parts.pop()[1:])
    try:
        if len(parts) == 3:
            entry = [float(parts[0]), float(parts[1]), parts[2], patch]
        elif len(parts) == 4:
            entry = [float(parts[0]), float(parts[1]), [float(parts[2]), float(parts[3])], patch]
        else:
            raise ValueError
    except ValueError:
        raise ColorizerError(
            f"--hint {text!r}: expected X,Y,#RRGGBB or X,Y,A,B (optionally ,pPATCH)"
        ) from None
    return _entry_hint(entry, f"--hint {text!r}")


def check_inside(points: Iterable[PointHint], width: int, height: int, source: str = "hint"):
    """Every point must lie on the image (``-0.5 <= x < W - 0.5``, likewise y)."""
    for i, point in enumerate(points):
        planes.check_point(point.x, point.y, width, height, f"{source} {i}")


def patch_box(point: PointHint, width: int, height: int, grid_w: int, grid_h: int):
    """The hint's patch on a grid_h x grid_w grid: (top, bottom, left, right), end-exclusive."""
    gx = min(max(math.floor((point.x + 0.5) * grid_w / width), 0), grid_w - 1)
    gy = min(max(math.floor((point.y + 0.5) * grid_h / height), 0), grid_h - 1)
    top, left = max(gy - point.patch // 2, 0), max(gx - point.patch // 2, 0)
    bottom = min(gy - point.patch // 2 + point.patch, grid_h)
    right = min(gx - point.patch // 2 + point.patch, grid_w)
    return top, bottom, left, right


def encode_hints(
    points: Sequence[PointHint], width: int, height: int, grid: int | tuple[int, int] = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Published SIGGRAPH17 hint planes on the grid: raw ab (2 x h x w) and 0/1 mask (1 x h x w).

    Later points overwrite earlier ones where patches overlap.
    """
    grid_h, grid_w = (grid, grid) if isinstance(grid, int) else grid
    ab = np.zeros((2, grid_h, grid_w), np.float32)
    mask = np.zeros((1, grid_h, grid_w), np.float32)
    for point in points:
        top, bottom, left, right = patch_box(point, width, height, grid_w, grid_h)
        a, b = point.ab
        ab[0, top:bottom, left:right] = a
        ab[1, top:bottom, left:right] = b
        mask[0, top:bottom, left:right] = 1.0
    return ab, mask


def sample_hints(
    ab: np.ndarray,
    count: int,
    rng: np.random.Generator,
    patch: int | Sequence[int] = DEFAULT_PATCH,
    normal: bool = False,
) -> list[PointHint]:
    """``count`` hints from ground-truth ab on the grid (H x W x 2), as the published protocol
    samples them: a P x P patch at a random place (uniform, or ``normal`` around the centre as in
    training), its value the patch's mean ground-truth ab. Coordinates are grid pixels (pass the
    grid size as the image size when encoding)."""
    height, width = ab.shape[:2]
    hints = []
    for _ in range(count):
        size = int(patch if isinstance(patch, int) else rng.choice(patch))
        size = min(size, height, width)
        if normal:
            top = int(
                np.clip(
                    rng.normal((height - size + 1) / 2, (height - size + 1) / 4), 0, height - size
                )
            )
            left = int(
                np.clip(rng.normal((width - size + 1) / 2, (width - size + 1) / 4), 0, width - size)
            )
        else:
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
        mean = ab[top : top + size, left : left + size].reshape(-1, 2).mean(axis=0)
        hints.append(
            PointHint(left + size // 2, top + size // 2, (float(mean[0]), float(mean[1])), size)
        )
    return hints


def geometric_count(rng: np.random.Generator, p: float = 1 / 8) -> int:
    """SIGGRAPH17 training: keep adding points while a coin with P(stop) = p says go on."""
    count = 0
    while rng.random() < 1 - p:
        count += 1
    return count
