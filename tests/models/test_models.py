"""ECCV16 and SIGGRAPH17: published state_dict layout, forward contract, weight files.

The published weights cannot be downloaded here: every test uses seeded random weights. Tests
taking the ``published`` fixture compare against docs/official_state_dicts.json in ../shared
and skip when it is absent; the others need nothing outside this checkout.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from colorizer.color import ab_bins
from colorizer.errors import WeightsError
from colorizer.models.eccv16 import ECCV16
from colorizer.models.siggraph17 import SIGGRAPH17
from colorizer.registry import ARCHITECTURES
from colorizer.weights import create_model
from tests.support import SHARED

JSON_PATH = SHARED / "docs" / "official_state_dicts.json"
ARCHS = ["eccv16", "siggraph17"]

Entry = tuple[str, tuple[int, ...], str]  # (key, shape, dtype name) as in the JSON


@pytest.fixture(scope="module")
def published() -> dict:
    if not JSON_PATH.is_file():
        pytest.skip(f"{JSON_PATH} is absent: ../shared is not beside this checkout")
    return json.loads(JSON_PATH.read_text())


def published_entries(published: dict, arch: str) -> list[Entry]:
    return [(e["key"], tuple(e["shape"]), e["dtype"]) for e in published[arch]["state_dict"]]


def module_entries(model: torch.nn.Module) -> list[Entry]:
    return [
        (key, tuple(value.shape), str(value.dtype).removeprefix("torch."))
        for key, value in model.state_dict().items()
    ]


def random_state(entries: list[Entry], seed: int = 0) -> dict[str, torch.Tensor]:
    """He-initialised convs and plausible BatchNorm statistics, so activations stay moderate."""
    generator = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    state = {}
    for key, shape, dtype in entries:
        if dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) == 4:
            state[key] = normal(shape, math.sqrt(2 / math.prod(shape[1:])))
        elif key.endswith(".weight"):  # BatchNorm scale
            state[key] = 1 + normal(shape, 0.1)
        else:
            state[key] = normal(shape, 0.1)
    return state


def random_model(arch: str, seed: int = 0) -> torch.nn.Module:
    model = ARCHITECTURES[arch]()
    model.load_state_dict(random_state(module_entries(model), seed), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def eccv16() -> ECCV16:
    model = random_model("eccv16")
    # The published decoder: model_out holds the ab bin centres / 110.
    with torch.no_grad():
        model.model_out.weight.copy_((ab_bins().T / 110).reshape(2, 313, 1, 1))
    return model


@pytest.fixture(scope="module")
def siggraph17() -> SIGGRAPH17:
    return random_model("siggraph17", seed=1)


def light(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random L images in [0, 100]."""
    coarse = torch.rand(n, 1, h // 8, w // 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse * 100, size=(h, w), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- published layout


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_has_the_published_keys_shapes_and_order(published, arch):
    model = ARCHITECTURES[arch]()
    assert module_entries(model) == published_entries(published, arch)
    assert sum(p.numel() for p in model.parameters()) == published[arch]["num_parameters"]


@pytest.mark.parametrize("arch", ARCHS)
def test_published_layout_loads_strictly(published, arch):
    state = random_state(published_entries(published, arch), seed=2)
    model = create_model(arch)
    model.load_state_dict(state, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_runs_the_published_modules_in_order(published, arch, eccv16, siggraph17):
    """Leaf modules fire in the published order with the published shapes (256 x 256 input)."""
    model = {"eccv16": eccv16, "siggraph17": siggraph17}[arch]
    record = next(v for k, v in published[arch].items() if k.startswith("leaf_module_output"))
    expected = [(row["module"], row["type"], row["out_shape"]) for row in record]
    if arch == "siggraph17":
        # The published forward runs model9up .. model_out twice; ours once (same values).
        names = [row[0] for row in expected]
        expected = expected[: names.index("model9up.0", names.index("model9up.0") + 1)]
    fired = []
    hooks = [
        module.register_forward_hook(
            lambda module, args, out, name=name: fired.append(
                (name, type(module).__name__, list(out.shape))
            )
        )
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    try:
        with torch.no_grad():
            output = model(light(1, 256, 256))
    finally:
        for hook in hooks:
            hook.remove()
    assert fired == expected
    assert list(output.shape) == published[arch]["output_shape_for_256_input"]


# --------------------------------------------------------------------------- forward contract


def test_architectures_declare_the_pipeline_attributes():
    assert (ECCV16.accepts_hints, SIGGRAPH17.accepts_hints) == (False, True)
    assert ECCV16.input_multiple == SIGGRAPH17.input_multiple == 8
    assert ARCHITECTURES["eccv16"] is ECCV16
    assert ARCHITECTURES["siggraph17"] is SIGGRAPH17


def test_eccv16_decodes_the_expected_ab_of_its_distribution(eccv16):
    l = light(2, 48, 64)  # noqa: E741 - L is the Lab name
    with torch.no_grad():
        logits = eccv16.logits(l)
        distribution = eccv16.distribution(l)
        ab = eccv16(l)
    assert logits.shape == distribution.shape == (2, 313, 12, 16)
    torch.testing.assert_close(distribution, torch.softmax(logits, dim=1))
    torch.testing.assert_close(distribution.sum(dim=1), torch.ones(2, 12, 16))
    expected = torch.einsum("nqhw,qc->nchw", distribution, ab_bins())
    expected = F.interpolate(expected, scale_factor=4, mode="bilinear", align_corners=False)
    assert ab.shape == (2, 2, 48, 64)
    torch.testing.assert_close(ab, expected, atol=1e-3, rtol=0)
    # An expectation over the bins stays inside their bounding box, and varies over the image.
    assert ab[:, 0].min() >= -90 - 1e-3 and ab[:, 0].max() <= 100 + 1e-3
    assert ab[:, 1].min() >= -110 - 1e-3 and ab[:, 1].max() <= 100 + 1e-3
    assert ab.std() > 0.1


def test_siggraph17_output_shape_and_range(siggraph17):
    with torch.no_grad():
        ab = siggraph17(light(2, 40, 56))
    assert ab.shape == (2, 2, 40, 56)
    assert ab.abs().max() < 110
    assert ab.std() > 0.1


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_equals_single_images(arch, eccv16, siggraph17):
    model = {"eccv16": eccv16, "siggraph17": siggraph17}[arch]
    batch = light(3, 32, 40, seed=3)
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(image[None]) for image in batch])
    # Compared at the network's own scale (ab / 110): float32 sums over ~20 layers differ by
    # ~1e-4 ab units between batch sizes (as far from a float64 run either way).
    torch.testing.assert_close(together / 110, alone / 110, atol=1e-5, rtol=0)


def test_siggraph17_zero_hints_equal_no_hints(siggraph17):
    l = light(1, 32, 32)  # noqa: E741
    with torch.no_grad():
        plain = siggraph17(l)
        zero = siggraph17(l, torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 32, 32))
    assert torch.equal(plain, zero)


