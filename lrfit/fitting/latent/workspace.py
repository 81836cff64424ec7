"""The large per-batch arrays of the latent loss, kept from one mini-batch to the next."""

from __future__ import annotations

import math

import numpy as np


class Workspace:
    """The large per-batch arrays, kept from one mini-batch to the next.

    A fresh multi-megabyte array is mapped page by page on first touch; on a virtual
    machine those page faults can cost more than the simulation itself (README, "Benchmarks").  A forward pass
    leases its arrays; they come back when its graph is freed (after the backward pass,
    once the loss is dropped), so a retained graph keeps them.  Buffers are flat and
    handed out as views of their first entries, the smallest free one that is large
    enough, so the last, smaller mini-batch of an epoch and an evaluation reuse the
    training batches' memory instead of mapping their own.
    """

    def __init__(self, keep: int = 8) -> None:
        self._free: dict[np.dtype, list[np.ndarray]] = {}
        self._keep = keep
        self.allocated = 0  # buffers mapped so far (a steady fit stops adding to it after its first batches)

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A ``(shape)`` view of the smallest free buffer large enough, or of a new one."""
        size, free = math.prod(shape), self._free.get(np.dtype(dtype), [])
        large_enough = [i for i, buffer in enumerate(free) if buffer.size >= size]
        if large_enough:
            flat = free.pop(min(large_enough, key=lambda i: free[i].size))
        else:
            flat = np.empty(size, dtype=dtype)
            self.allocated += 1
        return flat[:size].reshape(shape)

    def give(self, arrays: tuple[np.ndarray | None, ...]) -> None:
        """Return leased arrays (views included) to the pool; at most ``keep`` buffers are kept."""
        for array in arrays:
            if array is None:
                continue
            flat = array
            while isinstance(flat.base, np.ndarray):
                flat = flat.base
            free = self._free.setdefault(flat.dtype, [])
            if flat.ndim == 1 and flat.flags.c_contiguous and not any(flat is b for b in free):
                free.append(flat)
                if len(free) > self._keep:
                    free.pop(min(range(len(free)), key=lambda i: free[i].size))


class Lease:
    """Arrays borrowed from a workspace, given back when the lease is dropped."""

    def __init__(self, workspace: Workspace, *arrays: np.ndarray | None) -> None:
        self.workspace, self.arrays = workspace, arrays

    def __del__(self) -> None:
        self.workspace.give(self.arrays)


WORKSPACE = Workspace()
