"""Axis orders of activity arrays: ``"cond,time,neuron"``, condition factors ``cond:<name>``.

Shared by the array readers (:mod:`data_adapters.npz`, :mod:`data_adapters.factors`,
:mod:`data_adapters.mat`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["activity_array", "parse_axis_order"]

_AXES = {
    "trial": "trial", "trials": "trial", "cond": "trial", "conds": "trial", "condition": "trial",
    "conditions": "trial",
    "time": "time", "t": "time", "bin": "time", "bins": "time", "times": "time",
    "neuron": "neuron", "neurons": "neuron", "unit": "neuron", "units": "neuron", "cell": "neuron",
    "cells": "neuron",
}


def parse_axis_order(axis_order: str | Sequence[str], source: Any = None) -> list[str]:
    """Parse ``"cond,time,neuron"`` into canonical axis names (``trial``, ``time``, ``neuron``).

    Condition factor axes ``cond:<name>`` (:mod:`data_adapters.factors`) stay ``"cond:<name>"``;
    with them, the repeat axis must be called ``trial``.
    """
    toks = [t.strip() for t in (axis_order.split(",") if isinstance(axis_order, str) else axis_order)]
    factors = [t for t in toks if t.lower().startswith("cond:")]
    canon = [f"cond:{t.split(':', 1)[1].strip()}" if t in factors else _AXES.get(t.lower()) for t in toks]
    plain_cond = factors and any(t.lower() in ("cond", "conds", "condition", "conditions") for t in toks)
    if (None in canon or len(set(canon)) != len(canon) or not {"time", "neuron"} <= set(canon)
            or plain_cond or "cond:" in canon):
        raise DataError(f"axis_order {axis_order!r} for '{source}' is not valid; name each axis once with "
                        "trial/cond, time and neuron, e.g. axis_order='cond,time,neuron', or with condition "
                        "factors cond:<name> and a trial axis, e.g. 'neuron,cond:direction,cond:task,time,trial'",
                        field="axis_order")
    return canon  # type: ignore[return-value]


def activity_array(arrays: Any, activity_key: str | None, axes: list[str], axis_order: Any,
                    source: Any) -> tuple[str, np.ndarray]:
    """The name and contents of the activity array (given, ``activity``, or the only array with the right axes)."""
    keys = list(arrays.keys())
    if activity_key is None:
        if "activity" in arrays:
            activity_key = "activity"
        else:
            cands = [k for k in keys if np.asarray(arrays[k]).ndim == len(axes)
                     and np.asarray(arrays[k]).dtype.kind in "biuf"]
            if len(cands) != 1:
                raise DataError(f"cannot tell which array of '{source}' holds activity (candidates: {cands or keys}); "
                                "pass activity_key=<name>", field="activity_key")
            activity_key = cands[0]
    if activity_key not in arrays:
        raise DataError(f"'{source}' has no array {activity_key!r} (given as activity_key); available keys: {keys}",
                        field="activity_key")
    raw = np.asarray(arrays[activity_key])
    if raw.ndim != len(axes):
        raise DataError(f"array {activity_key!r} in '{source}' has {raw.ndim} axes {raw.shape} but axis_order "
                        f"{axis_order!r} names {len(axes)}; fix axis_order", field="axis_order")
    return activity_key, raw
