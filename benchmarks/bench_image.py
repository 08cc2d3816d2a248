"""Photo colorization speed: the published pipeline, OpenCV DNN on the Caffe release, and ours.

Run:  python -m benchmarks image [--repeat 3] [--threads 2]

All three run ECCV16 (seeded random weights of the published shapes when the real files are
absent; speed does not depend on the values) on a 4000x3000 and a 256x256 grey photo, in one
process so that the ratios are fair on a noisy machine:

(a) published: PIL bicubic resize + scikit-image Lab + PyTorch eager, as ``colorizers``' demo;
(b) seeds: OpenCV DNN on the Caffe prototxt/caffemodel, as the seed documents run it;
(c) ours: ``colorizer.Colorizer`` on PyTorch, and (d) on OpenVINO when it is installed (the
    export goes to a temporary cache).

It also measures the machine's convolution limit for ECCV16 at 256x256: each of the network's
convolutions timed alone at its best (same shapes, same threads); their sum is the floor that
the whole network's time is compared with.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from benchmarks.harness import DATA, Results, benchmark, best_times, grey_photo, option, ratio
from benchmarks.harness.eccv16 import opencv_eccv16, random_eccv16_weights, write_random_release

PROTOTXT = DATA / "eccv16" / "colorization_deploy_v2.prototxt"


# -- (a) the published pipeline -------------------------------------------------------------


def published_pipeline(net: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """colorizers/util.py + demo_release.py: preprocess_img, model, postprocess_tens."""
    from skimage import color as skcolor

    small = np.asarray(Image.fromarray(rgb).resize((256, 256), resample=3))
    l_orig = skcolor.rgb2lab(rgb)[:, :, 0]
    l_small = skcolor.rgb2lab(small)[:, :, 0]
    tens_orig = torch.Tensor(l_orig)[None, None]
    tens_small = torch.Tensor(l_small)[None, None]
    with torch.no_grad():
        ab = net(tens_small)
    if ab.shape[2:] != tens_orig.shape[2:]:
        ab = F.interpolate(ab, size=tens_orig.shape[2:], mode="bilinear")
    lab = torch.cat((tens_orig, ab), dim=1)
    return skcolor.lab2rgb(lab.data.cpu().numpy()[0].transpose((1, 2, 0)))


# -- (b) OpenCV DNN on the Caffe files, as the seed documents do ------------------------------


def opencv_pipeline(net, bgr: np.ndarray) -> np.ndarray:
    import cv2

    scaled = bgr.astype(np.float32) / 255
    lab = cv2.cvtColor(scaled, cv2.COLOR_BGR2Lab)
    light = cv2.split(cv2.resize(lab, (224, 224)))[0] - 50
    net.setInput(cv2.dnn.blobFromImage(light))
    ab = net.forward()[0].transpose((1, 2, 0))
    ab = cv2.resize(ab, (bgr.shape[1], bgr.shape[0]))
    out = cv2.cvtColor(np.concatenate((lab[:, :, :1], ab), axis=2), cv2.COLOR_Lab2BGR)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


# -- the convolution limit ------------------------------------------------------------------


def convolution_limit(net: nn.Module, size: int, repeat: int) -> tuple[float, float, float]:
    """The machine's convolution limit for ``net`` at ``size``: (MACs, floor s, peak MAC/s).

    Each of the network's convolutions is timed alone with its own input shape, in both memory
    formats (the faster counts). The floor is the sum of those best times: the network's
    convolutions with nothing else around them (no BN, ReLU, softmax, memory reuse between
    layers). The peak is the best throughput any one of them reaches.
    """
    shapes: list[tuple[nn.Module, torch.Size, torch.Size]] = []
    hooks = [
        module.register_forward_hook(
            lambda m, args, out: shapes.append((m, args[0].shape, out.shape))
        )
        for module in net.modules()
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d)
    ]
    with torch.inference_mode():
        net(torch.rand(1, 1, size, size) * 100)
    for hook in hooks:
        hook.remove()
    total_macs, floor, peak = 0.0, 0.0, 0.0
    with torch.inference_mode():
        for module, in_shape, out_shape in shapes:
            assert isinstance(module, nn.Conv2d | nn.ConvTranspose2d)  # the hooked modules
            kernel = module.weight.shape[2] * module.weight.shape[3]
            if isinstance(module, nn.ConvTranspose2d):  # every input pixel meets every tap
                macs = in_shape.numel() * module.out_channels * kernel
            else:
                macs = out_shape.numel() * module.in_channels * kernel
            candidates = {}
            for memory_format in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(in_shape).contiguous(memory_format=memory_format)
                # Module.to takes memory_format (documented), but torch's overloads omit it.
                conv = copy.deepcopy(module).to(memory_format=memory_format)  # type: ignore[call-overload]
                candidates[str(memory_format)] = partial(conv, x)
            best = min(best_times(candidates, repeat + 2).values())
            total_macs += macs
            floor += best
            peak = max(peak, macs / best)
    return total_macs, floor, peak


def time_pipelines(published_net, ours, fast, caffe, height: int, width: int, repeat: int):
    grey = grey_photo(height, width)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    pipelines = {
        "a_published": lambda: published_pipeline(published_net, rgb),
        "c_ours": lambda: ours.colorize(grey),
    }
    if caffe is not None:
        pipelines["b_opencv_caffe"] = lambda: opencv_pipeline(caffe, rgb)
    if fast is not None:
        pipelines["d_ours_openvino"] = lambda: fast.colorize(grey)
    return best_times(pipelines, repeat)


@benchmark(
    "image",
    option("--repeat", type=int, default=3),
    option("--threads", type=int, default=torch.get_num_threads()),
)
def image(args: argparse.Namespace, results: Results) -> None:
    torch.set_num_threads(args.threads)

    from colorizer import Colorizer
    from colorizer.runtime import openvino_available
    from colorizer.weights import create_model

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["COLORIZER_HOME"] = tmp  # the OpenVINO export goes here, not to the user's
        weights = random_eccv16_weights(Path(tmp))
        published_net = create_model("eccv16", weights)
        ours = Colorizer("eccv16", weights=weights, size=256, device="cpu", backend="torch")
        fast = None
        if openvino_available():
            fast = Colorizer("eccv16", weights=weights, size=256, device="cpu", backend="openvino")
        caffe = None
        if PROTOTXT.exists():
            caffemodel = Path(tmp) / "random.caffemodel"
            write_random_release(PROTOTXT, caffemodel)
            caffe = opencv_eccv16(PROTOTXT, caffemodel)

        print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeat}")
        rows = []
        for height, width in [(3000, 4000), (256, 256)]:
            rows.append(
                (
                    f"{width}x{height}",
                    time_pipelines(published_net, ours, fast, caffe, height, width, args.repeat),
                )
            )

        light = torch.rand(1, 1, 256, 256) * 100
        candidates = {
            "published": lambda: published_net(light),
            "ours": lambda: ours.predict_ab(light),
        }
        if fast is not None:
            candidates["openvino"] = lambda: fast.network(light.numpy())
        with torch.inference_mode():
            networks = best_times(candidates, args.repeat)
        net_published, net_ours = networks["published"], networks["ours"]
        macs, floor, peak = convolution_limit(create_model("eccv16", weights), 256, args.repeat)

    print("\nend to end (decoded array in, colour array out), seconds:")
    for label, timings in rows:
        speedup = ratio(timings["a_published"], timings["c_ours"], "5.2f")
        cells = "  ".join(f"{name} {t:7.3f}" for name, t in sorted(timings.items()))
        print(f"  {label:>10}: {cells}   published/ours = {speedup}")
        if "d_ours_openvino" in timings:
            print(
                f"{'':14}published/ours_openvino = "
                f"{ratio(timings['a_published'], timings['d_ours_openvino'], '5.2f')}"
            )
        if "b_opencv_caffe" in timings:
            print(
                f"{'':14}opencv_caffe/ours = "
                f"{ratio(timings['b_opencv_caffe'], timings['c_ours'], '5.2f')}"
            )
        results.add(
            {"stage": "end to end", "size": label}, **{f"{k}_s": t for k, t in timings.items()}
        )
    print(f"\nnetwork only, ECCV16 at 256x256 ({macs / 1e9:.1f} GMACs), seconds:")
    print(f"  published eager {net_published:.3f}   ours {net_ours:.3f}")
    if "openvino" in networks:
        print(
            f"  ours on OpenVINO {networks['openvino']:.3f} "
            f"({ratio(net_ours, networks['openvino'])} faster than eager)"
        )
    print(f"  convolution floor (each conv alone, best format, summed) {floor:.3f}")
    print(f"  ours / floor = {net_ours / floor:.2f}   (target <= 1.25)")
    print(f"  peak one-conv throughput {peak / 1e9:.1f} GMAC/s; all MACs at it {macs / peak:.3f}")
    print(f"  ours / (all MACs at peak) = {net_ours * peak / macs:.2f}")
    print(f"  ours {macs / net_ours / 1e9:.1f} GMAC/s, floor {macs / floor / 1e9:.1f} GMAC/s")
    results.add(
        {"stage": "network", "size": "256x256"},
        **{f"{name}_s": seconds for name, seconds in networks.items()},
        convolution_floor_s=floor,
        gmacs=macs / 1e9,
        peak_gmac_per_s=peak / 1e9,
    )
