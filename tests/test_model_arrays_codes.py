"""model_arrays.codes: the first array's codes taken as they are and the first rows found without a sort give the
codes and first rows of factorizing every array's combination (the way before)."""

from __future__ import annotations

import itertools

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


@pytest.mark.parametrize("seed", range(3))
def test_key_groups_are_the_groupby_indices(seed):
    """The cell tables' groupings (levels in a school, schools of a level, subjects of a group) from the labels'
    codes: pandas' groups of the labels themselves, in its order, a missing label in none."""
    rng = np.random.default_rng(seed)
    values = np.array(["a", "b", "all", None, np.nan, "c", "1"], dtype=object)
    for _ in range(300):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 5))
        frame = pd.DataFrame(
            {f"c{i}": rng.choice(values[: int(rng.integers(1, 8))], n) for i in range(k)}, dtype=object
        )
        want = list(frame.groupby(list(frame.columns), sort=False).indices.values())
        rows, starts = model_arrays.key_groups([pd.factorize(frame[c].to_numpy())[0] for c in frame.columns])
        got = [rows[a:b] for a, b in itertools.pairwise(starts)]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)
