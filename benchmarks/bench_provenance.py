"""What provenance adds to writing one 12 MP photo (issue 24): the XMP record, and signing.

Run:  python -m benchmarks provenance [--repeat 5] [--side 4000x3000]

The parts are timed alone (best of ``--repeat``, after a warm-up), since a whole write's noise
on a shared machine is larger than the XMP's cost:

  source hash   SHA-256 of the grey source file (a 12 MP JPEG) and reading its XMP
  xmp build     the packet, extending the source's
  pixel hash    SHA-256 of the 8-bit RGB samples (PNG and TIFF outputs only), of the contiguous
                array a write hands over and of a strided view of a larger one (a crop)
  sign JPEG/PNG the C2PA step on the encoded file (throwaway ES256 chain, no thumbnails)

and, for scale, the write of the same photo without any of it, interleaved with the write with
XMP (the difference is what the XMP costs there).
"""

from __future__ import annotations

import argparse
import io
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.harness import Results, benchmark, best_time, best_times, option
from colorizer import imageio
from colorizer.errors import ColorizerError
from colorizer.provenance import Provenance, Signing, file_sha256, xmp
from colorizer.provenance.making import Making, read_xmp


@benchmark(
    "provenance",
    option("--repeat", type=int, default=5),
    option("--side", default="4000x3000", help="WIDTHxHEIGHT of the photo"),
)
def provenance(args: argparse.Namespace, results: Results) -> None:
    width, height = map(int, args.side.split("x"))
    rgb = photo(width, height)
    # The same pixels as a view into a wider array: rows contiguous, the array not.
    wider = np.zeros((height, width + 16, 3), np.uint8)
    wider[:, :width] = rgb
    cropped = wider[:, :width]
    assert xmp.pixels_sha256(cropped) == xmp.pixels_sha256(rgb)
    rows: dict[str, float] = {}  # step -> seconds
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "grey.jpg"
        Image.fromarray(rgb[..., 0]).save(source, quality=92)
        making = fake_making(source, None)
        rows["source hash + XMP read"] = best_time(lambda: fake_making(source, None), args.repeat)
        rows["xmp build"] = best_time(making.xmp_packet, args.repeat)
        rows["pixel hash (8-bit RGB)"] = best_time(lambda: xmp.pixels_sha256(rgb), args.repeat)
        rows["pixel hash (8-bit RGB, cropped view)"] = best_time(
            lambda: xmp.pixels_sha256(cropped), args.repeat
        )
        base_meta = imageio.Metadata()
        with_xmp = imageio.Metadata(xmp=making.xmp_packet())
        for suffix in (".jpg", ".png", ".tif"):
            times = best_times(
                {
                    "plain": partial(write, work, suffix, rgb, base_meta),
                    "marked": partial(write, work, suffix, rgb, with_xmp),
                },
                args.repeat,
            )
            rows[f"write {suffix} (no provenance)"] = times["plain"]
            rows[f"write {suffix} with XMP: difference"] = times["marked"] - times["plain"]
        signing = throwaway_signing(work)
        if signing is not None:
            from colorizer.provenance import credentials

            facts = fake_making(source, signing).facts()
            for suffix in (".jpg", ".png"):
                write(work, suffix, rgb, base_meta)
                data = (work / f"out{suffix}").read_bytes()

                def sign(d: bytes = data, s: str = suffix) -> None:
                    credentials.sign(signing, facts, io.BytesIO(d), io.BytesIO(), work / f"o{s}")

                rows[f"sign {suffix} ({len(data) / 1e6:.1f} MB)"] = best_time(sign, args.repeat)
    print(f"{width} x {height} ({width * height / 1e6:.0f} MP), best of {args.repeat}:")
    for step, seconds in rows.items():
        print(f"  {step:38s} {seconds * 1000:8.2f} ms")
        results.add({"step": step}, ms=round(seconds * 1000, 3))


def photo(width: int, height: int) -> np.ndarray:
    """A smooth photo-like 8-bit RGB image (noise would make PNG/JPEG encoding unrealistically
    slow), contiguous as a write hands it to the pixel hash."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 16, width // 16), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC))
    return np.dstack([grey, np.roll(grey, 7, axis=1), grey[::-1]]).copy()


def write(work: Path, suffix: str, rgb: np.ndarray, metadata: imageio.Metadata) -> None:
    imageio.write_image(work / f"out{suffix}", rgb, metadata=metadata)


def fake_making(source: Path, signing: Signing | None) -> Making:
    """The making of a colorizer run, without loading a model (no weights file is hashed)."""
    return Making(
        version="bench",
        model="colornet-v2",
        arch="colornet-v2",
        weights="-",
        weights_sha256="0" * 64,
        backend="openvino",
        device="cpu",
        size=256,
        provenance=Provenance(signing),
        source=str(source),
        source_sha256=file_sha256(source),
        source_xmp=read_xmp(source),
    )


def throwaway_signing(work: Path) -> Signing | None:
    """A throwaway identity (``colorizer.provenance.identity``), or None with the reason printed
    when the C2PA SDK or ``cryptography`` is missing."""
    try:
        import c2pa  # noqa: F401

        from colorizer.provenance.identity import throwaway_identity

        return throwaway_identity(work / "identity")[0]
    except (ImportError, ColorizerError) as exc:
        print(f"signing not measured ({exc}): pip install c2pa-python cryptography")
        return None
