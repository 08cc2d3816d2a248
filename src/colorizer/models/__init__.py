"""Network architectures; importing this package registers them with ``colorizer.registry``.

The Caffe reader (``colorizer.models.caffe``) is imported on demand by the registry.
"""

from colorizer.models import colornet, eccv16, pix2pix, regression, siggraph17, som_mlp

__all__ = ["colornet", "eccv16", "pix2pix", "regression", "siggraph17", "som_mlp"]
