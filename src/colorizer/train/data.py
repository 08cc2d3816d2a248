"""Training photos: find, decode once into a compact uint8 cache, and draw augmented batches.

Photos are decoded by ``colorizer.imageio`` (so CMYK, 16-bit, EXIF rotation are handled as at
inference). Toned and grey ones (``looks_colour`` False and a mean chroma of at least
``NEUTRAL_CHROMA`` or under ``GREY_CHROMA``: sepia prints, B&W stored as RGB) are skipped and
counted, unreadable ones skipped and reported. Near-neutral colour photos (fog, overcast,
asphalt and concrete seen from the air: ``looks_colour`` False, a mean chroma in between) are
kept: they are what teaches a model to leave grey surfaces grey. Each kept photo is resized so
that its short side lies between the crop size and 1.25 x the crop size, then held in memory
as uint8 (3600 photos: ~0.6 GB at crop 176). Batches are cut on the training device: random
position, flip, mild scale and rotation, all in one ``grid_sample`` per photo, then sRGB -> Lab
with ``colorizer.color``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from colorizer import color, imageio
from colorizer.errors import ColorizerError
from colorizer.files import atomic_write
from colorizer.planes import resize_plane

log = logging.getLogger(__name__)

# Training photos: every image suffix but GIF, whose 256-colour palette is no colour truth.
SUFFIXES = imageio.PHOTO_SUFFIXES
MARGIN = 1.25  # cached short side / crop: room for random positions, scale and rotation
MAX_ROTATION = 10.0  # degrees
SCALE_RANGE = (0.8, 1.1)  # side of the photo region a crop covers, relative to the crop
WHOLE_SCALE_RANGE = (0.85, 1.0)  # a whole-photo view: the fraction of each side it keeps
_CACHE_VERSION = 3
# Mean chroma (Lab units, on a copy at most 256 px) below which a photo that does not look colour
# is a near-neutral scene worth training on. Measured on the 478 photos of shared/data/train that
# looks_colour rejects: fog, weather, roads and aerial views have medians 2.5-7.3; toned prints in
# BSDS, ECSSD, OpenImages, ImageNet-DET medians 10.5-14.7 with a cast as large as their chroma.
NEUTRAL_CHROMA = 8.0
# ... and above which it is not a B&W photo stored as colour (chroma noise of a grey JPEG).
GREY_CHROMA = 1.0


@dataclass
class PhotoSet:
    """Decoded photos (H x W x 3 uint8 sRGB) and what happened to the files that were not kept."""

    photos: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    grey: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.photos)} colour photos, {len(self.grey)} grey or toned skipped, "
            f"{len(self.corrupt)} unreadable skipped"
        )


class Batch(NamedTuple):
    rgb: torch.Tensor  # N x 3 x H x W sRGB in [0, 1]
    l: torch.Tensor  # noqa: E741 - N x 1 x H x W L* in 0..100
    ab: torch.Tensor  # N x 2 x H x W in Lab units


def make_batch(rgb: torch.Tensor) -> Batch:
    lab = color.rgb_to_lab(rgb)
    return Batch(rgb, lab[:, :1], lab[:, 1:])


# -- finding and splitting files ----------------------------------------------------------------


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ColorizerError(f"{folder}: not a folder of photos")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def _hash_fraction(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / 16**12


def split_files(files: list[Path], root: str | Path, fraction: float):
    """Deterministic (train, val) split by a hash of each path relative to ``root``: a photo stays
    on its side of the split when others are added or removed, and no seed can move it. A small
    set the hash would leave without any validation photo (8 photos at 0.25 may draw none) holds
    out the ``round(fraction * n)`` photos (at least one) of smallest hash instead."""

    def key(path: Path) -> float:
        return _hash_fraction(path.relative_to(root).as_posix())

    val = [p for p in files if key(p) < fraction]
    if not val and fraction > 0 and len(files) > 1:
        val = sorted(files, key=key)[: max(1, round(fraction * len(files)))]
    chosen = set(val)
    return [p for p in files if p not in chosen], val


def spread(files: list[Path], count: int) -> list[Path]:
    """``count`` files in a fixed, hash-shuffled order, so they come from every sub-folder."""
    return sorted(files, key=lambda p: _hash_fraction(p.as_posix()))[:count]


def training_and_validation_files(train: str, val: str | None, fraction: float):
    """The training files and the validation files, which never overlap (val wins)."""
    files = find_images(train)
    if val is not None:
        val_files = find_images(val)
        held_out = {p.resolve() for p in val_files}
        files = [p for p in files if p.resolve() not in held_out]
    elif fraction > 0:
        files, val_files = split_files(files, train, fraction)
    else:
        val_files = []
    if not files:
        raise ColorizerError(f"{train}: no training photos ({', '.join(sorted(SUFFIXES))})")
    return files, val_files


# -- decoding, with an optional cache file ---------------------------------------------------------


def decode(path: Path, crop: int):
    """One file -> ("ok", uint8 array) | ("grey", None) | ("corrupt", reason)."""
    try:
        picture = imageio.read_image(path)
    except (ColorizerError, OSError, ValueError) as exc:
        return "corrupt", str(exc)
    if not (picture.looks_colour or GREY_CHROMA <= mean_chroma(picture.rgb) < NEUTRAL_CHROMA):
        return "grey", None
    return "ok", fit_to_crop(picture.rgb, crop)


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean |ab| of an H x W x 3 float sRGB photo, on a copy at most 256 px on its long side."""
    step = max(1, max(rgb.shape[:2]) // 256)
    small = torch.from_numpy(np.ascontiguousarray(rgb[::step, ::step], dtype=np.float32))
    ab = color.rgb_to_lab(small.permute(2, 0, 1))[1:]
    return float(ab.norm(dim=0).mean())


def fit_to_crop(rgb: np.ndarray, crop: int) -> np.ndarray:
    """Float sRGB -> uint8 with the short side between ``crop`` and ``MARGIN * crop``: shrunk
    when larger (decoding and caching full-size photos would waste memory), enlarged when
    smaller (every crop must fit)."""
    height, width = rgb.shape[:2]
    short = min(height, width)
    scale = min(1.0, math.ceil(crop * MARGIN) / short)
    scale = max(scale, crop / short)
    if scale != 1.0:
        size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, size, interpolation=method)
    return np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _decode_job(job: tuple[Path, int]):
    return decode(*job)


