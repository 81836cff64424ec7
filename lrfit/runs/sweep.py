"""Sweeps: one fit config, a grid of config values, one run directory per grid point.

A sweep file (YAML)::

    base: teacher_student.yaml      # a fit config (relative to this file) or an inline mapping
    grid:                           # dotted config keys -> lists; the Cartesian product is run
      model.rank: [1, 2, 3]
      seed: [0, 1, 2, 3]
      seed+data.seed: [0, 1]        # "a+b": several keys set to the same value (linked)
    compare: false                  # also compare each student with its teacher (data.teacher)
    compare_trials: 500             # fresh trials for that comparison
    max_retries: 2                  # Ray: retries of a task whose worker died

:func:`run_sweep` writes a sweep directory (layout in :mod:`lrfit.runs.layout`: ``sweep.yaml``,
``points/<name>/`` fit runs, ``results.csv``, ``summary.png``).

Points whose run directory holds ``metrics.json`` (and ``compare.json`` when
comparing) are skipped, so re-running after a crash or Ctrl-C runs only what is
missing; a point interrupted mid-fit continues from its checkpoint
(``run_fit(resume=True)``).  Points run in worker processes (a local process pool
by default, or Ray tasks); each point is seeded by its config alone and runs under the
same thread settings on both backends (:func:`thread_env`, :class:`PointThreads`), so
both give the same numbers.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LrfitError, closest
from .config import DEFAULTS, TEACHER_DATA_KEYS, load_config, read_yaml_file
from .layout import COMPARE_FILE, CONFIG_FILE, METRICS_FILE, POINTS_DIR, RESULTS_FILE, SUMMARY_FILE, SWEEP_FILE, RunDir

log = logging.getLogger(__name__)

SWEEP_KEYS = {"base", "grid", "compare", "compare_trials", "max_retries"}
#: Metrics copied from each point's ``metrics.json`` into ``results.csv``.
METRIC_KEYS = ("r2_train", "r2_test", "r2_test_per_neuron_mean", "heldout_r2", "bits_per_spike_train",
               "bits_per_spike_test", "co_bps", "rank", "epochs", "seconds", "n_neurons")
#: Metrics copied from ``compare.json`` (teacher data with ``compare: true``).
COMPARE_KEYS = ("r2_activity", "accuracy_student", "accuracy_teacher", "r2_truncated_svd", "ecc", "rate_r2", "state_r2",
                "cycle_consistency")


@dataclass
class SweepPoint:
    """One grid point.

    Attributes
    ----------
    name : str
        Readable directory name built from the grid values (``rank-2_seed-0``).
    values : dict
        Grid key -> value of this point (linked keys ``a+b`` kept as one column).
    overrides : dict
        Dotted config key -> value applied to the base config.
    """

    name: str
    values: dict[str, Any]
    overrides: dict[str, Any]


@dataclass
class Sweep:
    """A parsed sweep file.

    Attributes
    ----------
    base : dict
        The base fit config as written (before defaults are filled in).
    base_dir : Path
        Folder relative data paths of the base config are resolved from.
    grid : dict
        Grid key -> list of values, in file order.
    compare : bool
        Compare each student with its teacher.
    compare_trials : int
        Fresh trials of that comparison.
    max_retries : int
        Ray retries of a task whose worker process died.
    source : str
        Where the sweep came from, for messages.
    """

    base: dict[str, Any]
    base_dir: Path
    grid: dict[str, list[Any]]
    compare: bool = False
    compare_trials: int = 500
    max_retries: int = 2
    source: str = "the sweep"
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """Grid keys in file order."""
        return list(self.grid)


# -- reading a sweep ---------------------------------------------------------------------
def _valid_keys(base: dict[str, Any]) -> set[str]:
    """Every dotted key a grid may set, given the base config's data section."""
    keys: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and value:
                walk(value, f"{prefix}{key}.")
            keys.add(f"{prefix}{key}")

    walk(DEFAULTS, "")
    data = base.get("data") or {}
    if "teacher" in data:
        keys.update(f"data.{k}" for k in TEACHER_DATA_KEYS)
    return keys


