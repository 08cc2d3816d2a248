"""C2PA Content Credentials with the C2PA SDK's Python bindings (``c2pa-python``, the
``provenance`` extra): signing an output, reading a file's manifest and its validation state.

The manifest says what the XMP says, signed: a ``c2pa.opened`` action on the grey original (the
parent ingredient) and a ``c2pa.edited`` action with the IPTC digital source type, the model
and its settings; the whole ``Making`` goes in an ``org.colorizer.making`` assertion. Thumbnails
are off: they would add ~150 ms and ~300 KB to a 12 MP photo and show nothing the file lacks.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from colorizer.errors import ColorizerError
from colorizer.provenance import Signing, xmp

ASSERTION = "org.colorizer.making"
UNTRUSTED = "signingCredential.untrusted"  # the signer chains to no root of the trust list
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}
# Formats the SDK takes an ingredient from; others (BMP, GIF ...) are described, not read.
_INGREDIENT_FORMATS = {"image/jpeg", "image/png", "image/tiff", "image/webp", "video/mp4"}


def mime_type(path: Path) -> str:
    suffix = path.suffix.lower()
    known = {".m4v": "video/mp4", ".mov": "video/quicktime", ".webp": "image/webp"}
    return known.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


def sign(
    signing: Signing, making: dict[str, Any], encoded: BinaryIO, out: BinaryIO, path: Path
) -> None:
    """Copy the encoded file ``encoded`` (to be ``path``) into ``out`` with a signed manifest
    that records ``making`` (``Making.facts()``: model, weights, source, settings)."""
    import c2pa

    ingredient, readable = _ingredient(making)
    definition = manifest(making, path)
    if readable is None:
        definition["ingredients"] = [ingredient]
    builder = c2pa.Builder(definition, context=c2pa.Context.from_dict(_SETTINGS))
    try:
        if readable is not None:
            with open(readable, "rb") as f:
                builder.add_ingredient(ingredient, ingredient["format"], f)
        with c2pa.Signer.from_info(_signer_info(signing)) as signer:
            builder.sign(signer, mime_type(path), encoded, out)
    except c2pa.C2paError as exc:
        raise ColorizerError(f"{path}: C2PA signing failed ({_first_line(exc)})") from exc


def manifest(making: dict[str, Any], path: Path) -> dict[str, Any]:
    edited = {
        "action": "c2pa.edited",
        "digitalSourceType": xmp.DIGITAL_SOURCE_TYPE,
        "softwareAgent": {"name": "colorizer", "version": making["version"]},
        "description": f"colour added by the trained model {making['model']}",
        "parameters": {"model": making["model"], "weights_sha256": making["weights_sha256"]},
    }
    return {
        "claim_generator_info": [{"name": "colorizer", "version": making["version"]}],
        "title": path.name,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}},
                        edited,
                    ]
                },
            },
            {"label": ASSERTION, "data": making},
        ],
    }


def _ingredient(making: dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """The grey original as the parent ingredient, and its file where the SDK can read it (so a
    signed original's own credentials chain on); other sources (BMP, GIF, none) are described
    by name and format only, their hash being in our assertion."""
    source = Path(making["source"]) if making.get("source") else None
    fmt = mime_type(source) if source else "application/octet-stream"
    title = source.name if source else "input image"
    ingredient = {"title": title, "format": fmt, "relationship": "parentOf", "label": "source"}
    readable = source is not None and fmt in _INGREDIENT_FORMATS and source.is_file()
    return ingredient, source if readable else None


def _signer_info(signing: Signing):
    import c2pa

    try:
        key, cert = Path(signing.key).read_bytes(), Path(signing.cert).read_bytes()
    except OSError as exc:
        raise ColorizerError(f"cannot read the signing identity: {exc}") from exc
    return c2pa.C2paSignerInfo(_algorithm(key), cert, key, None)


def _algorithm(key_pem: bytes):
    """The signing algorithm the key is for: ES256/384/512, Ed25519, or PS256 for RSA."""
    import c2pa
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ColorizerError(f"the signing key is not an unencrypted PEM key ({exc})") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {256: "ES256", 384: "ES384", 521: "ES512"}
        if key.curve.key_size in by_curve:
            return c2pa.C2paSigningAlg[by_curve[key.curve.key_size]]
    raise ColorizerError(f"unsupported signing key type {type(key).__name__}")


@dataclass
class Credentials:
    """What a file's C2PA manifest store says: ``state`` is the SDK's validation state
    (``Trusted``, ``Valid`` or ``Invalid``), ``failures`` its failure codes."""

    state: str
    manifest: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    untrusted: bool = False

    @property
    def valid(self) -> bool:
        """The signature and the hashes hold. A signer outside the trust list (no ``--trust``,
        or a throwaway identity) is reported as a failure code by the SDK, but it says nothing
        about a change of the file: the state is then ``Valid``, not ``Trusted``."""
        broken = [code for code in self.failures if code != UNTRUSTED]
        return self.state in ("Valid", "Trusted") and not broken

    def signer(self) -> str:
        info = self.manifest.get("signature_info") or {}
        return ", ".join(str(info[k]) for k in ("common_name", "issuer") if info.get(k))

    def making(self) -> dict[str, Any]:
        for assertion in self.manifest.get("assertions", []):
            if assertion.get("label") == ASSERTION:
                return assertion.get("data") or {}
        return {}


def read(path: Path, trust: Path | None = None) -> Credentials | None:
    """The manifest of ``path`` validated (against ``trust``, PEM root certificates, when
    given), or None when it has none. Raises ``ImportError`` without the SDK."""
    import c2pa

    settings: dict[str, Any] = {}
    if trust is not None:
        settings["trust"] = {"trust_anchors": Path(trust).read_text()}
    try:
        reader = c2pa.Reader(str(path), context=c2pa.Context.from_dict(settings))
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc):
            return None
        if "NotSupported" in type(exc).__name__:
            return None
        raise ColorizerError(f"{path}: cannot read its C2PA manifest ({_first_line(exc)})") from exc
    with reader:
        store = json.loads(reader.json())
        results = reader.get_validation_results() or {}
        state = reader.get_validation_state() or "Invalid"
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    failures = [f["code"] for f in results.get("activeManifest", {}).get("failure", [])]
    codes = [s.get("code") for s in store.get("validation_status", [])]
    return Credentials(state, active, failures, UNTRUSTED in codes or UNTRUSTED in failures)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
