"""The Ray engine: photos per second against the local engine, its costs, two nodes, films.

Run:  python -m benchmarks cluster [--copies 4] [--model colornet-v2] [--skip-two-node]
                                    [--skip-video] [--skip-photos] [--segment-seconds 2]

Photos: the 9 B&W photos of ``../shared/data/bw`` (0.5 to 2.1 MP), each copied ``--copies``
times under another name, colorized with ``--model`` at its own size into PNGs:

(a) local engine, in this process: the model load, then ``batch.run_jobs`` (files per second);
(b) Ray on this machine (``ray_session(num_cpus=2)``), 1 and then 2 actors, batch size 1: the
    time to start Ray, the first result (actor start and model load included), the rate
    afterwards, and Ray's cost per file (the 1-actor time per file minus the local one);
(c) a two-node Ray cluster on 127.0.0.1 (``ray start --head`` and ``ray start --address``, one
    CPU each, the second with its own resource): the same job, with where its actors ran.
Every Ray run's outputs are compared byte for byte with (a)'s.

Films (``--skip-video`` leaves them out): three clips of ``../shared/data/video`` colorized by
both engines with the default flow propagation (strength 0.7) in segments of
``--segment-seconds``; the warping error (``colorizer.video.metrics``, at the work resolution)
of each output, over all frame pairs and over the pairs that straddle a segment start, where the
Ray engine's consistency memory starts empty.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import BW, VIDEO, Results, Stopwatch, benchmark, option, require

PHOTOS = BW
CLIPS = ["04_film_tears_of_steel_scene_cuts_audio", "06_outdoor_airplane_pan_audio_360p"]
CLIPS += ["07_traffic_highway_bridge_360p"]
# `ray start` with one change: Ray turns 127.0.0.1 into the machine's outward address (and its
# servers then listen on every interface); this keeps it, so both nodes listen on 127.0.0.1.
RAY_START_ON_LOOPBACK = (
    "import sys; import ray._private.services as services; "
    "services.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())"
)
HEAD_PORT = 6390
TINY = 384  # photos in the measurement of Ray's own costs


def photo_set(folder: Path, copies: int) -> Path:
    folder.mkdir(parents=True)
    for copy in range(copies):
        for photo in sorted(PHOTOS.iterdir()):
            shutil.copy(photo, folder / f"{photo.stem}-{copy}{photo.suffix}")
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def run_local(photos: Path, out: Path, model: str, size: int | None = None) -> dict[str, float]:
    """The local engine's per-photo work (``Colorizer.colorize_file``, as ``batch.run_jobs``
    runs it), timed photo by photo so that its steady rate compares with Ray's."""
    from colorizer.batch import find_inputs, plan_jobs
    from colorizer.pipeline import Colorizer

    watch = Stopwatch()
    colorizer = Colorizer(model, device="cpu", size=size)
    loaded = watch.elapsed()
    stamps = []
    for job in plan_jobs(find_inputs([str(photos)], False)[0], out, ".png"):
        colorizer.colorize_file(job.src, job.dst)
        stamps.append(watch.elapsed())
    return {
        "files": len(stamps),
        "load_s": loaded,
        "total_s": stamps[-1],
        "first_s": stamps[0],
        "steady_per_file_s": (stamps[-1] - stamps[0]) / (len(stamps) - 1),
    }


def run_ray(photos: Path, out: Path, model: str, **options) -> dict[str, float]:
    """One job on Ray; the time to the first result and the rate after it."""
    from colorizer.cluster import colorize_images

    stamps: list[tuple[float, int]] = []
    watch = Stopwatch()
    report = colorize_images(
        str(photos),
        out,
        model=model,
        device="cpu",
        on_progress=lambda finished, total: stamps.append((watch.elapsed(), finished)),
        **({"batch_size": 1} | options),
    )
    ended = watch.elapsed()
    assert not report.failed and not report.skipped, report.failed
    files = len(report.done)
    return {
        "files": files,
        "total_s": ended,
        "first_s": stamps[0][0],
        "steady_per_file_s": (stamps[-1][0] - stamps[0][0]) / (files - stamps[0][1]),
    }


