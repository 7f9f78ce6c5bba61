"""The protection pass' decision shortcuts of issue #21 decide exactly what the full computations decide.

A 10,000-student district's pass spent most of its time in the clean-up's tries (``refine.publish_unneeded``):
a surely-narrow check that costs more than the count audit it saves where every component is small, and rule 4's
LPs of pinned counts whose component's feasible points an earlier solve already found. These tests pin that the
shortcuts give the same decisions and the same protected tables and report, and fail if a shortcut is wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.disclosure import lp, protection
from opportunity_research.disclosure.lp import interval_width, intervals, largest_component
from opportunity_research.disclosure.model import PopulationModel, TableSpec


def _solves(monkeypatch) -> list:
    """Record the targets of every component LP solved (``lp._solve_component``)."""
    calls: list = []
    solve = lp._solve_component

    def counted(members, cons, lb, targets, need, model, keep=None):
        calls.append(list(targets))
        return solve(members, cons, lb, targets, need, model, keep)

    monkeypatch.setattr(lp, "_solve_component", counted)
    return calls


@pytest.mark.parametrize(("seed", "left_out"), [(0, True), (1, False), (2, False)])
@pytest.mark.parametrize("need", [1, 10])
def test_points_decide_as_the_exact_bounds(seed, left_out, need, monkeypatch):
    """Targets decided from the feasible points an earlier solve of the same component LP found (``decide``)
    are judged wide or narrow exactly as by their exact LP bounds, and their ranges lie inside them; targets
    the points leave open get their own solves."""
    from tests.test_disclosure_lp import _true_breakdowns

    m, shown, targets = _true_breakdowns(seed, schools=12, left_out=left_out)
    exact = intervals(m, shown, targets)  # need=inf: every target's own exact LP bounds (no points kept)
    m.lp_cache.clear()
    intervals(m, shown, targets[::2], need=10)  # a solve for half of the targets: its points are kept
    calls = _solves(monkeypatch)
    got = intervals(m, shown, targets, need=need, decide=True)
    by_points = len(targets) - sum(len(c) for c in calls)
    assert by_points > len(targets) // 4  # the points decide many targets, the other half too
    narrow = [t for t in targets if interval_width(exact[t]) < need]
    assert narrow and len(narrow) < len(targets)  # the case has both kinds
    for t in targets:
        assert (interval_width(got[t]) >= need) == (interval_width(exact[t]) >= need), t
        if interval_width(got[t]) >= need:
            assert got[t][0] >= exact[t][0] - 1e-6 and got[t][1] <= exact[t][1] + 1e-6


def test_points_of_one_state_never_decide_another():
    """A pinned count is found pinned after a state in which it was wide: the points kept belong to one
    component LP exactly (its counts, rows and right-hand sides), never to the component of another state."""
    t = pd.DataFrame(
        {
            "school_id": ["A"] * 4 + ["B"] * 4 + ["all"] * 4,
            "group": ["all", "x=1", "x=2", "x=3"] * 3,
            "n": [60.0, 4.0, 26.0, 30.0, 50.0, 20.0, 10.0, 20.0, 110.0, 24.0, 36.0, 50.0],
        }
    )
    m = PopulationModel({"t": (t, TableSpec("cell"))}, year=2016, known=True, min_n=10)
    x1, x2, x3 = (m.row_vars[r][0] for r in (1, 2, 3))
    wide = np.array([True, False, False, True, True, False, False, True] + [True] * 4)
    before = intervals(m, wide, [x1, x2], need=1)  # A's x=1 and x=2 trade against B's: both wide
    assert interval_width(before[x1]) >= 1 and interval_width(before[x2]) >= 1
    pinned = wide.copy()
    pinned[[2, 6]] = True  # A's and B's x=2 shown: x=1 is the school total minus the shown counts
    got = intervals(m, pinned, [x1], need=1, decide=True)
    assert interval_width(got[x1]) == 0 and got[x1] == (4.0, 4.0)
    three = wide.copy()
    three[[3, 7]] = False  # x=3 hidden too: a larger component, decided by its own solve
    got = intervals(m, three, [x1, x2, x3], need=1, decide=True)
    assert all(interval_width(got[v]) >= 1 for v in (x1, x2, x3))


def _pass(tables, rows):
    out, report = protection.protect_tables(tables, min_n=10, year=2016, **rows)
    return out, {k: v for k, v in vars(report).items() if k != "seconds"}


def _same(a, b):
    (out_a, rep_a), (out_b, rep_b) = a, b
    for k in out_a:
        pd.testing.assert_frame_equal(out_a[k], out_b[k], check_exact=True)
    pd.testing.assert_frame_equal(rep_a.pop("intervals"), rep_b.pop("intervals"), check_exact=True)
    assert rep_a == rep_b


@pytest.mark.parametrize("case", ["cell by cell", "left out"])
def test_the_pass_with_points_is_the_pass_without(case, monkeypatch):
    """The whole pass (rounds, clean-up, swaps, the publish gate) with rule 4's pinned counts decided from kept
    points gives the tables and the report (every interval included) of the pass that solves each of them:
    cell by cell with the design's rows (as a 10,000-student district), and with school breakdowns left out.

    Rule 4's value test kept by relation, hidden parts and total gives, in every estimate audit of the first pass,
    exactly the relations the audit flags when every value test is computed again (one pass checks both: the two
    tests ran the same pass, 2 CPU-s of the cell-by-cell case)."""
    from opportunity_research.disclosure.design import never_published
    from tests.test_disclosure_lp import _district
    from tests.test_disclosure_scale import _left_out_case

    if case == "cell by cell":
        tables = _district(1)
        rows = {"never_published": never_published(tables)}
    else:
        tables, rows = _left_out_case()
    decided = []
    by_points = lp._decided_by_points

    def recorded(got, members, ts, need, out):
        rest = by_points(got, members, ts, need, out)
        decided.append(len(ts) - len(rest))
        return rest

    audit, kept = protection._State.estimate_audit, []

    def both(st):
        got = audit(st)
        memo = st.__dict__.get("_near_memo", {})
        kept.append(len(memo))
        saved = dict(memo)
        memo.clear()
        assert audit(st) == got  # every value test computed again
        memo.update(saved)
        return got

    monkeypatch.setattr(lp, "_decided_by_points", recorded)
    monkeypatch.setattr(protection._State, "estimate_audit", both)
    fast = _pass(tables, rows)
    assert sum(decided) > 0  # the points decided some counts
    assert kept and max(kept) > 0  # the value tests were kept
    monkeypatch.setattr(protection._State, "estimate_audit", audit)
    monkeypatch.setattr(lp, "_decided_by_points", lambda got, members, ts, need, out: list(ts))
    _same(fast, _pass(tables, rows))


def test_surely_narrow_check_only_where_a_component_is_probed_by_blocks(monkeypatch):
    """The clean-up's surely-narrow check (``_State.narrow_near``) runs only where one component of the audit
    holds more than ``LOCAL_MIN`` unknown counts; elsewhere the count audit decides the try, and the pass'
    tables and report are those of the pass that runs the check on every try."""
    from tests.test_disclosure_links import random_truth

    tables = random_truth(0)
    asked, check = [], protection._State.narrow_near

    def recorded(st, shown_again):
        got = check(st, shown_again)
        biggest = largest_component(st.m, ~st.hidden_rows(counts=True))
        asked.append((biggest, got))
        return got

    monkeypatch.setattr(protection._State, "narrow_near", recorded)
    monkeypatch.setattr(protection, "LOCAL_MIN", 0)
    every = _pass(tables, {})
    assert asked and any(got for _, got in asked)  # the check refused some tries
    sizes = sorted(b for b, _ in asked)
    asked.clear()
    monkeypatch.setattr(protection, "LOCAL_MIN", sizes[len(sizes) // 2])  # components on both sides of it
    some = _pass(tables, {})
    limit = protection.LOCAL_MIN
    assert any(b <= limit for b, _ in asked) and any(b > limit for b, _ in asked)
    assert not any(got for b, got in asked if b <= limit)  # not asked: the count audit decided
    _same(every, some)


def test_value_test_follows_the_hidden_parts():
    """A planted relation whose rule-4 value test flips with its hidden parts: with ``x=1`` (0%) hidden alone, the
    pooled value of what is hidden is 0% (a bound: flagged); with ``x=2`` hidden too, it is the school's own
    published 50% (not flagged). The test kept from the first state must not answer for the second."""
    t = pd.DataFrame(
        {
            "school_id": ["A"] * 3 + ["all"] * 3,
            "group": ["all", "x=1", "x=2"] * 2,
            "n": [40.0, 4.0, 36.0, 40.0, 4.0, 36.0],
            "estimate": [0.5, 0.0, 20 / 36] * 2,
        }
    )
    tables = {"t": (t, TableSpec("cell", estimates={"estimate": (0.0, 1.0)}))}

    def state():
        m = PopulationModel(tables, year=2016, known=True, min_n=10)
        m.unpublished = np.zeros(0, dtype=bool)
        return m, protection._State(m, 10, 10, 0.05)

    m, st = state()
    x1, x2 = m.row_vars[1][0], m.row_vars[2][0]
    st.H = {x1}
    assert (
        [1],
        [2],
        0,
        "cell",
    ) in st.estimate_audit()  # 0% for the hidden part: the school's relation flagged
    st.H = {x1, x2}
    got = st.estimate_audit()
    _, fresh = state()
    fresh.H = {x1, x2}
    assert got == fresh.estimate_audit()
    assert not [f for f in got if f[0] == [1, 2]]  # the school's own 50%: its relation not flagged