def load_photos(
    files: list[Path], crop: int, workers: int = 0, cache: str | Path | None = None
) -> PhotoSet:
    """Decode ``files`` (through the cache folder when given) into a ``PhotoSet``."""
    cache_file = _cache_file(files, crop, cache) if cache else None
    if cache_file is not None and cache_file.is_file():
        log.info("decoded photos from cache %s", cache_file)
        return _read_cache(cache_file)
    photos = PhotoSet()
    jobs = [(path, crop) for path in files]
    if workers > 1 and len(files) > 1:
        # spawn, not fork: a forked child of a process that has run torch's OpenMP can hang.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = list(pool.imap(_decode_job, jobs, chunksize=8))
    else:
        results = [_decode_job(job) for job in jobs]
    for path, (status, value) in zip(files, results, strict=True):
        if status == "ok":
            photos.photos.append(value)
            photos.names.append(str(path))
        elif status == "grey":
            photos.grey.append(str(path))
        else:
            photos.corrupt.append((str(path), value))
    if cache_file is not None:
        _write_cache(cache_file, photos)
    return photos


def _cache_file(files: list[Path], crop: int, cache: str | Path) -> Path:
    """Name the cache after the exact file list, sizes, times and crop: any change misses."""
    digest = hashlib.sha1(f"v{_CACHE_VERSION} {crop}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"\n{path.resolve()} {stat.st_size} {stat.st_mtime_ns}".encode())
    return Path(cache) / f"photos-{digest.hexdigest()[:16]}.npz"


def _write_cache(path: Path, photos: PhotoSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = np.array([p.shape[:2] for p in photos.photos], dtype=np.int64).reshape(-1, 2)
    flat = [p.ravel() for p in photos.photos]
    report = {"names": photos.names, "grey": photos.grey, "corrupt": photos.corrupt}
    with atomic_write(path) as f:
        np.savez(
            f,
            pixels=np.concatenate(flat) if flat else np.zeros(0, np.uint8),
            shapes=shapes,
            report=np.array(json.dumps(report)),
        )


def _read_cache(path: Path) -> PhotoSet:
    with np.load(path) as data:
        pixels, shapes = data["pixels"], data["shapes"]
        report = json.loads(str(data["report"]))
    ends = np.cumsum(shapes[:, 0] * shapes[:, 1] * 3)
    chunks = np.split(pixels, ends[:-1]) if len(shapes) else []
    photos = [chunk.reshape(h, w, 3) for chunk, (h, w) in zip(chunks, shapes, strict=True)]
    corrupt = [tuple(item) for item in report["corrupt"]]
    return PhotoSet(photos, report["names"], report["grey"], corrupt)


# -- batches -------------------------------------------------------------------------------------


def batch_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The random stream of one batch depends on (seed, step, rank) only: a resumed run draws
    exactly the batches the uninterrupted run would have drawn."""
    digest = hashlib.sha1(f"{seed} {step} {rank}".encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def random_crops(
    photos: list[np.ndarray],
    count: int,
    crop: int,
    generator: torch.Generator,
    device,
    view: int | None = None,
    whole_fraction: float = 0.0,
) -> torch.Tensor:
    """``count`` augmented crops, N x 3 x crop x crop float sRGB on ``device``, each covering
    about ``view`` x ``view`` photo pixels (default ``crop``: no resampling beyond the jitter),
    or, for about ``whole_fraction`` of them, the whole photo squashed (``_whole_view``)."""
    indices = torch.randint(len(photos), (count,), generator=generator).tolist()
    crops = []
    for index in indices:
        # A sixth draw only when asked for: runs without whole views keep their batches.
        draws = torch.rand(6 if whole_fraction else 5, generator=generator, dtype=torch.float64)
        image = torch.from_numpy(photos[index]).to(device).permute(2, 0, 1).float() / 255
        if whole_fraction and draws[5] < whole_fraction:
            crops.append(_whole_view(image, crop, draws.tolist()))
        else:
            crops.append(_warp(image, crop, draws.tolist(), view or crop))
    return torch.stack(crops)


def _whole_view(image: torch.Tensor, crop: int, draws: list[float]) -> torch.Tensor:
    """The whole 3 x H x W photo squashed to ``crop`` x ``crop``, as inference shows a photo to
    the network, with a mild zoom (``WHOLE_SCALE_RANGE`` of each side, at a random position)
    and maybe mirrored. The photo is first shrunk with antialiasing, then cut in one
    resampling."""
    scale = WHOLE_SCALE_RANGE[0] + draws[1] * (WHOLE_SCALE_RANGE[1] - WHOLE_SCALE_RANGE[0])
    side = math.ceil(crop / scale)
    square = F.interpolate(image[None], size=(side, side), mode="bilinear", antialias=True)
    # Output [-1, 1] -> a box of half-side ``scale`` inside the square's [-1, 1].
    centre_x, centre_y = ((2 * draw - 1) * (1 - scale) for draw in draws[2:4])
    flip = -1.0 if draws[4] < 0.5 else 1.0
    theta = torch.tensor([[flip * scale, 0.0, centre_x], [0.0, scale, centre_y]]).to(image)
    grid = F.affine_grid(theta[None], [1, 3, crop, crop], align_corners=False)
    return F.grid_sample(square, grid, mode="bilinear", align_corners=False)[0].clamp(0, 1)


def _warp(image: torch.Tensor, crop: int, draws: list[float], view: int) -> torch.Tensor:
    """Cut a rotated, scaled, maybe mirrored square of about ``view`` photo pixels from a
    3 x H x W image and resample it to ``crop`` x ``crop``, in one resampling."""
    height, width = image.shape[-2:]
    angle = math.radians((2 * draws[0] - 1) * MAX_ROTATION)
    cos, sin = math.cos(angle), math.sin(angle)
    side = view * (SCALE_RANGE[0] + draws[1] * (SCALE_RANGE[1] - SCALE_RANGE[0]))
    side = min(side, min(height, width) / (abs(cos) + abs(sin)))  # the turned square must fit
    extent = side * (abs(cos) + abs(sin))
    centre_x = extent / 2 + draws[2] * (width - extent)
    centre_y = extent / 2 + draws[3] * (height - extent)
    flip = -1.0 if draws[4] < 0.5 else 1.0
    # The crop's pixel -> photo pixel map, then normalised as affine_grid wants it: output and
    # input coordinates in [-1, 1] (align_corners=False).
    half = side / 2
    theta = torch.tensor(
        [[flip * half * cos, -half * sin, centre_x], [flip * half * sin, half * cos, centre_y]],
        dtype=torch.float64,
    )
    theta /= torch.tensor([[width / 2], [height / 2]], dtype=torch.float64)
    theta[:, 2] -= 1
    theta = theta.to(image)
    grid = F.affine_grid(theta[None], [1, 3, crop, crop], align_corners=False)
    warped = F.grid_sample(image[None], grid, mode="bilinear", align_corners=False)
    return warped[0].clamp(0, 1)


def whole_photos(photos: list[np.ndarray], side: int) -> torch.Tensor:
    """Each whole photo squashed to ``side`` x ``side`` as inference does (``resize_plane``),
    N x 3 x side x side float (validation of what ships)."""
    squares = [resize_plane(photo, side, side) for photo in photos]
    if not squares:
        return torch.zeros(0, 3, side, side)
    return torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2).float() / 255


def centre_crops(photos: list[np.ndarray], crop: int) -> torch.Tensor:
    """The central crop x crop square of each photo, N x 3 x crop x crop float (validation)."""
    crops = []
    for photo in photos:
        height, width = photo.shape[:2]
        top, left = (height - crop) // 2, (width - crop) // 2
        square = photo[top : top + crop, left : left + crop]
        crops.append(torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1))
    return torch.stack(crops).float() / 255 if crops else torch.zeros(0, 3, crop, crop)


def sample_pixels(photos: list[np.ndarray], per_photo: int, seed: int) -> torch.Tensor:
    """Up to ``per_photo`` random pixels of every photo, as 1 x 3 x M x 1 float sRGB."""
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for photo in photos:
        flat = torch.from_numpy(photo.reshape(-1, 3))
        count = min(per_photo, len(flat))
        picked.append(flat[torch.randperm(len(flat), generator=generator)[:count]])
    pixels = torch.cat(picked).float() / 255
    return pixels.T.reshape(1, 3, -1, 1)
