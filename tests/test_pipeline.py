"""The Colorizer core: invariants of the pre/post-processing around any model."""

import logging
import threading

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorizer import Colorizer, ImageReadError, WeightsError
from colorizer.errors import ColorizerError
from tests.support import CONSTANT_AB


@pytest.fixture(scope="module")
def colorizer(constant_weights):
    return Colorizer("test-constant", weights=constant_weights, size=32, device="cpu")


def grey_ramp(height: int, width: int) -> np.ndarray:
    ramp = np.linspace(0.1, 0.9, height * width).reshape(height, width)
    return (ramp * 255).round().astype(np.uint8)


def test_output_is_input_lightness_with_model_ab(colorizer):
    grey = grey_ramp(37, 53)
    out = colorizer.colorize(grey)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    lab_in = skcolor.rgb2lab(np.repeat(grey[..., None], 3, axis=2))
    expected = skcolor.lab2rgb(np.dstack([lab_in[..., 0], np.full((37, 53, 2), CONSTANT_AB)]))
    # Off by at most one 8-bit step from scikit-image's independent conversion.
    assert np.abs(out.astype(float) - expected * 255).max() <= 1.0
    lab_out = skcolor.rgb2lab(out)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 0.3


@pytest.mark.parametrize(("height", "width"), [(1, 1), (10000, 30), (3, 2), (255, 257)])
def test_any_size_is_kept(colorizer, height, width):
    out = colorizer.colorize(grey_ramp(height, width))
    assert out.shape == (height, width, 3)


