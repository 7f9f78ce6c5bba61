"""A block's rows in the audit's block probe (issue #21, the protection pass at 1,000,000 students): the rows a
block's columns touch, found by marking them when the entries are many, are what sorting the entries gave (the
old ``np.unique``, kept here as the reference), and no sort is made then."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from opportunity_research.disclosure import lp_blocks
from opportunity_research.disclosure.model_arrays import ranges


def _old_block_entries(a_cols, sub, x):
    start, lens = a_cols.indptr[sub], a_cols.indptr[sub + 1] - a_cols.indptr[sub]
    nz = ranges(start, lens)
    ind, coef = a_cols.indices[nz], a_cols.data[nz]
    touch, place = np.unique(ind, return_inverse=True)
    sums = np.bincount(place, weights=coef * np.repeat(x[sub], lens), minlength=len(touch)).astype(float)
    pos = np.repeat(np.arange(len(sub)), lens)
    keep = coef != 0
    return touch, sums, (place[keep], pos[keep], coef[keep])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("marks", [0, 100, 10**9])  # always marked, as set, always sorted
@pytest.mark.parametrize("density", [0.001, 0.05])
def test_block_entries_as_before(seed, marks, density, monkeypatch):
    rng = np.random.default_rng(seed)
    a = sparse.random(3000, 800, density=density, random_state=seed, format="csc")
    a.data = np.round(a.data * 4) - 1  # zero coefficients too: kept out of the entries
    a.indices = a.indices.astype(np.int32)
    x = rng.integers(0, 50, 800).astype(float)
    monkeypatch.setattr(lp_blocks, "DISTINCT_BY_MARKS", marks)
    for size in (1, 8, 200, 800):
        sub = np.sort(rng.choice(800, size, replace=False))
        got, want = lp_blocks.block_entries(a, sub, x), _old_block_entries(a, sub, x)
        for g, w in zip([got[0], got[1], *got[2]], [want[0], want[1], *want[2]], strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


def test_many_entries_are_not_sorted(monkeypatch):
    a = sparse.random(500, 400, density=0.2, random_state=0, format="csc")
    sub = np.arange(0, 400, 3)
    want = _old_block_entries(a, sub, np.ones(400))

    def no_sort(*a, **k):
        raise AssertionError("sorted")

    monkeypatch.setattr(np, "unique", no_sort)
    got = lp_blocks.block_entries(a, sub, np.ones(400))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[2][0], want[2][0])