def test_siggraph17_hint_changes_the_output(siggraph17):
    l = light(1, 32, 32)  # noqa: E741
    hint_ab = torch.zeros(1, 2, 32, 32)
    hint_mask = torch.zeros(1, 1, 32, 32)
    hint_ab[:, :, 12:16, 12:16] = torch.tensor([60.0, -40.0]).view(1, 2, 1, 1)
    hint_mask[:, :, 12:16, 12:16] = 1
    with torch.no_grad():
        plain = siggraph17(l)
        hinted = siggraph17(l, hint_ab, hint_mask)
    assert (hinted - plain).abs().max() > 1e-2


@pytest.mark.parametrize("size", [(36, 40), (40, 44), (7, 8)])
def test_siggraph17_rejects_sizes_not_multiple_of_8(siggraph17, size):
    with pytest.raises(ValueError, match="multiples of 8"):
        siggraph17(light(1, 64, 64)[:, :, : size[0], : size[1]])


# --------------------------------------------------------------------------- weight files


@pytest.fixture(scope="module")
def eccv16_state(eccv16) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in eccv16.state_dict().items()}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_create_model_loads_saved_weights(eccv16, eccv16_state, tmp_path, suffix):
    path = tmp_path / f"eccv16{suffix}"
    if suffix == ".pth":
        torch.save(eccv16_state, path)
    else:
        save_file(eccv16_state, str(path))
    model = create_model("eccv16", weights=path)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, eccv16_state[key]), key
    l = light(1, 32, 32)  # noqa: E741
    with torch.no_grad():
        assert torch.equal(model(l), eccv16(l))


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_weights_that_do_not_fit_name_the_file(eccv16_state, tmp_path, change):
    state = dict(eccv16_state)
    if change == "missing":
        del state["model4.2.weight"]
    else:
        state["model9.0.weight"] = torch.zeros(3)
    path = tmp_path / f"{change}.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"model4\.2\.weight|model9\.0\.weight") as info:
        create_model("eccv16", weights=path)
    assert str(path) in str(info.value)
