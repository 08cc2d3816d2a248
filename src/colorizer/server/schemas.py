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
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from colorizer.server.errors import ApiError

OPTION_KEYS = ("model", "size", "hints", "saturation", "reference")
# Valid point hints nest at most 3 levels ({"points": [{"ab": [a, b]}]}); the options object
# around them adds one. Deeper JSON is refused before anything walks it.
MAX_JSON_DEPTH = 8


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
    position: int | None = Field(
        default=None, description="queued: how many jobs wait ahead of this one (0: next)"
    )
    eta_s: float | None = Field(
        default=None, description="running: seconds left, from the pace so far"
    )
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None = Field(description="when a finished result is deleted")
    result_url: str | None = Field(description="download link once done (one download)")


class Example(BaseModel):
    name: str
    url: str = Field(description="the photo itself")


class ExampleList(BaseModel):
    examples: list[Example] = Field(description="photos to try (the server's --examples)")


class Suggestion(BaseModel):
    hex: str
    ab: list[float]
    probability: float


class Suggestions(BaseModel):
    x: float
    y: float
    suggestions: list[Suggestion]


class XmpRecord(BaseModel):
    """The colorizer record in a file's XMP (each field absent where the file does not say)."""

    digital_source_type: str | None = Field(
        default=None, description="IPTC Digital Source Type (a NewsCodes URI)"
    )
    ai_system: str | None = Field(default=None, description="IPTC AISystemUsed")
    ai_system_version: str | None = Field(default=None, description="IPTC AISystemVersionUsed")
    creator_tool: str | None = Field(default=None, description="xmp:CreatorTool")
    tool: str | None = None
    version: str | None = None
    model: str | None = None
    weights_sha256: str | None = Field(default=None, description="SHA-256 of the model's weights")
    source_sha256: str | None = Field(default=None, description="SHA-256 of the source file")
    pixels_sha256: str | None = Field(
        default=None, description="PNG and TIFF: SHA-256 of the pixels as written"
    )


class C2paState(BaseModel):
    state: str = Field(description="the C2PA SDK's validation state: Trusted, Valid or Invalid")
    failures: list[str] = Field(description="validation failure codes of the active manifest")
    untrusted: bool = Field(description="the signer is not in this server's trust list")
    signer: str | None = Field(description="the signing certificate's common name and issuer")
    manifest: dict[str, Any] = Field(description="the active manifest, as the SDK reads it")


class Inspection(BaseModel):
    """What a file says about its making: ``colorize inspect --json`` for an upload."""

    file: str | None = Field(description="the uploaded file's own name, if it had one")
    kind: Literal["image", "film"]
    xmp: XmpRecord
    pixels: Literal["match", "differ", "not recorded", "unreadable"] = Field(
        description="whether the pixels match the SHA-256 recorded in the XMP (PNG and TIFF)"
    )
    c2pa: C2paState | None = Field(description="the C2PA manifest, or null when there is none")
    c2pa_note: str | None = Field(description="why the manifest could not be looked at")
    exit_code: int = Field(
        description="`colorize inspect`'s exit code: 0 intact, 1 no provenance, 3 tampered"
    )
    verdict: Literal["intact", "no provenance", "tampered"]
    meaning: str = Field(description="the verdict in words")


class Health(BaseModel):
    status: str
    version: str
    models_loaded: list[str]
    images_pending: int
    jobs_queued: int
    jobs_running: int


# FastAPI's ``responses`` type, so that routes can unpack it among their own entries.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the upload or an option cannot be used"},
    401: {"model": ErrorBody, "description": "an API key is required and was wrong or missing"},
    413: {"model": ErrorBody, "description": "over an upload, pixel or duration limit"},
    422: {"model": ErrorBody, "description": "a field is missing or of the wrong type"},
    404: {"model": ErrorBody, "description": "no such job, example or resource"},
    429: {"model": ErrorBody, "description": "the server's queue is full; retry later"},
}

WEIGHTS_MISSING: dict[str, Any] = {
    "model": ErrorBody,
    "description": "the model's weights are not installed on this server (retrying will not help)",
}


@dataclass
class ImageOptions:
    """A photo request's options, merged and checked (``size``'s range is the server's)."""

    model: str | None = None
    size: int | None = None
    hints: list | None = None  # point hint entries, parsed JSON for guidance.parse_hints
    saturation: float | None = None
    reference: bytes | None = None  # from a data: URL in the options object


def read_options(options: str | None, *, max_hints: int, **fields: Any) -> ImageOptions:
    """Merge the ``options`` JSON object with the form fields (which win) and check each value.

    Wrong types answer 422 naming the field; bad JSON, unknown keys and values out of range 400.
    """
    merged: dict[str, Any] = {}
    if options:
        parsed = load_json(options, "options")
        if not isinstance(parsed, dict):
            raise ApiError(400, "options must be a JSON object")
        unknown = set(parsed) - set(OPTION_KEYS)
        if unknown:
            raise ApiError(400, f"options: unknown keys {sorted(unknown)}")
        merged.update(parsed)
    merged.update({k: v for k, v in fields.items() if v is not None})
    model = merged.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise _wrong_type("model", "a model name (a non-empty string)", model)
    size = merged.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise _wrong_type("size", "a whole number", size)
    saturation = merged.get("saturation")
    if saturation is not None:
        if isinstance(saturation, bool) or not isinstance(saturation, int | float):
            raise _wrong_type("saturation", "a number from 0 to 1", saturation)
        if not (math.isfinite(saturation) and 0 <= saturation <= 1):
            raise ApiError(400, f"saturation must be a number from 0 to 1, got {saturation!r}")
    reference = merged.get("reference")
    return ImageOptions(
        model=model,
        size=size,
        hints=_hint_entries(merged.get("hints"), max_hints),
        saturation=None if saturation is None else float(saturation),
        reference=None if reference is None else _data_url(reference),
    )


def load_json(text: str, what: str) -> Any:
    """Parsed JSON, refusing bad syntax and nesting deeper than ``MAX_JSON_DEPTH``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        value = None
        deep = True
    else:
        deep = _depth(value) > MAX_JSON_DEPTH
    if deep:
        raise ApiError(400, f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:  # deeper than that is refused anyway
                stack.extend((child, level + 1) for child in children)
    return deepest


def _hint_entries(hints: Any, limit: int) -> list | None:
    """The point hints as a list of entries (from JSON text, a list or ``{"points": [...]}``)."""
    if hints is None:
        return None
    if isinstance(hints, str):
        if not hints.strip():
            return None
        hints = load_json(hints, "hints")
    elif _depth(hints) > MAX_JSON_DEPTH:
        raise ApiError(400, f"hints is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    if isinstance(hints, dict) and isinstance(hints.get("points"), list):
        hints = hints["points"]
    if not isinstance(hints, list):
        raise _wrong_type("hints", 'a list of points [{"x": ..., "y": ..., "color": ...}]', hints)
    if len(hints) > limit:
        raise ApiError(400, f"too many hints: {len(hints):,}; this server takes at most {limit:,}")
    return hints


def _wrong_type(field: str, expected: str, value: Any) -> ApiError:
    return ApiError(422, f"{field} must be {expected}, got {_describe(value)}")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
