"""The model families: what is trained, with which loss, and which module ships.

Every family derives from ``colorizer.train.family.Family`` (see there what a family does);
``FAMILIES`` is the one table of them, the video refiner (``colorizer.train.refiner``) included.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F

from colorizer import color
from colorizer.color import AB_SCALE  # regression targets are ab / AB_SCALE
from colorizer.errors import ColorizerError
from colorizer.train import data
from colorizer.train.config import TrainConfig
from colorizer.train.family import Family, Logits, descend, initial_weights
from colorizer.train.refiner import RefinerFamily

if TYPE_CHECKING:
    from colorizer.models.bin_classifier import BinClassifier
    from colorizer.models.colornet_hints import ColorNetHints
    from colorizer.models.colornet_v2_hints import ColorNetV2Hints
    from colorizer.models.colornet_v3 import ColorNetV3
    from colorizer.models.eccv16 import ECCV16
    from colorizer.models.som_mlp import SomMLP

PRIOR_PIXELS_PER_PHOTO = 1024
PRIOR_CHUNK = 32768  # pixels per empirical_prior call: bounds its N x 313 x 2 distance tensor


class Regression(Family):
    """The seed's Keras encoder-decoder: ab through tanh, mean squared error."""

    name = "regression"
    default_arch = "regression"

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.train_net = self.parallel(self.net)

    def step(self, batch: data.Batch) -> dict[str, float]:
        with self.autocast():
            prediction = self.train_net(batch.l)
        loss = F.mse_loss(prediction.float() / AB_SCALE, batch.ab / AB_SCALE)
        descend(self.optimizers["net"], loss)
        return {"mse": loss.item()}


class Classification(Family):
    """ECCV16's loss: soft-encoded 313-bin cross-entropy, rebalanced by the training prior."""

    name = "classification"
    default_arch = "colornet"
    # The architectures with logits() (checked below): the 313-bin classifiers and ECCV16.
    net: BinClassifier | ECCV16

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config, device)
        if not hasattr(self.net, "logits"):
            raise ColorizerError(f"architecture {self.arch!r} has no logits(): not a classifier")
        if self.arch == "eccv16":
            fix_eccv16_decoder(cast("ECCV16", self.net))  # the class registered as eccv16
        self.train_logits = self.parallel(Logits(self.net))
        self.bins = color.ab_bins().to(device)

    def prepare(self, photos: list[np.ndarray]) -> dict[str, float]:
        prior = training_prior(photos, self.config.seed)
        weights = color.rebalance_weights(
            prior, lam=self.config.rebalance_lambda, sigma=self.config.rebalance_sigma
        )
        self.extra = {"prior": prior, "weights": weights.float()}
        facts = {"prior_top10_mass": top_mass(prior)}
        if self.config.published_prior:
            published = torch.from_numpy(np.load(self.config.published_prior)).double()
            facts |= compare_priors(prior, published)
        return facts

    def step(self, batch: data.Batch) -> dict[str, float]:
        with self.autocast():
            logits = self.train_logits(batch.l)
        logits = logits.float()
        stride = batch.l.shape[-1] // logits.shape[-1]
        # ECCV16 subsamples the ab target to the logits' grid (its data_ab_ss layer).
        target = color.soft_encode(batch.ab[..., ::stride, ::stride], self.bins)
        weight = self.extra["weights"].to(self.device)[target.argmax(dim=1)]  # nearest bin's
        cross_entropy = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
        loss = (weight * cross_entropy).mean()
        losses = {"ce": loss.item()}
        if self.config.ab_l1_weight > 0:
            true_ab = batch.ab[..., ::stride, ::stride]
            # Decoded as the model decodes at inference: ours at their own temperature, ECCV16 by
            # its forward's plain softmax mean (temperature 1; the Caffe weights fold in theirs).
            temperature = getattr(self.net, "temperature", 1.0)
            decoded = color.annealed_mean(logits, self.bins, temperature)
            l1 = (decoded - true_ab).abs().mean() / AB_SCALE
            loss = loss + self.config.ab_l1_weight * l1
            losses["l1"] = l1.item()
        descend(self.optimizers["net"], loss)
        return losses


