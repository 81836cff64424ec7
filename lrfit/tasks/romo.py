"""Parametric working memory (Romo et al. 1999): compare two vibration frequencies."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import LrfitError
from .base import TaskTrials, TwoIntervalTask, signed_target


def frequency_pairs(params: dict[str, Any]) -> list[tuple[float, float]]:
    """All ``(f1, f2 = f1 + d)`` with ``f1`` in ``frequencies``, ``d`` in ``differences``, ``f2`` in range."""
    freqs = params["frequencies"]
    lo, hi = min(freqs), max(freqs)
    return [(f1, f1 + d) for f1 in freqs for d in params["differences"] if lo <= f1 + d <= hi]


class ParametricWMTask(TwoIntervalTask):
    """Parametric working memory (``"romo"``), after Dubreuil, Valente et al. (2022).

    A first vibration frequency ``f1`` is presented, then, after a variable delay,
    a second one ``f2``; during the decision period the output must be +1 if
    ``f1 > f2`` and -1 otherwise.  One input channel carries the frequency as an
    amplitude ``input_scale * (f - f_mid) / f_span`` (``f_mid``, ``f_span``: centre
    and span of ``frequencies``) while a stimulus is on.

    Parameters
    ----------
    dt : float
        Step in seconds (default 0.02).
    fixation_ms, stimulus1_ms, stimulus2_ms, decision_ms : float
        Epoch durations (defaults 100, 100, 100, 100 ms).
    delay_min_ms, delay_max_ms, delay_step_ms : float
        Variable delay (defaults 500 to 1000 ms in 20 ms steps).
    frequencies : list of float
        Possible ``f1`` in Hz (default 10, 14, ..., 34); their range bounds ``f2``.
    differences : list of float
        ``f2 - f1`` in Hz (default ±8, ±16, ±24).
    input_scale : float
        Amplitude scale (default 1.0).
    input_noise : float
        Noise on the frequency channel per 20 ms step (default 0.0, dt-corrected).
    target : float
        Target magnitude (default 1.0).

    Notes
    -----
    Conditions: ``f1``, ``f2``, ``delay_ms``, ``target``.  ``generate`` accepts
    fixed ``f1``, ``f2`` and ``delay_ms``.
    """

    name: ClassVar[str] = "romo"
    defaults: ClassVar[dict[str, Any]] = {
        "fixation_ms": 100.0,
        "stimulus1_ms": 100.0,
        "delay_min_ms": 500.0,
        "delay_max_ms": 1000.0,
        "delay_step_ms": 20.0,
        "stimulus2_ms": 100.0,
        "decision_ms": 100.0,
        "frequencies": [10.0, 14.0, 18.0, 22.0, 26.0, 30.0, 34.0],
        "differences": [-24.0, -16.0, -8.0, 8.0, 16.0, 24.0],
        "input_scale": 1.0,
        "input_noise": 0.0,
        "target": 1.0,
    }
    input_names: ClassVar[tuple[str, ...]] = ("frequency",)
    condition_columns: ClassVar[tuple[str, ...]] = ("f1", "f2", "delay_ms")
    noise_channels: ClassVar[tuple[str, ...]] = ("frequency",)

    def _validate(self, params: dict[str, Any]) -> None:
        super()._validate(params)
        if not frequency_pairs(params):
            raise LrfitError(
                "Task 'romo': no (f1, f1 + difference) pair falls within the frequency range; widen frequencies or "
                "shrink differences."
            )

    def _sample_conditions(self, n_trials, rng, params, fixed) -> pd.DataFrame:
        pairs = np.asarray(frequency_pairs(params), dtype=float)
        idx = rng.integers(0, len(pairs), size=n_trials)
        f1 = self._check_numeric("f1", fixed["f1"]) if "f1" in fixed else pairs[idx, 0]
        f2 = self._check_numeric("f2", fixed["f2"]) if "f2" in fixed else pairs[idx, 1]
        delays = self._sample_delays(n_trials, rng, params, fixed)
        return pd.DataFrame({"f1": f1, "f2": f2, "delay_ms": delays, "target": signed_target(f1 - f2, rng)})

    def encode(self, frequency: np.ndarray | float) -> np.ndarray:
        """Input amplitude of a frequency (Hz)."""
        freqs = self.params["frequencies"]
        mid, span = (max(freqs) + min(freqs)) / 2.0, max(max(freqs) - min(freqs), 1e-12)
        return self.params["input_scale"] * (np.asarray(frequency, dtype=float) - mid) / span

    def _fill(self, trials: TaskTrials, params: dict[str, Any]) -> None:
        c = trials.conditions
        s1, s2 = trials.epoch_mask("stimulus1"), trials.epoch_mask("stimulus2")
        trials.inputs[:, :, 0] = (
            s1 * self.encode(c["f1"].to_numpy())[:, None] + s2 * self.encode(c["f2"].to_numpy())[:, None]
        )
        self._fill_decision(trials, params)

    def psychometric(self, outputs: Any, trials: TaskTrials) -> pd.DataFrame:
        """Probability of answering ``f1 > f2`` (+1) per frequency pair.

        Returns
        -------
        pandas.DataFrame
            Columns ``f1``, ``f2``, ``difference`` (``f2 - f1``), ``p_choice``, ``n``.
        """
        c = trials.conditions
        df = pd.DataFrame({"f1": c["f1"], "f2": c["f2"], "choice": self.choices(outputs, trials)})
        out = self._p_choice(df, ["f1", "f2"])
        out.insert(2, "difference", out["f2"] - out["f1"])
        return out
