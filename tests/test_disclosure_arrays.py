"""The protection pass' model held as arrays (issue #21, 1,000,000 students): each fast path gives what the
computation it replaced gives, on planted districts.

* the entries (``model_arrays.Entries``): the audit engine's matrices, the publish audit's shown counts below
  ``min_n`` and the single-count entries of rule 4's design rows, each read from the arrays, equal what a loop
  over the ``(row, {count: coefficient}, value)`` tuples gives;
* the audit's components (``lp.components``) are the labels of scipy's connected components of the whole graph;
* a row's label, read from the rows' columns, is the one read from the row's Series.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from opportunity_research.disclosure import audit, complements, lp, model, protection
from opportunity_research.disclosure.model import ALL_OTHERS, PopulationModel, TableSpec


def _tables(seed: int, known: bool, schools: int = 8) -> dict:
    """A copy of :func:`_planted` (the tables' dict: a test may replace a table)."""
    return dict(_planted(seed, known, schools))


@functools.cache
def _planted(seed: int, known: bool, schools: int = 8) -> dict:
    """A planted district of ``schools`` schools: movement and scorecard cells (two count columns, subjects) and a gap table with rows
    against all others and a named reference; for ``known=False`` its protected tables (what the gate reads).

    The protected tables are the protection rounds' (``cleanup=False``): what the tests read of them (hidden counts,
    their links, shown small counts planted) is what any protected tables hold, and the clean-up that publishes
    complements again took 4 of the 4.6 CPU-s of a pass here."""
    from tests.test_disclosure_lp import _district

    rng = np.random.default_rng(seed)
    tables = dict(_district(seed, schools))
    gap = pd.DataFrame(
        {
            "measure": "grade_appropriate",
            "subject": "ela",
            "group": ["ell", "ell", "race_ethnicity", "race_ethnicity"],
            "level": ["0", "1", "black", "asian"],
            "n": rng.integers(2, 60, 4).astype(float),
            "reference": [ALL_OTHERS, ALL_OTHERS, "white", "white"],
            "reference_n": rng.integers(2, 60, 4).astype(float),
            "estimate": rng.random(4),
            "reference_estimate": rng.random(4),
            "suppressed": False,
            "suppression_reason": "",
        }
    )
    tables["gaps"] = (gap, TableSpec("gap", universe=("measure", "subject"), estimates={"estimate": (0, 1)}))
    if not known:
        out, _ = protection.protect_tables(tables, min_n=10, cleanup=False)
        tables = {k: (out[k], spec) for k, (_, spec) in tables.items()}
    return tables


def _model(seed: int, known: bool) -> PopulationModel:
    return PopulationModel(_tables(seed, known), year=2016, known=known, min_n=10)


CASES = list(itertools.product([1, 2], [True, False]))


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_entries_iterate_as_the_rows_show_them(seed, known):
    """Every row's entries, in order: its first count's entry is that count with coefficient 1 and the row's value;
    a gap row against all others adds the total minus its count (value ``reference_n``)."""
    m = _model(seed, known)
    ent = list(m.entries)
    assert len(ent) == len(m.entries) == int(np.diff(m.entries.start).size)
    by_row = {}
    for rid, coefs, value in ent:
        assert isinstance(rid, int) and isinstance(value, np.float64)
        assert all(isinstance(v, int) and isinstance(c, float) for v, c in coefs.items())
        by_row.setdefault(rid, []).append((coefs, value))
    assert sorted(by_row) == list(range(len(m.rows)))
    for rid, got in by_row.items():
        assert list(got[0][0]) == [m.row_vars[rid][0]] and got[0][0][m.row_vars[rid][0]] == 1.0
        if m.row_ref[rid] is not None:
            (coefs, value), ref = got[1], m.row_ref[rid][0]
            assert list(coefs.values()) == [1.0, -1.0] and _eq(value, ref)


def _eq(x, y) -> bool:
    return bool(x == y or (math.isnan(x) and math.isnan(y)))


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_audit_matrices_read_from_the_entry_arrays(seed, known):
    """``lp._arrays`` (relations, then entries, as one CSR matrix; the entries' rows and values) equals the
    matrices built by a loop over the relations' and the entries' dicts."""
    m = _model(seed, known)
    got = lp._arrays(m)
    rows = [c for c, _ in m.relations] + [c for _, c, _ in m.entries]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in rows])])
    indices = np.array([v for c in rows for v in c], dtype=np.int64)
    data = np.array([x for c in rows for x in c.values()], dtype=float)
    want = sparse.csr_matrix((data, indices, indptr), shape=(len(rows), len(m.var_key)))
    assert (got["a"] != want).nnz == 0
    assert np.array_equal(got["indptr"], indptr) and np.array_equal(got["indices"], indices)
    assert np.array_equal(got["data"], data)
    assert np.array_equal(got["row_of"], np.repeat(np.arange(len(rows)), np.diff(indptr)))
    assert got["ent_rid"].tolist() == [rid for rid, _, _ in m.entries]
    vals = np.array([value for _, _, value in m.entries], dtype=float)
    assert np.array_equal(got["ent_val"], vals, equal_nan=True)
    assert got["eq"].tolist() == [s == "eq" for _, s in m.relations] + [True] * len(m.entries)


