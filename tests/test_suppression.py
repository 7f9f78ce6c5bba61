"""Small-cell suppression: primary and complementary rules, and an attacker who tries to undo them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opportunity_research.stats.gaps import gap_table
from opportunity_research.stats.suppression import ALL_OTHERS, suppress

MIN_N = 10


def others_table(sizes, shares=None):
    """A gap-table-like partition against all other students, from level sizes (and 0/1 shares)."""
    sizes = np.asarray(sizes, dtype=float)
    shares = np.full(len(sizes), 0.5) if shares is None else np.asarray(shares, dtype=float)
    total, pos = sizes.sum(), (sizes * shares).sum()
    return pd.DataFrame(
        {
            "group": "g",
            "level": [f"L{i}" for i in range(len(sizes))],
            "n": sizes.astype(int),
            "estimate": shares,
            "reference": ALL_OTHERS,
            "reference_n": (total - sizes).astype(int),
            "reference_estimate": (pos - sizes * shares) / (total - sizes),
            "difference": shares - (pos - sizes * shares) / (total - sizes),
        }
    )


def test_primary_suppression_blanks_counts_and_values():
    t = others_table([5, 200, 300, 400])
    s = suppress(t)
    assert s.loc[0, "suppression_reason"] == "n < 10"
    assert s.loc[[0], ["n", "reference_n", "estimate", "reference_estimate", "difference"]].isna().all().all()
    assert s["n"].dtype == "Int64"
    assert s.loc[0, "level"] == "L0" and s.loc[0, "group"] == "g"  # labels kept
    pd.testing.assert_frame_equal(t, others_table([5, 200, 300, 400]))  # input untouched


def test_reference_side_below_minimum_is_suppressed():
    t = others_table([95, 3, 2])  # L0 vs the 5 others: the "all others" cell is small
    s = suppress(t, complementary=False)
    assert s["suppression_reason"].tolist() == ["reference n < 10", "n < 10", "n < 10"]


def test_single_suppressed_level_gets_the_next_smallest_as_complement():
    s = suppress(others_table([4, 60, 25, 300]))
    assert s["suppressed"].tolist() == [True, False, True, False]
    assert s.loc[2, "suppression_reason"] == "complementary: protects L0"
    # without complementary suppression L0 would be recoverable: n = N - sum(shown n)
    assert suppress(others_table([4, 60, 25, 300]), complementary=False)["suppressed"].sum() == 1


def test_two_tiny_cells_are_not_protection_enough():
    # L0 and L1 have 1 student each: T = 2 hidden students, each >= 1, pins both counts to 1
    s = suppress(others_table([1, 1, 50, 70]))
    assert s["suppressed"].tolist() == [True, True, True, False]
    assert s.loc[2, "suppression_reason"] == "complementary: protects L0, L1"


def test_primary_plus_complement_of_exactly_min_n():
    # hidden: L0 (n < 10, so 1..9) and L1 (complement, so >= 10); T = 11 pins L0 to 1 and L1 to 10
    s = suppress(others_table([1, 10, 50, 70]))
    assert s["suppressed"].tolist() == [True, True, True, False]


def test_hidden_share_at_a_bound_gets_another_complement():
    # L0 (5 students) has outcome 0 for everyone, and so has L1 (20), the smallest other level: hiding L0 and
    # L1 would show a combined share of 0 for the hidden students, revealing both. L2 is taken instead.
    t = others_table([5, 20, 40, 50], shares=[0.0, 0.0, 0.4, 0.6])
    s = suppress(t, bounds=(0, 1))
    assert s["suppressed"].tolist() == [True, False, True, False]
    assert s.loc[2, "suppression_reason"] == "complementary: protects L0"
    assert suppress(t)["suppressed"].tolist() == [True, True, False, False]  # without bounds: not checked
    # a hidden pair at the bound gets a third cell
    t2 = others_table([5, 20, 40, 50], shares=[0.0, 0.0, 0.0, 0.6])
    t2 = others_table([5, 5, 40, 50], shares=[0.0, 0.0, 0.0, 0.6])
    assert suppress(t2, bounds=(0, 1))["suppressed"].tolist() == [True, True, False, True]


def test_named_reference_partition():
    t = pd.DataFrame(
        {
            "group": "race",
            "level": ["a", "b", "c"],
            "n": [5, 50, 80],
            "estimate": [0.1, 0.2, 0.3],
            "reference": "white",
            "reference_n": 100,
            "reference_estimate": 0.4,
        }
    )
    s = suppress(t)
    assert s["suppressed"].tolist() == [True, True, False]
    assert s.loc[1, "suppression_reason"] == "complementary: protects a"
    # a small reference hides every row
    s2 = suppress(t.assign(reference_n=8))
    assert s2["suppressed"].all() and (s2["suppression_reason"].str.contains("reference n < 10")).all()


def test_partitions_are_separate_and_keys_are_kept():
    t = pd.concat(
        [others_table([4, 60, 300]), others_table([40, 60, 300]).assign(group="h")], ignore_index=True
    )
    t["grade"] = 5
    s = suppress(t)
    assert s["suppressed"].tolist() == [True, True, False, False, False, False]
    assert (s["grade"] == 5).all()  # a numeric label column is not blanked


def test_already_suppressed_rows_stay_suppressed():
    t = others_table([40, 60, 300]).assign(
        suppressed=[False, True, False], suppression_reason=["", "manual", ""]
    )
    s = suppress(t)
    assert s.loc[1, "suppressed"] and s.loc[1, "suppression_reason"] == "manual"
    assert s.loc[0, "suppression_reason"] == "complementary: protects L1"


# --------------------------------------------------------------------------------------------
# Property and attack tests on gap tables built from student data


def _students(sizes, positives, ref_named):
    rows = []
    for i, (n, x) in enumerate(zip(sizes, positives)):
        rows += [(f"L{i}", 1)] * x + [(f"L{i}", 0)] * (n - x)
    df = pd.DataFrame(rows, columns=["g", "y"])
    return df, ({"g": "L0"} if ref_named else None)


def _attacker_bounds(reason, total, others):
    """What the reasons tell an attacker about a hidden cell's count (inclusive)."""
    lo, hi = 1, total
    if "every level suppressed" in reason:
        return lo, hi
    if f"n < {MIN_N}" in reason.split("; "):
        hi = min(hi, MIN_N - 1)
    if others and f"reference n < {MIN_N}" in reason:
        lo, hi = max(lo, total - MIN_N + 1), min(hi, total - 1)
    if "complementary" in reason:
        lo = max(lo, MIN_N)
        if others:
            hi = min(hi, total - MIN_N)
    return lo, hi


