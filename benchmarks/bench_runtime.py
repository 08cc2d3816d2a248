"""The default model's speed: network runtimes, start-up, full resolution, PNG levels, a folder.

Run:  python -m benchmarks runtime [--repeat 5]

Everything runs in one process (start-up and the folder in subprocesses it starts), interleaved
round by round so that load from elsewhere hits all candidates alike, and is reported as
ratios against a baseline measured in the same run:

1. network stage of colornet-v2 per 256 x 256 image: PyTorch eager vs OpenVINO, batch 1 and 8;
2. start-up: ``colorize --help`` and ``colorize image`` on one 1.2 MP photo, wall time, on
   PyTorch and on OpenVINO (warm export cache), against ``python -c "import numpy, cv2"``;
3. full resolution: ``planes.compose`` strip-wise vs the whole-image way (resize the ab plane
   to full size, merge, convert) on a 12 MP photo, and the float vs 8-bit output;
4. PNG zlib levels on a colorized photo: time and size;
5. ``colorize image`` on the nine B&W photos of ../shared/data/bw, PyTorch vs OpenVINO.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from benchmarks.harness import (
    BW,
    MIGRANT_MOTHER,
    TETONS,
    Results,
    benchmark,
    best_time,
    best_times,
    grey_photo,
    option,
    ratio,
)
from benchmarks.harness.commands import colorize


def wall(command: list[str], env: dict, repeat: int) -> float:
    """Best wall time of a command (after one warm-up run: file caches, the export)."""
    return best_time(
        lambda: subprocess.run(command, env=env, check=True, capture_output=True), repeat
    )


def network_stage(repeat: int, results: Results) -> None:
    import torch

    from colorizer import Colorizer

    torch_side = Colorizer(backend="torch", device="cpu")
    fast = Colorizer(backend="openvino")
    print(
        f"\n1. network stage, {fast.name} at 256 x 256, ms per image ({torch.get_num_threads()} "
        "torch threads, OpenVINO's own)"
    )
    for batch in (1, 8):
        light = np.random.default_rng(0).uniform(0, 100, (batch, 1, 256, 256)).astype(np.float32)
        tensor = torch.from_numpy(light)
        times = best_times(
            {
                "torch": partial(torch_side.predict_ab, tensor),
                "openvino": partial(fast.network, light),
            },
            repeat,
        )
        eager, ov = times["torch"] * 1000 / batch, times["openvino"] * 1000 / batch
        print(
            f"  batch {batch}: PyTorch eager {eager:6.1f}   OpenVINO {ov:6.1f}   "
            f"eager/OpenVINO = {ratio(eager, ov)}"
        )
        delta = np.abs(fast.network(light) - torch_side.predict_ab(tensor).numpy()).mean()
        print(f"           mean |delta ab| OpenVINO vs PyTorch {delta:.5f}")
        results.add(
            {"section": "network stage", "batch": batch},
            torch_ms_per_image=eager,
            openvino_ms_per_image=ov,
            mean_delta_ab=float(delta),
        )


def start_up(home: Path, repeat: int, results: Results) -> None:
    photo = MIGRANT_MOTHER
    if not photo.exists():
        print("\n2. start-up: skipped, ../shared/data/bw is absent")
        return
    out = home / "one.png"
    env = {**os.environ, "COLORIZER_HOME": str(home)}
    image = colorize("image", str(photo), "-o", str(out), "--overwrite", "-q")
    baseline = wall([sys.executable, "-c", "import numpy, cv2, PIL.Image"], env, repeat)
    rows = {
        "python -c 'import numpy, cv2, PIL' (baseline)": baseline,
        "colorize --help": wall(colorize("--help"), env, repeat),
        "colorize image one.jpg --backend torch": wall([*image, "--backend", "torch"], env, repeat),
        "colorize image one.jpg --backend openvino (warm)": wall(
            [*image, "--backend", "openvino"], env, repeat
        ),
    }
    print(f"\n2. start-up, wall seconds, best of {repeat} ({photo_size(photo)})")
    for label, seconds in rows.items():
        print(f"  {label:<50} {seconds:6.2f}   {ratio(seconds, baseline, '5.1f')} baseline")
        results.add({"section": "start-up", "command": label}, seconds=seconds)


def photo_size(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as image:
        return f"{image.width} x {image.height}, {image.width * image.height / 1e6:.1f} MP"


def whole_image_compose(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The way before strips: ab resized to full size, merged with L*, converted, clipped."""
    from colorizer import planes

    full = cv2.resize(ab, (lightness.shape[1], lightness.shape[0]), interpolation=cv2.INTER_LINEAR)
    return planes.lab_to_rgb_image(cv2.merge([lightness, full]))