@pytest.mark.parametrize("seed", [1, 2])
def test_shown_counts_below_min_n_as_the_loop_finds_them(seed, monkeypatch):
    """The publish audit names every shown count below ``min_n`` as a loop over the entries does, in order (the
    tables planted with shown small counts)."""
    tables = _tables(seed, known=False)
    sc, spec = tables["scorecard"]
    shown = np.flatnonzero(~sc["suppressed"].to_numpy())[:5]
    sc = sc.copy()
    sc.loc[sc.index[shown], "n"] = [1.0, 3.0, 9.0, 10.0, 0.0][: len(shown)]
    tables["scorecard"] = (sc, spec)
    m = PopulationModel(tables, year=2016, known=False, min_n=10)
    hidden = np.array(m.pre_hidden, dtype=bool)
    want = [
        (model.row_label(m, rid) + " (shown count below min_n)", value, value)
        for rid, _, value in m.entries
        if not hidden[rid] and 0 < value < 10
    ]
    assert len(want) >= 3
    got = [f for f in audit.audit_published(tables, min_n=10, year=2016).failures if "below min_n" in f[0]]
    assert got == want


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_single_count_entries_as_the_loop_reads_them(seed, known):
    """Rule 4's design rows read the entries of one count (nonzero coefficient, a value): ``(row, count)`` pairs
    in the entries' order, as a loop over their tuples picks them."""
    m = _model(seed, known)
    st = protection._State(m, 10, 10, 0.05)
    hid = st.hidden_rows(counts=True)
    complements.design_by_one_relation(st, hid, [])
    want = [
        (rid, next(iter(c)))
        for rid, c, value in m.entries
        if len(c) == 1 and next(iter(c.values())) != 0 and not math.isnan(value)
    ]
    assert st.single_entries.dtype == np.int32 and st.single_entries.tolist() == [list(p) for p in want]


