"""Command-line options for provenance: signing and records on ``colorize image|video``, and
``colorize inspect FILE``. Argument parsing and printing only: the work is in
``colorizer.provenance``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from colorizer.errors import ColorizerError
from colorizer.provenance import CERT_ENV, KEY_ENV, Provenance, signing_from


def add_provenance_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that ``colorize image`` and ``colorize video`` share."""
    group = parser.add_argument_group(
        "provenance (every output carries IPTC/XMP saying a trained model colorized it)"
    )
    group.add_argument(
        "--sign-key",
        metavar="KEY",
        help=f"PEM private key: embed signed C2PA Content Credentials (default ${KEY_ENV}; "
        "needs the provenance extra)",
    )
    group.add_argument(
        "--sign-cert",
        metavar="CERT",
        help=f"PEM certificate chain of --sign-key, end-entity first (default ${CERT_ENV})",
    )
    group.add_argument(
        "--record",
        action="store_true",
        help="write NAME.EXT.json beside each output: model, weights SHA-256, backend, size, "
        "guidance, version",
    )


def provenance_from_args(args: argparse.Namespace) -> Provenance:
    """The provenance settings of ``colorize image|video``: flags first, then the environment.
    Checked now: a key without the C2PA SDK fails before any work, with how to install it."""
    key = getattr(args, "sign_key", None) or os.environ.get(KEY_ENV)
    cert = getattr(args, "sign_cert", None) or os.environ.get(CERT_ENV)
    return Provenance(signing_from(key, cert), record=bool(getattr(args, "record", False)))


def add_inspect_parser(commands) -> None:
    """``colorize inspect FILE``."""
    inspect = commands.add_parser(
        "inspect",
        help="show what a file says about its making",
        description="Print a photo's or film's provenance: its XMP record (IPTC digital source "
        "type, tool, model, hashes), its C2PA manifest and validation state, and whether its "
        "pixels still match the recorded SHA-256.",
        epilog="exit codes: 0 provenance recorded and intact, 1 no provenance, 2 error, "
        "3 tampered (pixels or C2PA data hash changed)",
    )
    inspect.add_argument("file", help="photo or film to inspect")
    inspect.add_argument(
        "--trust", metavar="PEM", help="root certificates a C2PA signer must chain to"
    )
    inspect.add_argument("--json", action="store_true", help="print the findings as JSON")
    inspect.set_defaults(run=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from colorizer.provenance.inspect import ERROR, inspect

    try:
        found = inspect(args.file, args.trust)
    except (ColorizerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, default=str))
    else:
        print("\n".join(found.lines()))
    return found.exit_code
