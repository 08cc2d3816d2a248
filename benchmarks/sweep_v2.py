"""Score checkpoints and decoding temperatures on the validation split (never bsds500-test).

    python -m benchmarks val_split ../shared/data/train 0.05 runs/val-split
    python -m benchmarks sweep_v2 runs/val-split runs/v2-a/checkpoint.pt runs/v2-b/checkpoint.pt \
        --temperatures 0.3 0.38 0.46 --limit 120

Prints one table row per checkpoint and temperature (mean PSNR, raw AuC, pooled rebalanced AuC,
colourfulness against the truth's, colour cast), as ``colorize eval`` computes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.harness import Results, benchmark, option
from colorizer import evaluate
from colorizer.pipeline import Colorizer


@benchmark(
    "sweep_v2",
    option("data", help="folder of validation photos"),
    option("checkpoints", nargs="+", help="colornet-v2 checkpoints or weights"),
    option("--arch", default="colornet-v2"),
    option("--temperatures", nargs="+", type=float, default=[0.38]),
    option("--limit", type=int, default=None),
)
def sweep_v2(args: argparse.Namespace, results: Results) -> None:
    photos = evaluate.find_photos(Path(args.data))[: args.limit]
    methods, cases = {}, {}
    for checkpoint in args.checkpoints:
        for temperature in args.temperatures:
            # PyTorch: an exported graph keeps the temperature it was exported with.
            colorizer = Colorizer(args.arch, weights=checkpoint, backend="torch")
            colorizer.net.temperature = temperature
            name = f"{checkpoint} T={temperature}"
            methods[name] = evaluate.colorizer_method(colorizer)
            cases[name] = {"checkpoint": checkpoint, "temperature": temperature}
    result = evaluate.evaluate(methods, photos, progress=False)
    print(evaluate.format_table(result.means()))
    for name, means in result.means().items():
        results.add(cases.get(name, {"method": name}) | {"photos": len(photos)}, **means)
