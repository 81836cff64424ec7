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

from ..errors import LrfitError, closest
from .config_params import config_defaults

#: The estimator's entries (``model``/``optim`` settings, ``seed``, ``device``), with the defaults of
#: ``LowRankFit.__init__``; ``lrfit.runs.config_params.CONFIG_KEYS`` says which parameter each one sets.
_FIT = config_defaults()

#: Every key a fit config may hold, with its default.  ``data`` is open: its keys
#: are the options of ``data_adapters.load`` (or of a teacher simulation).
#: ``model.rank`` may also be a list of ranks (rank selection).
DEFAULTS: dict[str, Any] = {
    "data": {},
    "preprocess": {
        "normalise": None,
        "scale": 1.0,
        "subsample": None,
        "remove_condition_independent": False,
        "denoise_pca": None,
        "split": {
            "by": "trials",
            "test_fraction": 0.25,
            "column": None,
            "test_values": None,
            "folds": None,
            "seed": 0,
        },
        "heldout_neurons": 0,
        "lead_in": 0.0,
    },
    "model": {
        **_FIT.pop("model"),
        "inputs": None,
    },
    "optim": _FIT.pop("optim"),
    "rank_selection": {"tolerance": 0.01},
    **_FIT,  # seed, device
}

#: One line of meaning for every key of :data:`DEFAULTS` that is not a ``LowRankFit``
#: parameter (those are described by the estimator's docstring, see :func:`config_schema`).
DESCRIPTIONS: dict[str, str] = {
    "data": "what to fit: options of data_adapters.load (path, activity_key, axis_order, time_key, time_units, "
            "inputs, ...) or a teacher simulation (teacher, trials, test_trials, record: rates|currents|spikes, "
            "max_rate_hz: peak Hz of spikes or a [low, high] range, noise_std, neurons, seed, task)",
    "preprocess.normalise": "per-neuron normalisation fitted on the training split: null, zscore, soft, centre or "
                            "centre_global (centre each neuron, divide by one global scale)",
    "preprocess.scale": "multiply the activity after normalising (e.g. to fit tanh's range for target: rates)",
    "preprocess.subsample": "number or fraction of the recorded neurons kept (seeded by seed)",
    "preprocess.remove_condition_independent": "subtract the training trials' mean time course from every trial",
    "preprocess.denoise_pca": "keep this many principal components of the training activity",
    "preprocess.split.by": "what is held out: trials (at random), conditions (whole values of column), or halves "
                           "(each separately recorded neuron's trials of each condition split into two averaged "
                           "halves; data from a file with a NaN-padded trial axis or MAT unit/TDR files)",
    "preprocess.split.test_fraction": "fraction of the trials or conditions held out (one split)",
    "preprocess.split.column": "condition column(s): the conditions of by: conditions, or the strata of by: trials",
    "preprocess.split.test_values": "explicit held-out values of column (by: conditions)",
    "preprocess.split.folds": "K: K fits, every condition (by: conditions) or trial (by: trials) held out exactly "
                              "once; r2_test is the fold mean",
    "preprocess.split.seed": "seed of the split (and of the folds)",
    "preprocess.heldout_neurons": "number or fraction of neurons withheld from the fit and predicted from its latents",
    "preprocess.lead_in": "seconds of unscored lead-in before the recorded window: the network runs from its start "
                          "with data.inputs evaluated over it (e.g. a context cue already on)",
    "model.counts_from": "with model.target: counts, what drives each unit's Poisson readout: rates or currents",
    "model.inputs": "input channels that drive the network, in order (default: all of the data's)",
    "rank_selection.tolerance": "the smallest rank within this of the best held-out R^2 (among the ranks that beat "
                                "the baselines) is chosen",
}


def _estimator_descriptions() -> dict[str, str]:
    """First line of each ``LowRankFit`` parameter's numpydoc entry, by config key."""
    import inspect as _inspect
    import re

    from ..fitting.estimator import LowRankFit
    from .config_params import CONFIG_KEYS

    doc = _inspect.getdoc(LowRankFit) or ""
    section = doc.split("Parameters\n----------\n", 1)[-1].split("\n\n    Attributes", 1)[0].split("Attributes\n", 1)[0]
    entries: dict[str, str] = {}
    for match in re.finditer(r"^(\w[\w, ]*) : ([^\n]*)\n((?:    [^\n]*\n?)*)", section, flags=re.M):
        text = re.split(r"\.\s+(?=[A-Z(])", " ".join(line.strip() for line in match.group(3).splitlines()))[0]
        text = text.rstrip(".").replace("``", "")
        for name in match.group(1).split(","):
            entries[name.strip()] = text or match.group(2)
    return {key: entries.get(name, "") for name, key in CONFIG_KEYS.items()}


