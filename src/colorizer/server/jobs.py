"""Bounded work: image requests on a shared thread pool, video jobs on a queue, a temp area.

Nothing here knows about HTTP. Every limit is a number in ``ServerSettings``; going over one
raises ``QueueFull``, which the app answers with 429.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The server already holds as much work as its settings allow."""


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the job was cancelled."""


class Cancelled(Exception):
    """Raised inside an image request's work once the request was abandoned (timed out)."""


class ImageWorkers:
    """At most ``workers`` calls running, ``max_pending`` running, waiting or abandoned.

    Each call runs on its own thread, so that a call abandoned by a timed-out request gives its
    slot to the next call at once (``abandon``) while it winds down: its ``cancelled`` event is
    set, which the work checks between its stages. It still counts towards ``max_pending``
    until its thread ends, which bounds the threads alive at once.
    """

    def __init__(self, workers: int, max_pending: int) -> None:
        self.workers, self.max_pending = workers, max_pending
        self._pending = 0
        self._running: set[Future] = set()
        self._cond = threading.Condition()
        self._closed = False

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, fn: Callable, *args, cancelled: threading.Event | None = None) -> Future:
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down; try again shortly")
            if self._pending >= self.max_pending:
                raise QueueFull(
                    f"the server is busy: {self._pending} images are being colorized or waiting "
                    f"(limit {self.max_pending}); try again shortly"
                )
            self._pending += 1
        future: Future = Future()
        event = cancelled or threading.Event()
        thread = threading.Thread(
            target=self._run, args=(future, event, fn, args), name="colorize-image", daemon=True
        )
        try:
            thread.start()
        except BaseException:
            self._end(future)
            raise
        return future

    def abandon(self, future: Future, cancelled: threading.Event) -> None:
        """The caller gave up on ``future``: stop its work at the next stage, free its slot."""
        cancelled.set()
        with self._cond:
            self._running.discard(future)
            self._cond.notify_all()

    def _run(self, future: Future, cancelled: threading.Event, fn: Callable, args) -> None:
        try:
            with self._cond:
                while len(self._running) >= self.workers and not cancelled.is_set():
                    self._cond.wait()
                if cancelled.is_set() or not future.set_running_or_notify_cancel():
                    return
                self._running.add(future)
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
        finally:
            self._end(future)

    def _end(self, future: Future) -> None:
        with self._cond:
            self._running.discard(future)
            self._pending -= 1
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True


class MemoryBudget:
    """Bytes of working memory that the image requests running at once may use between them.

    ``reserve`` waits until a request's estimate fits beside the others (or the request is
    abandoned); an estimate over the whole budget is refused, as no wait would make it fit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes: int, cancelled: threading.Event):
        nbytes = max(0, int(nbytes))
        if nbytes > self.limit:
            raise OverBudget(nbytes, self.limit)
        with self._cond:
            while self.used + nbytes > self.limit:
                if cancelled.is_set():
                    raise Cancelled
                self._cond.wait(_CANCEL_POLL_S)  # wakes to notice an abandoned request
            self.used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


class OverBudget(Exception):
    """One request alone needs more memory than the server's budget."""

    def __init__(self, needed: int, limit: int) -> None:
        super().__init__(needed, limit)
        self.needed, self.limit = needed, limit

    def explain(self, what: str, doing: str = "", advice: str = "") -> str:
        """The client's one line: ``what`` is too large for this server (``doing``), how much
        memory it needs against the budget, and ``advice``."""
        needed = math.ceil(self.needed / 2**20)
        return (
            f"{what} is too large for this server{doing}: it needs about {needed:,} MB of "
            f"memory{' to process' if not doing else ''}, over the server's budget of "
            f"{self.limit / 2**20:,.0f} MB{advice}"
        )


_CANCEL_POLL_S = 0.25


TEMP_PREFIX = "colorizer-server-"
_LOCK_NAME = ".owner.lock"


