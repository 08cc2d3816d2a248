"""Link the validation split of a training folder into its own folder, for `colorize eval`.

The split is the training loop's own (a hash of each path, ``--val-fraction``), so a checkpoint,
a temperature or any other setting can be chosen on photos the run never trained on, and never
on the held-out evaluation set:

    python benchmarks/val_split.py ../shared/data/train 0.05 runs/val-split
    colorize eval runs/val-split --model colornet-v2 --weights runs/v2/checkpoint.pt
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from colorizer.train.data import training_and_validation_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", help="the training folder, as given to colorize train")
    parser.add_argument("fraction", type=float, help="its --val-fraction")
    parser.add_argument("out", help="folder to fill with links to the validation photos")
    args = parser.parse_args()
    _, val_files = training_and_validation_files(args.train, None, args.fraction)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in val_files:
        relative = path.relative_to(args.train)
        link = out / "__".join(relative.parts)  # flat, and unique like the relative path
        if not link.exists():
            os.symlink(os.path.relpath(path.resolve(), out.resolve()), link)
    print(f"{len(val_files)} validation photos linked into {out}")


if __name__ == "__main__":
    main()
