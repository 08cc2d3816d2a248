"""The film routes: ``POST /v1/colorize/video`` queues a job; ``/v1/jobs/{id}`` follows it,
``/v1/jobs/{id}/result`` downloads it once, ``DELETE`` cancels it.

The upload is saved into the job's own folder and probed (a readable video, within the
duration and frame-size limits) before the job is queued; the work itself runs on the job
queue's threads (``colorizer.server.jobs``).

Keyframes (``colorizer.video.keyframes``) come as the manifest's JSON text (field ``keyframes``)
whose ``image`` entries name files of the repeatable field ``keyframe_images``, or as those
images alone, named by position (``f000240.png``, ``t12.5.png``); a colour ``reference`` photo
serves every shot without a keyframe. They are saved into the job's folder (removed with the
job) and checked before the job is queued, the images decoded one at a time within the memory
budget: a bad manifest or image answers 400 naming the entry, never a server path.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image

from colorizer.errors import ColorizerError, WeightsError
from colorizer.imageio import IMAGE_SUFFIXES
from colorizer.server.errors import ApiError, weights_message
from colorizer.server.images import BYTES_PER_PIXEL_FLOAT
from colorizer.server.jobs import Job, JobQueue, OverBudget, QueueFull, public_message
from colorizer.server.schemas import ERRORS, WEIGHTS_MISSING, ErrorBody, JobStatus
from colorizer.server.state import ServerState
from colorizer.server.uploads import copy_limited, image_header

log = logging.getLogger(__name__)

MAX_KEYFRAMES = 64  # per job: each image is decoded to check it before the job is queued
_SAFE_NAME = re.compile(r"^[\w][\w .,+()-]{0,127}$")


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
        keyframes: Annotated[
            str | None,
            Form(
                description='the keyframe manifest, JSON: {"keyframes": [{"time": 0.0, '
                '"image": "shot1.png"}, {"frame": 240, "hints": [{"x": 100, "y": 50, '
                '"color": "#8a2be2"}]}]}; each entry one of time (seconds) or frame, and one of '
                "image (the file name of one of keyframe_images) or hints"
            ),
        ] = None,
        keyframe_images: Annotated[
            list[UploadFile] | None,
            File(
                description="colour frames of the film, at its size (repeat the field): named "
                "by the manifest, or without one by position, f000240.png (frame 240) or "
                "t12.5.png (12.5 s)"
            ),
        ] = None,
        reference: Annotated[
            UploadFile | None,
            File(description="a colour photo whose colours serve every shot without a keyframe"),
        ] = None,
    ) -> JSONResponse:
        """Queue a film; follow it at GET /v1/jobs/{id} and download it from its result_url."""
        if video_module() is None:
            raise HTTPException(501, "this installation cannot colorize videos (PyAV missing)")
        state.jobs.check_room()
        guide = KeyframeUploads(keyframes, keyframe_images or [], reference)
        job = await asyncio.to_thread(
            prepare_video_job, state, video, model, size, consistency, guide
        )
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
    state: ServerState,
    upload: UploadFile,
    model: str | None,
    size: int | None,
    consistency,
    guide: KeyframeUploads | None = None,
) -> Job:
    """Save the upload into a new job folder, check it is a video within the limits, and its
    keyframes and reference (``guide``) against it."""
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
        paths = (guide or KeyframeUploads()).save_and_check(state, folder, info)
        if paths.reference is not None:
            _check_encoder(colorizer)
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

        options = VideoOptions(keyframes=paths.keyframes, reference=paths.reference)
        if consistency is not None:
            options = replace(options, consistency=consistency)
        kwargs = _progress_argument(colorize_video, job)
        job.total = info.frame_count or None
        colorize_video(colorizer, job.input, job.output, options, **kwargs)

    return Job(id=job_id, folder=folder, input=source, output=output, run=run)


@dataclass(frozen=True)
class GuidePaths:
    """Where a job's keyframes and reference were saved (None: not given), for VideoOptions."""

    keyframes: str | None = None
    reference: str | None = None


@dataclass
class KeyframeUploads:
    """A video request's keyframe manifest (JSON text), keyframe images and reference photo."""

    manifest: str | None = None
    images: list[UploadFile] = field(default_factory=list)
    reference: UploadFile | None = None

    def save_and_check(self, state: ServerState, folder: Path, info) -> GuidePaths:
        """Save the files into the job's ``folder`` and check them against the film ``info``;
        an ``ApiError`` (400, 413) naming the field and the entry for anything unusable."""
        reference = None
        if self.reference is not None:
            reference = str(_save_reference(state, self.reference, folder))
        return GuidePaths(self._save_keyframes(state, folder, info), reference)

    def _save_keyframes(self, state: ServerState, folder: Path, info) -> str | None:
        from colorizer.video.keyframes import plan_keyframes, read_manifest

        manifest = (self.manifest or "").strip() or None
        if manifest is None and not self.images:
            return None
        named = _named_uploads(self.images)
        keys = folder / "keyframes"
        keys.mkdir()
        spec = keys / "manifest.json" if manifest is not None else keys
        try:
            if manifest is not None:
                entries = read_manifest(manifest, keys, "keyframes")
                _check_manifest_images([e.name for e in entries if e.image], named)
                spec.write_text(manifest, encoding="utf-8")
            for name, upload in named.items():
                limit = state.settings.max_upload_bytes
                copy_limited(upload.file, keys / name, limit, f"keyframe image '{name}'")
            planned = plan_keyframes(spec, info)
            _check_counts(planned, state.settings.max_hints)
            for item in planned:
                _check_keyframe(state, item, info)
        except ColorizerError as exc:
            raise ApiError(400, _keyframe_message(exc, spec, keys, folder)) from None
        return str(spec)


