"""The `colorize` command: a thin shell over ``colorizer.Colorizer`` and the registry."""

from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass, field
from pathlib import Path

from colorizer.cache_cli import add_cache_parser
from colorizer.errors import ColorizerError
from colorizer.guidance.cli import add_eval_arguments as add_guidance_eval_arguments
from colorizer.guidance.cli import add_image_arguments as add_guidance_arguments
from colorizer.options import (
    add_device_option,
    add_engine_options,
    add_model_options,
    run_command,
)
from colorizer.provenance.cli import add_inspect_parser, add_provenance_arguments
from colorizer.server.cli import add_server_parsers
from colorizer.train.cli import add_train_parser
from colorizer.video.cli import add_video_eval_arguments, add_video_parser

OUTPUT_SUFFIX_MARK = "_colorized"


@dataclass
class Job:
    src: Path
    dst: Path


PHOTOS_IN_FLIGHT = 2  # measured on 2 cores: benchmarks/RESULTS.md, issue 11


@dataclass
class BatchReport:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_inputs(patterns: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and globs into (image, root) pairs; root decides the output layout.

    Returns the pairs and the patterns that matched nothing.
    """
    found: list[tuple[Path, Path]] = []
    unmatched = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            walk = path.rglob("*") if recursive else path.glob("*")
            photos = [(p, path) for p in sorted(walk) if _is_image_input(p)]
            found += photos
            unmatched += [] if photos else [pattern]
        elif path.exists() and not _is_video(path):
            found.append((path, path.parent))
        elif glob.has_magic(pattern):
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=recursive))
            found += [(p, p.parent) for p in matches if _is_image_input(p)]
            unmatched += [] if matches else [pattern]
        else:
            unmatched.append(pattern)
    return list(dict.fromkeys(found)), unmatched


def _is_video(path: Path) -> bool:
    from colorizer.imageio import VIDEO_SUFFIXES

    return path.suffix.lower() in VIDEO_SUFFIXES


def _is_image_input(path: Path) -> bool:
    from colorizer.imageio import IMAGE_SUFFIXES  # lazily: `colorize --help` stays quick

    # Our own earlier outputs sit beside the inputs: never colorize them again.
    return (
        path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.stem.endswith(OUTPUT_SUFFIX_MARK)
    )


def plan_jobs(inputs: list[tuple[Path, Path]], output_dir: Path | None, suffix: str) -> list[Job]:
    jobs = []
    for src, root in inputs:
        if output_dir is None:
            dst = src.with_name(f"{src.stem}{OUTPUT_SUFFIX_MARK}{suffix}")
        else:
            dst = (output_dir / src.relative_to(root)).with_suffix(suffix)
        jobs.append(Job(src, dst))
    return jobs


def run_jobs(
    colorizer, jobs: list[Job], overwrite: bool, progress: bool, guidance=None
) -> BatchReport:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from colorizer.files import remove_leftovers

    for folder in dict.fromkeys(job.dst.parent for job in jobs):
        remove_leftovers(folder)  # half-written outputs of an earlier, killed run
    report = BatchReport()
    todo = []
    for job in jobs:
        if job.dst.exists() and not overwrite:
            report.skipped.append(job.dst)
        else:
            todo.append(job)

    def colorize(job: Job) -> str | None:
        try:
            colorizer.colorize_file(job.src, job.dst, guidance)
        except (ColorizerError, OSError) as exc:
            return str(exc)
        return None

    # Two photos in flight: one is decoded or encoded (Pillow, OpenCV and the runtimes release
    # the GIL) while the other is in the network. A shared Colorizer is thread-safe.
    pool = ThreadPoolExecutor(max_workers=PHOTOS_IN_FLIGHT, thread_name_prefix="photo")
    try:
        outcomes = zip(todo, pool.map(colorize, todo), strict=True)
        for job, error in tqdm(
            outcomes, total=len(todo), desc="colorizing", unit="image", disable=not progress
        ):
            if error is None:
                report.done.append(job.dst)
            else:
                report.failed.append((job.src, error))
    finally:  # Ctrl-C: the photos in flight finish (atomic writes), the rest do not start
        pool.shutdown(wait=True, cancel_futures=True)
    return report


def why_unmatched(pattern: str) -> str:
    """One sentence on why ``pattern`` gave no photo to colorize."""
    from colorizer.imageio import VIDEO_SUFFIXES

    path = Path(pattern)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return f"{pattern}: is a video; colorize films with `colorize video {pattern}`"
    if path.is_file():
        return f"{pattern}: not a photo file name (jpg, png, tif, bmp, webp, gif)"
    if path.is_dir():
        return f"{pattern}: no photos in this folder (-r descends into sub-folders)"
    if glob.has_magic(pattern):
        return f"{pattern}: no file matches"
    return f"{pattern}: no such file or folder"


def print_report(report: BatchReport, unmatched: list[str]) -> None:
    for pattern in unmatched:
        print(f"not found: {why_unmatched(pattern)}", file=sys.stderr)
    for dst in report.done if len(report.done) <= 20 else []:
        print(dst)
    summary = f"{len(report.done)} colorized"
    if report.skipped:
        summary += f", {len(report.skipped)} skipped because the output exists (--overwrite redoes)"
    if report.failed:
        summary += f", {len(report.failed)} failed:"
    print(summary, file=sys.stderr)
    for src, reason in report.failed:
        print(f"  {src}: {reason}", file=sys.stderr)


def cmd_image(args: argparse.Namespace) -> int:
    from colorizer.imageio import DEFAULT_MAX_PIXELS
    from colorizer.pipeline import Colorizer

    if getattr(args, "engine", "local") == "ray":
        return _cmd_image_ray(args)
    if getattr(args, "address", None) or getattr(args, "failures", None):
        raise ColorizerError("--address and --failures are for --engine ray")
    single = _single_output(args)
    if single is None:
        inputs, unmatched = find_inputs(args.inputs, args.recursive)
        if not inputs:
            for pattern in args.inputs:
                print(f"error: {why_unmatched(pattern)}", file=sys.stderr)
            return 1
    from colorizer.guidance.cli import guidance_from_args

    guidance = guidance_from_args(args)
    colorizer = Colorizer(
        args.model,
        weights=args.weights,
        size=args.size,
        device=args.device,
        backend=args.backend,
        max_pixels=DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels or None,
    )
    if single is not None:
        return _colorize_one(colorizer, args.inputs[0], single, guidance, args.overwrite)
    output_dir = Path(args.output) if args.output else None
    jobs = plan_jobs(inputs, output_dir, "." + args.format.lstrip("."))
    progress = not args.quiet and len(jobs) > 1
    report = run_jobs(colorizer, jobs, args.overwrite, progress, guidance)
    print_report(report, unmatched)
    return 1 if report.failed or unmatched else 0


def colorize_on_ray(
    patterns: list[str],
    output: str | None,
    *,
    recursive: bool,
    suffix: str,
    overwrite: bool,
    spec,
    cluster,
    guidance=None,
    progress: bool = False,
    failures: str | None = None,
    on_progress=None,
    report: BatchReport | None = None,
) -> tuple[BatchReport, list[str], str | None]:
    """The jobs of ``patterns`` run on Ray (``colorizer.cluster``): local paths laid out by
    ``plan_jobs``, URIs (any input or the output) listed through pyarrow/fsspec. Returns the
    report (``report``, filled, when given), the patterns that matched nothing, and where the
    failures CSV went (None when there was nothing to do)."""
    from colorizer.cluster import images, storage

    jobs: list  # URI jobs or path jobs: the actors take either
    if any(storage.is_uri(name) for name in [*patterns, output]):
        jobs, unmatched = storage.plan_uri_jobs(
            patterns, output, recursive, suffix, OUTPUT_SUFFIX_MARK
        )
    else:
        inputs, unmatched = find_inputs(patterns, recursive)
        jobs = plan_jobs(inputs, Path(output) if output else None, suffix)
    report = BatchReport() if report is None else report
    if not jobs:
        return report, unmatched, None
    images.run_jobs(
        jobs,
        report,
        spec,
        cluster,
        overwrite=overwrite,
        guidance=guidance,
        progress=progress,
        on_progress=on_progress,
    )
    failures = failures or images.default_failures_csv(output)
    images.write_failures(failures, report.failed)
    return report, unmatched, failures


def _cmd_image_ray(args: argparse.Namespace) -> int:
    """``colorize image --engine ray``: the same jobs, colorized on a Ray cluster."""
    from colorizer.cluster.settings import ClusterOptions, ColorizerSpec
    from colorizer.guidance.cli import guidance_from_args

    if _single_output(args) is not None:
        raise ColorizerError(
            "--engine ray writes into a folder (-o DIR) or beside the inputs, "
            "not to one named file or standard output"
        )
    report, unmatched, failures = colorize_on_ray(
        args.inputs,
        args.output,
        recursive=args.recursive,
        suffix="." + args.format.lstrip("."),
        overwrite=args.overwrite,
        spec=ColorizerSpec.from_args(args),
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
    """``colorize video``: this process, or with ``--engine ray`` a Ray cluster."""
    if args.engine == "ray":
        from colorizer.cluster.video import cmd_video as cmd_video_ray

        return cmd_video_ray(args)
    if args.address:
        raise ColorizerError("--address names a Ray cluster: it needs --engine ray")
    from colorizer.video.cli import cmd_video as cmd_video_local

    return cmd_video_local(args)


STDIO = "-"


def _single_output(args: argparse.Namespace) -> str | None:
    """The output file when the command names one: one input and ``-o`` an image file name or
    ``-`` (stdout); or the input ``-`` (stdin). None: the usual batch (``-o`` is a folder)."""
    from colorizer.imageio import IMAGE_SUFFIXES

    if len(args.inputs) != 1:
        if STDIO in args.inputs:
            raise ColorizerError("- (standard input) must be the only input")
        return None
    output = args.output
    if output == STDIO or (output and Path(output).suffix.lower() in IMAGE_SUFFIXES):
        return output
    if args.inputs[0] == STDIO:
        return output or STDIO  # `colorize image - > out.png`
    return None


def _colorize_one(colorizer, src: str, dst: str, guidance, overwrite: bool) -> int:
    """``src`` (a file or ``-``) colorized into ``dst`` (a file or ``-``: PNG on stdout)."""
    import io

    from PIL import Image

    from colorizer import imageio

    if dst != STDIO and Path(dst).exists() and not overwrite:
        print(f"{dst}: exists; --overwrite replaces it", file=sys.stderr)
        return 1
    if src != STDIO and dst != STDIO:
        try:
            print(colorizer.colorize_file(src, dst, guidance))
        except OSError as exc:
            raise ColorizerError(f"{dst}: cannot write ({exc.strerror or exc})") from exc
        return 0
    if src == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise ColorizerError("standard input is empty: no image to colorize")
        try:
            image = Image.open(io.BytesIO(data))
        except OSError as exc:
            raise ColorizerError(f"standard input is not an image ({exc})") from exc
        picture = colorizer.read(image)
    else:
        picture = colorizer.read(src)
    (rgb,) = colorizer.colorize_pictures([picture], guidance)
    if dst != STDIO:
        try:
            written = imageio.write_image(
                dst,
                rgb,
                picture.alpha,
                bit_depth=picture.bit_depth,
                metadata=colorizer.marked(picture),
            )
        except OSError as exc:
            raise ColorizerError(f"{dst}: cannot write ({exc.strerror or exc})") from exc
        print(written)
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="colorize-") as folder:
        out = imageio.write_image(
            Path(folder) / "out.png", rgb, picture.alpha, bit_depth=picture.bit_depth
        )
        sys.stdout.buffer.write(out.read_bytes())
    sys.stdout.buffer.flush()
    return 0


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
    columns = ["name", "description", "size", "license", "status"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print(f"\ncache: {weights.cache_dir() / 'models'}  (set COLORIZER_HOME to move it)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from colorizer import evaluate
    from colorizer.pipeline import Colorizer

    if args.video:
        from colorizer.video.cli import cmd_eval_video

        return cmd_eval_video(args)
    entries = [(args.model, args.weights), *map(_model_and_weights, args.compare or [])]
    methods, colorizers = {}, {}
    for name, weights in entries:
        colorizer = Colorizer(
            name, weights=weights, size=args.size, device=args.device, backend=args.backend
        )
        label = colorizer.name if weights is None else f"{name} ({Path(weights).name})"
        methods[label] = evaluate.colorizer_method(colorizer)
        colorizers[label] = colorizer
    from colorizer.guidance.cli import eval_methods

    methods |= eval_methods(colorizers, args)
    photos = evaluate.find_photos(Path(args.data))[: args.limit]
    prior = np.load(args.prior) if args.prior else None
    sheet = Path(args.sheet) if args.sheet else None
    from colorizer.files import remove_leftovers

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


def _model_and_weights(entry: str) -> tuple[str, str | None]:
    name, _, weights = entry.partition("=")
    return name, weights or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorize", description="Bring colour to black-and-white photographs and films."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)

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
        "--format", default="png", help="output format: png (default), jpg, tif or webp"
    )
    image.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    image.add_argument(
        "--max-pixels",
        type=int,
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
    evaluation.add_argument("--size", type=int, help="side of the square the networks see")
    add_device_option(evaluation, backend=True)
    evaluation.add_argument("--prior", help="313-bin prior (.npy) for the rebalanced AuC")
    evaluation.add_argument("--csv", help="write per-image metrics to this CSV file")
    evaluation.add_argument("--sheet", help="write contact sheets (grey | models | truth) here")
    evaluation.add_argument("--limit", type=int, help="evaluate only the first N photos")
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
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
