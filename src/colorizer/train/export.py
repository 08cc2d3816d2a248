"""Export a training checkpoint to the shipped format: ``NAME.safetensors`` + ``NAME.md``.

The safetensors file holds the inference module's float32 state dict; its string metadata says
how to rebuild the module (``arch``, and ``kwargs`` as JSON), so ``load_exported`` (or any
loader reading the header) needs nothing else. The markdown model card records what was trained,
on what, for how long, on which hardware, and how well it scored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from colorizer.errors import ColorizerError
from colorizer.files import atomic_path
from colorizer.train.loop import read_checkpoint
from colorizer.weights import architecture

FORMAT = "colorizer-model"
FORMAT_VERSION = "1"
LOSSES = {
    "regression": "mean squared error on ab (seed 001's Keras network)",
    "classification": "313-bin soft-encoded cross-entropy, class-rebalanced (ECCV16), "
    "annealed-mean decoding",
    "gan": "pix2pix: L1 on ab + PatchGAN adversarial loss",
    "hints": "313-bin cross-entropy (rebalanced) + L1 on decoded ab, with SIGGRAPH17 point "
    "hints sampled from the ground truth",
    "som-mlp": "SOM quantisation of CIELUV (u, v), then MLP cross-entropy over the SOM colours",
    "guided": "313-bin cross-entropy (rebalanced) + L1 on decoded ab, with SIGGRAPH17 point "
    "hints sampled from the ground truth (some photos with none: the automatic model), + "
    "binary cross-entropy of the confidence head",
}


def build(arch: str, kwargs: dict, state: dict) -> nn.Module:
    """Architecture ``arch`` with ``kwargs`` and ``state`` loaded strictly, in eval mode."""
    model = architecture(arch)(**kwargs)
    model.load_state_dict(state, strict=True)
    return model.eval()


def inference_model(checkpoint: str | Path) -> nn.Module:
    """The inference module of a training checkpoint, in eval mode."""
    state = read_checkpoint(checkpoint)
    return build(state["arch"], state["config"]["model_kwargs"], state["model"])


def export(
    checkpoint: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    name: str | None = None,
    metrics: dict | str | Path | None = None,
) -> list[Path]:
    """Write ``out`` (.safetensors) and the model card beside it; returns both paths.

    Several sources (the first a training checkpoint, the others checkpoints or exported files
    of the same architecture and arguments) write their uniform weight average: a "model soup"
    (Wortsman et al., ICML 2022), which for runs fine-tuned from the same weights often scores
    better than any one of them. The card's training facts are the first checkpoint's."""
    from safetensors.torch import save_file

    sources = [checkpoint] if isinstance(checkpoint, str | Path) else list(checkpoint)
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ColorizerError(f"{out}: the exported file must end in .safetensors")
    if isinstance(metrics, str | Path):
        metrics = json.loads(Path(metrics).read_text())
    state = read_checkpoint(sources[0])
    kwargs = state["config"]["model_kwargs"]
    model = build(state["arch"], kwargs, state["model"])
    if len(sources) > 1:
        others = [_source_state(path, state["arch"], kwargs) for path in sources[1:]]
        model.load_state_dict(average_states([model.state_dict(), *others]), strict=True)
    name = name or out.stem
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "arch": state["arch"],
        "kwargs": json.dumps(kwargs),
        "family": state["family"],
        "steps": str(state["step"]),
    }
    if len(sources) > 1:
        metadata["average_of"] = json.dumps([_short(path) for path in sources])
    tensors = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temp:
        save_file(tensors, str(temp), metadata)
        os.chmod(temp, 0o644)  # a package data file: readable by every user who installs it
    card = out.with_suffix(".md")
    text = model_card(name, out.name, model, state, metrics)
    if len(sources) > 1:
        text += soup_section(sources)
    card.write_text(text)
    return [out, card]


def average_states(states: list[dict]) -> dict:
    """The uniform average of state dicts with the same keys and shapes; integer entries (such
    as BatchNorm's batch counters) are the first's."""
    averaged = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = sum(state[key].double() for state in states)
            averaged[key] = (total / len(states)).to(first.dtype)
        else:
            averaged[key] = first.clone()
    return averaged


def _source_state(path: str | Path, arch: str, kwargs: dict) -> dict:
    """An averaging source's inference state dict, checked to be of ``arch`` with ``kwargs``."""
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        metadata = read_metadata(path)
        found = (metadata["arch"], json.loads(metadata["kwargs"]))
        state = load_file(str(path))
    else:
        checkpoint = read_checkpoint(path)
        found = (checkpoint["arch"], checkpoint["config"]["model_kwargs"])
        state = checkpoint["model"]
    if found != (arch, kwargs):
        raise ColorizerError(
            f"{path}: a {found[0]} with arguments {found[1]}; the weights averaged must all be "
            f"{arch} with {kwargs}"
        )
    return build(arch, kwargs, state).state_dict()


def _short(path: str | Path) -> str:
    """A source as the card names it: its folder and file name (no machine path)."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def soup_section(sources: Sequence[str | Path]) -> str:
    """The model card's section naming the runs a weight average was made of."""
    lines = [
        "",
        "## Weight average",
        "",
        f"The uniform average of the weights of {len(sources)} runs from the same starting "
        "weights (a model soup); the facts above are the first one's:",
        "",
    ]
    return "\n".join(lines + [f"- `{_short(path)}`" for path in sources]) + "\n"


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
    if metadata.get("format") != FORMAT:
        raise ColorizerError(f"{path}: not a model exported by `colorize export`")
    return metadata


def load_exported(path: str | Path) -> nn.Module:
    """Rebuild the exported model from the file alone."""
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    return build(metadata["arch"], json.loads(metadata["kwargs"]), load_file(str(path)))


def model_card(name: str, filename: str, model: nn.Module, state: dict, metrics) -> str:
    config, info = state["config"], state.get("info", {})
    params = sum(p.numel() for p in model.parameters())
    hours = state["seconds"] / 3600
    images = state["step"] * config["batch_size"]
    data = (
        f"`{config['train']}`: {info.get('photos', '?')} colour photos trained on "
        f"({info.get('grey_skipped', '?')} grey or near-grey and "
        f"{info.get('unreadable_skipped', '?')} unreadable files skipped)"
    )
    held_out = config["val"] or f"{config['val_fraction']:.0%} of the training folder, by file"
    lines = [
        f"# {name}",
        "",
        f"Colorization model `{filename}`, trained with `colorize train {config['family']}`.",
        "",
        "| | |",
        "|---|---|",
        f"| Architecture | `{state['arch']}`, arguments `{json.dumps(config['model_kwargs'])}` |",
        f"| Parameters | {params:,} ({params * 4 / 2**20:.1f} MiB as float32) |",
        f"| Loss | {LOSSES[config['family']]} |",
        f"| Training data | {data} |",
        f"| Validation data | {held_out} ({info.get('val_crops', '?')} "
        f"{'whole photos' if config.get('val_whole') else 'centre crops'}) |",
        f"| Steps | {state['step']:,} x {config['batch_size']} crops of {config['crop']} px "
        f"= {images:,} crops |",
        f"| Training time | {hours:.2f} h on {state.get('hardware', '?')} "
        f"(torch {state.get('torch', '?')}) |",
        f"| Seed | {config['seed']} |",
        f"| Command | `{config.get('command') or '(not recorded)'}` |",
    ]
    if info.get("prepare"):
        facts = ", ".join(f"{k} {v:.4g}" for k, v in info["prepare"].items())
        lines.append(f"| Training-set facts | {facts} |")
    if info.get("val"):
        scores = ", ".join(f"{k} {v:.4g}" for k, v in info["val"].items() if k != "step")
        lines.append(f"| Last validation (step {info['val']['step']}) | {scores} |")
    if metrics:
        lines += ["", "## Evaluation", "", "```json", json.dumps(metrics, indent=2), "```"]
    lines += [
        "",
        "## Use",
        "",
        f"    colorize image --model {state['arch']} --weights {filename} photo.jpg",
        "",
    ]
    return "\n".join(lines)
