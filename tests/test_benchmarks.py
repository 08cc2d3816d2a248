"""The benchmarks' layout (issue 23): they run through one harness, never through the tests or the
CLI module, and the harness's runner appends rows where it is told to.

The layout is read with ``ast`` (importing the benchmarks would pull in torch, av, Ray ...).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# Modules of the package that are not benchmarks: the harness, the entry point, the package.
NOT_BENCHMARKS = {"__init__.py", "__main__.py"}


def modules() -> list[Path]:
    return sorted(BENCHMARKS.rglob("*.py"))


def benchmark_modules() -> list[Path]:
    return [
        path
        for path in sorted(BENCHMARKS.glob("*.py"))
        if path.name not in NOT_BENCHMARKS and "harness" not in path.parts
    ]


def imported_names(tree: ast.AST) -> list[str]:
    """Every module an import statement names, function-level imports included; ``from a
    import b`` gives ``a`` and ``a.b`` (``b`` may be a module)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def forbidden(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" or "cli" in parts[1:] or name == "cli"


def registered(tree: ast.Module) -> list[str]:
    """Names given to ``@benchmark(NAME, ...)`` on the module's top-level functions."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call else None
                if isinstance(target, ast.Name) and target.id == "benchmark" and call.args:
                    first = call.args[0]
                    names.append(first.value if isinstance(first, ast.Constant) else "?")
    return names


def test_the_benchmarks_import_neither_the_tests_nor_a_cli_module():
    found = {
        f"{path.relative_to(BENCHMARKS)}: {name}"
        for path in modules()
        for name in imported_names(ast.parse(path.read_text(), str(path)))
        if forbidden(name)
    }
    assert not found, sorted(found)


def test_no_benchmark_runs_the_cli_module_in_a_child_process():
    # `python -m colorizer.cli` or child code that imports it: the installed `colorize`
    # script (benchmarks.harness.commands) is the command line a user runs.
    found = [
        f"{path.relative_to(BENCHMARKS)}:{node.lineno}"
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and "colorizer.cli" in node.value
    ]
    assert not found, found


def test_the_benchmarks_do_not_reach_into_sys_path():
    # A path insert is how a script reached tests/ or its neighbours before the harness.
    found = [
        str(path.relative_to(BENCHMARKS)) for path in modules() if "sys.path" in path.read_text()
    ]
    assert not found, found


def test_every_benchmark_module_registers_a_benchmark():
    names: dict[str, str] = {}
    for path in benchmark_modules():
        found = registered(ast.parse(path.read_text(), str(path)))
        assert found, f"{path.name} registers no @benchmark function"
        for name in found:
            assert name not in names, f"{name!r} in {path.name} and {names[name]}"
            names[name] = path.name
    assert len(names) >= 16, names  # the 16 scripts of before the harness, at least


@pytest.fixture
def trivial_benchmark():
    from benchmarks.harness import runner

    @runner.benchmark("trivial-smoke-test", runner.option("--size", type=int, default=3))
    def trivial(args, results):
        print("| size | sum |")
        results.add({"case": "ones"}, total=sum([1] * args.size))

    yield "trivial-smoke-test"
    del runner.REGISTRY["trivial-smoke-test"]


def test_the_runner_appends_a_row_to_the_results_file(trivial_benchmark, tmp_path, capsys):
    from benchmarks.harness import runner

    results = tmp_path / "results.jsonl"
    results.write_text('{"benchmark": "earlier"}\n')
    status = runner.main([trivial_benchmark, "--size", "4", "--results", str(results)])

    assert status == 0
    assert "| size | sum |" in capsys.readouterr().out
    earlier, row = (json.loads(line) for line in results.read_text().splitlines())
    assert earlier == {"benchmark": "earlier"}
    assert row["benchmark"] == trivial_benchmark
    assert row["parameters"] == {"size": 4, "case": "ones"}
    assert row["values"] == {"total": 4}
    assert {"cores", "cpu", "torch", "python"} <= set(row["machine"])
    assert str(Path.home()) not in json.dumps(row)
    assert row["date"][:2] == "20"


def test_a_benchmark_without_its_data_is_skipped_with_the_reason(tmp_path, capsys):
    from benchmarks.harness import data, runner

    @runner.benchmark("missing-data-smoke-test")
    def missing(args, results):
        data.require(data.SHARED / "no-such-folder")
        results.add(never=1)

    results = tmp_path / "results.jsonl"
    try:
        status = runner.main(["missing-data-smoke-test", "--results", str(results)])
    finally:
        del runner.REGISTRY["missing-data-smoke-test"]
    assert status == 0
    assert "skipped: ../shared/no-such-folder does not exist" in capsys.readouterr().out
    assert not results.exists()
