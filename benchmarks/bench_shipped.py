"""Speed of the shipped default model (colornet-v1) against ECCV16, network and end to end.

Run:  python benchmarks/bench_shipped.py [--repeat 5] [--threads 2]

Both models run through the same ``Colorizer`` in one process, interleaved (see
``bench_image.best_times``), so the ratio holds on a noisy machine. ECCV16 has seeded random
weights of the published shapes (speed does not depend on the values). Target for the shipped
model: the network stage at most 150 ms per 256x256 image on the project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from bench_image import best_times, grey_photo, random_eccv16_weights

from colorizer import Colorizer
from colorizer.weights import create_model

TARGET_MS = 150.0


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        eccv16 = Colorizer("eccv16", weights=random_eccv16_weights(Path(tmp)), device="cpu")
        shipped = Colorizer(device="cpu")
        light = torch.rand(1, 1, 256, 256) * 100
        with torch.inference_mode():
            network = best_times(
                {
                    "eccv16": lambda: eccv16.predict_ab(light),
                    "shipped": lambda: shipped.predict_ab(light),
                },
                args.repeat,
            )
        photos = {size: grey_photo(*size) for size in [(3000, 4000), (256, 256)]}
        end_to_end = {
            size: best_times(
                {
                    "eccv16": lambda p=p: eccv16.colorize(p),
                    "shipped": lambda p=p: shipped.colorize(p),
                },
                args.repeat,
            )
            for size, p in photos.items()
        }
        macs = {
            "eccv16": count_macs(create_model("eccv16"), 256),
            "shipped": count_macs(shipped.net, 256),
        }
    params = sum(p.numel() for p in shipped.net.parameters())
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeat}")
    print(f"shipped {shipped.name}: {params / 1e6:.2f} M parameters")
    print("\nnetwork only, one 256x256 image:")
    for name, seconds in network.items():
        print(f"  {name:8} {seconds * 1e3:7.1f} ms  {macs[name] / 1e9:5.2f} GMACs")
    ms = network["shipped"] * 1e3
    verdict = "met" if ms <= TARGET_MS else "MISSED"
    print(f"  shipped: {ms:.1f} ms (target <= {TARGET_MS:.0f} ms): {verdict}")
    print(f"  eccv16 / shipped = {network['eccv16'] / network['shipped']:.2f}x")
    print("\nend to end (grey array in, colour array out):")
    for (height, width), times in end_to_end.items():
        ratio = times["eccv16"] / times["shipped"]
        print(
            f"  {width}x{height}: eccv16 {times['eccv16']:.3f} s  shipped {times['shipped']:.3f} s"
            f"  eccv16/shipped = {ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
