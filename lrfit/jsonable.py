"""One conversion of NumPy/pandas values into objects that :mod:`json` writes."""

from __future__ import annotations

from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """Recursively convert arrays, NumPy scalars, DataFrames and complex numbers to JSON-serialisable objects.

    Parameters
    ----------
    x : Any
        A value, possibly nested in dicts, lists and tuples.

    Returns
    -------
    Any
        The same value with arrays as lists, NumPy scalars as Python scalars, DataFrames as dicts of
        columns and complex numbers as ``{"real": ..., "imag": ...}``; dict keys become strings.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"a": np.arange(3), 1: (np.float32(0.5), 1j)})
    {'a': [0, 1, 2], '1': [0.5, {'real': 0.0, 'imag': 1.0}]}
    """
    import pandas as pd

    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, pd.DataFrame):
        return jsonable(x.to_dict(orient="list"))
    if isinstance(x, np.ndarray):
        if np.iscomplexobj(x):
            return {"real": x.real.tolist(), "imag": x.imag.tolist()}
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, complex):
        return {"real": x.real, "imag": x.imag}
    return x