def test_components_are_scipys_labels():
    """``lp.components`` from the graph of the nodes with an edge gives scipy's labels of the whole graph (counts
    then rows; isolated nodes their own components), on random graphs and with repeated edges."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        nv, nr = (int(x) for x in rng.integers(1, 40, 2))
        e = int(rng.integers(0, 60))
        var, row = rng.integers(0, nv, e), rng.integers(0, nr, e)
        graph = sparse.coo_matrix((np.ones(e), (var, nv + row)), shape=(nv + nr,) * 2)
        want = connected_components(graph, directed=False)[1]
        got = lp.components(nv, nr, var, row)
        assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_components_of_an_audit_as_the_whole_graph(seed, known):
    """The audit's components of a state (``lp._reduce``) are scipy's components of the whole graph of its unknown
    counts and active rows."""
    m = _model(seed, known)
    shown = ~np.array(m.pre_hidden, dtype=bool)
    shown[::3] = False
    arr = lp._arrays(m)
    _, unknown, active, _, labels = lp._reduce(m, shown)
    keep = unknown[arr["indices"]] & active[arr["row_of"]]
    nv = len(m.var_key)
    graph = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (arr["indices"][keep], nv + arr["row_of"][keep])),
        shape=(nv + len(active),) * 2,
    )
    assert np.array_equal(labels, connected_components(graph, directed=False)[1])


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_row_labels_as_read_from_the_rows_series(seed, known):
    """Every row's label, read from the rows' columns, is the one read from its row of ``model.rows``."""
    m = _model(seed, known)

    def by_series(rid):
        r = m.rows.iloc[rid]
        where = "" if r["school"] == "all" else f" school {r['school']}"
        yr = "" if pd.isna(r["year"]) else f" {int(r['year'])}"
        return f"{m.names[r['tid']]}[{r['uni'].split('|', 1)[-1]}]{where}{yr} {r['variable']}={r['level']}"

    assert [model.row_label(m, r) for r in range(len(m.rows))] == [by_series(r) for r in range(len(m.rows))]


@pytest.mark.parametrize("known", [True, False])
def test_count_codes_number_the_keys_as_the_loop(known):
    """``model_arrays.count_codes`` gives two counts one code exactly when the loop's keys of them are equal (rows
    that repeat a population, equal counts in two columns, missing years and counts, links), numbered as met."""
    from opportunity_research.disclosure.model_arrays import count_codes

    rng = np.random.default_rng(3)
    n, k = 400, 2
    obj = lambda values: rng.choice(np.array(values, dtype=object), n)
    unis, school, var, lev = (
        obj(["t|a", "t|b"]),
        obj(["A", "B", "all"]),
        obj(["all", "x"]),
        obj(["all", "1", "2"]),
    )
    yrs = rng.choice(np.array([2016.0, 2017.0, np.nan]), n)
    counts = [rng.choice(np.array([4.0, 5.0, 0.0, -0.0, np.nan]), n) for _ in range(k)]
    links = [
        np.array(
            [None if rng.random() < 0.5 else ("set", float(rng.integers(1, 3))) for _ in range(n)],
            dtype=object,
        )
        for _ in range(k)
    ]
    code, first, _ = count_codes((unis, school, var, lev, yrs), counts, links, known)
    y_l, index, want = list(yrs), {}, []
    for i in range(n):
        for j in range(k):
            x, ln = counts[j].tolist()[i], links[j][i]
            last = ("n", x) if known and not math.isnan(x) else ln if not known and ln is not None else None
            key = (y_l[i], school[i], var[i], lev[i], last or (unis[i], school[i], var[i], lev[i], j))
            want.append(index.setdefault(key, len(index)))
    assert code.tolist() == want
    assert first.tolist() == [want.index(c) for c in range(len(index))]


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_row_closure_as_the_sparse_products(seed, known):
    """Rule 2's closure of a few newly hidden counts, read from the state's lists (``memo.row_closure``), is the
    closure its sparse products over every row and count give (the counts of the rows of those counts, not hidden)."""
    from opportunity_research.disclosure.memo import row_closure

    m = _model(seed, known)
    st = protection._State(m, 10, 10, 0.05)
    st.link()  # builds the rows x counts matrix of the closure
    rng = np.random.default_rng(seed)
    nv = len(m.var_key)
    for size in (1, 5, 40):
        front = set(rng.choice(nv, size, replace=False).tolist())
        hidden = set(rng.choice(nv, nv // 3, replace=False).tolist()) | front
        f = np.zeros(nv)
        f[list(front)] = 1.0
        reached = st._own_mat @ (m.row_var_mat @ f > 0).astype(float) > 0
        reached[list(hidden)] = False
        assert row_closure(front, st.var_rows, m.row_own, hidden) == np.flatnonzero(reached).tolist()


def test_pass_with_the_closure_by_lists_as_by_products(monkeypatch):
    """The pass decides the same with rule 2's closure read from lists as with the sparse products everywhere.

    Six schools: the closure is set algebra over the rows of the counts, whatever their number; this pass (rounds,
    clean-up, second order, swaps, publish gate) still takes 254 closures of up to 71 counts, at 0.7 CPU-s (the
    eight schools of seed 2 took 4.3)."""
    tables = _tables(1, known=True, schools=6)
    out, rep = protection.protect_tables(tables, min_n=10, swaps=3)
    monkeypatch.setattr(protection, "LINK_BY_LISTS_MAX", -1)
    out0, rep0 = protection.protect_tables(tables, min_n=10, swaps=3)
    for k in out:
        pd.testing.assert_frame_equal(out[k], out0[k], check_exact=True)
    pd.testing.assert_frame_equal(rep.intervals, rep0.intervals, check_exact=True)
    assert rep.to_dict() == rep0.to_dict()


@pytest.mark.parametrize("seed", range(3))
def test_picked_groups_as_the_list_of_groups(seed):
    """``model_arrays.picked_groups`` (the model's relations' groups taken from the grouped rows at once) gives what
    ``grouped`` gives for the list of the picked groups' rows and totals (some groups empty, some not picked)."""
    from opportunity_research.disclosure.model_arrays import grouped, picked_groups

    rng = np.random.default_rng(seed)
    lens = rng.integers(0, 5, 30)
    starts = np.concatenate([[0], np.cumsum(lens)])
    rows = rng.permutation(int(starts[-1]) + 10)[: int(starts[-1])]
    which = np.flatnonzero(rng.random(30) < 0.6)
    tot = rng.integers(0, 100, len(which))
    want = grouped([(rows[starts[g] : starts[g + 1]].tolist(), int(t)) for g, t in zip(which, tot)])
    got = picked_groups(rows, starts, which, tot)
    assert [x.tolist() for x in got[:3]] + [got[3]] == [x.tolist() for x in want[:3]] + [want[3]]


