"""``colorize cache``: list the user cache (entries, kinds, sizes, the folder), clear it, trim it.

The work is ``colorizer.cache``'s; this module only parses and prints. It imports neither PyTorch
nor OpenVINO, so it answers at once.
"""

from __future__ import annotations

import argparse
import sys

from colorizer import cache
from colorizer.files import cache_dir

WHAT = {
    "weights": "downloaded weights (colorize models pull)",
    "export": "networks exported as ONNX (remade on use)",
    "blob": "networks compiled by OpenVINO (remade on use)",
}


def add_cache_parser(commands) -> None:
    """``colorize cache [list|clear|trim]``."""
    parser = commands.add_parser(
        "cache",
        help="list, clear or trim the user cache",
        description="List what colorizer keeps in its cache folder, with sizes; clear it (all, "
        "or one kind); or trim the compiled networks to the limit now. Compiled networks are "
        f"trimmed on their own, least recently used first, to ${cache.LIMIT_ENV} (default "
        f"{cache.DEFAULT_LIMIT}). $COLORIZER_HOME moves the folder.",
        epilog="examples:\n  colorize cache\n  colorize cache clear --blobs\n"
        "  colorize cache clear",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=["list", "clear", "trim"], default="list")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument(
        "--blobs",
        action="store_true",
        help="clear only the compiled networks (ONNX exports, OpenVINO blobs)",
    )
    kinds.add_argument("--weights", action="store_true", help="clear only downloaded weights")
    parser.set_defaults(run=cmd_cache)


def cmd_cache(args: argparse.Namespace) -> int:
    if args.action != "clear" and (args.blobs or args.weights):
        print("error: --blobs and --weights go with `colorize cache clear`", file=sys.stderr)
        return 2
    if args.action == "clear":
        kinds = cache.COMPILED if args.blobs else ("weights",) if args.weights else cache.KINDS
        removed, freed = cache.clear(kinds)
        print(f"removed {removed} entries ({cache.human_size(freed)}) from {cache_dir()}")
        return 0
    if args.action == "trim":
        gone = cache.trim()
        freed = sum(e.size for e in gone)
        print(f"removed {len(gone)} entries ({cache.human_size(freed)}) from {cache_dir()}")
        return 0
    return list_cache()


def list_cache() -> int:
    found = cache.entries()
    root = cache_dir()
    for entry in reversed(found):  # most recently used first
        size = cache.human_size(entry.size).rjust(10)
        print(f"{entry.kind:<8} {size}  {entry.path.relative_to(root)}")
    if found:
        print()
    for kind, what in WHAT.items():
        count = sum(e.kind == kind for e in found)
        size = cache.human_size(cache.total(found, [kind])).rjust(10)
        print(f"{kind:<8} {size}  {count} entries: {what}")
    limit = cache.human_size(cache.limit())
    print(f"total    {cache.human_size(cache.total(found)).rjust(10)}  in {root}")
    print(f"compiled networks are kept under {limit} (${cache.LIMIT_ENV})")
    return 0
