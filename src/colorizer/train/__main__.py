"""``python -m colorizer.train train FAMILY ...`` / ``... export CKPT ...``: the training
commands without the main ``colorize`` parser."""

import argparse
import sys

from colorizer.options import run_command
from colorizer.train.cli import add_train_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colorizer.train")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
