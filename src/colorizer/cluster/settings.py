"""What a cluster run is told: how each worker builds its colorizer, and how many workers.

A ``Colorizer`` holds a loaded network, so it is not what travels to the workers: a
``ColorizerSpec`` (the command line's model options) does, and each worker builds its own.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from colorizer.errors import ColorizerError
from colorizer.imageio import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from colorizer.pipeline import Colorizer
    from colorizer.provenance import Provenance

DEFAULT_BATCH = 8


@dataclass(frozen=True)
class ColorizerSpec:
    """``Colorizer(model, weights=, size=, device=, backend=, max_pixels=, provenance=)``, built
    where it runs. ``weights`` must name the same file on every node (a shared folder), and so
    must ``sign_key`` and ``sign_cert``, the C2PA signing identity (``--sign-key``/``--sign-cert``;
    None: the worker's ``COLORIZER_SIGN_KEY``/``COLORIZER_SIGN_CERT``, if set there).
    ``record``: a ``--record`` sidecar beside each output."""

    model: str | None = None
    weights: str | None = None
    size: int | None = None
    device: str = "auto"
    backend: str | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    sign_key: str | None = None
    sign_cert: str | None = None
    record: bool = False

    def __post_init__(self) -> None:
        # Workers do not start in the driver's folder: a relative path would miss.
        for name in ("weights", "sign_key", "sign_cert"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(Path(value).resolve()))
        if (self.sign_key is None) != (self.sign_cert is None):
            missing = "--sign-cert" if self.sign_cert is None else "--sign-key"
            raise ColorizerError(f"signing needs both a key and a certificate chain: no {missing}")

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, provenance: Provenance | None = None
    ) -> ColorizerSpec:
        """The command's model options; ``provenance``: its signing identity and ``--record``
        (``provenance.cli.provenance_from_args``: the flags, else the driver's environment)."""
        limit = getattr(args, "max_pixels", None)
        signing = provenance.signing if provenance is not None else None
        return cls(
            model=args.model,
            weights=args.weights,
            size=args.size,
            device=args.device,
            backend=getattr(args, "backend", None),
            max_pixels=DEFAULT_MAX_PIXELS if limit is None else limit or None,
            sign_key=None if signing is None else str(signing.key),
            sign_cert=None if signing is None else str(signing.cert),
            record=provenance is not None and provenance.record,
        )

    def provenance(self) -> Provenance:
        """What each output says about its making beyond its XMP: the spec's signing identity
        (checked here: the SDK and the files must be on this node), else this process's
        environment's, and the sidecar."""
        from colorizer.provenance import Provenance, signing_from

        if self.sign_key is None:
            return Provenance(Provenance.from_env().signing, record=self.record)
        return Provenance(signing_from(self.sign_key, self.sign_cert), record=self.record)

    def load(self, device: str | None = None) -> Colorizer:
        """The colorizer; ``device`` overrides the spec's (the driver checks on its CPU)."""
        from colorizer.pipeline import Colorizer

        return Colorizer(
            self.model,
            weights=self.weights,
            size=self.size,
            device=device or self.device,
            backend=self.backend,
            max_pixels=self.max_pixels,
            provenance=self.provenance(),
        )

    def check(self) -> Colorizer:
        """Build it once on the driver's CPU, so that a wrong model name, weights file or size
        is one clear error before any work is sent out rather than one per file."""
        return self.load(device="cpu")


@dataclass(frozen=True)
class ClusterOptions:
    """``address``: the Ray cluster (None: ``$RAY_ADDRESS``, else a Ray started here for the
    run, with ``num_cpus`` CPUs, default all). ``actors``: workers colorizing at once (None:
    one per GPU when the cluster has GPUs and the device allows, else one per CPU).
    ``batch_size``: photos an actor takes per call (amortises Ray's per-call cost)."""

    address: str | None = None
    actors: int | None = None
    batch_size: int = DEFAULT_BATCH
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise ColorizerError(f"--actors must be at least 1, got {self.actors}")
        if self.batch_size < 1:
            raise ColorizerError(f"--batch-size must be at least 1, got {self.batch_size}")

    @classmethod
    def from_args(cls, args: argparse.Namespace, batch_size: bool = True) -> ClusterOptions:
        batch = args.batch_size if batch_size else DEFAULT_BATCH
        return cls(address=args.address, actors=args.actors, batch_size=batch)


@dataclass(frozen=True)
class Workers:
    """How many workers, and what each one asks Ray for."""

    count: int
    num_cpus: float
    num_gpus: float


def plan_workers(spec: ColorizerSpec, options: ClusterOptions, cpus: float, gpus: float) -> Workers:
    """GPU workers when the cluster has GPUs and the device is auto or cuda, else CPU ones;
    as many as asked, or one per GPU (CPU)."""
    if spec.device == "cuda" and gpus < 1:
        raise ColorizerError("--device cuda: the Ray cluster has no GPU")
    on_gpu = gpus >= 1 and spec.device in ("auto", "cuda")
    available = int(gpus if on_gpu else cpus)
    if available < 1:
        raise ColorizerError("the Ray cluster offers no whole CPU to run a worker on")
    count = options.actors or available
    return Workers(count=count, num_cpus=1, num_gpus=1 if on_gpu else 0)
