"""Training configuration: one flat dataclass, read from TOML or JSON and overridden by flags."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from colorizer.errors import ColorizerError

FAMILIES = ("regression", "classification", "gan", "som-mlp", "hints", "guided", "refiner")


@dataclass
class TrainConfig:
    family: str
    train: str  # folder of colour photos, searched recursively
    out: str  # checkpoint, logs and sample grids go here
    val: str | None = None  # separate validation folder; never trained on
    val_fraction: float = 0.0  # without --val: hold out this fraction of --train (by file name)
    arch: str | None = None  # None: the family's default architecture
    model_kwargs: dict = field(default_factory=dict)  # constructor arguments of the architecture
    steps: int = 20000
    batch_size: int = 16
    crop: int = 176
    # side of the photo region each training crop covers before it is resampled to ``crop``
    # (None: ``crop``): a larger view trains at low resolution on the field of view of a larger
    # crop, at a fraction of the compute
    view: int | None = None
    val_crop: int | None = None  # side of the validation crops (None: ``crop``)
    # Inference squashes the whole photo to the network's square; these train on (this fraction
    # of the views) and validate on (val_whole) whole photos seen that way, not square crops.
    whole_fraction: float = 0.0
    val_whole: bool = False
    lr: float | None = None  # None: the family's default
    warmup: int = 200  # linear warm-up steps before the cosine decay
    seed: int = 0
    device: str = "auto"
    amp: bool = False  # bf16 autocast, CUDA only
    workers: int = 2  # processes decoding photos at start-up
    cache: str | None = None  # folder for the decoded-photo cache (.npz)
    val_every: int = 1000
    val_images: int = 64
    ckpt_every: int = 500
    log_every: int = 20
    # classification
    rebalance_lambda: float = 0.5
    rebalance_sigma: float = 5.0
    published_prior: str | None = None  # e.g. prior_probs.npy, only compared against in the log
    ab_l1_weight: float = 0.0  # > 0: add this x L1 on the decoded ab (/ 110) to the cross-entropy
    # pretrained encoders (colornet-v2): the encoder's learning rate relative to the decoder's
    encoder_lr_scale: float = 1.0
    # start from these weights (a file or a model's name); hints: default the architecture's
    # initial_model, its hint convolutions (missing keys) start at 0
    init: str | None = None
    # hints and guided: the weight of the L1 term on the decoded ab
    hint_l1_weight: float = 10.0
    # guided (colornet-v3): this fraction of the photos gets no hint at all (the rest a
    # geometric number, SIGGRAPH17's), the hint convolutions learn at hint_lr_scale x the
    # rate, and with freeze_early the encoder's stem and first blocks stay fixed and run
    # without gradients; channels_last trains in that memory format (faster on CPUs)
    no_hint_fraction: float = 0.0
    hint_lr_scale: float = 1.0
    freeze_early: bool = False
    channels_last: bool = False
    # gan
    l1_weight: float = 100.0
    # som-mlp
    som_grid: int = 8  # the SOM is som_grid x som_grid nodes: that many colours
    som_steps: int = 2000
    command: str = ""  # the command line that started the run, for the model card

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ColorizerError(f"unknown family {self.family!r}; known: {', '.join(FAMILIES)}")
        if not 0 <= self.val_fraction < 1:
            raise ColorizerError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("steps", "batch_size", "crop", "val_every", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ColorizerError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("view", "val_crop"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ColorizerError(f"{name} must be at least 1, got {value}")
        if not 0 <= self.whole_fraction <= 1:
            raise ColorizerError(f"whole_fraction must be in [0, 1], got {self.whole_fraction}")
        if not 0 <= self.no_hint_fraction <= 1:
            raise ColorizerError(f"no_hint_fraction must be in [0, 1], got {self.no_hint_fraction}")

    @property
    def cached_side(self) -> int:
        """The crop side the training photos are cached for: room for the view."""
        return max(self.crop, self.view or 0)

    def to_dict(self) -> dict:
        return asdict(self)


def read_config_file(path: str | Path) -> dict:
    """Settings from a .toml or .json file (keys are TrainConfig's field names)."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ColorizerError(f"{path}: cannot read config ({exc})") from exc
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ColorizerError(f"{path}: unknown config keys: {', '.join(unknown)}")
    return data


def make_config(file: str | Path | None = None, **overrides) -> TrainConfig:
    """File settings, then every override that is not None (flags left unset keep the file's)."""
    values = read_config_file(file) if file else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    for required in ("family", "train", "out"):
        if required not in values:
            raise ColorizerError(f"training needs {required!r} (a flag or a config key)")
    return TrainConfig(**values)
