"""``colorize image --engine ray``: the local engine's jobs, colorized by a pool of Ray actors.

Ray Data carries the job list (one row per photo: where it is, where its result goes) to a pool
of actors, ``batch_size`` rows per call, and streams back one small row per photo (done, skipped
or failed, and why). Each actor builds one ``Colorizer`` when it starts (one model load per
actor; on a GPU when the cluster has them) and runs, per photo, ``Colorizer.colorize_file``:
the local engine's own code, so the outputs are the same bytes, written atomically to the same
paths. The network sees one photo per call, as in the local engine: batching photos changes
the float rounding (2e-5 ab on colornet-v2), and the outputs would no longer be identical.

The actors read the photos themselves rather than Ray Data's file readers: a photo that cannot
be read is then one failed row, not a failed read task that stops the dataset.

Restarts. An output that exists is skipped (unless ``overwrite``), as locally; the check runs in
the actors, spread over the cluster. Ray Data restarts an actor that dies and sends its
unfinished batch again: photos of that batch already written during this run (modified after
it started) count as done, not skipped, so every photo ends in the report once. Temp files of
writers killed mid-write are removed from the output folders before and after the run.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from colorizer.batch import (
    OUTPUT_SUFFIX_MARK,
    BatchReport,
    check_output_folders,
    check_plan,
    find_inputs,
    plan_jobs,
)
from colorizer.cluster import storage
from colorizer.cluster.session import cluster_resources, ray_session
from colorizer.cluster.settings import ClusterOptions, ColorizerSpec, Workers, plan_workers
from colorizer.errors import ColorizerError
from colorizer.files import atomic_write, remove_leftovers

if TYPE_CHECKING:
    from colorizer.guidance import Guidance

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
FAILURES_NAME = "colorize-failures.csv"


class JobLike(Protocol):
    @property
    def src(self) -> Any: ...

    @property
    def dst(self) -> Any: ...


def colorize_on_ray(
    patterns: list[str],
    output: str | None,
    *,
    recursive: bool,
    suffix: str,
    overwrite: bool,
    spec: ColorizerSpec,
    cluster: ClusterOptions,
    guidance: Guidance | None = None,
    progress: bool = False,
    failures: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    report: BatchReport | None = None,
) -> tuple[BatchReport, list[str], str | None]:
    """The jobs of ``patterns`` run on Ray: local paths laid out by ``colorizer.batch``
    (``find_inputs``, ``plan_jobs``), URIs (any input or the output) listed through
    pyarrow/fsspec; colliding outputs are refused (``batch.PlanError``) before any work. Returns
    the report (``report``, filled, when given), the patterns that matched nothing, and where
    the failures CSV went (None when there was nothing to do)."""
    jobs: list  # URI jobs or path jobs: the actors take either
    if any(storage.is_uri(name) for name in [*patterns, output]):
        jobs, unmatched = storage.plan_uri_jobs(
            patterns, output, recursive, suffix, OUTPUT_SUFFIX_MARK
        )
        jobs = check_plan(jobs)
    else:
        inputs, unmatched = find_inputs(patterns, recursive)
        jobs = plan_jobs(inputs, Path(output) if output else None, suffix)
        check_output_folders(jobs)
    report = BatchReport() if report is None else report
    if not jobs:
        return report, unmatched, None
    run_jobs(
        jobs,
        report,
        spec,
        cluster,
        overwrite=overwrite,
        guidance=guidance,
        progress=progress,
        on_progress=on_progress,
    )
    failures = failures or default_failures_csv(output)
    write_failures(failures, report.failed)
    return report, unmatched, failures


def run_jobs(
    jobs: Sequence[JobLike],
    report: BatchReport,
    spec: ColorizerSpec,
    options: ClusterOptions,
    *,
    overwrite: bool = False,
    guidance: Guidance | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Colorize ``jobs`` on Ray; each ends in ``report`` as done, skipped or failed, in the
    jobs' order. ``on_progress(finished, total)`` is called in this process after each batch.
    """
    rows, duplicates = _rows(jobs)
    statuses: dict[int, tuple[str, str]] = {index: (SKIPPED, "") for index in duplicates}
    if rows:
        spec.check()
        started = time.time()
        _clean_output_folders(jobs)
        try:
            with ray_session(options.address, num_cpus=options.num_cpus) as ray:
                dataset = _dataset(ray, rows, spec, options, guidance, overwrite, started)
                for index, status, reason in _results(dataset, len(rows), progress, on_progress):
                    statuses[index] = status, reason
        finally:
            _clean_output_folders(jobs)
    _fill(report, jobs, rows, statuses)


def _rows(jobs: Sequence[JobLike]) -> tuple[list[dict[str, Any]], list[int]]:
    """One row per job with absolute locations (workers do not start in this folder); a later
    job with an output already claimed is left out (the local engine skips it: it exists)."""
    rows, duplicates, claimed = [], [], set()
    for index, job in enumerate(jobs):
        src, dst = _absolute(job.src), _absolute(job.dst)
        if dst in claimed:
            duplicates.append(index)
            continue
        claimed.add(dst)
        rows.append({"index": index, "src": src, "dst": dst})
    return rows, duplicates


