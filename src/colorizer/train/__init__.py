"""Training: data loading, the four model families, the loop, export to the shipped format.

Imported only by `colorize train` / `colorize export` (and ``python -m colorizer.train``), so
inference never pays for it.
"""
