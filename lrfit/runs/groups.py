"""Group files for ``lrfit inactivate --groups FILE``: group name -> neuron ids (the one reader of group files).

The analysis layer takes groups as unit indices (``{name: index array}``,
:func:`lrfit.analysis.network_inactivation.resolve_groups`); this module reads the files into them.

Accepted formats of :func:`read_group_file`:

* JSON: ``{"name": [id, ...], ...}`` or ``{"groups": {...}}``; a value may also be
  ``{"neurons": [ids]}``, ``{"units": [unit indices]}``, ``{"population": p}`` and
  carry ``"fraction": f`` (see :func:`lrfit.analysis.network_inactivation.resolve_groups`).
* CSV, long: columns ``group`` and ``neuron`` (or ``neuron_id`` / ``id``), one row per
  neuron.
* CSV, wide: one column per group listing its neuron ids (shorter columns padded
  with empty cells).

:func:`load_groups` reads the same layouts with unit indices instead of neuron ids.

Neuron ids are those of the run (the recorded ids of a fit, the unit index of a
task-trained network), compared as strings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError, closest

_ID_COLUMNS = ("neuron", "neuron_id", "id", "unit")


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def ids_to_units(ids: Sequence[Any], neuron_ids: Sequence[str], what: str) -> list[int]:
    """Unit indices of the neurons named *ids* (ids compared as strings).

    Raises
    ------
    LrfitError
        If an id is not one of the run's neuron ids.
    """
    lookup = {str(n): i for i, n in enumerate(neuron_ids)}
    units = []
    for v in ids:
        key = _id_text(v)
        if key not in lookup:
            raise LrfitError(
                f"{what} names neuron '{key}', which is not in this run{closest(key, list(lookup))}; use the run's "
                f"neuron ids (e.g. {', '.join(list(lookup)[:5])})."
            )
        units.append(lookup[key])
    return units


def _from_mapping(spec: dict[str, Any], neuron_ids: Sequence[str] | None, path: Path) -> dict[str, Any]:
    if neuron_ids is None:  # the lists hold unit indices already
        return spec
    out: dict[str, Any] = {}
    for name, value in spec.items():
        what = f"Group '{name}' of '{path}'"
        if isinstance(value, dict):
            value = dict(value)
            if "neurons" in value:
                value["units"] = ids_to_units(value.pop("neurons"), neuron_ids, what)
            out[str(name)] = value
        elif isinstance(value, list):
            out[str(name)] = ids_to_units(value, neuron_ids, what)
        else:
            raise LrfitError(
                f"{what} must be a list of neuron ids or an object with 'neurons', 'units' or 'population'."
            )
    return out


def _read_group_json(path: Path, members: str) -> dict[str, Any]:
    """The group mapping of a JSON group file, ``{"groups": {name: spec}}`` or ``{name: spec}``, unresolved.

    *members* names what the lists hold (e.g. ``"unit indices"``), for the error message.
    """
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LrfitError(
            f"Group file '{path}' is not valid JSON ({exc.msg} at line {exc.lineno}); fix the file."
        ) from None
    if isinstance(spec, dict) and isinstance(spec.get("groups"), dict):
        spec = spec["groups"]
    if not isinstance(spec, dict) or not spec:
        raise LrfitError(f"Group file '{path}' must hold a JSON object mapping group names to lists of {members}.")
    return spec


def _read_json(path: Path, neuron_ids: Sequence[str] | None) -> dict[str, Any]:
    return _from_mapping(
        _read_group_json(path, "unit indices" if neuron_ids is None else "neuron ids"), neuron_ids, path
    )


def _read_csv(path: Path, neuron_ids: Sequence[str] | None) -> dict[str, Any]:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LrfitError(
            f"Group file '{path}' is not a readable CSV table ({type(exc).__name__}); write columns group,neuron."
        ) from None
    cols = [c.strip() for c in table.columns]
    table.columns = cols
    id_col = next((c for c in _ID_COLUMNS if c in cols), None)
    if "group" in cols and id_col is not None:
        spec: dict[str, list[str]] = {}
        for g, nid in zip(table["group"], table[id_col]):
            if str(nid).strip():
                spec.setdefault(str(g).strip(), []).append(nid)
    else:
        spec = {c: [v for v in table[c] if str(v).strip()] for c in cols}
    spec = {k: v for k, v in spec.items() if v}
    if not spec:
        raise LrfitError(f"Group file '{path}' lists no neurons; write columns group,neuron (one row per neuron).")
    return _from_mapping(spec, neuron_ids, path)


def read_group_file(
    path: str | Path, neuron_ids: Sequence[str] | None, n_units: int, labels: Any = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Read a group file (JSON or CSV, see the module docstring) into unit indices.

    Parameters
    ----------
    path : str or Path
        The file.
    neuron_ids : sequence of str or None
        The run's id of each unit; ``None`` when the file lists unit indices.
    n_units : int
        Network size.
    labels : array-like of int, optional
        Population labels (for ``{"population": p}`` entries).
    seed : int
        Seed of ``fraction`` draws.

    Returns
    -------
    dict of str to ndarray
        Unit indices per group.
    """
    from ..analysis.network_inactivation import resolve_groups

    path = Path(path)
    if not path.is_file():
        raise LrfitError(
            f"Group file '{path}' does not exist; pass --groups populations or a JSON/CSV file mapping group names to "
            "neuron ids."
        )
    suffix = path.suffix.lower()
    if suffix == ".json":
        spec = _read_json(path, neuron_ids)
    elif suffix == ".csv":
        spec = _read_csv(path, neuron_ids)
    else:
        raise LrfitError(
            f"Unknown group file format '{suffix or path.name}' of '{path}'; use a .json file "
            f"{{\"name\": [neuron ids]}} or a .csv file with columns group,neuron."
        )
    return resolve_groups(spec, n_units, labels=labels, seed=seed)


def load_groups(path: str | Path, n_units: int, labels: Any = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Read a group file whose lists hold unit indices (JSON ``{"groups": {name: spec}}`` or ``{name: spec}``).

    Same as :func:`read_group_file` without neuron ids; each spec is one of
    :func:`lrfit.analysis.network_inactivation.resolve_groups`.
    """
    return read_group_file(path, None, n_units, labels=labels, seed=seed)
