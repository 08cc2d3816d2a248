"""Make the README's before/after picture and the gallery of the nine genuine B&W photos.

    python docs/make_gallery.py ../shared/data/bw --model colornet-v2

writes ``docs/gallery_bw.jpg`` (each photo as scanned | as colorized, three pairs a row, every
pair scaled to one height so nothing is left empty) and ``docs/before_after.jpg`` (the
``--feature`` photo, larger). The photos themselves are not part of the project (see
``../shared/data/SOURCES.md``); only these two pictures are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageOps

from colorizer import Colorizer, imageio

GAP = 8
BACKGROUND = (255, 255, 255)


def pair(before: Image.Image, after: Image.Image, height: int) -> Image.Image:
    """Scanned | colorized, side by side at ``height``."""
    width = round(before.width * height / before.height)
    out = Image.new("RGB", (2 * width + GAP, height), BACKGROUND)
    out.paste(before.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), (0, 0))
    out.paste(
        after.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), (width + GAP, 0)
    )
    return out


def rows_of(pairs: list[Image.Image], per_row: int, width: int) -> Image.Image:
    """Rows of ``per_row`` pairs, each row scaled to ``width`` exactly (no ragged edges)."""
    rows = []
    for start in range(0, len(pairs), per_row):
        chunk = pairs[start : start + per_row]
        natural = sum(p.width for p in chunk) + GAP * (len(chunk) - 1)
        scale = width / natural
        height = round(chunk[0].height * scale)
        row = Image.new("RGB", (width, height), BACKGROUND)
        x = 0
        for index, image in enumerate(chunk):
            right = width if index == len(chunk) - 1 else round(x + image.width * scale)
            row.paste(image.resize((right - x, height), Image.Resampling.LANCZOS), (x, 0))
            x = right + round(GAP * scale)
        rows.append(row)
    sheet = Image.new(
        "RGB", (width, sum(r.height for r in rows) + GAP * (len(rows) - 1)), BACKGROUND
    )
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + GAP
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", help="folder of B&W photos")
    parser.add_argument("--model", default=None, help="model name (default: the default model)")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--feature", default="05_vehicles_motorcars_ireland_1900s.jpg")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    parser.add_argument("--width", type=int, default=1800)
    args = parser.parse_args()
    colorizer = Colorizer(args.model, weights=args.weights)
    pairs, feature = [], None
    for path in sorted(Path(args.photos).iterdir()):
        if path.suffix.lower() not in imageio.IMAGE_SUFFIXES:
            continue
        before = ImageOps.exif_transpose(Image.open(path))
        after = colorizer.colorize(str(path))
        pairs.append(pair(before, after, 480))
        if path.name == args.feature:
            feature = pair(before, after, 640)
    out = Path(args.out)
    rows_of(pairs, 3, args.width).save(out / "gallery_bw.jpg", quality=85)
    if feature is not None:
        feature.save(out / "before_after.jpg", quality=85)
    print(f"{len(pairs)} photos -> {out / 'gallery_bw.jpg'}")


if __name__ == "__main__":
    main()
