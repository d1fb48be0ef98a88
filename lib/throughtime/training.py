"""Seeding and device choice (the fit loop joins them later)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python, numpy and torch (CPU and CUDA) and return a numpy ``Generator``.

    Use the returned generator for new numpy code; the legacy global numpy state is
    seeded as well so that older code is reproducible too.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (legacy global state, for older code)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def choose_device(prefer: str | None = None) -> torch.device:
    """Return ``cuda`` when a GPU is present (or ``prefer`` names a device), else ``cpu``."""
    if prefer is not None:
        if not isinstance(prefer, str):
            raise TypeError(f"prefer must be a device name such as 'cpu' or 'cuda', got {prefer!r}")
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' was asked for, but torch.cuda.is_available() is False")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