def test_alpha_is_carried_through(colorizer):
    rgba = np.dstack([np.repeat(grey_ramp(20, 24)[..., None], 3, axis=2), grey_ramp(20, 24)[::-1]])
    out = colorizer.colorize(rgba)
    assert out.shape == (20, 24, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


def test_returns_the_kind_it_was_given(colorizer, tmp_path):
    grey = grey_ramp(16, 24)
    pil = colorizer.colorize(Image.fromarray(grey))
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (24, 16)
    wide = colorizer.colorize(grey.astype(np.uint16) * 257)
    assert wide.dtype == np.uint16
    floating = colorizer.colorize(grey.astype(np.float32) / 255)
    assert floating.dtype == np.float32 and floating.max() <= 1.0
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    from_path = colorizer.colorize(path)
    assert isinstance(from_path, Image.Image)
    np.testing.assert_array_equal(np.asarray(from_path), np.asarray(pil))


def test_batch_equals_single_calls(colorizer):
    images = [grey_ramp(20, 30), grey_ramp(9, 9), grey_ramp(40, 12)]
    batch = colorizer.colorize_batch(images, batch_size=2)
    for image, result in zip(images, batch, strict=True):
        np.testing.assert_array_equal(result, colorizer.colorize(image))


def test_batch_equals_single_calls_to_the_level_with_a_real_network():
    # The shipped network: its float results depend on the batch it runs in, which moved 8
    # pixels of these photos by one level when a batch went through the network together.
    import cv2

    real = Colorizer(device="cpu", backend="torch")
    rng = np.random.default_rng(0)
    images = [
        cv2.GaussianBlur(
            (rng.random((200 + 13 * i, 300 - 7 * i)) * 255).astype(np.uint8), (0, 0), 3
        )
        for i in range(8)
    ]
    for image, result in zip(images, real.colorize_batch(images), strict=True):
        np.testing.assert_array_equal(result, real.colorize(image))


def test_shared_between_threads(colorizer):
    image = grey_ramp(64, 48)
    expected = colorizer.colorize(image)
    results = [None] * 6

    def work(index):
        results[index] = colorizer.colorize(image)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_mirror_average_is_the_mean_of_the_photo_and_its_mirror_image():
    """colornet-v3's catalogue entry averages its colours with those of the mirror image, hints
    mirrored with it. The reference: the same network's plain passes, the second mirrored back."""
    plain = Colorizer("colornet-v3", size=64, device="cpu", backend="torch", mirror_average=False)
    averaged = Colorizer("colornet-v3", size=64, device="cpu", backend="torch")
    assert averaged.mirror_average and not plain.mirror_average
    assert not Colorizer("colornet-v2", device="cpu", backend="torch").mirror_average
    rng = np.random.default_rng(0)
    lightness = [
        cv2.GaussianBlur(rng.uniform(0, 100, shape).astype(np.float32), (0, 0), 2)
        for shape in ((48, 80), (70, 50))
    ]
    hint_ab = np.zeros((2, 2, 64, 64), np.float32)
    hint_mask = np.zeros((2, 1, 64, 64), np.float32)
    hint_ab[:, :, 10:14, 5:9], hint_mask[:, :, 10:14, 5:9] = 50.0, 1.0

    def mirrored(planes):
        return [np.ascontiguousarray(x[..., ::-1]) for x in planes]

    for hints in (None, (hint_ab, hint_mask)):
        own = plain.predict_planes(lightness, hints)
        other = plain.predict_planes(mirrored(lightness), hints and tuple(mirrored(hints)))
        other = other[:, :, ::-1]  # N x S x S x 2: back along the width
        assert np.abs(own - other).mean() > 0.5  # not mirror-symmetric: averaging changes it
        np.testing.assert_allclose(
            averaged.predict_planes(lightness, hints), (own + other) / 2, atol=1e-3
        )
        # The distributions too, which guided photos and colour suggestions decode.
        bins = plain.predict_bins(lightness, hints).numpy()
        other_bins = plain.predict_bins(mirrored(lightness), hints and tuple(mirrored(hints)))
        expected = (bins + other_bins.numpy()[..., ::-1]) / 2
        np.testing.assert_allclose(averaged.predict_bins(lightness, hints), expected, atol=1e-5)


def test_colour_photo_warns_and_uses_luminance(colorizer, caplog, tmp_path):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(photo).save(path)
    with caplog.at_level(logging.WARNING):
        out = np.asarray(colorizer.colorize(path))
    assert "colour photo" in caplog.text and "colour.png" in caplog.text
    grey_version = skcolor.rgb2lab(photo)[..., 0]
    assert np.abs(skcolor.rgb2lab(out)[..., 0] - grey_version).mean() < 0.5


def test_exif_orientation_is_applied(colorizer, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    Image.fromarray(grey_ramp(20, 40)).save(path, exif=exif)
    assert colorizer.colorize(path).size == (20, 40)  # PIL size is (width, height): upright


def test_colorize_file_keeps_16_bits(colorizer, tmp_path):
    src = tmp_path / "deep.png"
    Image.fromarray(grey_ramp(12, 14).astype(np.uint16) * 257).save(src)
    dst = colorizer.colorize_file(src, tmp_path / "out" / "deep.png")
    import cv2

    assert cv2.imread(str(dst), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_corrupt_file_names_the_file(colorizer, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match=r"broken\.jpg"):
        colorizer.colorize(bad)


def test_size_must_fit_the_architecture(constant_weights):
    with pytest.raises(ColorizerError, match="multiple of 8"):
        Colorizer("test-constant", weights=constant_weights, size=30, device="cpu")


def test_unknown_model_lists_known_ones():
    with pytest.raises(WeightsError, match="eccv16"):
        Colorizer("no-such-model")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_output_keeps_the_metadata_and_says_it_was_colorized(suffix, tmp_path, constant_weights):
    from PIL import ExifTags, Image, ImageCms

    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: upright it is 48 wide, 64 high
    exif[ExifTags.Base.Artist] = "A. Photographer"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "scan.jpg"
    Image.fromarray(grey).convert("RGB").save(
        src, exif=exif.tobytes(), dpi=(600, 600), icc_profile=srgb
    )
    colorizer = Colorizer("test-constant", weights=constant_weights, size=32, device="cpu")
    out = Image.open(colorizer.colorize_file(src, tmp_path / f"out{suffix}"))
    tags = out.getexif()
    assert out.size == (48, 64)
    assert tags[ExifTags.Base.Orientation] == 1  # the pixels are upright now
    assert tags[ExifTags.Base.Artist] == "A. Photographer"
    assert tags[ExifTags.Base.Software].startswith("colorizer ")
    assert "model test-constant" in tags[ExifTags.Base.ImageDescription]
    assert out.info["icc_profile"] == srgb
    if suffix != ".webp":  # WebP has no resolution field
        assert [round(v) for v in out.info["dpi"]] == [600, 600]


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg"])
def test_a_16_bit_tiff_scan_keeps_its_metadata(suffix, tmp_path, constant_weights):
    # A 16-bit archive master written by tifffile itself, not by our writer.
    import tifffile
    from PIL import ExifTags, Image, ImageCms

    grey = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "master.tif"
    tifffile.imwrite(
        src,
        np.dstack([grey] * 3),
        photometric="rgb",
        compression="zlib",
        iccprofile=srgb,
        resolution=(1200, 1200),
        resolutionunit="INCH",
        extratags=[(ExifTags.Base.Artist, "s", 0, "A. Photographer", True)],
        metadata=None,
    )
    colorizer = Colorizer("test-constant", weights=constant_weights, size=32, device="cpu")
    with Image.open(colorizer.colorize_file(src, tmp_path / f"out{suffix}")) as out:
        tags = out.getexif()
        assert tags[ExifTags.Base.Artist] == "A. Photographer"
        assert tags[ExifTags.Base.Software].startswith("colorizer ")
        assert "model test-constant" in tags[ExifTags.Base.ImageDescription]
        assert out.info["icc_profile"] == srgb
        assert [round(v) for v in out.info["dpi"]] == [1200, 1200]
        if suffix == ".jpg":  # the TIFF's layout tags describe the master, not this file
            assert not {ExifTags.Base.BitsPerSample, ExifTags.Base.StripOffsets} & set(tags)
    if suffix != ".jpg":
        deep = cv2.imread(str(tmp_path / f"out{suffix}"), cv2.IMREAD_UNCHANGED)
        assert deep.dtype == np.uint16 and deep.shape == (48, 64, 3)


def test_a_grey_icc_profile_is_not_put_on_a_colour_output(tmp_path, constant_weights):
    from PIL import Image, ImageCms

    grey_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    grey_profile = grey_profile[:16] + b"GRAY" + grey_profile[20:]  # colour space: grey
    src = tmp_path / "scan.png"
    Image.new("L", (32, 32), 128).save(src, icc_profile=grey_profile)
    colorizer = Colorizer("test-constant", weights=constant_weights, size=32, device="cpu")
    out = Image.open(colorizer.colorize_file(src, tmp_path / "out.png"))
    assert "icc_profile" not in out.info


def test_hints_go_to_the_catalogue_hint_model(monkeypatch, constant_weights):
    import dataclasses

    from colorizer.weights import MODELS, ensure_weights

    spec = MODELS["colornet-v1"]
    monkeypatch.setitem(MODELS, "colornet-v1", dataclasses.replace(spec, hint_model="colornet-v2"))
    automatic = Colorizer("colornet-v1", device="cpu", backend="torch")
    hinted = automatic.for_hints()
    assert hinted.name == "colornet-v2" and hinted.size == automatic.size
    assert automatic.for_hints() is hinted  # loaded once
    # Local weights are the user's model: hints stay with it.
    own = Colorizer("colornet", weights=ensure_weights("colornet-v1"), device="cpu")
    assert own.for_hints() is own
    plain = Colorizer("test-constant", weights=constant_weights, size=64, device="cpu")
    assert plain.for_hints() is plain


@pytest.fixture(scope="module")
def shipped():
    return Colorizer(device="cpu", backend="torch")


def _scans(folder):
    """Grey, grey + alpha, RGBA with grey colour, EXIF-rotated grey, a colour-keyed grey PNG
    (whose transparency only the float path turns into alpha)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    grey = cv2.GaussianBlur((rng.random((90, 120)) * 255).astype(np.uint8), (0, 0), 2)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored sideways
    exif[0x013B] = "A. Photographer"  # Artist
    Image.fromarray(grey).save(folder / "grey.png", exif=exif, dpi=(1200, 1200))
    Image.fromarray(grey).convert("LA").save(folder / "grey-alpha.png")
    rgba = np.dstack([grey, grey, grey, grey[::-1]])
    Image.fromarray(rgba).save(folder / "rgba.png")
    Image.fromarray(grey).save(folder / "grey.jpg", quality=90)
    Image.fromarray(grey).save(folder / "keyed.png", transparency=int(grey[0, 0]))  # tRNS
    names = ("grey.png", "grey-alpha.png", "rgba.png", "grey.jpg", "keyed.png")
    return [folder / n for n in names]


def _float_path(colorizer, src, dst):
    """colorize_file as 16-bit photos take it: a float Picture, composed and written."""
    from colorizer import imageio

    picture = colorizer.read(src)
    (rgb,) = colorizer.colorize_pictures([picture])
    metadata = colorizer.marked(picture, colorizer.making(src))  # the XMP names the source
    return imageio.write_image(
        dst, rgb, picture.alpha, bit_depth=picture.bit_depth, metadata=metadata
    )


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_8_bit_photos_stay_in_bytes_with_the_float_paths_output(
    suffix, shipped, tmp_path, monkeypatch
):
    for src in _scans(tmp_path):
        float_path = _float_path(shipped, src, tmp_path / f"{src.stem}-float{suffix}")
        with monkeypatch.context() as patch:
            if src.stem != "keyed":
                patch.setattr(Colorizer, "read", None)  # the float path is not taken
            bytes_path = shipped.colorize_file(src, tmp_path / f"{src.stem}-bytes{suffix}")
        assert bytes_path.read_bytes() == float_path.read_bytes(), src.name


def test_a_colour_photo_in_bytes_has_the_float_paths_output(shipped, tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(2)
    rgb = cv2.GaussianBlur((rng.random((80, 100, 3)) * 255).astype(np.uint8), (0, 0), 2)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    whole = _float_path(shipped, tmp_path / "colour.png", tmp_path / "float.png")
    monkeypatch.setattr(Colorizer, "read", None)
    in_bytes = shipped.colorize_file(tmp_path / "colour.png", tmp_path / "bytes.png")
    assert in_bytes.read_bytes() == whole.read_bytes()


def test_large_photos_go_one_at_a_time(shipped, tmp_path, monkeypatch):
    from colorizer import imageio, pipeline

    (src, *_) = _scans(tmp_path)
    monkeypatch.setattr(imageio, "LARGE_PHOTO_PIXELS", 1)
    held = []
    predict = Colorizer.predict_planes
    monkeypatch.setattr(
        Colorizer,
        "predict_planes",
        lambda self, *a, **k: (
            held.append(pipeline._ONE_LARGE_PHOTO.locked()) or predict(self, *a, **k)
        ),
    )
    shipped.colorize_file(src, tmp_path / "out.png")
    monkeypatch.setattr(imageio, "LARGE_PHOTO_PIXELS", 10**9)
    shipped.colorize_file(src, tmp_path / "out.png")
    assert held == [True, False]


def test_a_16_bit_scan_keeps_16_bits_on_the_float_path(shipped, tmp_path):
    scan = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    cv2.imwrite(str(tmp_path / "scan.png"), scan)
    out = shipped.colorize_file(tmp_path / "scan.png", tmp_path / "out.png")
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_8_bit_photos_keep_their_metadata(shipped, tmp_path):
    from PIL import Image

    (src, *_) = _scans(tmp_path)
    with Image.open(shipped.colorize_file(src, tmp_path / "out.jpg")) as out:
        assert out.size == (90, 120)  # turned upright
        tags = out.getexif()
        assert tags[0x013B] == "A. Photographer" and tags[0x0131].startswith("colorizer ")
        assert tags.get(0x0112, 1) == 1
        assert [round(v) for v in out.info["dpi"]] == [1200, 1200]


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
def test_8_bit_arrays_stay_in_bytes_with_the_float_paths_result(channels, shipped, monkeypatch):
    from colorizer import imageio

    rng = np.random.default_rng(3)
    shape = (70, 90) if channels is None else (70, 90, channels)
    image = cv2.GaussianBlur((rng.random(shape) * 255).astype(np.uint8), (0, 0), 2)
    image = image.reshape(shape)
    picture = shipped.read(image)
    (rgb,) = shipped.colorize_pictures([picture])
    expected = imageio.to_like(rgb, picture.alpha, image)
    monkeypatch.setattr(Colorizer, "read", None)  # the float path is not taken
    result = shipped.colorize(image)
    assert result.dtype == np.uint8 and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)
