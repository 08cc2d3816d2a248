"""What every command shares: the model and device options, and running a parsed command.

Each command module (``colorizer.cli``, ``guidance/cli.py``, ``video/cli.py``, ``server/cli.py``,
``train/cli.py``) builds its options from here, and ``python -m colorizer.train`` runs its
commands with ``run_command`` without importing the main parser.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from colorizer.errors import ColorizerError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
BACKEND_CHOICES = ("auto", "torch", "openvino")  # colorizer.runtime.BACKENDS
MODEL_HELP = "registered model name (see `colorize models`; default: colornet-v2)"
WEIGHTS_HELP = "run --model's architecture from this local weights file"
SIZE_HELP = "side of the square the network sees (32 to 2048; default: the model's)"
# The models are trained at 224-256 px. Beyond 2048 the network's activations alone take
# gigabytes (--size 4096 passed 5 GB on a 96 px photo; 100000 asked for 40 GB): no gain, only
# a machine brought to its knees. The server's own limit is lower (settings.max_network_size).
MIN_SIZE, MAX_SIZE = 32, 2048
# What ``--format`` may name: imageio.WRITE_SUFFIXES without the dot (a test holds them equal);
# not imported from there, so that parsing the command line stays quick.
OUTPUT_FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp")


class UsageError(ColorizerError):
    """A value on the command line that cannot work, found before any work: exit code 2."""

    exit_code = 2


def network_size(text: str) -> int:
    """``--size``: a whole number of pixels from MIN_SIZE to MAX_SIZE (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: the network's side must be {MIN_SIZE} to {MAX_SIZE} px"
        )
    return value


def non_negative(text: str) -> int:
    """A whole number, 0 or more (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive(text: str) -> int:
    """A whole number, 1 or more (argparse type)."""
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def output_format(text: str) -> str:
    """``--format``: one of OUTPUT_FORMATS, with or without its dot (argparse type)."""
    name = text.lstrip(".")
    if name.lower() not in OUTPUT_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an output format; choose from {', '.join(OUTPUT_FORMATS)}"
        )
    return name


def model_for(model: str | None, weights: str | None) -> str | None:
    """``--model``, or when only ``--weights`` is given the architecture that file records
    (training checkpoints and ``colorize export`` files do); without either a one-line error
    rather than the default model's wall of missing keys."""
    if model is not None or weights is None:
        return model
    try:
        arch = _recorded_arch(Path(weights))
    except Exception:  # missing or unreadable: loading it names the file and the problem
        return model
    if not arch:
        raise UsageError(
            f"--weights {weights}: the file does not record its architecture; name it with "
            "--model (an architecture, e.g. colornet, or a model of `colorize models`)"
        )
    return arch


def _recorded_arch(path: Path) -> str:
    """The architecture a weights file records ("" when none); raises when it is unreadable."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:  # the header only
            arch = (handle.metadata() or {}).get("arch")
    elif path.suffix.lower() in (".pt", ".pth", ".ckpt"):
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        arch = state.get("arch") if isinstance(state, dict) else None
    else:
        arch = None  # another format (a .caffemodel) records none
    return arch if isinstance(arch, str) else ""


def add_device_option(
    parser, default: str | None = "auto", help: str | None = None, backend: bool = False
) -> None:
    """``--device {auto,cpu,cuda,mps}``, and with ``backend`` ``--backend``."""
    parser.add_argument("--device", default=default, choices=list(DEVICE_CHOICES), help=help)
    if backend:
        parser.add_argument(
            "--backend",
            choices=list(BACKEND_CHOICES),
            help="where the network runs: auto (default: OpenVINO on the CPU when installed, "
            "else PyTorch; or $COLORIZER_BACKEND), torch or openvino",
        )


MIRROR_CHOICES = ("on", "off")


def add_mirror_option(parser) -> None:
    """``--mirror-average {on,off}``: override the catalogue's choice (``eval`` measures both)."""
    parser.add_argument(
        "--mirror-average",
        choices=list(MIRROR_CHOICES),
        help="average each photo's colours with its mirror image's: on or off (default: the "
        "model's catalogue setting, on for colornet-v3)",
    )


def mirror_average(args: argparse.Namespace) -> bool | None:
    """``--mirror-average`` as ``Colorizer`` takes it: None (the catalogue's), True or False."""
    choice = getattr(args, "mirror_average", None)
    return None if choice is None else choice == "on"


def add_model_options(
    parser,
    model: str = MODEL_HELP,
    weights: str | None = WEIGHTS_HELP,
    size: str | None = SIZE_HELP,
) -> None:
    """``--model``, and unless their help is None ``--weights`` and ``--size``."""
    parser.add_argument("--model", help=model)
    if weights is not None:
        parser.add_argument("--weights", help=weights)
    if size is not None:
        parser.add_argument("--size", type=network_size, help=size)


ENGINES = ("local", "ray")
ACTORS_HELP = "Ray actors colorizing at once (default: one per GPU, else one per CPU)"
BATCH_HELP = "files each actor takes per call (default 8)"


def add_engine_options(
    parser, actors: str = ACTORS_HELP, batch_size: str | None = BATCH_HELP, failures: bool = True
) -> None:
    """``--engine {local,ray}``, ``--address``, ``--actors``, and unless their help is None or
    ``failures`` is False ``--batch-size`` and ``--failures`` (the ``cluster`` extra's options)."""
    group = parser.add_argument_group("cluster (--engine ray; pip install 'colorizer[cluster]')")
    group.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="local",
        help="local: this process (default); ray: a Ray cluster (docs/cluster.md)",
    )
    group.add_argument(
        "--address",
        help="the Ray cluster (host:port; default $RAY_ADDRESS, else a Ray started on this "
        "machine for the run, listening on 127.0.0.1 only)",
    )
    group.add_argument("--actors", type=int, help=actors)
    if batch_size is not None:
        group.add_argument("--batch-size", type=int, default=8, help=batch_size)
    if failures:
        group.add_argument(
            "--failures",
            metavar="CSV",
            help="with --engine ray, the CSV listing the files that failed and why (default "
            "OUTPUT/colorize-failures.csv, or ./colorize-failures.csv without -o)",
        )


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; our errors become one readable line and exit code 1 (2 for a
    usage error: a value that cannot work, or a batch whose outputs collide)."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return args.run(args)
    except ColorizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
