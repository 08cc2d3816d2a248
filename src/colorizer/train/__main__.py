"""``python -m colorizer.train train FAMILY ...`` / ``... export CKPT ...``: the training
commands without the main ``colorize`` parser."""

import argparse
import sys

from colorizer.errors import ColorizerError
from colorizer.train.cli import add_train_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colorizer.train")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ColorizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
