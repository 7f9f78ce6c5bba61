"""The protection pass at scale (issue #21): its shortcuts decide exactly what the full computations decide.

A 1,000,000-student district's pass spent most of its time in count audits that could only fail (the clean-up's
tries), in full audits of rounds that hide more (where a count wide before stays wide) and in Python loops over
every design row and relation each audit; these tests pin that the shortcuts give the same decisions, the same
intervals where an audit passes, and the same protected tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from opportunity_research.disclosure import protection
from opportunity_research.disclosure.complements import SHORT
from opportunity_research.disclosure.lp import interval_width, intervals


def _left_out_case(seed: int = 2):
    """A random district with a large district's design: school breakdowns left out, design rows."""
    from opportunity_research.disclosure.design import never_published, school_breakdowns
    from tests.test_disclosure_lp import _district

    tables, left_out = school_breakdowns(_district(seed), min_n=10, year=2016)
    return tables, {"unpublished": left_out, "never_published": never_published(tables)}


def _loop_design_by_one_relation(st, hid, vs, cache):
    """``complements.design_by_one_relation`` as it was (a Python loop over the counts), for comparison."""
    m = st.m
    pairs = [
        (rid, next(iter(c)))
        for rid, c, value in m.entries
        if len(c) == 1 and next(iter(c.values())) != 0 and not math.isnan(value)
    ]
    ent = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    fixed = np.zeros(len(m.var_key), dtype=bool)
    fixed[ent[:, 1][~hid[ent[:, 0]]]] = True
    last = st.last_audit
    audited = last[1] if last is not None and np.array_equal(last[0], hid) else {}
    out = {}
    for v in vs:
        if fixed[v]:
            out[v] = (m.var_x[v], m.var_x[v])
            continue
        got = cache.get(v)
        if got is None:
            got = cache[v] = [
                (np.fromiter((u for u in c if u != v), dtype=np.int64), c)
                for k in sorted(st.var_rel[v], key=lambda k: len(m.relations[k][0]))
                if (c := m.relations[k][0]).get(v) and m.relations[k][1] == "eq" and len(c) <= SHORT
            ]
        for others, coefs in got:
            free = others[~fixed[others]].tolist()
            if not free:
                out[v] = (m.var_x[v], m.var_x[v])
                break
            if len(free) == 1 and free[0] in audited:
                lo, hi = audited[free[0]]
                ratio = abs(coefs[free[0]] / coefs[v])
                if math.isfinite(hi) and ratio * (hi - lo) >= 2:
                    u, slope = free[0], -coefs[free[0]] / coefs[v]
                    ends = sorted(m.var_x[v] + slope * (e - m.var_x[u]) for e in (lo, hi))
                    out[v] = (ends[0], ends[1])
                    break
                if math.isinf(hi):
                    out[v] = (-math.inf, math.inf)
                    break
    return out


def test_design_rows_by_one_relation_decided_as_by_the_loop(monkeypatch):
    """Rule 4's design rows decided from one equality each (sparse products over every count's short
    equalities) give exactly what the loop over the counts gave, in every estimate audit of the pass."""
    tables, rows = _left_out_case()
    new, cache, sizes = protection.design_by_one_relation, {}, []

    def both(st, hid, vs):
        got = new(st, hid, vs)
        assert got == _loop_design_by_one_relation(st, hid, vs, cache)
        sizes.append(len(got))
        return got

    monkeypatch.setattr(protection, "design_by_one_relation", both)
    _, report = protection.protect_tables(tables, min_n=10, year=2016, **rows)
    assert report.passed and sizes and max(sizes) > 0


def _full_audit(st):
    hid = st.hidden_rows(counts=True)
    targets = sorted(st.H)
    iv = intervals(st.m, ~hid, targets, st.protection)
    return iv, [t for t in targets if interval_width(iv[t]) < st.protection]


@pytest.mark.parametrize(("left_out", "local_min"), [(False, 10**9), (False, 0), (True, 0)])
def test_count_audits_that_recheck_part_decide_as_full_ones(left_out, local_min, monkeypatch):
    """A count audit of a state that hides more than the last one rechecks only the counts that were too
    narrow (in a large model first by the short relations near each) and the counts hidden since (a wide
    count stays wide): its too-narrow counts are the full audit's, and an audit that passes gives the full
    audit's intervals."""
    from tests.test_disclosure_links import random_truth

    monkeypatch.setattr(protection, "LOCAL_MIN", local_min)  # 0: every model is large
    tables, rows = _left_out_case() if left_out else (random_truth(1), {})
    audit, partial = protection._State.count_audit, []

    def checked(st):
        iv, bad = audit(st)
        full, full_bad = _full_audit(st)
        assert bad == full_bad
        if not bad:
            assert iv == full
        partial.append(len(iv) < len(st.H))
        return iv, bad

    monkeypatch.setattr(protection._State, "count_audit", checked)
    _, report = protection.protect_tables(tables, min_n=10, year=2016, **rows)
    assert report.passed
    assert any(partial)  # some audits checked part of the counts only


def _same(a, b):
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])


@pytest.mark.parametrize("left_out", [False, True])
def test_cleanup_refuses_a_try_with_a_surely_narrow_neighbour(left_out, monkeypatch):
    """The clean-up refuses a try, without its count audit, only when a hidden count next to what it shows
    again is surely too narrow (the count audit would fail on it): the protected tables and the report are
    those of the clean-up that audits every try."""
    from tests.test_disclosure_links import random_truth

    tables, rows = _left_out_case() if left_out else (random_truth(0), {})
    monkeypatch.setattr(protection, "LOCAL_MIN", 10**9)  # the check is off (a small model)
    before, old = protection.protect_tables(tables, min_n=10, year=2016, **rows)
    monkeypatch.setattr(protection, "LOCAL_MIN", 0)  # on
    check, refused = protection._State.narrow_near, []

    def checked(st, shown_again):
        got = check(st, shown_again)
        if got:
            assert _full_audit(st)[1]  # the count audit fails
            refused.append(1)
        return got

    monkeypatch.setattr(protection._State, "narrow_near", checked)
    after, new = protection.protect_tables(tables, min_n=10, year=2016, **rows)
    assert refused
    _same(before, after)
    assert {k: v for k, v in vars(old).items() if k not in ("seconds", "intervals")} == {
        k: v for k, v in vars(new).items() if k not in ("seconds", "intervals")
    }
    pd.testing.assert_frame_equal(old.intervals, new.intervals)