def _absolute(location: Any) -> str:
    text = str(location)
    return text if storage.is_uri(text) else str(Path(text).resolve())


def _clean_output_folders(jobs: Sequence[JobLike]) -> None:
    local = (Path(str(job.dst)).parent for job in jobs if not storage.is_uri(str(job.dst)))
    for folder in dict.fromkeys(local):
        remove_leftovers(folder)


def _dataset(ray, rows, spec, options, guidance, overwrite: bool, started: float):
    import ray.data

    workers = _workers(ray, spec, options, len(rows))
    blocks = math.ceil(len(rows) / options.batch_size)
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    return dataset.map_batches(
        ColorizeActor,
        fn_constructor_args=(spec, guidance, overwrite, started),
        batch_size=options.batch_size,
        compute=ray.data.ActorPoolStrategy(size=workers.count),
        num_cpus=workers.num_cpus,
        num_gpus=workers.num_gpus,
    )


def _workers(ray, spec: ColorizerSpec, options: ClusterOptions, rows: int) -> Workers:
    cpus, gpus = cluster_resources(ray)
    workers = plan_workers(spec, options, cpus, gpus)
    # More actors than batches would load the model for nothing.
    count = min(workers.count, math.ceil(rows / options.batch_size))
    return Workers(count, workers.num_cpus, workers.num_gpus)


def _results(dataset, total: int, progress: bool, on_progress):
    """(job index, status, reason) for each photo, as the actors finish them."""
    from tqdm import tqdm

    finished = 0
    with tqdm(total=total, desc="colorizing", unit="file", disable=not progress) as bar:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield from zip(
                batch["index"].tolist(),
                batch["status"].tolist(),
                batch["reason"].tolist(),
                strict=True,
            )
            finished += len(batch["index"])
            bar.update(len(batch["index"]))
            if on_progress is not None:
                on_progress(finished, total)


def _fill(report: BatchReport, jobs, rows, statuses: dict[int, tuple[str, str]]) -> None:
    sent = {row["index"]: row for row in rows}
    for index, job in enumerate(jobs):
        status, reason = statuses.get(index, (FAILED, "no result came back from the cluster"))
        if status == DONE:
            report.done.append(job.dst)
        elif status == SKIPPED:
            report.skipped.append(job.dst)
        else:
            # Name the file as the user gave it, not as the workers saw it (absolute).
            row = sent.get(index)
            reason = reason.replace(row["src"], str(job.src)) if row else reason
            report.failed.append((job.src, reason))


class ColorizeActor:
    """One Ray Data actor: a ``Colorizer`` built once, then batches of rows colorized."""

    def __init__(
        self, spec: ColorizerSpec, guidance: Guidance | None, overwrite: bool, started: float
    ) -> None:
        self.colorizer = spec.load()
        self.guidance, self.overwrite, self.started = guidance, overwrite, started

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        outcomes = [
            self.colorize(src, dst) for src, dst in zip(batch["src"], batch["dst"], strict=True)
        ]
        return {
            "index": list(batch["index"]),
            "status": [status for status, _ in outcomes],
            "reason": [reason for _, reason in outcomes],
        }

    def colorize(self, src: str, dst: str) -> tuple[str, str]:
        try:
            written = storage.modified(dst)
            if written is not None and not self.overwrite:
                # Written during this run: by this actor's predecessor, killed after it.
                return (DONE if written >= self.started else SKIPPED), ""
            self._colorize_file(src, dst)
        except Exception as exc:  # one bad photo never stops the job: it is reported
            return FAILED, str(exc) if isinstance(exc, ColorizerError | OSError) else repr(exc)
        return DONE, ""

    def _colorize_file(self, src: str, dst: str) -> None:
        if not storage.is_uri(src) and not storage.is_uri(dst):
            self.colorizer.colorize_file(src, dst, self.guidance)
            return
        with _input(src) as source, _output(dst) as target:
            try:
                self.colorizer.colorize_file(source, target, self.guidance)
            except ColorizerError as exc:  # it names the private copy: name the URI instead
                raise ColorizerError(str(exc).replace(str(source), src)) from exc


def _input(src: str):
    return storage.local_copy(src) if storage.is_uri(src) else contextlib.nullcontext(Path(src))


def _output(dst: str):
    if storage.is_uri(dst):
        return storage.upload_on_success(dst)
    return contextlib.nullcontext(Path(dst))


def default_failures_csv(output: str | None) -> str:
    """Where the failures go without --failures: the output folder, or this folder."""
    if output is None:
        return FAILURES_NAME
    return output.rstrip("/") + "/" + FAILURES_NAME


def write_failures(location: str, failed: Sequence[tuple[Any, str]]) -> None:
    """The failed photos and why, as CSV (``file,reason``), written atomically (or uploaded)."""
    if storage.is_uri(location):
        with storage.upload_on_success(location) as path:
            _write_csv(path, failed)
        return
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    _write_csv(Path(location), failed)


def _write_csv(path: Path, failed: Sequence[tuple[Any, str]]) -> None:
    try:
        with atomic_write(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "reason"])
            writer.writerows((str(src), reason) for src, reason in failed)
    except OSError as exc:
        raise ColorizerError(f"{path}: cannot write the failures CSV ({exc})") from exc
