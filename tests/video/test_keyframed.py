"""The keyframe engine (``colorizer.video.keyframed``), CDC, and ``eval --video --keyframes``."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from colorizer import planes
from colorizer.cli import main
from colorizer.errors import ColorizerError
from colorizer.video import flow
from colorizer.video.colorize import VideoOptions, colorize_video
from colorizer.video.evaluate import KEYFRAMES, PASTE, evaluate_clips, format_table, write_csv
from colorizer.video.keyframed import KeyframePropagator, key_colours
from colorizer.video.metrics import cdc
from tests.video.clips import (
    FPS,
    HEIGHT,
    WIDTH,
    assert_resume_matches_clean_run,
    assert_same_frames,
    decoded_frames,
    interrupt_at_frame_write,
    moving_shapes,
    video_stream,
)

CUT = 12  # the two-shot clip's second shot starts here
SHOT_FRAMES = 24


def textured_frame(index: int, rng_seed: int = 0) -> np.ndarray:
    """A textured grey-blue field with a textured red block moving 3 px right per frame."""
    rng = np.random.default_rng(rng_seed)
    background = rng.uniform(60, 200, (HEIGHT, WIDTH)).astype(np.float32)
    background = cv2.GaussianBlur(background, (0, 0), 1.5)
    block = rng.uniform(80, 255, (20, 24)).astype(np.float32)
    block = cv2.GaussianBlur(block, (0, 0), 1.0)
    frame = np.dstack([background * 0.8, background * 0.9, background]).astype(np.float32)
    x = 4 + 3 * index
    frame[20:40, x : x + 24] = np.dstack([block, block * 0.25, block * 0.2])
    return frame / 255


def second_shot(index: int) -> np.ndarray:
    """Another scene: dark, a yellow disc drifting down, nothing like moving_shapes."""
    frame = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
    cv2.circle(frame, (30, 15 + index), 12, (230, 210, 40), -1)
    cv2.rectangle(frame, (60, 40), (90, 60), (40, 60, 220), -1)
    return frame


def two_shot_frame(index: int) -> np.ndarray:
    return moving_shapes(index) if index < CUT else second_shot(index - CUT)


def write_two_shots(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = video_stream(container)
        for index in range(SHOT_FRAMES):
            frame = av.VideoFrame.from_ndarray(two_shot_frame(index), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory) -> Path:
    return write_two_shots(tmp_path_factory.mktemp("shots") / "two_shots.mp4")


def write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


# --------------------------------------------------------------------------- the engine


def test_the_keyframes_colours_arrive_on_moving_content():
    frames = [textured_frame(i) for i in range(12)]
    labs = [planes.rgb_to_lab_image(f) for f in frames]
    greys = [flow.grey_u8(lab[..., 0]) for lab in labs]
    key = key_colours(0, frames[0], greys[0].shape)
    engine = KeyframePropagator(lambda frame: 0, [0], lambda frame: key)
    model = np.zeros((HEIGHT, WIDTH, 2), np.float32)  # the model knows no colour at all
    for number, grey in enumerate(greys):
        out = engine(number, grey, model)
    last = 11
    block = (slice(22, 38), slice(6 + 3 * last, 4 + 3 * last + 22))  # inside the moved block
    truth_ab = labs[last][..., 1:]
    carried = np.linalg.norm(out[block] - truth_ab[block], axis=-1).mean()
    pasted = np.linalg.norm(key.ab[block] - truth_ab[block], axis=-1).mean()
    assert truth_ab[block][..., 0].mean() > 30  # the block is red there
    assert carried < 8 < 20 < pasted  # the paste left the red 33 px behind; the engine did not


def test_a_frame_of_a_shot_without_a_keyframe_is_steadied_as_without_keyframes():
    from colorizer.video.consistency import FlowPropagator

    greys = [flow.grey_u8(planes.lightness_image(textured_frame(i))) for i in range(4)]
    rng = np.random.default_rng(1)
    predictions = [rng.normal(0, 20, (HEIGHT, WIDTH, 2)).astype(np.float32) for _ in greys]
    engine = KeyframePropagator(lambda frame: 0, [], lambda frame: None)
    automatic = FlowPropagator()
    for number, (grey, ab) in enumerate(zip(greys, predictions, strict=True)):
        np.testing.assert_array_equal(engine(number, grey, ab), automatic(grey, ab))


def test_the_transfer_corrects_model_colours_the_chain_carries_and_nothing_else():
    from colorizer.guidance.exemplar import Exemplar
    from colorizer.video.keyframed import CORRECTION_SHARE

    grid = (4, 4)
    features = np.zeros((8, *grid), np.float32)
    features[0] = 1  # every cell alike: each matches the keyframe's with full confidence
    blue = np.broadcast_to(np.float32([-5, -40]), (*grid, 2)).copy()
    exemplar = Exemplar(features, np.full(grid, 50, np.float32), blue)
    engine = KeyframePropagator(
        lambda frame: 0, [0], lambda frame: None, features=lambda lightness: features
    )
    grey = np.full((HEIGHT, WIDTH), 128, np.uint8)
    orange = np.broadcast_to(np.float32([25, 45]), (HEIGHT, WIDTH, 2)).copy()
    green = np.broadcast_to(np.float32([-40, 30]), (HEIGHT, WIDTH, 2)).copy()
    nowhere, everywhere = (
        np.zeros((HEIGHT, WIDTH), np.float32),
        np.ones((HEIGHT, WIDTH), np.float32),
    )

    # The chain carries the model's own orange where the keyframe shows blue: corrected.
    out = engine._corrected(exemplar, grey, orange, orange, nowhere, everywhere)
    np.testing.assert_allclose(out, orange + CORRECTION_SHARE * (blue[0, 0] - orange), atol=0.05)
    # The chain carries colours the model does not predict (the keyframe's): kept.
    out = engine._corrected(exemplar, grey, orange, green, nowhere, everywhere)
    np.testing.assert_allclose(out, green, atol=0.05)
    # The direct flow reaches everywhere: no transfer at all.
    assert engine._corrected(exemplar, grey, orange, orange, everywhere, everywhere) is orange


# --------------------------------------------------------------------------- on a film


def test_a_keyframe_at_a_cut_colours_only_its_own_shot(colorizer, two_shots, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_png(keys / f"f{CUT:06d}.png", two_shot_frame(CUT))
    options = VideoOptions(segment_seconds=0.5, batch_size=4)
    plain, keyed = tmp_path / "plain.mp4", tmp_path / "keyed.mp4"
    colorize_video(colorizer, two_shots, plain, options)
    report = colorize_video(colorizer, two_shots, keyed, replace(options, keyframes=str(keys)))
    assert report.scene_cuts == 1
    plain_frames, keyed_frames = decoded_frames(plain), decoded_frames(keyed)
    # The first shot: the automatic colours. Not compared bit for bit: the first film a process
    # colorizes comes out, now and then, one level off in a few pixels of one frame (seen with
    # two plain runs alike, on both backends, under load: float rounding, not the keyframes).
    # The engine itself equals FlowPropagator to the bit there (the test above); a keyframe's
    # colours leaking into this shot would move it by tens of levels.
    for number in range(CUT):
        plain, keyed = (f[number][1].astype(np.int16) for f in (plain_frames, keyed_frames))
        assert np.abs(plain - keyed).max() <= 1, number
    for number in (CUT, SHOT_FRAMES - 1):  # the second: the keyframe's colours, moved along
        truth = planes.rgb_to_lab_image(two_shot_frame(number).astype(np.float32) / 255)
        errors = {
            name: np.abs(
                planes.rgb_to_lab_image(frames[number][1].astype(np.float32) / 255)[..., 1:]
                - truth[..., 1:]
            ).mean()
            for name, frames in (("plain", plain_frames), ("keyed", keyed_frames))
        }
        assert errors["keyed"] < 4 < 15 < errors["plain"], errors


def test_resume_with_keyframes_matches_an_uninterrupted_run(
    colorizer, two_shots, tmp_path, monkeypatch
):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_png(keys / "f000003.png", two_shot_frame(3))
    write_png(keys / f"f{CUT + 6:06d}.png", two_shot_frame(CUT + 6))  # mid-shot
    options = VideoOptions(segment_seconds=0.5, batch_size=4, keyframes=str(keys))
    report = assert_resume_matches_clean_run(
        colorizer, two_shots, tmp_path, options, monkeypatch, kill_at=15
    )  # killed inside the third segment of four
    assert report.resumed_segments == 2


def test_changed_keyframes_start_the_parts_afresh(colorizer, two_shots, tmp_path, monkeypatch):
    keys = tmp_path / "keys"
    keys.mkdir()
    key = write_png(keys / "f000000.png", two_shot_frame(0))
    options = VideoOptions(segment_seconds=0.5, batch_size=4, keyframes=str(keys))
    out = tmp_path / "film.mp4"
    interrupt_at_frame_write(
        monkeypatch, 15, lambda: colorize_video(colorizer, two_shots, out, options)
    )
    write_png(key, 255 - two_shot_frame(0))  # other colours, same file name
    report = colorize_video(colorizer, two_shots, out, options)
    assert report.resumed_segments == 0


# --------------------------------------------------------------------------- CDC


def test_cdc_matches_a_hand_computation():
    black = np.zeros((2, 2, 3), np.uint8)
    half = black.copy()
    half[0] = 255  # two of four pixels white in every channel
    # p = (1 at 0), q = (1/2 at 0, 1/2 at 255), m = (3/4, 1/4):
    # KL(p||m) = log2(4/3); KL(q||m) = 1/2 log2(2/3) + 1/2 log2(2); JS = their mean.
    kl_p = np.log2(4 / 3)
    kl_q = 0.5 * np.log2(2 / 3) + 0.5
    js = 0.5 * (kl_p + kl_q)
    assert cdc([black, half]) == pytest.approx(js)  # same in all three channels
    assert cdc([black, half, half]) == pytest.approx(js / 2)  # second pair: no change
    assert cdc([black, black.astype(np.float32)]) == 0.0  # float [0, 1] frames too
    assert np.isnan(cdc([black]))


# --------------------------------------------------------------------------- the protocol


def test_the_keyframe_protocol_scores_three_methods(colorizer, two_shots, tmp_path):
    results = evaluate_clips([two_shots], colorizer, progress=False, keyframes="truth")
    (scores,) = results
    means = scores.means()
    assert list(means) == ["automatic", PASTE, KEYFRAMES]
    assert scores.frames == SHOT_FRAMES
    # Each shot is keyed by its true first frame: the paste and the engine beat the model,
    # and the engine, which follows the motion, beats the paste.
    assert means[KEYFRAMES]["psnr"] > means[PASTE]["psnr"] > means["automatic"]["psnr"] + 5
    assert means[KEYFRAMES]["auc_rebal"] > means["automatic"]["auc_rebal"]
    assert scores.frame_rows[PASTE][CUT]["psnr"] > 40  # the key frame itself, pasted: the truth
    for m in means.values():
        assert 0 <= m["cdc"] < 1 and m["warping"] >= 0
    table = format_table(results)
    assert "rebal. AuC" in table and "| keyframes |" in table
    out = tmp_path / "scores.csv"
    write_csv(out, results)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["automatic", PASTE, KEYFRAMES]
    assert float(rows[2]["cdc"]) == pytest.approx(means[KEYFRAMES]["cdc"])


def test_eval_video_takes_keyframes_truth(two_shots, texture_weights, capsys):
    folder = str(two_shots.parent)
    common = ["eval", "--video", folder, "--model", "test-video-conv", "--weights"]
    common += [str(texture_weights), "--size", "32", "--device", "cpu", "-q", "--frames", "4"]
    assert main([*common, "--keyframes", "truth"]) == 0
    assert "| paste |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*common, "--keyframes", "guess"])


def test_a_hint_keyframe_is_coloured_by_the_model_under_its_hints(colorizer, clip, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    # A magenta hint on the green block of frame 0 (moving_shapes: rows 35..55, x 60..80).
    hints = [{"x": 70, "y": 45, "color": "#ff00ff"}]
    (keys / "f000000.json").write_text(json.dumps(hints))
    out = tmp_path / "hinted.mp4"
    colorize_video(colorizer, clip, out, VideoOptions(keyframes=str(keys)))
    first = planes.rgb_to_lab_image(decoded_frames(out)[0][1].astype(np.float32) / 255)
    a, b = first[42:48, 66:74, 1].mean(), first[42:48, 66:74, 2].mean()
    assert a > 20 and b < 0  # magenta where the block is green


def test_a_reference_needs_a_model_with_an_encoder(colorizer, clip, tmp_path):
    reference = write_png(tmp_path / "ref.png", moving_shapes(0))
    with pytest.raises(ColorizerError, match="encoder"):
        colorize_video(colorizer, clip, tmp_path / "x.mp4", VideoOptions(reference=str(reference)))


def test_frames_that_skip_the_network_come_out_the_same(
    colorizer, two_shots, tmp_path, monkeypatch
):
    from colorizer.video.keyframed import FilmKeyframePropagator

    keys = tmp_path / "keys"
    keys.mkdir()
    write_png(keys / "f000000.png", two_shot_frame(0))
    options = VideoOptions(segment_seconds=0.5, batch_size=4, keyframes=str(keys))
    skipped, predicted = tmp_path / "skipped.mp4", tmp_path / "predicted.mp4"
    report = colorize_video(colorizer, two_shots, skipped, options)
    assert report.times.network > 0  # the second shot has no keyframe: the model runs there
    with monkeypatch.context() as patch:
        patch.setattr(FilmKeyframePropagator, "needs_model_at", lambda self, pts: True)
        colorize_video(colorizer, two_shots, predicted, options)
    assert_same_frames(skipped, predicted)
