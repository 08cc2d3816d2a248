"""Network architectures; importing this package registers them with ``colorizer.registry``.

The Caffe reader (``colorizer.models.caffe``) is imported on demand by the registry.
"""

from colorizer.models import eccv16, siggraph17

__all__ = ["eccv16", "siggraph17"]
