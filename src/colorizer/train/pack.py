"""Pack a training folder small enough to travel: every photo shrunk to a short side and saved
under the same relative path (so the hash-chosen validation split is the same photos), as JPEG,
or PNG where the name says so.

The GPU machine receives at most 64 MiB with the checkout (docs/training.md): the 7,792
photos of ../shared/data/train at a short side of 128 px and JPEG quality 85 take about 40 MiB.

    python -m colorizer.train.pack ../shared/data/train gpu_data --side 128
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from colorizer import imageio
from colorizer.errors import ColorizerError
from colorizer.files import atomic_write
from colorizer.train.data import find_images

MAX_ASPECT = 1.5  # longer side at most this x the short side: panoramas cost bytes, not colours


def pack_photo(source: Path, target: Path, side: int, quality: int) -> int:
    """One photo shrunk to ``side`` on its short side (never enlarged), centre-cut to
    ``MAX_ASPECT``, written atomically; returns its size in bytes."""
    rgb = imageio.read_image(source).rgb
    height, width = rgb.shape[:2]
    scale = min(1.0, side / min(height, width))
    if scale < 1:
        size = (max(side, round(width * scale)), max(side, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    height, width = rgb.shape[:2]
    keep_h, keep_w = min(height, round(width * MAX_ASPECT)), min(width, round(height * MAX_ASPECT))
    top, left = (height - keep_h) // 2, (width - keep_w) // 2
    rgb = rgb[top : top + keep_h, left : left + keep_w]
    pixels = Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    jpeg = target.suffix.lower() in (".jpg", ".jpeg")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as f:
        pixels.save(f, "JPEG" if jpeg else "PNG", **({"quality": quality} if jpeg else {}))
    return target.stat().st_size


def pack(source: Path, out: Path, side: int, quality: int) -> tuple[int, int, list[str]]:
    """Pack every photo of ``source`` into ``out``: (photos, bytes, failures)."""
    count, total, failed = 0, 0, []
    for path in find_images(source):
        target = out / path.relative_to(source)
        try:
            total += (
                target.stat().st_size
                if target.is_file()
                else pack_photo(path, target, side, quality)
            )
            count += 1
        except (ColorizerError, OSError, ValueError) as exc:
            failed.append(f"{path}: {exc}")
    return count, total, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of colour photos (searched recursively)")
    parser.add_argument("out", type=Path, help="folder to write (existing photos are kept)")
    parser.add_argument("--side", type=int, default=128, help="short side in pixels (128)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality (85)")
    args = parser.parse_args(argv)
    if not 32 <= args.side <= 4096 or not 1 <= args.quality <= 100:
        parser.error("--side must be 32..4096 and --quality 1..100")
    try:
        count, total, failed = pack(args.source, args.out, args.side, args.quality)
    except ColorizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in failed:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{count} photos, {total / 2**20:.1f} MiB in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
