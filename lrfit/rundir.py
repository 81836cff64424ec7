"""Read lrfit run directories: find the model, the metrics, the config and the teacher.

Layouts understood (written by ``lrfit teacher`` / :func:`lrfit.teachers.train_teacher`,
``lrfit fit`` and :meth:`lrfit.fitting.estimator.LowRankFit.save`)::

    RUN/model.pt, RUN/model.json          one network at the top level
    RUN/rank_<R>/model.pt, model.json     one network per rank of a rank list, with
    RUN/rank_selection.json               {"ranks", "r2_train", "r2_test", "chosen_rank", ...}
    RUN/metrics.json, config.yaml, history.csv, settings.json   (each optional)
    RUN/analysis/                          written by ``lrfit analyze`` / ``inactivate``

The teacher of a student is, in order: the ``--teacher`` given, ``data.teacher`` of
``config.yaml``, then ``data.teacher`` / ``teacher`` in ``metrics.json``.  Relative
teacher paths are tried against the run directory, its parent and the working directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import LrfitError
from .models import RNNBase, load_model
from .models.io import META_FILE, read_model_meta

log = logging.getLogger(__name__)

ANALYSIS_DIR = "analysis"
RANK_SELECTION_FILE = "rank_selection.json"


def read_json(path: str | Path) -> dict[str, Any] | None:
    """Contents of a JSON file, ``None`` if it does not exist; a clear error if it is corrupt."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LrfitError(f"'{path}' is not valid JSON ({exc.msg} at line {exc.lineno}); delete or rewrite it.") from None


def write_json(obj: Any, path: str | Path) -> Path:
    """Write *obj* (converted by :func:`lrfit.analysis._common.jsonable`) as indented JSON."""
    from .analysis._common import jsonable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=True))
    return path


