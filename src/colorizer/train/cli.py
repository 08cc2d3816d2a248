"""`colorize train FAMILY ...` and `colorize export CKPT ...`: argument parsing only.

``add_train_parser(commands)`` adds both sub-commands to the main ``colorize`` parser; each sets
``run`` to a handler that takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import fields

from colorizer.errors import ColorizerError
from colorizer.options import add_device_option
from colorizer.train.config import FAMILIES


def add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a colorization model",
        description="Train a model family on a folder of colour photos (searched recursively). "
        "Settings come from --config (TOML or JSON, keys as the long flags with underscores), "
        "then from the flags given.",
    )
    train.add_argument("family", choices=FAMILIES)
    train.add_argument("--train", help="folder of colour training photos")
    held_out = train.add_mutually_exclusive_group()
    held_out.add_argument("--val", help="separate folder of validation photos (never trained on)")
    held_out.add_argument(
        "--val-fraction", type=float, help="hold out this fraction of --train for validation"
    )
    train.add_argument("--out", help="output folder: checkpoint, logs, sample grids")
    train.add_argument("--config", help="TOML or JSON file of settings")
    train.add_argument("--arch", help="architecture (default: the family's)")
    train.add_argument("--steps", type=int, help="optimisation steps in all (default 20000)")
    train.add_argument("--batch-size", type=int, help="photos per step and process (default 16)")
    train.add_argument("--crop", type=int, help="side of the training crops (default 176)")
    train.add_argument("--lr", type=float, help="peak learning rate (default: the family's)")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    add_device_option(train, default=None, help="default auto")
    train.add_argument("--amp", action="store_true", default=None, help="bf16 autocast (CUDA only)")
    train.add_argument("--workers", type=int, help="processes decoding photos (default 2)")
    train.add_argument("--cache", help="folder for the decoded-photo cache")
    train.add_argument("--val-every", type=int, help="validate every N steps (default 1000)")
    train.add_argument("--ckpt-every", type=int, help="checkpoint every N steps (default 500)")
    train.add_argument("--log-every", type=int, help="log losses every N steps (default 20)")
    train.add_argument(
        "--init",
        help="start from these weights: a file, or a model name such as colornet-v2 "
        "(hints: default the shipped model the architecture extends)",
    )
    train.add_argument(
        "--published-prior", help="classification: compare the training prior with this .npy"
    )
    train.add_argument(
        "--rebalance-lambda", type=float, help="classification: rebalancing strength (0.5)"
    )
    train.add_argument(
        "--ab-l1-weight", type=float, help="classification: + this x L1 on decoded ab (0)"
    )
    train.add_argument(
        "--encoder-lr-scale",
        type=float,
        help="pretrained encoders: their learning rate relative to the decoder's (1)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists"
    )
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train)

    export = commands.add_parser(
        "export",
        help="export a checkpoint or a model (safetensors + card, or ONNX)",
        description="Write the inference model of a training checkpoint as .safetensors + model "
        "card (the shipped format), or a checkpoint or registered model as an ONNX graph, "
        "checked against PyTorch on OpenVINO when it is installed.",
        epilog="examples:\n"
        "  colorize export runs/colornet-v2/checkpoint.pt --out colornet-v2.safetensors\n"
        "  colorize export runs/a/checkpoint.pt runs/b/checkpoint.pt --out averaged.safetensors\n"
        "  colorize export --format onnx --model colornet-v2 --out colornet-v2.onnx\n"
        "  colorize export --format onnx runs/colornet-v2/checkpoint.pt --out mine.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "checkpoint",
        nargs="*",
        help="checkpoint.pt written by `colorize train`; several (then also exported "
        ".safetensors files of the same architecture): their uniform weight average",
    )
    export.add_argument(
        "--format", choices=["safetensors", "onnx"], default="safetensors", help="(safetensors)"
    )
    export.add_argument("--model", help="onnx: a registered model (or, with --weights, an arch)")
    export.add_argument("--weights", help="onnx: local weights for --model")
    export.add_argument("--size", type=int, default=256, help="onnx: side of the example traced")
    export.add_argument("--out", required=True, help="file to write (a card beside .safetensors)")
    export.add_argument("--name", help="model name for the card (default: the file's stem)")
    export.add_argument("--metrics", help="JSON file of evaluation metrics for the card")
    export.set_defaults(run=cmd_export)


def cmd_train(args: argparse.Namespace) -> int:
    from colorizer.train.config import TrainConfig, make_config
    from colorizer.train.loop import train

    # Every setting that has a flag; None (flag not given) leaves the config file's value.
    # "command" is skipped: on the parsed arguments it is the sub-command's name.
    names = [f.name for f in fields(TrainConfig) if f.name != "command"]
    settings = {name: getattr(args, name, None) for name in names}
    program = "python -m colorizer.train" if sys.argv[0].endswith("__main__.py") else "colorize"
    command = f"{program} {shlex.join(sys.argv[1:])}"
    config = make_config(args.config, **settings, command=command)
    path = train(config, resume=args.resume, progress=not args.quiet)
    print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        return _export_onnx(args)
    if not args.checkpoint or args.model:
        raise ColorizerError("--format safetensors exports a training checkpoint: give its path")
    from colorizer.train.export import export

    for path in export(args.checkpoint, args.out, name=args.name, metrics=args.metrics):
        print(path)
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from colorizer import runtime

    if bool(args.checkpoint) == (args.model is not None) or len(args.checkpoint) > 1:
        raise ColorizerError("--format onnx exports one checkpoint or a --model: give one of them")
    if args.checkpoint:
        from colorizer.train.export import inference_model

        net = inference_model(args.checkpoint[0])
    else:
        from colorizer.weights import MODELS, create_model, ensure_weights

        arch = MODELS[args.model].arch if args.model in MODELS else args.model
        net = create_model(arch, args.weights or ensure_weights(args.model))
    path = runtime.export_onnx(net, args.out, size=args.size)
    print(path)
    if runtime.openvino_available():
        delta = runtime.export_error(net, path, size=args.size)
        print(f"checked on OpenVINO: mean |delta ab| against PyTorch {delta:.4f}")
    return 0
