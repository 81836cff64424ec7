"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def in_fresh_process(target: Callable[..., None], *args: Any) -> Any:
    """Run ``target(*args, queue)`` in a spawned process and return what it puts on the queue.

    A fresh process has its own thread settings (set before torch starts) and its own
    peak resident memory (``ru_maxrss``).
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result
