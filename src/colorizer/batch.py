"""Batches of photos: finding the inputs, planning every output, running and reporting.

The public local batch API that ``colorize image`` and the Ray engine (``colorizer.cluster``)
both call::

    inputs, unmatched = find_inputs(["scans"], recursive=True)
    jobs = plan_jobs(inputs, Path("out"), ".png")      # refuses colliding outputs
    report = run_jobs(Colorizer(), jobs, overwrite=False, progress=True)
    print_report(report, unmatched)

Planning comes first and is complete before anything is written: two inputs that would write
the same output, or an output that is one of the inputs, are refused with a ``PlanError``
naming them (the command line's exit code 2), so no file is ever written twice in one run.
A job may also write the model's confidence map beside its output (``confidence_path``,
``plan_jobs(..., confidence=True)``): planned, checked, skipped and redone with its output.

Albums (``colorize image FOLDER --reference IMAGE``): ``prepare_album`` reads the reference
and, for a model with an encoder, computes its features once for the whole batch; the report
then says of each photo whether it matched the reference (``ALBUM_MATCHED_SHARE`` of it or
more confidently matched) or fell back to the automatic colours.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from colorizer.errors import ColorizerError

if TYPE_CHECKING:
    from colorizer.guidance import Guidance
    from colorizer.pipeline import Colorizer

OUTPUT_SUFFIX_MARK = "_colorized"
CONFIDENCE_MARK = "_confidence"  # NAME.EXT's confidence map: NAME_confidence.png
PHOTOS_IN_FLIGHT = 2  # measured on 2 cores: benchmarks/RESULTS.md, issue 11
LISTED_AT_MOST = 20  # outputs printed one per line; a larger batch prints the summary only
# An album photo "matched" its reference when at least this share of it is matched with at
# least ALBUM_CONFIDENT confidence (benchmarks/RESULTS.md, "Exemplar transfer (issue 25)").
ALBUM_CONFIDENT = 0.8
ALBUM_MATCHED_SHARE = 0.4


class PlanError(ColorizerError):
    """The outputs of a batch collide; nothing has been written. A usage error: exit code 2."""

    exit_code = 2


@dataclass
class Job:
    src: Path
    dst: Path
    confidence: Path | None = None  # where the confidence map goes (``confidence_path(dst)``)


@dataclass
class BatchReport:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    # An album's photos (by input): the share of each confidently matched to the reference.
    matched: dict[Path, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Album:
    """A batch's guidance with its reference prepared once (``prepare_album``): ``guidance``
    holds the reference's ``Exemplar``, ``given`` the guidance as the user gave it (the
    reference by path: what the outputs' provenance records)."""

    guidance: Guidance
    exemplar: Any
    given: Guidance


def prepare_album(colorizer: Colorizer, guidance: Guidance | None) -> Album | None:
    """``guidance`` with its reference photo's features computed once for every photo of a
    batch; None without a reference, or for a model without an encoder (which reads the
    reference per photo). A bad reference raises here, before any photo."""
    import dataclasses

    if guidance is None or guidance.reference is None:
        return None
    from colorizer import planes
    from colorizer.guidance import exemplar, reference

    if isinstance(guidance.reference, exemplar.Exemplar):
        return Album(guidance, guidance.reference, guidance)
    rgb = reference.read_reference(guidance.reference)  # errors name the file, before any work
    runner = colorizer.for_hints() if guidance.wants_hint_model else colorizer
    if not runner.has_encoder:
        return None
    features = runner.encoder_features(planes.lightness_image(rgb))
    prepared = exemplar.make_exemplar(features, rgb)
    return Album(dataclasses.replace(guidance, reference=prepared), prepared, guidance)


def colorize_album_photo(colorizer: Colorizer, src: Path, dst: Path, album: Album) -> float:
    """One photo of an album colorized into ``dst`` as ``colorize_file`` would; returns the
    share of it matched to the reference (``reference_match``)."""
    from colorizer import imageio
    from colorizer.pipeline import compose, picture_lightness

    guidance = album.guidance
    runner = colorizer.for_hints() if guidance.wants_hint_model else colorizer
    picture = colorizer.read(src)
    lightness = picture_lightness(picture)
    rgb = compose(lightness, runner.guided_ab(lightness, guidance))
    making = colorizer.making(src, album.given)
    metadata = colorizer.marked(picture, making)
    making.recorded(
        imageio.write_image(dst, rgb, picture.alpha, bit_depth=picture.bit_depth, metadata=metadata)
    )
    return reference_match(runner, lightness, album.exemplar)


