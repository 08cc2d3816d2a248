"""The training loop shared by every family: seeds, schedule, logs, validation, checkpoints.

Outputs in ``config.out``: ``checkpoint.pt`` (rewritten atomically every ``ckpt_every`` steps and
at the end; ``colorize image --model ARCH --weights checkpoint.pt`` runs it), ``train.csv``
(losses, learning rate, images/s), ``val.csv`` (PSNR and raw AuC on the validation crops),
``samples/step-NNNNNNN.png`` (grey | prediction | truth rows), ``prepare.json`` (what the family
measured on the training set, e.g. the prior against the published one).

Under torchrun (WORLD_SIZE > 1) every process trains on its own batches with DDP; rank 0 alone
validates and writes files.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist

from colorizer import color, imageio
from colorizer.errors import ColorizerError
from colorizer.files import atomic_path, remove_leftovers
from colorizer.pipeline import resolve_device
from colorizer.train import data
from colorizer.train.config import TrainConfig
from colorizer.train.families import Family, lr_factor, make_family

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1
GRID_ROWS = 4
VAL_BATCH = 16


def say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Run (or with ``resume`` continue) a training run; returns the checkpoint's path."""
    rank, world = start_distributed()
    device = training_device(config.device)
    torch.manual_seed(config.seed)  # same initial weights on every rank
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        remove_leftovers(out)  # a half-written checkpoint of a run that was killed
    family = make_family(config, device)
    photos, val_rgb = load_data(config, verbose=rank == 0)
    # Facts for the model card, kept in the checkpoint.
    info: dict[str, Any] = {
        "photos": len(photos.photos),
        "grey_skipped": len(photos.grey),
        "unreadable_skipped": len(photos.corrupt),
        "val_crops": 0 if val_rgb is None else len(val_rgb),
        "processes": world,
    }
    start, seconds = 0, 0.0
    checkpoint = out / CHECKPOINT
    if resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint, family, config, device)
        start, seconds = state["step"], state["seconds"]
        info = state.get("info", {}) | info
        say(f"resuming {checkpoint} at step {start}") if rank == 0 else None
    else:
        info["prepare"] = family.prepare(photos.photos)
        if rank == 0 and info["prepare"]:
            (out / "prepare.json").write_text(json.dumps(info["prepare"], indent=2) + "\n")
            say("prepare: " + ", ".join(f"{k} {v:.4g}" for k, v in info["prepare"].items()))
    if rank > 0:
        val_rgb, progress = None, False
    _run(family, config, photos.photos, val_rgb, start, seconds, info, world, progress)
    if world > 1:
        dist.destroy_process_group()
    return checkpoint


def _run(family, config, photos, val_rgb, start, seconds, info, world, progress) -> None:
    from tqdm import tqdm

    rank = dist.get_rank() if world > 1 else 0
    writer = Writer(Path(config.out), start) if rank == 0 else None
    meter = Meter(seconds, config.batch_size * world)
    if writer and val_rgb is not None and start == 0:
        # The starting point (the --init weights, or the untrained network): "before" in the
        # before/after report, and step 0 of the learning curve.
        _validate_and_log(family, val_rgb, writer, info, 0)
        meter.restart()
    bar = tqdm(initial=start, total=config.steps, unit="step", disable=not progress)
    for step in range(start, config.steps):
        lr = family.lr * lr_factor(step, config.steps, config.warmup)
        for optimizer in family.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        generator = data.batch_generator(config.seed, step, rank)
        rgb = data.random_crops(
            photos,
            config.batch_size,
            config.crop,
            generator,
            family.device,
            config.view,
            config.whole_fraction,
        )
        meter.add(family.step(data.make_batch(rgb)))
        bar.update(1)
        done = step + 1
        last = done == config.steps
        if done % config.log_every == 0 or last:
            row = {"step": done, "lr": lr, **meter.take()}
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "step"})
            if writer:
                writer.log("train", row | {"seconds": round(meter.elapsed(), 1)})
        if writer and val_rgb is not None and (done % config.val_every == 0 or last):
            _validate_and_log(family, val_rgb, writer, info, done)
            meter.restart()  # validation time is not training throughput
        if writer and (done % config.ckpt_every == 0 or last):
            save_checkpoint(writer.out / CHECKPOINT, family, config, done, meter.elapsed(), info)
            meter.restart()
    bar.close()
    if writer:
        writer.close()
        report = before_and_after(writer.out / "val.csv")
        if report:
            say(report)


