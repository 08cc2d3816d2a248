"""The film routes: ``POST /v1/colorize/video`` queues a job; ``/v1/jobs/{id}`` follows it,
``/v1/jobs/{id}/result`` downloads it once, ``DELETE`` cancels it.

The upload is saved into the job's own folder and probed (a readable video, within the
duration and frame-size limits) before the job is queued; the work itself runs on the job
queue's threads (``colorizer.server.jobs``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image

from colorizer.errors import ColorizerError, WeightsError
from colorizer.server.errors import ApiError, weights_message
from colorizer.server.jobs import Job, JobQueue, QueueFull, public_message
from colorizer.server.schemas import ERRORS, WEIGHTS_MISSING, ErrorBody, JobStatus
from colorizer.server.state import ServerState
from colorizer.server.uploads import copy_limited

log = logging.getLogger(__name__)


def add_video_routes(app: FastAPI, state: ServerState) -> None:
    @app.post(
        "/v1/colorize/video",
        tags=["video"],
        status_code=202,
        response_model=JobStatus,
        responses={
            **ERRORS,
            409: WEIGHTS_MISSING,
            501: {"model": ErrorBody, "description": "no video support"},
        },
    )
    async def colorize_video(
        video: Annotated[UploadFile, File(description="the film: MP4, MKV, MOV, AVI, WebM ...")],
        model: Annotated[str | None, Form()] = None,
        size: Annotated[int | None, Form()] = None,
        consistency: Annotated[
            float | None, Form(ge=0, le=1, description="temporal consistency strength, 0 = off")
        ] = None,
    ) -> JSONResponse:
        """Queue a film; follow it at GET /v1/jobs/{id} and download it from its result_url."""
        if video_module() is None:
            raise HTTPException(501, "this installation cannot colorize videos (PyAV missing)")
        state.jobs.check_room()
        job = await asyncio.to_thread(prepare_video_job, state, video, model, size, consistency)
        try:
            state.jobs.submit(job)
        except QueueFull:
            job.remove_files()
            raise
        return JSONResponse(
            status_of(job, state.jobs).model_dump(),
            status_code=202,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @app.get(
        "/v1/jobs/{job_id}",
        tags=["video"],
        response_model=JobStatus,
        responses={401: ERRORS[401], 404: {"model": ErrorBody}, 422: ERRORS[422]},
    )
    async def job_status(job_id: str) -> JobStatus:
        """A video job's state and progress."""
        return status_of(_find_job(state, job_id), state.jobs)

    @app.get(
        "/v1/jobs/{job_id}/result",
        tags=["video"],
        response_class=FileResponse,
        responses={
            200: {"content": {"video/mp4": {}}, "description": "the colorized film"},
            401: ERRORS[401],
            404: {"model": ErrorBody},
            422: ERRORS[422],
            409: {"model": ErrorBody, "description": "not finished, or failed"},
            410: {"model": ErrorBody, "description": "already downloaded, cancelled or expired"},
        },
    )
    async def job_result(job_id: str) -> Response:
        """Download the result once; its files are deleted after a complete download."""
        job = _find_job(state, job_id)
        if job.status in ("queued", "running"):
            raise HTTPException(409, f"job {job.id} is {job.status}; the result is not ready")
        if job.status == "failed":
            raise HTTPException(409, f"job {job.id} failed: {job.error}")
        if job.status != "done":
            raise HTTPException(410, f"job {job.id} is {job.status}; its result is gone")
        if not state.jobs.claim_download(job):  # atomic: parallel GETs send it once
            if job.status != "done":  # deleted or expired since the check above
                raise HTTPException(410, f"job {job.id} is {job.status}; its result is gone")
            raise HTTPException(410, f"job {job.id}'s result is being downloaded already")
        # From here the job's files stay until this download ends, even if the job is deleted.
        return _OneTimeFile(
            job.output,
            media_type="video/mp4",
            filename="colorized.mp4",
            on_sent=lambda: state.jobs.downloaded(job),
            on_abort=lambda: state.jobs.release_download(job),
        )

    @app.delete(
        "/v1/jobs/{job_id}",
        tags=["video"],
        response_model=JobStatus,
        responses={401: ERRORS[401], 404: {"model": ErrorBody}, 422: ERRORS[422]},
    )
    async def cancel_job(job_id: str) -> JobStatus:
        """Cancel a job (queued or running) or delete its result now."""
        job = _find_job(state, job_id)
        state.jobs.cancel(job)
        return status_of(job, state.jobs)


