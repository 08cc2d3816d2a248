"""Nothing is sent anywhere: OpenVINO's usage telemetry is off by construction (issue 22)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from colorizer import runtime

# Run in a fresh interpreter: counts forks, records (and refuses) every network connection, in
# the forked children too, colorizes a tiny image on OpenVINO, and reports what it saw.
SCRIPT = r"""
import json, os, socket, sys

report, seen = sys.argv[1], {"forks": 0}
os.register_at_fork(before=lambda: seen.__setitem__("forks", seen["forks"] + 1))


def refuse(*args, **kwargs):
    with open(report + ".net", "a") as f:  # a forked child cannot tell us otherwise
        f.write(repr(args[1:2]) + "\n")
    raise OSError("network use refused by the privacy test")


socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse

import numpy as np
from colorizer import Colorizer

colorizer = Colorizer(backend="openvino", device="cpu")
out = colorizer.colorize(np.full((24, 32), 128, np.uint8))
seen["network"] = colorizer.network.name
seen["shape"] = list(out.shape)
seen["telemetry"] = sorted(m for m in sys.modules if m.startswith("openvino_telemetry"))
with open(report, "w") as f:
    json.dump(seen, f)
"""


@pytest.mark.skipif(not runtime.openvino_available(), reason="OpenVINO is not installed")
def test_openvino_sends_nothing_and_writes_nothing_outside_the_cache(tmp_path):
    home, report = tmp_path / "home", tmp_path / "report.json"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLORIZER_", "XDG_"))}
    env.pop("CI", None)  # CI=true happens to turn the telemetry off: test without it
    for ci in ("TF_BUILD", "JENKINS_URL"):  # the other two variables it takes as CI
        env.pop(ci, None)
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(report.read_text())
    assert seen["network"] == "openvino" and seen["shape"] == [24, 32, 3]
    cache = home / ".cache" / "colorizer"
    written = sorted(
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and cache not in p.parents
    )
    assert not (home / "intel" / "openvino_ga_cid").exists()
    assert written == []  # nothing in the home outside the colorizer cache
    assert any(cache.rglob("*.onnx"))  # the run really exported to the default cache
    assert seen["forks"] == 0  # no child process (the telemetry's sender is one)
    assert not Path(f"{report}.net").exists()  # not even an attempt to connect
    assert seen["telemetry"] == []