def attack(table, *, total, positives, ref=None):
    """Try to recover each hidden cell's count and share from the shown rows and the public totals.

    Returns the hidden cells whose count or share is determined (a list of labels; empty = protected).
    ``total`` and ``positives`` are the partition's number of students and of 1-outcomes (public totals);
    ``ref`` is ``(label, n, positives, shown)`` for a named reference level.

    Documented residual risk, not counted: a partition whose total equals its number of levels (every level
    has one student) is given away by the total and the list of levels, whatever is suppressed.
    """
    others = ref is None
    shown = table[~table["suppressed"]]
    hidden = table[table["suppressed"]]
    cells = [(str(r["level"]), r["suppression_reason"]) for _, r in hidden.iterrows()]
    t_n = total - int(shown["n"].sum())
    t_x = positives - round(float((shown["n"] * shown["estimate"]).sum()))
    if ref is not None:
        label, rn, rx, ref_shown = ref
        if ref_shown:
            t_n, t_x = t_n - rn, t_x - rx
        elif hidden["suppression_reason"].str.contains("every level suppressed").any():
            cells.append((label, "every level suppressed"))
        else:
            cells.append((label, f"n < {MIN_N}" if rn < MIN_N else "complementary"))
    if not cells or (len(shown) == 0 and total == len(cells)):
        return []
    ranges = [range(lo, hi + 1) for lo, hi in (_attacker_bounds(r, total, others) for _, r in cells)]
    disclosed = []
    for i, (label, _) in enumerate(cells):
        rest = _achievable_sums(ranges[:i] + ranges[i + 1 :])
        counts = [v for v in ranges[i] if 0 <= t_n - v < len(rest) and rest[t_n - v]]
        if len(counts) < 2:
            disclosed.append(f"{label} count")
            continue
        if positives in (0, total):
            continue  # every student has the same outcome: the overall share says so, not the table
        # with n_i = v the other hidden cells hold t_n - v students, whose 1-outcomes can be 0 .. t_n - v
        shares = {x / v for v in counts for x in range(max(0, t_x - (t_n - v)), min(v, t_x) + 1)}
        if len(shares) < 2:
            disclosed.append(f"{label} share")
    return disclosed


def _achievable_sums(ranges):
    """Boolean array: which totals a sum of one integer from each range can take (brute-force convolution)."""
    acc = np.array([True])
    for r in ranges:
        new = np.zeros(len(acc) + r.stop - 1, dtype=bool)
        for v in r:
            new[v : v + len(acc)] |= acc
        acc = new
    return acc


