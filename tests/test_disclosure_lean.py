"""The protection pass leaner at 1,000,000 students (issue #21): each structure or shortcut gives what the one it
replaced gave, on planted districts, and holds less.

* rule 4's partitions (``model_arrays.Partitions``) read as the tuples the build appended, from arrays;
* rule 4's design equalities are read from the relations' arrays, without building (and keeping) their dicts;
* the audit's matrices share one copy of their arrays (int32 indices, read only: scipy never changes them);
* ``lp.component_above`` answers as ``lp.largest_component(...) > limit``, numbering the components only when the
  count of the last largest component does not reach more than ``limit`` counts;
* ``lp_blocks.first_distinct_rows`` keeps the rows the loop over a component's rows kept;
* ``model_arrays.group_relations`` gives the dicts the loop over the groups built;
* ``memo.close_counts`` finds rule 2's close counts the loop over the groups found.
"""

from __future__ import annotations

import numpy as np
import pytest

from opportunity_research.disclosure import complements, lp, lp_blocks, memo, model_arrays, protection
from opportunity_research.disclosure.model_arrays import Partitions, Relations
from tests.test_disclosure_arrays import CASES, _model


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_partitions_are_arrays_read_as_tuples(seed, known):
    """The model's partitions are arrays; each reads as ``(part rows, total or None, kind, key)``, and
    ``partitions_to_read``'s matrix holds their rows."""
    m = _model(seed, known)
    p = m.partitions
    assert isinstance(p, Partitions) and len(p) > 0 and not p._pending
    got = list(p)
    for i, (rows, total, kind, key) in enumerate(got):
        assert rows == p.rows[p.start[i] : p.start[i + 1]].tolist() and all(type(r) is int for r in rows)
        assert kind in ("gap", "cell") and (total is None) == (kind == "gap") and key == p.keys[i]
        assert p[i] == got[i]
    st = protection._State(m, 10, 10, 0.05)
    complements.partitions_to_read(st, np.ones(len(m.rows), dtype=bool))
    mat, total = st._partition_rows
    assert [mat[i].indices.tolist() for i in range(len(p))] == [sorted(r) for r, *_ in got]
    assert total.tolist() == [-1 if t is None else t for _, t, _, _ in got]


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_design_equalities_build_no_relation_dict(seed, known):
    """Rule 4's design equalities of every count are read from the relations' arrays: no relation's dict is built
    (the relations kept one per relation read: about 220 MB at 1,000,000 students)."""
    m = _model(seed, known)
    st = protection._State(m, 10, 10, 0.05)
    got = complements._design_equalities(st, np.arange(len(m.var_key), dtype=np.int64))
    assert len(got["v"]) > 0
    assert m.relations._kept == {}


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_audit_matrices_share_one_read_only_copy(seed, known):
    """The relations' and entries' matrix and its 0/1 twin share the arrays the audit reads (one copy, int32
    indices), read only: an in-place change by scipy would raise, and the audits of the other tests run on them."""
    m = _model(seed, known)
    arr = lp._arrays(m)
    for mat in (arr["a"], arr["ones"]):
        assert np.shares_memory(mat.indices, arr["indices"]) and np.shares_memory(mat.indptr, arr["indptr"])
    assert np.shares_memory(arr["a"].data, arr["data"])
    assert arr["indices"].dtype == np.int32 and arr["row_of"].dtype == np.int32
    for x in (arr["indices"], arr["indptr"], arr["data"], arr["a"].data, arr["ones"].indices):
        assert not x.flags.writeable
    assert arr["eq"].dtype == bool and "sense" not in arr
    with pytest.raises(ValueError, match="read-only"):
        arr["a"].data[0] = 2.0


@pytest.mark.parametrize(("seed", "known"), CASES)
def test_component_above_as_the_largest_component(seed, known, monkeypatch):
    """On random shown rows, ``component_above`` gives ``largest_component(...) > limit`` for every limit; once it
    has numbered the components, a state whose largest component the kept count still reaches is answered
    without numbering them again."""
    m = _model(seed, known)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        shown = rng.random(len(m.rows)) < rng.uniform(0.2, 0.9)
        biggest = lp.largest_component(m, shown)
        for limit in (0, 1, biggest - 1, biggest, biggest + 1):
            assert lp.component_above(m, shown, limit) == (biggest > limit)
    shown = np.zeros(len(m.rows), dtype=bool)
    biggest = lp.largest_component(m, shown)
    assert biggest > 1
    lp.component_above(m, shown, biggest - 1)  # numbers them: the largest component's count is kept

    def numbered(*args):
        raise AssertionError("components numbered again")

    monkeypatch.setattr(lp, "components", numbered)
    m.lp_arrays.pop("substituted", None)  # a new state (the same rows): the components are not memoized
    m.lp_arrays.pop("reduced", None)
    assert lp.component_above(m, shown.copy(), biggest - 1)


