"""Link the validation split of a training folder into its own folder, for `colorize eval`.

The split is the training loop's own (a hash of each path, ``--val-fraction``), so a checkpoint,
a temperature or any other setting can be chosen on photos the run never trained on, and never
on the held-out evaluation set:

    python -m benchmarks val_split ../shared/data/train 0.05 runs/val-split
    colorize eval runs/val-split --model colornet-v2 --weights runs/v2/checkpoint.pt
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks.harness import Results, benchmark, option
from colorizer.train.data import training_and_validation_files


# Not a measurement: it makes the folder that int8 and sweep_v2 choose settings on; its one row
# records how many photos the split holds.
@benchmark(
    "val_split",
    option("train", help="the training folder, as given to colorize train"),
    option("fraction", type=float, help="its --val-fraction"),
    option("out", help="folder to fill with links to the validation photos"),
)
def val_split(args: argparse.Namespace, results: Results) -> None:
    _, val_files = training_and_validation_files(args.train, None, args.fraction)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in val_files:
        relative = path.relative_to(args.train)
        link = out / "__".join(relative.parts)  # flat, and unique like the relative path
        if not link.exists():
            os.symlink(os.path.relpath(path.resolve(), out.resolve()), link)
    print(f"{len(val_files)} validation photos linked into {out}")
    results.add(photos=len(val_files))