def _check_grid_key(key: str, base: dict[str, Any], source: str) -> None:
    valid = _valid_keys(base)
    data = base.get("data") or {}
    if key in valid or (key.startswith("data.") and "teacher" not in data):  # recording options are open
        return
    raise LrfitError(
        f"Unknown grid key '{key}' in {source}{closest(key, sorted(valid))}; grid keys are dotted fit-config keys "
        "such as model.rank, seed, data.neurons or optim.max_epochs."
    )


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_slug(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-")
    return text or "none"


def _short_names(keys: list[str]) -> dict[str, str]:
    """Last part of each (first linked) key; the full key where two would clash."""
    short = {k: k.split("+")[0].split(".")[-1] for k in keys}
    counts = pd.Series(list(short.values())).value_counts()
    return {k: (s if counts[s] == 1 else k.split("+")[0].replace(".", "-")) for k, s in short.items()}


def expand_grid(grid: dict[str, list[Any]]) -> list[SweepPoint]:
    """The Cartesian product of a grid, first key varying slowest.

    Parameters
    ----------
    grid : dict
        Grid key (dotted config key, or keys joined by ``+`` set to the same value) -> values.

    Returns
    -------
    list of SweepPoint
    """
    keys = list(grid)
    short = _short_names(keys)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        overrides = {part.strip(): v for k, v in values.items() for part in k.split("+")}
        name = "_".join(f"{short[k]}-{_slug(v)}" for k, v in values.items())
        points.append(SweepPoint(name, values, overrides))
    seen: dict[str, dict[str, Any]] = {}
    for point in points:
        if point.name in seen:
            raise LrfitError(
                f"Two grid points get the same name '{point.name}' ({seen[point.name]} and {point.values}): their "
                "values print alike (e.g. 1 and 1.0); make the grid values distinct."
            )
        seen[point.name] = point.values
    return points


def load_sweep(path: str | Path | None = None, spec: dict[str, Any] | None = None) -> Sweep:
    """Read and check a sweep file (or an inline mapping).

    Parameters
    ----------
    path : str or Path, optional
        YAML sweep file; ``base`` paths are relative to its folder.
    spec : dict, optional
        The sweep as a mapping (used when *path* is None; paths relative to the cwd).

    Returns
    -------
    Sweep
        With ``points`` expanded; every point's config has been validated.
    """
    if path is not None:
        path = Path(path)
        source = f"'{path}'"
        spec = read_yaml_file(path, "Sweep file", "a YAML sweep file")
        folder = path.resolve().parent
    else:
        source, folder = "the sweep", Path.cwd()
    if not isinstance(spec, dict):
        raise LrfitError(f"{source} must be a mapping with 'base' (a fit config) and 'grid' (key -> list of values).")
    unknown = sorted(set(spec) - SWEEP_KEYS)
    if unknown:
        raise LrfitError(f"Unknown sweep key '{unknown[0]}' in {source}{closest(unknown[0], SWEEP_KEYS)}; "
                         f"valid keys: {', '.join(sorted(SWEEP_KEYS))}.")
    base_spec = spec.get("base")
    if isinstance(base_spec, (str, Path)):
        base_path = (folder / Path(base_spec).expanduser()).resolve()
        if not base_path.is_file():
            raise LrfitError(f"The base config '{base_spec}' named in {source} does not exist (looked for "
                             f"'{base_path}'); give a path relative to the sweep file or an inline config.")
        base = read_yaml_file(base_path, "The base config", "a fit config")
        base_dir = base_path.parent
    elif isinstance(base_spec, dict):
        base, base_dir = base_spec, folder
    else:
        raise LrfitError(f"{source} needs 'base': the path of a fit config (relative to the sweep file) or an "
                         "inline config mapping.")
    grid = spec.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise LrfitError(f"The grid of {source} is empty; add grid: {{model.rank: [1, 2], seed: [0, 1]}} "
                         "(dotted config keys -> lists of values).")
    for key, values in grid.items():
        for part in str(key).split("+"):
            _check_grid_key(part.strip(), base, source)
        if not isinstance(values, list) or not values:
            raise LrfitError(f"Grid key '{key}' in {source} must map to a non-empty list of values, got {values!r}.")
    sweep = Sweep(base=base, base_dir=base_dir, grid={str(k): v for k, v in grid.items()},
                  compare=bool(spec.get("compare", False)), compare_trials=int(spec.get("compare_trials", 500)),
                  max_retries=int(spec.get("max_retries", 2)), source=source)
    sweep.points = expand_grid(sweep.grid)
    if sweep.compare and "teacher" not in (base.get("data") or {}):
        raise LrfitError(f"{source} sets compare: true but its base config's data are not simulated from a teacher "
                         "(data.teacher); drop compare or fit teacher data.")
    for point in sweep.points:  # validate every point's config up front: one sentence, before any work
        point_config(sweep, point)
    return sweep


def point_config(sweep: Sweep, point: SweepPoint) -> dict[str, Any]:
    """The resolved fit config of one grid point (base config + the point's values)."""
    overrides = [f"{k}={json.dumps(v)}" for k, v in point.overrides.items()]
    config = load_config(extra=sweep.base, overrides=overrides)
    config["_base_dir"] = str(sweep.base_dir)
    return config


# -- running one point (in a worker) -----------------------------------------------------
def is_finished(directory: Path, compare: bool) -> bool:
    """Whether a point's run directory holds its final metrics (and comparison)."""
    return RunDir(directory).has(METRICS_FILE, *([COMPARE_FILE] if compare else []))


def point_row(point: SweepPoint, directory: Path) -> dict[str, Any]:
    """The ``results.csv`` row of a finished point, read from its run directory."""
    run = RunDir(directory)
    metrics = run.read(METRICS_FILE)
    row: dict[str, Any] = {"point": point.name}
    row.update({k: _cell(v) for k, v in point.values.items()})
    row.update({k: metrics[k] for k in METRIC_KEYS if k in metrics})
    result = run.read(COMPARE_FILE)
    if result is not None:
        row.update({k: result[k] for k in COMPARE_KEYS if k in result})
    return row


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


@dataclass(frozen=True)
class PointThreads:
    """Threads of each sweep point: exactly *count* (``--threads``), or at most *count*, its share of the CPUs.

    Below that cap, the thread policy of :mod:`lrfit.threads` chooses from each fit's size.
    """

    count: int
    exact: bool = True


def run_point(config: dict[str, Any], directory: str, compare: bool, compare_trials: int,
              threads: PointThreads | int) -> str:
    """Fit one grid point into *directory* (resuming what is there); run in a worker process.

    Parameters
    ----------
    config : dict
        Resolved fit config of the point.
    directory : str
        Its run directory.
    compare : bool
        Also compare the student with its teacher (``compare.json``).
    compare_trials : int
        Fresh trials of that comparison.
    threads : PointThreads or int
        Threads of this point (an int: exactly that many); the same on every backend, for identical numbers.

    Returns
    -------
    str
        *directory*.
    """
    from ..threads import cap_threads, set_threads
    from .fit import run_fit

    threads = threads if isinstance(threads, PointThreads) else PointThreads(int(threads))
    if threads.exact:
        set_threads(max(1, threads.count))
    else:
        cap_threads(threads.count)
    run = RunDir(directory)
    if not run.has(METRICS_FILE):
        run_fit(config, run.path, resume=True, progress=False)
    if compare and not run.has(COMPARE_FILE):
        from .compare import compare_student_teacher

        teacher = run.read(CONFIG_FILE)["data"]["teacher"]
        compare_student_teacher(run.path, teacher, n_trials=compare_trials)
    return directory


# -- writing results -----------------------------------------------------------------------
def write_results(rows: Iterable[dict[str, Any]], path: Path) -> pd.DataFrame:
    """Write ``results.csv`` atomically (a temporary file renamed over the old one)."""
    frame = pd.DataFrame(list(rows))
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return frame


# -- backends ------------------------------------------------------------------------------
Task = tuple[SweepPoint, dict[str, Any], str]


def die_with_parent() -> None:
    """Ask the kernel to end this worker when the sweep process dies, even by ``kill -9`` (Linux only)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no glibc
            log.debug("could not tie the sweep worker to its parent")
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)


def thread_env(threads: int) -> dict[str, str]:
    """Environment that starts a worker process with *threads* OpenMP/MKL/OpenBLAS threads, waiting passively.

    The thread count must be set before torch starts: MKL picks its kernels at start-up,
    and a process started with one thread gives different last digits from one started
    with many and switched to one by ``torch.set_num_threads``.  Both backends start
    their workers with this environment, so the same point gives the same numbers.
    Idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, unless this process's
    environment says otherwise): spinning workers would take the CPU from each other.
    """
    from ..threads import THREAD_ENV, WAIT_ENV

    return {**{key: str(threads) for key in THREAD_ENV}, WAIT_ENV: os.environ.get(WAIT_ENV, "PASSIVE")}


def _run_local(tasks: list[Task], sweep: Sweep, workers: int, threads: PointThreads,
               done: Callable[[SweepPoint, BaseException | None], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    saved = {key: os.environ.get(key) for key in thread_env(threads.count)}
    os.environ.update(thread_env(threads.count))  # inherited by the spawned workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent)
    try:
        futures = {pool.submit(run_point, cfg, d, sweep.compare, sweep.compare_trials, threads): p
                   for p, cfg, d in tasks}
        for future in as_completed(futures):
            done(futures[future], future.exception())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    pool.shutdown(wait=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise LrfitError("The Ray backend needs the 'ray' package; install it with pip install 'lrfit[ray]' "
                         "(or pip install 'ray[default]'), or use --backend local.") from None
    return ray


def _run_ray(tasks: list[Task], sweep: Sweep, workers: int, threads: PointThreads, address: str | None,
             done: Callable[[SweepPoint, BaseException | None], None]) -> None:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = dict(address=address) if address else dict(num_cpus=workers)
        try:
            ray.init(log_to_driver=False, include_dashboard=False, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise LrfitError(f"Could not connect to the Ray cluster at '{address}' ({exc}); start one with "
                             "'ray start --head' or check --address.") from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=sweep.max_retries,
                            runtime_env={"env_vars": thread_env(threads.count)})(run_point)
        refs = {remote.remote(cfg, d, sweep.compare, sweep.compare_trials, threads): p for p, cfg, d in tasks}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            error = None
            try:
                ray.get(ready[0])
            except Exception as exc:  # a task's own error, after the retries
                error = getattr(exc, "cause", None) or exc
            done(refs[ready[0]], error)
    except BaseException:
        for ref in refs if "refs" in locals() else ():
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


# -- the sweep -----------------------------------------------------------------------------
def run_sweep(
    sweep: Sweep | str | Path,
    out: str | Path,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> pd.DataFrame:
    """Run every unfinished point of a sweep and write ``results.csv`` and ``summary.png``.

    Parameters
    ----------
    sweep : Sweep, str or Path
        A parsed sweep or the path of a sweep file.
    out : str or Path
        Sweep directory (created; an existing one is resumed).
    backend : {"local", "ray"}
        A local process pool (spawned workers), or Ray tasks.
    address : str, optional
        Ray cluster address (``ray://host:10001`` or ``auto``); a local Ray is started without one.
    workers : int, optional
        Concurrent points (local pool size, or CPUs of a local Ray); default: the CPU count.
    progress : bool
        Show a progress bar over points.
    threads : int, optional
        Threads per point, for torch, BLAS and OpenMP alike.  By default each point may use
        ``cpus // workers`` (at least 1) and the thread policy (:mod:`lrfit.threads`)
        chooses from each fit's size below that.  Results are identical across backends
        for the same setting.

    Returns
    -------
    pandas.DataFrame
        The rows of ``results.csv`` (finished points, in grid order).

    Raises
    ------
    LrfitError
        When points failed (the others are finished and written) or the settings are wrong.
    """
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    if backend not in ("local", "ray"):
        raise LrfitError(f"Unknown backend '{backend}'{closest(backend, ['local', 'ray'])}; use local or ray.")
    if address and backend != "ray":
        raise LrfitError("--address names a Ray cluster; add --backend ray (or drop --address).")
    from ..threads import available_cpus

    cpus = available_cpus()
    workers = max(1, int(workers or cpus))
    point_threads = PointThreads(max(1, int(threads or cpus // workers)), exact=threads is not None)
    out = Path(out)
    with RunDir(out).lock():
        return _run_locked(sweep, out, backend, address, workers, point_threads, progress)


def _run_locked(sweep: Sweep, out: Path, backend: str, address: str | None, workers: int, threads: PointThreads,
                progress: bool) -> pd.DataFrame:
    from tqdm.auto import tqdm

    _check_spec(sweep, out)
    (out / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    _write_spec(sweep, out)
    directories = {p.name: out / POINTS_DIR / p.name for p in sweep.points}
    finished = {p.name for p in sweep.points if is_finished(directories[p.name], sweep.compare)}
    rows: dict[str, dict[str, Any]] = {n: point_row(p, directories[n]) for p in sweep.points
                                       for n in [p.name] if n in finished}
    order = [p.name for p in sweep.points]
    todo = [(p, point_config(sweep, p), str(directories[p.name])) for p in sweep.points if p.name not in finished]
    if finished:
        log.info("%d of %d points already finished in %s; running the other %d", len(finished), len(order), out,
                 len(todo))
    failures: list[tuple[str, BaseException]] = []
    bar = tqdm(total=len(order), initial=len(finished), desc="sweep", unit="point", disable=not progress)

    def done(point: SweepPoint, error: BaseException | None) -> None:
        bar.update(1)
        if error is not None:
            failures.append((point.name, error))
            log.error("point %s failed: %s", point.name, error)
            return
        rows[point.name] = point_row(point, directories[point.name])
        write_results([rows[n] for n in order if n in rows], out / RESULTS_FILE)

    try:
        if todo and backend == "local":
            _run_local(todo, sweep, min(workers, len(todo)), threads, done)
        elif todo:
            _run_ray(todo, sweep, workers, threads, address, done)
    finally:
        bar.close()
    frame = write_results([rows[n] for n in order if n in rows], out / RESULTS_FILE)
    if len(frame):
        from ..plotting.sweep import plot_sweep_summary

        plot_sweep_summary(frame, sweep.keys, out / SUMMARY_FILE, seeds=seed_keys(sweep.keys))
    if failures:
        name, error = failures[0]
        raise LrfitError(f"{len(failures)} of {len(order)} sweep points failed (first: {name}: {error}); the "
                         f"others are in {out / RESULTS_FILE}; fix the cause and re-run to finish the missing points.")
    return frame


def _spec(sweep: Sweep) -> dict[str, Any]:
    return {"base": sweep.base, "base_dir": str(sweep.base_dir), "grid": sweep.grid, "compare": sweep.compare,
            "compare_trials": sweep.compare_trials, "max_retries": sweep.max_retries}


def _check_spec(sweep: Sweep, out: Path) -> None:
    """Refuse to resume a sweep directory whose finished points were made with another base config or comparison."""
    saved = RunDir(out).read(SWEEP_FILE)
    if saved is None:
        return
    current = json.loads(json.dumps(_spec(sweep), default=str))
    saved = json.loads(json.dumps(saved, default=str))
    # the grid may grow (points are named by their values); what every point shares must not change
    changed = [k for k in ("base", "compare", "compare_trials") if saved.get(k) != current.get(k)]
    if changed and any((out / POINTS_DIR).glob(f"*/{METRICS_FILE}")):
        raise LrfitError(
            f"'{out}' holds points of another sweep ({', '.join(changed)} differ from its {SWEEP_FILE}); re-run that "
            "sweep to finish it, or give this one a new --out."
        )


def _write_spec(sweep: Sweep, out: Path) -> None:
    RunDir(out).write(SWEEP_FILE, _spec(sweep))


def seed_keys(keys: Iterable[str]) -> list[str]:
    """Grid keys that only vary seeds (their last part contains ``seed``): averaged over in summaries."""
    return [k for k in keys if all("seed" in part.split(".")[-1] for part in k.split("+"))]


def is_number(value: Any) -> bool:
    """Whether *value* is a real number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