def _validate_and_log(family, val_rgb: torch.Tensor, writer: Writer, info: dict, step: int):
    own = getattr(family, "validate", None)  # families with their own validation
    grid = writer.out / "samples" / f"step-{step:07d}.png"
    scores = own(val_rgb) if own else validate(family, val_rgb, grid)
    writer.log("val", {"step": step, **scores})
    info["val"] = {"step": step, **scores}
    if step == 0:
        info["val_start"] = {"step": 0, **scores}
    say(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))


def before_and_after(val_csv: Path) -> str:
    """The validation figures at the first and the last logged step, side by side ('' without
    two rows): what a fine-tuning run bought."""
    if not val_csv.is_file():
        return ""
    with val_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 2:
        return ""
    first, last = rows[0], rows[-1]
    lines = [f"validation        step {first['step']:>7}  step {last['step']:>7}"]
    for key in first:
        if key != "step":
            before, after = float(first[key]), float(last[key])
            lines.append(f"  {key:16s}{before:12.4f}  {after:12.4f}  ({after - before:+.4f})")
    return "\n".join(lines)


class Meter:
    """Mean losses and images/s since the last ``take``; wall-clock seconds since step 0."""

    def __init__(self, seconds: float, images_per_step: int) -> None:
        self.start = time.perf_counter() - seconds
        self.images_per_step = images_per_step
        self.losses: dict[str, list[float]] = defaultdict(list)
        self.restart()

    def restart(self) -> None:
        self.tick, self.steps = time.perf_counter(), 0

    def add(self, losses: dict[str, float]) -> None:
        for key, value in losses.items():
            self.losses[key].append(value)
        self.steps += 1

    def take(self) -> dict[str, float]:
        speed = self.steps * self.images_per_step / max(time.perf_counter() - self.tick, 1e-9)
        row = {key: float(np.mean(values)) for key, values in self.losses.items()}
        self.losses.clear()
        self.restart()
        return row | {"images_per_s": speed}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


