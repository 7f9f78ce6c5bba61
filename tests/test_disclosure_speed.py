"""Shortcuts of the disclosure pass and of the publish gate that must not change what they decide (issue 21).

* :func:`~opportunity_research.disclosure.lp_exact.exact_bounds` (a component whose relations, read as exact,
  contradict each other: every relation read as ``<=``) gives the LP optima an independent ``linprog`` per
  target gives, in both readings, and never needs the block-diagonal fallback on them;
* with the audit's protection width it decides every count as those optima do (a count its feasible points show
  wide gets an inner range, a narrow one its exact interval);
* on the built demo reports, the gate's audit reaches that reading (Lakeside) and decides every hidden count as
  the block-diagonal ``linprog`` does, and bounds every narrow one as it does;
* the complement swaps that stop a try as soon as it can no longer win keep exactly the states the full tries
  keep.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linprog

from opportunity_research import config
from opportunity_research.disclosure import lp, refine
from opportunity_research.disclosure.joint import audit_report_folder, protect_tables
from opportunity_research.disclosure.lp_exact import exact_bounds
from tests.test_disclosure_links import random_truth

BIG = 1e9


def _no_fallback(*args):
    raise AssertionError("the fallback was used")


def _reference(members, cons, lb, targets):
    """Min and max of each target by its own linprog calls, reading the rows as the audit does."""
    pos = {v: i for i, v in enumerate(members)}
    a = np.zeros((len(cons), len(members)))
    for r, (coefs, _, _) in enumerate(cons):
        for v, c in coefs.items():
            a[r, pos[v]] = c
    b = np.array([rhs for _, rhs, _ in cons])
    eq = np.array([s == "eq" for _, _, s in cons])
    bounds = [(lb[v], BIG) for v in members]

    def solve(c, exact):
        if exact:
            return linprog(c, A_eq=a[eq] if eq.any() else None, b_eq=b[eq] if eq.any() else None,
                           A_ub=a[~eq] if (~eq).any() else None, b_ub=b[~eq] if (~eq).any() else None,
                           bounds=bounds, method="highs")  # fmt: skip
        return linprog(c, A_ub=a, b_ub=b, bounds=bounds, method="highs")

    exact = solve(np.zeros(len(members)), True).status == 0
    out = {}
    for t in targets:
        c = np.zeros(len(members))
        c[pos[t]] = 1.0
        lo, hi = solve(c, exact), solve(-c, exact)
        assert lo.status == 0 and hi.status == 0
        out[t] = (lo.fun, math.inf if -hi.fun >= BIG * 0.5 else -hi.fun)
    return out, exact


def _component(seed: int, contradict: bool):
    """Schools x groups counts: every school's total and every group's district total shown (equalities),
    a ``<=`` row; with ``contradict``, one count's own row (another table's value of it) is more than its
    school's total leaves it."""
    rng = np.random.default_rng(seed)
    schools, groups = 4, 3
    x = rng.integers(1, 30, size=(schools, groups)).astype(float)
    var = np.arange(schools * groups).reshape(schools, groups)
    cons = [({int(v): 1.0 for v in var[s]}, float(x[s].sum()), "eq") for s in range(schools)]
    cons += [({int(v): 1.0 for v in var[:, g]}, float(x[:, g].sum()), "eq") for g in range(groups)]
    cons += [({int(var[0, 0]): 1.0, int(var[1, 0]): 1.0}, float(x[0, 0] + x[1, 0] + 5), "le")]
    if contradict:  # the same count published twice with different values
        cons += [({int(var[2, 1]): 1.0}, float(x[2].sum() + 3), "eq")]
    members = var.ravel().tolist()
    return members, cons, np.ones(len(members)), members


