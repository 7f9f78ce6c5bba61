"""model_arrays.codes: the first array's codes taken as they are and the first rows found without a sort give the
codes and first rows of factorizing every array's combination (the way before)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.disclosure import model_arrays
from opportunity_research.disclosure.model_arrays import codes


def _factorized(parts):
    code = np.zeros(len(parts[0]), dtype=np.int64)
    for p in parts:
        c, u = pd.factorize(p, use_na_sentinel=False)
        code = pd.factorize(code * len(u) + c)[0]
    return code, np.unique(code, return_index=True)[1]


@pytest.mark.parametrize("seed", range(4))
def test_codes_as_factorized(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n = int(rng.integers(0, 60))
        pool = [
            rng.integers(0, 4, n),
            rng.choice(np.array(["a", "b", None, np.nan, "all"], dtype=object), n),
            rng.choice([1.0, np.nan, 2.0, -0.0, 0.0], n),
        ]
        parts = [pool[i] for i in rng.permutation(3)[: int(rng.integers(1, 4))]]
        got, want = codes(parts), _factorized(parts)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_first_rows_without_a_sort(monkeypatch):
    monkeypatch.setattr(model_arrays.np, "unique", None)  # np.unique is not called
    code, first = codes([np.array(["b", "a", "b", "c"], dtype=object)])
    assert code.tolist() == [0, 1, 0, 2] and first.tolist() == [0, 1, 3]
