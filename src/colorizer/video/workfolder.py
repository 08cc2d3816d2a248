"""The work folder beside the output: finished segments and what resuming needs.

``film.mp4`` is built in ``film.mp4.parts/``: ``job.json`` says which input and settings the
parts belong to; each finished segment ``k`` leaves ``seg-k.mov`` (its video), ``seg-k.npz`` (the
temporal-consistency memory after its last frame) and, written last, ``seg-k.json`` (its frames
and timestamps), the mark that the segment is complete. With keyframes, ``shots.json`` keeps the
film's shots (each frame's timestamp and the shots' first frames), found once per job. A rerun
with the same job keeps the complete segments and goes on after the last one; a different job
starts afresh.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from colorizer.files import atomic_write
from colorizer.video.consistency import PropagatorState
from colorizer.video.output import PARTIAL, VideoWriteError

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
SHOTS_FILE = "shots.json"


@dataclass(frozen=True)
class SegmentRecord:
    """A finished segment: frames ``first_frame ..`` shown from ``first_pts`` to ``last_pts``
    (source timestamps); ``shift_pts`` is what every output timestamp was moved by.
    """

    index: int
    first_frame: int
    frames: int
    first_pts: int
    last_pts: int
    shift_pts: int


class WorkFolder:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_output(cls, destination: Path, job: dict) -> WorkFolder:
        """The work folder of ``destination``, emptied unless it holds parts of this ``job``."""
        folder = cls(destination.with_name(destination.name + ".parts"))
        found = folder.job()
        foreign = folder.path.is_file() or (folder.path.is_dir() and any(folder.path.iterdir()))
        if found is None and foreign:
            raise VideoWriteError(f"{folder.path} exists and is not a colorize work folder")
        try:
            if found is not None and found != job:
                log.warning("%s holds parts of a different job; starting afresh", folder.path)
                shutil.rmtree(folder.path)
            folder.path.mkdir(exist_ok=True)
            _write_atomic(folder.path / JOB_FILE, json.dumps(job, indent=1, sort_keys=True))
        except OSError as exc:
            raise VideoWriteError(
                f"{destination}: cannot write beside it ({exc.strerror or exc})"
            ) from exc
        return folder

    @classmethod
    def remove_finished(cls, destination: Path) -> bool:
        """Remove the work folder of a film that is already in place (a run killed between
        renaming the film into place and removing its parts leaves it); only a colorize work
        folder (one with its ``job.json``) is touched. Whether one was removed."""
        folder = cls(destination.with_name(destination.name + ".parts"))
        if not destination.is_file() or folder.job() is None:
            return False
        folder.remove()
        return True

    def job(self) -> dict | None:
        try:
            return json.loads((self.path / JOB_FILE).read_text())
        except (OSError, ValueError):
            return None

    def shots(self) -> dict | None:
        """The keyframe engine's shot pre-pass of this job (``video.keyframed.FilmShots``)."""
        try:
            return json.loads((self.path / SHOTS_FILE).read_text())
        except (OSError, ValueError):
            return None

    def save_shots(self, shots: dict) -> None:
        _write_atomic(self.path / SHOTS_FILE, json.dumps(shots))

    def segment_path(self, index: int, suffix: str = ".mov") -> Path:
        return self.path / f"seg-{index:05d}{suffix}"

    def finished(self) -> list[SegmentRecord]:
        """The complete segments 0, 1, 2, ... up to the first one missing."""
        records: list[SegmentRecord] = []
        while (record := self.record(len(records))) is not None:
            records.append(record)
        return records

    def record(self, index: int) -> SegmentRecord | None:
        """Segment ``index``'s record if it is complete, else None."""
        try:
            fields = json.loads(self.segment_path(index, ".json").read_text())
        except (OSError, ValueError):
            return None
        if not self.segment_path(index).is_file():
            return None
        return SegmentRecord(**fields)

    def state(self, index: int) -> PropagatorState | None:
        """The consistency memory after segment ``index`` (None when it kept none)."""
        path = self.segment_path(index, ".npz")
        if not path.is_file():
            return None
        with np.load(path) as saved:
            hidden = saved["hidden"] if "hidden" in saved.files else None
            return PropagatorState(grey=saved["grey"], ab=saved["ab"], hidden=hidden)

    def commit(self, record: SegmentRecord, state: PropagatorState | None) -> None:
        """Mark segment ``record.index`` complete (its video file is already in place)."""
        if state is not None:
            arrays = {"grey": state.grey, "ab": state.ab}
            if state.hidden is not None:
                arrays["hidden"] = state.hidden
            with atomic_write(self.segment_path(record.index, ".npz"), tag=PARTIAL) as f:
                # numpy's stubs: a str-keyed dict might hold its bool allow_pickle keyword.
                np.savez(f, **arrays)  # type: ignore[arg-type]
        record_json = json.dumps(asdict(record))
        _write_atomic(self.segment_path(record.index, ".json"), record_json)

    def add_segment(self, record: SegmentRecord, video: bytes) -> None:
        """Store a segment encoded elsewhere (its ``.mov`` bytes) and mark it complete."""
        with atomic_write(self.segment_path(record.index), tag=PARTIAL) as f:
            f.write(video)
        self.commit(record, None)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    with atomic_write(path, "w", tag=PARTIAL) as f:
        f.write(text)
