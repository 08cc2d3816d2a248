"""A batched Kohonen Self-Organising Map in torch, for quantising (u, v) chromaticities.

Each step takes a batch of samples, finds each sample's best-matching node, and moves every node
part of the way towards the mean of the samples weighted by a Gaussian neighbourhood on the map
grid (Kohonen's batch map, damped by a learning rate so that successive batches average out).
Neighbourhood width and learning rate decay exponentially, from half the map to a tenth of a node
and from 0.5 to 0.05: the map first orders itself, then settles into a plain quantiser.
"""

from __future__ import annotations

import torch

BATCH = 1024
SIGMA_END = 0.1  # neighbours then weigh exp(-50): the last steps are plain k-means
RATE_START, RATE_END = 0.5, 0.05


def grid_coordinates(grid: int) -> torch.Tensor:
    """(row, column) of each of the grid x grid nodes, in the codebook's order."""
    rows, columns = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.stack([rows, columns], dim=-1).reshape(-1, 2).double()


def fit_som(samples: torch.Tensor, grid: int, steps: int, seed: int) -> torch.Tensor:
    """Codebook (grid * grid x 2, float32) of a SOM trained on ``samples`` (M x 2)."""
    generator = torch.Generator().manual_seed(seed)
    samples = samples.double()
    coords = grid_coordinates(grid)
    # Linear initialisation: a regular lattice over the bulk of the data (2nd-98th percentiles).
    low, high = samples.quantile(0.02, dim=0), samples.quantile(0.98, dim=0)
    codebook = low + (high - low) * coords / max(grid - 1, 1)
    sigma_start = max(grid / 2, SIGMA_END)
    for step in range(steps):
        progress = step / max(steps - 1, 1)
        sigma = sigma_start * (SIGMA_END / sigma_start) ** progress
        rate = RATE_START * (RATE_END / RATE_START) ** progress
        batch = samples[torch.randint(len(samples), (BATCH,), generator=generator)]
        winners = torch.cdist(batch, codebook).argmin(dim=1)
        reach = torch.cdist(coords, coords[winners]) ** 2  # nodes x batch, on the map
        pull = torch.exp(-reach / (2 * sigma**2))
        mass = pull.sum(dim=1, keepdim=True)
        target = pull @ batch / mass.clamp_min(1e-12)
        # A node that no sample reaches (late, far from the data) stays where it is.
        codebook += rate * torch.where(mass > 1e-6, target - codebook, 0)
    return codebook.float()


def quantisation_error(samples: torch.Tensor, codebook: torch.Tensor) -> float:
    """Mean distance from each sample to its nearest codebook entry."""
    return float(torch.cdist(samples.float(), codebook.float()).min(dim=1).values.mean())
