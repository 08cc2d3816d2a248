"""Exceptions raised by colorizer. Every message names the file or model it is about."""


class ColorizerError(Exception):
    """Base class: a problem the user can act on (bad input, missing weights, ...)."""


class ImageReadError(ColorizerError):
    """An input image cannot be read: missing, corrupt, unsupported or too large."""


class WeightsError(ColorizerError):
    """Model weights are missing, corrupt, fail verification or do not fit the architecture."""


class DownloadError(WeightsError):
    """Weights could not be downloaded (offline, broken link, hash mismatch)."""