class Writer:
    """Rank 0's outputs: CSV logs, and TensorBoard events when tensorboard is installed."""

    def __init__(self, out: Path, start: int) -> None:
        self.out = out
        self.csv = {name: CsvLog(out / f"{name}.csv", start) for name in ("train", "val")}
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # optional
            self.board = None
        else:
            self.board = SummaryWriter(str(out / "tensorboard"), purge_step=start or None)

    def log(self, name: str, row: dict) -> None:
        self.csv[name].write(row)
        if self.board is not None:
            for key, value in row.items():
                if key != "step":
                    self.board.add_scalar(f"{name}/{key}", value, row["step"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


# -- set-up -----------------------------------------------------------------------------------


def start_distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when torchrun launched several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def training_device(name: str) -> torch.device:
    device = resolve_device(name)
    if device.type == "cuda" and dist.is_initialized():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def load_data(config: TrainConfig, verbose: bool) -> tuple[data.PhotoSet, torch.Tensor | None]:
    """Training photos and the validation images (N x 3 x crop x crop, CPU: centre crops, or
    with ``val_whole`` the whole photos squashed), never overlapping."""
    train_files, val_files = data.training_and_validation_files(
        config.train, config.val, config.val_fraction
    )
    photos = data.load_photos(train_files, config.cached_side, config.workers, config.cache)
    if verbose:
        say(f"training data {config.train}: {photos.summary()}")
        for name, reason in photos.corrupt:
            say(f"  skipped {name}: {reason}")
    if not photos.photos:
        raise ColorizerError(f"{config.train}: no colour photos to train on")
    if not val_files:
        return photos, None
    val_crop = config.val_crop or config.crop
    val = data.load_photos(
        data.spread(val_files, config.val_images), val_crop, config.workers, config.cache
    )
    if verbose:
        say(f"validation data: {val.summary()}")
    if not val.photos:
        return photos, None
    if config.val_whole:
        return photos, data.whole_photos(val.photos, val_crop)
    return photos, data.centre_crops(val.photos, val_crop)


# -- validation ---------------------------------------------------------------------------------


@torch.no_grad()
def predict_rgb(family: Family, rgb: torch.Tensor) -> torch.Tensor:
    """The inference module's colorization of the lightness of ``rgb`` (N x 3 x H x W, CPU)."""
    model = family.inference_module()
    model.eval()
    results = []
    for chunk in rgb.split(VAL_BATCH):
        lightness = color.rgb_to_lightness(chunk.to(family.device))
        with family.autocast():
            ab = model(lightness).float()
        results.append(color.lab_to_rgb(torch.cat([lightness, ab], dim=1)).cpu())
    model.train()
    return torch.cat(results)


def validate(family: Family, rgb: torch.Tensor, grid_path: Path | None = None) -> dict:
    """Over the validation crops: mean PSNR (dB), raw AuC, the pooled class-rebalanced AuC (the
    crops' own prior, as ``colorize eval`` weighs a set) and colourfulness as a fraction of the
    truth's; then whatever the family adds (``extra_validation``). Writes the sample grid."""
    predicted = predict_rgb(family, rgb)
    scores = score_crops(predicted, rgb)
    extra = getattr(family, "extra_validation", None)
    if extra is not None:
        scores |= extra(rgb)
    if grid_path is not None:
        write_grid(grid_path, rgb[:GRID_ROWS], predicted[:GRID_ROWS])
    return scores


def score_crops(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """``validate``'s figures for N x 3 x H x W sRGB predictions against their truth."""
    from colorizer import metrics

    pairs = [
        (p.permute(1, 2, 0).numpy(), t.permute(1, 2, 0).numpy())
        for p, t in zip(predicted, truth, strict=True)
    ]
    true_ab = color.rgb_to_lab(truth)[:, 1:].permute(0, 2, 3, 1).numpy()
    counts = np.bincount(metrics.ab_bin_index(true_ab).ravel(), minlength=313)
    pooled = metrics.PooledAuC(counts / counts.sum())
    rows = [metrics.evaluate_pair(p, t, pooled=pooled) for p, t in pairs]
    colourfulness = sum(r["cf"] for r in rows) / max(sum(r["cf_truth"] for r in rows), 1e-9)
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "auc": float(np.mean([r["auc"] for r in rows])),
        "auc_rebal_pooled": pooled.value,
        "cf_ratio": colourfulness,
    }


def write_grid(path: Path, truth: torch.Tensor, predicted: torch.Tensor) -> None:
    """One row per image: grey input | prediction | truth."""
    lightness = color.rgb_to_lightness(truth)
    grey = color.lab_to_rgb(torch.cat([lightness, torch.zeros_like(truth[:, :2])], dim=1))
    rows = [torch.cat(triple, dim=2) for triple in zip(grey, predicted, truth, strict=True)]
    image = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()
    imageio.write_image(path, np.ascontiguousarray(image, dtype=np.float32))


# -- logs and checkpoints -------------------------------------------------------------------------


class CsvLog:
    """Append rows to a CSV file; a resumed run first drops rows past the checkpoint's step."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.fields: Sequence[str] | None = None
        if start == 0 or not path.is_file():
            path.unlink(missing_ok=True)
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            self.fields = reader.fieldnames
            kept = [row for row in reader if int(row["step"]) <= start]
        if self.fields is None:  # an empty log (killed before its first row): start afresh
            path.unlink()
            return
        self._rewrite(kept)

    def _rewrite(self, rows: list[dict]) -> None:
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, cast(Sequence[str], self.fields))  # set before any rewrite
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._rewrite([])
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow(row)


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def save_checkpoint(
    path: Path, family: Family, config: TrainConfig, step: int, seconds: float, info: dict
) -> None:
    """Everything needed to resume; ``model`` alone is what inference loads."""
    state = {
        "version": CHECKPOINT_VERSION,
        "arch": family.arch,
        "family": family.name,
        "config": config.to_dict(),
        "step": step,
        "model": family.inference_module().state_dict(),
        "modules": {name: module.state_dict() for name, module in family.modules.items()},
        "optimizers": {name: opt.state_dict() for name, opt in family.optimizers.items()},
        "extra": family.extra,
        "rng": torch.get_rng_state(),
        "seconds": seconds,
        "info": info,
        "hardware": hardware(family.device),
        "torch": str(torch.__version__),
    }
    with atomic_path(path) as temp:  # a kill mid-save leaves the previous checkpoint intact
        torch.save(state, temp)


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # any unpickling failure means a bad or foreign file
        raise ColorizerError(f"{path}: cannot read checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ColorizerError(f"{path}: not a version-{CHECKPOINT_VERSION} training checkpoint")
    return state


def load_checkpoint(path: Path, family: Family, config: TrainConfig, device) -> dict:
    """Restore ``family`` (weights, optimizers, its extra state, the RNG) from ``path``; returns
    the checkpoint, whose ``step`` and ``seconds`` say where the run stands."""
    state = read_checkpoint(path, device)
    ours = {"family": family.name, "arch": family.arch, "model_kwargs": config.model_kwargs}
    theirs = {"family": state["family"], "arch": state["arch"]}
    theirs["model_kwargs"] = state["config"]["model_kwargs"]
    if ours != theirs:
        raise ColorizerError(f"{path}: checkpoint is {theirs}, this run {ours}: cannot resume")
    for name, module in family.modules.items():
        module.load_state_dict(state["modules"][name])
    for name, optimizer in family.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    family.extra = dict(state["extra"])
    torch.set_rng_state(state["rng"].cpu())
    return state
