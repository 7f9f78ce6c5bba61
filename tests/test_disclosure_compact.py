"""The protection pass' structures held compactly (issue #21, memory at 1,000,000 students): each gives what the
Python structure it replaced gives, on planted districts, and the publish gate's audit runs without the pass'
derived arrays, which are built again alike.

* the state's lists of the rows and relations of each count (``model_arrays.IndexLists``) read as the ``defaultdict`` of
  lists a loop appends;
* rule 4's design equalities (``complements._design_equalities``), kept as arrays and extended call by call, are
  the sparse rows the Python tuples gave;
* the rows' label columns as codes (``model_arrays.label_codes``) give the columns back, never merging values of
  two types that compare equal;
* ``protection._published_failures`` drops the model's derived arrays, and the audit engine rebuilds them alike.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from opportunity_research.disclosure import complements, lp, model, protection
from opportunity_research.disclosure.model_arrays import IndexLists, flat_index_lists, label_codes
from tests.test_disclosure_arrays import CASES, _model, _tables


def _loop_lists(items) -> defaultdict:
    out = defaultdict(list)
    for i, item in enumerate(items):
        for v in item:
            out[v].append(i)
    return out


def index_lists(items) -> IndexLists:
    """``flat_index_lists`` of a sequence of items (lists, or dicts keyed by their values)."""
    items = list(items)
    lens = np.array([len(x) for x in items], dtype=np.int64)
    return flat_index_lists(lens, np.array([v for x in items for v in x], dtype=np.int64))


def test_index_lists_read_as_the_loops_defaultdict():
    """Every value's positions (values with none, beyond the largest and negative ones: an empty list), ``get`` and
    the keys, as the loop's ``defaultdict(list)`` gives them."""
    rng = np.random.default_rng(5)
    items = [rng.integers(0, 40, rng.integers(0, 6)).tolist() for _ in range(300)]
    items += [{int(v): 1.0 for v in rng.integers(0, 50, 4)} for _ in range(50)]
    got, want = index_lists(items), _loop_lists(items)
    assert isinstance(got, IndexLists)
    for v in range(-3, 60):
        assert got[v] == want.get(v, [])
        assert got.get(v, ()) == (want[v] if want.get(v) else ())
    assert got.keys() == sorted(want)
    assert dict(index_lists([])) == {}


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_state_lists_of_rows_and_relations_as_the_loop(seed, known):
    """The state's rows of each count and relations of each count are the lists a loop over the rows' counts and the
    relations' dicts appends."""
    m = _model(seed, known)
    st = protection._State(m, 10, 10, 0.05)
    rows, rels = _loop_lists(m.row_vars), _loop_lists(m.relations[k][0] for k in range(len(m.relations)))
    for v in range(len(m.var_key) + 2):
        assert st.var_rows[v] == rows.get(v, [])
        assert st.var_rel[v] == rels.get(v, [])


