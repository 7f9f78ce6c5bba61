"""Array helpers of the population model's build (:class:`~opportunity_research.disclosure.model.PopulationModel`).

The model is built with array work over a table's rows instead of a loop over them (issue #21): :func:`codes`
numbers the combinations of label columns (a universe's text is joined once per combination, a set's total row
found once per universe and school), :func:`ones` writes a relation's coefficients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["codes", "ones"]


def codes(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code of its combination of the arrays' values (numbered in the order first met), and each
    code's first row.

    Examples
    --------
    >>> import numpy as np
    >>> code, first = codes([np.array(["b", "a", "b", "a"], dtype=object), np.array([1, 2, 1, 3])])
    >>> code.tolist(), first.tolist()
    ([0, 1, 0, 2], [0, 1, 3])
    """
    code = np.zeros(len(parts[0]), dtype=np.int64)
    for p in parts:
        c, u = pd.factorize(p, use_na_sentinel=False)
        code = pd.factorize(code * len(u) + c)[0]
    return code, np.unique(code, return_index=True)[1]


def ones(parts: list) -> dict:
    """``{count: 1.0 for each time it is a part}``, in the order of the parts (a relation's parts; all ones unless
    a count repeats), as a loop adding 1.0 per part writes it.

    Examples
    --------
    >>> ones([4, 2, 7]), ones([4, 2, 4])
    ({4: 1.0, 2: 1.0, 7: 1.0}, {4: 2.0, 2: 1.0})
    """
    coefs = dict.fromkeys(parts, 1.0)
    return coefs if len(coefs) == len(parts) else {u: float(parts.count(u)) for u in coefs}