@pytest.mark.parametrize("known", [True, False])
def test_students_within_results_as_the_loop_of_rows(known):
    """A cell table with ``n`` and ``n_students`` relates each row's two counts (``n_students <= n``, where they are
    two counts and, with true counts, hold): the relations are the dicts a loop over the rows builds, one after
    another, in the rows' order (the model adds them as arrays)."""
    tables = {
        "cells": (
            pd.DataFrame(
                {
                    "school_id": ["A", "A", "A", "B", "B", "B", "all", "all", "all"],
                    "group": ["all", "ell=1", "ell=0"] * 3,
                    "n": [40.0, 12.0, 28.0, 30.0, 4.0, 26.0, 70.0, 16.0, 54.0],
                    "n_students": [20.0, 12.0, 8.0, 31.0, 2.0, 26.0, 51.0, 14.0, 34.0],
                    "suppressed": False,
                }
            ),
            TableSpec("cell", counts=("n", "n_students")),
        )
    }
    if not known:
        tables["cells"][0].loc[[4, 5], ["n", "n_students"]] = np.nan
        tables["cells"][0].loc[[4, 5], "suppressed"] = True
    m = PopulationModel(tables, year=2016, known=known, min_n=10)
    df = tables["cells"][0]
    want = []
    for r in range(len(df)):
        vn, vs = (int(v) for v in m.row_vars[r])  # the row's counts, column by column: n, n_students
        if vs != vn and (not known or df.at[r, "n_students"] <= df.at[r, "n"]):
            want.append(({vs: 1.0, vn: -1.0}, "le"))
    got = [(dict(c), s) for c, s in m.relations][: len(want)]  # the table's first relations
    assert want and got == want
