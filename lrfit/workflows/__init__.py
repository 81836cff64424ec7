"""Run-level workflows behind ``lrfit analyze``, ``lrfit inactivate`` and ``lrfit report``.

Each takes a :class:`lrfit.rundir.RunDir` (or a path, opened into one); what a run
holds is loaded once and cached on it (layouts in :mod:`lrfit.rundir`).

- :mod:`.context` — a run's network, its task/teacher and its activity.
- :mod:`.analyze` — write ``RUN/analysis/`` (fixed points, populations, overlaps, latents).
- :mod:`.groups` — the one reader of group files (JSON/CSV: group name -> neuron ids or unit indices).
- :mod:`.inactivate` — silence groups, predict the effect, compare with the teacher (and rank 1 with rank 2).
- :mod:`.export` — a run's outputs as a bundle for outside checkers (``ayna``).

The analyses themselves live in :mod:`lrfit.analysis` (pure functions, no file I/O);
these modules only choose inputs, call them and write files with documented keys.
"""

from .analyze import analyze_run, parse_input_specs
from .context import RunActivity, RunContext, load_context, run_activity
from .groups import load_groups, read_group_file
from .export import export_run
from .inactivate import inactivate_run

__all__ = [
    "RunActivity",
    "RunContext",
    "analyze_run",
    "export_run",
    "inactivate_run",
    "load_context",
    "load_groups",
    "parse_input_specs",
    "read_group_file",
    "run_activity",
]
