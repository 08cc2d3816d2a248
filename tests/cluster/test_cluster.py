"""`--engine ray` on a local Ray (2 CPUs, no dashboard, 127.0.0.1 only): the same outputs as the
local engine, bad files reported, a killed actor or driver costing nothing.

The workers are separate processes that do not import this file, so the tests use a model they
can build themselves: the shipped colornet-v1 at a small side.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer.cli import main

if importlib.util.find_spec("ray") is None:
    pytest.skip("ray is not installed: pip install 'colorizer[cluster]'", allow_module_level=True)

from tests.video.clips import audio_packets, decoded_frames, write_clip

MODEL = ["--model", "colornet-v1", "--size", "64", "--device", "cpu"]
ACTOR_CLASS = "ColorizeActor"


@pytest.fixture(scope="module", autouse=True)
def one_thread_like_the_actors():
    """Ray gives each actor one CPU, and so one PyTorch thread. PyTorch's convolutions round a
    few pixels one level differently at another thread count, so the local engine the cluster
    is compared with runs on one thread too (before any module fixture colorizes)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray for the module, shut down after it."""
    from colorizer.cluster import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray.get_runtime_context().gcs_address


def make_photos(folder: Path, count: int, side: int = 32, broken: bool = False) -> Path:
    """Grey photos of several sizes and formats, some in a sub-folder."""
    rng = np.random.default_rng(count)
    (folder / "sub").mkdir(parents=True)
    for index in range(count):
        height, width = side * 3 // 4 + index, side
        ramp = np.linspace(0, 255, height * width).reshape(height, width)
        grey = np.clip(ramp + rng.normal(0, 20, ramp.shape), 0, 255).astype(np.uint8)
        place = folder / "sub" if index % 3 == 0 else folder
        Image.fromarray(grey).save(place / f"p{index:02d}.{'jpg' if index % 2 else 'png'}")
    if broken:
        (folder / "broken.jpg").write_text("this is not a JPEG")
    return folder


def colorize(*args) -> int:
    return main(["image", *map(str, args), "-r", *MODEL, "-q"])


def outputs(folder: Path) -> dict[str, bytes]:
    """The finished outputs; not the hidden temp files of writes still running or killed."""
    finished = (p for p in sorted(folder.rglob("*.png")) if not p.name.startswith("."))
    return {str(p.relative_to(folder)): p.read_bytes() for p in finished}


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    """12 photos and one file that is no image, with the local engine's outputs."""
    folder = make_photos(tmp_path_factory.mktemp("album") / "album", 12, broken=True)
    local = folder.parent / "local"
    assert colorize(folder, "-o", local) == 1  # the broken file fails
    return folder, outputs(local)


def test_photos_match_the_local_engine_and_a_bad_file_is_reported(
    ray_address, album, tmp_path, capsys
):
    folder, expected = album
    out = tmp_path / "out"

    assert colorize(folder, "-o", out, "--engine", "ray", "--actors", "2") == 1

    assert len(expected) == 12
    assert outputs(out) == expected  # byte for byte
    err = capsys.readouterr().err
    assert "12 colorized, 1 failed" in err
    assert f"{folder / 'broken.jpg'}: cannot read image file" in err
    csv = (out / "colorize-failures.csv").read_text().splitlines()
    assert csv[0] == "file,reason"
    assert len(csv) == 2
    assert csv[1].startswith(f"{folder / 'broken.jpg'},") and "not an image" in csv[1]

    # A rerun skips every output that exists.
    assert colorize(folder, "-o", out, "--engine", "ray") == 1
    assert "0 colorized, 12 skipped" in capsys.readouterr().err


def gcs_actors(class_part: str) -> list[dict]:
    """Ray's records of the actors whose class names contain ``class_part``. Read from the GCS
    through ``ray._private.state``: the public state API needs the dashboard, which is off."""
    from ray._private import state

    return [a for a in state.actors().values() if class_part in a["ActorClassName"]]


def kill_actor(actor_id: str) -> None:
    import ray
    from ray._raylet import ActorID

    worker = ray._private.worker.global_worker
    handle = worker.core_worker.get_actor_handle(ActorID.from_hex(actor_id))
    ray.kill(handle, no_restart=False)


def test_a_killed_actor_is_replaced_and_nothing_is_lost_or_repeated(ray_address, tmp_path):
    from colorizer.cluster import colorize_images

    folder = make_photos(tmp_path / "big", 12, side=400)
    assert colorize(folder, "-o", tmp_path / "local") == 0
    expected = outputs(tmp_path / "local")
    killed: list[str] = []

    def kill_one(finished: int, total: int) -> None:
        if not killed:  # after the first batch: the other batches are running or queued
            victim = next(a for a in gcs_actors(ACTOR_CLASS) if a["State"] == "ALIVE")
            killed.append(victim["ActorID"])
            kill_actor(victim["ActorID"])

    report = colorize_images(
        str(folder),
        tmp_path / "out",
        recursive=True,
        model="colornet-v1",
        size=64,
        device="cpu",
        actors=2,
        batch_size=1,
        on_progress=kill_one,
    )

    assert killed
    restarts = {a["ActorID"]: a["NumRestarts"] for a in gcs_actors(ACTOR_CLASS)}
    assert restarts[killed[0]] >= 1  # replaced: Ray Data restarts its actors
    done = [str(p.relative_to(tmp_path / "out")) for p in report.done]
    assert sorted(done) == sorted(expected)  # each photo once, none lost
    assert report.skipped == report.failed == []
    assert outputs(tmp_path / "out") == expected
    assert leftovers(tmp_path / "out") == []


