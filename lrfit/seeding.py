"""Seeds: independent random streams derived from one seed, and seeded ``torch.Generator`` objects."""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from *seed* and integer *keys* (independent streams).

    Parameters
    ----------
    seed : int
        Base seed.
    *keys : int
        Stream identifiers (e.g. ``epoch, 0``).

    Returns
    -------
    int

    Examples
    --------
    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
    True
    """
    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on *device* seeded with *seed*.

    Parameters
    ----------
    seed : int
        Seed.
    device : str or torch.device
        Device of the generator.

    Returns
    -------
    torch.Generator
    """
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen
