"""Peak memory and time of `colorize image` on a 200-megapixel scan, bytes path vs float path.

Run:  python -m benchmarks large [--megapixels 200] [--source ../shared/data/bw/NAME.jpg]

Makes a grey 8-bit PNG scan of the given size (a B&W photo of ``../shared/data/bw`` scaled up,
or a synthetic gradient when that folder is absent), then runs the command line on it twice in
fresh processes (the installed ``colorize`` script's entry point): as shipped (an 8-bit photo
stays in bytes, composed strip by strip: ``Colorizer._colorize_bytes``) and on the float
``Picture`` path that 16-bit photos, arrays and guided runs take. Each child's peak RSS is its
``ru_maxrss``; the outputs are compared byte for byte.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.harness import TETONS, Results, benchmark, option

# A fresh interpreter per run, so that each peak RSS is that run's alone. It runs the installed
# `colorize` script's own entry point, not the script file: the float run must switch the bytes
# path off inside the process first.
CHILD = """
import sys
from importlib.metadata import entry_points
from colorizer.pipeline import Colorizer
if sys.argv[1] == "float":
    Colorizer._colorize_bytes = lambda self, src, dst: None
(script,) = entry_points(group="console_scripts", name="colorize")
main = script.load()
sys.exit(main(["image", sys.argv[2], "-o", sys.argv[3], "--max-pixels", "0", "--overwrite"]))
"""


def make_scan(path: Path, megapixels: float, source: Path | None) -> tuple[int, int]:
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(megapixels * 1e6 // width)
    if source is not None and source.exists():
        photo = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
        assert photo is not None, f"{source}: not a readable image"
        scan = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        scan = np.add.outer(np.arange(height) // 64, np.arange(width) // 64).astype(np.uint8)
    cv2.imwrite(str(path), scan, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return width, height


def run(mode: str, src: Path, dst: Path) -> tuple[float, float]:
    """(seconds, peak RSS in GB) of one child process (its own rusage, from wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(src), str(dst)])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{mode} run failed with exit code {child.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss: KiB


@benchmark(
    "large",
    option("--megapixels", type=float, default=200),
    option("--source", type=Path, default=TETONS),
)
def large(args: argparse.Namespace, results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scan = work / "scan.png"
        width, height = make_scan(scan, args.megapixels, args.source)
        print(f"scan: {width} x {height} grey PNG, {scan.stat().st_size / 1e6:.0f} MB")
        runs = {}
        for mode in ("bytes", "float"):
            runs[mode] = run(mode, scan, work / f"{mode}.png")
            print(f"{mode}: {runs[mode][0]:.1f} s, peak RSS {runs[mode][1]:.2f} GB")
        same = (work / "bytes.png").read_bytes() == (work / "float.png").read_bytes()
        print(f"outputs identical: {same}")
        ratio = runs["float"][1] / runs["bytes"][1]
        print(f"peak RSS, float path / bytes path: {ratio:.2f}x")
        for mode, (seconds, peak_gb) in runs.items():
            case = {"path": mode, "size": f"{width}x{height}"}
            results.add(case, seconds=seconds, peak_rss_gb=peak_gb, outputs_identical=same)