def reference_match(colorizer: Colorizer, lightness: Any, prepared: Any) -> float:
    """The share of the photo of L* ``lightness`` matched to the reference ``prepared`` (an
    ``Exemplar``) with at least ``ALBUM_CONFIDENT`` confidence: at least
    ``ALBUM_MATCHED_SHARE`` is "matched the reference", less "fell back"."""
    import numpy as np

    from colorizer.guidance import exemplar

    # The guidance matched the photo inside the pipeline; matching again costs one encoder
    # pass (tens of ms), far less than the photo's decode and network.
    features = colorizer.encoder_features(lightness)
    _, confidence = exemplar.transfer(prepared, features, lightness)
    return float(np.mean(confidence >= ALBUM_CONFIDENT))


def match_verdict(share: float) -> str:
    """What an album's report says of a photo whose ``reference_match`` is ``share``."""
    return "matched the reference" if share >= ALBUM_MATCHED_SHARE else "fell back"


def find_inputs(patterns: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and globs into (image, root) pairs; root decides the output layout.

    Returns the pairs and the patterns that matched nothing (``why_unmatched`` says why).
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
        elif path.is_file() and not _is_video(path):
            found.append((path, path.parent))
        elif glob.has_magic(pattern) and not path.exists():
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=recursive))
            found += [(p, p.parent) for p in matches if _is_image_input(p)]
            unmatched += [] if matches else [pattern]
        else:  # missing, a video, or not a regular file (a FIFO would block the reader)
            unmatched.append(pattern)
    return list(dict.fromkeys(found)), unmatched


def _is_video(path: Path) -> bool:
    from colorizer.imageio import VIDEO_SUFFIXES

    return path.suffix.lower() in VIDEO_SUFFIXES


def _is_image_input(path: Path) -> bool:
    from colorizer.imageio import IMAGE_SUFFIXES  # lazily: `colorize --help` stays quick

    # Our own earlier outputs (and their confidence maps) sit beside the inputs: never
    # colorize them again.
    return (
        path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.stem.endswith(OUTPUT_SUFFIX_MARK)
        and not path.stem.endswith(OUTPUT_SUFFIX_MARK + CONFIDENCE_MARK)
    )


def output_beside(src: Path, suffix: str) -> Path:
    """Where ``src``'s output goes without an output folder: ``NAME_colorized.SUFFIX``."""
    return src.with_name(f"{src.stem}{OUTPUT_SUFFIX_MARK}{suffix}")


def confidence_path(dst: Path) -> Path:
    """Where the confidence map of the output ``dst`` (NAME.EXT) goes: NAME_confidence.png."""
    return dst.with_name(f"{dst.stem}{CONFIDENCE_MARK}.png")


def plan_jobs(
    inputs: list[tuple[Path, Path]],
    output_dir: Path | None,
    suffix: str,
    confidence: bool = False,
) -> list[Job]:
    """One job per (image, root) pair: ``output_dir`` + the image's path below its root with
    ``suffix``, or without ``output_dir`` ``NAME_colorized.SUFFIX`` beside the image; with
    ``confidence``, its confidence map beside it. Raises ``PlanError`` when two inputs would
    write one file or a file written is an input."""
    jobs = []
    for src, root in inputs:
        if output_dir is None:
            dst = output_beside(src, suffix)
        else:
            dst = (output_dir / src.relative_to(root)).with_suffix(suffix)
        jobs.append(Job(src, dst, confidence_path(dst) if confidence else None))
    return check_plan(jobs)


def check_plan(jobs: Sequence[Any]) -> list[Any]:
    """``jobs`` (anything with ``src`` and ``dst``: paths, or URIs as text; and a
    ``confidence`` map, if any), each input once (its first job), if every file written is
    distinct and none is an input; else a ``PlanError`` naming the colliding inputs and the
    file."""
    unique: dict[str, Any] = {}
    for job in jobs:  # a file named twice (as itself and in its folder): its first job only
        unique.setdefault(_key(job.src), job)
    writers: dict[str, list[tuple[Any, Any]]] = {}
    for job in unique.values():
        for written in _written(job):
            writers.setdefault(_key(written), []).append((job, written))
    inputs = {_key(job.src): job.src for job in unique.values()}
    problems = [
        f"{group[0][1]} would be written by {_listed([job.src for job, _ in group])}"
        for group in writers.values()
        if len(group) > 1
    ]
    problems += [
        f"{written} would overwrite the input {inputs[_key(written)]}"
        for job in unique.values()
        for written in _written(job)
        if _key(written) in inputs
    ]
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if problems[3:] else ""
        )
        raise PlanError(
            f"output collision: {shown}. Nothing was written: rename the inputs, give "
            "distinct folders, or pass their folder with -r to keep the tree below -o"
        )
    return list(unique.values())


