"""`colorize video ...` and `colorize eval --video ...`: argument parsing only.

``add_video_parser(commands)`` adds the ``video`` sub-command; ``add_video_eval_arguments(parser)``
adds the ``eval --video`` options to the ``eval`` sub-command, whose handler calls
``cmd_eval_video`` when ``--video`` is given. Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

from colorizer.errors import ColorizerError
from colorizer.options import add_device_option, add_model_options, mirror_average, model_for

log = logging.getLogger(__name__)
# Frames looked at for colour: every 12th of the first 120 (about 5 s), past a black leader.
COLOUR_SAMPLES, COLOUR_STEP = 120, 12


def add_video_parser(commands) -> None:
    video = commands.add_parser(
        "video",
        help="colorize a film",
        description="Colorize a video file (any container and codec FFmpeg reads). Frames, "
        "timestamps, rate, resolution and duration are kept; audio and subtitle streams are "
        "copied unchanged. A killed run resumes where it stopped when run again.",
    )
    video.add_argument("input", help="video file")
    video.add_argument(
        "-o",
        "--output",
        help="output file; its suffix picks the container (default: "
        "INPUT_colorized.mp4 beside the input)",
    )
    add_model_options(
        video,
        model="registered model name (default: colornet-v2)",
        weights="run --model's architecture from this weights file",
    )
    add_device_option(video, backend=True)
    encoder = video.add_argument_group("encoder")
    # Defaults None: EncoderSettings holds them (video.output, not imported before a run).
    encoder.add_argument("--codec", help="video encoder (default libx264)")
    encoder.add_argument("--crf", type=float, help="quality, lower is better (default 18)")
    encoder.add_argument("--preset", help="encoder speed preset (default veryfast)")
    encoder.add_argument("--pix-fmt", help="pixel format (default yuv420p)")
    segment = video.add_argument_group("segment")
    segment.add_argument("--start", type=float, help="start at this time (seconds)")
    segment.add_argument("--end", type=float, help="stop before this time (seconds)")
    steady = video.add_argument_group("temporal consistency")
    steady.add_argument(
        "--consistency",
        type=float,
        default=None,
        help="flow-propagation strength 0..1 (default 0.7; 0 turns it off)",
    )
    steady.add_argument(
        "--flow",
        default=None,
        help="optical flow: medium (DIS, default), fast, ultrafast, farneback",
    )
    steady.add_argument(
        "--refiner", help="use this trained video-refiner (colorize train refiner) instead"
    )
    guided = video.add_argument_group("keyframes (docs/video.md: Keyframes and a colour reference)")
    guided.add_argument(
        "--keyframes",
        metavar="DIR_OR_FILE",
        help="colours chosen for some frames, which their shots follow: a JSON manifest, or an "
        "image or folder of images named by position (f000240.png: frame 240; t12.5.png: "
        "12.5 s)",
    )
    guided.add_argument(
        "--reference",
        metavar="IMAGE",
        help="a colour photo whose colours serve every shot without a keyframe",
    )
    video.add_argument("--batch-size", type=int, default=8, help="frames per network batch (8)")
    video.add_argument(
        "--segment-seconds", type=float, default=10.0, help="resume granularity (10 s)"
    )
    video.add_argument(
        "--overwrite", action="store_true", help="redo the output if it exists (else skipped)"
    )
    video.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    video.set_defaults(run=cmd_video)


def default_output(source: Path) -> Path:
    """``NAME_colorized.mp4`` beside the film, as photos get ``NAME_colorized.png``."""
    from colorizer.batch import output_beside

    return output_beside(source, ".mp4")


def video_options(args: argparse.Namespace):
    from colorizer.video.colorize import VideoOptions
    from colorizer.video.consistency import DEFAULT_FLOW, DEFAULT_STRENGTH
    from colorizer.video.output import EncoderSettings

    given = {"codec": args.codec, "crf": args.crf, "preset": args.preset, "pix_fmt": args.pix_fmt}
    return VideoOptions(
        encoder=EncoderSettings(
            **{name: value for name, value in given.items() if value is not None}
        ),
        consistency=DEFAULT_STRENGTH if args.consistency is None else args.consistency,
        flow=args.flow or DEFAULT_FLOW,
        start_s=args.start,
        end_s=args.end,
        batch_size=args.batch_size,
        segment_seconds=args.segment_seconds,
        refiner=str(Path(args.refiner).resolve()) if args.refiner else None,
        # Absolute: Ray workers read them too, from another working folder.
        keyframes=_absolute(getattr(args, "keyframes", None)),
        reference=_absolute(getattr(args, "reference", None)),
    )


def _absolute(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def check_keyframes(args: argparse.Namespace) -> None:
    """``--keyframes`` and ``--reference`` read and checked against the film before any work
    (``UsageError``: exit 2 with the file, the entry and the problem); the images are let go
    again, the run reads them when it needs them."""
    keyframes, reference = getattr(args, "keyframes", None), getattr(args, "reference", None)
    if not keyframes and not reference:
        return
    from colorizer.options import UsageError
    from colorizer.video.keyframes import KeyframeError, plan_keyframes, read_reference
    from colorizer.video.source import probe

    try:
        if reference:
            read_reference(reference)
            _check_encoder(args)
        if keyframes:
            info = probe(Path(args.input))  # an unreadable film is the input's error (exit 1)
            for planned in plan_keyframes(keyframes, info):
                planned.load(info)
    except KeyframeError as exc:
        raise UsageError(str(exc)) from None


def colorizer_from_args(args: argparse.Namespace):
    """The ``Colorizer`` the model, weights, size, device, backend and (``eval``)
    mirror-average options ask for."""
    from colorizer.pipeline import Colorizer

    backend = getattr(args, "backend", None)
    model = model_for(args.model, args.weights)
    return Colorizer(
        model,
        weights=args.weights,
        size=args.size,
        device=args.device,
        backend=backend,
        mirror_average=mirror_average(args),
    )


def planned_output(args: argparse.Namespace) -> Path | None:
    """Where the film goes, or None when that file exists and ``--overwrite`` is not given
    (skipped, as ``colorize image`` skips); warns when the film is already in colour."""
    source = Path(args.input)
    destination = Path(args.output) if args.output else default_output(source)
    same = destination.exists() and source.exists() and destination.samefile(source)
    if destination.exists() and not args.overwrite and not same:  # same: refused later
        from colorizer.video.workfolder import WorkFolder

        WorkFolder.remove_finished(destination)  # parts a killed run left beside it
        print(f"{destination}: exists, skipped (--overwrite redoes it)", file=sys.stderr)
        return None
    warn_if_colour_film(source)
    return destination


def warn_if_colour_film(source: Path) -> None:
    """Warn, as ``colorize image`` does for a colour photo, when a few of the film's first
    frames are in colour: it is colorized from its luminance, its own colours lost."""
    from colorizer.video.source import decode, open_input, video_stream

    try:
        with open_input(source) as container:
            frames = decode(container, video_stream(container, source), source)
            sampled = itertools.islice(frames, 0, COLOUR_SAMPLES, COLOUR_STEP)
            if any(_looks_colour(frame) for frame in sampled):
                log.warning("%s looks like a colour film; colorizing it from its luminance", source)
    except ColorizerError:
        return  # unreadable: colorizing it says why, with the options checked first


def _looks_colour(frame) -> bool:
    from colorizer.imageio import pixels_of_array

    pixels = pixels_of_array(frame.to_ndarray(format="rgb24"))
    return pixels is not None and pixels.looks_colour


def _check_encoder(args: argparse.Namespace) -> None:
    """The transfer from a reference photo matches the model's encoder features."""
    from colorizer.options import UsageError
    from colorizer.pipeline import encoder_refusal

    refusal = encoder_refusal(model_for(args.model, args.weights))
    if refusal is not None:
        raise UsageError(f"--reference needs a model with a pretrained encoder: {refusal}")