def _tuples_design_equalities(st, calls) -> dict:
    """The design equalities as the Python tuples built them (the code this test guards), for each call in turn."""
    m, got, done = st.m, [], set()
    rel = m.relations
    for vs in calls:
        for v in [v for v in vs if v not in done]:
            for k in sorted(st.var_rel[v], key=rel.size):
                if rel.sense(k) != "eq" or rel.size(k) > complements.SHORT:
                    continue
                c = rel[k][0]
                if c.get(v):
                    got.append((v, c[v], [(u, cu) for u, cu in c.items() if u != v]))
            done.add(v)
    nv = len(m.var_key)
    lens = [len(o) for _, _, o in got]
    cols = [u for _, _, o in got for u, _ in o]
    vals = [cu for _, _, o in got for _, cu in o]
    indptr = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)])
    return {
        "v": np.array([v for v, _, _ in got], dtype=np.int64),
        "cv": np.array([cv for _, cv, _ in got], dtype=float),
        "others": sparse.csr_matrix(
            (np.ones(len(cols)), np.array(cols, dtype=np.int64), indptr), shape=(len(got), nv)
        ),
        "coefs": sparse.csr_matrix(
            (np.array(vals, dtype=float), np.array(cols, dtype=np.int64), indptr), shape=(len(got), nv)
        ),
    }


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_design_equalities_extended_call_by_call_as_the_tuples(seed, known):
    """Asked about counts in three calls (some counts twice), the design equalities kept as arrays are the rows,
    in the same order, that the tuples gave."""
    m = _model(seed, known)
    st = protection._State(m, 10, 10, 0.05)
    rng = np.random.default_rng(seed)
    nv = len(m.var_key)
    calls = [rng.choice(nv, nv // 4, replace=False) for _ in range(3)]
    for i in range(len(calls)):
        got = complements._design_equalities(st, np.asarray(calls[i], dtype=np.int64))
        want = _tuples_design_equalities(st, [c.tolist() for c in calls[: i + 1]])
        assert len(want["v"]) > 0
        assert np.array_equal(got["v"], want["v"]) and np.array_equal(got["cv"], want["cv"])
        for k in ("others", "coefs"):
            assert got[k].shape == want[k].shape
            assert np.array_equal(got[k].indptr, want[k].indptr)
            assert np.array_equal(got[k].indices, want[k].indices)
            assert np.array_equal(got[k].data, want[k].data)


def test_label_codes_give_the_column_back_without_merging_types():
    """Codes and values give every column back, element by element and type by type (text, numbers with a missing
    year, and columns mixing ``1``/``1.0``/``True`` or ``None``/``nan``, which stay as they are)."""
    rng = np.random.default_rng(2)
    columns = [
        rng.choice(np.array(["a", "b|c", "all"], dtype=object), 200),
        rng.choice(np.array([2016.0, 2017.0, np.nan]), 200),
        rng.integers(0, 4, 200),
        rng.choice(np.array([1, 1.0, True, "1"], dtype=object), 200),
        rng.choice(np.array(["a", None, np.nan], dtype=object), 200),
        pd.Series(rng.choice(["x", "y"], 200), dtype="str").to_numpy(),
    ]
    for col in columns:
        code, values = label_codes(col)
        back = values[code]
        assert [(type(x), repr(x)) for x in back] == [(type(x), repr(x)) for x in col]
    assert len(label_codes(columns[0])[1]) == 3


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_gate_drops_the_derived_arrays_and_the_audit_rebuilds_them_alike(seed, known, monkeypatch):
    """The gate's audit runs without the pass' derived arrays (the LP matrices, the label columns, the block grids,
    the state's design equalities); the intervals and labels after it are those before."""
    tables = _tables(seed, known)
    m = model.PopulationModel(tables, year=2016, known=known, min_n=10)
    st = protection._State(m, 10, 10, 0.05)
    shown = ~np.asarray(m.pre_hidden, dtype=bool)
    targets = sorted({v for r in np.flatnonzero(~shown) for v in m.row_vars[r]})
    before = lp.intervals(m, shown, targets, 10)
    labels = [model.row_label(m, r) for r in range(len(m.rows))]
    complements._design_equalities(st, np.asarray(targets, dtype=np.int64))
    seen = {}
    monkeypatch.setattr(
        protection,
        "audit_published",
        lambda shown_tables, **kw: seen.update(shown_tables) or model.AuditReport(10, 10),
    )
    failures, out = protection._published_failures(m, st, tables, None, 10, 10, 2016)
    assert failures == [] and m.lp_arrays is None and st.design_relations == {}
    assert "_label_cols" not in m.__dict__ and "lp_blocks" not in m.__dict__
    for k, (df, _) in seen.items():  # the tables the gate read are those returned
        assert df is out[k]
    assert lp.intervals(m, shown, targets, 10) == before
    assert [model.row_label(m, r) for r in range(len(m.rows))] == labels
