"""Spike counts, teacher-student: the counts fit against the smoothed-MSE fit and the smoothed PSTH.

Problem (issue 19): a 256-unit rank-1 CDM teacher's rates turned into Poisson counts
(20 ms bins, each unit's peak rate drawn from 20-50 Hz, ``rate = peak (tanh(x) + 1) / 2``),
``--train-trials`` training trials (400, then ``--few-trials``, 50), 200 held-out trials
and 300 fresh trials.  For each training size the script fits

* a rank-1 counts fit (``LowRankFit(observation="counts")``, Poisson likelihood);
* the classic fit (:class:`lrfit.fitting.smoothed.SmoothedRateFit`: counts smoothed with the width the
  PSTH baseline chose on the training trials, normalised, fitted as rates by squared
  error), read back as expected counts;
* the smoothed training PSTH (:func:`lrfit.fitting.baselines.compute_count_baselines`);

and reports the held-out bits per spike of each, the R^2 of the counts fit's expected
rates against the teacher's true rates on the fresh trials, co-smoothing (20% of the
units held out: ``co_bps`` from the latents against ``co_bps_pca``, a GLM on the held-in
neurons' top PCs), and seconds.  Prints JSON.

    python benchmarks/bench_spikes.py [--teacher DIR] [--epochs 100]

Without ``--teacher`` a teacher is trained first (about 10 s) in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from lrfit import LowRankFit
from lrfit.fitting.baselines import compute_count_baselines
from lrfit.fitting.counts import bits_per_spike
from lrfit.fitting.heldout import heldout_neuron_bits_per_spike
from lrfit.fitting.metrics import r2_score
from lrfit.fitting.smoothed import SmoothedRateFit
from lrfit.teachers import simulate_teacher, train_teacher
from lrfit.teachers.record import peak_rates, rates_to_hz

PEAKS = (20.0, 50.0)


def recording(teacher: Path, trials: int, seed: int) -> tuple:
    """Counts of every unit on fresh trials and their true expected counts."""
    counts = simulate_teacher(teacher, trials, seed=seed, record="spikes", max_rate_hz=PEAKS)
    rates = simulate_teacher(teacher, trials, seed=seed)
    truth = rates_to_hz(np.asarray(rates.activity), peak_rates(rates.n_neurons, PEAKS)) * rates.dt
    return counts, truth


def one_size(teacher: Path, n_train: int, test, fresh, truth_fresh, epochs: int) -> dict:
    train, _ = recording(teacher, n_train, seed=1)
    params = dict(rank=1, max_epochs=epochs, patience=20, progress=False)
    t0 = time.perf_counter()
    fit = LowRankFit(observation="counts", **params).fit(train, validation=test)
    counts_seconds = time.perf_counter() - t0
    base = compute_count_baselines(train, test)
    t0 = time.perf_counter()
    smoothed = SmoothedRateFit(max(base.sd_s, train.dt), **params).fit(train, validation=test)
    smoothed_seconds = time.perf_counter() - t0
    out = {
        "train_trials": n_train,
        "counts_fit": {"bits_per_spike_test": fit.score(test, "bits_per_spike"),
                       "r2_expected_vs_true_rates_fresh": r2_score(truth_fresh, fit.predict(fresh).activity),
                       "epochs": fit.epochs_, "seconds": round(counts_seconds, 1)},
        "smoothed_mse_fit": {"bits_per_spike_test": smoothed.score(test),
                             "r2_expected_vs_true_rates_fresh": r2_score(truth_fresh, smoothed.predict_counts(fresh)),
                             "smoothing_sd_s": max(base.sd_s, train.dt), "seconds": round(smoothed_seconds, 1)},
        "psth_baseline": {"bits_per_spike_test": base.bits_per_spike["psth"], "sd_s": base.sd_s,
                          "trained_fraction": base.trained_fraction},
        "mean_rate_baseline": {"bits_per_spike_test": base.bits_per_spike["mean"]},
    }
    out["counts_beats_smoothed_and_psth"] = bool(
        out["counts_fit"]["bits_per_spike_test"] > max(out["smoothed_mse_fit"]["bits_per_spike_test"],
                                                       out["psth_baseline"]["bits_per_spike_test"]))
    return out


def co_smoothing(teacher: Path, test, epochs: int, heldout: float = 0.2) -> dict:
    train, _ = recording(teacher, 400, seed=1)
    n = train.n_neurons
    out_idx = np.sort(np.random.default_rng(7919).choice(n, int(round(heldout * n)), replace=False))
    keep = np.setdiff1d(np.arange(n), out_idx)
    fit = LowRankFit(rank=1, observation="counts", max_epochs=epochs, patience=20, progress=False).fit(
        train.select(neurons=keep), validation=test.select(neurons=keep))
    result = heldout_neuron_bits_per_spike(fit, train.select(neurons=keep), test.select(neurons=keep),
                                           train.select(neurons=out_idx), test.select(neurons=out_idx))
    return {"heldout_neurons": int(out_idx.size), "co_bps": result["co_bps"], "co_bps_pca": result["co_bps_pca"],
            "co_bps_above_pca": bool(result["co_bps"] > result["co_bps_pca"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="directory of a 256-unit rank-1 CDM teacher (trained here if absent)")
    parser.add_argument("--train-trials", type=int, default=400)
    parser.add_argument("--few-trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        teacher = Path(args.teacher) if args.teacher else Path(tmp) / "teacher"
        if not (teacher / "model.json").is_file():
            train_teacher("cdm", n_units=256, rank=1, seed=0, out=teacher, max_epochs=60, progress=False)
        test, truth_test = recording(teacher, 200, seed=2)
        fresh, truth_fresh = recording(teacher, 300, seed=3)
        sizes = [
            one_size(teacher, n, test, fresh, truth_fresh, args.epochs) for n in (args.train_trials, args.few_trials)
        ]
        result = {
            "benchmark": "spikes",
            "teacher_units": test.n_neurons,
            "dt": test.dt,
            "peak_rates_hz": list(PEAKS),
            "test_trials": test.n_trials,
            "true_rates_bits_per_spike_test": bits_per_spike(np.asarray(test.activity), truth_test),
            "sizes": sizes,
            "co_smoothing": co_smoothing(teacher, test, args.epochs),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