def _check_encoder(colorizer) -> None:
    """The transfer from a reference photo matches the model's encoder features."""
    from colorizer.pipeline import encoder_refusal

    refusal = encoder_refusal(colorizer.name, colorizer.arch)
    if refusal is not None:
        raise ApiError(400, f"reference: needs a model with a pretrained encoder: {refusal}")


def _named_uploads(images: list[UploadFile]) -> dict[str, UploadFile]:
    """The keyframe images by their file names, which must be plain image file names (the
    manifest names them; without one they say the frame), each once."""
    named: dict[str, UploadFile] = {}
    if len(images) > MAX_KEYFRAMES:
        raise ApiError(400, f"too many keyframe_images: {len(images)}; at most {MAX_KEYFRAMES}")
    for upload in images:
        name = upload.filename or ""
        if not _SAFE_NAME.match(name) or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            shown = repr(name[:64]) if name else "a file without a name"
            raise ApiError(
                400,
                f"keyframe_images: {shown} is not an image file name (letters, digits and "
                f"'.,+()- ' ending in {', '.join(sorted(IMAGE_SUFFIXES))})",
            )
        if name in named:
            raise ApiError(400, f"keyframe_images: two files named {name!r}")
        named[name] = upload
    return named


def _check_manifest_images(wanted: list[str], named: dict[str, UploadFile]) -> None:
    for name in wanted:
        if name not in named:
            raise ApiError(
                400,
                f"keyframes: image {name[:64]!r} is not among the uploaded keyframe_images "
                f"({', '.join(sorted(named)) or 'none were sent'})",
            )
    unused = sorted(set(named) - set(wanted))
    if unused:
        raise ApiError(400, f"keyframe_images {unused} are not named by the keyframes manifest")


def _check_counts(planned: list, max_hints: int) -> None:
    if len(planned) > MAX_KEYFRAMES:
        raise ApiError(400, f"too many keyframes: {len(planned)}; at most {MAX_KEYFRAMES}")
    for item in planned:
        hints = item.entry.hints or ()
        if len(hints) > max_hints:
            raise ApiError(
                400, f"{item.entry.where}: too many hints: {len(hints)}; at most {max_hints}"
            )


def _check_keyframe(state: ServerState, item, info) -> None:
    """Decode one keyframe image (within the memory budget) to check it, then let it go."""
    path = item.entry.image
    if path is None:
        return
    _within_budget(state, path, "a keyframe image", lambda: item.load(info))


def _save_reference(state: ServerState, upload: UploadFile, folder: Path) -> Path:
    from colorizer.video.keyframes import read_reference

    suffix = Path(upload.filename or "").suffix.lower()
    path = folder / f"reference{suffix if suffix in IMAGE_SUFFIXES else ''}"
    copy_limited(upload.file, path, state.settings.max_upload_bytes, "reference")
    if path.stat().st_size == 0:
        raise ApiError(400, "the reference upload is empty (0 bytes)")
    try:
        _within_budget(state, path, "the reference photo", lambda: read_reference(path))
    except ColorizerError as exc:
        message = str(exc).replace(f"{path}: ", "").replace(str(path), "the reference")
        error = ColorizerError(f"reference: {message}")
        raise ApiError(400, public_message(error, folder)) from None
    return path


def _within_budget(state: ServerState, path: Path, what: str, read) -> None:
    """Run ``read`` (a decode of the image at ``path``) with its memory reserved; 413 for an
    image over the pixel limit or, alone, over the budget."""
    header = image_header(path)
    pixels = header[0] if header else 0
    if pixels > state.settings.max_pixels:
        raise ApiError(413, f"{what} is too large ({pixels:,} pixels)")
    try:
        with state.memory.reserve(pixels * BYTES_PER_PIXEL_FLOAT, threading.Event()):
            read()
    except OverBudget as exc:
        raise ApiError(413, exc.explain(what)) from None


def _keyframe_message(exc: Exception, spec: Path, keys: Path, folder: Path) -> str:
    """A keyframe error for the client: the manifest called ``keyframes``, an image by the
    name it was uploaded under, no server path."""
    message = str(exc)
    if spec != keys:
        message = message.replace(str(spec), "keyframes")
    message = message.replace(f"{keys}/", "keyframe_images ")
    return public_message(ColorizerError(message), keys, folder)


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
