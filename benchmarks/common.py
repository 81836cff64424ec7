"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from pathlib import Path
from queue import Empty
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
    peak resident memory (:func:`peak_rss`).  A process that ends without a result (an
    error, printed above by the child, or killed) raises instead of waiting forever.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not proc.is_alive():
                try:  # it may have put its result just before ending
                    result = queue.get(timeout=1.0)
                    break
                except Empty:
                    raise RuntimeError(f"{target.__name__} ended (exit code {proc.exitcode}) without a result; "
                                       "its error is printed above.") from None
    proc.join()
    return result
