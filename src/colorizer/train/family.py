"""The ``Family`` base every training family derives from, and ``descend``: one step down.

A family builds its modules and optimizers, may look at the training photos once before the
first step (``prepare``: the class prior, the SOM), takes one optimisation step per batch and
names the registered architecture module that inference runs (``inference_module``). The
families themselves are in ``colorizer.train.families`` (the video refiner in
``colorizer.train.refiner``), all in its one ``FAMILIES`` table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from colorizer.errors import ColorizerError
from colorizer.train import data
from colorizer.train.config import TrainConfig
from colorizer.weights import architecture, load_state_dict_file, state_dict_mismatch

if TYPE_CHECKING:
    from colorizer.models.bin_classifier import BinClassifier
    from colorizer.models.eccv16 import ECCV16


class Logits(nn.Module):
    """``net.logits`` as ``forward``: DistributedDataParallel hooks ``forward`` only."""

    def __init__(self, net: BinClassifier | ECCV16) -> None:
        super().__init__()
        self.net = net

    def forward(self, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - L is the Lab name
        return self.net.logits(l)


class Family:
    name = ""
    default_arch = ""
    default_lr = 1e-3
    betas = (0.9, 0.999)

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.arch = config.arch or self.default_arch
        self.lr = config.lr or self.default_lr
        self.amp = config.amp and device.type == "cuda"
        self.net = architecture(self.arch)(**config.model_kwargs).to(device)
        multiple = getattr(self.net, "input_multiple", 1)
        if config.crop % multiple:
            raise ColorizerError(
                f"crop {config.crop} is not a multiple of {multiple}, which {self.arch} needs "
                f"(try --crop {math.ceil(config.crop / multiple) * multiple})"
            )
        load_pretrained_encoder = getattr(self.net, "load_pretrained_encoder", None)
        if load_pretrained_encoder is not None and not self.starts_trained:
            load_pretrained_encoder()  # a resumed run overwrites it from its checkpoint
        self.load_initial(config.init)  # so does this
        self.modules: dict[str, nn.Module] = {"net": self.net}
        self.optimizers: dict[str, torch.optim.Optimizer] = {"net": self.adam(self.net)}
        self.extra: dict[str, torch.Tensor] = {}  # checkpointed family state, e.g. the prior

    @property
    def starts_trained(self) -> bool:
        """Whether the whole network starts from trained weights (``--init``): then the ImageNet
        encoder weights (the train extra) are not needed, since they would be overwritten."""
        return self.config.init is not None

    def load_initial(self, init: str | None) -> None:
        """Start from ``init``: a weights file or a registered model's name, e.g. to go on
        training a shipped model with another recipe. Every key must fit."""
        if init is None:
            return
        state = load_state_dict_file(initial_weights(init), self.arch)
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:  # missing, unexpected or differently shaped tensors
            mismatch = state_dict_mismatch(exc)
            raise ColorizerError(f"{init}: does not fit {self.arch}: {mismatch}") from None

    def adam(self, module: nn.Module) -> torch.optim.Optimizer:
        """Adam over the trainable parameters; a pretrained ``encoder`` gets its own group at
        ``encoder_lr_scale`` x the learning rate (the loop scales each group by its lr_scale)."""
        encoder = getattr(module, "encoder", None)
        own = {id(p) for p in encoder.parameters()} if encoder is not None else set()
        groups: list[dict[str, Any]] = [
            {"params": [p for p in module.parameters() if id(p) not in own], "lr_scale": 1.0},
            {
                "params": [p for p in module.parameters() if id(p) in own],
                "lr_scale": self.config.encoder_lr_scale,
            },
        ]
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
        groups = [g for g in groups if g["params"]]
        return torch.optim.Adam(groups, lr=self.lr, betas=self.betas)

    def autocast(self):
        return torch.autocast("cuda", torch.bfloat16, enabled=self.amp)

    def parallel(self, module: nn.Module) -> nn.Module:
        """``module`` under DistributedDataParallel when running under torchrun."""
        if not torch.distributed.is_initialized():
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def prepare(self, photos: list[np.ndarray]) -> dict[str, float]:
        """Look at the training photos once, before step 0; returns facts worth logging."""
        return {}

    def step(self, batch: data.Batch) -> dict[str, float]:
        raise NotImplementedError

    def inference_module(self) -> nn.Module:
        return self.net


def initial_weights(init: str) -> Path:
    """``--init``: a registered model's name means its verified weights file."""
    from colorizer.registry import MODELS
    from colorizer.weights import ensure_weights

    return ensure_weights(init) if init in MODELS else Path(init)


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
