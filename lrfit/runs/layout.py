"""Run directories: every file name and layout, and all reading and writing of runs.

This docstring is the one description of the layouts; other modules point here.
Every name below is a constant of this module (``METRICS_FILE``, ...); the model files
are written by :func:`lrfit.models.save_model` and :meth:`lrfit.LowRankFit.save`.

Teacher run (``lrfit teacher``, :func:`lrfit.teachers.train_teacher`)::

    RUN/model.pt, model.json     the network; model.json "extra" holds role "teacher",
                                 the task (task.to_dict()) and the metrics
    RUN/settings.json            resolved settings (everything needed to rerun)
    RUN/metrics.json             accuracy, loss, epochs, seconds, history, ...
    RUN/checkpoint.pt/.json      last finished epoch (model, Adam state, best model,
                                 progress; RNG seeds derive from (seed, epoch)), for resume

Fit run (``lrfit fit``, :func:`lrfit.runs.fit.run_fit`)::

    RUN/config.yaml              the resolved config (every default filled in, data paths absolute)
    RUN/metrics.json             r2_train, r2_test, r2_test_per_neuron(_mean), rank, epochs,
                                 seconds, seconds_total, teacher (teacher data), ...
    RUN/model.pt, model.json     the fitted network; model.json "extra" holds role "student",
                                 fit_params, neuron_ids, input_names, condition_table, dt
    RUN/fit_state.pt             the fit's initial-state table (LowRankFit.load(RUN))
    RUN/history.csv              one row per epoch
    RUN/split.json               trials / neurons of each split (reproducible from the seeds)
    RUN/checkpoint/              optimiser checkpoint while a fit runs (removed after)

Rank-list run (``model.rank: [1, 2, 3]``)::

    RUN/rank_<R>/                one fit run per rank (model, fit_state, history, metrics)
    RUN/rank_selection.json      ranks, r2_train, r2_test, r2_test_per_neuron_mean,
                                 chosen_rank, tolerance (heldout_r2 with held-out neurons)
    RUN/config.yaml, split.json  as for a fit run; the chosen rank's model, fit_state and
    RUN/metrics.json, ...        history are copied to the top level (metrics gain rank_selection)

Cross-validated run (``preprocess.split.folds: K``)::

    RUN/fold_<k>/                one fit run per fold k = 0..K-1 (model, fit_state, history,
                                 metrics of that fold's held-out conditions or trials); with a
                                 rank list, under each rank: RUN/rank_<R>/fold_<k>/
    RUN/metrics.json             (and rank_<R>/metrics.json) r2_test / r2_train = the mean over
                                 folds, r2_test_folds, r2_train_folds, r2_test_std, folds; the
                                 other entries are fold 0's
    RUN/model.pt, ...            fold 0's network (the one analysed; its held-out conditions
                                 are in split.json and metrics.json "test_conditions")

Fit saved from Python (:meth:`lrfit.LowRankFit.save`): ``model.pt``, ``model.json`` and
``fit_state.pt`` only.  With no ``config.yaml`` the fit's data cannot be rebuilt, so the
analyses that need them (latent trajectories of the fit's trials, example neurons) are
skipped with a logged reason; those that need only the network run.

``RUN/analysis/`` (``lrfit analyze``, ``lrfit inactivate``; keys in
:mod:`lrfit.runs.analyze` and :mod:`lrfit.runs.inactivate`)::

    fixed_points.json, populations.json, overlaps.json, loadings.csv,
    latents.npz, latents.json, resample.json,
    inactivation.csv, inactivation.json, inactivation.png

Other files of a run: ``RUN/compare.json`` (``lrfit compare``: activity, connectivity and
the dynamics metrics of :mod:`lrfit.analysis.teacher_dynamics`), ``RUN/report.html``
(``lrfit report``), ``RUN/ayna_bundle.npz`` (``lrfit export --format ayna``; keys in
:mod:`lrfit.runs.export`).

Sweep directory (``lrfit sweep``, :mod:`lrfit.runs.sweep`)::

    DIR/sweep.yaml               the sweep as run (grid and resolved base config)
    DIR/points/<name>/           one fit run per grid point
    DIR/results.csv              one row per finished point: grid values + metrics
    DIR/summary.png              metric against the first grid key, mean +- s.d. over seeds

:class:`RunDir` reads a run once: which network (the top level or ``rank_<R>``), its
metadata, metrics, config, history, teacher, the fit estimator and the analysis files are
loaded on first use and cached; :class:`lrfit.runs.run.Run` (above this module: simulating a
teacher's data and the analyses sit there) adds the data splits, the analysed network and the
activity, so one object holds everything a run's commands read.  The
teacher of a student is, in order: the ``teacher`` given, ``data.teacher`` of
``config.yaml``, then ``data.teacher`` / ``teacher`` in ``metrics.json``; relative
teacher paths are tried against the run directory, its parent and the working directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError
from ..fitting.fit_files import FIT_STATE_FILE
from ..models import RNNBase, load_model
from ..models.io import META_FILE, WEIGHTS_FILE, read_model_meta

log = logging.getLogger(__name__)

# -- file names ----------------------------------------------------------------------------
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
SPLIT_FILE = "split.json"
SETTINGS_FILE = "settings.json"
RANK_SELECTION_FILE = "rank_selection.json"
CHECKPOINT_DIR = "checkpoint"
COMPARE_FILE = "compare.json"
AYNA_BUNDLE_FILE = "ayna_bundle.npz"
LOCK_FILE = ".lock"
REPORT_FILE = "report.html"
ANALYSIS_DIR = "analysis"
#: Files of a fitted network (copied from the chosen rank of a rank list to the top level).
FIT_FILES = (WEIGHTS_FILE, META_FILE, FIT_STATE_FILE)

FIXED_POINTS_FILE = "fixed_points.json"
POPULATIONS_FILE = "populations.json"
OVERLAPS_FILE = "overlaps.json"
LOADINGS_FILE = "loadings.csv"
LATENTS_FILE = "latents.npz"
LATENTS_SUMMARY_FILE = "latents.json"
RESAMPLE_FILE = "resample.json"
INACTIVATION_CSV = "inactivation.csv"
INACTIVATION_JSON = "inactivation.json"
INACTIVATION_PNG = "inactivation.png"

SWEEP_FILE = "sweep.yaml"
POINTS_DIR = "points"
RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.png"

__all__ = ["RunDir", "as_run", "read_json", "read_yaml", "write_json", "write_yaml"]


# -- reading and writing files ---------------------------------------------------------------
def read_json(path: str | Path) -> dict[str, Any] | None:
    """Contents of a JSON file, ``None`` if it does not exist; a clear error if it is corrupt."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LrfitError(
            f"'{path}' is not valid JSON ({exc.msg} at line {exc.lineno}); delete or rewrite it."
        ) from None


