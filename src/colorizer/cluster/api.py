"""The Python API: ``colorize image`` / ``colorize video --engine ray`` as functions, taking the
command line's options as keyword arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from colorizer.batch import BatchReport, output_beside
from colorizer.cluster import video
from colorizer.cluster.images import colorize_on_ray
from colorizer.cluster.settings import DEFAULT_BATCH, ClusterOptions, ColorizerSpec
from colorizer.imageio import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from colorizer.guidance import Guidance
    from colorizer.video.colorize import VideoOptions, VideoReport


@dataclass
class ClusterReport(BatchReport):
    """Done, skipped and failed photos; the inputs that matched nothing; the failures CSV."""

    unmatched: list[str] = field(default_factory=list)
    failures_csv: str | None = None


def colorize_images(
    inputs: str | list[str],
    output: str | Path | None = None,
    *,
    recursive: bool = False,
    format: str = "png",
    overwrite: bool = False,
    model: str | None = None,
    weights: str | Path | None = None,
    size: int | None = None,
    device: str = "auto",
    backend: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    guidance: Guidance | None = None,
    address: str | None = None,
    actors: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    failures: str | Path | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClusterReport:
    """``colorize image INPUTS -o OUTPUT --engine ray``: files, folders, globs or URIs
    (``s3://bucket/scans``) colorized on the Ray cluster at ``address`` (default
    ``$RAY_ADDRESS``, else a Ray started here for the call).

    Every photo ends in the returned report as done, skipped (its output exists; ``overwrite``
    redoes it) or failed (with the reason); the failures also go to the CSV ``failures``
    (default ``OUTPUT/colorize-failures.csv``, in ``report.failures_csv``). Inputs that matched
    nothing are in ``report.unmatched``. ``on_progress(finished, total)`` is called here after
    each batch."""
    patterns = [inputs] if isinstance(inputs, str) else list(inputs)
    report = ClusterReport()
    _, report.unmatched, report.failures_csv = colorize_on_ray(
        patterns,
        None if output is None else str(output),
        recursive=recursive,
        suffix="." + format.lstrip("."),
        overwrite=overwrite,
        spec=ColorizerSpec(model, _text(weights), size, device, backend, max_pixels),
        cluster=ClusterOptions(address, actors, batch_size),
        guidance=guidance,
        progress=progress,
        failures=_text(failures),
        on_progress=on_progress,
        report=report,
    )
    return report


def colorize_video(
    source: str | Path,
    destination: str | Path | None = None,
    options: VideoOptions | None = None,
    *,
    model: str | None = None,
    weights: str | Path | None = None,
    size: int | None = None,
    device: str = "auto",
    backend: str | None = None,
    address: str | None = None,
    actors: int | None = None,
    progress: bool = False,
) -> VideoReport:
    """``colorize video SOURCE -o DESTINATION --engine ray``: the film's segments colorized
    as Ray tasks (``options``: ``colorizer.video.VideoOptions``, the command's settings)."""
    source = Path(source)
    return video.colorize_video(
        ColorizerSpec(model, _text(weights), size, device, backend),
        source,
        output_beside(source, ".mp4") if destination is None else destination,
        options,
        ClusterOptions(address, actors),
        progress=progress,
    )


def _text(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
