"""Network architectures; importing this package registers them with ``colorizer.registry``.

The Caffe reader (``colorizer.models.caffe``) is imported on demand by the registry.
"""

from colorizer.models import (
    colornet,
    colornet_hints,
    colornet_v2,
    eccv16,
    efficientnet_lite,
    pix2pix,
    refiner,
    regression,
    siggraph17,
    som_mlp,
)

__all__ = [
    "colornet",
    "colornet_hints",
    "colornet_v2",
    "eccv16",
    "efficientnet_lite",
    "pix2pix",
    "refiner",
    "regression",
    "siggraph17",
    "som_mlp",
]
