"""Training throughput: crops per CPU hour of colornet-v2's recipe against colornet-v3's (issue 26).

Run:  python -m benchmarks train [--steps 6] [--photos 64]

Each recipe trains its own family for ``--steps`` steps (after two warm-up steps) on the same
synthetic photos, the whole step timed: drawing the augmented crops from the uint8 photos
(``data.random_crops``), sampling hints (v3), the forward and backward pass, Adam. Recipes run in
turns, so the machine's load hits them alike; the ratio is against v2's recipe. The photos are
random smooth colour fields of 240 x 320 (what the decoded-photo cache holds): decoding is done
once per run into that cache, so it is not part of a step.

* v2: classification, crop 192, batch 16 (configs/colornet-v2.toml)
* v2 at 128: the same at crop 128
* v3: guided, crop 128 on a 176 view, stem + 5 blocks frozen, channels-last (colornet-v3.toml)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from benchmarks.harness import Results, benchmark, option, ratio
from colorizer.train import data
from colorizer.train.config import make_config
from colorizer.train.families import make_family

RECIPES: dict[str, dict[str, Any]] = {  # name -> make_config overrides
    "v2 (crop 192)": dict(
        family="classification", arch="colornet-v2", crop=192, encoder_lr_scale=0.2,
        ab_l1_weight=2.0, init="colornet-v2",
    ),
    "v2 at crop 128": dict(
        family="classification", arch="colornet-v2", crop=128, encoder_lr_scale=0.2,
        ab_l1_weight=2.0, init="colornet-v2",
    ),
    "v3 (128 on 176, frozen, channels-last)": dict(
        family="guided", arch="colornet-v3", crop=128, view=176, encoder_lr_scale=0.2,
        hint_l1_weight=1.0, no_hint_fraction=0.25, hint_lr_scale=10.0, freeze_early=True,
        channels_last=True,
    ),
}  # fmt: skip


def photos(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (count, 15, 20, 3), dtype=np.uint8)
    return [np.kron(s, np.ones((16, 16, 1), np.uint8)) for s in small]


@benchmark(
    "train",
    option("--steps", type=int, default=6, help="timed steps per recipe (default 6)"),
    option("--photos", type=int, default=64, help="synthetic photos (default 64)"),
    option("--batch-size", type=int, default=16),
)
def train_throughput(args: argparse.Namespace, results: Results) -> None:
    torch.set_num_threads(torch.get_num_threads())
    pictures = photos(args.photos)
    families = {}
    for name, recipe in RECIPES.items():
        config = make_config(train="-", out="-", batch_size=args.batch_size, **recipe)
        families[name] = (config, make_family(config, torch.device("cpu")))
        families[name][1].prepare(pictures)
    seconds = {name: 0.0 for name in RECIPES}
    for step in range(args.steps + 2):
        for name, (config, family) in families.items():
            started = time.perf_counter()
            generator = data.batch_generator(0, step)
            rgb = data.random_crops(
                pictures, config.batch_size, config.crop, generator, "cpu", config.view
            )
            family.step(data.make_batch(rgb))
            if step >= 2:  # two warm-up steps: allocator and kernel choice
                seconds[name] += time.perf_counter() - started
    base = next(iter(RECIPES))
    print(f"{args.steps} steps of batch {args.batch_size}, {torch.get_num_threads()} threads:")
    print("| recipe | s per step | crops per hour | x v2 |")
    print("|---|---|---|---|")
    for name, total in seconds.items():
        per_step = total / args.steps
        per_hour = args.batch_size * 3600 / per_step
        print(f"| {name} | {per_step:.3f} | {per_hour:,.0f} | {ratio(seconds[base], total)} |")
        results.add({"recipe": name}, seconds_per_step=per_step, crops_per_hour=per_hour)
