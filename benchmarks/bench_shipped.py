"""Speed of the shipped models (colornet-v2, the default, and colornet-v1) against ECCV16.

Run:  python -m benchmarks shipped [--repeat 5] [--threads 2]

All models run through the same ``Colorizer`` in one process, interleaved (see
``timing.best_times``), so the ratios hold on a noisy machine. ECCV16 has seeded random
weights of the published shapes (speed does not depend on the values). Targets on the project's
2-core CPU: the network stage at most 80 ms per 256x256 image for colornet-v2 (150 ms for v1);
a 12 MP photo, array in and array out, at most 0.7 s end to end with colornet-v2.
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path

import torch

from benchmarks.harness import Results, benchmark, best_times, grey_photo, option, ratio
from benchmarks.harness.eccv16 import random_eccv16_weights
from colorizer import Colorizer
from colorizer.weights import create_model

TARGETS_MS = {"colornet-v2": 80.0, "colornet-v1": 150.0}
TARGET_12MP_S = 0.7
SHIPPED = ("colornet-v2", "colornet-v1")


def count_macs(net: torch.nn.Module, size: int) -> int:
    """Multiply-accumulates of the convolutions (everything else is small beside them)."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        kernel = module.weight[0].numel()  # c_in / groups * kh * kw
        macs += output.numel() * kernel

    handles = [
        module.register_forward_hook(hook)
        for module in net.modules()
        if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    with torch.inference_mode():
        net(torch.rand(1, 1, size, size) * 100)
    for handle in handles:
        handle.remove()
    return macs


@benchmark(
    "shipped",
    option("--repeat", type=int, default=5),
    option("--threads", type=int, default=torch.get_num_threads()),
)
def shipped(args: argparse.Namespace, results: Results) -> None:
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        eccv16 = Colorizer("eccv16", weights=random_eccv16_weights(Path(tmp)), device="cpu")
        models = {"eccv16": eccv16} | {name: Colorizer(name, device="cpu") for name in SHIPPED}
        light = torch.rand(1, 1, 256, 256) * 100
        with torch.inference_mode():
            network = best_times(
                {name: partial(m.predict_ab, light) for name, m in models.items()},
                args.repeat,
            )
        photos = {size: grey_photo(*size) for size in [(3000, 4000), (256, 256)]}
        end_to_end = {
            size: best_times(
                {name: partial(m.colorize, p) for name, m in models.items()},
                args.repeat,
            )
            for size, p in photos.items()
        }
        macs = {"eccv16": count_macs(create_model("eccv16"), 256)}
        macs |= {name: count_macs(models[name].net, 256) for name in SHIPPED}
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeat}")
    for name in SHIPPED:
        params = sum(p.numel() for p in models[name].net.parameters())
        print(f"{name}: {params / 1e6:.2f} M parameters")
    print("\nnetwork only, one 256x256 image:")
    for name, seconds in network.items():
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"  target <= {target:.0f} ms: "
        verdict += "" if target is None else ("met" if seconds * 1e3 <= target else "MISSED")
        speedup = ratio(network["eccv16"], seconds, "5.2f")
        print(
            f"  {name:12} {seconds * 1e3:7.1f} ms  {macs[name] / 1e9:5.2f} GMACs"
            f"  eccv16/this {speedup}{verdict}"
        )
        case = {"model": name, "stage": "network", "size": "256x256"}
        results.add(case, seconds=seconds, gmacs=macs[name] / 1e9)
    print("\nend to end (grey array in, colour array out):")
    for (height, width), times in end_to_end.items():
        cells = "  ".join(f"{name} {seconds:.3f} s" for name, seconds in times.items())
        print(f"  {width}x{height}: {cells}")
        for name, seconds in times.items():
            results.add(
                {"model": name, "stage": "end to end", "size": f"{width}x{height}"}, seconds=seconds
            )
    twelve = end_to_end[(3000, 4000)]["colornet-v2"]
    verdict = "met" if twelve <= TARGET_12MP_S else "MISSED"
    print(f"  colornet-v2 12 MP: {twelve:.3f} s (target <= {TARGET_12MP_S} s): {verdict}")
