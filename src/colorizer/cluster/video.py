"""``colorize video --engine ray``: the film's segments colorized as Ray tasks, in parallel.

The segments are those that make ``colorize video`` resumable (``--segment-seconds``, 10 s by
default). The driver finds where each begins from the container's packets (nothing decoded),
sends one task per segment (source, segment plan, ``ColorizerSpec``), stores each encoded
segment in the output's work folder as it comes back, and remuxes them in order with the
source's audio, subtitles and metadata, as the local engine does; the driver then puts the
film's provenance in (XMP, and with a signing identity the C2PA manifest; ``--record``'s
sidecar), as the local engine does.

What differs from the local engine: each task starts its segment with an empty
temporal-consistency memory, where the local engine carries it over from the segment before.
So a segment's first frame is the model's own prediction, not blended with the previous frame,
and the next few frames carry less of the past (the memory fills again within a few frames at
strength 0.7). Frames, timestamps, duration, audio and metadata are otherwise the same; with
``--consistency 0`` the frames are identical. The effect on the warping error is measured in
``benchmarks/RESULTS.md``.

With keyframes (``VideoOptions.keyframes``/``reference``, made absolute here) the driver runs
the keyframe engine's shot pre-pass once and hands it to every task, which reads the keyframe
files itself. A segment that starts on a keyframe is identical to the local engine's; in any
other, the colour carried from the frame before (the engine's chained flow candidate, and the
consistency memory) starts empty at the segment's first frame on Ray, so that frame takes the
keyframe's colours warped along the direct flow alone (trusted or not), and the chain restarts
from it. On the 24-frame
test clip (segments of 6, keyframes on frames 0 and 12) those segments differ from the local
run by 0.54 to 0.71 of 255 levels per pixel on average, and their mean distance to the true
colours is 4.84 levels on Ray against 4.86 locally (colornet-v1 at side 64; the comparison is
``tests/cluster/test_cluster.py``).

The source must be readable at the same path on every node (one machine, or a shared folder);
the encoded segments travel back through Ray's object store, so only the driver writes.
A rerun after a kill keeps every finished segment, not only the first ones.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorizer.cluster.session import cluster_resources, ray_session
from colorizer.cluster.settings import ClusterOptions, ColorizerSpec, plan_workers
from colorizer.errors import ColorizerError
from colorizer.video.colorize import (
    SegmentPlan,
    SegmentResult,
    StageTimes,
    VideoOptions,
    VideoReport,
    colorize_segment,
    join_segments,
    plan_segments,
    prepare_job,
)
from colorizer.video.source import SourceInfo, VideoReadError
from colorizer.video.workfolder import WorkFolder

if TYPE_CHECKING:
    from colorizer.pipeline import Colorizer

# A task a node's death interrupts is run again elsewhere, this many times.
_TASK_RETRIES = 3


def colorize_video(
    spec: ColorizerSpec,
    source: str | Path,
    destination: str | Path,
    options: VideoOptions | None = None,
    cluster: ClusterOptions | None = None,
    *,
    progress: bool = False,
) -> VideoReport:
    """Colorize the film ``source`` into ``destination`` on Ray; see the module's docstring."""
    started = time.perf_counter()
    source, destination = Path(source).resolve(), Path(destination).resolve()
    options, cluster = _absolute_paths(options or VideoOptions()), cluster or ClusterOptions()
    engine = {"name": "ray", "device": spec.device, "backend": spec.backend}
    colorizer = spec.check()  # on the driver's CPU: it also makes the film's provenance
    info, work = prepare_job(colorizer, source, destination, options, engine)
    plans = plan_segments(info, options)
    todo = [plan for plan in plans if work.record(plan.index) is None]
    try:
        shots = _shots(info, options, work) if todo else None
        results = _run_segments(spec, info, options, cluster, work, todo, progress, shots)
    except VideoReadError:
        work.remove()  # the input itself is broken: no rerun can use these parts
        raise
    joined = time.perf_counter()
    # The film's XMP, its C2PA manifest (signed here, with the spec's identity) and --record.
    records = join_segments(info, work, destination, options, colorizer.making(info.path))
    times = _total_times(results)
    times.remux = time.perf_counter() - joined
    work.remove()
    return VideoReport(
        output=destination,
        frames=sum(record.frames for record in records),
        colorized=sum(result.record.frames for result in results),
        resumed_segments=len(plans) - len(todo),
        scene_cuts=sum(result.scene_cuts for result in results),
        seconds=time.perf_counter() - started,
        times=times,
    )