def still_image_format(path: Path) -> str | None:
    """The format's name when ``path`` is a still image (an animated GIF or WebP is a film)."""
    try:
        with Image.open(path) as im:
            return None if getattr(im, "is_animated", False) else im.format or "an image"
    except Exception:
        return None


def for_api_clients(message: str) -> str:
    """A message of the video reader, which speaks to command-line users, told to an API
    client: a still image is colorized with POST /v1/colorize, not `colorize image`."""
    return message.replace("`colorize image`", "POST /v1/colorize")


def video_module():
    try:
        import colorizer.video as video
    except ImportError:
        return None
    return video


def prepare_video_job(
    state: ServerState, upload: UploadFile, model: str | None, size: int | None, consistency
) -> Job:
    """Save the upload into a new job folder, check it is a video within the limits."""
    settings = state.settings
    job_id = state.jobs.new_id()
    folder = state.temp.job_dir(job_id)
    source, output = folder / "input", folder / "colorized.mp4"
    try:
        copy_limited(upload.file, source, settings.max_video_bytes, "video")
        if source.stat().st_size == 0:
            raise ApiError(400, "the video upload is empty (0 bytes)")
        still = still_image_format(source)
        if still:
            raise ApiError(
                400,
                f"the video upload is a still image ({still}), not a film; "
                "colorize photos with POST /v1/colorize",
            )
        from colorizer.video.source import probe

        try:
            info = probe(source)
        except ColorizerError as exc:
            message = public_message(exc, source).replace("<upload>", "the video")
            raise ApiError(400, for_api_clients(message)) from None
        except Exception as exc:  # whatever PyAV makes of a file it cannot use
            log.info("probing an uploaded video failed", exc_info=exc)
            raise ApiError(400, "the video upload is not a readable video") from None
        seconds = info.duration_s
        if not math.isfinite(seconds) and info.frame_rate:
            seconds = info.frame_count / float(info.frame_rate)
        if math.isfinite(seconds) and seconds > settings.max_video_seconds:
            raise ApiError(
                413,
                f"the video lasts {seconds:.0f} s, over this server's limit of "
                f"{settings.max_video_seconds:g} s",
            )
        if info.width * info.height > settings.max_pixels:
            raise ApiError(413, f"the video frames ({info.width} x {info.height}) are too large")
        colorizer = state.colorizer(model, size)
    except ApiError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except WeightsError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ApiError(409, weights_message(exc, model or state.pool.default)) from None
    except ColorizerError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ApiError(400, for_api_clients(public_message(exc, source, folder))) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def run(job: Job) -> None:
        from colorizer.video import VideoOptions, colorize_video

        options = VideoOptions() if consistency is None else VideoOptions(consistency=consistency)
        kwargs = _progress_argument(colorize_video, job)
        job.total = info.frame_count or None
        colorize_video(colorizer, job.input, job.output, options, **kwargs)

    return Job(id=job_id, folder=folder, input=source, output=output, run=run)


def _progress_argument(colorize_video, job: Job) -> dict:
    """Pass the job's progress callback under whatever name colorize_video takes it."""
    parameters = inspect.signature(colorize_video).parameters
    for name in ("on_progress", "progress_callback", "callback"):
        if name in parameters:
            return {name: job.progress}
    return {}


def _find_job(state: ServerState, job_id: str) -> Job:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (unknown, or expired long ago)")
    return job


def eta_seconds(job: Job, fraction: float | None) -> float | None:
    """Seconds left for a running job at its pace so far (once 2% is done, to be meaningful)."""
    if job.status != "running" or not fraction or fraction < 0.02 or job.started_at is None:
        return None
    return round((time.time() - job.started_at) * (1 - fraction) / fraction, 1)


def status_of(job: Job, jobs: JobQueue) -> JobStatus:
    ttl_s = jobs.result_ttl_s
    fraction = None
    if job.status in ("done", "downloaded"):
        fraction = 1.0
    elif job.total:
        fraction = min(1.0, job.done / job.total)
    expires = None
    if job.status == "done" and job.finished_at is not None:
        expires = job.finished_at + ttl_s
    return JobStatus(
        id=job.id,
        status=job.status,
        done=job.done,
        total=job.total,
        fraction=fraction,
        position=jobs.position(job),
        eta_s=eta_seconds(job, fraction),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=expires,
        result_url=f"/v1/jobs/{job.id}/result" if job.status == "done" else None,
    )


class _OneTimeFile(FileResponse):
    """A file response that reports whether it went out in full."""

    def __init__(self, path: Path, *, on_sent, on_abort, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self._on_sent, self._on_abort = on_sent, on_abort

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except BaseException:
            self._on_abort()
            raise
        self._on_sent()
