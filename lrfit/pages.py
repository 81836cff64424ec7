"""Memory pages of lrfit's large working arrays: numpy's huge-page advice off while lrfit works.

numpy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of
4 MB or more.  On a bare machine a 2 MB page is mapped a little faster than 512 small
ones.  On a virtual machine (cloud instances, CI runners, the microVMs of shared
clusters) a huge page the guest has not used before must also be found and backed by
the host, and that can stall for longer than a mini-batch's simulation (README,
"Benchmarks").  A fit allocates arrays of that size for its first mini-batches (the
states, rates and residuals of the latent-coordinate loss, kept for reuse afterwards).

:func:`base_pages` turns the advice off for the duration of a fit or command and
restores it afterwards.  A user who set ``NUMPY_MADVISE_HUGEPAGE`` (numpy's own switch,
read when numpy is imported) keeps that choice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: numpy's environment switch of the huge-page advice; when set, lrfit leaves the advice alone.
HUGEPAGE_ENV = "NUMPY_MADVISE_HUGEPAGE"


def _advice_switch():
    """The setter of numpy's huge-page advice (returns the previous setting), or None where numpy lacks it."""
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    return getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)


@contextmanager
def base_pages() -> Iterator[bool]:
    """Run the block with numpy's huge-page advice off, then restore it (see the module docstring).

    Yields
    ------
    bool
        Whether lrfit turned the advice off (False: the user's ``NUMPY_MADVISE_HUGEPAGE``
        decides, or this numpy has no such advice).

    Examples
    --------
    >>> import numpy as np
    >>> with base_pages():
    ...     states = np.zeros((69, 8, 32, 512), dtype=np.float32)
    """
    switch = None if HUGEPAGE_ENV in os.environ else _advice_switch()
    if switch is None:
        yield False
        return
    before = switch(False)
    try:
        yield True
    finally:
        switch(before)
