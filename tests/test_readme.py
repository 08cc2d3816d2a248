"""The README's examples, run as written on the sample photo the repo ships (issue 22).

Every line of the README's ``bash`` blocks is either run (in a fresh folder holding only
``old.jpg``, through the shell, on the installed ``colorize``) and its outputs checked, or named
in ``SKIPPED`` with the reason. A new README command is run from the day it is written, so a
wrong one fails here. The ``python`` block runs too, with the names it leaves to the reader
(``pil_image``, ``array``, ``a``, ``b``, ``c``) bound to the sample photo.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLE = ROOT / "docs" / "examples" / "old.jpg"
SCRIPTS = sysconfig.get_path("scripts")

# Commands not run, by how they start, with why.
SKIPPED = {
    "pip ": "installs packages (network)",
    "bash .ci/lock": "resolves every dependency again (network)",
    "python -m pytest": "the test suite, which this check is part of",
    "colorize app": "starts a server and opens a browser",
    "colorize serve": "starts a server",
    "curl ": "talks to the server started above",
    "colorize models pull": "downloads weights (network)",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.M | re.S)


def commands() -> list[str]:
    """The commands, each once (the first time it is written, with its comment)."""
    lines = [line.strip() for block in blocks("bash") for line in block.splitlines()]
    unique = {code(line): line for line in reversed(lines) if code(line)}
    return list(reversed(unique.values()))


def code(line: str) -> str:
    """``line`` less its comment (a ``#`` inside quotes is not one)."""
    return shlex.join(shlex.split(line, comments=True))


def skip_reason(command: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if command.startswith(start)), None)


def expected_outputs(command: str) -> list[str]:
    """The files the README says a command writes: ``-o``/``--out`` FILE, else ``colorize
    image X.jpg`` -> ``X_colorized.png`` beside it, plus any ``# writes NAME`` comment."""
    words = shlex.split(command, comments=True)
    comment = command.partition(" # ")[2]
    outputs = [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("-o", "--out")]
    if not outputs and words[:2] == ["colorize", "image"]:
        inputs = [w for w in words[2:] if not w.startswith("-") and w.endswith(".jpg")]
        outputs = [f"{Path(w).stem}_colorized.png" for w in inputs]
    outputs += re.findall(r"writes (\S+\.\w+)", comment)
    return sorted(set(outputs))


@pytest.fixture
def folder(tmp_path) -> Path:
    """A fresh folder holding only the sample photo, as a user's would."""
    shutil.copy(SAMPLE, tmp_path / "old.jpg")
    return tmp_path


def user_env() -> dict[str, str]:
    """The test environment less the suite's own backend choice (a user runs the default);
    this Python's scripts first on PATH. The cache stays the session's private one."""
    env = {k: v for k, v in os.environ.items() if k != "COLORIZER_BACKEND"}
    env["PATH"] = SCRIPTS + os.pathsep + env.get("PATH", "")
    return env


def test_the_sample_photo_is_small_and_grey():
    with Image.open(SAMPLE) as photo:
        assert photo.format == "JPEG" and photo.mode == "L" and photo.width == 320
    assert SAMPLE.stat().st_size < 60_000


def test_every_readme_command_is_run_or_skipped_with_a_reason():
    found = commands()
    assert any(c.startswith("colorize image") for c in found)  # the extraction works
    runnable = [c for c in found if skip_reason(c) is None]
    assert all(c.startswith("colorize ") for c in runnable), runnable  # nothing unforeseen


RUN = [c for c in commands() if skip_reason(c) is None]


@pytest.mark.parametrize("command", RUN, ids=[code(c) for c in RUN])
def test_readme_command_works_as_written(command, folder):
    if shutil.which("colorize", path=SCRIPTS) is None:
        pytest.skip("the colorize command is not installed (pip install -e .)")
    done = subprocess.run(
        command, shell=True, cwd=folder, env=user_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    outputs = expected_outputs(command)
    assert outputs, f"say in README.md what {command!r} writes, or teach expected_outputs"
    for name in outputs:
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
        if name.endswith(".png"):
            with Image.open(folder / name) as out, Image.open(SAMPLE) as photo:
                assert out.size == photo.size and out.mode == "RGB"


def test_readme_python_example_works_as_written(folder):
    (example,) = blocks("python")
    prelude = (
        "import numpy as np\nfrom PIL import Image\n"
        "pil_image = Image.open('old.jpg')\narray = a = b = c = np.asarray(pil_image)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLORIZER_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", prelude + example], cwd=folder, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with Image.open(folder / "out" / "old.png") as out:
        assert out.size == (320, 246) and out.mode == "RGB"
