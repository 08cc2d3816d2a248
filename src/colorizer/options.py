"""What every command shares: the model and device options, and running a parsed command.

Each command module (``colorizer.cli``, ``guidance/cli.py``, ``video/cli.py``, ``server/cli.py``,
``train/cli.py``) builds its options from here, and ``python -m colorizer.train`` runs its
commands with ``run_command`` without importing the main parser.
"""

from __future__ import annotations

import argparse
import logging
import sys

from colorizer.errors import ColorizerError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
BACKEND_CHOICES = ("auto", "torch", "openvino")  # colorizer.runtime.BACKENDS
MODEL_HELP = "registered model name (see `colorize models`; default: colornet-v2)"
WEIGHTS_HELP = "run --model's architecture from this local weights file"
SIZE_HELP = "side of the square the network sees"


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
        parser.add_argument("--size", type=int, help=size)


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
    """Run a parsed command; our errors become one readable line and exit code 1."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return args.run(args)
    except ColorizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
