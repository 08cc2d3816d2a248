"""The package version, importable without importing the package's ``__init__`` (no cycles)."""

__version__ = "0.1.0"