def overhead_benchmark(work: Path, results: Results) -> None:
    """Ray's cost per photo where the photo itself costs little: 64 x 48 photos, colornet-v1
    at 64, one actor, 1 and 8 photos per call."""
    import numpy as np
    from PIL import Image

    from colorizer.cluster import ray_session

    photos = work / "tiny"
    photos.mkdir()
    ramp = np.linspace(0, 255, 48 * 64).reshape(48, 64).astype(np.uint8)
    for index in range(TINY):
        Image.fromarray(np.roll(ramp, index, axis=1)).save(photos / f"t{index:03d}.png")
    local = run_local(photos, work / "tiny-local", "colornet-v1", size=64)
    print(f"\n{TINY} photos of 64 x 48, colornet-v1 at 64, one actor")
    print("| run | photos/s (steady) | per photo s | first result s | total s |")
    print("|---|---|---|---|---|")
    tiny = {"photos": "64x48", "model": "colornet-v1", "size": 64}
    print_row("local engine", local, results, tiny)
    with ray_session(num_cpus=2):
        for batch in (1, 8):
            row = run_ray(
                photos, work / f"tiny-{batch}", "colornet-v1", size=64, actors=1, batch_size=batch
            )
            print_row(f"Ray, batch size {batch}", row, results, tiny)
            cost = (row["steady_per_file_s"] - local["steady_per_file_s"]) * 1000
            print(f"Ray's cost per photo at batch size {batch}: {cost:.1f} ms")
            results.add(tiny | {"run": "Ray's cost per photo", "batch": batch}, ms=cost)
        # Every output exists: the actors only look, so this is the rate of the control path
        # (driver, Ray Data, one row per photo each way).
        for batch in (8, 32):
            files_per_s = skipped_rate(photos, work / "tiny-8", batch)
            print(f"rerun with every output there, batch size {batch}: {files_per_s:.0f} files/s")
            case = tiny | {"run": "rerun, every output there", "batch": batch}
            results.add(case, files_per_s=files_per_s)


def skipped_rate(photos: Path, out: Path, batch: int) -> float:
    """Files per second after the first batch of a run that finds every output there."""
    from colorizer.cluster import colorize_images

    stamps: list[tuple[float, int]] = []
    watch = Stopwatch()
    report = colorize_images(
        str(photos),
        out,
        model="colornet-v1",
        size=64,
        device="cpu",
        actors=1,
        batch_size=batch,
        on_progress=lambda finished, total: stamps.append((watch.elapsed(), finished)),
    )
    assert not report.done and not report.failed
    return (len(report.skipped) - stamps[0][1]) / (stamps[-1][0] - stamps[0][0])


def actor_nodes() -> set[str]:
    """Nodes that ran a colorizing actor (``ray._private.state``: the public state API needs
    the dashboard, which is off)."""
    from ray._private import state

    return {
        actor["Address"]["NodeID"][:8]
        for actor in state.actors().values()
        if "ColorizeActor" in actor["ActorClassName"]
    }


def ray_start(*arguments: str) -> subprocess.Popen:
    environment = os.environ | {"RAY_AUTH_MODE": "token", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", RAY_START_ON_LOOPBACK, "start", "--block", *arguments],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def two_node_cluster(photos: Path, out: Path, model: str) -> dict[str, float | list[str]]:
    from colorizer.cluster import ray_session

    temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))
    head = ray_start(
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={HEAD_PORT}",
        "--num-cpus=1",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    )
    nodes = [head]
    try:
        time.sleep(10)  # the head's GCS must be up before the second node joins
        nodes.append(
            ray_start(
                f"--address=127.0.0.1:{HEAD_PORT}",
                "--num-cpus=1",
                '--resources={"second_node": 1}',
                "--disable-usage-stats",
            )
        )
        os.environ["RAY_AUTH_MODE"] = "token"
        address = f"127.0.0.1:{HEAD_PORT}"
        with ray_session(address) as ray:
            wait_for_nodes(ray, 2)
            result: dict[str, float | list[str]] = {
                **run_ray(photos, out, model, address=address),
                "nodes_with_actors": len(actor_nodes()),
                "listening_elsewhere": sockets_off_loopback(nodes),
            }
    finally:
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGTERM)  # `ray start --block` stops what it started
            node.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)
    return result


