"""Three-bit flip-flop: the Computation-through-Dynamics benchmark's standard task (8 stable states).

Three independent input channels deliver brief pulses of +1 or -1 at random times; each
of the three outputs must hold the sign of the last pulse on its own channel until the
next one arrives (Sussillo & Barak 2013; the "3BFF" of Versteeg et al.'s
Computation-through-Dynamics benchmark).  A network that solves it has at least
2^3 = 8 stable fixed points without input, one per memory state, so the task tests
whether a student recovers the *landscape* of its teacher and not only its activity.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import LrfitError
from .base import Task, TaskTrials, ms_to_step

#: Number of bits (input and output channels).
N_BITS = 3
_SYMBOL = {1: "+", -1: "-", 0: "0"}


class FlipFlopTask(Task):
    """Three-bit flip-flop (``"flipflop"``).

    Parameters
    ----------
    dt : float
        Step in seconds (default 0.02).
    pulses_ms : float
        The epoch in which pulses arrive (default 1800 ms), divided into slots of
        ``slot_ms``.
    decision_ms : float
        A final epoch without pulses in which every output must hold its bit
        (default 200 ms); the per-trial score is read there.
    slot_ms : float
        Pulses start at slot boundaries (default 100 ms).  In the first slot every
        channel gets a pulse, so every bit is defined from then on; in each later slot
        each channel gets one with probability ``pulse_prob``.
    pulse_ms : float
        Duration of a pulse (default 60 ms, at most ``slot_ms``).
    pulse_prob : float
        Probability of a pulse per later slot and channel (default 0.15).
    pulse_amplitude : float
        Input value of a pulse (default 1.0); its sign is drawn at random.
    input_noise : float
        Noise on the three channels per 20 ms step (default 0.0, dt-corrected).
    target : float
        Target magnitude of a held bit (default 1.0).

    Notes
    -----
    Inputs ``bit_0``, ``bit_1``, ``bit_2``; outputs the same names.  Targets hold the sign
    of each channel's last pulse from its onset on; the loss covers every step after the
    first pulses.  Conditions: ``bit_0..2`` (the bits at the end of the trial, +1/-1),
    ``pulses_0..2`` (one character per slot: ``+``, ``-`` or ``0``), ``n_pulses`` and
    ``target`` (``bit_0``).  A trial is correct when the mean output of every channel
    over the decision epoch has the sign of its bit.

    Examples
    --------
    >>> trials = FlipFlopTask().generate(4, seed=0)
    >>> trials.inputs.shape, trials.targets.shape
    ((4, 100, 3), (4, 100, 3))
    >>> sorted(set(trials.conditions["bit_0"]) | set(trials.conditions["bit_1"])) in ([-1, 1], [-1], [1])
    True
    """

    name: ClassVar[str] = "flipflop"
    defaults: ClassVar[dict[str, Any]] = {
        "pulses_ms": 1800.0,
        "decision_ms": 200.0,
        "slot_ms": 100.0,
        "pulse_ms": 60.0,
        "pulse_prob": 0.15,
        "pulse_amplitude": 1.0,
        "input_noise": 0.0,
        "target": 1.0,
    }
    input_names: ClassVar[tuple[str, ...]] = tuple(f"bit_{k}" for k in range(N_BITS))
    output_names: ClassVar[tuple[str, ...]] = tuple(f"bit_{k}" for k in range(N_BITS))
    noise_channels: ClassVar[tuple[str, ...]] = tuple(f"bit_{k}" for k in range(N_BITS))

    def _validate(self, params: dict[str, Any]) -> None:
        super()._validate(params)
        if not 0.0 <= params["pulse_prob"] <= 1.0:
            raise LrfitError(f"Task 'flipflop': pulse_prob must lie in [0, 1], got {params['pulse_prob']:g}.")
        if params["slot_ms"] <= 0 or params["pulse_ms"] <= 0 or params["pulse_ms"] > params["slot_ms"]:
            raise LrfitError(
                f"Task 'flipflop': need 0 < pulse_ms <= slot_ms, got pulse_ms={params['pulse_ms']:g}, "
                f"slot_ms={params['slot_ms']:g}."
            )
        if params["pulses_ms"] < params["slot_ms"]:
            raise LrfitError(f"Task 'flipflop': pulses_ms ({params['pulses_ms']:g}) must hold at least one slot "
                             f"(slot_ms {params['slot_ms']:g}).")
        if params["decision_ms"] <= 0:
            raise LrfitError("Task 'flipflop' needs a decision epoch: decision_ms must be > 0.")

    def _min_durations(self, params: dict[str, Any]) -> dict[str, float]:
        return {"pulses": params["pulses_ms"], "decision": params["decision_ms"]}

    @staticmethod
    def _n_slots(params: dict[str, Any]) -> int:
        return int(params["pulses_ms"] // params["slot_ms"])

    def _sample_conditions(self, n_trials, rng, params, fixed) -> pd.DataFrame:
        slots = self._n_slots(params)
        signs = np.where(rng.random((n_trials, slots, N_BITS)) < 0.5, 1, -1)
        on = rng.random((n_trials, slots, N_BITS)) < params["pulse_prob"]
        on[:, 0, :] = True
        pulses = np.where(on, signs, 0)
        last = np.array([[p[np.flatnonzero(p)[-1]] for p in trial.T] for trial in pulses]).reshape(n_trials, N_BITS)
        columns: dict[str, Any] = {f"bit_{k}": last[:, k].astype(int) for k in range(N_BITS)}
        for k in range(N_BITS):
            columns[f"pulses_{k}"] = ["".join(_SYMBOL[int(v)] for v in trial[:, k]) for trial in pulses]
        columns["n_pulses"] = on.sum(axis=(1, 2)).astype(int)
        columns["target"] = last[:, 0].astype(int)
        return pd.DataFrame(columns)

    def _fill(self, trials: TaskTrials, params: dict[str, Any]) -> None:
        c = trials.conditions
        slots = self._n_slots(params)
        starts = ms_to_step(np.arange(slots) * params["slot_ms"], trials.dt)
        stops = ms_to_step(np.arange(slots) * params["slot_ms"] + params["pulse_ms"], trials.dt)
        stops = np.maximum(stops, starts + 1)
        steps = np.arange(trials.n_steps)
        for k in range(N_BITS):
            codes = np.array([[{"+": 1, "-": -1, "0": 0}[ch] for ch in s] for s in c[f"pulses_{k}"]]).reshape(-1, slots)
            held = np.zeros((trials.n_trials,), np.float32)
            for s in range(slots):
                pulse = codes[:, s]
                window = (steps >= starts[s]) & (steps < stops[s])
                trials.inputs[:, window, k] = (params["pulse_amplitude"] * pulse)[:, None]
                held = np.where(pulse != 0, pulse, held)
                after = steps >= starts[s]
                until = steps < (starts[s + 1] if s + 1 < slots else trials.n_steps)
                trials.targets[:, after & until, k] = (params["target"] * held)[:, None]
        trials.loss_mask[:] = steps[None, :] >= stops[0]

    def correct(self, outputs: Any, trials: TaskTrials) -> np.ndarray:
        """Whether every channel's mean decision-epoch output has the sign of its bit.

        Parameters
        ----------
        outputs : np.ndarray or Tensor
            ``(trials, time, 3)`` readout on ``trials.inputs``.
        trials : TaskTrials
            The trials (their ``conditions['bit_k']``).

        Returns
        -------
        np.ndarray
            bool ``(trials,)``.
        """
        out = self._check_outputs(outputs, trials)
        if out.shape[2] < N_BITS:
            raise LrfitError(f"The flip-flop task needs {N_BITS} output channels, got {out.shape[2]}; "
                             "train the network on task 'flipflop'.")
        mask = trials.epoch_mask("decision")
        held = (out[:, :, :N_BITS] * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1), 1)[:, None]
        bits = trials.conditions[[f"bit_{k}" for k in range(N_BITS)]].to_numpy()
        return np.all(np.sign(held) == bits, axis=1)

    def accuracy(self, outputs: Any, trials: TaskTrials) -> float:
        """Fraction of trials in which all three bits are held (the mean of :meth:`correct`)."""
        return float(np.mean(self.correct(outputs, trials)))

    def psychometric(self, outputs: Any, trials: TaskTrials) -> pd.DataFrame:
        """Probability that each channel reports +1 in the decision epoch, per channel and bit held.

        Returns
        -------
        pandas.DataFrame
            Columns ``channel``, ``bit``, ``p_choice``, ``n``; a perfect network has
            ``p_choice`` 0 for bit -1 and 1 for bit +1 on every channel.
        """
        out = self._check_outputs(outputs, trials)
        mask = trials.epoch_mask("decision")
        frames = []
        for k in range(min(N_BITS, out.shape[2])):
            held = (out[:, :, k] * mask).sum(1) / np.maximum(mask.sum(1), 1)
            df = pd.DataFrame({"channel": f"bit_{k}", "bit": trials.conditions[f"bit_{k}"].to_numpy(),
                               "choice": np.where(held > 0, 1, -1)})
            frames.append(self._p_choice(df, ["channel", "bit"]))
        return pd.concat(frames, ignore_index=True)

    def bit_accuracy(self, outputs: Any, trials: TaskTrials) -> float:
        """Fraction of scored steps and channels whose output has the sign of the target (a finer measure)."""
        out = self._check_outputs(outputs, trials)[:, :, :N_BITS]
        mask = trials.loss_mask.astype(bool)
        return float(np.mean((np.sign(out) == np.sign(trials.targets))[mask]))
