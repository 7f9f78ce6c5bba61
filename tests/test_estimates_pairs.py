"""The pairs of cells and clusters in ``cell_estimates`` (issue #21, the cells at 1,000,000 students): each
shortcut gives what the computation it replaced gave (kept here as the reference), and the work it saves is not
done.

* ``_pair_cells`` numbers few (cell, code) combinations without hashing, in the order of their first row, as
  ``pd.factorize`` numbered them; its checks of one cell per code compare the first rows first;
* the hashed pairs of one set of cells are made once for every value of that set (and their row counts);
* ``_cells`` takes the combined codes as the cells when every combination is present;
* a share's fallback to independent rows needs no t quantile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats import estimates
from opportunity_research.stats.estimates import cell_estimates, subgroup_estimates


def _old_pair_cells(codes: np.ndarray, got: dict):
    """``_pair_cells`` as it was: whole-array checks, every mixed pairing hashed."""
    sub, k, first = got["sub"], got["k"], got["first"]
    if first is not None:
        owner = codes[first]
        if np.array_equal(owner[sub], codes):
            return "codes", owner, None
    if len(sub) and sub.min() >= 0 and k <= 2 * len(sub) + 1024:
        owner = np.full(k, -1, dtype=np.int64)
        owner[sub] = codes
        if np.array_equal(owner[sub], codes):
            first = np.full(k, len(sub), dtype=np.int64)
            np.minimum.at(first, sub, np.arange(len(sub), dtype=np.int64))
            seen = np.flatnonzero(first < len(sub))
            order = seen[np.argsort(first[seen])]
            return "ranked", owner[order], None
    inv, uniq = pd.factorize(codes.astype(np.int64) * k + sub)
    return "hash", uniq // k, inv


def _column(sub: np.ndarray) -> dict:
    """A column's codes as ``cell_estimates``' ``pairs`` keeps them (``first`` when numbered by first row)."""
    got = {"sub": sub, "k": int(sub.max()) + 1, "first": None}
    top = np.maximum.accumulate(sub)
    step = np.diff(top, prepend=-1)
    if sub[0] == 0 and sub.min() >= 0 and step.max() <= 1:
        got["first"] = np.flatnonzero(step)
    return got


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [50, 70_000, 150_000])  # below and beyond the rows compared first
@pytest.mark.parametrize(
    "case",
    [
        "one cell per code",
        "one cell per code, codes shuffled",
        "few combinations",
        "few combinations, some missing",
        "many combinations",
    ],
)
def test_pair_cells_as_before(seed, n, case):
    rng = np.random.default_rng(seed)
    if case.startswith("one cell per code"):
        sub = pd.factorize(rng.integers(0, max(n // 3, 2), n))[0].astype(np.int64)
        codes = (np.arange(sub.max() + 1) % 7)[sub]
        if case.endswith("shuffled"):
            sub = rng.permutation(int(sub.max()) + 1)[sub]
        if seed % 2:  # one code in a second cell, late: found only past the first rows
            codes = codes.copy()
            codes[-1] = (codes[-1] + 1) % 7
    elif case.startswith("few combinations"):  # schools within a few cells
        sub = rng.integers(0, 40, n).astype(np.int64)
        codes = rng.integers(0, 5, n).astype(np.int64)
        if case.endswith("missing"):  # a missing code (factorize's -1) is hashed as it was
            sub[rng.random(n) < 0.1] = -1
    else:  # students within many cells: too many combinations for a table of them
        sub = rng.integers(0, n, n).astype(np.int64)
        codes = rng.integers(0, 3000, n).astype(np.int64)
    got = estimates._pair_cells(codes, _column(sub))
    want = _old_pair_cells(codes, _column(sub))
    assert got[0] == want[0] == ("hash" if case.startswith("few") else want[0])
    np.testing.assert_array_equal(got[1], want[1])
    if want[0] == "hash":
        np.testing.assert_array_equal(got[2], want[2])


def test_few_combinations_are_numbered_without_hashing(monkeypatch):
    rng = np.random.default_rng(0)
    sub = rng.integers(0, 40, 5000).astype(np.int64)
    codes = rng.integers(0, 5, 5000).astype(np.int64)
    want = _old_pair_cells(codes, _column(sub))

    def no_hash(*a, **k):
        raise AssertionError("hashed")

    monkeypatch.setattr(estimates.pd, "factorize", no_hash)
    got = estimates._pair_cells(codes, _column(sub))
    assert got[0] == "hash"
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "year": rng.choice([2015, 2016], n),
            "school": rng.integers(0, 9, n),  # clusters that span the cells of every variable
            "low_income": rng.integers(0, 2, n),
            "race": rng.choice(["a", "b", "c"], n),
            "x": rng.normal(size=n),
            "y": rng.integers(0, 2, n).astype(float),
            "z": rng.random(n),
            "_sid": rng.integers(0, 150, n),
        }
    )


def test_hashed_pairs_are_made_once_for_every_value(monkeypatch):
    f = _frame()
    values = ["x", "y", "z"]
    calls = []
    real = estimates._pair_cells

    def counted(codes, got):
        out = real(codes, got)
        calls.append(out[0])
        return out

    monkeypatch.setattr(estimates, "_pair_cells", counted)
    tables = subgroup_estimates(
        f, keys=["year"], variables=["low_income", "race"], value=values, cluster="school", unit="_sid"
    )
    # three sets of cells (the keys', each variable's) x two columns (clusters, students): once each, not per value
    assert len(calls) == 6 and calls.count("hash") >= 3
    monkeypatch.setattr(estimates, "_pair_cells", real)
    for val, got in zip(values, tables, strict=True):
        want = subgroup_estimates(
            f, keys=["year"], variables=["low_income", "race"], value=val, cluster="school", unit="_sid"
        )
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        parts = [cell_estimates(f, by=["year"], value=val, cluster="school", unit="_sid")]
        for v in ["low_income", "race"]:
            t = cell_estimates(f, by=["year", v], value=val, cluster="school", unit="_sid")
            parts.append(t.drop(columns=[v]))
        alone = pd.concat(parts, ignore_index=True)
        pd.testing.assert_frame_equal(got[alone.columns], alone, check_exact=True)


@pytest.mark.parametrize("every", [True, False])
def test_cells_of_every_combination_are_groupbys(every):
    f = _frame(seed=3)
    if not every:  # a combination missing: the cells are ranked
        f = f[~((f["year"] == 2016) & (f["race"] == "b"))].reset_index(drop=True)
    t = cell_estimates(f, by=["year", "race"], value="x")
    g = f.groupby(["year", "race"], sort=True, observed=True)
    cell, size = g.ngroup().to_numpy(), g.size().to_numpy()
    np.testing.assert_array_equal(t["n"].to_numpy(), size)
    np.testing.assert_array_equal(
        t[["year", "race"]].to_numpy(), g.size().reset_index()[["year", "race"]].to_numpy()
    )
    # each cell's sum over its rows in their order
    np.testing.assert_array_equal(t["estimate"].to_numpy(), np.bincount(cell, weights=f["x"]) / size)
    assert len(t) == (6 if every else 5)


def test_share_fallback_to_independent_rows_takes_no_t_quantile(monkeypatch):
    # three clusters (fewer than MIN_CLUSTERS) and no level below them: independent rows, Wilson's interval
    f = _frame(seed=1)
    f["school"] = f["school"] % 3
    want = cell_estimates(f, by=["year"], value="y", kind="share", cluster="school")
    seen = []
    real = estimates.stats.t.ppf

    def ppf(q, df):
        seen.append(np.size(df))
        return real(q, df)

    monkeypatch.setattr(estimates.stats.t, "ppf", ppf)
    got = cell_estimates(f, by=["year"], value="y", kind="share", cluster="school")
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert len(seen) == 1  # the clustered cells' quantiles only
    lo, hi = estimates.wilson_interval(want["estimate"] * want["n"], want["n"])
    np.testing.assert_array_equal(got["ci_lower"].to_numpy(), lo)
    np.testing.assert_array_equal(got["ci_upper"].to_numpy(), hi)
