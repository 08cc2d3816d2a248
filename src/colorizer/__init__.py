"""colorizer: bring colour to black-and-white photographs and films."""

from colorizer.errors import ColorizerError, DownloadError, ImageReadError, WeightsError
from colorizer.version import __version__

__all__ = [
    "Colorizer",
    "ColorizerError",
    "DownloadError",
    "ImageReadError",
    "WeightsError",
    "__version__",
]


def __getattr__(name: str):
    # Imported lazily so that `import colorizer` stays cheap (no torch) for the CLI's --help.
    if name == "Colorizer":
        from colorizer.pipeline import Colorizer

        return Colorizer
    raise AttributeError(f"module 'colorizer' has no attribute {name!r}")
