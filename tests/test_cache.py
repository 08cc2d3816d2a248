"""The user cache: listed by kind, cleared safely, and bounded by LRU eviction (issue 22)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from colorizer import cache, runtime
from colorizer.cli import main
from colorizer.errors import ColorizerError
from colorizer.files import temp_path

DAY = 24 * 3600.0


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private cache holding one of each kind, all last used a day or more ago."""
    root = tmp_path / "cache"
    monkeypatch.setenv("COLORIZER_HOME", str(root))
    monkeypatch.delenv(cache.LIMIT_ENV, raising=False)
    now = time.time()
    for relative, size, age_days in [
        ("models/eccv16.pth", 5000, 9),
        ("onnx/old-256.onnx", 3000, 5),
        ("onnx/old-256.json", 100, 5),
        ("onnx/new-256.onnx", 3000, 1),
        ("onnx/new-256.json", 100, 1),
        ("onnx/openvino/111.blob", 2000, 4),
        ("onnx/openvino/222.blob", 2000, 2),
    ]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        stamp = now - age_days * DAY
        os.utime(path, (stamp, stamp))
    return root


def names(found) -> list[str]:
    return [f"{e.kind}:{e.path.name}" for e in found]


def test_entries_have_kinds_sizes_and_are_least_recently_used_first(home):
    found = cache.entries()
    assert names(found) == [
        "weights:eccv16.pth",
        "export:old-256.onnx",
        "blob:111.blob",
        "blob:222.blob",
        "export:new-256.onnx",
    ]
    assert found[1].size == 3100  # an export is its graph and its record
    assert found[1].files[0].suffix == ".json"  # the record goes first
    assert cache.total(found) == 15200
    assert cache.total(found, cache.COMPILED) == 10200


def test_trim_evicts_compiled_least_recently_used_never_weights(home):
    gone = cache.trim(max_bytes=5200)
    assert names(gone) == ["export:old-256.onnx", "blob:111.blob"]
    assert names(cache.entries()) == ["weights:eccv16.pth", "blob:222.blob", "export:new-256.onnx"]
    assert cache.trim(max_bytes=0, keep=[home / "onnx" / "new-256.onnx"]) != []
    assert names(cache.entries()) == ["weights:eccv16.pth", "export:new-256.onnx"]


def test_trim_spares_what_was_used_a_moment_ago(home):
    os.utime(home / "onnx" / "openvino" / "111.blob")  # another process just read it
    cache.trim(max_bytes=0)
    assert names(cache.entries()) == ["weights:eccv16.pth", "blob:111.blob"]


def test_the_limit_comes_from_the_environment(home, monkeypatch):
    assert cache.limit() == 1 << 30
    monkeypatch.setenv(cache.LIMIT_ENV, "6k")
    assert cache.limit() == 6144
    cache.trim()
    assert cache.total(cache.entries(), cache.COMPILED) <= 6144
    assert cache.parse_size("1.5 GiB") == 3 << 29 and cache.parse_size("0") == 0
    monkeypatch.setenv(cache.LIMIT_ENV, "lots")
    with pytest.raises(ColorizerError, match="COLORIZER_CACHE_LIMIT='lots' is not a size"):
        cache.limit()


def test_clear_one_kind_or_all(home):
    assert cache.clear(cache.COMPILED) == (4, 10200)
    assert names(cache.entries()) == ["weights:eccv16.pth"]
    assert cache.clear() == (1, 5000)
    assert cache.entries() == []
    assert (home / "onnx" / "openvino").is_dir()  # folders stay: a writer may be using one


def test_clear_never_leaves_the_cache_through_a_link(home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.pth").write_bytes(b"keep me")
    (home / "models" / "linked.pth").symlink_to(outside / "precious.pth")
    (home / "onnx" / "openvino" / "elsewhere").symlink_to(outside, target_is_directory=True)
    (home / "notes.txt").write_text("not colorizer's")  # the cache folder may be shared
    cache.clear()
    assert (outside / "precious.pth").read_bytes() == b"keep me"  # never followed
    assert not (home / "models" / "linked.pth").is_symlink()  # the links themselves went
    assert not (home / "onnx" / "openvino" / "elsewhere").is_symlink()
    assert (home / "notes.txt").exists()


def test_clear_leaves_a_live_writer_alone_and_removes_a_dead_ones_leftover(home):
    graph = home / "onnx" / "being-written.onnx"
    live = temp_path(graph)  # this process: alive
    live.write_bytes(b"half")
    dead = graph.with_name(f".{graph.name}.999999999-0123abcd.tmp.onnx")
    dead.write_bytes(b"half")
    cache.clear()
    assert live.exists() and not dead.exists()
    os.replace(live, graph)  # the writer finishes as if nothing had happened


def test_cli_lists_and_clears(home, capsys):
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(home) in out and "eccv16.pth" in out and "111.blob" in out
    assert re.search(r"total +14\.8 KiB", out) and "COLORIZER_CACHE_LIMIT" in out
    assert main(["cache", "clear", "--blobs"]) == 0
    assert "removed 4 entries (10.0 KiB)" in capsys.readouterr().out
    assert [e.kind for e in cache.entries()] == ["weights"]
    assert main(["cache", "clear", "--weights"]) == 0
    assert cache.entries() == []
    assert main(["cache", "list", "--weights"]) == 2


@pytest.mark.skipif(not runtime.openvino_available(), reason="OpenVINO is not installed")
def test_openvino_runs_trim_the_cache_to_its_limit(home, monkeypatch, constant_weights):
    from colorizer.pipeline import Colorizer

    monkeypatch.setenv(cache.LIMIT_ENV, "1")  # everything not in use goes
    colorizer = Colorizer(
        "test-constant", weights=constant_weights, size=64, device="cpu", backend="openvino"
    )
    colorizer.colorize(np.full((16, 16), 100, np.uint8))
    kept = cache.entries()
    assert {e.kind for e in kept} == {"weights", "export", "blob"}  # the new ones, in use
    assert not any(e.path.name in ("old-256.onnx", "111.blob", "222.blob") for e in kept)