@pytest.mark.parametrize("contradict", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_exact_bounds_are_the_lp_optima_in_both_readings(seed, contradict):
    members, cons, lb, targets = _component(seed, contradict)
    want, exact = _reference(members, cons, lb, targets)
    assert exact is not contradict  # the case reaches the reading it is meant to
    got = exact_bounds(members, cons, lb, targets, big=BIG, fallback=_no_fallback)
    assert set(got) == set(targets)
    for t in targets:
        assert got[t] == pytest.approx(want[t], abs=1e-7), t


@pytest.mark.parametrize("contradict", [False, True])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("need", [3, 10, 25])
def test_exact_bounds_shortcuts_decide_as_the_lp_optima(seed, contradict, need):
    """With a protection width ``need``, a count the feasible points show wide gets an inner range of its
    exact interval, every narrow count its exact interval: the same decision for every count."""
    members, cons, lb, targets = _component(seed, contradict)
    want, _ = _reference(members, cons, lb, targets)
    got = exact_bounds(members, cons, lb, targets, big=BIG, fallback=_no_fallback, need=need)
    assert set(got) == set(targets)
    for t in targets:
        wide = lp.interval_width(want[t]) >= need
        assert (lp.interval_width(got[t]) >= need) == wide, t
        assert got[t][0] >= want[t][0] - 1e-7 and got[t][1] <= want[t][1] + 1e-7, t
        if not wide:
            assert got[t] == pytest.approx(want[t], abs=1e-7), t


def test_exact_bounds_falls_back_when_no_reading_is_feasible():
    # x0 + x1 <= 1 with both at least 1: infeasible read either way; the fallback decides
    cons = [({0: 1.0, 1: 1.0}, 1.0, "eq")]
    calls = []

    def fallback(members, cons_, lb, targets):
        calls.append(targets)
        return {t: (1.0, math.inf) for t in targets}

    assert exact_bounds([0, 1], cons, np.ones(2), [0], big=BIG, fallback=fallback) == {0: (1.0, math.inf)}
    assert calls == [[0]]


def _demo(name: str):
    folder = config.reports_dir() / name
    return folder if (folder / "report.html").exists() else None


@pytest.mark.skipif(_demo("demo_lakeside") is None, reason="no demo reports (make reports)")
def test_gate_decides_and_bounds_as_the_block_diagonal_lps_on_lakeside(monkeypatch):
    """Lakeside's published tables meet contradicting relations (two tables, two values of one population):
    the gate's audit reads them as ``<=``; the warm-started model finds the same intervals as the
    block-diagonal linprog of one copy of the component per hidden count."""
    folder = _demo("demo_lakeside")
    seen: list = []
    shortcut: list = []
    original = lp.exact_bounds

    def spy(members, cons, lb, targets, *, big, fallback, need=math.inf):
        got = original(members, cons, lb, targets, big=big, fallback=_no_fallback, need=need)
        want = fallback(members, cons, lb, targets)
        seen.append(len(targets))
        assert math.isfinite(need)  # the gate asks for its protection width: the shortcuts apply
        assert got.keys() == want.keys()
        for t in targets:
            wide = lp.interval_width(want[t]) >= need
            assert (lp.interval_width(got[t]) >= need) == wide, t  # the same decision
            if wide:  # an inner range from feasible points, inside the exact interval
                assert got[t][0] >= want[t][0] - 1e-6 and got[t][1] <= want[t][1] + 1e-6, t
            else:  # a narrow count: its exact interval (the gate names it)
                assert got[t] == pytest.approx(want[t], abs=1e-6), t
                assert lp.interval_width(got[t]) == lp.interval_width(want[t]), t
        shortcut.append(sum(lp.interval_width(want[t]) >= need for t in targets))
        return got

    monkeypatch.setattr(lp, "exact_bounds", spy)
    assert audit_report_folder(folder, min_n=10) == []
    assert seen and max(seen) > 50  # the reading is reached, on components of many hidden counts
    assert sum(shortcut) > 0  # and wide counts there are decided from points


@pytest.mark.parametrize("seed", range(4))
def test_swaps_that_stop_early_keep_the_states_full_tries_keep(seed, monkeypatch):
    truth = random_truth(seed)
    fast, fast_report = protect_tables(truth, min_n=10, year=2016)
    stopped = []
    cannot_win = refine._cannot_win

    def never(st, best, group):
        stopped.append(cannot_win(st, best, group))
        return False

    monkeypatch.setattr(refine, "_cannot_win", never)
    full, full_report = protect_tables(truth, min_n=10, year=2016)
    assert any(stopped)  # some try would have stopped early
    for name in truth:
        assert fast[name].equals(full[name]), name
    assert fast_report.intervals.equals(full_report.intervals)
    assert (fast_report.primary, fast_report.beyond_primary, fast_report.withheld) == (
        full_report.primary,
        full_report.beyond_primary,
        full_report.withheld,
    )
