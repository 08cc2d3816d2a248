"""Film colorization speed: `colorize video` end to end against the I/O floor.

Run:  python -m benchmarks video [CLIP] [--refiner CKPT] [--device cpu]

On ``../shared/data/video/bench_720p.mp4`` (1280x720, 25 fps, 125 frames) by default, in one
process so the ratio is fair on a noisy machine:

(a) I/O floor: decode every frame to RGB and encode it again with the same encoder settings as
    ``colorize video`` (libx264, crf 18, preset veryfast): nothing else;
(b) ``colorize_video`` with the default model and flow propagation (defaults), on PyTorch and,
    when it is installed, on OpenVINO; with ``--refiner`` also the recurrent refiner.

Prints frames per second, the seconds each stage spent (decode + L*, network, consistency,
encode incl. composition; the stages run in four threads, so they overlap) and the ratio of the
end-to-end time to the I/O floor.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import av

from benchmarks.harness import BENCH_CLIP, Results, Stopwatch, benchmark, option, require
from colorizer import runtime
from colorizer.pipeline import Colorizer
from colorizer.video.colorize import VideoOptions, colorize_video
from colorizer.video.output import EncoderSettings, encoder_options

STAGES = ("total", "decode", "network", "consistency", "encode")


def io_floor(clip: Path, out: Path, settings: EncoderSettings) -> dict[str, float]:
    """Decode to RGB and re-encode every frame; seconds of each half and frames done."""
    decode_s = encode_s = 0.0
    frames = 0
    with av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        stream = sink.add_stream(
            settings.codec, rate=video.average_rate, options=encoder_options(settings)
        )
        assert isinstance(stream, av.VideoStream)  # the codec is named at run time
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, settings.pix_fmt
        decoded = source.decode(video)
        watch = Stopwatch()
        while True:
            watch.lap()  # the decode lap starts
            frame = next(decoded, None)
            if frame is None:
                break
            rgb = frame.to_ndarray(format="rgb24")
            decode_s += watch.lap()
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            picture.pts = frames
            sink.mux(stream.encode(picture))
            encode_s += watch.lap()
            frames += 1
        watch.lap()
        sink.mux(stream.encode(None))
        encode_s += watch.lap()
    return {"frames": frames, "decode": decode_s, "encode": encode_s, "total": decode_s + encode_s}


def run(colorizer: Colorizer, clip: Path, out: Path, options: VideoOptions) -> dict[str, float]:
    report = colorize_video(colorizer, clip, out, options)
    times = report.times
    return {
        "frames": report.frames,
        "total": report.seconds,
        "decode": times.decode,
        "network": times.network,
        "consistency": times.consistency,
        "encode": times.encode + times.remux,
    }


@benchmark(
    "video",
    option("clip", nargs="?", default=str(BENCH_CLIP)),
    option("--refiner", help="also time the trained video-refiner"),
    option("--device", default="cpu"),
)
def video(args: argparse.Namespace, results: Results) -> None:
    clip = require(args.clip)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["COLORIZER_HOME"] = folder  # an OpenVINO export goes here, not to the user's
        colorizer = Colorizer(device=args.device, backend="torch")
        floor = io_floor(clip, Path(folder) / "floor.mp4", EncoderSettings())
        rows = {"I/O floor (decode + encode)": floor}
        rows["colorize video (flow propagation)"] = run(
            colorizer, clip, Path(folder) / "flow.mp4", VideoOptions()
        )
        if runtime.openvino_available() and args.device == "cpu":
            fast = Colorizer(backend="openvino")
            rows["colorize video on OpenVINO (flow propagation)"] = run(
                fast, clip, Path(folder) / "flow-ov.mp4", VideoOptions()
            )
        if args.refiner:
            options = VideoOptions(refiner=str(Path(args.refiner).resolve()))
            rows["colorize video (refiner)"] = run(
                colorizer, clip, Path(folder) / "refiner.mp4", options
            )
    print(f"{clip.name}: {floor['frames']} frames, device {colorizer.device}")
    print("| run | fps | total s | decode s | network s | consistency s | encode s | x floor |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        cells = [
            name,
            f"{row['frames'] / row['total']:.2f}",
            f"{row['total']:.1f}",
            f"{row['decode']:.1f}",
            f"{row.get('network', 0.0):.1f}",
            f"{row.get('consistency', 0.0):.1f}",
            f"{row['encode']:.1f}",
            f"{row['total'] / floor['total']:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
        values = {f"{key}_s": row.get(key, 0.0) for key in STAGES} | {"frames": row["frames"]}
        results.add({"run": name, "device": str(colorizer.device)}, **values)
