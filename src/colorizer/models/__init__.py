"""Network architectures; importing this package registers them, and the trained models of each
(its catalogue entries, kept in the architecture's own file), with ``colorizer.registry``.

A new architecture is a new file here that decorates its class with ``@register_architecture``
and calls ``register_models(ModelSpec(...))`` for its trained weights, and a line below. The
import order is the catalogue's order (``colorize models``).
"""

from colorizer.models import (
    colornet,
    colornet_hints,
    colornet_v2,
    colornet_v2_hints,
    colornet_v3,
    eccv16,
    efficientnet_lite,
    pix2pix,
    refiner,
    regression,
    siggraph17,
    som_mlp,
)

# isort: split
# Last: eccv16's Caffe reader, whose catalogue entry follows the others.
from colorizer.models import caffe

__all__ = [
    "caffe",
    "colornet",
    "colornet_hints",
    "colornet_v2",
    "colornet_v2_hints",
    "colornet_v3",
    "eccv16",
    "efficientnet_lite",
    "pix2pix",
    "refiner",
    "regression",
    "siggraph17",
    "som_mlp",
]