def cmd_video(args: argparse.Namespace) -> int:
    from colorizer.provenance.cli import provenance_from_args
    from colorizer.video.colorize import colorize_video

    source = Path(args.input)
    check_keyframes(args)
    destination = planned_output(args)
    if destination is None:
        return 0
    options = video_options(args)
    colorizer = colorizer_from_args(args)
    colorizer.provenance = provenance_from_args(args)  # signing, --record (issue 24)
    report = colorize_video(colorizer, source, destination, options, progress=not args.quiet)
    if not args.quiet:
        print_report(report)
    return 0


def print_report(report, where: str = "") -> None:
    """One line: the output, its frames, what this run did (``where``: e.g. " on Ray")."""
    resumed = f", {report.resumed_segments} segments resumed" if report.resumed_segments else ""
    print(
        f"{report.output}: {report.frames} frames ({report.colorized} colorized{where}{resumed}, "
        f"{report.scene_cuts} scene cuts) in {report.seconds:.1f} s"
    )


def add_video_eval_arguments(evaluation: argparse.ArgumentParser) -> None:
    group = evaluation.add_argument_group("video (eval --video DATA: a folder of colour clips)")
    group.add_argument(
        "--video", action="store_true", help="score per-frame, flow and refiner on video clips"
    )
    group.add_argument("--refiner", help="trained video-refiner weights to score too")
    group.add_argument("--consistency", type=float, help="flow-propagation strength (default 0.7)")
    group.add_argument("--frames", type=int, help="score only the first N frames of each clip")
    group.add_argument(
        "--keyframes",
        choices=["truth"],
        help="truth: score automatic, paste and keyframes, each shot keyed by its true first frame",
    )
    group.add_argument(
        "--side", type=int, help="long side of the frames scored (default 384, the work size)"
    )


def cmd_eval_video(args: argparse.Namespace) -> int:
    from colorizer.video import evaluate
    from colorizer.video.consistency import DEFAULT_STRENGTH, DEFAULT_WORK_SIDE

    clips = evaluate.find_clips(Path(args.data))[: args.limit]
    colorizer = colorizer_from_args(args)
    results = evaluate.evaluate_clips(
        clips,
        colorizer,
        progress=not args.quiet,
        strength=DEFAULT_STRENGTH if args.consistency is None else args.consistency,
        refiner=args.refiner,
        side=args.side or DEFAULT_WORK_SIDE,
        frames=args.frames,
        keyframes=args.keyframes,
    )
    print(evaluate.format_table(results))
    if args.csv:
        evaluate.write_csv(Path(args.csv), results)
    return 0
