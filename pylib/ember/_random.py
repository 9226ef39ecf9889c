"""ember's one source of randomness: randn/rand, dropout, parameter initialisation and
DataLoader shuffling all draw from `generator()`, so `ember.manual_seed(n)` makes a run
reproducible."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed every random number generator ember uses (as torch.manual_seed)."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    """The current generator. Call it at each use rather than keeping it: manual_seed replaces
    it."""
    return _generator
