"""Teacher networks: trained on tasks, recorded as the data a student is fitted to.

* :mod:`.train`: build, train (on :class:`lrfit.fitting.solver.Solver`), score and load teachers;
* :mod:`.record`: record a network's activity as ``TrialData`` (the data a student is fitted to).

A fitted student is compared with its teacher by :mod:`lrfit.runs.compare`.

Examples
--------
>>> from lrfit.teachers import parse_rank
>>> parse_rank("full", 64), parse_rank("2", 64)
(None, 2)
"""

from .record import choose_neurons, peak_rates, rates_to_hz, record_activity, simulate_teacher, teacher_expected_counts
from .train import (
    METRICS_FILE,
    RESUMABLE_CHANGES,
    SETTINGS_FILE,
    TeacherResult,
    build_network,
    evaluate,
    load_teacher,
    parse_rank,
    train_teacher,
)

__all__ = [
    "METRICS_FILE",
    "RESUMABLE_CHANGES",
    "SETTINGS_FILE",
    "TeacherResult",
    "build_network",
    "choose_neurons",
    "evaluate",
    "load_teacher",
    "parse_rank",
    "peak_rates",
    "rates_to_hz",
    "record_activity",
    "simulate_teacher",
    "teacher_expected_counts",
    "train_teacher",
]
