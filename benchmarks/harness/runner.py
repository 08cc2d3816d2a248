"""Benchmarks registered by name, run from the command line, their rows appended to one file.

A benchmark is a function ``(args, results) -> None`` under ``@benchmark(name, *options)``; it
prints its own table and hands each measured row to ``results.add``. ``main`` parses
``NAME [options]``, runs it and, when it returns, appends its rows to ``results.jsonl`` (beside
RESULTS.md), one JSON object a line::

    {"benchmark": "folder", "date": "2026-12-02T16:50:03+00:00", "commit": "673dcac",
     "machine": {"cores": 2, "cpu": "...", "torch": "2.13.0", "python": "3.11.9",
                 "system": "Linux x86_64"},
     "parameters": {"photos": 24, "repeat": 2, "output": "PNG"},
     "values": {"floor_photos_per_s": 5.12, "ours_photos_per_s": 4.4}}

``parameters`` are the command line's options and what tells the row from its neighbours;
``values`` what was measured. A benchmark that lacks its data raises ``Skip``: a clear line,
exit status 0, no rows.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness.data import ROOT, Skip, portable

BENCHMARKS = Path(__file__).resolve().parents[1]
RESULTS_FILE = BENCHMARKS / "results.jsonl"


@dataclass
class Benchmark:
    name: str
    function: Callable[[argparse.Namespace, Results], None]
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]
    pass_unknown: bool  # options it does not know go on, in ``args.unknown`` (a server's)

    @property
    def doc(self) -> str:
        return sys.modules[self.function.__module__].__doc__ or self.name


REGISTRY: dict[str, Benchmark] = {}


def option(*flags: str, **settings: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One command-line option of a benchmark: ``parser.add_argument(*flags, **settings)``."""
    return flags, settings


def benchmark(
    name: str, *options: tuple[tuple[str, ...], dict[str, Any]], pass_unknown: bool = False
):
    """Register the decorated ``function(args, results)`` as benchmark ``name``."""

    def register(function):
        if name in REGISTRY and REGISTRY[name].function.__module__ != function.__module__:
            raise ValueError(f"two benchmarks named {name!r}")
        REGISTRY[name] = Benchmark(name, function, options, pass_unknown)
        return function

    return register


@dataclass
class Results:
    """The rows of one run; ``parameters`` (the command line's) go into every row."""

    benchmark: str
    parameters: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: Mapping[str, Any] | None = None, **values: Any) -> None:
        """One row: ``case`` tells it from the run's other rows, ``values`` were measured."""
        self.rows.append({"parameters": {**self.parameters, **(case or {})}, "values": values})


def machine() -> dict[str, Any]:
    """What the figures depend on, and nothing that names the user or their folders."""
    summary: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu_model(),
        "torch": torch_version(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
    }
    torch = sys.modules.get("torch")  # a GPU only where the benchmark itself brought torch in
    if torch is not None and torch.cuda.is_available():
        summary["gpu"] = torch.cuda.get_device_name()
    return summary


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_version() -> str | None:
    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    from importlib import metadata

    try:  # without importing it: seconds, for a benchmark that never needed it
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def commit() -> str | None:
    """The checkout's commit, ``+`` when it has uncommitted changes; None outside git."""
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def git(*arguments: str) -> str:
    done = subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def append_rows(path: Path, results: Results) -> None:
    stamp = {
        "benchmark": results.benchmark,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
    }
    with path.open("a", encoding="utf-8") as file:
        for row in results.rows:
            file.write(json.dumps({**stamp, **row}, default=portable) + "\n")


def find(name: str) -> Benchmark:
    """The benchmark ``name``: from ``bench_NAME.py`` or ``NAME.py`` first (one module to
    import, not all of them with their torch, av, httpx), else from every module."""
    for module in (f"bench_{name}", name):
        if name not in REGISTRY and (BENCHMARKS / f"{module}.py").exists():
            importlib.import_module(f"benchmarks.{module}")
    if name not in REGISTRY:
        import_all()
    if name not in REGISTRY:
        raise SystemExit(f"no benchmark {name!r}; these are: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def import_all() -> None:
    for module in pkgutil.iter_modules([str(BENCHMARKS)]):
        if not module.ispkg and module.name != "__main__":
            importlib.import_module(f"benchmarks.{module.name}")


def parse(entry: Benchmark, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks {entry.name}",
        description=entry.doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flags, settings in entry.options:
        parser.add_argument(*flags, **settings)
    if not entry.pass_unknown:
        return parser.parse_args(argv)
    args, unknown = parser.parse_known_args(argv)
    args.unknown = unknown
    return args


def run(name: str, argv: list[str], results_file: Path | None = RESULTS_FILE) -> Results:
    """Run benchmark ``name`` with its options ``argv``; append its rows to ``results_file``
    (None: keep them) once it has finished, so a run that fails midway leaves no half table."""
    entry = find(name)
    args = parse(entry, argv)
    parameters = {k: v for k, v in vars(args).items() if k != "unknown"}
    results = Results(name, {k: portable(v) for k, v in parameters.items()})
    entry.function(args, results)
    if results_file is not None and results.rows:
        append_rows(results_file, results)
        print(f"\n{len(results.rows)} rows appended to {portable(results_file)}")
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    front = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        add_help=False,  # -h goes on to the benchmark's own parser
        allow_abbrev=False,  # --res must not be taken for --results
    )
    front.add_argument("name", nargs="?")
    front.add_argument("--list", action="store_true", help="the benchmarks' names")
    front.add_argument("--results", type=Path, default=RESULTS_FILE, help="rows go here")
    front.add_argument("--no-results", action="store_true", help="append no rows")
    known, rest = front.parse_known_args(argv)
    if known.list or known.name is None:
        import_all()
        for entry in sorted(REGISTRY.values(), key=lambda e: e.name):
            print(f"{entry.name:22} {entry.doc.splitlines()[0]}")
        return 0
    try:
        run(known.name, rest, None if known.no_results else known.results)
    except Skip as skip:
        print(f"{known.name}: skipped: {skip}")
    return 0
