"""Random-draw helpers of the synthetic districts: logits, intercepts, evidence ratings, ids and truths.

The evidence tables (:mod:`opportunity_research.synth.districts`) draw each piece of evidence as "good" or not
and then a rating row among the combinations on that side of the study's cut (:data:`ASSIGN` with
:data:`ASSIGN_GOOD`, ...: every combination of an instrument's ratings and whether it counts as good).

Examples
--------
>>> int(ASSIGN_GOOD.sum()), len(ASSIGN)
(10, 27)
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..intake.contract import EXPECTATION_ITEMS_OLD, EXPECTATION_REVERSED

__all__ = [
    "ASSIGN",
    "ASSIGN_GOOD",
    "ENG",
    "ENG_GOOD",
    "EXP_CUR",
    "EXP_CUR_GOOD",
    "EXP_OLD",
    "EXP_OLD_GOOD",
    "OBS",
    "OBS_GOOD",
    "OLD_NAMES",
    "expit",
    "group_truth",
    "logit",
    "make_ids",
    "mc_reps",
    "pick_rows",
    "rating_combos",
    "solve_intercept",
    "standardize",
]


def logit(p):
    """Log-odds of a probability.

    Examples
    --------
    >>> float(logit(0.5)), round(float(logit(0.75)), 4)
    (0.0, 1.0986)
    """
    return np.log(p / (1 - p))


def expit(x):
    """The logistic function, inverse of :func:`logit`.

    Examples
    --------
    >>> float(expit(0.0)), round(float(expit(logit(0.2))), 6)
    (0.5, 0.2)
    """
    return 1.0 / (1.0 + np.exp(-x))


def solve_intercept(lin, weights, target):
    """Intercept a with sum(w * expit(a + lin)) / sum(w) == target (bisection, vectorized).

    Examples
    --------
    >>> import numpy as np
    >>> a = solve_intercept(np.array([-1.0, 1.0]), np.array([1.0, 1.0]), 0.5)
    >>> abs(round(a, 6))
    0.0
    """
    lo, hi = -15.0, 15.0
    w = weights / weights.sum()
    for _ in range(80):
        mid = (lo + hi) / 2
        if (w * expit(mid + lin)).sum() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mc_reps(n, budget=2_000_000):
    """Monte Carlo replicates of a district's students for truth values: about ``budget`` draws in all.

    Examples
    --------
    >>> mc_reps(4000), mc_reps(100), mc_reps(10_000_000)
    (200, 200, 2)
    >>> mc_reps(40_000)
    50
    """
    return int(np.clip(budget // max(n, 1), 2, 200))


def rating_combos(n_items, levels):
    """Every combination of ``n_items`` ratings on ``levels``, one row each (int64).

    Examples
    --------
    >>> rating_combos(2, (0, 1)).tolist()
    [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    return np.array(list(product(levels, repeat=n_items)), dtype=np.int64)


def pick_rows(rng, table, good_mask, flags):
    """For each flag, a random row of `table` among rows where good_mask == flag.

    Examples
    --------
    >>> import numpy as np
    >>> table = rating_combos(2, (0, 1))
    >>> rows = pick_rows(np.random.default_rng(0), table, table.sum(1) == 2, np.array([True, False]))
    >>> rows[0].tolist(), int(rows[1].sum()) < 2, rows.dtype.name
    ([1, 1], True, 'int8')
    """
    good, bad = np.flatnonzero(good_mask), np.flatnonzero(~good_mask)
    idx = np.where(
        flags, good[rng.integers(0, len(good), len(flags))], bad[rng.integers(0, len(bad), len(flags))]
    )
    return table.astype(np.int8)[idx]  # ratings 0-5: one byte each (millions of rows at district scale)


def make_ids(prefix, n, width=6):
    """``prefix`` + zero-padded 1..n, as an Arrow-backed string array (about 14 bytes an id instead of a Python
    string's 60; indexing with integer arrays or masks works as on a NumPy array).

    Examples
    --------
    >>> list(make_ids("S", 3, 4))
    ['S0001', 'S0002', 'S0003']
    """
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), width=width, padding="0")
    return pd.arrays.ArrowStringArray(pc.binary_join_element_wise(prefix, digits, ""))


def standardize(values, groups):
    """``values`` standardized within each group (mean 0, sample standard deviation 1).

    Examples
    --------
    >>> standardize([1.0, 3.0, 10.0, 20.0], [3, 3, 4, 4]).round(4).tolist()
    [-0.7071, 0.7071, -0.7071, 0.7071]
    """
    s = pd.Series(values)
    g = s.groupby(groups)
    return ((s - g.transform("mean")) / g.transform("std")).to_numpy()


def group_truth(frame: pd.DataFrame, value: str) -> dict:
    """Expected means of `value` by subgroup level vs all other rows (the gap table's estimands).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"race_ethnicity": ["a", "a", "b", "b"], "low_income": [1, 0, 0, 0],
    ...                   "english_learner": 0, "disability": 0, "started_behind": 0, "v": [1.0, 0.0, 0.0, 0.0]})
    >>> t = group_truth(f, "v")
    >>> t["low_income"]["1"]["n"], float(t["low_income"]["1"]["difference"])
    (1, 1.0)
    >>> float(t["race_ethnicity"]["a"]["estimate"]), float(t["race_ethnicity"]["a"]["reference_estimate"])
    (0.5, 0.0)
    """
    out = {}
    total_n, total_sum = len(frame), frame[value].sum()
    for var in ("race_ethnicity", "low_income", "english_learner", "disability", "started_behind"):
        g = frame.groupby(var)[value].agg(["size", "sum"])
        lev = {}
        for level, (n, s) in g.iterrows():
            other_n = total_n - n
            est = s / n
            ref = (total_sum - s) / other_n if other_n else float("nan")
            lev[str(level)] = {
                "n": int(n),
                "estimate": est,
                "reference_estimate": ref,
                "difference": est - ref,
                "ratio": est / ref if ref else float("nan"),
            }
        out[var] = lev
    return out


#: Rating combinations of each instrument (assignments, observations, engagement, expectations current
#: and old) and whether each counts as good (the study's cut).
ASSIGN = rating_combos(3, (0, 1, 2))
ASSIGN_GOOD = ASSIGN.sum(1) >= 4
OBS = np.array(
    [
        (a, b, c, d, e, f)
        for a, b, c in product((0, 1), repeat=3)
        for d, e, f in product((1, 2, 3, 4), repeat=3)
    ],
    dtype=np.int64,
)  # ca1a ca1b ca1c ca2 ca3 col
OBS_GOOD = ((OBS[:, :3].sum(1) + (OBS[:, 3] - 1) + (OBS[:, 4] - 1) + (OBS[:, 5] - 1)) / 4) >= 2
ENG = rating_combos(4, (0, 1, 2, 3))
ENG_GOOD = ENG.sum(1) >= 8
EXP_CUR = rating_combos(4, tuple(range(6)))
EXP_CUR_GOOD = EXP_CUR.sum(1) >= 12
OLD_NAMES = list(EXPECTATION_ITEMS_OLD)
EXP_OLD = rating_combos(6, tuple(range(6)))
_rev = np.array([n in EXPECTATION_REVERSED for n in OLD_NAMES])
EXP_OLD_GOOD = np.where(_rev, 5 - EXP_OLD, EXP_OLD).sum(1) >= 18