def wait_for_nodes(ray, count: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster has fewer than {count} nodes")
        time.sleep(0.5)


def sockets_off_loopback(nodes: list[subprocess.Popen]) -> list[str]:
    """Listening sockets of the nodes' processes on anything but 127.0.0.1 (`ss -ltnp`)."""
    groups = {node.pid for node in nodes}
    listed = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    found = []
    for line in listed.splitlines():
        local = line.split()[3]
        pids = [int(part[4:]) for part in line.replace(",", " ").split() if part[:4] == "pid="]
        ours = any(_group(pid) in groups for pid in pids)
        if ours and not local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")):
            found.append(local)
    return found


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def photos_benchmark(work: Path, args: argparse.Namespace, results: Results) -> None:
    from colorizer.cluster import ray_session

    photos = photo_set(work / "photos", args.copies)
    local = run_local(photos, work / "local", args.model)
    expected = outputs(work / "local")
    print(f"\n{local['files']} photos, {args.model}, PNG out")
    print("| run | photos/s (steady) | per photo s | first result s | total s |")
    print("|---|---|---|---|---|")
    print_row(f"local engine (model load {local['load_s']:.1f} s)", local, results)
    watch = Stopwatch()
    with ray_session(num_cpus=2):
        start_s = watch.elapsed()
        rows = {n: run_ray(photos, work / f"ray-{n}", args.model, actors=n) for n in (1, 2)}
    for actors, row in rows.items():
        assert outputs(work / f"ray-{actors}") == expected, "Ray's outputs differ"
        print_row(f"Ray on this machine, {actors} actor{'s' if actors > 1 else ''}", row, results)
    print(f"\nRay start-up (local, 2 CPUs): {start_s:.1f} s")
    overhead = rows[1]["steady_per_file_s"] - local["steady_per_file_s"]
    print(f"Ray's cost per file (1 actor minus local, steady): {overhead * 1000:.0f} ms")
    results.add({"run": "Ray start-up (local, 2 CPUs)"}, seconds=start_s)
    results.add({"run": "Ray's cost per file"}, ms=overhead * 1000)
    if not args.skip_two_node:
        two_nodes = two_node_cluster(photos, work / "two-nodes", args.model)
        assert outputs(work / "two-nodes") == expected, "the two-node outputs differ"
        print_row("two-node cluster on 127.0.0.1 (1 CPU each), 2 actors", two_nodes, results)
        print(
            f"two nodes: actors ran on {two_nodes['nodes_with_actors']} nodes; sockets off "
            f"127.0.0.1: {two_nodes['listening_elsewhere'] or 'none'}"
        )
    print("every Ray run's outputs are byte-identical to the local engine's")
    read = sum(p.stat().st_size for p in photos.iterdir()) / local["files"]
    written = sum(len(data) for data in expected.values()) / local["files"]
    print(f"bytes per photo: {read / 1e6:.2f} MB read, {written / 1e6:.2f} MB written")


def print_row(name: str, row: dict, results: Results, case: dict | None = None) -> None:
    per = row["steady_per_file_s"]
    print(f"| {name} | {1 / per:.2f} | {per:.3f} | {row['first_s']:.1f} | {row['total_s']:.1f} |")
    results.add((case or {}) | {"run": name}, photos_per_s=1 / per, **row)


def film_benchmark(work: Path, args: argparse.Namespace, results: Results) -> None:
    from colorizer.cluster import ray_session
    from colorizer.pipeline import Colorizer
    from colorizer.video.colorize import VideoOptions

    options = VideoOptions(segment_seconds=args.segment_seconds)
    colorizer = Colorizer("colornet-v1", device="cpu")
    print(f"\nfilms: colornet-v1, flow propagation 0.7, segments of {args.segment_seconds} s")
    print("| clip | frames | segment starts | warping error local / Ray | at segment starts |")
    print("|---|---|---|---|---|")
    with ray_session(num_cpus=2):
        for name in CLIPS:
            film_row(work, VIDEO / f"{name}.mp4", colorizer, options, results)


def film_row(work: Path, clip: Path, colorizer, options, results: Results) -> None:
    """One clip through both engines, and the warping error of each result."""
    from colorizer.cluster.settings import ColorizerSpec
    from colorizer.cluster.video import colorize_video as colorize_on_ray
    from colorizer.video.colorize import colorize_video, frames_per_segment
    from colorizer.video.source import probe

    local, on_ray = work / f"{clip.stem}-local.mp4", work / f"{clip.stem}-ray.mp4"
    colorize_video(colorizer, clip, local, options)
    colorize_on_ray(ColorizerSpec("colornet-v1", device="cpu"), clip, on_ray, options)
    per = frames_per_segment(probe(clip), options)
    overall, starts, count = warping_errors(clip, [local, on_ray], per)
    print(
        f"| {clip.stem} | {count} | {(count - 1) // per} | {overall[0]:.3f} / {overall[1]:.3f} "
        f"| {starts[0]:.3f} / {starts[1]:.3f} |"
    )
    results.add(
        {"clip": clip.stem, "model": "colornet-v1"},
        frames=count,
        warping_error_local=overall[0],
        warping_error_ray=overall[1],
        at_segment_starts_local=starts[0],
        at_segment_starts_ray=starts[1],
    )


def warping_errors(clip: Path, films: list[Path], per_segment: int):
    """Each film's warping error over all pairs and over the pairs ending on a segment's
    first frame, at the work resolution; and the frame count."""
    import numpy as np

    from colorizer import planes
    from colorizer.video import flow
    from colorizer.video.consistency import DEFAULT_WORK_SIDE
    from colorizer.video.evaluate import clip_frames
    from colorizer.video.metrics import WarpingError

    overall, at_starts = WarpingError(), WarpingError()
    frames = zip(
        clip_frames(clip, DEFAULT_WORK_SIDE, None),
        *(clip_frames(film, DEFAULT_WORK_SIDE, None) for film in films),
        strict=True,
    )
    previous = None
    count = 0
    for index, (source, *coloured) in enumerate(frames):
        grey = flow.grey_u8(planes.lightness_image(source))
        abs_ = {str(k): planes.rgb_to_lab_image(rgb)[..., 1:] for k, rgb in enumerate(coloured)}
        overall.add(grey, abs_)
        if index % per_segment == 0 and previous is not None:
            at_starts.previous_grey, at_starts.previous_ab = previous
            at_starts.add(grey, abs_)
        previous = grey, {k: np.asarray(v, np.float32) for k, v in abs_.items()}
        count += 1
    means = overall.result(), at_starts.result()
    return (
        [means[0][str(k)] for k in range(len(films))],
        [means[1][str(k)] for k in range(len(films))],
        count,
    )


@benchmark(
    "cluster",
    option("--copies", type=int, default=4, help="copies of the 9 photos (4)"),
    option("--model", default="colornet-v2"),
    option("--skip-two-node", action="store_true"),
    option("--skip-video", action="store_true"),
    option("--skip-photos", action="store_true"),
    option("--segment-seconds", type=float, default=2.0),
)
def cluster(args: argparse.Namespace, results: Results) -> None:
    # Up front: a missing photo or clip skips the run before an hour of it is spent.
    if not args.skip_photos:
        require(PHOTOS)
    if not args.skip_video:
        for name in CLIPS:
            require(VIDEO / f"{name}.mp4")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        if not args.skip_photos:
            overhead_benchmark(Path(folder), results)
            photos_benchmark(Path(folder), args, results)
        if not args.skip_video:
            film_benchmark(Path(folder), args, results)