level_sizes = st.lists(st.integers(1, 40), min_size=2, max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=level_sizes, data=st.data(), ref_named=st.booleans())
def test_property_no_small_cell_shown_and_no_hidden_cell_recoverable(sizes, data, ref_named):
    positives = [data.draw(st.integers(0, n)) for n in sizes]
    df, reference = _students(sizes, positives, ref_named)
    t = gap_table(df, outcome="y", group="g", reference=reference, n_boot=0, min_n=MIN_N, kind="binary")
    truth = dict(zip([f"L{i}" for i in range(len(sizes))], sizes))
    # primary rule: nothing below the minimum is ever shown, on either side of a comparison
    shown = t[~t["suppressed"]]
    assert (shown["n"] >= MIN_N).all() and (shown["reference_n"] >= MIN_N).all()
    for _, r in t.iterrows():
        if truth[r["level"]] < MIN_N:
            assert r["suppressed"]
    assert t.loc[t["suppressed"], ["n", "reference_n", "estimate", "reference_estimate"]].isna().all().all()
    # attack: the shown rows, the flags and reasons, and the partition totals
    ref = ("L0", sizes[0], positives[0], bool((~t["suppressed"]).any())) if ref_named else None
    assert attack(t, total=sum(sizes), positives=sum(positives), ref=ref) == []


def test_attack_succeeds_without_complementary_suppression():
    """The attacker is not toothless: without the complementary rule it recovers the small cell."""
    df, _ = _students([4, 60, 25, 300], [1, 30, 10, 100], False)
    t = gap_table(df, outcome="y", group="g", n_boot=0)
    assert attack(t, total=389, positives=141) == []
    full = gap_table(df, outcome="y", group="g", n_boot=0, min_n=1)  # nothing suppressed
    primary_only = suppress(full.drop(columns=["suppressed", "suppression_reason"]), complementary=False)
    assert attack(primary_only, total=389, positives=141) == ["L0 count"]


def test_randomized_loop_over_many_partitions():
    rng = np.random.default_rng(0)
    for _ in range(150):
        k = int(rng.integers(2, 6))
        sizes = [int(v) for v in rng.choice([1, 2, 3, 5, 9, 10, 11, 12, 15, 20, 35], size=k)]
        pos = [int(rng.integers(0, n + 1)) for n in sizes]
        named = bool(rng.integers(0, 2))
        df, reference = _students(sizes, pos, named)
        t = gap_table(df, outcome="y", group="g", reference=reference, n_boot=0, kind="binary")
        ref = ("L0", sizes[0], pos[0], bool((~t["suppressed"]).any())) if named else None
        assert attack(t, total=sum(sizes), positives=sum(pos), ref=ref) == [], (sizes, pos, named)
        assert not ((~t["suppressed"]) & ((t["n"] < MIN_N) | (t["reference_n"] < MIN_N))).fillna(False).any()


def test_attack_enumeration_is_exhaustive_on_a_small_case():
    # hand check of the attacker on L0 = 3 (n < 10) + complement L1 = 12: T = 15 hidden students, L0 in 1..9
    # and L1 in 10..95 leave L0 anywhere in 1..5
    t = suppress(others_table([3, 12, 40, 50], shares=[1 / 3, 0.5, 0.5, 0.5]))
    assert t["suppressed"].tolist() == [True, True, False, False]
    counts = [(a, 15 - a) for a, b in itertools.product(range(1, 10), range(10, 106)) if a + b == 15]
    assert [a for a, _ in counts] == [1, 2, 3, 4, 5]
    assert attack(t, total=105, positives=1 + 6 + 20 + 25) == []


def test_fully_hidden_partition_gets_uninformative_reasons():
    # three levels of 9 students: all below the minimum. "n < 10" on each, with N = 27 public, pins each at 9.
    df, _ = _students([9, 9, 9], [3, 4, 5], False)
    t = gap_table(df, outcome="y", group="g", n_boot=0)
    assert t["suppressed"].all()
    assert t["suppression_reason"].eq("n < 10 or complementary (every level suppressed)").all()
    assert attack(t, total=27, positives=12) == []
    specific = t.assign(suppression_reason="n < 10")
    assert attack(specific, total=27, positives=12) == ["L0 count", "L1 count", "L2 count"]


def test_suppress_is_idempotent():
    df, _ = _students([4, 60, 25, 300], [1, 30, 10, 100], False)
    t = gap_table(df, outcome="y", group="g", n_boot=0)
    pd.testing.assert_frame_equal(suppress(t), t)
