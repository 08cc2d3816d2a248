"""Provenance of outputs (issue 24): XMP in every output, C2PA when signing, inspect, sidecar."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from colorizer.cli import main
from colorizer.errors import ColorizerError
from colorizer.pipeline import Colorizer
from colorizer.provenance import Provenance, Signing, mp4, xmp
from colorizer.provenance.identity import throwaway_identity
from colorizer.provenance.inspect import ERROR, NO_PROVENANCE, TAMPERED, VERIFIED, inspect
from colorizer.provenance.making import read_xmp

FOREIGN_XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
    b'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    b'photoshop:Credit="County Archive"><Iptc4xmpExt:DigitalSourceType>'
    b"http://cv.iptc.org/newscodes/digitalsourcetype/negativeFilm</Iptc4xmpExt:DigitalSourceType>"
    b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


@pytest.fixture(scope="module")
def colorizer(constant_weights):
    return Colorizer("test-constant", weights=constant_weights, size=32, device="cpu")


@pytest.fixture
def grey(tmp_path) -> Path:
    ramp = np.linspace(20, 230, 48 * 64).reshape(48, 64).astype(np.uint8)
    path = tmp_path / "grey.jpg"
    Image.fromarray(ramp).save(path, xmp=FOREIGN_XMP)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- XMP ---------------------------------------------------------------------------------------


def test_xmp_extends_an_inputs_packet_and_replaces_its_source_type():
    packet = xmp.build(xmp.Record("1.0", "m", "aa", "bb"), FOREIGN_XMP)
    assert b"County Archive" in packet and b"negativeFilm" not in packet
    assert b"photoshop:Credit" in packet  # the input's own prefix, not ns0
    record = xmp.parse(packet)
    assert record["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE
    assert record["model"] == "m" and record["weights_sha256"] == "aa"
    assert record["source_sha256"] == "bb"
    again = xmp.build(xmp.Record("1.1", "n"), packet)  # a colorized photo colorized again
    assert xmp.parse(again)["model"] == "n" and "source_sha256" not in xmp.parse(again)
    assert xmp.parse(b"not xml") == {}


@pytest.mark.parametrize(
    ("name", "wide"),
    [(name, False) for name in ("o.png", "o.jpg", "o.tif", "o.webp")]
    + [(name, True) for name in ("o.png", "o.tif")],  # 16-bit
)
def test_every_photo_output_carries_the_record(colorizer, grey, tmp_path, name, wide):
    source = grey
    if wide:  # 16-bit input -> 16-bit output (OpenCV PNG, tifffile TIFF)
        source = tmp_path / "grey16.png"
        cv2.imwrite(str(source), (np.asarray(Image.open(grey)).astype(np.uint16) * 257))
    out = colorizer.colorize_file(source, tmp_path / "out" / name)
    record = xmp.parse(read_xmp(out) or b"")
    assert record["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE
    assert record["model"] == "test-constant" and record["version"]
    assert record["weights_sha256"] == sha256(Path(colorizer.weights))
    assert record["source_sha256"] == sha256(source)
    if not wide:
        assert "County Archive" in (read_xmp(out) or b"").decode()  # the input's XMP kept
    lossless = out.suffix in (".png", ".tif")
    assert ("pixels_sha256" in record) == lossless
    found = inspect(out)
    assert found.exit_code == VERIFIED and found.pixels == ("match" if lossless else "not recorded")
    if wide:
        assert decoded_dtype(out) == np.uint16


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_pixel_hash_is_of_the_samples_not_their_layout(dtype):
    """A crop's strided view, a Fortran-ordered copy and big-endian samples hash like the
    contiguous little-endian array (hashed in blocks of rows, without copying it whole)."""
    height, width = 600, 400  # 1.4 MB at 8 bits, 2.9 MB at 16: several blocks
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3)).astype(dtype)
    expected = hashlib.sha256(pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()).hexdigest()
    wider = np.zeros((height, width + 7, 3), dtype)
    wider[:, 5 : width + 5] = pixels
    layouts = [pixels, wider[:, 5 : width + 5], np.asfortranarray(pixels)]
    if dtype == np.uint16:
        layouts.append(pixels.astype(">u2"))
    for layout in layouts:
        assert xmp.pixels_sha256(layout) == expected
    edited = pixels.copy()
    edited[-1, -1, -1] ^= 1
    assert xmp.pixels_sha256(edited) != expected


def decoded_dtype(path: Path):
    from colorizer.provenance.inspect import decoded_pixels

    pixels = decoded_pixels(path)
    assert pixels is not None
    return pixels.dtype


def test_a_pixel_edit_is_detected_without_a_signature(colorizer, grey, tmp_path):
    out = colorizer.colorize_file(grey, tmp_path / "o.png")
    im = Image.open(out)
    edited = np.array(im)
    edited[3, 4] ^= 1
    Image.fromarray(edited).save(out, pnginfo=png_xmp(im.info["xmp"]))  # XMP kept, pixel not
    assert inspect(out).exit_code == TAMPERED
    assert main(["inspect", str(out)]) == TAMPERED


def png_xmp(packet) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet if isinstance(packet, str) else packet.decode())
    return info


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_which_pillow_resaves_keep_the_xmp(colorizer, grey, tmp_path, suffix):
    """docs/provenance.md: a plain save keeps it in TIFF only; JPEG and WebP keep it when given
    ``xmp=im.info["xmp"]``, PNG with the iTXt chunk in ``pnginfo``."""
    out = colorizer.colorize_file(grey, tmp_path / f"o{suffix}")
    im = Image.open(out)
    im.load()
    plain, kept = tmp_path / f"plain{suffix}", tmp_path / f"kept{suffix}"
    im.save(plain)
    keep = {".png": {"pnginfo": png_xmp(im.info["xmp"])}, ".tif": {}}
    im.save(kept, **keep.get(suffix, {"xmp": im.info["xmp"]}))
    assert ("digital_source_type" in xmp.parse(read_xmp(plain) or b"")) == (suffix == ".tif")
    assert xmp.parse(read_xmp(kept) or b"")["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE
    expected = "match" if suffix in (".png", ".tif") else "not recorded"
    assert inspect(kept).pixels == expected  # a lossless re-save keeps the pixels too


def test_inspect_exit_codes_for_plain_and_missing_files(grey, tmp_path, capsys):
    plain = tmp_path / "plain.png"
    Image.open(grey).save(plain)
    assert main(["inspect", str(plain)]) == NO_PROVENANCE
    assert main(["inspect", str(tmp_path / "missing.png")]) == ERROR
    assert "no such file" in capsys.readouterr().err


def test_record_sidecar_and_inspect_json(grey, tmp_path, constant_weights, capsys):
    out = tmp_path / "out.png"
    args = ["image", str(grey), "-o", str(out), "--model", "test-constant"]
    args += ["--weights", str(constant_weights), "--size", "32", "--device", "cpu", "--record"]
    assert main(args) == 0
    sidecar = json.loads((tmp_path / "out.png.json").read_text())
    assert sidecar["model"] == "test-constant" and sidecar["size"] == 32
    assert sidecar["weights_sha256"] == sha256(constant_weights)
    assert sidecar["source_sha256"] == sha256(grey) and sidecar["backend"] == "torch"
    assert sidecar["version"] and sidecar["guidance"] is None
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == VERIFIED
    assert json.loads(capsys.readouterr().out)["xmp"]["model"] == "test-constant"


# --- C2PA --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> tuple[Signing, Path]:
    pytest.importorskip("c2pa")
    return throwaway_identity(tmp_path_factory.mktemp("identity"))


@pytest.fixture(scope="module")
def signing_colorizer(constant_weights, identity):
    signing, _ = identity
    return Colorizer(
        "test-constant",
        weights=constant_weights,
        size=32,
        device="cpu",
        provenance=Provenance(signing),
    )


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_signed_outputs_validate_with_the_sdk(signing_colorizer, identity, grey, tmp_path, suffix):
    import c2pa

    out = signing_colorizer.colorize_file(grey, tmp_path / f"o{suffix}")
    _, root = identity
    settings = {"trust": {"trust_anchors": root.read_text()}}
    with c2pa.Reader(str(out), context=c2pa.Context.from_dict(settings)) as reader:
        assert reader.get_validation_state() == "Trusted"
        manifest = reader.get_active_manifest()
    actions = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    edited = actions["data"]["actions"][-1]
    assert edited["digitalSourceType"] == xmp.DIGITAL_SOURCE_TYPE
    assert manifest["ingredients"][0]["relationship"] == "parentOf"
    making = next(a for a in manifest["assertions"] if a["label"] == "org.colorizer.making")
    assert making["data"]["source_sha256"] == sha256(grey)
    assert making["data"]["model"] == "test-constant"
    found = inspect(out, root)
    assert found.exit_code == VERIFIED and found.credentials.state == "Trusted"
    assert xmp.parse(read_xmp(out) or b"")["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE


def test_a_changed_byte_of_a_signed_jpeg_is_detected(signing_colorizer, grey, tmp_path):
    out = signing_colorizer.colorize_file(grey, tmp_path / "o.jpg")
    data = bytearray(out.read_bytes())
    data[-20] ^= 0x10  # in the entropy-coded pixels, before the end-of-image marker
    out.write_bytes(bytes(data))
    found = inspect(out)
    assert found.exit_code == TAMPERED
    assert any("dataHash.mismatch" in code for code in found.credentials.failures)


def test_a_pixel_edit_of_a_signed_png_is_detected(signing_colorizer, grey, tmp_path):
    out = signing_colorizer.colorize_file(grey, tmp_path / "o.png")
    out.write_bytes(with_pixel_changed(out.read_bytes()))
    found = inspect(out)
    assert found.pixels == "differ" and found.credentials is not None
    assert not found.credentials.valid and found.exit_code == TAMPERED


def with_pixel_changed(png: bytes) -> bytes:
    """The PNG with one pixel changed and every other chunk (the manifest's caBX) kept."""
    rgb = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
    rgb[0, 0] ^= 1
    encoded = io.BytesIO()
    Image.fromarray(rgb).save(encoded, "PNG")
    new_idat = [c for c in chunks(encoded.getvalue()) if c[4:8] == b"IDAT"]
    out, replaced = [png[:8]], False
    for chunk in chunks(png):
        if chunk[4:8] != b"IDAT":
            out.append(chunk)
        elif not replaced:
            out += new_idat
            replaced = True
    return b"".join(out)


def chunks(png: bytes) -> list[bytes]:
    found, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        chunk = png[at : at + 12 + length]
        assert zlib.crc32(chunk[4:-4]) == int.from_bytes(chunk[-4:], "big")
        found.append(chunk)
        at += 12 + length
    return found


def test_a_signed_film_carries_xmp_and_a_valid_manifest(signing_colorizer, identity, tmp_path):
    from colorizer.video.colorize import VideoOptions, colorize_video
    from tests.video.clips import write_clip

    clip = write_clip(tmp_path / "clip.mp4", audio=False)
    out = tmp_path / "film.mp4"
    colorize_video(signing_colorizer, clip, out, VideoOptions(consistency=0))
    record = xmp.parse(mp4.read_xmp(out) or b"")
    assert record["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE
    assert record["source_sha256"] == sha256(clip)
    _, root = identity
    found = inspect(out, root)
    assert found.exit_code == VERIFIED and found.credentials.state == "Trusted"
    data = bytearray(out.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 200] ^= 0x01  # a byte of the coded frames
    out.write_bytes(bytes(data))
    assert inspect(out, root).exit_code == TAMPERED


def test_an_unsigned_film_carries_xmp(colorizer, tmp_path):
    from colorizer.video.colorize import VideoOptions, colorize_video
    from tests.video.clips import write_clip

    clip = write_clip(tmp_path / "clip.mp4", audio=False)
    out = tmp_path / "film.mp4"
    colorize_video(colorizer, clip, out, VideoOptions(consistency=0))
    assert inspect(out).exit_code == VERIFIED
    assert xmp.parse(mp4.read_xmp(out) or b"")["model"] == "test-constant"


def test_cli_signs_with_flags_or_environment(
    grey, tmp_path, constant_weights, identity, monkeypatch
):
    signing, root = identity
    common = ["--model", "test-constant", "--weights", str(constant_weights), "--size", "32"]
    flags = ["--sign-key", str(signing.key), "--sign-cert", str(signing.cert)]
    assert main(["image", str(grey), "-o", str(tmp_path / "a.jpg"), *common, *flags]) == 0
    monkeypatch.setenv("COLORIZER_SIGN_KEY", str(signing.key))
    monkeypatch.setenv("COLORIZER_SIGN_CERT", str(signing.cert))
    assert main(["image", str(grey), "-o", str(tmp_path / "b.jpg"), *common]) == 0
    for name in ("a.jpg", "b.jpg"):
        assert main(["inspect", str(tmp_path / name), "--trust", str(root)]) == VERIFIED


def test_a_throwaway_identity_without_cryptography_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography now fails
    with pytest.raises(ColorizerError, match="pip install cryptography") as raised:
        throwaway_identity(tmp_path)
    assert "\n" not in str(raised.value)
    assert not list(tmp_path.iterdir())


def test_a_key_without_the_sdk_says_how_to_install_it(tmp_path, monkeypatch):
    from colorizer.provenance import signing_from

    key, cert = tmp_path / "key.pem", tmp_path / "chain.pem"
    key.write_text("key"), cert.write_text("cert")
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa now raises ImportError
    with pytest.raises(ColorizerError, match=r"pip install .*c2pa") as raised:
        signing_from(key, cert)
    assert "\n" not in str(raised.value)
    with pytest.raises(ColorizerError, match="no certificate"):
        signing_from(key, None)