def fix_eccv16_decoder(net: ECCV16) -> None:
    """ECCV16's last 1x1 conv is the fixed bin-centre decoder (centres / 110), never trained."""
    with torch.no_grad():
        net.model_out.weight.copy_(color.ab_bins().T.reshape(2, -1, 1, 1) / AB_SCALE)
    net.model_out.weight.requires_grad_(False)


def training_prior(photos: list[np.ndarray], seed: int) -> torch.Tensor:
    """``color.empirical_prior`` over random pixels of the training photos (float64, sums to 1)."""
    rgb = data.sample_pixels(photos, PRIOR_PIXELS_PER_PHOTO, seed)
    ab = color.rgb_to_lab(rgb)[:, 1:]
    total = torch.zeros(color.ab_bins().shape[0], dtype=torch.float64)
    for chunk in ab.split(PRIOR_CHUNK, dim=2):
        total += color.empirical_prior(chunk) * chunk.shape[2]
    return total / total.sum()


def top_mass(prior: torch.Tensor, count: int = 10) -> float:
    return float(prior.topk(count).values.sum())


def compare_priors(ours: torch.Tensor, published: torch.Tensor) -> dict[str, float]:
    """How far our training-set prior is from the published ImageNet one: total variation,
    Jensen-Shannon divergence (nats; finite despite empty bins) and the mass of each prior's
    10 most frequent bins."""
    ours, published = ours / ours.sum(), published.double() / published.sum()
    middle = (ours + published) / 2

    def kl(p: torch.Tensor, q: torch.Tensor) -> float:
        mask = p > 0
        return float((p[mask] * (p[mask] / q[mask]).log()).sum())

    return {
        "prior_tv": float((ours - published).abs().sum() / 2),
        "prior_js": (kl(ours, middle) + kl(published, middle)) / 2,
        "prior_top10_mass": top_mass(ours),
        "published_top10_mass": top_mass(published),
    }


class Pix2PixGAN(Family):
    """pix2pix: U-Net generator against a PatchGAN discriminator, plus L1 to the true ab."""

    name = "gan"
    default_arch = "pix2pix"
    default_lr = 2e-4
    betas = (0.5, 0.999)  # as published: a short-memory Adam keeps the two players stable

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        from colorizer.models.pix2pix import PatchGAN

        super().__init__(config, device)
        self.disc = PatchGAN().to(device)
        self.modules["disc"] = self.disc
        self.optimizers["disc"] = self.adam(self.disc)
        self.train_gen = self.parallel(self.net)
        self.train_disc = self.parallel(self.disc)

    def step(self, batch: data.Batch) -> dict[str, float]:
        l, ab = batch.l, batch.ab  # noqa: E741
        with self.autocast():
            fake = self.train_gen(l)
            judged = self.train_disc(l, fake).float()
        adversarial = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        l1 = (fake.float() - ab).abs().mean() / AB_SCALE
        descend(self.optimizers["net"], adversarial + self.config.l1_weight * l1)
        # Real and fake go through the discriminator as one batch: DDP wants one forward per
        # backward. The generator's step above left gradients on it: descend() clears them.
        with self.autocast():
            judged = self.train_disc(torch.cat([l, l]), torch.cat([ab, fake.detach()])).float()
        real, made = judged.chunk(2)
        disc_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(made, torch.zeros_like(made))
        )
        descend(self.optimizers["disc"], disc_loss)
        return {"g_adv": adversarial.item(), "g_l1": l1.item(), "d": disc_loss.item()}