class TempArea:
    """A private folder for uploads and results; nothing in it is named by a client.

    The server holds an exclusive lock on ``.owner.lock`` inside it while it runs; the kernel
    drops the lock when the process ends, even by kill -9. So at start-up, an area beside ours
    whose lock can be taken belongs to no live server, and is removed (``clear_stale``).
    """

    def __init__(self, parent: Path | None = None) -> None:
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
        self._lock = _hold_lock(self.root)
        (self.root / "uploads").mkdir()
        (self.root / "jobs").mkdir()
        self.cleared = clear_stale(self.root.parent, keep=self.root)

    def upload_path(self, suffix: str = "") -> Path:
        """A fresh random path for one uploaded file (the caller deletes it when done)."""
        return self.root / "uploads" / f"{secrets.token_hex(16)}{suffix}"

    def job_dir(self, job_id: str) -> Path:
        path = self.root / "jobs" / job_id
        path.mkdir()
        return path

    def sweep_uploads(self, older_than_s: float) -> int:
        """Remove uploads left behind (a request killed mid-way) older than ``older_than_s``."""
        removed, limit = 0, time.time() - older_than_s
        for path in (self.root / "uploads").iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        return removed

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _hold_lock(root: Path):
    """Lock a file under a temporary name, then rename it into place: ``.owner.lock`` is never
    seen unlocked while its server lives. None where there is no flock (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    staging = root / f".owner-{secrets.token_hex(4)}"
    handle = staging.open("wb")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    staging.rename(root / _LOCK_NAME)
    return handle


def clear_stale(parent: Path, keep: Path) -> list[str]:
    """Remove the temp areas in ``parent`` left by servers that died (kill -9, power loss):
    only this user's ``colorizer-server-*`` folders whose owner lock nobody holds. A folder
    without the lock (another program's, an older version's, one being made) is left alone."""
    try:
        import fcntl
    except ImportError:
        return []
    cleared = []
    for folder in parent.glob(f"{TEMP_PREFIX}*"):
        lock = folder / _LOCK_NAME
        with contextlib.suppress(OSError):
            if folder == keep or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            with lock.open("rb") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live server's
                shutil.rmtree(folder, ignore_errors=True)
                cleared.append(folder.name)
    if cleared:
        log.info("removed %d temp folders left by servers that stopped: %s", len(cleared), cleared)
    return cleared


@dataclass
class Job:
    """One video job. ``status``: queued, running, done, failed, cancelled, downloaded, expired."""

    id: str
    folder: Path
    input: Path
    output: Path
    run: Callable[[Job], None]  # does the work; reports through job.progress()
    status: str = "queued"
    done: int = 0
    total: int | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    downloading: int = 0
    _calls: int = 0

    FINISHED = ("done", "failed", "cancelled", "downloaded", "expired")

    def progress(self, done: int, total: int | None = None) -> None:
        """Progress callback for the work: frames done of total; stops a cancelled job."""
        if self.cancel_requested:
            raise JobCancelled
        # Called once per frame; counting the calls also covers a caller whose count lags.
        self._calls += 1
        self.done = max(int(done), self._calls)
        if total is not None:
            self.total = int(total)

    def remove_files(self) -> None:
        """Delete the job's files, or, while a download is sending them, once it ends."""
        if not self.downloading:
            shutil.rmtree(self.folder, ignore_errors=True)


