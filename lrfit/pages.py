"""Memory pages of lrfit's large working arrays: numpy's huge-page advice off while lrfit works.

numpy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of
4 MB or more.  On a bare machine a 2 MB page is mapped a little faster than 512 small
ones.  On a virtual machine (cloud instances, CI runners, the microVMs of shared
clusters) a huge page the guest has not used before must also be found and backed by
the host, and that can stall: on the 2-core development VM, writing a fresh
``(69, 8, 32, 512)`` float32 array (36 MB) took 7 ms with huge pages when they came
at once and 0.11-0.56 s when they did not, against a steady 13-14 ms with small
pages.  A fit allocates arrays of that size for its first mini-batches (the states,
rates and residuals of the latent-coordinate loss, kept for reuse afterwards), so
its first batches could take a second each: an 8-seed ensemble of the
``bench_ensemble.py`` problem spent 0.6 and 1.1 s on its first two batches against
0.02 s for each later one, and took 1.9-3.9 s in all against 1.7 s with small pages.

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
    """numpy's setter of the huge-page advice (returns the previous setting), or None where numpy lacks it."""
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