class SomMlp(Family):
    """Richart et al.: fit the SOM to the training (u, v), then the MLP with cross-entropy."""

    name = "som-mlp"
    default_arch = "som-mlp"
    net: SomMLP
    som_pixels_per_photo = 256

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config, device)
        self.train_mlp = self.parallel(self.net.mlp)

    def prepare(self, photos: list[np.ndarray]) -> dict[str, float]:
        from colorizer.train.som import fit_som, quantisation_error

        rgb = data.sample_pixels(photos, self.som_pixels_per_photo, self.config.seed)
        uv = color.rgb_to_luv(rgb)[0, 1:, :, 0].T
        grid = math.isqrt(self.net.codebook.shape[0])
        codebook = fit_som(uv, grid, self.config.som_steps, self.config.seed)
        self.net.codebook.copy_(codebook)
        return {"som_quantisation_error": quantisation_error(uv, codebook)}

    def step(self, batch: data.Batch) -> dict[str, float]:
        uv = color.rgb_to_luv(batch.rgb)[:, 1:]
        codebook = self.net.codebook
        # Nearest codebook colour per pixel, from |x|^2 - 2 x.c + |c|^2 (|x|^2 is common to all).
        distance = codebook.square().sum(1)[:, None, None] - 2 * torch.einsum(
            "nchw,kc->nkhw", uv, codebook
        )
        target = distance.argmin(dim=1)
        with self.autocast():
            logits = self.train_mlp(self.net.normalize(batch.l))
        loss = F.cross_entropy(logits.float(), target)
        descend(self.optimizers["net"], loss)
        return {"ce": loss.item()}


