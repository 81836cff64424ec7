"""``lrfit simulate``: record a trained teacher on fresh task trials and write an NWB (or HDF5) file.

Example::

    lrfit simulate runs/cdm_rank1 --trials 200 --out sim/cdm.nwb --record both --neurons 100
    lrfit simulate runs/cdm_rank1 --trials 200 --out sim/cdm.h5             # TrialData HDF5 layout

The recorded activity is the teacher's rates ``tanh(x)``.  ``--record rates``
writes them as a TimeSeries (``/processing/lrfit/rates``), ``spikes`` writes
Poisson spikes in the Units table, ``both`` writes both.  Spikes are drawn with
rates in Hz ``max_rate_hz * (tanh(x) + 1) / 2`` (``--max-rate-hz 20:50`` draws each
unit's peak rate from a range).  The trials table holds the task's
conditions, ``align_time`` and each task epoch as ``<epoch>_start_time`` /
``<epoch>_stop_time``; task inputs are stored as ``/processing/lrfit/inputs``.
Read the file back with::

    data_adapters.load("sim/cdm.nwb", source="lrfit/rates", align_to="align_time", inputs="lrfit/inputs")
    data_adapters.load("sim/cdm.nwb", dt=0.02, align_to="align_time", inputs="lrfit/inputs")   # spikes
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LrfitError
from ._args import add_overwrite

NAME = "simulate"
HELP = "record a trained teacher on fresh trials and write the activity to an NWB (or .h5) file"

RECORD = ("rates", "spikes", "both")
HDF5_SUFFIXES = (".h5", ".hdf5")


def _neurons(text: str | None) -> int | float | None:
    if text is None:
        return None
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise LrfitError(f"--neurons expects a count (e.g. 100) or a fraction (e.g. 0.5), got '{text}'.") from None


def _max_rate(text: str) -> float | tuple[float, float]:
    """``50`` or ``20:50`` (a range of per-unit peak rates)."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a rate in Hz (50) or a range LOW:HIGH (20:50), got '{text}'"
        ) from None
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a rate in Hz (50) or a range LOW:HIGH (20:50), got '{text}'")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit simulate``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("teacher_dir", metavar="TEACHER_DIR", help="run directory written by 'lrfit teacher'")
    parser.add_argument("--trials", type=int, required=True, help="number of trials K")
    parser.add_argument("--out", required=True, help="output file: .nwb (NWB) or .h5/.hdf5 (TrialData HDF5)")
    parser.add_argument("--record", default="rates", choices=RECORD,
                        help="what is written: rates (TimeSeries), spikes (Poisson, Units table) or both")
    parser.add_argument("--neurons", default=None,
                        help="record a random subset of units: a count (100) or a fraction (0.5); default all")
    parser.add_argument("--neuron-seed", type=int, default=0, help="seed of the recorded subset (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trials, network noise and spikes (default 0)")
    parser.add_argument("--noise-std", type=float, default=None,
                        help="private noise std of the units (default: the teacher's own)")
    parser.add_argument("--max-rate-hz", type=_max_rate, default=None,
                        help="firing rate (Hz) of a unit at tanh(x) = 1 for the Poisson spikes (default 50), or a "
                             "range LOW:HIGH from which each unit's peak rate is drawn (seeded by --neuron-seed)")
    parser.add_argument("--task-param", action="append", default=[], metavar="KEY=VALUE",
                        help="task parameter overriding the teacher's (repeatable); values are JSON")
    add_overwrite(parser, "replace an existing output file")


def run(args: argparse.Namespace) -> int:
    """Simulate the teacher and write the file described by *args*.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`add_arguments`).

    Returns
    -------
    int
        Exit status 0.
    """
    from data_adapters import write_hdf5
    from data_adapters.nwb_write import poisson_spikes, write_nwb
    from data_adapters.trialdata import COUNT_UNITS

    from ..tasks import get_task
    from ..teachers.record import DEFAULT_MAX_RATE_HZ, peak_rates, rates_to_hz, simulate_teacher
    from .teacher import parse_task_params

    out = Path(args.out)
    if out.suffix.lower() not in (".nwb",) + HDF5_SUFFIXES:
        raise LrfitError(f"--out '{out}' must end in .nwb, .h5 or .hdf5 (the suffix picks the format).")
    if out.exists() and not args.overwrite:
        raise LrfitError(f"'{out}' already exists; pass --overwrite to replace it or choose another --out.")
    if not Path(args.teacher_dir).is_dir():
        raise LrfitError(f"teacher directory '{args.teacher_dir}' does not exist; train one with 'lrfit teacher'.")
    task_params = parse_task_params(args.task_param)
    data = simulate_teacher(args.teacher_dir, args.trials, seed=args.seed, record="rates", noise_std=args.noise_std,
                            neurons=_neurons(args.neurons), neuron_seed=args.neuron_seed, task_params=task_params)
    max_rate = DEFAULT_MAX_RATE_HZ if args.max_rate_hz is None else args.max_rate_hz
    peaks = peak_rates(data.n_neurons, max_rate, args.neuron_seed)
    hz = rates_to_hz(data.activity, peaks) if args.record != "rates" else None
    meta: dict[str, Any] = {"max_rate_hz": max_rate if np.ndim(max_rate) == 0 else list(max_rate),
                            "record": args.record, "spike_seed": args.seed}
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in HDF5_SUFFIXES:
        if args.record == "both":
            raise LrfitError("an HDF5 file holds one activity array; use --record rates or --record spikes, "
                             "or write .nwb for both.")
        if args.record == "spikes":
            counts = poisson_spikes(hz, data.dt, args.seed)
            data = data.replace(activity=counts, meta={**data.meta, "units": COUNT_UNITS})
        write_hdf5(data.replace(meta={**data.meta, **meta}), out)
    else:
        epochs = get_task(**data.meta["task"]).generate(args.trials, seed=args.seed).epochs
        write_nwb(data.replace(meta={**data.meta, **meta}), out, rates=args.record in ("rates", "both"),
                  spikes=args.record in ("spikes", "both"), rates_hz=hz, seed=args.seed, epochs=epochs,
                  session_description=f"teacher {data.meta['teacher']} recorded on {args.trials} "
                                      f"{data.meta['task'].get('name', 'task')} trials by lrfit simulate")
    print(f"wrote {data.n_trials} trials x {data.n_time} bins x {data.n_neurons} neurons ({args.record}, "
          f"dt={data.dt:g} s) -> {out}")
    return 0
