"""Teacher networks and the teacher-student bridge.

* :mod:`.train`: build, train (on :class:`lrfit.fitting.solver.Solver`), score and load teachers;
* :mod:`.record`: record a network's activity as ``TrialData`` (the data a student is fitted to);
* :mod:`.compare`: compare a fitted student with its teacher (the maths is in
  :mod:`lrfit.analysis.teacher_connectivity`).
"""

from .compare import COMPARE_FILE, compare_student_teacher, format_comparison
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
    "COMPARE_FILE",
    "METRICS_FILE",
    "RESUMABLE_CHANGES",
    "SETTINGS_FILE",
    "TeacherResult",
    "build_network",
    "choose_neurons",
    "compare_student_teacher",
    "evaluate",
    "format_comparison",
    "load_teacher",
    "parse_rank",
    "peak_rates",
    "rates_to_hz",
    "record_activity",
    "simulate_teacher",
    "teacher_expected_counts",
    "train_teacher",
]