def write_json(obj: Any, path: str | Path) -> Path:
    """Write *obj* (converted by :func:`lrfit.jsonable.jsonable`) as indented JSON."""
    from ..jsonable import jsonable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=True))
    return path


def read_yaml(path: str | Path) -> dict[str, Any] | None:
    """Contents of a YAML mapping file, ``None`` if it does not exist (or holds no mapping)."""
    from .config import read_yaml_file

    path = Path(path)
    if not path.is_file():
        return None
    data = read_yaml_file(path, "Run file", "a YAML file")
    return data if isinstance(data, dict) else None


def write_yaml(obj: dict[str, Any], path: str | Path) -> Path:
    """Write a mapping as YAML, keys in their order."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    return path


def _read_file(path: Path, **kwargs: Any) -> Any:
    """Read a run file by its suffix (``.json``, ``.yaml``, ``.npz``, ``.csv``); ``None`` if absent."""
    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_json(path)
    if suffix == ".yaml":
        return read_yaml(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}
    if suffix == ".csv":
        return pd.read_csv(path, **kwargs)
    raise ValueError(f"no reader for '{path.name}'")


def _write_file(path: Path, obj: Any, **kwargs: Any) -> Path:
    """Write a run file by its suffix (``.json``, ``.yaml``, ``.npz``, ``.csv``)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return write_json(obj, path)
    if suffix == ".yaml":
        return write_yaml(obj, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        np.savez_compressed(path, **obj)
    elif suffix == ".csv":
        obj.to_csv(path, **kwargs)
    else:
        raise ValueError(f"no writer for '{path.name}'")
    return path


# -- locating the network ------------------------------------------------------------------
#: What lrfit writes at the top of a fit run, besides ``rank_<R>/`` and ``fold_<k>/`` directories.
RUN_ENTRIES = frozenset({CONFIG_FILE, METRICS_FILE, HISTORY_FILE, SPLIT_FILE, RANK_SELECTION_FILE, CHECKPOINT_DIR,
                         COMPARE_FILE, AYNA_BUNDLE_FILE, REPORT_FILE, ANALYSIS_DIR, LOCK_FILE, *FIT_FILES})


def foreign_entries(path: Path) -> list[str]:
    """Names in a run directory (recursively through ``rank_<R>/`` and ``fold_<k>/``) that lrfit does not write."""
    out = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_dir() and not entry.is_symlink() and (name.startswith("rank_") or name.startswith("fold_")):
            out += [f"{name}/{sub}" for sub in foreign_entries(entry)]
        elif name not in RUN_ENTRIES and not name.endswith(".tmp"):
            out.append(name)
    return out


def _rank_dirs(path: Path) -> dict[int, Path]:
    out = {}
    for d in path.glob("rank_*"):
        try:
            r = int(d.name.split("_", 1)[1])
        except ValueError:
            continue
        if (d / META_FILE).is_file():
            out[r] = d
    return dict(sorted(out.items()))


def _find_model_dir(path: Path, rank: int | None, selection: dict[str, Any] | None) -> Path:
    ranks = _rank_dirs(path)
    if rank is not None:
        if int(rank) not in ranks:
            if (path / META_FILE).is_file() and int(read_model_meta(path).get("config", {}).get("rank", -1)) == int(
                rank
            ):
                return path
            raise LrfitError(f"Run '{path}' has no model of rank {rank}; ranks available: {sorted(ranks) or 'none'}.")
        return ranks[int(rank)]
    if (path / META_FILE).is_file():
        return path
    if ranks:
        chosen = (selection or {}).get("chosen_rank")
        if chosen is not None and int(chosen) in ranks:
            return ranks[int(chosen)]
        first = next(iter(ranks))
        log.warning("No chosen rank in '%s'; using rank %d.", path / RANK_SELECTION_FILE, first)
        return ranks[first]
    raise LrfitError(
        f"'{path}' is not an lrfit run directory: it has no {META_FILE} (nor rank_<R>/{META_FILE}); "
        "point to a directory written by 'lrfit fit' or 'lrfit teacher'."
    )


def _lookup(d: dict[str, Any] | None, dotted: str) -> Any:
    if not d:
        return None
    if dotted in d:
        return d[dotted]
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _resolve_teacher(path: Path, explicit: str | Path | None, config: dict | None, metrics: dict | None) -> Path | None:
    if explicit is not None:
        t = Path(explicit)
        if not (t / META_FILE).is_file():
            raise LrfitError(
                f"Teacher directory '{t}' has no {META_FILE}; pass a directory written by 'lrfit teacher'."
            )
        return t
    for source, value in (
        (CONFIG_FILE, _lookup(config, "data.teacher")),
        (METRICS_FILE, _lookup(metrics, "data.teacher")),
        (METRICS_FILE, _lookup(metrics, "teacher")),
    ):
        if not isinstance(value, str) or not value:
            continue
        for cand in (Path(value), path / value, path.parent / value):
            if (cand / META_FILE).is_file():
                return cand
        log.warning("The teacher '%s' named in %s of '%s' was not found; pass --teacher DIR.", value, source, path)
    return None


# -- the run directory -----------------------------------------------------------------------
class RunDir:
    """A run directory (layouts in the module docstring); what it holds is read once and cached.

    Parameters
    ----------
    path : str or Path
        The run directory.
    teacher : str or Path, optional
        Teacher directory (overrides what the run records).
    rank : int, optional
        For a rank list, the rank analysed instead of the chosen one.

    Notes
    -----
    ``RunDir(path)`` checks nothing (writers use it for a directory being filled);
    :meth:`open` checks that a network is there, :meth:`create` prepares a new run.
    """

    def __init__(self, path: str | Path, teacher: str | Path | None = None, rank: int | None = None) -> None:
        self.path = Path(path)
        self._teacher_arg = teacher
        self._rank = rank
        self._cache: dict[Any, Any] = {}  # files read, by name and options

    def __repr__(self) -> str:
        return f"RunDir('{self.path}')"

    @classmethod
    def open(cls, path: str | Path, teacher: str | Path | None = None, rank: int | None = None) -> RunDir:
        """Open an existing run for reading.

        Raises
        ------
        LrfitError
            If *path* is missing or holds no model.
        """
        run = cls(path, teacher=teacher, rank=rank)
        if not run.path.is_dir():
            raise LrfitError(
                f"Run directory '{run.path}' does not exist; pass the directory written by 'lrfit fit' or 'lrfit "
                "teacher'."
            )
        run.model_dir  # noqa: B018 - finds the network or raises
        run.teacher_dir  # noqa: B018 - resolves (and checks) the teacher
        return run

    @classmethod
    def create(cls, path: str | Path, resume: bool = False, overwrite: bool = False,
               owned: Sequence[str] | None = None) -> RunDir:
        """Make *path* ready for a run and return it.

        Parameters
        ----------
        path : str or Path
            The run directory (created).
        resume : bool
            Continue the run already there (nothing is removed).
        overwrite : bool
            Replace the run already there.
        owned : sequence of str, optional
            The run's own file names, for runs written into a directory that may hold
            other files (teachers): only those count as an existing run, and *overwrite*
            deletes only them.  Without it the whole directory is the run: a non-empty
            one needs *resume* or *overwrite*, and *overwrite* removes it.

        Raises
        ------
        LrfitError
            If a run is there and neither *resume* nor *overwrite* is set.
        """
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise LrfitError(f"--out '{out}' is a file, not a directory; choose another --out.")
        if owned is None:
            if out.exists() and any(out.iterdir()) and not (resume or overwrite):
                raise LrfitError(
                    f"Output directory '{out}' is not empty; pass --resume to continue that run, --overwrite to "
                    "replace "
                    "it, or choose another --out."
                )
            if overwrite and not resume and out.exists():
                foreign = foreign_entries(out)
                if foreign:
                    raise LrfitError(
                        f"--overwrite refused: '{out}' holds {foreign[0]!r}, which lrfit did not write, so it is not "
                        "an lrfit run directory; nothing was deleted. Choose another --out."
                    )
                for entry in out.iterdir():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
        else:
            existing = [name for name in owned if (out / name).exists()]
            if existing and not resume:
                if not overwrite:
                    raise LrfitError(
                        f"'{out}' already holds a training run ({existing[0]}); pass resume=True (--resume) to "
                        "continue it, "
                        "overwrite=True (--overwrite) to replace it, or choose another directory."
                    )
                for name in existing:
                    (out / name).unlink()
        out.mkdir(parents=True, exist_ok=True)
        return cls(out)

    # -- files ---------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """``RUN/name``."""
        return self.path / name

    def has(self, *names: str) -> bool:
        """Whether every named file (relative to the run) exists."""
        return all((self.path / n).is_file() for n in names)

    def read(self, name: str, **kwargs: Any) -> Any:
        """A run file (``.json``, ``.yaml``, ``.npz`` as a dict of arrays, ``.csv`` a DataFrame), cached, or None.

        *kwargs* go to :func:`pandas.read_csv` for CSV files.
        """
        key = ("file", name, tuple(sorted(kwargs.items())))
        if key not in self._cache:
            self._cache[key] = _read_file(self.path / name, **kwargs)
        return self._cache[key]

    def write(self, name: str, obj: Any, **kwargs: Any) -> Path:
        """Write a run file by its suffix (*kwargs* go to ``DataFrame.to_csv``); returns its path."""
        for key in [k for k in self._cache if isinstance(k, tuple) and k[:2] == ("file", name)]:
            del self._cache[key]
        return _write_file(self.target(name), obj, **kwargs)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's write lock (``RUN/.lock``) while the block runs; a second writer gets one sentence.

        The lock is an advisory ``flock`` that the system releases when its process dies, so a
        killed run never leaves a stale lock behind.

        Raises
        ------
        LrfitError
            If another live process is writing this run.
        """
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK_FILE, "a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise LrfitError(f"'{self.path}' is being written by another lrfit process; wait for it to finish "
                                 "(or stop it) before writing the same run, or choose another --out.") from None
            yield
        finally:
            handle.close()

    def target(self, name: str) -> Path:
        """``RUN/name``, ready to be written as a regular file inside the run.

        A symbolic link on the way (``analysis/`` or the file itself) is replaced by a
        real directory or file, so nothing is ever written through it to another place.
        """
        path, parts = self.path, Path(name).parts
        for i, part in enumerate(parts):
            path = path / part
            if path.is_symlink():
                log.warning("'%s' is a symbolic link; replacing it with a %s inside the run (its target is left "
                            "alone).", path, "file" if i == len(parts) - 1 else "directory")
                path.unlink()
            if i < len(parts) - 1:
                path.mkdir(parents=True, exist_ok=True)
        return path

    def read_analysis(self, name: str, **kwargs: Any) -> Any:
        """A file of ``RUN/analysis`` (see :meth:`read`)."""
        return self.read(f"{ANALYSIS_DIR}/{name}", **kwargs)

    def write_analysis(self, name: str, obj: Any, **kwargs: Any) -> Path:
        """Write a file of ``RUN/analysis`` (see :meth:`write`)."""
        return self.write(f"{ANALYSIS_DIR}/{name}", obj, **kwargs)

    def has_analysis(self, *names: str) -> bool:
        """Whether every named file of ``RUN/analysis`` exists."""
        return self.has(*(f"{ANALYSIS_DIR}/{n}" for n in names))

    @property
    def analysis_dir(self) -> Path:
        """``RUN/analysis`` (not created here)."""
        return self.path / ANALYSIS_DIR

    def rank_run(self, rank: int) -> RunDir:
        """The run of one rank of a rank list, ``RUN/rank_<R>``."""
        return RunDir(self.path / f"rank_{int(rank)}")

    def fold_run(self, fold: int) -> RunDir:
        """The run of one cross-validation fold, ``RUN/fold_<k>`` (``preprocess.split.folds``)."""
        return RunDir(self.path / f"fold_{int(fold)}")

    def copy_files(self, source: RunDir, names: Iterable[str]) -> None:
        """Copy the named files of *source* into this run."""
        for name in names:
            shutil.copy2(source.path / name, self.path / name)

    # -- what the run holds ----------------------------------------------------------------
    @cached_property
    def rank_selection(self) -> dict[str, Any] | None:
        """``rank_selection.json`` (rank lists)."""
        return read_json(self.path / RANK_SELECTION_FILE)

    @property
    def requested_rank(self) -> int | None:
        """The rank asked for when the run was opened (``None``: the chosen rank of a rank list, or the only one)."""
        return None if self._rank is None else int(self._rank)

    @cached_property
    def model_dir(self) -> Path:
        """Directory of the network analysed (``path`` or ``path/rank_<R>``)."""
        return _find_model_dir(self.path, self._rank, self.rank_selection)

    @cached_property
    def meta(self) -> dict[str, Any]:
        """``model.json`` (``kind``, ``config``, ``extra``)."""
        return read_model_meta(self.model_dir)

    @property
    def extra(self) -> dict[str, Any]:
        """The ``extra`` metadata of ``model.json``."""
        return self.meta.get("extra") or {}

    @cached_property
    def metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` (the model directory's when the top level has none)."""
        metrics = read_json(self.path / METRICS_FILE)
        if metrics is None and self.model_dir != self.path:
            metrics = read_json(self.model_dir / METRICS_FILE)
        return metrics

    @cached_property
    def saved_config(self) -> dict[str, Any] | None:
        """``config.yaml`` as written (``None`` for runs without one)."""
        return read_yaml(self.path / CONFIG_FILE)

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """``config.yaml`` resolved by :func:`lrfit.runs.config.load_config` (``None`` for runs without one)."""
        from .config import load_config

        path = self.path / CONFIG_FILE
        return load_config(path) if path.is_file() else None

    @cached_property
    def history(self) -> pd.DataFrame | None:
        """``history.csv`` (or the ``history`` list of ``metrics.json``)."""
        for path in (self.path / HISTORY_FILE, self.model_dir / HISTORY_FILE):
            if path.is_file():
                try:
                    return pd.read_csv(path)
                except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
                    log.warning("Could not read '%s'; skipping the training history.", path)
                break
        metrics = self.metrics
        if metrics and isinstance(metrics.get("history"), list) and metrics["history"]:
            return pd.DataFrame(metrics["history"])
        return None

    @cached_property
    def teacher_dir(self) -> Path | None:
        """The teacher the network was fitted to, if known."""
        if self.role == "teacher" and self._teacher_arg is None:
            return None
        return _resolve_teacher(self.path, self._teacher_arg, self.saved_config, self.metrics)

    @property
    def role(self) -> str:
        """``"teacher"``, ``"student"`` or ``"model"``."""
        return str(self.extra.get("role", "model"))

    @property
    def kind(self) -> str:
        """Model kind (``"lowrank"`` or ``"fullrank"``)."""
        return str(self.meta.get("kind", ""))

    @property
    def recorded_ids(self) -> list[str] | None:
        """Teacher/recording ids of the fitted units (students only)."""
        ids = self.extra.get("neuron_ids")
        return None if ids is None else [str(v) for v in ids]

    @property
    def saved_input_names(self) -> list[str] | None:
        """Input channel names, from the model's metadata or its task."""
        names = self.extra.get("input_names")
        if names:
            return [str(s) for s in names]
        task = self.own_task()
        return list(task.input_names) if task is not None else None

    @cached_property
    def estimator(self) -> Any:
        """The :class:`lrfit.LowRankFit` of a fitted run (``lrfit fit`` or ``LowRankFit.save``), else ``None``."""
        if self.role != "student" or "fit_params" not in self.extra:
            return None
        from ..fitting.estimator import LowRankFit

        return LowRankFit.load(self.model_dir)

    @cached_property
    def saved_model(self) -> RNNBase:
        """The network as saved (eval mode, CPU); the estimator's own network for fitted runs."""
        model = self.estimator.model_ if self.estimator is not None else load_model(self.model_dir)
        model.eval()
        return model

    def load_model(self, device: str = "cpu") -> RNNBase:
        """A fresh copy of the network (eval mode) on *device*."""
        model = load_model(self.model_dir, device=device)
        model.eval()
        return model

    def own_task(self) -> Any:
        """The task stored with the network itself (teachers), else ``None``."""
        task = self.extra.get("task")
        if isinstance(task, dict):
            from ..tasks import get_task

            return get_task(**task)
        return None

    @cached_property
    def teacher_and_task(self) -> tuple[RNNBase, Any] | None:
        """``(teacher network, task)`` if a teacher is known, else ``None``."""
        if self.teacher_dir is None:
            return None
        run = RunDir(self.teacher_dir)
        task = run.own_task()
        if task is None:
            raise LrfitError(
                f"'{run.model_dir / META_FILE}' names no task; it is not a teacher written by 'lrfit teacher'."
            )
        return run.saved_model, task

    @cached_property
    def task(self) -> Any:
        """The task of the run: its own (teacher) or its teacher's; ``None`` for data fits."""
        own = self.own_task()
        if own is not None:
            return own
        return self.teacher_and_task[1] if self.teacher_and_task is not None else None


def as_run(run: RunDir | str | Path, teacher: str | Path | None = None, rank: int | None = None) -> RunDir:
    """*run* itself, or the run directory at that path opened with :meth:`RunDir.open`.

    Raises
    ------
    LrfitError
        If *teacher* or *rank* is given with an already opened :class:`RunDir`.
    """
    if isinstance(run, RunDir):
        if teacher is not None or rank is not None:
            raise LrfitError(
                f"{run!r} is already open; give teacher and rank to RunDir.open('{run.path}', teacher=..., rank=...)."
            )
        return run
    return RunDir.open(run, teacher=teacher, rank=rank)
