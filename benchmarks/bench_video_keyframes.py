"""Film colorization speed with keyframes against the automatic run (issue 25).

Run:  python -m benchmarks video_keyframes [CLIP] [--device cpu] [--repeat 2]

On ``../shared/data/video/bench_720p.mp4`` by default, in one process so the ratio is fair on a
noisy machine: ``colorize_video`` with the default model and options (flow propagation), and
the same with ``keyframes`` = the clip's own first colour frame (``f000000.png``), alternated
``--repeat`` times; the best run of each counts. Prints frames per second, the stage seconds
(the keyframe engine's shot pre-pass is inside "total") and the ratio keyframes / automatic.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import av

from benchmarks.bench_video import run
from benchmarks.harness import BENCH_CLIP, Results, benchmark, option, require
from colorizer.pipeline import Colorizer
from colorizer.video.colorize import VideoOptions


def first_frame_keyframe(clip: Path, folder: Path) -> Path:
    """The clip's first colour frame as the keyframe file ``f000000.png`` in ``folder``."""
    folder.mkdir()
    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0))
        frame.to_image().save(folder / "f000000.png")
    return folder


@benchmark(
    "video_keyframes",
    option("clip", nargs="?", default=str(BENCH_CLIP)),
    option("--device", default="cpu"),
    option("--repeat", type=int, default=2),
)
def video_keyframes(args: argparse.Namespace, results: Results) -> None:
    clip = require(args.clip)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["COLORIZER_HOME"] = folder  # an OpenVINO export goes here, not to the user's
        colorizer = Colorizer(device=args.device)
        keys = first_frame_keyframe(clip, Path(folder) / "keys")
        runs = {
            "automatic (flow propagation)": VideoOptions(),
            "keyframes (first frame)": VideoOptions(keyframes=str(keys)),
        }
        best: dict[str, dict[str, float]] = {}
        for attempt in range(args.repeat):
            for name, options in runs.items():
                row = run(colorizer, clip, Path(folder) / f"{attempt}-{len(best)}.mp4", options)
                if name not in best or row["total"] < best[name]["total"]:
                    best[name] = row
    where = f"device {colorizer.device}, backend {colorizer.backend}"
    print(f"{clip.name}: {where}, best of {args.repeat}")
    print("| run | fps | total s | decode s | network s | consistency s | encode s |")
    print("|---|---|---|---|---|---|---|")
    for name, row in best.items():
        cells = [name, f"{row['frames'] / row['total']:.2f}"]
        cells += [f"{row[key]:.1f}" for key in ("total", "decode", "network", "consistency")]
        cells.append(f"{row['encode']:.1f}")
        print("| " + " | ".join(cells) + " |")
        results.add({"run": name, "device": str(colorizer.device)}, **row)
    automatic, keyed = best.values()
    ratio = (keyed["frames"] / keyed["total"]) / (automatic["frames"] / automatic["total"])
    print(f"keyframes / automatic frames per second: {ratio:.2f}")
