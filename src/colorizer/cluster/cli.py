"""``colorize image|video --engine ray``: the command's options handed to the Ray engine
(``images.colorize_on_ray``, ``video.colorize_video``).

A front end, as ``colorizer.cli`` is (which calls it, after refusing what Ray cannot do: one
named output file, standard input or output); no library module imports it.
"""

from __future__ import annotations

import argparse
import sys

from colorizer.batch import print_report, why_unmatched
from colorizer.provenance.cli import provenance_from_args


def cmd_image(args: argparse.Namespace) -> int:
    """The local command's jobs (``colorizer.batch``), colorized on a Ray cluster."""
    from colorizer.cluster.images import colorize_on_ray
    from colorizer.cluster.settings import ClusterOptions, ColorizerSpec
    from colorizer.guidance.cli import guidance_from_args

    report, unmatched, failures = colorize_on_ray(
        args.inputs,
        args.output,
        recursive=args.recursive,
        suffix="." + (args.format or "png"),
        overwrite=args.overwrite,
        spec=ColorizerSpec.from_args(args, provenance_from_args(args)),
        cluster=ClusterOptions.from_args(args),
        guidance=guidance_from_args(args),
        progress=not args.quiet,
        failures=args.failures,
    )
    if failures is None:
        for pattern in args.inputs:
            print(f"error: {why_unmatched(pattern)}", file=sys.stderr)
        return 1
    print_report(report, unmatched)
    if report.failed:
        print(f"the failures are listed in {failures}", file=sys.stderr)
    return 1 if report.failed or unmatched else 0


def cmd_video(args: argparse.Namespace) -> int:
    """``colorize video --engine ray``: the film's segments as Ray tasks."""
    from pathlib import Path

    from colorizer.cluster.settings import ClusterOptions, ColorizerSpec
    from colorizer.cluster.video import colorize_video
    from colorizer.video.cli import check_keyframes, planned_output, print_report, video_options

    spec = ColorizerSpec.from_args(args, provenance_from_args(args))  # checked before planning
    check_keyframes(args)  # read here; the workers read them again from the same paths
    destination = planned_output(args)
    if destination is None:
        return 0
    report = colorize_video(
        spec,
        Path(args.input),
        destination,
        video_options(args),
        ClusterOptions.from_args(args, batch_size=False),
        progress=not args.quiet,
    )
    if not args.quiet:
        print_report(report, " on Ray")
    return 0
