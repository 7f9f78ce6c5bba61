"""The protection pass' model build and block probes at 1,000,000 students (issue #21): each faster path gives what
the loop it replaced gives.

* a cell table's pooled-subject relations, as arrays (``model_arrays.subject_relations``), are the dicts the loop
  appended, in its order;
* the counts' keys of a cell table, built at once, number the variables as the loop over the keys did;
* a block probe whose LP, as built, equals one probed before takes that probe's points (no HiGHS solve): the same
  intervals as solving it;
* block probes solved side by side on threads give what solving them one by one gives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opportunity_research.disclosure import lp, lp_blocks
from opportunity_research.disclosure.lp import intervals
from opportunity_research.disclosure.model import PopulationModel, _num
from opportunity_research.disclosure.model_arrays import Relations, grouped, subject_relations


def _loop_subject_relations(sense, rvars, groups) -> list:
    """The loop the arrays replaced (``PopulationModel._subject_relations`` before): a dict per relation."""
    out = []
    for g, (parts, tot) in enumerate(groups):
        for j in range(rvars.shape[1]):
            pvars, tvar = rvars[parts, j].tolist(), int(rvars[tot, j])
            coefs: dict = {}
            if sense[g, j] == "eq":
                for v in pvars:
                    coefs[v] = coefs.get(v, 0.0) + 1.0
                coefs[tvar] = coefs.get(tvar, 0.0) - 1.0
                out.append((coefs, "eq"))
            elif sense[g, j] == "le":
                for v in pvars:
                    coefs[v] = coefs.get(v, 0.0) - 1.0
                coefs[tvar] = coefs.get(tvar, 0.0) + 1.0
                out.append((coefs, "le"))
                for v in pvars:
                    if v != tvar:
                        out.append(({v: 1.0, tvar: -1.0}, "le"))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_subject_relations_as_the_loop(seed):
    """Groups of two to four parts, counts repeated within a group and equal to the pooled count (one variable),
    every sense, two count columns: the relations, their counts' order and coefficients, as the loop's dicts."""
    rng = np.random.default_rng(seed)
    n_rows, k = 60, 2
    rvars = rng.integers(0, 12, size=(n_rows, k))  # few variables: repeats and pooled-equals-part cases
    groups = []
    for g in range(12):
        parts = rng.choice(n_rows, size=int(rng.integers(2, 5)), replace=False).tolist()
        groups.append((parts, int(rng.integers(0, n_rows))))
    sense = rng.choice(np.array(["eq", "le", ""], dtype=object), size=(len(groups), k))
    flat, _, tot, starts = grouped(groups)
    rel = Relations()
    rel.append(({99: 1.0}, "eq"))  # one appended before: the arrays come after it
    rel.add(*subject_relations(sense, rvars, flat, tot, starts))
    rel.flush()
    want = [({99: 1.0}, "eq"), *_loop_subject_relations(sense, rvars, groups)]
    assert [(list(c.items()), s) for c, s in rel] == [(list(c.items()), s) for c, s in want]


@pytest.mark.parametrize("known", [True, False])
def test_model_keys_numbered_as_the_loop(known):
    """Every count of every cell row has the variable of the loop's key (its value, link or own name), numbered in
    the order the keys are first met, with its value and whether it is a total."""
    from tests.test_disclosure_arrays import _tables

    tables = _tables(1, known)
    m = PopulationModel(tables, year=2016, known=known, min_n=10)
    assert len(m.var_key) == len(set(m.var_key))  # one variable a key
    met = []
    for rid, (tid, i, uni, school, var, lev, yr) in enumerate(m.rows.itertuples(index=False, name=None)):
        df, spec = m.frames[tid], m.specs[tid]
        if spec.style != "cell":
            continue
        cols = [c for c in spec.counts if c in df.columns]
        for j, c in enumerate(cols):
            v = m.row_vars[rid][j]
            x = float(_num(df[c])[i])
            key = m.var_key[v]
            assert key[:5] == (spec.unit, yr, school, var, lev)
            if known and not math.isnan(x):
                assert key[5] == ("n", x) and m.var_x[v] == x
            elif not isinstance(key[5], tuple) or key[5][0] != "set":
                assert key[5] == (uni, school, var, lev, j)
            assert m.var_total[v] == (var == "all")
            met.append(v)
    first = list(dict.fromkeys(met))
    assert first == sorted(first)  # numbered in the order first met


def test_block_probe_of_the_same_lp_takes_its_points(monkeypatch):
    """Probes whose LP, as built, was probed before (their own keys forgotten) take the points found for it, without
    a solve: the intervals of the audit that solved them."""
    from tests.test_disclosure_lp import _true_breakdowns

    m, shown, targets = _true_breakdowns(0, left_out=True)
    monkeypatch.setattr(lp, "LOCAL_MIN", 20)
    monkeypatch.setattr(lp_blocks, "LOCAL_SCHOOLS", (3, 12))
    solved = []
    probe = lp_blocks._probe_points
    monkeypatch.setattr(lp_blocks, "_probe_points", lambda *a: solved.append(1) or probe(*a))
    first = intervals(m, shown, targets, need=10)
    assert solved
    # forget every probe by its rows and right-hand sides, and the blocks' memo: only the LPs as built are kept
    for key in [k for k, v in m.lp_cache.items() if isinstance(v, dict) or k in ("blocks", "blocks-last")]:
        del m.lp_cache[key]
    monkeypatch.setattr(lp_blocks, "_probe_points", lambda *a: pytest.fail("solved again"))
    assert intervals(m, shown, targets, need=10) == first


@pytest.mark.parametrize("seed", [0, 1])
def test_block_probes_solved_side_by_side_as_one_by_one(seed, monkeypatch):
    """The block LPs of one size solved on several threads decide the same targets with the same ranges, in the
    same order, as solved one after another in the calling thread (and they do run on the pool's threads)."""
    import threading

    from tests.test_disclosure_lp import _true_breakdowns

    monkeypatch.setattr(lp, "LOCAL_MIN", 20)
    monkeypatch.setattr(lp_blocks, "LOCAL_SCHOOLS", (3, 12))
    probe, where = lp_blocks._probe_points, []
    monkeypatch.setattr(
        lp_blocks, "_probe_points", lambda *a: where.append(threading.current_thread()) or probe(*a)
    )
    got = {}
    for threads in (1, 3):
        monkeypatch.setattr(lp_blocks, "LP_THREADS", threads)
        m, shown, targets = _true_breakdowns(seed, left_out=seed == 0)  # a new model: nothing cached
        where.clear()
        got[threads] = list(intervals(m, shown, targets, need=10).items())
        on_pool = {t.name.startswith("block-lp") for t in where}
        assert where and on_pool == ({False} if threads == 1 else {True})
    assert got[3] == got[1]


def test_pass_and_publish_audit_run_without_the_cyclic_collector(monkeypatch):
    """The protection pass and the publish audit run with the cyclic collector paused, and leave it as it was."""
    import gc

    from opportunity_research.disclosure import audit, protection
    from tests.test_disclosure_arrays import _tables

    seen = []
    model_init = PopulationModel.__init__

    def init(self, *a, **kw):
        seen.append(gc.isenabled())
        model_init(self, *a, **kw)

    monkeypatch.setattr(PopulationModel, "__init__", init)
    assert gc.isenabled()
    # (the rounds only: the clean-up runs inside the same paused collector and builds no model of its own)
    protection.protect_tables(_tables(1, True), min_n=10, cleanup=False)
    audit.audit_published(_tables(1, False), min_n=10)
    assert seen and not any(seen) and gc.isenabled()


@pytest.mark.parametrize("seed", [0, 2])
def test_block_lp_from_its_columns_as_from_its_rows(seed, monkeypatch):
    """Every block probe's LP built from the block's columns (``lp_blocks.block_entries``) is, array for array, the
    LP read from the touched rows' entries of the block's counts."""
    from tests.test_disclosure_lp import _true_breakdowns

    m, shown, targets = _true_breakdowns(seed, left_out=seed == 0)
    monkeypatch.setattr(lp, "LOCAL_MIN", 20)
    monkeypatch.setattr(lp_blocks, "LOCAL_SCHOOLS", (3, 12))
    build, checked = lp_blocks.component_model, []

    def both(arr, rows, members, unknown, b, lb, entries=None):
        got = build(arr, rows, members, unknown, b, lb, entries)
        if entries is not None:
            loc = np.zeros(len(arr["var_x"]), dtype=bool)
            loc[members] = True
            want = build(arr, rows, members, loc, b, lb)
            assert (got is None) == (want is None)
            if got is not None:
                for x, y in zip(lp_blocks._lp_parts(got), lp_blocks._lp_parts(want)):
                    assert np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype
            checked.append(1)
        return got

    monkeypatch.setattr(lp_blocks, "component_model", both)
    intervals(m, shown, targets, need=10)
    assert len(checked) > 3


@pytest.mark.parametrize(("seed", "known"), [(1, True), (2, True), (1, False)])
def test_substitution_from_the_last_call_as_computed_in_full(seed, known):
    """``lp._substitute`` from its last call, where the shown rows differ in a few rows (one or three; many: it
    computes all), gives bit for bit what it computes from nothing: the fixed values, the unknown counts, the
    active rows and their right-hand sides."""
    from tests.test_disclosure_arrays import _model

    m = _model(seed, known)
    arr, nr = lp._arrays(m), len(m.relations)
    rng = np.random.default_rng(seed)
    shown = ~np.asarray(m.pre_hidden, dtype=bool)
    lp._substitute(m, shown)
    incremental = 0
    for step in range(30):
        shown = shown.copy()
        flip = rng.choice(len(shown), size=[1, 3, len(shown) // 3][step % 3], replace=False)
        shown[flip] = ~shown[flip]
        ok = shown[arr["ent_rid"]] & ~np.isnan(arr["ent_val"])
        got = lp._substitute_changes(arr, nr, ok, arr["substituted_ok"])
        del arr["substituted"], arr["substituted_ok"]
        want = lp._substitute(m, shown)  # from nothing (and the next step's last call)
        assert (got is None) == (step % 3 == 2)
        if got is not None:
            incremental += 1
            for x, y in zip(got, want):
                assert x.dtype == y.dtype and np.array_equal(x.view(np.uint8), y.view(np.uint8))
    assert incremental == 20
