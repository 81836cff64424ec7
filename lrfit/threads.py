"""How many threads lrfit's work runs on, and how idle threads wait: the one thread policy.

lrfit's networks are small: one simulation step of a 512-unit fit is a few ``(batch, N)``
blocks, microseconds of work per parallel region.  On a machine that other jobs share,
a second thread then costs more than it gives: every region waits for a thread that the
scheduler has given to another process, and OpenMP's busy-waiting threads burn the CPU
time that the other process needed (``benchmarks/bench_contention.py``; figures in README,
"Benchmarks").  The policy:

* **Passive waiting.**  ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead of
  spinning) is set by :func:`prepare_process` when ``import lrfit`` runs before torch or
  scikit-learn start their OpenMP runtimes, unless the variable is already set (set
  ``OMP_WAIT_POLICY=ACTIVE`` to opt out).  The variable is read once, when a runtime
  starts: a program that imported torch before lrfit keeps the runtime's default and
  should set the variable itself.  Sweep workers are started with it.
* **Threads from the problem size.**  Each fit, ensemble and teacher training runs
  inside :func:`fit_threads`, which sets torch's intra-op threads *and* every BLAS and
  OpenMP pool of numpy, scipy and scikit-learn (``threadpoolctl``) to
  :func:`choose_threads` of its work per simulation step, and restores them afterwards:
  one thread per :data:`WORK_PER_THREAD` multiply-adds, so a second one from 67 M, and
  never more than the CPUs this process may use (affinity and cgroup quota).  Measured
  on a quiet 2-core machine with passive waiting, a second thread made the reference fit
  (2 M per step) 1.6x slower, and a full-rank forward and backward pass 1.03x faster at
  8 M, 1.2x at 17 M and 1.4x at 67 M; on a busy one, 4x slower at 8 M and 1.6x faster
  at 67 M.
* **The user's choice wins.**  ``--threads N`` (every ``lrfit`` command) and
  :func:`set_threads` fix the count of everything; ``OMP_NUM_THREADS`` in the
  environment, or a count below the CPU count set with ``torch.set_num_threads``, is
  used as given.  A sweep's workers are capped at their share of the CPUs
  (:func:`cap_threads`), or fixed by ``lrfit sweep --threads``.
* **Tiny numerical kernels run on one thread**: the Gaussian-mixture fits of the
  population analysis (scikit-learn's KMeans start uses its own OpenMP runtime beside
  torch's) run inside :func:`single_threaded`.

The command line runs everything else on one thread (:func:`command_threads`); from
Python, work outside lrfit's fits keeps the process's own settings.

Examples
--------
>>> choose_threads(32 * 512 * 4, cpus=2)     # a 512-unit rank-1 fit, batch 32: one thread
1
>>> choose_threads(256 * 512 * 512, cpus=2)  # a full-rank 512-unit teacher, batch 256
2
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .pages import base_pages

log = logging.getLogger(__name__)

#: Multiply-adds per simulation step that make one more thread pay (see the module docstring).
WORK_PER_THREAD = 1 << 25
#: Environment variables that size the OpenMP, MKL and OpenBLAS pools of a process about to start.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
WAIT_ENV = "OMP_WAIT_POLICY"


@dataclass
class _Settings:
    exact: int | None = None  # --threads / set_threads: every pool, every step
    cap: int | None = None  # a sweep worker's share of the CPUs
    managed: bool = False  # the process's current count was set by lrfit (not a user's choice)
    loops: int | None = None  # threads of the compiled latent loops (None: numba's default)


_SETTINGS = _Settings()


def _set_loop_threads(threads: int | None) -> int | None:
    """Ask the compiled latent loops for *threads* threads from now on; returns the previous request."""
    previous, _SETTINGS.loops = _SETTINGS.loops, None if threads is None else max(1, int(threads))
    return previous


def loop_threads_in_force() -> int | None:
    """The thread count the compiled latent loops run on now (``None``: numba's default, every CPU)."""
    return _SETTINGS.loops


def prepare_process() -> None:
    """Ask OpenMP runtimes not started yet to wait passively (``OMP_WAIT_POLICY=PASSIVE``).

    Does nothing when the variable is set, or when torch has already started its
    runtime (the variable would come too late for it and only change other runtimes).
    """
    if WAIT_ENV not in os.environ and "torch" not in sys.modules:
        os.environ[WAIT_ENV] = "PASSIVE"


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, bounded by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    for path in (Path("/sys/fs/cgroup/cpu.max"), Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")):
        try:
            fields = path.read_text().split()
        except OSError:
            continue
        if path.name == "cpu.max" and len(fields) == 2 and fields[0] != "max":
            cpus = min(cpus, max(1, math.ceil(int(fields[0]) / int(fields[1]))))
        elif path.name == "cpu.cfs_quota_us" and fields and int(fields[0]) > 0:
            period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
            try:
                cpus = min(cpus, max(1, math.ceil(int(fields[0]) / int(period.read_text().split()[0]))))
            except (OSError, ValueError, IndexError):
                pass
        break
    return max(1, cpus)


def _env_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def user_threads() -> int | None:
    """The thread count the user chose, if any.

    That is ``--threads`` / :func:`set_threads`, ``OMP_NUM_THREADS``, or a
    ``torch.set_num_threads`` count below the CPU count.
    """
    if _SETTINGS.exact is not None:
        return _SETTINGS.exact
    if _SETTINGS.cap is not None:  # a sweep worker: its environment is the sweep's, not the user's
        return None
    env = _env_threads()
    if env is not None:
        return env
    if not _SETTINGS.managed and "torch" in sys.modules:
        current = sys.modules["torch"].get_num_threads()
        if current < available_cpus():
            return current
    return None


def choose_threads(work: float | None, cpus: int | None = None) -> int:
    """Threads for work of *work* multiply-adds per simulation step (``None``: unknown, small).

    The user's choice (:func:`user_threads`) when there is one; else one thread per
    :data:`WORK_PER_THREAD` multiply-adds, at least one, at most the CPUs (or a sweep
    worker's share of them).

    Parameters
    ----------
    work : float, optional
        Multiply-adds of one simulation step (e.g. ``batch * units * (rank + inputs + 1)``).
    cpus : int, optional
        CPUs to spread over (default :func:`available_cpus`; given, it also ignores the user's choice).

    Returns
    -------
    int
    """
    if cpus is None:
        chosen = user_threads()
        if chosen is not None:
            return chosen
        cpus = _usable_cpus()
    return int(max(1, min(cpus, (work or 0) // WORK_PER_THREAD)))


def _usable_cpus() -> int:
    """The CPUs this process may use (:func:`available_cpus`), at most a sweep worker's share."""
    return available_cpus() if _SETTINGS.cap is None else min(_SETTINGS.cap, available_cpus())


def set_threads(threads: int | None) -> None:
    """Fix the thread count of this process and of the processes it starts (``--threads``).

    Sets torch's intra-op threads, every BLAS and OpenMP pool already loaded
    (``threadpoolctl``), and ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` /
    ``OPENBLAS_NUM_THREADS`` for pools not started yet and for child processes.
    ``None`` clears the choice (the policy decides again; the environment is left as it is).

    Parameters
    ----------
    threads : int or None
        Threads (>= 1), or ``None``.

    Examples
    --------
    In a new process (the setting is the process's, and its children's):

    >>> import subprocess, sys
    >>> code = "import lrfit, torch; lrfit.set_threads(1); print(torch.get_num_threads())"
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    '1'
    """
    if threads is None:
        _SETTINGS.exact = None
        return
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"The thread count must be a positive integer, got {threads}.")
    _SETTINGS.exact = threads
    os.environ.update({key: str(threads) for key in THREAD_ENV})
    _apply(threads)


def cap_threads(threads: int | None) -> None:
    """Let the policy use at most *threads* threads (a sweep worker's share of the CPUs; ``None``: no cap)."""
    _SETTINGS.cap = None if threads is None else max(1, int(threads))


@contextmanager
def command_threads(threads: int | None = None) -> Iterator[int]:
    """The command line's policy for one command (restored afterwards, so in-process calls leave no trace).

    The command runs with numpy's huge-page advice off (:func:`lrfit.pages.base_pages`).

    With *threads* (``--threads``) every pool runs that many threads, child processes
    included; otherwise the user's choice (:func:`user_threads`) or one thread runs the
    work outside fits, and each fit chooses its own count (:func:`fit_threads`).

    Parameters
    ----------
    threads : int, optional
        ``--threads``.

    Yields
    ------
    int
        The thread count of work outside fits.
    """
    saved_settings = (_SETTINGS.exact, _SETTINGS.managed)
    saved_env = {key: os.environ.get(key) for key in THREAD_ENV}
    try:
        if threads is not None:
            _SETTINGS.exact = int(threads)
            os.environ.update({key: str(int(threads)) for key in THREAD_ENV})
        chosen = user_threads()
        _SETTINGS.managed = chosen is None
        with base_pages(), limited_threads(chosen if chosen is not None else 1) as n:
            yield n
    finally:
        _SETTINGS.exact, _SETTINGS.managed = saved_settings
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _apply(threads: int) -> None:
    """Set torch's threads and every loaded BLAS/OpenMP pool to *threads* (for good)."""
    import torch
    from threadpoolctl import threadpool_limits

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    _set_loop_threads(threads)


@contextmanager
def limited_threads(threads: int, loops: int | None = None) -> Iterator[int]:
    """Run the block with torch and every loaded BLAS/OpenMP pool at *threads* threads, then restore them.

    The compiled loops of the latent loss (:mod:`lrfit.fitting.latent.compiled`) run on
    *loops* threads (default: *threads*).
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    loops_before = _set_loop_threads(threads if loops is None else loops)
    try:
        with threadpool_limits(limits=threads):
            yield threads
    finally:
        _set_loop_threads(loops_before)
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def fit_threads(work: float | None) -> Iterator[int]:
    """Run a fit with :func:`choose_threads` of its *work* per simulation step, huge-page advice off.

    See the module docstring; numpy's huge-page advice is off through :func:`lrfit.pages.base_pages`.

    Parameters
    ----------
    work : float, optional
        Multiply-adds of one simulation step.

    Yields
    ------
    int
        The thread count in force.
    """
    threads, loops = choose_threads(work), loop_threads()
    log.debug("running with %d thread(s) (%s multiply-adds per simulation step), %d for the compiled loops",
              threads, work, loops)
    with base_pages(), limited_threads(threads, loops) as n:
        yield n


def loop_threads() -> int:
    """Threads of the latent loss's compiled loops in a fit.

    The user's choice, else every CPU this process may use (a sweep worker's share).

    Unlike an intra-op kernel, whose threads meet at every step, one call of the loops
    hands each thread whole trajectories for the whole mini-batch, so a thread that the
    scheduler holds back delays the call by its share of the work and no more.
    """
    chosen = user_threads()
    return chosen if chosen is not None else _usable_cpus()


def step_work(batch: int, units: int, width: int) -> int:
    """Multiply-adds of one simulation step: *batch* trials of *units* units, each reading *width* weights.

    For a low-rank network ``width`` is about ``2 * rank + inputs + 1`` (the loadings
    ``M``, ``N``, ``W_in`` and the start); for a full-rank one, the units.
    """
    return int(batch) * int(units) * max(1, int(width))


def with_fit_threads(work: Callable[..., float | None]) -> Callable[[Callable], Callable]:
    """Decorate a fit method to run under :func:`fit_threads` of ``work(*args, **kwargs)``.

    Parameters
    ----------
    work : callable
        Called with the method's arguments (``self`` first); returns the multiply-adds of
        one simulation step.
    """
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            with fit_threads(work(*args, **kwargs)):
                return method(*args, **kwargs)
        return wrapper
    return decorate


@contextmanager
def single_threaded() -> Iterator[int]:
    """One thread for torch and every BLAS/OpenMP pool (tiny kernels, e.g. mixture fits)."""
    with limited_threads(1) as n:
        yield n