def test_a_rerun_after_a_killed_driver_skips_what_is_done(ray_address, tmp_path):
    from colorizer.cluster import colorize_images

    folder = make_photos(tmp_path / "big", 16, side=400)
    assert colorize(folder, "-o", tmp_path / "local") == 0
    expected = outputs(tmp_path / "local")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "colorizer.cli", "image", str(folder), "-r", "-o", str(out)]
    driver = subprocess.Popen(
        [*command, *MODEL, "-q", "--engine", "ray", "--address", ray_address, "--batch-size", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while len(outputs(out)) < 3 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.poll() is None, "the driver ended before it could be killed"
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    wait_until_no_actor_of_the_killed_job_is_alive(timeout_s=30)
    before = set(outputs(out))
    assert 3 <= len(before) < len(expected)

    report = colorize_images(
        str(folder), out, recursive=True, model="colornet-v1", size=64, device="cpu"
    )

    assert {str(p.relative_to(out)) for p in report.skipped} == before
    assert {str(p.relative_to(out)) for p in report.done} == set(expected) - before
    assert report.failed == []
    assert outputs(out) == expected
    assert leftovers(out) == []  # the killed writers' temp files are gone


def wait_until_no_actor_of_the_killed_job_is_alive(timeout_s: float) -> None:
    """Ray ends a dead driver's actors: wait for it, so that none writes after the check."""
    import ray

    own_job = ray.get_runtime_context().get_job_id()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [
            a for a in gcs_actors(ACTOR_CLASS) if a["State"] != "DEAD" and a["JobID"] != own_job
        ]
        if not alive:
            return
        time.sleep(0.2)
    pytest.fail("the killed driver's actors are still alive")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def colorize_film(clip: Path, out: Path, *extra: str) -> int:
    options = ["--segment-seconds", "0.5", "--batch-size", "4", "-q"]
    return main(["video", str(clip), "-o", str(out), *MODEL, *options, *extra])


@pytest.mark.parametrize("consistency", ["0", "0.7"])
def test_film_matches_the_local_engine(ray_address, clip, tmp_path, consistency):
    local, on_ray = tmp_path / "local.mp4", tmp_path / "ray.mp4"
    assert colorize_film(clip, local, "--consistency", consistency) == 0
    assert colorize_film(clip, on_ray, "--consistency", consistency, "--engine", "ray") == 0

    frames, expected = decoded_frames(on_ray), decoded_frames(local)
    assert [pts for pts, _ in frames] == [pts for pts, _ in expected]
    assert audio_packets(on_ray) == audio_packets(clip) == audio_packets(local)
    import av

    with av.open(str(on_ray)) as result, av.open(str(local)) as reference:
        assert result.metadata == reference.metadata
        assert result.duration == reference.duration
    # 24 frames at 12 fps in segments of 6. The first segment starts with an empty consistency
    # memory on both engines; later ones only on Ray, so they match only without consistency.
    same = len(frames) if consistency == "0" else 6
    for (_, a), (_, b) in zip(frames[:same], expected[:same], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not on_ray.with_name("ray.mp4.parts").exists()


def test_uris_are_read_and_written_through_their_file_system(ray_address, album, tmp_path):
    """fsspec's ``local://`` is a file system pyarrow does not know: the URI path end to end."""
    from colorizer.cluster import colorize_images

    folder, expected = album
    out = tmp_path / "out"
    report = colorize_images(f"local://{folder}", f"local://{out}", recursive=True, **KEYWORDS)

    assert outputs(out) == expected
    assert len(report.done) == 12
    assert [str(src) for src, _ in report.failed] == [f"local://{folder / 'broken.jpg'}"]
    assert f"local://{folder / 'broken.jpg'}" in report.failed[0][1]
    assert (out / "colorize-failures.csv").is_file()


KEYWORDS = {"model": "colornet-v1", "size": 64, "device": "cpu"}


def test_engine_options_need_the_ray_engine(capsys, tmp_path):
    assert main(["image", str(tmp_path), "--address", "127.0.0.1:6379", "-q"]) == 2  # a usage error
    assert "--address and --failures are for --engine ray" in capsys.readouterr().err


def test_workers_follow_the_cluster(tmp_path):
    from colorizer.cluster.settings import ClusterOptions, ColorizerSpec, plan_workers
    from colorizer.errors import ColorizerError

    cpu, gpu = ColorizerSpec(device="cpu"), ColorizerSpec()
    assert plan_workers(gpu, ClusterOptions(), cpus=8, gpus=2).num_gpus == 1
    assert plan_workers(gpu, ClusterOptions(), cpus=8, gpus=2).count == 2
    assert plan_workers(cpu, ClusterOptions(), cpus=8, gpus=2).count == 8
    assert plan_workers(cpu, ClusterOptions(actors=3), cpus=8, gpus=0).count == 3
    with pytest.raises(ColorizerError, match="no GPU"):
        plan_workers(ColorizerSpec(device="cuda"), ClusterOptions(), cpus=8, gpus=0)
    relative = ColorizerSpec(weights="w.safetensors")
    assert relative.weights == str(Path("w.safetensors").resolve())


def test_signed_and_recorded_photos_and_film_on_ray(ray_address, clip, tmp_path):
    """--sign-key/--sign-cert/--record reach the image actors, and the film gets its provenance
    (XMP, a C2PA manifest, the sidecar) on the driver."""
    pytest.importorskip("c2pa")
    from colorizer.provenance import xmp
    from colorizer.provenance.identity import throwaway_identity
    from colorizer.provenance.inspect import VERIFIED, inspect

    signing, root = throwaway_identity(tmp_path / "identity")
    flags = ["--sign-key", signing.key, "--sign-cert", signing.cert, "--record"]
    photos, out = make_photos(tmp_path / "photos", 2), tmp_path / "out"
    assert colorize(photos, "-o", out, "--engine", "ray", "--actors", "1", *flags) == 0
    film = tmp_path / "film.mp4"
    assert colorize_film(clip, film, "--consistency", "0", "--engine", "ray", *map(str, flags)) == 0

    written = [out / name for name in outputs(out)]
    assert len(written) == 2
    for path in [*written, film]:
        found = inspect(path, root)
        assert found.exit_code == VERIFIED, found.lines()
        assert found.credentials is not None and found.credentials.state == "Trusted"
        assert found.record["digital_source_type"] == xmp.DIGITAL_SOURCE_TYPE
        assert path.with_name(path.name + ".json").is_file()  # --record's sidecar


def test_the_spec_carries_provenance_to_the_workers(tmp_path, monkeypatch):
    """What a Ray worker builds from the spec it is sent (no Ray needed to check it)."""
    import argparse
    import pickle

    pytest.importorskip("c2pa")
    from colorizer.cluster.settings import ColorizerSpec
    from colorizer.errors import ColorizerError
    from colorizer.provenance import CERT_ENV, KEY_ENV, Provenance, Signing
    from colorizer.provenance.identity import throwaway_identity

    signing, _ = throwaway_identity(tmp_path / "identity")
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(model="colornet-v1", weights=None, size=64, device="cpu")
    relative = Provenance(Signing(Path("identity/key.pem"), Path("identity/chain.pem")), True)
    spec = pickle.loads(pickle.dumps(ColorizerSpec.from_args(args, relative)))  # as Ray sends it
    assert (spec.sign_key, spec.sign_cert) == (str(signing.key), str(signing.cert))  # absolute
    monkeypatch.chdir("/")  # a worker starts elsewhere
    colorizer = spec.load()
    assert colorizer.provenance == Provenance(signing, record=True)
    assert colorizer.making().provenance.signing == signing

    unsigned = ColorizerSpec.from_args(args)
    assert unsigned.load().provenance == Provenance()
    monkeypatch.setenv(KEY_ENV, str(signing.key))  # no identity sent: the worker's environment
    monkeypatch.setenv(CERT_ENV, str(signing.cert))
    assert unsigned.load().provenance.signing == signing
    with pytest.raises(ColorizerError, match="no --sign-cert"):
        ColorizerSpec(sign_key=str(signing.key))


def test_film_with_keyframes_matches_the_local_engine_where_a_segment_starts_on_one(
    ray_address, clip, tmp_path, monkeypatch
):
    """Keyframes reach the workers as absolute paths (given relative to this folder here, read
    from another by the workers). A segment that starts on a keyframe is identical on both
    engines; the others start with an empty memory of the frame before on Ray (module docstring
    of ``colorizer.cluster.video``), which moves their colours a little."""
    from colorizer import imageio
    from tests.video.clips import moving_shapes

    keys = tmp_path / "keys"
    keys.mkdir()
    for index in (0, 12):  # segments of 6 frames: segments 0 and 2 start on a keyframe
        imageio.write_image(keys / f"f{index:06d}.png", moving_shapes(index) / np.float32(255))
    monkeypatch.chdir(tmp_path)
    local, on_ray = tmp_path / "local.mp4", tmp_path / "ray.mp4"
    assert colorize_film(clip, local, "--keyframes", "keys") == 0
    assert colorize_film(clip, on_ray, "--keyframes", "keys", "--engine", "ray") == 0
    frames, expected = decoded_frames(on_ray), decoded_frames(local)
    assert [pts for pts, _ in frames] == [pts for pts, _ in expected]
    for index, ((_, a), (_, b)) in enumerate(zip(frames, expected, strict=True)):
        if index // 6 in (0, 2):
            np.testing.assert_array_equal(a, b)
        else:  # 0.54 to 0.71 levels of 255 when written
            assert np.abs(a.astype(int) - b.astype(int)).mean() < 2
    assert not on_ray.with_name("ray.mp4.parts").exists()