class Hints(Classification):
    """SIGGRAPH17's local hints on our classifiers: fine-tune ``colornet-hints`` from
    ``colornet-v1`` or ``colornet-v2-hints`` from ``colornet-v2`` (the architecture's
    ``initial_model``; its hint convolutions start at zero) with hints sampled from the ground
    truth as published: a geometric number of points (p = 1/8), P x P patches with P drawn from
    1..9, placed around the centre (normal), valued at the patch's mean true ab. Loss: the
    classifier's rebalanced cross-entropy plus L1 on the decoded ab (hints must be obeyed)."""

    name = "hints"
    default_arch = "colornet-hints"
    # The classifiers that take hints (checked below).
    net: ColorNetHints | ColorNetV2Hints | ColorNetV3
    default_lr = 3e-4
    patch_sizes = tuple(range(1, 10))
    new_keys: tuple[str, ...] = ("hint_",)  # what the initial weights may lack (start at zero)

    @property
    def starts_trained(self) -> bool:
        return True  # always from trained weights: --init, or the architecture's initial_model

    def load_initial(self, init: str | None) -> None:
        """Always start from trained weights (default: the architecture's initial_model); the
        hint convolutions they lack start at zero."""
        from colorizer.weights import ensure_weights, load_state_dict_file

        if not getattr(self.net, "accepts_hints", False):
            raise ColorizerError(f"architecture {self.arch!r} takes no hints")
        path = initial_weights(init) if init else ensure_weights(self.net.initial_model)
        state = load_state_dict_file(path, self.arch)
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith(self.new_keys) for key in missing):
            raise ColorizerError(f"{path}: does not fit {self.arch} ({missing=}, {unexpected=})")

    def hints(self, ab: torch.Tensor, generator: np.random.Generator):
        from colorizer.guidance.hints import encode_hints, geometric_count, sample_hints

        h, w = ab.shape[-2:]
        none = self.config.no_hint_fraction

        def count() -> int:  # no extra draw without no_hint_fraction: same streams as before
            return 0 if none > 0 and generator.random() < none else geometric_count(generator)

        planes = [
            encode_hints(
                sample_hints(
                    grid_ab,
                    count(),
                    generator,
                    patch=self.patch_sizes,
                    normal=True,
                ),
                w,
                h,
                (h, w),
            )
            for grid_ab in ab.permute(0, 2, 3, 1).cpu().numpy()
        ]
        hint_ab = torch.from_numpy(np.stack([p[0] for p in planes])).to(ab.device)
        mask = torch.from_numpy(np.stack([p[1] for p in planes])).to(ab.device)
        return hint_ab, mask

    def batch_hints(self, batch: data.Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Hints for a batch, drawn from a seed its own pixels give (a resumed run redraws them)."""
        seed = int(batch.ab[:, :, 0, 0].sum().item() * 1000) & 0x7FFFFFFF
        return self.hints(batch.ab, np.random.default_rng(seed))

    def hint_losses(self, logits: torch.Tensor, ab: torch.Tensor):
        """(rebalanced cross-entropy, L1 of the decoded ab / 110, decoded ab, true ab), both ab
        on the logits' grid."""
        stride = ab.shape[-1] // logits.shape[-1]
        true_ab = ab[..., ::stride, ::stride]
        target = color.soft_encode(true_ab, self.bins)
        weight = self.extra["weights"].to(self.device)[target.argmax(dim=1)]
        cross_entropy = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
        decoded = color.annealed_mean(logits, self.bins, self.net.temperature)
        l1 = (decoded - true_ab).abs().mean() / AB_SCALE
        return (weight * cross_entropy).mean(), l1, decoded, true_ab

    def step(self, batch: data.Batch) -> dict[str, float]:
        hint_ab, mask = self.batch_hints(batch)
        with self.autocast():
            logits = self.net.logits(batch.l, hint_ab, mask)
        ce, l1, _, _ = self.hint_losses(logits.float(), batch.ab)
        loss = ce + self.config.hint_l1_weight * l1
        descend(self.optimizers["net"], loss)
        return {"ce": loss.item(), "l1": l1.item()}


class Guided(Hints):
    """colornet-v3's recipe: one network for automatic colour and hints, trained fast on a CPU.

    The hints family's loss and hint sampling, with ``no_hint_fraction`` of the photos given no
    hint (so every step also trains the automatic model), the hint convolutions at
    ``hint_lr_scale`` x the learning rate (they start at zero and must grow), and, with
    ``freeze_early``, the encoder's stem and first blocks fixed and run without gradients (no
    hint enters there). The confidence head learns, by binary cross-entropy, whether each
    decoded ab lands within ``CONFIDENT_WITHIN`` of the truth.
    """

    name = "guided"
    default_arch = "colornet-v3"
    new_keys = ("hint_", "confidence_")
    net: ColorNetV3

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config, device)
        if not hasattr(self.net, "late_features"):
            raise ColorizerError(f"architecture {self.arch!r} is not a colornet-v3")
        if config.channels_last:
            self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def adam(self, module: torch.nn.Module) -> torch.optim.Optimizer:
        """Adam over three groups: decoder (1), trainable encoder (encoder_lr_scale), hint
        convolutions (hint_lr_scale); frozen early parameters in none."""
        if self.config.freeze_early:
            for parameter in self.net.early_parameters():
                parameter.requires_grad_(False)
        encoder = {id(p) for p in self.net.encoder.parameters()}
        hint = {id(p) for name, p in self.net.named_parameters() if name.startswith("hint_")}
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for parameter in module.parameters():
            if not parameter.requires_grad:
                continue
            scale = (
                self.config.hint_lr_scale
                if id(parameter) in hint
                else self.config.encoder_lr_scale
                if id(parameter) in encoder
                else 1.0
            )
            groups.setdefault(scale, []).append(parameter)
        return torch.optim.Adam(
            [{"params": params, "lr_scale": scale} for scale, params in groups.items()],
            lr=self.lr,
            betas=self.betas,
        )

    def step(self, batch: data.Batch) -> dict[str, float]:
        from colorizer.models.colornet_hints import hint_channels
        from colorizer.models.colornet_v3 import CONFIDENT_WITHIN

        hint_ab, mask = self.batch_hints(batch)
        l = self._layout(batch.l)  # noqa: E741
        hints = self._layout(hint_channels(l, hint_ab, mask))
        with self.autocast():  # bf16 on CUDA with --amp; a no-op on the CPU
            with torch.set_grad_enabled(not self.config.freeze_early):
                x4, x8 = self.net.early_features(l)
            features = self.net.late_features(x4, x8, hints)
            logits = self.net.head(features).float()
            confidence_logits = self.net.confidence_logits(features).float()
        ce, l1, decoded, true_ab = self.hint_losses(logits, batch.ab)
        right = ((decoded - true_ab).norm(dim=1, keepdim=True) < CONFIDENT_WITHIN).float()
        confidence = F.binary_cross_entropy_with_logits(confidence_logits, right.detach())
        descend(self.optimizers["net"], ce + self.config.hint_l1_weight * l1 + confidence)
        return {"ce": ce.item(), "l1": l1.item(), "conf_bce": confidence.item()}

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.no_grad()
    def extra_validation(self, rgb: torch.Tensor) -> dict[str, float]:
        """PSNR with 10 ground-truth hints (SIGGRAPH17's protocol, ``colorize eval --hints``'s
        draws) used as the catalogue uses them, correcting the automatic colours
        (``colorizer.guidance``), and how well the confidence is calibrated (expected
        calibration error, 10 bins)."""
        from colorizer.models.colornet_v3 import CONFIDENT_WITHIN

        net = self.net.eval()
        psnrs, probabilities, rights = [], [], []
        for chunk in rgb.split(16):
            chunk = chunk.to(self.device)
            lab = color.rgb_to_lab(chunk)
            l, ab = lab[:, :1], lab[:, 1:]  # noqa: E741
            features = net.features(l)  # once: the bins, the colours and the confidence read it
            logits = net.head(features)
            distribution = F.softmax(logits, dim=1).float().cpu()
            for index, truth in enumerate(chunk.permute(0, 2, 3, 1).cpu().numpy()):
                psnrs.append(
                    self._hinted_psnr(truth, lab[index, 0].cpu().numpy(), distribution[index])
                )
            probabilities.append(net.confidence_from(features, l.shape[-2:]).flatten().cpu())
            decoded = net.decode(logits, l.shape[-2:])
            rights.append(((decoded - ab).norm(dim=1) < CONFIDENT_WITHIN).flatten().cpu())
        net.train()
        return {"psnr_10_hints": float(np.mean(psnrs))} | calibration(
            torch.cat(probabilities), torch.cat(rights).float()
        )

    def _hinted_psnr(self, truth: np.ndarray, light: np.ndarray, distribution: torch.Tensor):
        """PSNR of one crop (``truth``, H x W x 3) with 10 ground-truth hints correcting the
        colours decoded from its 313 x g x g ``distribution``."""
        from colorizer import metrics, planes
        from colorizer.guidance.core import Guidance
        from colorizer.guidance.protocol import ground_truth_hints
        from colorizer.prediction import decode_distribution

        temperature = getattr(self.net, "temperature", color.DEFAULT_TEMPERATURE)
        prediction = decode_distribution(distribution[None], None, temperature)
        grid = light.shape[-1]
        guidance = Guidance(points=ground_truth_hints(truth, 10, grid))
        hinted = guidance.plan(light, accepts_hints=False, grid=grid).finish(prediction)
        return metrics.psnr(planes.compose(light, hinted), truth)


def calibration(probability: torch.Tensor, right: torch.Tensor, bins: int = 10) -> dict:
    """Mean confidence, accuracy and the expected calibration error over ``bins`` equal bins."""
    index = (probability * bins).long().clamp(max=bins - 1)
    error = 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            gap = (probability[chosen].mean() - right[chosen].mean()).abs()
            error += float(gap) * float(chosen.float().mean())
    return {
        "confidence": float(probability.mean()),
        "right": float(right.mean()),
        "calibration_error": error,
    }


FAMILIES: dict[str, type[Family]] = {
    family.name: family
    for family in (Regression, Classification, Pix2PixGAN, SomMlp, Hints, Guided, RefinerFamily)
}


def make_family(config: TrainConfig, device: torch.device) -> Family:
    return FAMILIES[config.family](config, device)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then a cosine from 1 down to 0.01 at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
