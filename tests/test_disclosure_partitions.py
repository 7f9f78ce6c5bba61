"""One gap table's partitions through the joint disclosure pass, against an independent brute-force attacker.

These cases came from the per-table suppression module that the joint pass replaced (issue 22): a complete
:func:`~opportunity_research.stats.gaps.gap_table` is protected with
:func:`~opportunity_research.disclosure.joint.protect_table`, and an attacker who reads only that table
(its shown counts and estimates, the ``suppressed`` flags and their one reason text, and the partition's
total where the table shows it) enumerates what the hidden cells can be. The attacker does not share any code
with the pass's linear-programming audit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opportunity_research.disclosure.joint import ALL_OTHERS, REASON, protect_table
from opportunity_research.stats.gaps import gap_table

MIN_N = 10


def _students(sizes, positives):
    """Students of levels L0, L1, ... with ``positives[i]`` 1-outcomes among ``sizes[i]``."""
    rows = []
    for i, (n, x) in enumerate(zip(sizes, positives)):
        rows += [(f"L{i}", 1.0)] * x + [(f"L{i}", 0.0)] * (n - x)
    return pd.DataFrame(rows, columns=["g", "y"])


def _protected(sizes, positives, *, named=False, **kw):
    df = _students(sizes, positives)
    t = gap_table(df, outcome="y", group="g", reference="L0" if named else None, n_boot=0, kind="binary")
    t = t.assign(measure="grade_appropriate", subject="ela")
    return protect_table(t, "gaps", min_n=MIN_N, **kw)


def attack(t, *, sizes, positives, named=False, protection=MIN_N) -> list[str]:
    """What the table gives away: hidden counts narrower than ``protection``, and hidden shares computable.

    Cells are the levels (and, with a named reference, the reference level L0). A hidden count is only known
    to be at least 1 (every hidden row has the same reason text); counts add up to the partition's total,
    which the table shows when any row compares against all other students (``n + reference_n``). Values: the
    partition's total of 1-outcomes is taken as public (any shown row against all others gives it through
    ``reference_estimate``), so the cells whose estimate is not shown pool to a known share; a single such
    cell, or a pool at 0% or 100%, gives its cells' shares away.
    """
    total, pos = sum(sizes), sum(positives)
    t = t.reset_index(drop=True)
    shown_n = t["n"].notna()
    shown_e = t["estimate"].notna()
    cells = {str(lv): (float(n) if ok else None) for lv, n, ok in zip(t["level"], t["n"], shown_n)}
    values = {str(lv): float(e) for lv, e, ok in zip(t["level"], t["estimate"], shown_e) if ok}
    if named:
        ref_n = t["reference_n"].dropna()
        cells["L0"] = float(ref_n.iloc[0]) if len(ref_n) else None
        ref_e = t["reference_estimate"].dropna()
        if len(ref_e):
            values["L0"] = float(ref_e.iloc[0])
    found = []
    # counts: the total is public only where a row shows it (against all other students: n + reference_n)
    total_public = (not named and bool(shown_n.any())) or (
        named and all(v is not None for v in cells.values())
    )
    hidden = [k for k, v in cells.items() if v is None]
    if hidden and total_public:
        rest = total - sum(v for v in cells.values() if v is not None)
        # one hidden count is the rest; several each lie in 1 .. rest - (len(hidden) - 1)
        width = 0 if len(hidden) == 1 else int(rest) - len(hidden)
        if width < protection:
            found += [f"{k} count (interval {width})" for k in hidden]
    # values: the cells whose estimate is not shown pool to a known count and share
    if named:  # the level counts and the reference do not show the partition's total
        return found
    unknown = [k for k in cells if k not in values]
    if unknown and 0 < pos < total:
        n_known = sum(cells[k] for k in values)
        n_u = total - n_known
        x_u = pos - sum(cells[k] * values[k] for k in values)
        if len(unknown) == 1 and n_u > 0:
            found.append(f"{unknown[0]} share ({x_u / n_u:.3f})")
        elif n_u > 0 and (abs(x_u) < 1e-6 or abs(x_u - n_u) < 1e-6):
            found += [f"{k} share (pool at {x_u / n_u:.0%})" for k in unknown]
    return found


level_sizes = st.lists(st.integers(1, 40), min_size=2, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=level_sizes, data=st.data(), named=st.booleans())
def test_property_one_table_no_small_cell_shown_and_nothing_recoverable(sizes, data, named):
    positives = [data.draw(st.integers(0, n)) for n in sizes]
    t = _protected(sizes, positives, named=named)
    truth = {f"L{i}": n for i, n in enumerate(sizes)}
    shown = t[~t["suppressed"]]
    # primary rule: nothing below the minimum is shown, on either side of a comparison
    assert (shown["n"] >= MIN_N).all() and (shown["reference_n"] >= MIN_N).all()
    for r in t.itertuples():
        if truth[str(r.level)] < MIN_N:
            assert r.suppressed
    hid = t[t["suppressed"]]
    assert hid[["n", "reference_n", "estimate", "reference_estimate"]].isna().all().all()
    assert set(hid["suppression_reason"]) <= {REASON.format(min_n=MIN_N)}
    if sum(sizes) > len(sizes):  # residual risk: one student per level is given away by the level list
        assert attack(t, sizes=sizes, positives=positives, named=named) == []


def test_attack_recovers_a_small_cell_hidden_without_complements():
    """The attacker is not toothless: hiding only the small cell gives it back (n = N - shown)."""
    sizes, positives = [4, 60, 25, 300], [1, 30, 10, 100]
    t = _protected(sizes, positives)
    assert t["suppressed"].sum() >= 2 and attack(t, sizes=sizes, positives=positives) == []
    full = gap_table(_students(sizes, positives), outcome="y", group="g", n_boot=0)
    small = full["n"] < MIN_N
    primary_only = full.assign(suppressed=small)
    primary_only.loc[small, ["n", "reference_n", "estimate", "reference_estimate"]] = np.nan
    assert attack(primary_only, sizes=sizes, positives=positives) == [
        "L0 count (interval 0)",
        "L0 share (0.250)",
    ]


def test_a_hidden_pool_at_zero_is_not_left_computable():
    """L0 (5 students) and L1 (20) have no 1-outcome: hiding both would show a pooled share of 0% for them."""
    sizes, positives = [5, 20, 40, 50], [0, 0, 16, 30]
    t = _protected(sizes, positives)
    assert t.set_index("level").loc["L0", "suppressed"]
    assert attack(t, sizes=sizes, positives=positives) == []


def test_two_tiny_cells_are_not_protection_enough():
    # L0 and L1 have 1 student each: hiding just them leaves 2 students for 2 cells, pinning both
    sizes, positives = [1, 1, 50, 70], [0, 1, 25, 35]
    t = _protected(sizes, positives)
    assert t["suppressed"].sum() >= 3
    assert attack(t, sizes=sizes, positives=positives) == []


def test_named_reference_below_minimum_hides_every_comparison():
    sizes, positives = [8, 50, 80], [2, 10, 24]
    t = _protected(sizes, positives, named=True)
    assert t["suppressed"].all() and t["reference_n"].isna().all()


def test_every_level_small_gets_one_uninformative_reason():
    # three levels of 9: "n < 10" on each with N = 27 would pin each at 9; the pass gives one reason for all
    sizes, positives = [9, 9, 9], [3, 4, 5]
    t = _protected(sizes, positives)
    assert t["suppressed"].all() and t["suppression_reason"].nunique() == 1
    assert attack(t, sizes=sizes, positives=positives) == []


def test_protection_setting_is_respected():
    """``protection=1`` (not exactly computable) needs fewer complements than ``min_n`` wide intervals."""
    sizes, positives = [3, 12, 15, 40, 300], [1, 5, 7, 20, 150]
    wide = _protected(sizes, positives)
    loose = _protected(sizes, positives, protection=1)
    assert attack(wide, sizes=sizes, positives=positives) == []
    assert attack(loose, sizes=sizes, positives=positives, protection=1) == []
    assert loose["suppressed"].sum() <= wide["suppressed"].sum()


def test_protect_table_returns_the_complete_rows_it_keeps_unchanged():
    sizes, positives = [40, 60, 300], [10, 30, 100]
    full = gap_table(_students(sizes, positives), outcome="y", group="g", n_boot=0).assign(
        measure="grade_appropriate", subject="ela"
    )
    t = protect_table(full, "gaps", min_n=MIN_N)
    assert not t["suppressed"].any() and (t["reference"] == ALL_OTHERS).all()
    pd.testing.assert_series_equal(t["estimate"], full["estimate"])
