"""Command-line options for guidance: ``colorize image --hints/--hint/--saturation/--palette/
--scribbles/--reference/--propagate`` and ``colorize eval --hints N,... [--propagate] [--levin]``.
"""

from __future__ import annotations

import argparse

from colorizer.errors import ColorizerError


def add_image_arguments(image: argparse.ArgumentParser) -> None:
    group = image.add_argument_group("guidance (see docs/guidance.md)")
    group.add_argument(
        "--hints", metavar="FILE", help="JSON file of point hints: [{x, y, color, patch?}, ...]"
    )
    group.add_argument(
        "--hint",
        action="append",
        default=[],
        metavar="X,Y,COLOUR",
        help="one point hint, X,Y,#RRGGBB or X,Y,A,B (Lab), optionally ,pPATCH; repeatable",
    )
    group.add_argument(
        "--saturation", type=float, help="global hint: target mean HSV saturation, 0..1"
    )
    group.add_argument(
        "--palette",
        metavar="COLOUR[:WEIGHT],...",
        help="global hint: a few colours with weights, e.g. '#3a6ea5:2,#c2b280:1'",
    )
    group.add_argument(
        "--scribbles", metavar="IMAGE", help="strokes painted on an image of the photo's size"
    )
    group.add_argument(
        "--reference",
        metavar="IMAGE",
        help="colour photo whose colours are transferred; with a folder, to every photo, and "
        "the report says which photos matched it",
    )
    group.add_argument(
        "--propagate",
        action="store_true",
        help="spread the model's confident colours edge-aware (micro-scribbles)",
    )


def parse_palette(text: str) -> list[tuple[str, float]]:
    palette = []
    for i, item in enumerate(part.strip() for part in text.split(",") if part.strip()):
        value, _, weight = item.partition(":")
        try:
            palette.append((value, float(weight) if weight else 1.0))
        except ValueError:
            raise ColorizerError(f"--palette entry {i} {item!r}: weight is not a number") from None
    return palette


def _read_hints(read_hints_file, path: str) -> list:
    """``--hints FILE``, where a binary file is a one-line error rather than a traceback."""
    try:
        return read_hints_file(path)
    except UnicodeDecodeError:
        raise ColorizerError(
            f"--hints {path}: not a text file; expected JSON point hints [{{x, y, color}}, ...]"
        ) from None


def guidance_from_args(args: argparse.Namespace):
    """The ``Guidance`` the options ask for, or None when none was given."""
    given = (args.hints, args.hint, args.palette, args.scribbles, args.reference, args.propagate)
    if not any(given) and args.saturation is None:
        return None  # without importing the guidance code (SciPy and all): a faster start
    from colorizer.guidance import Guidance, parse_hint_arg, read_hints_file

    points = _read_hints(read_hints_file, args.hints) if args.hints else []
    points += [parse_hint_arg(text) for text in args.hint]
    guidance = Guidance(
        points=points,
        saturation=args.saturation,
        palette=parse_palette(args.palette) if args.palette else None,
        scribbles=args.scribbles,
        reference=args.reference,
        propagate=args.propagate,
    )
    return None if guidance.empty else guidance


def add_eval_arguments(evaluation: argparse.ArgumentParser) -> None:
    evaluation.add_argument(
        "--hints",
        metavar="N[,N...]",
        help="also score each model with N point hints sampled from the ground truth "
        "(SIGGRAPH17 protocol: uniform 5x5 patches, mean true ab)",
    )
    evaluation.add_argument(
        "--propagate",
        action="store_true",
        help="also score each model's micro-scribbles + edge-aware propagation (with --hints: "
        "the hints propagated with them too)",
    )
    evaluation.add_argument(
        "--levin",
        action="store_true",
        help="with --hints: also score Levin propagation of the hints alone (no network)",
    )


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ColorizerError(f"--hints {text!r}: expected counts like 0,1,5,10,50") from None
    if not counts or min(counts) < 0:
        raise ColorizerError(f"--hints {text!r}: expected counts like 0,1,5,10,50")
    return counts


def eval_methods(colorizers: dict, args: argparse.Namespace) -> dict:
    """Extra ``evaluate`` methods for ``colorizers`` (label -> Colorizer) under the options."""
    from colorizer.guidance import protocol

    methods = {}
    counts = parse_counts(args.hints) if getattr(args, "hints", None) else []
    if getattr(args, "levin", False) and not counts:
        raise ColorizerError("--levin needs --hints N[,N...]")
    for label, colorizer in colorizers.items():
        for count in counts:
            methods[f"{label} +{count} hints"] = protocol.hinted_method(colorizer, count)
        if getattr(args, "propagate", False):
            methods[f"{label} + propagation"] = protocol.propagation_method(colorizer)
            for count in filter(None, counts):
                methods[f"{label} +{count} hints + propagation"] = protocol.hinted_method(
                    colorizer, count, propagate=True
                )
    if getattr(args, "levin", False):
        for count in counts:
            methods[f"levin +{count} hints"] = protocol.hinted_method(None, count)
    return methods
