"""Score checkpoints and decoding temperatures on the validation split (never bsds500-test).

    python benchmarks/val_split.py ../shared/data/train 0.05 runs/val-split
    python benchmarks/sweep_v2.py runs/val-split runs/v2-a/checkpoint.pt runs/v2-b/checkpoint.pt \
        --temperatures 0.3 0.38 0.46 --limit 120

Prints one table row per checkpoint and temperature (mean PSNR, raw AuC, pooled rebalanced AuC,
colourfulness against the truth's, colour cast), as ``colorize eval`` computes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorizer import evaluate
from colorizer.pipeline import Colorizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of validation photos")
    parser.add_argument("checkpoints", nargs="+", help="colornet-v2 checkpoints or weights")
    parser.add_argument("--arch", default="colornet-v2")
    parser.add_argument("--temperatures", nargs="+", type=float, default=[0.38])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    photos = evaluate.find_photos(Path(args.data))[: args.limit]
    methods = {}
    for checkpoint in args.checkpoints:
        for temperature in args.temperatures:
            # PyTorch: an exported graph keeps the temperature it was exported with.
            colorizer = Colorizer(args.arch, weights=checkpoint, backend="torch")
            colorizer.net.temperature = temperature
            methods[f"{checkpoint} T={temperature}"] = evaluate.colorizer_method(colorizer)
    result = evaluate.evaluate(methods, photos, progress=False)
    print(evaluate.format_table(result.means()))


if __name__ == "__main__":
    main()