class JobQueue:
    """Video jobs: ``workers`` threads, at most ``max_queued`` jobs waiting; results expire."""

    def __init__(self, workers: int, max_queued: int, result_ttl_s: float) -> None:
        self.max_queued = max_queued
        self.result_ttl_s = result_ttl_s
        self.jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"colorize-video-{i}", daemon=True)
            for i in range(workers)
        ]
        self._running = 0
        for thread in self._threads:
            thread.start()

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(12)

    def counts(self) -> dict[str, int]:
        with self._cond:
            return {"queued": len(self._waiting), "running": self._running}

    def check_room(self) -> None:
        with self._cond:
            self._check_room()

    def _check_room(self) -> None:
        if len(self._waiting) >= self.max_queued + self._idle_workers():
            raise QueueFull(
                f"the video queue is full ({len(self._waiting)} waiting, {self._running} "
                f"running, limit {self.max_queued} waiting); try again later"
            )

    def _idle_workers(self) -> int:
        return len(self._threads) - self._running

    def submit(self, job: Job) -> Job:
        with self._cond:
            self._check_room()
            self.jobs[job.id] = job
            self._waiting.append(job)
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """How many jobs wait ahead of a queued ``job`` (0: it runs next); None otherwise."""
        with self._cond:
            return self._waiting.index(job) if job in self._waiting else None

    def cancel(self, job: Job) -> None:
        with self._cond:
            job.cancel_requested = True
            if job.status == "queued":
                self._waiting.remove(job)
                self._finish(job, "cancelled")
            elif job.status in ("done", "failed"):
                self._finish(job, "cancelled")

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.finished_at = status, error, time.time()
        if status != "done":
            job.remove_files()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job.status, job.started_at = "running", time.time()
                self._running += 1
            outcome: tuple[str, str | None]
            try:
                job.run(job)
            except JobCancelled:
                outcome = ("cancelled", None)
            except Exception as exc:
                from colorizer.errors import ColorizerError

                if not isinstance(exc, ColorizerError):
                    log.exception("video job %s failed", job.id)
                outcome = ("failed", public_message(exc, job.input, job.output, job.folder))
            else:
                outcome = ("cancelled", None) if job.cancel_requested else ("done", None)
            with self._cond:
                self._running -= 1
                self._finish(job, *outcome)

    def claim_download(self, job: Job) -> bool:
        """Whether this caller may send the result: one download at a time, and only once.
        While it holds the claim, the job's files stay, even if the job is deleted meanwhile."""
        with self._cond:
            if job.status != "done" or job.downloading:
                return False
            job.downloading = 1
            return True

    def release_download(self, job: Job) -> None:
        """A download broke off: the result stays for another try (unless deleted meanwhile)."""
        with self._cond:
            job.downloading = max(0, job.downloading - 1)
            if job.status != "done":
                job.remove_files()  # deleted while it was being sent

    def downloaded(self, job: Job) -> None:
        """The result went out in full: its files go now (the record stays until expiry)."""
        with self._cond:
            job.downloading = max(0, job.downloading - 1)
            if job.status == "done":
                self._finish(job, "downloaded")
            else:
                job.remove_files()  # deleted while it was being sent

    def sweep(self, now: float | None = None) -> int:
        """Expire finished jobs older than the TTL; forget their records after another TTL."""
        now = time.time() if now is None else now
        expired = 0
        with self._cond:
            for job in list(self.jobs.values()):
                if job.finished_at is None or job.downloading:
                    continue
                age = now - job.finished_at
                if job.status == "done" and age >= self.result_ttl_s:
                    self._finish(job, "expired")
                    expired += 1
                elif job.status in Job.FINISHED and age >= 2 * self.result_ttl_s:
                    job.remove_files()
                    del self.jobs[job.id]
        return expired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for job in self.jobs.values():
                job.cancel_requested = True
            self._cond.notify_all()


class Janitor(threading.Thread):
    """Every ``interval_s``: expire old job results and leftover uploads."""

    def __init__(
        self, queue: JobQueue, temp: TempArea, interval_s: float, upload_age_s: float
    ) -> None:
        super().__init__(name="colorize-janitor", daemon=True)
        self.queue, self.temp = queue, temp
        self.interval_s, self.upload_age_s = interval_s, upload_age_s
        # Not "_stop": threading.Thread has a method of that name, which join() calls.
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self.queue.sweep()
                self.temp.sweep_uploads(self.upload_age_s)
            except Exception:  # never let housekeeping take the server down
                log.exception("temp-area sweep failed")

    def stop(self) -> None:
        self._halt.set()


def public_message(exc: BaseException, *private: Path) -> str:
    """An exception's message for a client: server paths replaced, never a stack trace."""
    from colorizer.errors import ColorizerError

    if not isinstance(exc, ColorizerError | OSError | ValueError):
        return f"internal error ({type(exc).__name__}); the server log has the details"
    message = str(exc) or type(exc).__name__
    for path in private:
        message = message.replace(str(path), "<upload>")
    return scrub_paths(message)


def scrub_paths(message: str) -> str:
    """``message`` with any path under the temp folder, the home folder or the model cache cut
    to its last part (a file name says what is meant; the folders are the server's business)."""
    for root in _private_roots():
        pattern = re.escape(root) + r"(?=$|[/\\\s'\"`),;])[^\s'\"`(),;]*"
        message = re.sub(pattern, _last_part, message)
    return message


def _last_part(match: re.Match) -> str:
    path = match.group(0).rstrip(".:")
    trailing = match.group(0)[len(path) :]
    name = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
    return (name or "a server folder") + trailing


def _private_roots() -> list[str]:
    roots = {tempfile.gettempdir(), str(Path.home())}
    with contextlib.suppress(Exception):
        from colorizer.weights import cache_dir

        roots.add(str(cache_dir()))
    # Longest first, so that a cache inside the home folder keeps its file name.
    return sorted((r.rstrip("/\\") for r in roots if len(r.rstrip("/\\")) > 1), key=len)[::-1]