def _written(job: Any) -> list[Any]:
    """The files a job writes: its output, and its confidence map if it has one."""
    confidence = getattr(job, "confidence", None)
    return [job.dst] if confidence is None else [job.dst, confidence]


def _key(location: Any) -> str:
    """One spelling per file: absolute with links resolved (a URI as it is); case-folded
    where the file system usually ignores case, so that A.png and a.png count as one."""
    text = str(location)
    if "://" in text:
        return text
    key = os.path.realpath(text)
    return key.casefold() if sys.platform in ("darwin", "win32") else key


def _listed(paths: list[Any]) -> str:
    names = [str(p) for p in paths]
    return " and ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and others"


def output_file(output: str | None, fmt: str | None) -> Path | None:
    """The file ``-o`` names (an image suffix, not an existing folder), checked against
    ``--format`` (``fmt``); None when ``-o`` is a folder or absent."""
    from colorizer.imageio import IMAGE_SUFFIXES, WRITE_SUFFIXES
    from colorizer.options import OUTPUT_FORMATS, UsageError

    path = Path(output) if output else None
    suffix = path.suffix.lower() if path else ""
    if path is None or path.is_dir() or suffix not in IMAGE_SUFFIXES | set(WRITE_SUFFIXES):
        return None
    if suffix not in WRITE_SUFFIXES:
        formats = ", ".join(OUTPUT_FORMATS)
        raise UsageError(f"-o {path}: cannot write {suffix} files; use {formats}")
    if fmt and _format_name(fmt) != _format_name(suffix):
        raise UsageError(f"--format {fmt} contradicts -o {path}: give one of them")
    return path


def _format_name(suffix: str) -> str:
    name = suffix.lstrip(".").lower()
    return {"jpeg": "jpg", "tiff": "tif"}.get(name, name)


