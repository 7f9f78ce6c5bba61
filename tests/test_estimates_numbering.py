"""Numbering without hashing in ``stats.estimates`` (issue #21, the trajectories at 1,000,000 students): each
shortcut numbers what ``pd.factorize`` numbered, in the same order.

* ``first_numbered``: integers in a narrow range, numbered by first row;
* ``sorted_integer_codes``: integers in a narrow range, ranked (``factorize(sort=True)``);
* ``_pair_cells`` with clusters numbered by first row whose rows lie in several cells (a student's two subjects on
  either side of ``started_behind``): only the rows outside their cluster's first cell are hashed;
* ``subgroup_estimates`` with one kind per value: each value's table as a call of its own gives it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats import estimates
from opportunity_research.stats.estimates import first_numbered, sorted_integer_codes, subgroup_estimates


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("span", [1, 7, 5000])
def test_first_numbered_is_factorize(seed, span):
    keys = np.random.default_rng(seed).integers(0, span, 3000)
    codes, uniq = pd.factorize(keys)
    got, order = first_numbered(keys, span)
    np.testing.assert_array_equal(got, codes)
    np.testing.assert_array_equal(order, uniq)


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16])
def test_sorted_integer_codes_are_sorted_factorize(dtype):
    x = pd.Series(np.random.default_rng(0).choice([3, 9, 4, 12], 500).astype(dtype))
    codes, uniq = pd.factorize(x, sort=True)
    got, levels = sorted_integer_codes(x)
    np.testing.assert_array_equal(got, codes)
    np.testing.assert_array_equal(levels, uniq)
    assert levels.dtype == x.dtype
    assert sorted_integer_codes(pd.Series([0, 10**9])) is None  # too wide: hashed
    assert sorted_integer_codes(pd.Series(["a"])) is None


def _clusters_across_cells(n: int, seed: int, share: float):
    """Clusters numbered by first row (students in a year), each in the cell of its first row but for a ``share``
    of rows in another cell; many cells (too many combinations for a table of them)."""
    rng = np.random.default_rng(seed)
    sub = pd.factorize(rng.integers(0, n // 2, n))[0].astype(np.int64)
    codes = rng.integers(0, 3000, int(sub.max()) + 1)[sub]
    moved = rng.random(n) < share
    codes[moved] = rng.integers(0, 3000, int(moved.sum()))
    first = np.flatnonzero(np.diff(np.maximum.accumulate(sub), prepend=-1))
    return codes, {"sub": sub, "k": int(sub.max()) + 1, "first": first}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("share", [0.0005, 0.3, 1.0])
def test_pairs_across_cells_hash_only_the_rows_outside_the_first_cell(monkeypatch, seed, share):
    n = 40_000
    codes, got = _clusters_across_cells(n, seed, share)
    inv, uniq = pd.factorize(codes * got["k"] + got["sub"])  # every pair hashed: what it was
    hashed = []
    real = estimates.pd.factorize

    def counted(x, *a, **k):
        hashed.append(len(x))
        return real(x, *a, **k)

    monkeypatch.setattr(estimates.pd, "factorize", counted)
    how, owner, got_inv = estimates._pair_cells(codes, got)
    assert how == "hash"
    np.testing.assert_array_equal(got_inv, inv)
    np.testing.assert_array_equal(owner, uniq // got["k"])
    lead = codes[got["first"]]
    assert hashed == [int((lead[got["sub"]] != codes).sum())]  # the rows outside their cluster's first cell


def test_one_kind_per_value_is_each_value_on_its_own():
    rng = np.random.default_rng(1)
    n = 800
    f = pd.DataFrame(
        {
            "year": rng.choice([2015, 2016], n),
            "low_income": rng.integers(0, 2, n),
            "race": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "up": rng.integers(0, 2, n).astype(float),
            "gain": rng.normal(size=n),
            "_sid": pd.factorize(rng.integers(0, 300, n))[0],
        }
    )
    kw = {"keys": ["year"], "variables": ["low_income", "race"], "cluster": "_sid", "unit": "_sid"}
    up, gain = subgroup_estimates(f, value=["up", "gain"], kind=["share", "mean"], **kw)
    pd.testing.assert_frame_equal(up, subgroup_estimates(f, value="up", kind="share", **kw), check_exact=True)
    pd.testing.assert_frame_equal(
        gain, subgroup_estimates(f, value="gain", kind="mean", **kw), check_exact=True
    )
    with pytest.raises(ValueError, match="one kind per value"):
        subgroup_estimates(f, value=["up", "gain"], kind=["share"], **kw)