def config_schema() -> list[tuple[str, Any, str, str]]:
    """Every config key with its default, its type and one line of meaning (``lrfit fit --show-config``).

    Returns
    -------
    list of tuple
        ``(dotted key, default, type name, meaning)`` in the order of :data:`DEFAULTS`.

    Examples
    --------
    >>> rows = {key: (default, kind) for key, default, kind, _ in config_schema()}
    >>> rows["model.rank"], rows["preprocess.split.folds"][0]
    ((1, 'int or list of int'), None)
    """
    meanings = {**_estimator_descriptions(), **DESCRIPTIONS}
    kinds = {"model.rank": "int or list of int", "optim.lr": "float or 'auto'", "preprocess.subsample": "int or float",
             "preprocess.heldout_neurons": "int or float", "preprocess.split.column": "str or list of str",
             "preprocess.split.test_values": "list", "preprocess.split.folds": "int",
             "preprocess.denoise_pca": "int", "preprocess.normalise": "str", "model.inputs": "list of str",
             "data": "mapping"}
    rows: list[tuple[str, Any, str, str]] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                walk(value, f"{name}.")
                continue
            kind = kinds.get(name, type(value).__name__ if value is not None else "any")
            rows.append((name, value, kind, meanings.get(name, "")))

    walk(DEFAULTS, "")
    return rows


def format_schema() -> str:
    """:func:`config_schema` as a text table (what ``lrfit fit --show-config`` prints)."""
    rows = config_schema()
    width = max(len(r[0]) for r in rows)
    lines = [f"{'key':<{width}}  {'default':<12} {'type':<18} meaning"]
    for key, default, kind, meaning in rows:
        shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        lines.append(f"{key:<{width}}  {shown:<12} {kind:<18} {meaning}")
    return "\n".join(lines)


#: Keys of ``data`` when the trials are simulated from a teacher directory.
TEACHER_DATA_KEYS = {"teacher", "trials", "test_trials", "record", "noise_std", "neurons", "seed", "task",
                     "max_rate_hz"}


def _check_keys(config: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str, source: str) -> None:
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key not in defaults:
            hint = closest(str(key), defaults)
            raise LrfitError(
                f"Unknown config key '{name}' in {source}{hint}; valid keys here: {', '.join(sorted(defaults))}."
            )
        if isinstance(defaults[key], dict) and defaults[key] and value is not None and not isinstance(value, Mapping):
            raise LrfitError(
                f"Config section '{name}' in {source} must be a mapping of keys (e.g. {name}: "
                f"{{{next(iter(defaults[key]))}: ...}}), got {type(value).__name__} {value!r}."
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


#: Config keys holding a file or directory: given with ``--set``, a relative one is relative to the
#: current directory (where the command was typed), not to the config file's folder.
PATH_KEYS = (("data", "path"), ("data", "teacher"))


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set key=value`` overrides (dotted keys) to a copy of *config*.

    A relative path given for a key of :data:`PATH_KEYS` is made absolute from the current
    directory, as a path typed on the command line is.
    """
    out = copy.deepcopy(config)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise LrfitError(f"--set {text}: '{part}' is not a section of the config.")
        if tuple(path) in PATH_KEYS and isinstance(value, str) and not Path(value).expanduser().is_absolute():
            value = str(Path(value).expanduser().resolve())
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

    Examples
    --------
    >>> config = load_config(extra={"data": {"path": "recording.nwb"}, "model": {"rank": [1, 2]}})
    >>> config["model"]["rank"], config["model"]["target"], config["optim"]["lr"]
    ([1, 2], 'rates', 'auto')
    >>> load_config(extra={"model": {"rnak": 2}})
    Traceback (most recent call last):
    ...
    lrfit.errors.LrfitError: ...
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
    if not isinstance(resolved["data"], Mapping):
        raise LrfitError(f"Config section 'data' in {source} must be a mapping (data: {{path: FILE, ...}}), "
                         f"got {type(resolved['data']).__name__}.")
    if not resolved["data"]:
        raise LrfitError(f"{source} has no data section; add data: {{path: FILE, ...}} or data: {{teacher: DIR}}.")
    resolved["_base_dir"] = str(Path(path).resolve().parent) if path is not None else str(Path.cwd())
    return resolved
