"""The `colorize` command: a thin shell over ``colorizer.Colorizer`` and the registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colorizer.batch import (
    BatchReport,
    Job,
    check_output_folders,
    check_plan,
    colorize_to_bytes,
    colorize_to_file,
    confidence_path,
    find_inputs,
    output_file,
    plan_jobs,
    print_report,
    read_stdin,
    run_jobs,
    summary,
    why_unmatched,
)
from colorizer.cache_cli import add_cache_parser
from colorizer.errors import ColorizerError
from colorizer.guidance.cli import add_eval_arguments as add_guidance_eval_arguments
from colorizer.guidance.cli import add_image_arguments as add_guidance_arguments
from colorizer.guidance.cli import guidance_from_args
from colorizer.options import (
    UsageError,
    add_device_option,
    add_engine_options,
    add_mirror_option,
    add_model_options,
    mirror_average,
    model_for,
    network_size,
    non_negative,
    output_format,
    positive,
    run_command,
)
from colorizer.provenance.cli import (
    add_inspect_parser,
    add_provenance_arguments,
    provenance_from_args,
)
from colorizer.server.cli import add_server_parsers
from colorizer.train.cli import add_train_parser
from colorizer.video.cli import add_video_eval_arguments, add_video_parser

STDIO = "-"


def cmd_image(args: argparse.Namespace) -> int:
    """``colorize image``: every value checked and every output planned before the first
    photo is colorized (``colorizer.batch``); here, or with ``--engine ray`` on Ray."""
    args.model = model_for(args.model, args.weights)
    _check_confidence(args)
    if args.engine == "ray":
        return _cmd_image_ray(args)
    if args.address or args.failures:
        raise UsageError("--address and --failures are for --engine ray")
    if STDIO in args.inputs or args.output == STDIO:
        return _cmd_image_stream(args)
    inputs, unmatched = find_inputs(args.inputs, args.recursive)
    if not inputs:
        for pattern in args.inputs:
            print(f"error: {why_unmatched(pattern)}", file=sys.stderr)
        return 1
    jobs = _plan(args, inputs)
    check_output_folders(jobs)
    guidance = guidance_from_args(args)
    colorizer = _colorizer(args)
    progress = not args.quiet and len(jobs) > 1
    report = run_jobs(colorizer, jobs, args.overwrite, progress, guidance)
    print_report(report, unmatched)
    return 1 if report.failed or unmatched else 0


def _check_confidence(args: argparse.Namespace) -> None:
    """``--confidence``, refused before any work where it cannot be written: a model without
    one (its one-line error), standard output, Ray, guidance (the map is the automatic one)."""
    if not args.confidence:
        return
    if args.output == STDIO or args.engine == "ray":
        where = "-o -: standard output" if args.output == STDIO else "--engine ray"
        raise UsageError(
            f"--confidence writes NAME_confidence.png beside each output: not with {where}"
        )
    if guidance_from_args(args) is not None:
        raise UsageError("--confidence maps the automatic colours: it does not go with guidance")
    from colorizer.pipeline import confidence_refusal

    refusal = confidence_refusal(args.model, None)
    if refusal is not None:
        raise UsageError(refusal)


def _plan(args: argparse.Namespace, inputs: list[tuple[Path, Path]]) -> list[Job]:
    """The batch's jobs: into the one file ``-o`` names (one photo only), else into the
    folder ``-o`` names or beside the inputs. Colliding outputs are refused."""
    single = output_file(args.output, args.format)
    if single is None:
        output_dir = Path(args.output) if args.output else None
        return plan_jobs(inputs, output_dir, "." + (args.format or "png"), args.confidence)
    if len(args.inputs) > 1 or len(inputs) > 1:
        names = ", ".join(str(src) for src, _ in inputs[:3]) + (", ..." if inputs[3:] else "")
        raise UsageError(
            f"-o {single} names one file, but there are {len(inputs)} photos ({names}); "
            "give -o a folder to colorize several"
        )
    return check_plan([Job(inputs[0][0], single, _confidence_of(args, single))])


def _confidence_of(args: argparse.Namespace, output: Path) -> Path | None:
    return confidence_path(output) if args.confidence else None


def _cmd_image_ray(args: argparse.Namespace) -> int:
    from colorizer.cluster.cli import cmd_image as cmd_image_ray

    if (
        STDIO in args.inputs
        or args.output == STDIO
        or output_file(args.output, args.format) is not None
    ):
        raise UsageError(
            "--engine ray writes into a folder (-o DIR) or beside the inputs, "
            "not to one named file or standard output"
        )
    return cmd_image_ray(args)


def _colorizer(args: argparse.Namespace):
    from colorizer.imageio import DEFAULT_MAX_PIXELS
    from colorizer.pipeline import Colorizer

    return Colorizer(
        args.model,
        weights=args.weights,
        size=args.size,
        device=args.device,
        backend=args.backend,
        max_pixels=DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels or None,
        provenance=provenance_from_args(args),
    )


def _cmd_image_stream(args: argparse.Namespace) -> int:
    """One photo from standard input (``-``) or to standard output (``-o -``), or both."""
    if len(args.inputs) > 1:
        raise UsageError("- (standard input, or -o - for standard output) takes one photo only")
    src, dst, fmt = args.inputs[0], args.output or STDIO, args.format or "png"
    if src != STDIO:  # a file, or a glob or folder that gives one photo
        inputs, _ = find_inputs([src], recursive=False)
        if len(inputs) != 1:
            found = f"{src}: {len(inputs)} photos; -o - writes one" if inputs else ""
            raise UsageError(found or why_unmatched(src))
        src = str(inputs[0][0])
    elif dst != STDIO:
        single = output_file(args.output, args.format)
        if single is None:
            raise UsageError(f"-o {dst}: with - as the input, -o names a file (out.png) or -")
        job = Job(Path(src), single, _confidence_of(args, single))
        existing = [path for path in (job.dst, job.confidence) if path and path.exists()]
        if existing and not args.overwrite:
            print(summary(BatchReport(skipped=existing[:1])), file=sys.stderr)
            return 0
        check_output_folders([job])
    guidance = guidance_from_args(args)
    colorizer = _colorizer(args)
    image = read_stdin() if src == STDIO else src
    try:
        if dst != STDIO:
            confidence = _confidence_of(args, Path(dst))
            print(colorize_to_file(colorizer, image, dst, guidance, confidence=confidence))
            return 0
        sys.stdout.buffer.write(colorize_to_bytes(colorizer, image, fmt, guidance))
    except OSError as exc:
        raise ColorizerError(f"{dst}: cannot write ({exc.strerror or exc})") from exc
    sys.stdout.buffer.flush()
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    """``colorize video``: this process, or with ``--engine ray`` a Ray cluster."""
    args.model = model_for(args.model, args.weights)
    if args.engine == "ray":
        from colorizer.cluster.cli import cmd_video as cmd_video_ray

        return cmd_video_ray(args)
    if args.address:
        raise UsageError("--address names a Ray cluster: it needs --engine ray")
    from colorizer.video.cli import cmd_video as cmd_video_local

    return cmd_video_local(args)


def cmd_models(args: argparse.Namespace) -> int:
    from colorizer import weights

    if args.action == "pull":
        if not args.name:
            print("usage: colorize models pull NAME", file=sys.stderr)
            return 2
        path = weights.pull(args.name, progress=not args.quiet, force=args.force)
        print(path)
        return 0
    rows = weights.model_table()
    columns = ["name", "arch", "description", "size", "license", "status"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print(f"\ncache: {weights.cache_dir() / 'models'}  (set COLORIZER_HOME to move it)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from colorizer import evaluate
    from colorizer.files import remove_leftovers
    from colorizer.guidance.cli import eval_methods
    from colorizer.pipeline import Colorizer

    if args.video:
        from colorizer.video.cli import cmd_eval_video

        return cmd_eval_video(args)
    prior = evaluate.read_prior(args.prior) if args.prior else None
    entries = [(args.model, args.weights), *map(_model_and_weights, args.compare or [])]
    methods, colorizers = {}, {}
    for given, weights in entries:
        name = model_for(given, weights)
        colorizer = Colorizer(
            name,
            weights=weights,
            size=args.size,
            device=args.device,
            backend=args.backend,
            mirror_average=mirror_average(args),
        )
        label = colorizer.name if weights is None else f"{name} ({Path(weights).name})"
        methods[label] = evaluate.colorizer_method(colorizer)
        colorizers[label] = colorizer
    methods |= eval_methods(colorizers, args)
    photos = evaluate.find_photos(Path(args.data))[: args.limit]
    sheet = Path(args.sheet) if args.sheet else None
    for folder in (Path(args.csv).parent if args.csv else None, sheet):
        if folder is not None and folder.is_dir():
            remove_leftovers(folder)  # half-written sheets or CSV of a killed run
    result = evaluate.evaluate(
        methods, photos, prior=prior, sheet_dir=sheet, progress=not args.quiet
    )
    print(f"{len(photos) - len(result.failed)} photos from {args.data}")
    print(evaluate.format_table(result.means()))
    if args.csv:
        evaluate.write_csv(Path(args.csv), result)
    for path, reason in result.failed:
        print(f"  could not read {path}: {reason}", file=sys.stderr)
    return 1 if result.failed else 0


def _model_and_weights(entry: str) -> tuple[str | None, str | None]:
    name, _, weights = entry.partition("=")
    return name or None, weights or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorize", description="Bring colour to black-and-white photographs and films."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    image = commands.add_parser(
        "image",
        help="colorize photos",
        description="Colorize photos, folders or globs.",
        epilog="examples:\n"
        "  colorize image old.jpg                  # writes old_colorized.png beside it\n"
        "  colorize image old.jpg -o result.png    # that file\n"
        "  colorize image scans -r -o out --format jpg\n"
        "  colorize image - < old.jpg > colour.png\n"
        "  colorize image old.jpg --hint 120,80,#3a6ea5 --saturation 0.35",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    image.add_argument(
        "inputs", nargs="+", help="image files, folders or glob patterns; - reads standard input"
    )
    image.add_argument(
        "-o",
        "--output",
        help="write DIR/NAME.png instead of NAME_colorized.png beside the input; with one input, "
        "a file name with an image suffix (result.png) is that file, and - is standard output",
    )
    image.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    add_model_options(image)
    add_device_option(image, backend=True)
    image.add_argument(
        "--format",
        type=output_format,
        help="output format: png (default), jpg, tif, webp or bmp; with -o FILE its suffix",
    )
    image.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    image.add_argument(
        "--confidence",
        action="store_true",
        help="also write NAME_confidence.png beside each output NAME.EXT: the model's per-pixel "
        "confidence in its colours, 8-bit grey, 255 = sure (models with one: colornet-v3)",
    )
    image.add_argument(
        "--max-pixels",
        type=non_negative,
        default=None,
        help="refuse larger images (default 200 million; 0 means no limit)",
    )
    image.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_guidance_arguments(image)
    add_provenance_arguments(image)
    add_engine_options(image)
    image.set_defaults(run=cmd_image)

    evaluation = commands.add_parser(
        "eval",
        help="score models on colour photos",
        description="Turn each colour photo grey, colorize it, and compare with the original.",
    )
    evaluation.add_argument("data", help="folder of colour photos (searched recursively)")
    add_model_options(
        evaluation,
        model="registered model or architecture to evaluate",
        weights="local weights for --model",
        size=None,
    )
    evaluation.add_argument(
        "--compare", nargs="+", metavar="MODEL[=WEIGHTS]", help="more models, side by side"
    )
    evaluation.add_argument(
        "--size", type=network_size, help="side of the square the networks see (32 to 2048)"
    )
    add_device_option(evaluation, backend=True)
    add_mirror_option(evaluation)
    evaluation.add_argument("--prior", help="313-bin prior (.npy) for the rebalanced AuC")
    evaluation.add_argument("--csv", help="write per-image metrics to this CSV file")
    evaluation.add_argument("--sheet", help="write contact sheets (grey | models | truth) here")
    evaluation.add_argument("--limit", type=positive, help="evaluate only the first N photos")
    evaluation.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_video_eval_arguments(evaluation)
    add_guidance_eval_arguments(evaluation)
    evaluation.set_defaults(run=cmd_eval)

    add_video_parser(commands)
    video = commands.choices["video"]
    # Its --batch-size (frames per network batch) is already there; --actors: segment tasks.
    add_engine_options(
        video, "segments colorized at once (default: one per CPU, or GPU)", None, False
    )
    video.set_defaults(run=cmd_video)
    add_provenance_arguments(video)
    add_train_parser(commands)
    add_server_parsers(commands)
    add_inspect_parser(commands)
    add_cache_parser(commands)

    models = commands.add_parser(
        "models",
        help="list or download models",
        description="List the registered models (name, size, licence, whether it is here), or "
        "download a published one into the user cache, verified by its SHA-256.",
        epilog="examples:\n  colorize models\n  colorize models pull eccv16",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    models.add_argument("name", nargs="?", help="model to download (with `pull`)")
    models.add_argument("--force", action="store_true", help="download again even if cached")
    models.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    models.set_defaults(run=cmd_models)
    return parser


def _version() -> str:
    from colorizer.version import __version__

    return f"colorize {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `colorize`: the help, as a usage error (argparse's code)
        parser.print_help(sys.stderr)
        return 2
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
