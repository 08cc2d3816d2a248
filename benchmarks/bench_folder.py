"""Photos per second on a folder of 2 MP JPEGs, against the decode + encode floor of the same files.

Run:  python -m benchmarks folder [--photos 24] [--repeat 2]

Makes a folder of grey 2-megapixel JPEGs (photos of ``../shared/data/openimages`` train folder
turned grey and scaled to 1632 x 1224; a synthetic pattern when it is absent), then in one
process:

floor: each file decoded (Pillow) and our colorized result for it (decoded beforehand) encoded
       as ``colorize image`` writes it, with as many photos in flight: nothing can be faster;
ours:  ``batch.run_jobs`` on a warm ``Colorizer`` (the default model and backend), the command's
       own loop, for PNG (lossless, the default) and JPEG outputs.

The figure asked for (issue 11) is ours / floor in photos per second, at least 0.5.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks.harness import DATA, Results, benchmark, option
from colorizer import Colorizer, batch, imageio

SOURCES = DATA / "train" / "openimages"
SIZE = (1632, 1224)  # 2.0 MP, 4:3


def make_folder(folder: Path, count: int) -> list[Path]:
    sources = sorted(SOURCES.glob("*.jpg"))[:count] if SOURCES.is_dir() else []
    paths = []
    for i in range(count):
        if i < len(sources):
            grey = cv2.imread(str(sources[i]), cv2.IMREAD_GRAYSCALE)
            assert grey is not None, f"{sources[i]}: not a readable image"
            grey = cv2.resize(grey, SIZE, interpolation=cv2.INTER_CUBIC)
        else:
            rng = np.random.default_rng(i)
            grey = cv2.GaussianBlur(
                (rng.random(SIZE[::-1]) * 255).astype(np.uint8), (0, 0), 4 + i % 5
            )
        path = folder / f"photo{i:03d}.jpg"
        cv2.imwrite(str(path), grey, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def floor(paths: list[Path], results: dict[Path, np.ndarray], out: Path, suffix: str) -> float:
    """Seconds to decode every file and encode its colorized result, photos in flight."""

    def one(path: Path) -> None:
        with Image.open(path) as im:
            im.load()
        imageio.write_image(out / f"{path.stem}{suffix}", results[path])

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=batch.PHOTOS_IN_FLIGHT) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - start


def ours(colorizer: Colorizer, paths: list[Path], out: Path, suffix: str) -> float:
    jobs = [batch.Job(path, out / f"{path.stem}{suffix}") for path in paths]
    start = time.perf_counter()
    report = batch.run_jobs(colorizer, jobs, overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    assert len(report.done) == len(paths), report.failed
    return seconds


@benchmark(
    "folder",
    option("--photos", type=int, default=24),
    option("--repeat", type=int, default=2, help="best of this many runs"),
)
def folder(args: argparse.Namespace, results: Results) -> None:
    colorizer = Colorizer()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        (work / "out").mkdir()
        paths = make_folder(work / "in", args.photos)
        colorizer.colorize_file(paths[0], work / "out" / "warm.png")  # first call: graph, tables
        print(f"{len(paths)} grey JPEGs of {SIZE[0]} x {SIZE[1]}, backend {colorizer.backend}")
        print("| output | floor photos/s | ours photos/s | ours / floor |")
        print("|---|---|---|---|")
        ours(colorizer, paths, work / "out", ".png")
        colorized = {p: np.asarray(Image.open(work / "out" / f"{p.stem}.png")) for p in paths}
        for suffix in (".png", ".jpg"):
            best_floor = min(
                floor(paths, colorized, work / "out", suffix) for _ in range(args.repeat)
            )
            best_ours = min(
                ours(colorizer, paths, work / "out", suffix) for _ in range(args.repeat)
            )
            rate_floor, rate_ours = len(paths) / best_floor, len(paths) / best_ours
            print(
                f"| {suffix[1:].upper()} | {rate_floor:.2f} | {rate_ours:.2f} "
                f"| {rate_ours / rate_floor:.2f} |"
            )
            case = {"output": suffix[1:].upper(), "size": f"{SIZE[0]}x{SIZE[1]}"}
            case["backend"] = colorizer.backend
            results.add(case, floor_photos_per_s=rate_floor, ours_photos_per_s=rate_ours)
