"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any


def peak_rss() -> int:
    """Peak resident memory (bytes) of this process image: ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``ru_maxrss`` survives ``exec`` on Linux (a child started by a big parent reports at
    least the parent's resident memory at the fork), so ``/proc/self/status`` is preferred.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_mb() -> float:
    """:func:`peak_rss` in MiB."""
    return peak_rss() / 2**20


def in_fresh_process(target: Callable[..., None], *args: Any) -> Any:
    """Run ``target(*args, queue)`` in a spawned process and return what it puts on the queue.

    A fresh process has its own thread settings (set before torch starts) and its own
    peak resident memory (:func:`peak_rss`).
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result