def _read_yaml(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LrfitError(f"'{path}' is not valid YAML ({exc}); fix or delete it.") from None
    return data if isinstance(data, dict) else None


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
            if (path / META_FILE).is_file() and int(read_model_meta(path).get("config", {}).get("rank", -1)) == int(rank):
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


@dataclass(frozen=True)
class RunDir:
    """What a run directory holds (files are read once; models are loaded on demand).

    Attributes
    ----------
    path : Path
        The run directory.
    model_dir : Path
        Directory of the network analysed (``path`` or ``path/rank_<R>``).
    meta : dict
        ``model.json`` (``kind``, ``config``, ``extra``).
    metrics, config, rank_selection : dict or None
        ``metrics.json``, ``config.yaml``, ``rank_selection.json``.
    history : pandas.DataFrame or None
        ``history.csv`` (or the ``history`` list of ``metrics.json``).
    teacher_dir : Path or None
        The teacher the network was fitted to, if known.
    """

    path: Path
    model_dir: Path
    meta: dict[str, Any]
    metrics: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    rank_selection: dict[str, Any] | None = None
    history: pd.DataFrame | None = None
    teacher_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str:
        """``"teacher"``, ``"student"`` or ``"model"``."""
        return str(self.extra.get("role", "model"))

    @property
    def kind(self) -> str:
        """Model kind (``"lowrank"`` or ``"fullrank"``)."""
        return str(self.meta.get("kind", ""))

    @property
    def analysis_dir(self) -> Path:
        """``RUN/analysis`` (not created here)."""
        return self.path / ANALYSIS_DIR

    @property
    def neuron_ids(self) -> list[str] | None:
        """Teacher/recording ids of the fitted units (students only)."""
        ids = self.extra.get("neuron_ids")
        return None if ids is None else [str(v) for v in ids]

    @property
    def input_names(self) -> list[str] | None:
        """Input channel names, from the model's metadata or its task."""
        names = self.extra.get("input_names")
        if names:
            return [str(s) for s in names]
        task = self.own_task()
        return list(task.input_names) if task is not None else None

    def load_model(self, device: str = "cpu") -> RNNBase:
        """The network (eval mode)."""
        model = load_model(self.model_dir, device=device)
        model.eval()
        return model

    def own_task(self) -> Any:
        """The task stored with the network itself (teachers), else ``None``."""
        task = self.extra.get("task")
        if isinstance(task, dict):
            from .tasks import get_task

            return get_task(**task)
        return None

    def load_teacher(self, device: str = "cpu") -> tuple[RNNBase, Any] | None:
        """``(teacher model, task)`` if a teacher is known, else ``None``."""
        if self.teacher_dir is None:
            return None
        from .teachers import load_teacher

        return load_teacher(self.teacher_dir, device=device)

    def task(self) -> Any:
        """The task of the run: its own (teacher) or its teacher's; ``None`` for data fits."""
        own = self.own_task()
        if own is not None:
            return own
        if self.teacher_dir is not None:
            return self.load_teacher()[1]
        return None

    def read_analysis(self, name: str) -> dict[str, Any] | None:
        """A JSON file of ``RUN/analysis`` (``None`` if absent)."""
        return read_json(self.analysis_dir / name)


def _resolve_teacher(path: Path, explicit: str | Path | None, config: dict | None, metrics: dict | None) -> Path | None:
    if explicit is not None:
        t = Path(explicit)
        if not (t / META_FILE).is_file():
            raise LrfitError(f"Teacher directory '{t}' has no {META_FILE}; pass a directory written by 'lrfit teacher'.")
        return t
    for source, value in (("config.yaml", _lookup(config, "data.teacher")), ("metrics.json", _lookup(metrics, "data.teacher")), ("metrics.json", _lookup(metrics, "teacher"))):
        if not isinstance(value, str) or not value:
            continue
        for cand in (Path(value), path / value, path.parent / value):
            if (cand / META_FILE).is_file():
                return cand
        log.warning("The teacher '%s' named in %s of '%s' was not found; pass --teacher DIR.", value, source, path)
    return None


def open_run(path: str | Path, teacher: str | Path | None = None, rank: int | None = None) -> RunDir:
    """Read a run directory (see the module docstring for the layouts).

    Parameters
    ----------
    path : str or Path
        Run directory, or a directory holding ``model.json`` directly.
    teacher : str or Path, optional
        Teacher directory (overrides what the run records).
    rank : int, optional
        For a rank list, analyse this rank instead of the chosen one.

    Returns
    -------
    RunDir

    Raises
    ------
    LrfitError
        If *path* is missing or holds no model.
    """
    path = Path(path)
    if not path.is_dir():
        raise LrfitError(f"Run directory '{path}' does not exist; pass the directory written by 'lrfit fit' or 'lrfit teacher'.")
    selection = read_json(path / RANK_SELECTION_FILE)
    model_dir = _find_model_dir(path, rank, selection)
    meta = read_model_meta(model_dir)
    metrics = read_json(path / "metrics.json")
    if metrics is None and model_dir != path:
        metrics = read_json(model_dir / "metrics.json")
    config = _read_yaml(path / "config.yaml")
    history = None
    for hist_path in (path / "history.csv", model_dir / "history.csv"):
        if hist_path.is_file():
            try:
                history = pd.read_csv(hist_path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
                log.warning("Could not read '%s'; skipping the training history.", hist_path)
            break
    if history is None and metrics and isinstance(metrics.get("history"), list) and metrics["history"]:
        history = pd.DataFrame(metrics["history"])
    extra = meta.get("extra") or {}
    teacher_dir = None if extra.get("role") == "teacher" and teacher is None else _resolve_teacher(path, teacher, config, metrics)
    return RunDir(
        path=path,
        model_dir=model_dir,
        meta=meta,
        metrics=metrics,
        config=config,
        rank_selection=selection,
        history=history,
        teacher_dir=teacher_dir,
        extra=extra,
    )
