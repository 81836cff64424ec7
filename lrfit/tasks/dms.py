"""Delayed match-to-sample: two stimuli separated by a variable delay."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .base import TaskTrials, TwoIntervalTask, sample_or_fixed

STIMULI = ("A", "B")


class DelayedMatchTask(TwoIntervalTask):
    """Delayed match-to-sample (``"dms"``), after Dubreuil, Valente et al. (2022).

    A sample stimulus (A or B, one input channel each) is followed by a variable
    delay and a test stimulus; during the decision period the output must be +1
    if test and sample match and -1 otherwise.

    Parameters
    ----------
    dt : float
        Step in seconds (default 0.02).
    fixation_ms, stimulus1_ms, stimulus2_ms, decision_ms : float
        Epoch durations (defaults 100, 500, 500, 1000 ms).
    delay_min_ms, delay_max_ms, delay_step_ms : float
        The delay is drawn uniformly from ``delay_min_ms, delay_min_ms +
        delay_step_ms, ..., delay_max_ms`` (defaults 500, 1000, 20 ms).  Trials
        with shorter delays end earlier and are padded (``valid`` is False there).
    input_noise : float
        Noise on both stimulus channels per 20 ms step (default 0.03, dt-corrected).
    stimulus_amplitude : float
        Input value of a presented stimulus (default 1.0).
    target : float
        Target magnitude (default 1.0).

    Notes
    -----
    Conditions: ``sample``, ``test`` (``"A"``/``"B"``), ``match`` (bool),
    ``delay_ms``, ``target`` (+1 match, -1 non-match).  ``generate`` accepts fixed
    ``sample``, ``test`` and ``delay_ms``.
    """

    name: ClassVar[str] = "dms"
    defaults: ClassVar[dict[str, Any]] = {
        "fixation_ms": 100.0,
        "stimulus1_ms": 500.0,
        "delay_min_ms": 500.0,
        "delay_max_ms": 1000.0,
        "delay_step_ms": 20.0,
        "stimulus2_ms": 500.0,
        "decision_ms": 1000.0,
        "input_noise": 0.03,
        "stimulus_amplitude": 1.0,
        "target": 1.0,
    }
    input_names: ClassVar[tuple[str, ...]] = ("A", "B")
    condition_columns: ClassVar[tuple[str, ...]] = ("sample", "test", "delay_ms")
    noise_channels: ClassVar[tuple[str, ...]] = ("A", "B")

    def _sample_conditions(self, n_trials, rng, params, fixed) -> pd.DataFrame:
        sample = sample_or_fixed("sample", fixed, rng, STIMULI, n_trials)
        sample = self._check_categorical("sample", np.asarray(sample, dtype=object), STIMULI).astype(str)
        test = sample_or_fixed("test", fixed, rng, STIMULI, n_trials)
        test = self._check_categorical("test", np.asarray(test, dtype=object), STIMULI).astype(str)
        delays = self._sample_delays(n_trials, rng, params, fixed)
        match = sample == test
        return pd.DataFrame(
            {"sample": sample, "test": test, "match": match, "delay_ms": delays, "target": np.where(match, 1, -1)}
        )

    def _fill(self, trials: TaskTrials, params: dict[str, Any]) -> None:
        c = trials.conditions
        amp = params["stimulus_amplitude"]
        s1, s2 = trials.epoch_mask("stimulus1"), trials.epoch_mask("stimulus2")
        for ch, stim in enumerate(STIMULI):
            trials.inputs[:, :, ch] = amp * (
                s1 * (c["sample"] == stim).to_numpy()[:, None] + s2 * (c["test"] == stim).to_numpy()[:, None]
            )
        self._fill_decision(trials, params)

    def psychometric(self, outputs: Any, trials: TaskTrials) -> pd.DataFrame:
        """Probability of answering "match" (+1) per sample/test pair.

        Returns
        -------
        pandas.DataFrame
            Columns ``sample``, ``test``, ``match``, ``p_choice``, ``n``.
        """
        c = trials.conditions
        df = pd.DataFrame({"sample": c["sample"], "test": c["test"], "choice": self.choices(outputs, trials)})
        out = self._p_choice(df, ["sample", "test"])
        out.insert(2, "match", out["sample"] == out["test"])
        return out
