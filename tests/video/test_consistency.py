"""Video: flow propagation, the warping error, the recurrent refiner, its training family, CLI."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from colorizer.cli import main
from colorizer.models.refiner import VideoRefiner, warp_tensor
from colorizer.video import flow
from colorizer.video.colorize import VideoOptions, colorize_video
from colorizer.video.consistency import FlowPropagator
from colorizer.video.metrics import warping_error
from colorizer.video.refiner import RefinerPropagator
from tests.video.clips import (
    FRAMES,
    OPTIONS,
    assert_resume_matches_clean_run,
    decoded_frames,
    write_clip,
)

HEIGHT, WIDTH = 48, 64


def texture(seed: int = 0) -> np.ndarray:
    """A smooth random grey texture, larger than the frames so it can slide."""
    rng = np.random.default_rng(seed)
    noise = rng.random((HEIGHT // 4, (WIDTH + 64) // 4)).astype(np.float32)
    big = cv2.resize(noise, (WIDTH + 64, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return np.clip(30 + 50 * big, 0, 100).astype(np.float32)


def translating(count: int, step: int = 2) -> list[np.ndarray]:
    """L* frames of a texture sliding left by ``step`` pixels per frame."""
    pattern = texture()
    return [pattern[:, step * i : step * i + WIDTH] for i in range(count)]


def jittered_colour(count: int, amount: float = 8.0) -> list[np.ndarray]:
    """A steady colour with a different random offset in every frame (per-frame flicker)."""
    rng = np.random.default_rng(1)
    base = np.array([20.0, -10.0], np.float32)
    return [
        np.broadcast_to(base + rng.uniform(-amount, amount, 2), (HEIGHT, WIDTH, 2)).astype(
            np.float32
        )
        for _ in range(count)
    ]


def test_flow_propagation_removes_injected_colour_jitter():
    frames = translating(12)
    greys = [flow.grey_u8(light) for light in frames]
    jittery = jittered_colour(12)
    propagator = FlowPropagator(0.7)
    steadied = [propagator(grey, ab) for grey, ab in zip(greys, jittery, strict=True)]

    before, after = warping_error(jittery, greys), warping_error(steadied, greys)
    assert after < 0.5 * before
    assert propagator.scene_cuts == 0
    # The colour stays the scene's: the mean of the steadied frames is the true colour.
    np.testing.assert_allclose(np.mean([ab.mean((0, 1)) for ab in steadied], 0), [20, -10], atol=3)


def test_strength_zero_leaves_predictions_untouched():
    greys = [flow.grey_u8(light) for light in translating(3)]
    jittery = jittered_colour(3)
    propagator = FlowPropagator(0.0)
    for grey, ab in zip(greys, jittery, strict=True):
        assert propagator(grey, ab) is ab


def test_scene_cut_resets_the_memory():
    propagator = FlowPropagator(1.0)
    first = flow.grey_u8(translating(1)[0])
    propagator(first, np.full((HEIGHT, WIDTH, 2), 40, np.float32))
    other = np.ascontiguousarray(255 - first[:, ::-1])  # another shot: different layout
    fresh = np.full((HEIGHT, WIDTH, 2), -30, np.float32)
    np.testing.assert_array_equal(propagator(other, fresh), fresh)
    assert propagator.scene_cuts == 1


def test_warping_error_is_zero_for_colour_that_moves_with_the_scene():
    frames = translating(6)
    greys = [flow.grey_u8(light) for light in frames]
    moving = [np.dstack([light - 50, 50 - light]).astype(np.float32) for light in frames]
    static = [moving[0]] * 6  # colour painted on the screen while the scene slides
    assert warping_error(moving, greys) < 0.5
    assert warping_error(static, greys) > 3 * warping_error(moving, greys) + 1
    assert math.isnan(warping_error(moving[:1], greys[:1]))


def test_warp_tensor_matches_opencv_remap():
    rng = np.random.default_rng(0)
    image = rng.random((HEIGHT, WIDTH, 2)).astype(np.float32)
    motion = rng.uniform(-3, 3, (HEIGHT, WIDTH, 2)).astype(np.float32)
    ours = warp_tensor(
        torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(motion)[None]
    )
    # OpenCV interpolates with 1/32-pixel weights, grid_sample exactly: equal to 0.03.
    ours = ours[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, flow.warp(image, motion), atol=0.03)


# --------------------------------------------------------------------------- the refiner


@pytest.fixture(scope="module")
def refiner_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("refiner") / "refiner.safetensors"
    save_file(VideoRefiner().state_dict(), str(path))
    return path


def test_refiner_forward_keeps_shape_for_any_size():
    net = VideoRefiner().eval()
    light, ab = torch.rand(2, 1, 30, 46) * 100, torch.randn(2, 2, 30, 46) * 20
    with torch.no_grad():
        out, hidden = net(light, ab, ab, torch.ones_like(light), None)
        again, _ = net(light, ab, ab, torch.ones_like(light), hidden)
    assert out.shape == ab.shape and again.shape == ab.shape
    # With the carried colour equal to the prediction, only the bounded correction moves it.
    assert (out - ab).abs().max() <= 10


def test_refiner_propagator_runs_frame_by_frame(refiner_weights):
    propagator = RefinerPropagator(refiner_weights)
    greys = [flow.grey_u8(light) for light in translating(4)]
    outputs = [propagator(grey, ab) for grey, ab in zip(greys, jittered_colour(4), strict=True)]
    assert all(o.shape == (HEIGHT, WIDTH, 2) and o.dtype == np.float32 for o in outputs)
    assert propagator.state is not None and propagator.state.hidden is not None


def test_refiner_video_resumes_exactly(colorizer, clip, tmp_path, refiner_weights, monkeypatch):
    options = VideoOptions(segment_seconds=1.0, batch_size=4, refiner=str(refiner_weights))
    report = assert_resume_matches_clean_run(
        colorizer, clip, tmp_path, options, monkeypatch, kill_at=18
    )  # killed inside the second segment of two
    assert report.resumed_segments == 1


def test_progress_callback_counts_every_frame(colorizer, clip, tmp_path):
    seen = []
    colorize_video(
        colorizer, clip, tmp_path / "out.mp4", OPTIONS, on_progress=lambda *a: seen.append(a)
    )
    assert [done for done, _ in seen] == list(range(1, FRAMES + 1))
    assert {total for _, total in seen} == {FRAMES}


# --------------------------------------------------------------------------- training family


def test_refiner_family_takes_a_step_on_camera_motion_sequences():
    from colorizer.train import data
    from colorizer.train.config import TrainConfig
    from colorizer.train.families import make_family
    from colorizer.train.refiner import FRAMES as SEQUENCE
    from colorizer.train.refiner import camera_sequences

    rgb = torch.rand(2, 3, 40, 40)
    sequence = camera_sequences(rgb, SEQUENCE, 16, torch.Generator().manual_seed(0))
    assert sequence.shape == (2, SEQUENCE, 3, 16, 16)
    assert not torch.equal(sequence[:, 0], sequence[:, -1])  # the camera moved

    torch.manual_seed(0)
    config = TrainConfig(family="refiner", train="-", out="-", crop=32, batch_size=2)
    family = make_family(config, torch.device("cpu"))
    before = [p.detach().clone() for p in family.net.parameters()]
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    crops = data.random_crops(photos, 2, 32, data.batch_generator(0, 0), "cpu")
    losses = family.step(data.make_batch(crops))
    assert all(math.isfinite(v) for v in losses.values()) and "warp" in losses
    assert any(not torch.equal(a, b) for a, b in zip(before, family.net.parameters(), strict=True))
    assert all(p.grad is None for p in family.frame_model.parameters())  # frozen
    # It learns to steady colorize video's default model, whose output it will refine.
    from colorizer.pipeline import DEFAULT_MODEL
    from colorizer.registry import ARCHITECTURES
    from colorizer.weights import MODELS

    assert type(family.frame_model) is ARCHITECTURES[MODELS[DEFAULT_MODEL].arch]
    scores = family.validate(crops)
    assert set(scores) == {"psnr_ab", "psnr_ab_frame", "warp", "warp_frame"}


# --------------------------------------------------------------------------- command line


def test_cli_colorizes_a_film(clip, tmp_path, capsys, texture_weights):
    out = tmp_path / "film.mkv"
    code = main(
        [
            "video",
            str(clip),
            "-o",
            str(out),
            "--model",
            "test-video-conv",
            "--weights",
            str(texture_weights),
            "--size",
            "32",
            "--device",
            "cpu",
            "--crf",
            "30",
            "--preset",
            "ultrafast",
            "--start",
            "0.5",
            "-q",
        ]
    )
    assert code == 0
    assert len(decoded_frames(out)) == FRAMES - 6


def test_cli_encoder_flags_default_to_the_encoder_settings():
    from colorizer.cli import build_parser
    from colorizer.video.cli import video_options
    from colorizer.video.output import EncoderSettings

    parse = build_parser().parse_args
    assert video_options(parse(["video", "film.mp4"])).encoder == EncoderSettings()
    given = video_options(parse(["video", "film.mp4", "--preset", "slow", "--crf", "23"]))
    assert given.encoder == EncoderSettings(crf=23, preset="slow")


def test_cli_names_a_missing_input(tmp_path, capsys):
    assert main(["video", str(tmp_path / "missing.mp4"), "--device", "cpu", "-q"]) == 1
    assert "missing.mp4: no such file" in capsys.readouterr().err


def test_cli_names_a_file_without_video(tmp_path, capsys):
    sound = write_clip(tmp_path / "sound.m4a", video=False)
    assert main(["video", str(sound), "--device", "cpu", "-q"]) == 1
    assert "sound.m4a: has no video stream" in capsys.readouterr().err


def test_the_video_evaluation_csv_is_written_whole(tmp_path):
    import csv

    from colorizer.video.evaluate import ClipScores, write_csv

    row = {"psnr": 20.0, "auc": 0.5, "cf": 30.0, "cf_truth": 40.0}
    scores = ClipScores("a.mp4", 2, {"flow": 1.5}, {"flow": [row, {**row, "psnr": 22.0}]})
    out = tmp_path / "eval" / "video.csv"
    write_csv(out, [scores])
    with out.open(newline="") as f:
        (written,) = list(csv.DictReader(f))
    assert written["clip"] == "a.mp4" and float(written["psnr"]) == 21.0
    assert float(written["warping"]) == 1.5
    assert sorted(p.name for p in out.parent.iterdir()) == ["video.csv"]  # no temp file left
