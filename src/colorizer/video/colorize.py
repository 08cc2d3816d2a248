"""``colorize_video``: a film in, the colorized film out, streamed through four threads.

decode thread:      frames -> L* at full, network and work resolution
main thread:        batches of L* -> network -> ab
consistency thread: ab -> temporal consistency (frame by frame, each needs the one before), or
                    with keyframes / a reference photo the keyframe engine (video/keyframed.py)
finish thread:      full-resolution L* + ab -> sRGB -> encoder

Queues between them are short, so memory does not grow with the film's length and no frame
touches the disk. The video is encoded in segments of ``segment_seconds`` in a work folder beside
the output; a rerun after a kill keeps the finished segments and carries on after them, starting
from the consistency memory saved with the last one. Network batches never straddle segments, so
a resumed run computes exactly what an uninterrupted one would. Finally the segments and the
source's audio are remuxed into a temporary file in the work folder, flushed and renamed onto
the output (``colorizer.files.atomic_path``).

Engines that colorize segments elsewhere (``colorizer.cluster``) use the same pieces:
``prepare_job`` (checks, probe, work folder), ``plan_segments`` (each segment's first frame and
the timestamp before it, from the container's packets), ``colorize_segment`` (one segment alone,
its consistency memory starting empty) and ``join_segments`` (the remux).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from colorizer import planes
from colorizer.errors import ColorizerError
from colorizer.files import atomic_path
from colorizer.pipeline import Colorizer
from colorizer.planes import compose, resize_plane
from colorizer.provenance.making import Making, mark_film
from colorizer.version import __version__
from colorizer.video import flow
from colorizer.video.consistency import (
    DEFAULT_FLOW,
    DEFAULT_STRENGTH,
    DEFAULT_WORK_SIDE,
    FlowPropagator,
    PropagatorState,
)
from colorizer.video.output import (
    PARTIAL,
    EncoderSettings,
    SegmentWriter,
    Trim,
    VideoWriteError,
    check_output_type,
    remux,
)
from colorizer.video.source import (
    Position,
    SourceFrame,
    SourceInfo,
    VideoReadError,
    frame_timestamps,
    probe,
    read_frames,
)
from colorizer.video.workfolder import SegmentRecord, WorkFolder

_QUEUE_BATCHES = 2  # batches buffered between stages: enough to keep every stage busy
_POLL_S = 0.1


@dataclass(frozen=True)
class VideoOptions:
    """How to colorize a film. ``consistency`` is the flow-propagation strength (0 = off);
    ``refiner`` (weights of a trained ``video-refiner``) replaces flow propagation."""

    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    consistency: float = DEFAULT_STRENGTH
    flow: str = DEFAULT_FLOW
    work_side: int = DEFAULT_WORK_SIDE
    start_s: float | None = None
    end_s: float | None = None
    batch_size: int = 8
    segment_seconds: float = 10.0
    refiner: str | None = None
    # Paths, not arrays: the options go into the work folder's job record and to Ray workers.
    keyframes: str | None = None  # a keyframe file or folder (video/keyframes.py reads it)
    reference: str | None = None  # a colour photo whose colours serve every shot without a keyframe

    @property
    def keyed(self) -> bool:
        """Whether keyframes or a reference photo guide the colours (``video.keyframed``)."""
        return self.keyframes is not None or self.reference is not None

    @property
    def steadied(self) -> bool:
        return self.refiner is not None or self.consistency > 0 or self.keyed


@dataclass
class StageTimes:
    """Seconds spent in each stage, summed over frames (stages overlap in time)."""

    decode: float = 0.0
    network: float = 0.0
    consistency: float = 0.0
    encode: float = 0.0
    remux: float = 0.0


@dataclass
class VideoReport:
    output: Path
    frames: int  # frames in the output
    colorized: int  # frames this run colorized (fewer than ``frames`` when it resumed)
    resumed_segments: int
    scene_cuts: int
    seconds: float
    times: StageTimes = field(default_factory=StageTimes)


def colorize_video(
    colorizer: Colorizer,
    source: str | Path,
    destination: str | Path,
    options: VideoOptions | None = None,
    *,
    progress: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> VideoReport:
    """Colorize the film ``source`` into ``destination`` (container from its suffix).

    Same frames, timestamps, rate, resolution and duration; audio and subtitle streams copied
    packet for packet. Resumes from ``destination``'s work folder if an earlier run was killed.
    Raises ``VideoReadError`` / ``VideoWriteError`` (``ColorizerError``) naming the file.
    ``progress`` shows a bar (frames/s, ETA) on stderr; ``on_progress(done, total)`` is called
    from a worker thread after every frame (``total`` is None when the container does not say).
    """
    started = time.perf_counter()
    source, destination = Path(source), Path(destination)
    options = options or VideoOptions()
    info, work = prepare_job(colorizer, source, destination, options)
    try:
        report = _colorize_into(colorizer, info, destination, options, work, progress, on_progress)
    except VideoReadError:
        work.remove()  # the input itself is broken: no rerun can use these parts
        raise
    work.remove()
    report.seconds = time.perf_counter() - started
    return report


def prepare_job(
    colorizer: Colorizer,
    source: Path,
    destination: Path,
    options: VideoOptions,
    engine: dict | None = None,
) -> tuple[SourceInfo, WorkFolder]:
    """Check the options and the destination, probe the source, open the work folder.

    ``engine``: what else the parts depend on (another engine's settings); parts made under
    other settings are never reused."""
    _check_options(options)
    info = probe(source)
    _check_destination(source, destination)
    job = _job(colorizer, info, options)
    if engine is not None:
        job["engine"] = engine
    return info, WorkFolder.for_output(destination, job)


def _propagator(colorizer: Colorizer, info: SourceInfo, options: VideoOptions, work: WorkFolder):
    if options.keyed:
        from colorizer.video.keyframed import KeyedSettings, film_propagator

        settings = KeyedSettings(
            options.keyframes,
            options.reference,
            options.consistency,
            options.flow,
            options.work_side,
        )
        return film_propagator(colorizer, info, settings, work)
    if options.refiner is not None:
        from colorizer.video.refiner import RefinerPropagator

        return RefinerPropagator(options.refiner, options.flow)
    return FlowPropagator(options.consistency, options.flow)


def _check_options(options: VideoOptions) -> None:
    if options.batch_size < 1 or options.segment_seconds <= 0 or options.work_side < 8:
        raise ColorizerError("batch size, segment length and work side must be positive")
    start, end = options.start_s, options.end_s
    if (start is not None and start < 0) or (end is not None and end <= (start or 0)):
        raise ColorizerError(f"--start {start} / --end {end}: need 0 <= start < end")


def _check_destination(source: Path, destination: Path) -> None:
    check_output_type(destination)
    if destination.exists() and destination.resolve() == source.resolve():
        raise VideoWriteError(f"{destination}: the output would overwrite the input")
    if destination.is_dir():
        raise VideoWriteError(f"{destination}: is a folder, not a file name")
    folder = destination.parent
    if not folder.is_dir():
        raise VideoWriteError(f"{destination}: cannot write: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VideoWriteError(f"{destination}: cannot write: {folder} is not writable")


def _job(colorizer: Colorizer, info: SourceInfo, options: VideoOptions) -> dict:
    """Everything the parts depend on; a rerun with other values must not reuse them."""
    weights = Path(colorizer.weights)
    source = info.path.stat()
    refiner = None
    if options.refiner is not None:
        path = Path(options.refiner)
        if not path.is_file():
            raise ColorizerError(f"{path}: refiner weights not found")
        refiner = [str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns]
    return {
        "colorizer": __version__,
        "source": [str(info.path.resolve()), source.st_size, source.st_mtime_ns],
        "model": [colorizer.name, colorizer.arch, str(weights), weights.stat().st_size],
        "size": colorizer.size,
        "device": colorizer.device.type,
        "options": asdict(options),
        "refiner": refiner,
        "keyframes": _keyframes_digest(options),
    }


def _keyframes_digest(options: VideoOptions) -> str | None:
    """The keyframe and reference files' bytes: changed keyframes make a different job."""
    if not options.keyed:
        return None
    from colorizer.video.keyframes import keyframes_digest

    return keyframes_digest(options.keyframes, options.reference)


def _colorize_into(
    colorizer: Colorizer,
    info: SourceInfo,
    destination: Path,
    options: VideoOptions,
    work: WorkFolder,
    progress: bool,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> VideoReport:
    done = work.finished()
    run = _Run(colorizer, info, options, work, done)
    run.on_progress = on_progress
    run.execute(progress)
    started = time.perf_counter()
    records = join_segments(info, work, destination, options, colorizer.making(info.path))
    run.times.remux = time.perf_counter() - started
    return VideoReport(
        output=destination,
        frames=sum(r.frames for r in records),
        colorized=run.colorized,
        resumed_segments=len(done),
        scene_cuts=run.propagator.scene_cuts,
        seconds=0.0,
        times=run.times,
    )


def join_segments(
    info: SourceInfo,
    work: WorkFolder,
    destination: Path,
    options: VideoOptions,
    making: Making | None = None,
) -> list[SegmentRecord]:
    """Remux the finished segments and the source's audio onto ``destination``; their records.
    ``making``: the film's provenance (XMP, C2PA, sidecar), put in before it appears."""
    records = work.finished()
    if not records:
        raise VideoReadError(f"{info.path}: no video frames between --start and --end")
    segments = [work.segment_path(r.index) for r in records]
    # Remuxed inside the work folder (removed on success, kept for a rerun): a kill leaves
    # nothing beside the destination.
    with atomic_path(destination, tag=PARTIAL, folder=work.path) as partial:
        remux(info, segments, partial, _trim(options, info, records))
        if making is not None:
            mark_film(partial, making)
    if making is not None:
        making.recorded(destination)
    return records


def frames_per_segment(info: SourceInfo, options: VideoOptions) -> int:
    return max(1, round(options.segment_seconds * info.frame_rate))


@dataclass(frozen=True)
class SegmentPlan:
    """One segment to colorize on its own: frames ``first_frame`` .. ``+ frames - 1``, the first
    shown at ``first_pts``; ``after_pts`` is the frame before it (None for the first segment)
    and ``shift_pts`` what every output timestamp moves by."""

    index: int
    first_frame: int
    frames: int
    first_pts: int
    after_pts: int | None
    shift_pts: int


def plan_segments(info: SourceInfo, options: VideoOptions) -> list[SegmentPlan]:
    """The segments ``colorize_video`` would write, located by the container's timestamps
    (packets only, nothing decoded)."""
    stamps = frame_timestamps(info, options.start_s, options.end_s)
    if not stamps:
        raise VideoReadError(f"{info.path}: no video frames between --start and --end")
    per = frames_per_segment(info, options)
    shift = stamps[0] if options.start_s is not None else 0
    return [
        SegmentPlan(
            index=first // per,
            first_frame=first,
            frames=len(stamps[first : first + per]),
            first_pts=stamps[first],
            after_pts=stamps[first - 1] if first else None,
            shift_pts=shift,
        )
        for first in range(0, len(stamps), per)
    ]


@dataclass
class SegmentResult:
    record: SegmentRecord
    times: StageTimes
    scene_cuts: int


def colorize_segment(
    colorizer: Colorizer,
    info: SourceInfo,
    options: VideoOptions,
    work: WorkFolder,
    plan: SegmentPlan,
) -> SegmentResult:
    """Colorize the one segment ``plan`` into ``work``, its consistency memory starting empty
    (``colorize_video`` carries it over from the segment before). Its frames are checked
    against the plan, which came from the container's packets."""
    run = _Run(colorizer, info, options, work, [], plan)
    run.execute(progress=False)
    record = work.record(plan.index)
    found = None if record is None else (record.first_frame, record.frames, record.first_pts)
    if found != (plan.first_frame, plan.frames, plan.first_pts):
        raise VideoReadError(
            f"{info.path}: segment {plan.index} decodes to frames {found} (first, count, pts), "
            f"not the {(plan.first_frame, plan.frames, plan.first_pts)} its packets promise; "
            "colorize this film with the local engine"
        )
    assert record is not None  # a missing record does not match the plan (raised above)
    return SegmentResult(record, run.times, run.propagator.scene_cuts)


def _trim(options: VideoOptions, info: SourceInfo, records: list[SegmentRecord]) -> Trim:
    """Audio kept with a trimmed film: from its first frame to --end, moved as the video was."""
    if options.start_s is None and options.end_s is None:
        return Trim()
    shift_s = float(records[0].shift_pts * info.time_base)
    start_s = float(records[0].first_pts * info.time_base)
    return Trim(start_s=start_s, end_s=options.end_s, shift_s=shift_s)


# --------------------------------------------------------------------------- the three stages


_END = object()  # end of a queue's stream


class _Stopped(Exception):
    """Another stage failed or the run was interrupted: this stage gives up quietly."""


@dataclass
class _Prepared:
    """A decoded frame ready for the network: L* at full, network and work resolution."""

    index: int
    pts: int
    duration: int
    lightness: np.ndarray  # H x W float32, the output's own lightness
    small: np.ndarray  # S x S float32, what the network sees
    grey: np.ndarray | None  # work-resolution uint8, for the optical flow


@dataclass(frozen=True)
class _SegmentEnd:
    """The consistency stage's word that a segment's last frame has gone by, with the
    propagator's state after it (None without consistency)."""

    state: PropagatorState | None


class _Worker(threading.Thread):
    """A stage in a thread; its exception is kept for the main thread, and stops the others."""

    error: BaseException | None

    def __init__(self, stage: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.stage, self.stop, self.error = stage, stop, None

    def run(self) -> None:
        try:
            self.stage()
        except _Stopped:
            pass
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc
            self.stop.set()


class _Run:
    """One pass over the frames not yet in finished segments."""

    def __init__(
        self,
        colorizer: Colorizer,
        info: SourceInfo,
        options: VideoOptions,
        work: WorkFolder,
        done: list[SegmentRecord],
        plan: SegmentPlan | None = None,
    ) -> None:
        self.colorizer, self.info, self.options, self.work = colorizer, info, options, work
        self.per_segment = frames_per_segment(info, options)
        self.work_hw = flow.work_shape(info.height, info.width, options.work_side)
        self.propagator = _propagator(colorizer, info, options, work)
        self.on_progress: Callable[[int, int | None], None] | None = None
        self.done_frames = sum(r.frames for r in done)
        if done:
            last = done[-1]
            self.propagator.state = work.state(last.index)
            self.position = Position(after_pts=last.last_pts, first_index=self.done_frames)
            self.shift_pts: int | None = last.shift_pts
        else:
            self.position = Position(start_s=options.start_s or 0.0)
            self.shift_pts = None  # known at the first frame
        self.end_index: int | None = None  # decode to the end of the film
        if plan is not None and plan.after_pts is not None:
            self.position = Position(after_pts=plan.after_pts, first_index=plan.first_frame)
        if plan is not None:
            self.shift_pts, self.end_index = plan.shift_pts, plan.first_frame + plan.frames
        self.stop = threading.Event()
        size = options.batch_size * _QUEUE_BATCHES
        self.decoded: queue.Queue = queue.Queue(maxsize=size)
        self.coloured: queue.Queue = queue.Queue(maxsize=size)
        self.steadied: queue.Queue = queue.Queue(maxsize=size)
        self.times = StageTimes()
        self.colorized = 0

    def execute(self, progress: bool) -> None:
        from tqdm import tqdm

        with tqdm(
            total=self._expected_frames(),
            initial=self.done_frames,
            desc=self.info.path.name,
            unit="frame",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            # Four stages in four threads, so the slowest sets the pace: decode, the network
            # (this thread), consistency (frame by frame: each needs the one before), and
            # composition + encoding (in frame order).
            workers = [
                _Worker(self._decode, self.stop),
                _Worker(self._steady, self.stop),
                _Worker(lambda: self._finish(bar), self.stop),
            ]
            for worker in workers:
                worker.start()
            try:
                self._infer()
            except _Stopped:
                pass  # a stage failed; its error is raised below
            except BaseException:
                self.stop.set()
                raise
            finally:
                for worker in workers:
                    worker.join()
            for worker in workers:
                if worker.error is not None:
                    raise worker.error

    def _expected_frames(self) -> int | None:
        options, info = self.options, self.info
        if options.start_s is None and options.end_s is None:
            return info.frame_count or None
        end = info.duration_s if options.end_s is None else min(options.end_s, info.duration_s)
        return max(0, round((end - (options.start_s or 0.0)) * info.frame_rate)) or None

    # -- queues that give up when another stage has failed ---------------------------------

    def _put(self, channel: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                channel.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _get(self, channel: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                return channel.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _drain(self, channel: queue.Queue) -> Iterator:
        while (item := self._get(channel)) is not _END:
            yield item

    # -- decode thread ----------------------------------------------------------------------

    def _decode(self) -> None:
        frames = read_frames(self.info, self.position, self.options.end_s)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None or (self.end_index is not None and frame.index >= self.end_index):
                break
            prepared = self._prepare(frame)
            self.times.decode += time.perf_counter() - started
            self._put(self.decoded, prepared)
        frames.close()  # a segment's end: the input file closes now, not when collected
        self._put(self.decoded, _END)

    def _prepare(self, frame: SourceFrame) -> _Prepared:
        rgb = frame.rgb
        lightness = planes.lightness_u8(rgb)
        size = self.colorizer.size
        work_grey = None
        if self.options.steadied:
            work_grey = flow.grey_u8(resize_plane(lightness, *self.work_hw))
        return _Prepared(
            frame.index,
            frame.pts,
            frame.duration,
            lightness,
            resize_plane(lightness, size, size),
            work_grey,
        )

    # -- main thread: the network -----------------------------------------------------------

    def _infer(self) -> None:
        batch: list[_Prepared] = []
        for item in self._drain(self.decoded):
            full = len(batch) == self.options.batch_size
            if batch and (full or self._segment(item) != self._segment(batch[0])):
                self._predict(batch)
                batch = []
            batch.append(item)
        if batch:
            self._predict(batch)
        self._put(self.coloured, _END)

    def _segment(self, item: _Prepared) -> int:
        return item.index // self.per_segment

    def _predict(self, batch: list[_Prepared]) -> None:
        started = time.perf_counter()
        # The keyframe engine never reads the model's colours on most frames of a keyed shot:
        # those skip the network (None). Which ones is fixed by frame number, so a resumed run
        # makes the same batches.
        wanted = [not self.options.keyed or self.propagator.needs_model_at(i.pts) for i in batch]
        # The planes are already at the network's side (shrunk on the decode thread).
        smalls = [item.small for item, want in zip(batch, wanted, strict=True) if want]
        ab = iter(self.colorizer.predict_planes(smalls) if smalls else [])
        # The encoder features for its exemplar transfer too: this thread has time to spare,
        # the consistency thread (the flows) has none.
        features = [self._features(item) for item in batch]
        self.times.network += time.perf_counter() - started
        for item, want, item_features in zip(batch, wanted, features, strict=True):
            self._put(self.coloured, (item, next(ab) if want else None, item_features))

    def _features(self, item: _Prepared) -> np.ndarray | None:
        if not self.options.keyed:
            return None
        assert item.grey is not None  # keyed runs are steadied: the decoder made it
        return self.propagator.features_at(item.pts, item.grey)

    # -- consistency thread -----------------------------------------------------------------

    def _steady(self) -> None:
        """Temporal consistency, frame by frame; after each segment's last frame a
        ``_SegmentEnd`` with the propagator's state then, which that segment's record keeps
        (the thread is on later frames by the time the segment is written)."""
        segment = None
        for item, ab, features in self._drain(self.coloured):
            if segment is not None and self._segment(item) != segment:
                self._put(self.steadied, self._segment_end())
            segment = self._segment(item)
            started = time.perf_counter()
            if self.options.keyed:  # the keyframe engine needs the frame's number in the film
                work_ab = None if ab is None else resize_plane(ab, *self.work_hw)
                ab = self.propagator.at_pts(item.pts, item.grey, work_ab, features)
            elif self.options.steadied:
                ab = self.propagator(item.grey, resize_plane(ab, *self.work_hw))
            self.times.consistency += time.perf_counter() - started
            self._put(self.steadied, (item, ab))
        if segment is not None:
            self._put(self.steadied, self._segment_end())
        self._put(self.steadied, _END)

    def _segment_end(self) -> _SegmentEnd:
        return _SegmentEnd(self.propagator.state if self.options.steadied else None)

    # -- finish thread: composition, encoding ---------------------------------------------

    def _finish(self, bar) -> None:
        writer: SegmentWriter | None = None
        first: _Prepared | None = None  # the open segment's first and latest frames
        last: _Prepared | None = None
        try:
            for message in self._drain(self.steadied):
                if isinstance(message, _SegmentEnd):
                    assert writer is not None and first is not None and last is not None
                    self._close(writer, first, last, message.state)
                    writer = None
                    continue
                item, ab = message
                if writer is None:
                    writer, first = self._open(item), item
                self._write(writer, item, ab)
                last = item
                bar.update()
                if self.on_progress is not None:
                    self.on_progress(self.done_frames + self.colorized, bar.total)
        finally:
            if writer is not None:
                writer.abandon()

    def _open(self, item: _Prepared) -> SegmentWriter:
        if self.shift_pts is None:
            self.shift_pts = item.pts if self.options.start_s is not None else 0
        path = self.work.segment_path(self._segment(item))
        return SegmentWriter(path, self.info, self.options.encoder)

    def _write(self, writer: SegmentWriter, item: _Prepared, ab: np.ndarray) -> None:
        started = time.perf_counter()
        rgb = compose(item.lightness, ab, out_dtype=np.uint8)  # rounded as convertScaleAbs
        assert self.shift_pts is not None  # set by _open, before any frame is written
        writer.write(rgb, item.pts - self.shift_pts, item.duration)
        self.times.encode += time.perf_counter() - started
        self.colorized += 1

    def _close(
        self,
        writer: SegmentWriter,
        first: _Prepared,
        last: _Prepared,
        state: PropagatorState | None,
    ) -> None:
        started = time.perf_counter()
        writer.finish()
        assert self.shift_pts is not None  # set by _open
        record = SegmentRecord(
            index=self._segment(first),
            first_frame=first.index,
            frames=last.index - first.index + 1,
            first_pts=first.pts,
            last_pts=last.pts,
            shift_pts=self.shift_pts,
        )
        self.work.commit(record, state)
        self.times.encode += time.perf_counter() - started