def _loop_first_distinct(rows, cnt, pos, coef, eq, b) -> list:
    """The loop ``lp_blocks.component_model`` ran (the code this test guards)."""
    start = np.concatenate([[0], np.cumsum(cnt)])
    pos_b, coef_b = pos.astype(np.int64).tobytes(), coef.tobytes()
    seen, kept = set(), []
    for r in rows.tolist():
        lo, hi = start[r] * 8, start[r + 1] * 8
        key = (pos_b[lo:hi], coef_b[lo:hi], bool(eq[r]), float(b[r]))
        if key not in seen:
            seen.add(key)
            kept.append(r)
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_first_distinct_rows_as_the_loop(seed):
    """Rows of several lengths (none included), repeated, with ``-0.0`` and missing right-hand sides and both
    senses: the rows kept are the loop's."""
    rng = np.random.default_rng(seed)
    base = [
        (
            rng.integers(0, 9, k),
            rng.choice([1.0, -1.0, 2.0], k),
            rng.random() < 0.5,
            rng.choice([0.0, -0.0, 3.0]),
        )
        for k in rng.integers(0, 4, 25)
    ]
    picks = [base[i] for i in rng.integers(0, len(base), 120)]
    picks += [(np.array([1, 2]), np.array([1.0, -1.0]), True, np.nan)] * 3
    cnt = np.array([len(p) for p, *_ in picks])
    pos = np.concatenate([p for p, *_ in picks]).astype(np.int64)
    coef = np.concatenate([c for _, c, _, _ in picks]).astype(float)
    eq = np.array([e for *_, e, _ in picks], dtype=bool)
    b = np.array([x for *_, x in picks], dtype=float)
    rows = np.flatnonzero(rng.random(len(picks)) < 0.8)
    got = lp_blocks.first_distinct_rows(rows, cnt, pos, coef, eq, b).tolist()
    assert got == _loop_first_distinct(rows, cnt, pos, coef, eq, b)
    assert len(got) < len(rows)


@pytest.mark.parametrize("seed", range(5))
def test_group_relations_as_the_loop_of_dicts(seed):
    """Groups whose parts repeat a count (and hold their total's): the relations are the dicts the loop built
    (each count once where it first comes, coefficients summed, a 0 kept), in order, only where a sense is given."""
    rng = np.random.default_rng(seed)
    rvars = rng.integers(0, 12, (40, 2))
    groups = [(rng.integers(0, 40, rng.integers(1, 6)).tolist(), int(rng.integers(0, 40))) for _ in range(30)]
    flat, _, tot, starts = model_arrays.grouped(groups)
    sense = rng.choice(np.array(["eq", "le", ""], dtype=object), (len(groups), 2))
    want = []
    for g, (parts, t) in enumerate(groups):
        for j in range(2):
            if sense[g, j]:
                coefs = {}
                for u in rvars[parts, j].tolist():
                    coefs[u] = coefs.get(u, 0.0) + 1.0
                coefs[int(rvars[t, j])] = coefs.get(int(rvars[t, j]), 0.0) - 1.0
                want.append((coefs, sense[g, j]))
    rel = Relations()
    rel.add(*model_arrays.group_relations(sense, rvars, flat, tot, np.asarray(starts)))
    got = [rel[k] for k in range(len(rel))]
    assert got == want and any(0.0 in c.values() for c, _ in want) and any(2.0 in c.values() for c, _ in want)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("reach", ["all", "small"])
def test_close_counts_as_the_loop_over_groups(seed, reach):
    """Random groups of counts (some hidden, counts repeated, 0s, some groups with a missing or fractional count:
    the loop's own comparisons there): the close counts, in order, are the loop's."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, 60)
    var_x = rng.integers(0, 40, int(sizes.sum())).astype(float)
    if seed % 2:
        var_x[rng.integers(0, len(var_x), 3)] = [np.nan, 2.5, 7.25]
    order = rng.permutation(len(var_x))
    group_list = np.split(order, np.cumsum(sizes)[:-1])
    st = SimpleNamespace(
        group_list=[g.tolist() for g in group_list],
        m=SimpleNamespace(var_x=var_x.tolist()),
        H=set(rng.choice(len(var_x), len(var_x) // 4, replace=False).tolist()),
        close_counts=reach,
        min_n=10,
        protection=10,
        _group_arrays=None,
    )
    groups = sorted(rng.choice(len(group_list), 40, replace=False).tolist())
    got = memo.close_counts(st, groups)
    assert got == memo._close_counts_loop(st, groups) and len(got) > 0