def full_resolution(repeat: int, results: Results) -> None:
    from colorizer import planes

    grey = grey_photo(3000, 4000)
    lightness = planes.lightness_image(np.repeat(grey[..., None], 3, 2) / np.float32(255), True)
    ab: np.ndarray = np.random.default_rng(0).uniform(-40, 40, (256, 256, 2)).astype(np.float32)
    ab = cv2.GaussianBlur(ab, (0, 0), 8)
    times = best_times(
        {
            "whole image (before)": lambda: whole_image_compose(lightness, ab),
            "strips, float32": lambda: planes.compose(lightness, ab),
            "strips, uint8": lambda: planes.compose(lightness, ab, out_dtype=np.uint8),
            "L* of the grey photo (table lookup)": lambda: planes.lightness_image(
                np.repeat(grey[..., None], 3, 2) / np.float32(255), True
            ),
        },
        repeat,
    )
    base = times["whole image (before)"]
    print("\n3. full resolution, 4000 x 3000, seconds")
    for label, seconds in times.items():
        print(f"  {label:<38} {seconds:6.3f}   {ratio(base, seconds, '5.2f')} faster than before")
        results.add(
            {"section": "full resolution", "size": "4000x3000", "way": label}, seconds=seconds
        )


def png_levels(repeat: int, results: Results) -> None:
    from PIL import Image

    photo = TETONS
    if not photo.exists():
        return
    from colorizer import Colorizer

    rgb = np.asarray(Colorizer(backend="torch").colorize(Image.open(photo).convert("RGB")))
    image = Image.fromarray(rgb)

    def save(level: int) -> int:
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=level)
        return len(buffer.getvalue())

    times = best_times({level: partial(save, level) for level in (0, 1, 3, 6, 9)}, repeat)
    print(f"\n4. PNG of a colorized {image.width} x {image.height} photo, by zlib level")
    for level, seconds in times.items():
        print(
            f"  level {level}: {seconds:6.3f} s, {save(level) / 1e6:5.2f} MB   "
            f"{ratio(times[6], seconds, '4.1f')} faster than 6, "
            f"{save(level) / save(6):5.3f} of its size"
        )
        results.add({"section": "PNG", "level": level}, seconds=seconds, bytes=save(level))


def folder(home: Path, repeat: int, results: Results) -> None:
    if not BW.exists():
        return
    env = {**os.environ, "COLORIZER_HOME": str(home)}
    out = home / "bw-out"
    times = {}
    for backend in ("torch", "openvino"):
        command = colorize("image", str(BW), "-o", str(out), "--overwrite", "-q")
        times[backend] = wall([*command, "--backend", backend], env, repeat)
    count = len(list(BW.glob("*.jpg")))
    print(f"\n5. colorize image ../shared/data/bw ({count} photos), wall seconds")
    for backend, seconds in times.items():
        print(f"  {backend:<9} {seconds:6.2f}   {seconds / count:5.2f} s a photo")
        results.add({"section": "folder", "backend": backend, "photos": count}, seconds=seconds)
    shutil.rmtree(out, ignore_errors=True)


@benchmark("runtime", option("--repeat", type=int, default=5))
def runtime(args: argparse.Namespace, results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["COLORIZER_HOME"] = str(home)  # the export cache of this run only
        network_stage(args.repeat, results)
        start_up(home, args.repeat, results)
        full_resolution(args.repeat, results)
        png_levels(args.repeat, results)
        folder(home, max(1, args.repeat // 2), results)
