"""``lrfit export``: a run's outputs as a bundle for outside checkers.

``--format ayna`` writes the one ``.npz`` file the `ayna <https://pypi.org/project/ayna/>`_
package reads (``ayna.load_bundle``; format of ayna 0.2): R trials, T bins, N neurons::

    spikes        (R, T, N) int    spike counts per bin
    rates         (R, T, N) float  the student's expected counts per bin
    latents       (R, T, D) float  the student's state: kappa, then the leaky-integrated inputs v
    inputs        (R, T, C) float  the task inputs the student was driven by (meta inputs_kind: supplied)
    val           (R,) bool        held-out trials (the last 20%: the trials that score lrfit's State R²)
    trial_lens    (R,) int         valid bins per trial (tasks with variable trial lengths)
    true_latents  (R, T, Dt)       the teacher's state [recurrent state, v] (lrfit.analysis.network_state)
    true_rates    (R, T, N)        the teacher's expected counts per bin
    meta          JSON string      name, model, bin_ms, inputs_kind, the definitions above, and
                                   lrfit's own State R², cycle consistency and Rate R² on this bundle

Two kinds of run can be exported:

* **a student of a teacher** (``lrfit fit`` with ``data.teacher``, fitted to rates or
  currents): the student and the teacher run noise-free on fresh task trials (the
  trials, seed and split of ``lrfit compare``), and the spikes are Poisson counts drawn
  from the teacher's rates exactly as ``lrfit simulate --record spikes`` draws them
  (``max_rate_hz * (tanh(x) + 1) / 2`` in Hz, ``data_adapters.nwb_write.poisson_spikes``);
  the student's rates go through the same map, so ayna's Rate R² is lrfit's;
* **a fit of spike counts** (``model.target: counts``, where the estimator's ``predict``
  returns expected counts per bin): the fit's own training and test trials, its
  recorded counts and predicted counts; the test trials are ``val``; with a teacher
  behind the data, the teacher's state comes from running it noise-free on the same
  inputs.

Runs fitted to rates or currents of a recording without a teacher have no counts to
export and are refused in one sentence.

ayna's tier-1 probes need the model's dynamics as a callable, which no ``.npz`` holds; in
Python, :func:`lrfit.analysis.teacher_dynamics.latent_step` is that step for the bundle's latents::

    ayna.scan(ayna.load_bundle(path, dynamics=latent_step(LowRankFit.load(run).model_)))
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.teacher_dynamics import NetworkState, compare_states, network_state
from ..errors import LrfitError, check_choice
from ..fitting.metrics import r2_score
from .layout import AYNA_BUNDLE_FILE
from .run import Run, open_run

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "ayna_bundle", "export_run", "tanh_rates_to_counts", "write_bundle"]

#: Export formats (``lrfit export --format``).
FORMATS = ("ayna",)


def tanh_rates_to_counts(rates: np.ndarray, max_rate_hz: float, dt: float) -> np.ndarray:
    """Expected spike counts per bin of tanh rates: ``dt * max_rate_hz * (r + 1) / 2`` (``lrfit simulate``'s map).

    Parameters
    ----------
    rates : ndarray
        Network rates ``tanh(x)`` in ``[-1, 1]``.
    max_rate_hz : float
        Firing rate at ``r = 1``.
    dt : float
        Bin width in seconds.

    Returns
    -------
    ndarray
        float64, same shape, non-negative.

    Examples
    --------
    >>> tanh_rates_to_counts(np.array([-1.0, 0.0, 1.0]), 50.0, 0.02).tolist()
    [0.0, 0.5, 1.0]
    """
    if not max_rate_hz > 0:
        raise LrfitError(f"--max-rate-hz must be positive, got {max_rate_hz}.")
    return np.clip(float(dt) * float(max_rate_hz) * (np.asarray(rates, np.float64) + 1.0) / 2.0, 0.0, None)


def _trial_lens(mask: np.ndarray) -> np.ndarray | None:
    """Valid bins per trial when they are a prefix of each trial (ayna's ``trial_lens``); ``None`` if all are full."""
    mask = np.asarray(mask, bool)
    lens = mask.sum(1)
    if not np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lens[:, None]):
        raise LrfitError(
            "The run's valid bins are not a prefix of each trial (e.g. a preprocess.lead_in masks the first "
            "bins), which ayna's trial_lens cannot express; export a run fitted without a lead-in."
        )
    return None if np.all(lens == mask.shape[1]) else lens.astype(np.int64)


def _metrics(state_t: NetworkState | None, state_s: NetworkState, val: np.ndarray, mask: np.ndarray,
             true_rates: np.ndarray | None, rates: np.ndarray) -> dict[str, Any]:
    """Lrfit's own numbers on the bundle's arrays (as stored) and split: what ayna's tier-2 metrics should reproduce."""
    out: dict[str, Any] = {}
    if state_t is not None:
        agreement = compare_states(state_t, state_s, ~val, mask)
        out.update(state_r2=agreement.state_r2, cycle_consistency=agreement.cycle_consistency,
                   state_r2_recurrent=agreement.state_r2_recurrent,
                   cycle_consistency_recurrent=agreement.cycle_consistency_recurrent)
    if true_rates is not None:
        out["rate_r2_val"] = r2_score(
            np.asarray(true_rates, np.float64)[val], np.asarray(rates, np.float64)[val], mask[val]
        )
    return out


def _student_of_teacher(run: Run, n_trials: int, seed: int, max_rate_hz: float, spike_seed: int) -> dict[str, Any]:
    from data_adapters.nwb_write import poisson_spikes

    from .compare import fresh_trials, state_split, states

    fresh = fresh_trials(run.model_dir, run.teacher_dir, n_trials, seed)
    mask = np.asarray(fresh.trials.valid, bool)
    train = state_split(mask.shape[0])
    state_t, state_s, _ = states(fresh, train)
    dt = float(fresh.data.dt)
    true_rates = tanh_rates_to_counts(fresh.teacher_rates, max_rate_hz, dt)
    rates = tanh_rates_to_counts(fresh.student_rates, max_rate_hz, dt)
    spikes = poisson_spikes(true_rates / dt, dt, spike_seed)
    spikes = np.where(mask[..., None], spikes, 0)
    val = ~train
    meta = {
        "trials": f"{n_trials} fresh trials of the teacher's task (seed {seed}), the student and the teacher "
                  "noise-free, as lrfit compare; val: the last 20%",
        "spikes": f"Poisson counts of the teacher's rates, max_rate_hz * (tanh(x) + 1) / 2 with max_rate_hz "
                  f"{max_rate_hz:g} (lrfit simulate --record spikes), seed {spike_seed}",
        "rates": "the student's tanh rates through the same map, expected counts per bin",
        "true_rates": "the teacher's rates through that map",
        "teacher": str(Path(run.teacher_dir).resolve()),
        "max_rate_hz": float(max_rate_hz),
        "spike_seed": int(spike_seed),
    }
    return {
        "arrays": {"spikes": spikes.astype(np.int32), "rates": rates.astype(np.float32), "latents": state_s.full,
                   "inputs": np.asarray(fresh.data.inputs, np.float32), "val": val, "true_latents": state_t.full,
                   "true_rates": true_rates.astype(np.float32)},
        "mask": mask, "state_t": state_t, "state_s": state_s, "meta": meta, "dt": dt, "fit": fresh.fit,
    }


def _counts_fit(run: Run, fit: Any) -> dict[str, Any]:
    """A fit of spike counts (``model.target: counts``): its own trials, recorded and predicted counts."""
    data = run.data
    if data is None:
        raise LrfitError(
            f"'{run.path}' holds a counts fit but not the data it was fitted to (no config.yaml), so there "
            "are no recorded counts to export; fit it with 'lrfit fit'."
        )
    parts = [data.train, data.test]
    spikes = np.concatenate([np.asarray(d.activity) for d in parts])
    if np.any(spikes < 0) or not np.allclose(spikes, np.round(spikes)):
        raise LrfitError(f"The activity the counts fit in '{run.path}' was fitted to is not spike counts (negative or "
                         "fractional values); export a fit of raw counts per bin.")
    rates = np.concatenate([np.asarray(fit.predict(d).activity, np.float32) for d in parts])
    mask = np.concatenate([np.asarray(d.mask, bool) for d in parts])
    inputs = np.concatenate([np.asarray(d.inputs, np.float32) for d in parts])
    student = [network_state(fit.model_, fit.simulate(d).currents, np.asarray(d.inputs), x0=fit.initial_states(d))
               for d in parts]
    state_s = NetworkState(np.concatenate([s.recurrent for s in student]),
                           np.concatenate([s.inputs for s in student]), student[0].definition)
    val = np.concatenate([np.zeros(parts[0].n_trials, bool), np.ones(parts[1].n_trials, bool)])
    arrays = {"spikes": np.round(spikes).astype(np.int32), "rates": rates, "latents": state_s.full, "inputs": inputs,
              "val": val}
    meta = {"trials": "the fit's training trials, then its test trials (val)",
            "spikes": "the recorded counts the fit was fitted to", "rates": "the fit's expected counts per bin"}
    state_t = None
    if run.teacher is not None:
        import torch

        teacher = run.teacher
        with torch.no_grad():
            currents = teacher(torch.tensor(inputs, dtype=torch.float32, device=teacher.device), noise_std=0.0).currents
        state_t = network_state(teacher, currents, inputs, fit_trials=~val, mask=mask)
        arrays["true_latents"] = state_t.full
        meta["teacher"] = str(Path(run.teacher_dir).resolve())
        meta["true_latents_note"] = (
            "the teacher run noise-free on the same inputs (its noise in the recording is not known)"
        )
        section = (run.config or {}).get("data") or {}
        if section.get("record") == "spikes":  # spikes lrfit drew from the teacher's rates: their expected counts
            from ..teachers.record import teacher_expected_counts

            ids = np.asarray(parts[0].neuron_ids).astype(np.int64)
            recorded = parts[0].replace(activity=np.tanh(currents.cpu().numpy())[..., ids], mask=mask, inputs=inputs,
                                        conditions=None)
            arrays["true_rates"] = teacher_expected_counts(section, recorded, teacher.n_units)
            meta["true_rates"] = (
                "the teacher's noise-free rates mapped to expected counts with the recording's peak rates"
            )
    return {"arrays": arrays, "mask": mask, "state_t": state_t, "state_s": state_s, "meta": meta,
            "dt": float(parts[0].dt), "fit": fit}


def ayna_bundle(run: Run | str | Path, n_trials: int = 500, seed: int = 12345, max_rate_hz: float = 50.0,
                spike_seed: int = 0) -> dict[str, Any]:
    """The arrays and metadata of an ``ayna`` bundle of a run (module docstring).

    Parameters
    ----------
    run : RunDir, str or Path
        A fitted run (``lrfit fit``, or ``LowRankFit.save`` for a student of a teacher).
    n_trials, seed : int
        Students of a teacher: fresh trials and their seed (``lrfit compare``'s defaults).
    max_rate_hz : float
        Students of a teacher: firing rate at ``tanh(x) = 1`` (``lrfit simulate``'s default 50).
    spike_seed : int
        Students of a teacher: seed of the Poisson spikes.

    Returns
    -------
    dict
        Array name -> array (ayna's keys) and ``"meta"`` -> dict.

    Raises
    ------
    LrfitError
        A run that is not a fit, or a fit of rates or currents without a teacher.
    """
    run = open_run(run)
    fit = run.estimator
    if fit is None:
        raise LrfitError(
            f"'{run.path}' holds no fitted network (role '{run.role}'); export a run written by 'lrfit fit'."
        )
    if fit.observation_.counts:
        part = _counts_fit(run, fit)
    elif run.teacher_dir is not None and run.task is not None:
        part = _student_of_teacher(run, int(n_trials), int(seed), float(max_rate_hz), int(spike_seed))
    else:
        raise LrfitError(
            f"'{run.path}' was fitted to {fit.observation_.name} of a recording without a known teacher, so there are "
            "no spike counts and rates in counts to export; fit the counts (model.target: counts) or pass "
            "--teacher DIR for a student of a teacher."
        )
    arrays, mask = part["arrays"], part["mask"]
    lens = _trial_lens(mask)
    if lens is not None:
        arrays["trial_lens"] = lens
    student = part["fit"]
    meta = {
        "name": run.path.resolve().name,
        "model": f"lrfit LowRankFit, rank {int(student.rank)}, target {student.observation_.name}",
        "source": "lrfit export --format ayna",
        "run": str(run.model_dir.resolve()),
        "bin_ms": 1000.0 * part["dt"],
        "inputs_kind": "supplied",
        "latents": f"the student's state: {part['state_s'].definition}, then the leaky-integrated inputs v",
        "true_latents": None if part["state_t"] is None else
        f"the teacher's state: {part['state_t'].definition}, then the leaky-integrated inputs v",
        **part["meta"],
        "lrfit": _metrics(part["state_t"], part["state_s"], arrays["val"], mask, arrays.get("true_rates"),
                          arrays["rates"]),
    }
    return {**arrays, "meta": meta}


def write_bundle(bundle: dict[str, Any], path: str | Path) -> Path:
    """Write a bundle as ayna's ``.npz`` (arrays, plus ``meta`` as a JSON string)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in bundle.items() if k != "meta" and v is not None}
    payload["meta"] = np.array(json.dumps(bundle.get("meta") or {}, sort_keys=True))
    with open(path, "wb") as handle:  # a file handle: numpy would otherwise append ".npz" to another suffix
        np.savez_compressed(handle, **payload)
    return path


def export_run(run: Run | str | Path, fmt: str = "ayna", out: str | Path | None = None, overwrite: bool = False,
               **options: Any) -> tuple[Path, dict[str, Any]]:
    """Export a run for an outside checker (``lrfit export``).

    Parameters
    ----------
    run : RunDir, str or Path
        A fitted run.
    fmt : str
        One of :data:`FORMATS`.
    out : str or Path, optional
        File to write (default ``RUN/ayna_bundle.npz``, replaced on every export).
    overwrite : bool
        Replace an existing *out*.
    **options
        Passed to :func:`ayna_bundle`.

    Returns
    -------
    tuple
        ``(path written, the bundle's meta)``.
    """
    check_choice(fmt, FORMATS, "export format")
    run = open_run(run)
    if out is not None and Path(out).exists() and not overwrite:
        raise LrfitError(f"'{out}' already exists; pass --overwrite to replace it or choose another --out.")
    bundle = ayna_bundle(run, **options)
    target = Path(out) if out is not None else run.target(AYNA_BUNDLE_FILE)
    path = write_bundle(bundle, target)
    log.info("wrote %s", path)
    return path, bundle["meta"]
