"""colornet-v2's encoder variants: size and network time per 256x256 image (issue 10's choice).

Run:  python -m benchmarks v2_variants [--repeat 5]

Builds ``colornet-v2`` with each EfficientNet-Lite variant (random weights: speed does not depend
on the values), times one 256x256 forward on PyTorch eager, interleaved, best of ``--repeat``,
and prints parameters, float32 size and the time against lite0 (issue 10: network stage at most
80 ms per 256x256 image on this CPU; the shipped lite0 takes 35-47 ms on OpenVINO / PyTorch).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.harness import Results, benchmark, best_times, option, ratio
from colorizer.models.colornet_v2 import ColorNetV2
from colorizer.models.efficientnet_lite import VARIANTS


@benchmark("v2_variants", option("--repeat", type=int, default=5))
def v2_variants(args: argparse.Namespace, results: Results) -> None:
    torch.manual_seed(0)
    nets = {variant: ColorNetV2(variant=variant).eval() for variant in VARIANTS}
    image = torch.rand(1, 1, 256, 256) * 100

    def forward(net):
        def run():
            with torch.inference_mode():
                net(image)

        return run

    times = best_times({v: forward(net) for v, net in nets.items()}, args.repeat)
    print("| variant | parameters | float32 MiB | ms per 256x256 (PyTorch eager) | x lite0 |")
    print("|---|---|---|---|---|")
    for variant, net in nets.items():
        count = sum(p.numel() for p in net.parameters())
        print(
            f"| {variant} | {count:,} | {count * 4 / 2**20:.1f} | {1000 * times[variant]:.1f} | "
            f"{ratio(times[variant], times['lite0'])} |"
        )
        results.add({"variant": variant}, parameter_count=count, seconds=times[variant])
