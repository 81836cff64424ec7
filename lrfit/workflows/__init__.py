"""Run-level workflows behind ``lrfit analyze``, ``lrfit inactivate`` and ``lrfit report``.

- :mod:`.context` — load a run directory's network, its task/teacher and its activity.
- :mod:`.analyze` — write ``RUN/analysis/`` (fixed points, populations, overlaps, latents).
- :mod:`.groups` — read group files (JSON/CSV: group name -> neuron ids).
- :mod:`.inactivate` — silence groups, predict the effect, compare with the teacher.

The analyses themselves live in :mod:`lrfit.analysis`; these modules only choose
inputs, call them and write files with documented keys.
"""

from .analyze import analyze_run, parse_input_specs
from .context import RunActivity, RunContext, load_context, run_activity
from .groups import read_group_file
from .inactivate import inactivate_run

__all__ = [
    "RunActivity",
    "RunContext",
    "analyze_run",
    "inactivate_run",
    "load_context",
    "parse_input_specs",
    "read_group_file",
    "run_activity",
]