def check_output_folders(jobs: Sequence[Job]) -> None:
    """Refuse, before any work, output folders that cannot be made or written: one clear
    error naming the folder, rather than the same ``[Errno 13]`` once per photo."""
    for folder in dict.fromkeys(job.dst.parent for job in jobs):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ColorizerError(f"{folder}: cannot write there: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            where = "" if existing == folder else f" ({existing} is not writable)"
            raise ColorizerError(f"{folder}: cannot write there: permission denied{where}")


def run_jobs(
    colorizer: Colorizer,
    jobs: list[Job],
    overwrite: bool,
    progress: bool,
    guidance: Guidance | None = None,
) -> BatchReport:
    """Colorize ``jobs`` (checked again with ``check_plan``: never one output twice), two
    photos in flight, each writing its confidence map first if it has one; a job whose output
    or map exists is skipped unless ``overwrite``. Every job ends in the report as done,
    skipped (the file that exists) or failed (with the reason). With a reference photo in
    ``guidance`` and a model with an encoder, an album: the reference is prepared once and the
    report says how much of each photo matched it (``BatchReport.matched``)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from colorizer.files import remove_leftovers

    jobs = check_plan(jobs)
    album = prepare_album(colorizer, guidance)  # a bad reference fails before any work
    for folder in dict.fromkeys(job.dst.parent for job in jobs):
        remove_leftovers(folder)  # half-written outputs of an earlier, killed run
    report = BatchReport()
    todo = []
    for job in jobs:
        existing = [path for path in _written(job) if path.exists()]
        if existing and not overwrite:
            report.skipped.append(existing[0])
        else:
            todo.append(job)

    def colorize(job: Job) -> str | None:
        try:
            if album is not None:
                report.matched[job.src] = colorize_album_photo(colorizer, job.src, job.dst, album)
            else:
                colorize_to_file(colorizer, job.src, job.dst, guidance, confidence=job.confidence)
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
    path = Path(pattern)
    if path.is_file() and _is_video(path):
        return f"{pattern}: is a video; colorize films with `colorize video {pattern}`"
    if path.is_file():
        return f"{pattern}: not a photo file name (jpg, png, tif, bmp, webp, gif)"
    if path.is_dir():
        return f"{pattern}: no photos in this folder (-r descends into sub-folders)"
    if path.exists():
        return f"{pattern}: not a regular file (a FIFO, socket or device); nothing to read"
    if glob.has_magic(pattern):
        return f"{pattern}: no file matches"
    return f"{pattern}: no such file or folder"


def print_report(
    report: BatchReport,
    unmatched: list[str],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> None:
    """The outputs written (one per line on ``out``, up to 20), then on ``err`` the inputs
    that matched nothing, the summary and each failure with its reason."""
    out, err = out or sys.stdout, err or sys.stderr
    for pattern in unmatched:
        print(f"not found: {why_unmatched(pattern)}", file=err)
    for dst in report.done if len(report.done) <= LISTED_AT_MOST else []:
        print(dst, file=out)
    print(summary(report), file=err)
    for src, reason in report.failed:
        print(f"  {src}: {reason}", file=err)
    for line in album_lines(report):
        print(line, file=err)


def album_lines(report: BatchReport) -> list[str]:
    """Per photo of an album, in input order: whether it matched the reference."""
    if not report.matched:
        return []
    matched = [src for src, share in report.matched.items() if share >= ALBUM_MATCHED_SHARE]
    lines = [
        f"reference: {len(matched)} of {len(report.matched)} photos matched it, "
        f"{len(report.matched) - len(matched)} fell back to the automatic colours"
    ]
    for src, share in sorted(report.matched.items()):
        lines.append(f"  {src}: {match_verdict(share)} ({share:.0%} of the photo matched)")
    return lines


def summary(report: BatchReport) -> str:
    """``N colorized, N skipped because the output exists (...), N failed:``."""
    text = f"{len(report.done)} colorized"
    if report.skipped:
        text += f", {len(report.skipped)} skipped because the output exists (--overwrite redoes)"
    if report.failed:
        text += f", {len(report.failed)} failed:"
    return text


def colorize_to_file(
    colorizer: Colorizer,
    image: Any,
    dst: str | Path,
    guidance: Guidance | None = None,
    *,
    confidence: Path | None = None,
) -> Path:
    """One photo (a path, or a PIL image such as one read from standard input) colorized into
    ``dst`` (format from its suffix), with the metadata and provenance a batch's outputs get.
    With ``confidence`` (a file beside ``dst``), the model's confidence map is written there
    first and the output's XMP names it."""
    from colorizer.provenance.making import confidence_beside

    if confidence is not None:
        write_confidence(colorizer, image, confidence)
    with confidence_beside(None if confidence is None else confidence.name):
        return _colorize_to_file(colorizer, image, dst, guidance)


def _colorize_to_file(
    colorizer: Colorizer, image: Any, dst: str | Path, guidance: Guidance | None
) -> Path:
    from colorizer import imageio

    if isinstance(image, str | Path):
        return colorizer.colorize_file(image, dst, guidance)  # exactly as in a batch
    picture = colorizer.read(image)
    (rgb,) = colorizer.colorize_pictures([picture], guidance)
    making = colorizer.making(None, guidance)  # made from no file: standard input
    metadata = colorizer.marked(picture, making)
    return making.recorded(
        imageio.write_image(dst, rgb, picture.alpha, bit_depth=picture.bit_depth, metadata=metadata)
    )


def write_confidence(colorizer: Colorizer, image: Any, dst: Path) -> Path:
    """The model's confidence in its automatic colours of ``image``, written atomically into
    ``dst`` as an 8-bit grey PNG of the photo's size: 255 sure, 0 not at all."""
    import numpy as np
    from PIL import Image

    from colorizer.files import atomic_write

    grey = np.rint(colorizer.confidence(image) * 255).astype(np.uint8)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(dst) as f:
        Image.fromarray(grey).save(f, format="PNG")
    return dst


def read_stdin() -> Any:
    """The image on standard input, opened (a PIL image); a one-line error when there is none."""
    import io

    from PIL import Image

    data = sys.stdin.buffer.read()
    if not data:
        raise ColorizerError("standard input is empty: no image to colorize")
    try:
        return Image.open(io.BytesIO(data))
    except OSError as exc:
        raise ColorizerError(f"standard input is not an image ({exc})") from exc


def colorize_to_bytes(
    colorizer: Colorizer, image: Any, fmt: str = "png", guidance: Guidance | None = None
) -> bytes:
    """The bytes of ``colorize_to_file``'s ``fmt`` file (for standard output): the same
    encoder, options and metadata as a file output."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="colorize-") as folder:
        return colorize_to_file(
            colorizer, image, Path(folder) / f"out.{fmt}", guidance
        ).read_bytes()
