"""What the API exchanges: the response models, the documented error answers, and the request
options of a photo, validated before any work starts.

A photo's options arrive as form fields, as one JSON object in the field ``options``, or both
(the form fields win). ``read_options`` merges them into one ``ImageOptions`` and refuses
anything of the wrong type, naming the field, so that no value reaches the pipeline unchecked.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from colorizer.server.errors import ApiError

OPTION_KEYS = ("model", "size", "hints", "saturation", "reference")


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, in words")


class ModelInfo(BaseModel):
    name: str
    description: str
    arch: str
    input_size: int | None
    status: str = Field(description="packaged, cached, not downloaded, corrupt or loaded")
    available: bool = Field(description="can be used now without a download")
    loaded: bool
    default: bool


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]
    hints: bool = Field(description="point hints, scribbles and reference photos are available")
    video: bool = Field(description="video jobs are available")


class JobStatus(BaseModel):
    id: str
    status: str = Field(
        description="queued, running, done, failed, cancelled, downloaded or expired"
    )
    done: int = Field(description="frames colorized so far")
    total: int | None = Field(description="frames in all, when known")
    fraction: float | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None = Field(description="when a finished result is deleted")
    result_url: str | None = Field(description="download link once done (one download)")


class Suggestion(BaseModel):
    hex: str
    ab: list[float]
    probability: float


class Suggestions(BaseModel):
    x: float
    y: float
    suggestions: list[Suggestion]


class Health(BaseModel):
    status: str
    version: str
    models_loaded: list[str]
    images_pending: int
    jobs_queued: int
    jobs_running: int


ERRORS = {
    400: {"model": ErrorBody, "description": "the upload or an option cannot be used"},
    401: {"model": ErrorBody, "description": "an API key is required and was wrong or missing"},
    413: {"model": ErrorBody, "description": "over an upload, pixel or duration limit"},
    429: {"model": ErrorBody, "description": "the server's queue is full; retry later"},
}


@dataclass
class ImageOptions:
    """A photo request's options, merged and checked (``size``'s range is the server's)."""

    model: str | None = None
    size: int | None = None
    hints: str | None = None  # the point hints as JSON text, for guidance.parse_hints
    saturation: float | None = None
    reference: bytes | None = None  # from a data: URL in the options object


def read_options(options: str | None, **fields: Any) -> ImageOptions:
    """Form fields win over the same keys in the ``options`` JSON object."""
    merged: dict[str, Any] = {}
    if options:
        try:
            parsed = json.loads(options)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"options is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "options must be a JSON object")
        unknown = set(parsed) - set(OPTION_KEYS)
        if unknown:
            raise ApiError(400, f"options: unknown keys {sorted(unknown)}")
        merged.update(parsed)
    merged.update({k: v for k, v in fields.items() if v is not None})
    if isinstance(merged.get("hints"), list | dict):
        merged["hints"] = json.dumps(merged["hints"])
    if merged.get("size") is not None and not isinstance(merged["size"], int):
        raise ApiError(400, f"size must be a whole number, got {merged['size']!r}")
    reference = merged.pop("reference", None)
    return ImageOptions(
        model=merged.get("model"),
        size=merged.get("size"),
        hints=merged.get("hints"),
        saturation=merged.get("saturation"),
        reference=None if reference is None else _data_url(reference),
    )


def _data_url(value) -> bytes:
    if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
        raise ApiError(400, "options.reference must be a data: URL of an image (base64)")
    header, _, payload = value.partition(",")
    if not header.endswith(";base64"):
        raise ApiError(400, "options.reference must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "options.reference is not valid base64") from None
