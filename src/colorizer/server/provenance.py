"""The provenance route: ``POST /v1/inspect`` says what an uploaded photo or film says about its
making, as ``colorize inspect --json`` does for a file (``colorizer.provenance.inspect``).

The upload's kind is told by its first bytes, not by its name, and it is saved under a random
name with the suffix of that kind (the checks go by suffix). A photo is held to the photo
upload limit and the pixel limit (its pixels are decoded to check their SHA-256, PNG and TIFF),
a film to the video upload limit. The work runs on the image pool, within the per-request time
limit and the memory budget, as a photo's colorizing does (``colorizer.server.images``).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import FastAPI, File, UploadFile

from colorizer import imageio
from colorizer.errors import ColorizerError
from colorizer.server.errors import ApiError
from colorizer.server.images import run_image
from colorizer.server.jobs import Cancelled, OverBudget, QueueFull, public_message, scrub_paths
from colorizer.server.schemas import ERRORS, ErrorBody, Inspection
from colorizer.server.state import ServerState
from colorizer.server.uploads import Uploads, copy_limited

log = logging.getLogger(__name__)

# Working memory of the pixel check per decoded pixel: the decoded samples (at most RGBA at 16
# bits, 8 bytes) and their copy in RGB(A) order. The file itself counts twice beside it: its
# bytes read for decoding, and the C2PA reader's view of it.
BYTES_PER_PIXEL_CHECK = 16
_PIXEL_CHECKED = {".png", ".tif"}
_SNIFF_BYTES = 16
KINDS = "a photo (PNG, JPEG, TIFF, WebP, GIF, BMP) or a film (MP4, MOV, MKV, WebM, AVI)"


def add_provenance_routes(app: FastAPI, state: ServerState) -> None:
    @app.post(
        "/v1/inspect",
        tags=["provenance"],
        response_model=Inspection,
        responses={
            **ERRORS,
            504: {"model": ErrorBody, "description": "over the per-request time limit"},
        },
    )
    async def inspect_file(
        file: Annotated[
            UploadFile,
            File(description=f"{KINDS}: a result of this server, or any other file"),
        ],
    ) -> Inspection:
        """What a photo or film says about its making: its XMP record (IPTC digital source type,
        tool, model, hashes), its C2PA manifest and validation state, whether its pixels still
        match the recorded SHA-256, and the verdict: ``intact``, ``no provenance`` or
        ``tampered`` (``colorize inspect --json``; the signer is checked against no trust list,
        so a signature that holds reads ``Valid``)."""
        work = InspectWork(state, file)
        answer = await run_image(state, work, work.run, doing="inspecting")
        return Inspection(**answer)


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, suffix) of a file from its first bytes: ("image", ".png"), ("film", ".mp4") ...;
    None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image", ".tif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", ".gif"
    if head[:2] == b"BM" and len(head) >= 14:
        return "image", ".bmp"
    if head[4:8] == b"ftyp":
        return "film", ".mov" if head[8:12] == b"qt  " else ".mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):  # QuickTime without ftyp
        return "film", ".mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska and WebM
        return "film", ".mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "film", ".avi"
    return None


class InspectWork:
    """One inspect request's work, run on a pool thread: save, check the limits, inspect."""

    def __init__(self, state: ServerState, upload: UploadFile) -> None:
        self.state, self.settings = state, state.settings
        self.upload = upload
        self.uploads = Uploads(
            state.temp,
            {"file": upload},
            max_bytes=self.settings.max_upload_bytes,
            max_pixels=self.settings.max_pixels,
        )
        self.cancelled = threading.Event()  # set when the request gives up (504, disconnect)

    def run(self) -> dict[str, Any]:
        from colorizer.provenance.inspect import inspect

        try:
            kind, path = self._save()
            with self.state.memory.reserve(self._memory(kind, path), self.cancelled):
                if self.cancelled.is_set():
                    raise Cancelled
                found = inspect(path)
            answer = found.as_dict()
            answer["file"] = client_name(self.upload) or None
            answer["kind"] = kind
            return answer
        except Exception as exc:
            raise self._public(exc) from None
        finally:
            self.uploads.cleanup()

    def _save(self) -> tuple[str, Path]:
        """The upload copied into the temp area under a random name with its kind's suffix,
        within that kind's size limit."""
        source = self.upload.file
        source.seek(0)
        sniffed = sniff(source.read(_SNIFF_BYTES))
        if sniffed is None:
            source.seek(0, 2)
            if source.tell() == 0:
                raise ApiError(400, "the file upload is empty (0 bytes)")
            raise ApiError(400, f"{self.uploads.called('file')} is not {KINDS}")
        kind, suffix = sniffed
        settings = self.settings
        limit = settings.max_upload_bytes if kind == "image" else settings.max_video_bytes
        path = self.state.temp.upload_path(suffix)
        self.uploads.paths["file"] = path  # named in messages, removed by cleanup
        copy_limited(source, path, limit, "image" if kind == "image" else "video")
        return kind, path

    def _memory(self, kind: str, path: Path) -> int:
        """Bytes the inspection needs: the file twice, and the decoded pixels of a PNG or TIFF
        (their pixel count read from the header: 400 where it cannot be, 413 over the limit)."""
        size = path.stat().st_size
        if kind != "image":
            return 2 * size
        pixels = imageio.pixel_count(path)
        if pixels is None:
            raise ApiError(400, f"cannot read {self.uploads.called('file')}: not a readable image")
        limit = self.settings.max_pixels
        if pixels > limit:
            raise ApiError(
                413,
                f"{self.uploads.called('file')} has {pixels:,} pixels, over this server's limit "
                f"of {limit:,}",
            )
        return 2 * size + (pixels * BYTES_PER_PIXEL_CHECK if path.suffix in _PIXEL_CHECKED else 0)

    def _public(self, exc: Exception) -> Exception:
        if isinstance(exc, ApiError | QueueFull | Cancelled):
            return exc
        if isinstance(exc, OverBudget):
            return ApiError(413, exc.explain("the file", doing=" to inspect"))
        if isinstance(exc, ColorizerError | OSError | ValueError):
            return ApiError(400, scrub_paths(self.uploads.describe(str(exc) or type(exc).__name__)))
        if type(exc).__module__.split(".")[0] == "c2pa":  # the SDK could not read the manifest
            return ApiError(400, f"cannot read the C2PA manifest of {self.uploads.called('file')}")
        log.error("inspecting failed", exc_info=exc)
        return ApiError(500, public_message(exc))


def client_name(upload: UploadFile) -> str:
    """The client's own file name, its last part only, without unusual characters."""
    filename = (upload.filename or "").replace("\\", "/")
    return re.sub(r"[^\w .,+()-]", "", PurePosixPath(filename).name)[:64].strip()
