"""Subgroup cells made once per table: the clusters' sums shared by every variable's cells
(``subgroup_estimates``' memo) and the subjects-pooled cells alone (``subgroup_cells(pooled="only")``) give
exactly the cells made one by one, on planted data with missing values, clusters that span a variable's levels,
cluster codes in any order and students off the roster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats.estimates import cell_estimates, subgroup_estimates
from opportunity_research.study import movement, panels

from .test_trajectory_panel import _planted


def _frame(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    student = rng.integers(0, 120, n)
    f = pd.DataFrame(
        {
            "year": rng.choice([2015, 2016], n),
            "school_id": rng.choice(["A", "B", "C"], n),
            # a student attribute (constant per student), one with missing values, one that varies by row
            "low_income": (student % 2).astype(np.int64),
            "disability": np.where(student % 7 == 0, np.nan, (student % 3 == 0).astype(float)),
            "behind": rng.integers(0, 2, n).astype(float),
            "share": rng.integers(0, 2, n).astype(float),
            "score": rng.normal(size=n),
        }
    )
    # clusters: student-in-year codes numbered by first row (as subgroup_cells makes them), the same codes
    # shuffled (not numbered by first row), and text
    f["_by_first"] = pd.factorize(f["year"] * 1000 + student)[0]
    perm = rng.permutation(int(f["_by_first"].max()) + 1)
    f["_shuffled"] = perm[f["_by_first"].to_numpy()]
    f["_text"] = "c" + pd.Series(student).astype(str)
    return f


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cluster", ["_by_first", "_shuffled", "_text"])
@pytest.mark.parametrize("value, kind", [("share", "share"), ("score", "mean")])
@pytest.mark.parametrize("missing_value", [False, True])
def test_each_variables_cells_as_made_alone(seed, cluster, value, kind, missing_value):
    f = _frame(seed)
    if missing_value:  # rows without the value: no row set is shared, nothing kept
        f.loc[f.index[::17], value] = np.nan
    variables = ["low_income", "disability", "behind"]
    for keys in (["year"], ["year", "school_id"]):
        for unit in (cluster, "_by_first", None):
            got = subgroup_estimates(
                f, keys=keys, variables=variables, value=value, kind=kind, cluster=cluster, unit=unit
            )
            parts = [cell_estimates(f, by=keys, value=value, kind=kind, cluster=cluster, unit=unit)]
            for v in variables:
                t = cell_estimates(f, by=[*keys, v], value=value, kind=kind, cluster=cluster, unit=unit)
                parts.append(t.drop(columns=[v]))
            want = pd.concat(parts, ignore_index=True)
            pd.testing.assert_frame_equal(got.drop(columns=["group", "variable"]), want, check_exact=True)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("off_roster", [False, True])
def test_pooled_cells_alone_are_the_pooled_rows_of_the_full_table(seed, off_roster):
    assessments, students = _planted(seed, off_roster=off_roster)
    full = movement.yearly_growth(assessments, students=students)
    alone = movement.yearly_growth(assessments, students=students, pooled_only=True)
    assert len(alone) and set(alone["subject"]) == {"all"}
    pd.testing.assert_frame_equal(
        alone, full[full["subject"] == "all"].reset_index(drop=True), check_exact=True
    )
    # the cells themselves, on the panel's codes
    panel = panels.yearly_panel(assessments, students=students)
    frame = panel.frame.assign(v=panel.frame["grade_equivalent"])
    kw = {
        "keys": ["subject", "school_year"],
        "variables": list(panels.VARIABLES),
        "value": "v",
        "kind": "mean",
    }
    both = panels.subgroup_cells(frame, confidence=0.95, pooled=True, text=panel.text, **kw)
    only = panels.subgroup_cells(frame, confidence=0.95, pooled="only", text=panel.text, **kw)
    want = both[both["subject"] == "all"].reset_index(drop=True)
    pd.testing.assert_frame_equal(only.reset_index(drop=True), want, check_exact=True)


def _old_level_sums(X: np.ndarray, code: np.ndarray, g: int) -> np.ndarray:
    """The groups' sums of the scaled design as level_identification made them before: Z' X, sparse."""
    from scipy import sparse

    n = len(X)
    return sparse.csr_matrix((np.ones(n), (code, np.arange(n))), shape=(g, n)) @ X


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_sums_of_the_identification_check_are_the_sparse_products(seed, monkeypatch):
    from opportunity_research.stats import identification

    rng = np.random.default_rng(seed)
    n = 3000
    # few, large groups: a level whose largest group times the columns is at most n / 2 is shown identified by that
    # bound, without sums (the students here; test_identification_bound.py), so the schools and classrooms are not
    school = rng.integers(0, 2, n)
    classroom = school * 2 + rng.integers(0, 2, n)
    grade = rng.integers(3, 6, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n) * 1e3, grade == 4, grade == 5, rng.normal(size=n)])
    codes = [pd.factorize(school)[0], pd.factorize(classroom)[0], np.arange(n)]
    sizes = [int(c.max()) + 1 for c in codes]
    got = identification.level_identification(X, codes, sizes, ["school", "classroom", "student"])
    seen = []
    real = np.bincount

    def spy(x, weights=None, minlength=0):  # the sums, checked against the sparse product on the way
        out = real(x, weights=weights, minlength=minlength)
        if weights is not None:
            seen.append((x, weights, minlength, out))
        return out

    monkeypatch.setattr(identification.np, "bincount", spy)
    again = identification.level_identification(X, codes, sizes, ["school", "classroom", "student"])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(got, again)
    scale = np.sqrt(np.einsum("ij,ij->j", X, X))
    Xs = X / scale
    summed = 0
    for code, g in zip(codes, sizes):
        made = [o for c, w, m, o in seen if c is code]
        if X.shape[1] * np.bincount(code).max() <= n / 2:
            assert made == []  # identified by the bound: no sums
            continue
        summed += 1
        old = _old_level_sums(Xs, code, g)
        new = np.column_stack(made)
        assert new.shape == old.shape
        np.testing.assert_array_equal(new, old)  # to the bit
    assert summed == 2


@pytest.mark.parametrize("off_roster", [False, True])
def test_values_sharing_one_frame_get_the_cells_each_gets_alone(off_roster):
    assessments, students = _planted(5, off_roster=off_roster)
    panel = panels.yearly_panel(assessments, students=students)
    frame = panel.frame.assign(up=panel.frame["at_grade_level"], ge=panel.frame["grade_equivalent"])
    kw = {"keys": ["subject", "school_year"], "variables": list(panels.VARIABLES), "kind": "mean"}
    both = panels.subgroup_cells(
        frame, value=["up", "ge"], confidence=0.95, pooled=True, text=panel.text, **kw
    )
    for v, got in zip(["up", "ge"], both):
        alone = panels.subgroup_cells(frame, value=v, confidence=0.95, pooled=True, text=panel.text, **kw)
        pd.testing.assert_frame_equal(got, alone, check_exact=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_variables_cells_start_from_the_keys_cells_and_match_groupby(seed, monkeypatch):
    """Every variable's cells (and the keys refined by the school) are numbered from the memo's cells of the keys,
    their values read from the codes (categories, integers) or first rows (text, floats): the cells, values and
    counts of ``groupby(sort=True, observed=True)``."""
    from opportunity_research.stats import estimates

    f = _frame(seed)
    f["cat_school"] = f["school_id"].astype("category")
    f["wide"] = np.where(f["low_income"] == 1, 2**40, -7)  # integers too wide for the narrow path
    f["level"] = pd.Categorical(np.where(f["behind"] == 1, "b", "a"), categories=["z", "b", "a"])
    calls = []
    real = estimates._cells

    def spy(col, by, prefix=None):
        calls.append((tuple(by), prefix is not None))
        return real(col, by, prefix=prefix)

    monkeypatch.setattr(estimates, "_cells", spy)
    variables = ["low_income", "wide", "level", "behind", "_text", "disability"]
    memo: dict = {}
    kw = {"variables": variables, "value": "score", "kind": "mean", "cluster": "_by_first", "_memo": memo}
    dist = subgroup_estimates(f, keys=["year"], **kw)
    sch = subgroup_estimates(f, keys=["year", "cat_school"], **kw)
    started = {by for by, used in calls if used}
    # every variable's cells start from the keys' (disability has missing values: its rows are not the keys')
    assert {("year", v) for v in variables if v != "disability"} <= started
    assert ("year", "cat_school") in started  # the school's from the district's, one memo
    assert {("year", "cat_school", v) for v in variables if v != "disability"} <= started
    for keys, got in ((["year"], dist), (["year", "cat_school"], sch)):
        for v in variables:
            rows = got[got["variable"] == v]
            kept = f.dropna(subset=[v])
            g = kept.groupby([*keys, v], sort=True, observed=True)
            want = g.size().rename("size").reset_index()
            sums = np.bincount(g.ngroup().to_numpy(), weights=kept["score"].to_numpy())  # in row order
            assert rows["n"].tolist() == want["size"].tolist()
            np.testing.assert_array_equal(rows["estimate"].to_numpy(), sums / want["size"].to_numpy())
            for k in keys:  # the keys' values, each cell's own
                assert rows[k].tolist() == want[k].tolist()
                assert rows[k].dtype == f[k].dtype
            assert rows["group"].tolist() == list(estimates._group_labels(want[v], v))
