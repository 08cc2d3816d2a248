"""x264 presets for `colorize video`: encode time, file size and fidelity, in one process.

Run:  python -m benchmarks x264 [CLIP] [--presets medium fast ...] [--crf 18]

Decodes the clip (``../shared/data/video/bench_720p.mp4`` by default) to RGB once, then encodes
those frames with each preset exactly as ``colorize video`` does (``encoder_options``: crf,
preset, the determinism options), times the encode (best of ``--repeat``), and decodes the result
to compare it with the frames that went in (PSNR over RGB, all frames pooled). The encode time
is what the encode stage of ``colorize video`` costs; the ratio column is against the first
preset given (``medium``, the default before 2026-12-01).
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np

from benchmarks.harness import BENCH_CLIP, Results, benchmark, best_of, option, require
from colorizer.video.output import EncoderSettings, encoder_options


def decode(path: Path) -> tuple[list[np.ndarray], Fraction | None]:
    """Every frame of ``path`` as RGB, and its average frame rate."""
    with av.open(str(path)) as source:
        stream = source.streams.video[0]
        rate = stream.average_rate
        frames = [frame.to_ndarray(format="rgb24") for frame in source.decode(stream)]
    return frames, rate


def encode(
    frames: list[np.ndarray], rate: Fraction | None, out: Path, settings: EncoderSettings
) -> None:
    with av.open(str(out), "w") as sink:
        stream = sink.add_stream(settings.codec, rate=rate, options=encoder_options(settings))
        assert isinstance(stream, av.VideoStream)  # the codec is named at run time
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = settings.pix_fmt
        for index, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            picture.pts = index
            sink.mux(stream.encode(picture))
        sink.mux(stream.encode())


def psnr(frames: list[np.ndarray], path: Path) -> float:
    decoded, _ = decode(path)
    assert len(decoded) == len(frames), (len(decoded), len(frames))
    squared = np.mean(
        [np.mean((a.astype(np.float32) - b) ** 2) for a, b in zip(frames, decoded, strict=True)]
    )
    return float(10 * np.log10(255**2 / squared))


@benchmark(
    "x264",
    option("clip", nargs="?", type=Path, default=BENCH_CLIP),
    option("--presets", nargs="+", default=["medium", "fast", "faster", "veryfast"]),
    option("--crf", type=float, default=18),
    option("--repeat", type=int, default=2),
)
def x264(args: argparse.Namespace, results: Results) -> None:
    frames, rate = decode(require(args.clip))
    print(f"{args.clip.name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}")
    print("| preset | encode s | frames/s | x first | MB | PSNR dB (RGB, vs input) |")
    print("|---|---|---|---|---|---|")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            out = Path(tmp) / f"{preset}.mp4"
            settings = EncoderSettings(crf=args.crf, preset=preset)
            seconds, _ = best_of(partial(encode, frames, rate, out, settings), args.repeat)
            first = first or seconds
            fidelity = psnr(frames, out)
            print(
                f"| {preset} | {seconds:.2f} | {len(frames) / seconds:.1f} | "
                f"{first / seconds:.2f}x | {out.stat().st_size / 1e6:.2f} | "
                f"{fidelity:.2f} |"
            )
            size = out.stat().st_size
            results.add({"preset": preset}, encode_s=seconds, bytes=size, psnr_db=fidelity)
