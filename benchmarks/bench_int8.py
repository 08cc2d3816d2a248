"""int8 colornet-v2 on OpenVINO: speed per 256 x 256 image and quality lost, against float32.

Run:  python -m benchmarks int8 [--calibration DIR] [--eval DIR] [--limit N]

The float32 ONNX export is quantised by ONNX Runtime's static post-training quantisation (QDQ
format, per-channel int8 weights, uint8 activations) calibrated on photos of the training set's
validation split (``python -m benchmarks val_split`` makes that folder; never the evaluation
set), then both graphs run on OpenVINO, which executes the QDQ graph in int8. Quality: the same
evaluation as ``colorize eval`` (``colorizer.evaluate``) on the held-out set, both models side
by side. The ship rule (issue 11): int8 only if rebalanced AuC drops by less than 0.5 points.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.harness import BSDS500_TEST, ROOT, Results, benchmark, best_times, option, ratio
from benchmarks.harness.data import require


def lightness_inputs(folder: Path, count: int) -> list[np.ndarray]:
    from colorizer import planes

    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".png"})[:count]
    inputs = []
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB").resize((256, 256)), np.float32) / 255
        inputs.append(planes.lightness_image(rgb)[None, None])
    return inputs


def quantise(graph: Path, out: Path, calibration: list[np.ndarray]) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter({"lightness": x} for x in calibration)

        def get_next(self):
            return next(self.batches, None)

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(graph), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


@benchmark(
    "int8",
    option("--calibration", default=str(ROOT / "runs" / "val-split")),
    option("--eval", default=str(BSDS500_TEST)),
    option("--count", type=int, default=64, help="calibration photos"),
    option("--limit", type=int, help="evaluate the first N photos only"),
    option("--repeat", type=int, default=10),
)
def int8(args: argparse.Namespace, results: Results) -> None:
    require(args.eval)
    from colorizer import Colorizer, evaluate
    from colorizer.runtime import OpenVinoNetwork

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["COLORIZER_HOME"] = tmp
        fp32 = Colorizer(backend="openvino")
        calibration = lightness_inputs(Path(args.calibration), args.count)
        if not calibration:
            raise SystemExit(f"{args.calibration}: no photos (python -m benchmarks val_split)")
        int8_graph = quantise(fp32.network.graph, Path(tmp) / "int8.onnx", calibration)
        int8 = Colorizer(backend="openvino")
        int8.network = OpenVinoNetwork(int8_graph)

        x = calibration[-1]
        times = best_times({"fp32": lambda: fp32.network(x), "int8": lambda: int8.network(x)}, 10)
        print(
            f"network per 256 x 256 image: float32 {times['fp32'] * 1000:.1f} ms, "
            f"int8 {times['int8'] * 1000:.1f} ms ({ratio(times['fp32'], times['int8'])})"
        )
        for precision, seconds in times.items():
            results.add({"stage": "network", "precision": precision}, seconds=seconds)

        photos = evaluate.find_photos(Path(args.eval))[: args.limit]
        methods = {
            "colornet-v2 float32": evaluate.colorizer_method(fp32),
            "colornet-v2 int8": evaluate.colorizer_method(int8),
        }
        result = evaluate.evaluate(methods, photos, progress=False)
        print(f"\n{len(photos)} photos of {args.eval}:")
        print(evaluate.format_table(result.means()))
        for method, means in result.means().items():
            results.add({"stage": "quality", "method": method, "photos": len(photos)}, **means)