def _absolute_paths(options: VideoOptions) -> VideoOptions:
    """The keyframes and reference as absolute paths: the workers run in other folders."""
    keyframes, reference = options.keyframes, options.reference
    return replace(
        options,
        keyframes=None if keyframes is None else str(Path(keyframes).resolve()),
        reference=None if reference is None else str(Path(reference).resolve()),
    )


def _run_segments(
    spec: ColorizerSpec,
    info: SourceInfo,
    options: VideoOptions,
    cluster: ClusterOptions,
    work: WorkFolder,
    todo: list[SegmentPlan],
    progress: bool,
    shots: dict | None = None,
) -> list[SegmentResult]:
    """Run the segments ``todo``, at most one per worker at a time (so that finished segments
    never pile up in memory), storing each in ``work`` as it arrives."""
    from tqdm import tqdm

    results: list[SegmentResult] = []
    if not todo:
        return results
    with ray_session(cluster.address, num_cpus=cluster.num_cpus) as ray:
        workers = plan_workers(spec, cluster, *cluster_resources(ray))
        task = ray.remote(_colorize_segment_task).options(
            num_cpus=workers.num_cpus, num_gpus=workers.num_gpus, max_retries=_TASK_RETRIES
        )
        shots_ref = None if shots is None else ray.put(shots)  # stored once, read by all
        queue, pending = list(todo), dict[Any, SegmentPlan]()
        total = sum(plan.frames for plan in todo)
        with tqdm(total=total, desc=info.path.name, unit="frame", disable=not progress) as bar:
            while queue or pending:
                while queue and len(pending) < workers.count:
                    plan = queue.pop(0)
                    pending[task.remote(spec, info, options, plan, shots_ref)] = plan
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    del pending[ref]
                    video, result = _result(ray, ref)
                    work.add_segment(result.record, video)
                    results.append(result)
                    bar.update(result.record.frames)
    return results


def _result(ray, ref) -> tuple[bytes, SegmentResult]:
    """A task's result; its error, when it raised one of ours, as that error."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, ColorizerError):
            raise exc.cause from None
        raise


def _total_times(results: list[SegmentResult]) -> StageTimes:
    total = StageTimes()
    for result in results:
        for name in (f.name for f in fields(StageTimes)):
            setattr(total, name, getattr(total, name) + getattr(result.times, name))
    return total


# Built once per worker process: Ray runs many tasks in the same process.
_COLORIZERS: dict[ColorizerSpec, Colorizer] = {}


def _shots(info: SourceInfo, options: VideoOptions, work: WorkFolder) -> dict | None:
    """The keyframe engine's shot pre-pass (a decode of the whole film), run once here and
    kept in the work folder as the local engine keeps it, rather than once per task."""
    if not options.keyed:
        return None
    saved = work.shots()
    if saved is None:
        from colorizer.video import flow
        from colorizer.video.keyframed import film_shots

        work_hw = flow.work_shape(info.height, info.width, options.work_side)
        saved = film_shots(info, work_hw).to_json()
        work.save_shots(saved)
    return saved


def _colorize_segment_task(
    spec: ColorizerSpec,
    info: SourceInfo,
    options: VideoOptions,
    plan: SegmentPlan,
    shots: dict | None = None,
) -> tuple[bytes, SegmentResult]:
    """On a worker: one segment, encoded in a private folder; its bytes and record."""
    if spec not in _COLORIZERS:
        _COLORIZERS[spec] = spec.load()
    with tempfile.TemporaryDirectory(prefix="colorize-segment-") as folder:
        work = WorkFolder(Path(folder))
        if shots is not None:
            work.save_shots(shots)  # the driver's pre-pass: the task does not decode it again
        result = colorize_segment(_COLORIZERS[spec], info, options, work, plan)
        return work.segment_path(plan.index).read_bytes(), result
