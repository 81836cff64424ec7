"""Fit configurations: defaults, YAML files, ``--set key=value`` overrides, validation.

A config has the sections ``data`` (what to load: a recording through
``data_adapters.load`` options, or trials simulated from a teacher directory),
``preprocess``, ``model``, ``optim``, ``rank_selection`` and the top-level ``seed``
and ``device``.  Unknown keys stop with the closest valid name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import LrfitError, closest
from .fitting.estimator import config_defaults

#: The estimator's entries (``model``/``optim`` settings, ``seed``, ``device``), with the defaults of
#: ``LowRankFit.__init__``; ``lrfit.fitting.estimator.CONFIG_KEYS`` says which parameter each one sets.
_FIT = config_defaults()

#: Every key a fit config may hold, with its default.  ``data`` is open: its keys
#: are the options of ``data_adapters.load`` (or of a teacher simulation).
#: ``model.rank`` may also be a list of ranks (rank selection).
DEFAULTS: dict[str, Any] = {
    "data": {},
    "preprocess": {
        "normalise": None,  # null | zscore | soft | centre | centre_global
        "scale": 1.0,  # multiply the activity after normalising (e.g. to fit tanh's range)
        "subsample": None,  # number or fraction of neurons kept
        "remove_condition_independent": False,
        "denoise_pca": None,  # number of principal components kept
        "split": {
            "by": "trials",  # trials | conditions
            "test_fraction": 0.25,
            "column": None,  # condition column(s) for by=conditions or stratification
            "test_values": None,
            "seed": 0,
        },
        "heldout_neurons": 0,  # number or fraction of neurons withheld from the fit
    },
    "model": {
        **_FIT.pop("model"),
        "inputs": None,  # input channels that drive the network (all of the data's by default)
    },
    "optim": _FIT.pop("optim"),
    "rank_selection": {"tolerance": 0.01},
    **_FIT,  # seed, device
}

#: Keys of ``data`` when the trials are simulated from a teacher directory.
TEACHER_DATA_KEYS = {"teacher", "trials", "test_trials", "record", "noise_std", "neurons", "seed", "task"}


def _check_keys(config: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str, source: str) -> None:
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key not in defaults:
            hint = closest(str(key), defaults)
            raise LrfitError(
                f"Unknown config key '{name}' in {source}{hint}; valid keys here: {', '.join(sorted(defaults))}."
            )
        if isinstance(defaults[key], dict) and defaults[key] and isinstance(value, Mapping):
            _check_keys(value, defaults[key], f"{name}.", source)


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into ``(["a", "b"], parsed value)`` (value read as YAML)."""
    if "=" not in text:
        raise LrfitError(f"--set expects key=value (e.g. model.rank=2), got '{text}'.")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set key=value`` overrides (dotted keys) to a copy of *config*."""
    out = copy.deepcopy(config)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise LrfitError(f"--set {text}: '{part}' is not a section of the config.")
        node[path[-1]] = value
    return out


def read_yaml_file(path: Path, kind: str, expected: str) -> Any:
    """Parse a user's YAML file (an empty file gives ``{}``).

    Parameters
    ----------
    path : Path
        The file.
    kind : str
        What it is, starting the error messages (e.g. ``"Config file"``).
    expected : str
        What to pass instead when it is missing (e.g. ``"a YAML sweep file"``).

    Raises
    ------
    LrfitError
        One sentence naming the file when it is missing or not valid YAML (with the line).
    """
    if not path.is_file():
        raise LrfitError(f"{kind} '{path}' does not exist; pass the path of {expected} (see configs/).")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LrfitError(f"{kind} '{path}' is not valid YAML{where}; fix its syntax.") from None


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (), extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Read a YAML config, apply overrides, check every key, fill defaults.

    Parameters
    ----------
    path : str or Path, optional
        YAML file; relative data paths are later resolved from its folder.
    overrides : iterable of str
        ``key=value`` strings with dotted keys.
    extra : mapping, optional
        A config given as a dict (merged before the overrides).

    Returns
    -------
    dict
        The resolved config; ``config["_base_dir"]`` is the config file's folder.
    """
    raw: dict[str, Any] = {}
    source = "the config"
    if path is not None:
        path = Path(path)
        source = f"'{path}'"
        raw = read_yaml_file(path, "Config file", "a YAML file")
        if not isinstance(raw, dict):
            raise LrfitError(f"Config file '{path}' must hold a mapping of sections (data, model, optim, ...).")
    if extra:
        raw = _merge(raw, extra)
    raw = apply_overrides(raw, overrides)
    _check_keys(raw, DEFAULTS, "", source)
    resolved = _merge(DEFAULTS, raw)
    if not resolved["data"]:
        raise LrfitError(f"{source} has no data section; add data: {{path: FILE, ...}} or data: {{teacher: DIR}}.")
    resolved["_base_dir"] = str(Path(path).resolve().parent) if path is not None else str(Path.cwd())
    return resolved
