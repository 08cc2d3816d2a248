"""The colornet-v3 campaign's learning curve from a run's logs (issue 26).

Run:  python -m benchmarks campaign_curve ../runs/colornet-v3 [--crops-before N --hours-before H]

Reads ``val.csv`` (the validation figures at each validation step) and ``train.csv`` (the
wall-clock seconds of training at each logged step) of a ``colorize train guided`` run and prints
one row per validation: step, crops seen and training hours, both cumulative over the campaign
(``--crops-before``/``--hours-before``: what earlier runs of the campaign had spent; the first
run started from colornet-v2, whose own 27,200 crops and 1.29 h are not counted), and the
figures. The hours are wall-clock hours of the training process on the 2-core machine, shared
with other work, so they overstate the CPU time a quiet machine needs.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from benchmarks.harness import Results, benchmark, option

COLUMNS = {
    "psnr": ("PSNR dB", 1.0, ".2f"),
    "auc": ("AuC %", 100.0, ".1f"),
    "auc_rebal_pooled": ("AuC rebal pooled %", 100.0, ".1f"),
    "cf_ratio": ("CF / truth", 1.0, ".2f"),
    "psnr_10_hints": ("PSNR 10 hints", 1.0, ".2f"),
    "calibration_error": ("confidence ECE", 1.0, ".3f"),
}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def seconds_at(train_rows: list[dict[str, str]], step: int) -> float:
    """Training seconds at ``step``: the last logged row at or before it (0 at step 0)."""
    seconds = 0.0
    for row in train_rows:
        if int(row["step"]) <= step:
            seconds = float(row["seconds"])
    return seconds


@benchmark(
    "campaign_curve",
    option("run", type=Path, help="the run's folder (val.csv, train.csv, checkpoint.pt)"),
    option("--batch-size", type=int, default=16, help="crops per step (16)"),
    option("--crops-before", type=int, default=0, help="crops of earlier campaign runs"),
    option("--hours-before", type=float, default=0.0, help="hours of earlier campaign runs"),
)
def campaign_curve(args: argparse.Namespace, results: Results) -> None:
    val_rows = read_rows(args.run / "val.csv")
    train_rows = read_rows(args.run / "train.csv")
    header = ["step", "crops seen", "hours", *(COLUMNS[k][0] for k in COLUMNS)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in val_rows:
        step = int(row["step"])
        crops = args.crops_before + step * args.batch_size
        hours = args.hours_before + seconds_at(train_rows, step) / 3600
        cells = [f"{step:,}", f"{crops:,}", f"{hours:.2f}"]
        values = {}
        for key, (_, scale, spec) in COLUMNS.items():
            if row.get(key):
                values[key] = float(row[key])
                cells.append(f"{values[key] * scale:{spec}}")
            else:
                cells.append("")
        print("| " + " | ".join(cells) + " |")
        results.add({"step": step}, crops=crops, hours=hours, **values)
