"""The protection pass' shortcuts for small and mid-sized districts (issue #21) decide what the full audits decide.

On a district audited cell by cell most count audits that fail have a count pinned by one equality once the
others are known (a relation of a count shown again left with one hidden count): the clean-up refuses such a try
without its count audit (``_State.pinned``), an audit that finds one skips the LPs of the components whose counts
are all pinned (``_State._pinned_first``), and rule 4's design counts so pinned need no LP. A partial count audit
solves each small component for every hidden count in it (``lp.intervals(within=...)``), as the full audit that
follows reads it. These tests pin that each shortcut gives the decisions (and the protected tables and report,
every interval included) of the pass without it, and that each one is taken.
"""

from __future__ import annotations

import numpy as np
import pytest

from opportunity_research.disclosure import protection
from opportunity_research.disclosure.design import never_published
from opportunity_research.disclosure.lp import interval_width, intervals, pinned_targets
from tests.test_disclosure_decide import _pass, _same, _solves
from tests.test_disclosure_scale import _full_audit


def _case(seed: int) -> tuple[dict, dict]:
    """A random district of four schools with the fixed design's rows (as the demo districts and a 10,000-student
    one)."""
    from tests.test_disclosure_lp import _district

    tables = _district(seed, schools=4)
    return tables, {"never_published": never_published(tables)}


@pytest.mark.parametrize(("seed", "left_out"), [(0, True), (1, False), (2, False)])
def test_pinned_targets_are_pinned_by_the_exact_bounds(seed, left_out):
    """Every count ``pinned_targets`` returns has an exact LP interval of one value; with ``first`` it returns one
    of them (when there is one); shown again one by one, the school breakdowns leave counts pinned."""
    from tests.test_disclosure_lp import _true_breakdowns

    m, shown, _ = _true_breakdowns(seed, schools=12, left_out=left_out)
    seen = 0
    rng = np.random.default_rng(seed)
    for r in rng.permutation(np.flatnonzero(~shown))[:40].tolist():
        shown = shown.copy()
        shown[r] = True  # one more row shown
        hidden = sorted({v for q in np.flatnonzero(~shown) for v in m.row_vars[q]})
        got = pinned_targets(m, shown, hidden)
        exact = intervals(m, shown, hidden)  # need=inf: each count's own exact LP bounds
        assert all(interval_width(exact[v]) == 0 for v in got)
        one = pinned_targets(m, shown, hidden, first=True)
        assert len(one) == min(len(got), 1) and set(one) <= set(got)
        seen += len(got)
    assert seen  # the case pins some counts


@pytest.mark.parametrize("seed", [1, 3])
def test_cleanup_refuses_a_try_with_a_pinned_count_as_its_audit_would(seed, monkeypatch):
    """The clean-up refuses a try without its count audit only when a hidden count is pinned (the count audit
    fails on it); the pass that audits every try publishes the same tables and report."""
    tables, rows = _case(seed)
    check, refused = protection._State.pinned, []

    def checked(st):
        got = check(st)
        if got:
            assert _full_audit(st)[1]  # the count audit fails
            refused.append(1)
        return got

    monkeypatch.setattr(protection._State, "pinned", checked)
    fast = _pass(tables, rows)
    assert refused
    monkeypatch.setattr(protection._State, "pinned", lambda st: False)
    _same(fast, _pass(tables, rows))


@pytest.mark.parametrize("seed", [1, 3])
def test_audits_that_find_a_pinned_count_decide_as_full_ones(seed, monkeypatch):
    """A count audit that finds a pinned count (``_State._pinned_first``) finds exactly the full audit's counts
    too narrow, and the pass without that shortcut publishes the same tables and report."""
    tables, rows = _case(seed)
    first, answered = protection._State._pinned_first, []

    def checked(st, hid, targets):
        got = first(st, hid, targets)
        if got is not None:
            assert got[1] == _full_audit(st)[1]
            answered.append(1)
        return got

    monkeypatch.setattr(protection._State, "_pinned_first", checked)
    fast = _pass(tables, rows)
    assert answered
    monkeypatch.setattr(protection._State, "_pinned_first", lambda st, hid, targets: None)
    _same(fast, _pass(tables, rows))


def test_design_counts_pinned_by_elimination_as_by_their_lps(monkeypatch):
    """Rule 4's design counts found pinned by elimination (no LP) and kept by the hidden counts are the rows the
    LPs find, in every estimate audit of the pass; the pass without both publishes the same."""
    tables, rows = _case(1)
    known, compared = protection._State.known_design_rows, []

    def both(st):
        got = known(st)
        if not got.any():
            return got
        with monkeypatch.context() as mp:
            mp.setattr(protection, "pinned_targets", lambda m, shown, vs, first=False: [])
            assert np.array_equal(st._known_design_rows(st.m.design), np.flatnonzero(got))
        compared.append(int(got.sum()))
        return got

    monkeypatch.setattr(protection._State, "known_design_rows", both)
    fast = _pass(tables, rows)
    assert compared and max(compared) > 0
    monkeypatch.undo()
    monkeypatch.setattr(protection, "pinned_targets", lambda m, shown, vs, first=False: [])
    monkeypatch.setattr(protection._State, "pinned", lambda st: False)
    monkeypatch.setattr(protection._State, "_pinned_first", lambda st, hid, targets: None)
    _same(fast, _pass(tables, rows))


def test_partial_audit_solves_each_component_as_the_full_audit_reads_it(monkeypatch):
    """``intervals(within=...)`` gives a few targets the intervals the audit of every count of ``within`` gives
    them, and that audit, following, solves no component again."""
    from tests.test_disclosure_lp import _true_breakdowns

    m, shown, targets = _true_breakdowns(2, schools=12, left_out=False)
    full = intervals(m, shown, targets, need=10)
    m.lp_cache.clear()
    some = targets[::7]
    got = intervals(m, shown, some, need=10, within=targets)
    assert got == {t: full[t] for t in some}
    calls = _solves(monkeypatch)
    assert intervals(m, shown, targets, need=10) == full
    assert not any(set(c) & set(some) for c in calls)  # the components of the few targets read from the cache
    with pytest.raises(ValueError):
        intervals(m, shown, some, need=10, within=targets, decide=True)
    monkeypatch.undo()
    m.lp_cache.clear()
    intervals(m, shown, some, need=10)  # without within: the components of the few targets only
    calls = _solves(monkeypatch)
    intervals(m, shown, targets, need=10)
    assert any(set(c) & set(some) for c in calls)  # solved again for all their counts
