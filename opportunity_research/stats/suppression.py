"""Small-cell suppression: primary suppression of small groups and complementary suppression.

A reported cell (one row of a tidy table such as :func:`opportunity_research.stats.gaps.gap_table`'s) is
*suppressed* when it describes fewer than ``min_n`` students (**primary suppression**), or when its
count or value could otherwise be worked out from what the table shows (**complementary
suppression**). A suppressed row keeps its labels, gets ``suppressed = True`` and a
``suppression_reason``, and has every number set to missing, its counts included. Markers are
rendered only at display (:func:`opportunity_research.report.reporting.table_output`).

What is protected, and against what
-----------------------------------
The complementary rule works on one *partition* at a time: the rows sharing the values of ``by``
(in a gap table, one ``group`` variable), whose levels split that variable's students. The attacker
is assumed to know

* every number in the unsuppressed rows, the ``suppressed`` flags and the ``suppression_reason``
  texts (so which hidden cells are small and which are complements), and ``min_n``;
* the partition's total count ``N`` and its overall mean: in an "all other students" table any one
  shown row reveals them (``N = n + reference_n``, overall mean
  ``(n * estimate + reference_n * reference_estimate) / N``), and a report usually prints them anyway,
  so they are treated as public even when no row shows them.

Against a named reference level the reference is a cell of the partition too: it is shown through the
rows' ``reference_n`` and ``reference_estimate`` and hidden only when every row is.

From these, the attacker knows the total count and the total outcome of the hidden cells:
``T = N - sum(shown n)`` and ``T * mean_hidden = N * mean_all - sum(shown n * estimate)``. The rule
adds complements (the shown row with the smallest ``n`` first) until

1. no hidden cell is alone (one hidden cell would be recovered exactly as ``n = T`` and
   ``mean = mean_hidden``);
2. no hidden cell's count is pinned down by the bounds the reasons give: a cell hidden for
   ``n < min_n`` has ``1 <= n <= min_n - 1``; one hidden for ``reference n < min_n`` against all other
   students has ``N - min_n < n < N``; a complement has ``min_n <= n`` (and ``n <= N - min_n`` against
   all other students). For each hidden cell the feasible range given ``T`` and the other cells'
   bounds must hold at least two values (e.g. two cells of 1 student each, ``T = 2``, would reveal
   both counts);
3. the hidden cells' combined mean is not at a bound of the outcome (``bounds``, e.g. ``(0, 1)`` for a
   yes/no outcome): a combined share of 0% or 100% would reveal every hidden cell's share.

If every level of a partition ends up hidden and the reasons' bounds with ``N`` would still pin a count
(e.g. three levels of 9 students with ``N = 27``: each "n < 10" must be 9), the reasons of that partition
are replaced by one uninformative text, ``"n < 10 or complementary (every level suppressed)"``, so the
attacker only knows ``1 <= n <= N`` for each level.

Residual risks, not covered: a partition whose total equals its number of levels (one student each) is
given away by the total and the level list alone; students missing the group variable, whose count
and mean follow from comparing the partition's total with the overall total (``gap_table`` warns when
there are fewer than ``min_n`` of them); an outcome that is the same for every student is given
away by the overall mean; attacks that link different partitions or tables (e.g. cross-tabulating two group
variables, or comparing tables of overlapping populations such as two subjects), and bounds narrower
than exact recovery (an attacker can still bound a hidden count within its feasible range). With
weighted means the subtraction attack needs the weight totals, which are not shown; the checks use the
counts as if unweighted.

A district report does not rely on this per-table rule: :func:`opportunity_research.disclosure.district.analyze_district`
computes complete tables and :mod:`opportunity_research.disclosure.joint` decides suppression jointly over
everything the district publishes, with a linear-programming audit that covers the cross-table attacks
listed above. ``suppress`` remains the rule for a single table used on its own.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"group": "g", "level": ["a", "b", "c"], "n": [4, 40, 56],
...                   "reference": ALL_OTHERS, "reference_n": [96, 60, 44],
...                   "estimate": [0.5, 0.2, 0.3], "reference_estimate": [0.258, 0.313, 0.227]})
>>> s = suppress(t, min_n=10)
>>> s[["level", "n", "suppressed", "suppression_reason"]].to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
{'level': ['a', 'b', 'c'], 'n': [None, None, 56], 'suppressed': [True, True, False],
 'suppression_reason': ['n < 10', 'complementary: protects a', '']}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import ALL_OTHERS

__all__ = ["ALL_OTHERS", "LABEL_COLUMNS", "suppress"]

#: The ``reference`` value of rows compared with all other students.

#: Columns that label rows rather than measure them: never blanked (as in ``reporting.table_output``).
LABEL_COLUMNS = (
    "grade",
    "level",
    "reference",
    "school_year",
    "year",
    "group",
    "subject",
    "measure",
    "resource",
)

_TOL = 1e-9


def suppress(
    table: pd.DataFrame,
    *,
    n_columns: Sequence[str] = ("n", "reference_n"),
    value_columns: Iterable[str] | None = None,
    min_n: int = config.MIN_CELL_SIZE,
    complementary: bool = True,
    by: Sequence[str] | None = ("group",),
    level_column: str = "level",
    reference_column: str = "reference",
    estimate_column: str = "estimate",
    reference_estimate_column: str = "reference_estimate",
    bounds: tuple[float, float] | None = None,
    keys: Iterable[str] = LABEL_COLUMNS,
) -> pd.DataFrame:
    """Apply primary and complementary small-cell suppression to a tidy table (returns a copy).

    Parameters
    ----------
    table
        One row per cell. ``n_columns[0]`` is the row's own count; further count columns (e.g.
        ``reference_n``, the size of what the row is compared with) must also reach ``min_n``.
    n_columns
        Count columns; a row with any of them below ``min_n`` (or missing) is suppressed.
    value_columns
        Columns blanked in suppressed rows besides the counts. Default: every numeric column that is
        not in ``keys``, ``by`` or ``level_column``.
    min_n
        Smallest number of students a shown cell may describe.
    complementary
        Add complementary suppression within each partition (see the module docstring).
    by
        Columns whose values define a partition (default ``("group",)``; ``None``: the whole table).
        Columns absent from the table are ignored.
    level_column, reference_column, estimate_column, reference_estimate_column
        Where the level, the reference label, the estimate and the reference's estimate are. A partition
        whose ``reference`` is :data:`ALL_OTHERS` is an "all other students" comparison (``N = n +
        reference_n``); another reference value names a reference level outside the rows, whose count
        and estimate are ``reference_n`` and ``reference_estimate``; without a reference column the rows
        alone form the partition.
    bounds
        ``(low, high)`` range of the outcome (e.g. ``(0, 1)`` for yes/no outcomes). If the hidden cells'
        combined mean is at a bound, another complement is added.
    keys
        Label columns that are never blanked.

    Returns
    -------
    DataFrame
        ``table`` with ``suppressed`` (bool) and ``suppression_reason`` (``""`` when shown; e.g.
        ``"n < 10"``, ``"reference n < 10"``, ``"complementary: protects black"``; several reasons are
        joined with ``"; "``). In suppressed rows the counts and values are missing; integer count columns
        become nullable ``Int64``. Rows already flagged ``suppressed`` stay suppressed with their reason,
        so applying ``suppress`` to its own output changes nothing.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"group": "g", "level": ["a", "b"], "n": [4, 96], "reference": ALL_OTHERS,
    ...                   "reference_n": [96, 4], "estimate": [0.5, 0.3]})
    >>> suppress(t, min_n=10)["suppressed"].tolist()
    [True, True]
    """
    if min_n < 1:
        raise ValueError(f"suppress: min_n must be at least 1, got {min_n}")
    n_columns = [c for c in n_columns if c in table.columns]
    if not n_columns:
        raise KeyError("suppress: the table has none of the count columns given in n_columns")
    out = table.copy()
    by = [c for c in (by or ()) if c in out.columns]
    keys = set(keys) | set(by) | {level_column}
    if value_columns is None:
        value_columns = [
            c
            for c in out.columns
            if c not in keys
            and c not in n_columns
            and c != "suppressed"
            and pd.api.types.is_numeric_dtype(out[c])
            and not pd.api.types.is_bool_dtype(out[c])
        ]
    else:
        value_columns = [c for c in value_columns if c in out.columns]

    m = len(out)
    reasons: list[list[str]] = [[] for _ in range(m)]
    before = np.zeros(m, dtype=bool)
    if "suppressed" in out.columns:
        before = out["suppressed"].fillna(False).astype(bool).to_numpy()
        old = (
            out["suppression_reason"].fillna("").astype(str).to_numpy()
            if "suppression_reason" in out.columns
            else np.full(m, "")
        )
        for i in np.flatnonzero(before):
            reasons[i].extend((old[i] or "suppressed").split("; "))
    counts = {
        c: pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan) for c in n_columns
    }
    for c in n_columns:
        label = "n" if c == n_columns[0] else c.replace("_", " ")
        v = counts[c]
        for i in np.flatnonzero(np.isnan(v) & ~before):  # already suppressed rows keep their reason
            reasons[i].append(f"{label} missing")
        for i in np.flatnonzero((v < min_n) & ~before):
            reasons[i].append(f"{label} < {min_n}")
    primary = np.array([bool(r) for r in reasons], dtype=bool)

    hidden = primary.copy()
    if complementary and m:
        est = (
            pd.to_numeric(out[estimate_column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if estimate_column in out.columns
            else np.full(m, np.nan)
        )
        ref_est = (
            pd.to_numeric(out[reference_estimate_column], errors="coerce").to_numpy(
                dtype=float, na_value=np.nan
            )
            if reference_estimate_column in out.columns
            else np.full(m, np.nan)
        )
        ref_label = (
            out[reference_column].astype(str).to_numpy()
            if reference_column in out.columns
            else np.full(m, "")
        )
        levels = (
            out[level_column].astype(str).to_numpy()
            if level_column in out.columns
            else np.arange(m).astype(str)
        )
        parts = (
            [np.arange(m)]
            if not by
            else [np.asarray(ix) for ix in out.groupby(by, dropna=False, sort=False).indices.values()]
        )
        own = counts[n_columns[0]]
        ref_n = counts.get("reference_n", counts[n_columns[1]] if len(n_columns) > 1 else np.full(m, np.nan))
        for ix in parts:
            added = _complement(
                ix,
                own=own,
                ref_n=ref_n,
                est=est,
                ref_est=ref_est,
                ref_label=ref_label,
                levels=levels,
                primary=primary,
                before=before,
                reasons=reasons,
                min_n=min_n,
                bounds=bounds,
            )
            hidden[added] = True

    out["suppressed"] = hidden
    out["suppression_reason"] = ["; ".join(r) for r in reasons]
    for c in n_columns:
        v = counts[c]
        missing = np.isnan(v) | hidden
        if np.all(np.isnan(v) | (v == np.round(v))):  # whole counts: nullable integers
            out[c] = pd.array(np.where(np.isnan(v), 0, v).astype("int64"), dtype="Int64")
        out[c] = out[c].mask(missing)
    for c in value_columns:
        out[c] = out[c].mask(hidden)
    return out


def _complement(
    ix, *, own, ref_n, est, ref_est, ref_label, levels, primary, before, reasons, min_n, bounds
) -> list[int]:
    """Complementary suppression in one partition (rows ``ix``); returns the rows it adds."""
    n_rows = own[ix]
    if np.isnan(n_rows).any():
        if not (primary[ix] & ~before[ix]).any():
            return []  # suppressed before (e.g. suppress applied twice): nothing new to protect
        # counts unknown: nothing can be reasoned about; hide the whole partition
        if primary[ix].any():
            add = [int(i) for i in ix if not primary[i]]
            for i in add:
                reasons[i].append("complementary: counts missing in this group")
            return add
        return []
    labels = ref_label[ix]
    others = bool(len(ix)) and np.all(labels == ALL_OTHERS) and not np.isnan(ref_n[ix]).any()
    named = (
        not others
        and bool(len(ix))
        and np.all(labels == labels[0])
        and labels[0] not in ("", "nan")
        and not np.isnan(ref_n[ix]).any()
    )

    # Cells: the rows, plus the named reference level (shown through the rows' reference columns),
    # plus, when the "all others" total exceeds the rows, the students outside the listed levels.
    cn = list(n_rows)
    ce = list(est[ix])
    kind = ["row"] * len(ix)
    if others:
        total = float(np.max(n_rows + ref_n[ix]))
        mean_all = _nanmean_weighted(
            n_rows + ref_n[ix], (n_rows * est[ix] + ref_n[ix] * ref_est[ix]) / (n_rows + ref_n[ix])
        )
        rest = total - n_rows.sum()
        if rest > 0.5:
            cn.append(rest)
            ce.append((total * mean_all - np.nansum(n_rows * est[ix])) / rest)
            kind.append("rest")
    elif named:
        cn.append(float(ref_n[ix][0]))
        ce.append(float(ref_est[ix][0]))
        kind.append("reference")
        total = float(sum(cn))
    else:
        total = float(n_rows.sum())
    cn = np.array(cn, dtype=float)
    ce = np.array(ce, dtype=float)
    k = len(cn)
    hid = np.zeros(k, dtype=bool)
    hid[: len(ix)] = primary[ix]
    if not hid.any() and not (kind[-1] == "rest" and k > len(ix)):
        return []

    # attacker's bounds on each cell's count, from the reasons
    lo = np.ones(k)
    hi = np.full(k, total)
    ref_small = named and cn[-1] < min_n
    for j in range(len(ix)):
        r = reasons[ix[j]]
        if f"n < {min_n}" in r:
            hi[j] = min(hi[j], min_n - 1)
        if others and f"reference n < {min_n}" in r:
            lo[j] = max(lo[j], total - min_n + 1)
            hi[j] = min(hi[j], total - 1)
    if named:
        if ref_small:
            hi[-1] = min_n - 1
        else:
            lo[-1] = min_n

    protected = [str(levels[ix[j]]) for j in range(len(ix)) if hid[j]]
    if kind[-1] == "rest":
        protected.append("students outside the listed levels")
    elif ref_small:
        protected.append(str(labels[0]))
    tag = "complementary: protects " + ", ".join(protected)
    added: list[int] = []

    def sync():
        if kind[-1] == "rest":
            hid[-1] = True
        elif kind[-1] == "reference":
            hid[-1] = bool(hid[: len(ix)].all())

    sync()
    while True:
        h = np.flatnonzero(hid)
        if len(h) == 0:
            break
        count_bad, bad_value = len(h) == 1, None
        t = cn[h].sum()
        if len(h) > 1:
            a, b = lo[h], hi[h]
            flo = np.maximum(a, t - (b.sum() - b))
            fhi = np.minimum(b, t - (a.sum() - a))
            count_bad = bool(np.any(fhi - flo < 0.5))
        if bounds is not None and not np.isnan(ce[h]).any():
            mh = float(np.dot(cn[h], ce[h]) / t)
            bad_value = next((bnd for bnd in bounds if abs(mh - bnd) <= _TOL * max(1.0, abs(bnd))), None)
        if not count_bad and bad_value is None:
            break
        cand = [j for j in range(len(ix)) if not hid[j]]
        if bad_value is not None:
            # only a cell whose mean is off the bound moves the hidden mean off it
            useful = [j for j in cand if abs(ce[j] - bad_value) > _TOL * max(1.0, abs(bad_value))]
            cand = useful if useful or not count_bad else cand
        if not cand:
            if count_bad and hid[: len(ix)].all():
                # every level is hidden, yet the reasons' bounds and the total still pin a count: make the
                # reasons uninformative (an attacker then only knows 1 <= n <= N for each level)
                for j in range(len(ix)):
                    reasons[ix[j]][:] = [f"n < {min_n} or complementary (every level suppressed)"]
            break
        j = min(cand, key=lambda j: (cn[j], j))
        hid[j] = True
        # a complement passed the primary rule, which the attacker knows
        lo[j] = max(lo[j], min_n)
        if others:
            hi[j] = min(hi[j], total - min_n)
        reasons[ix[j]].append(tag)
        added.append(int(ix[j]))
        sync()
    return added


def _nanmean_weighted(w, x) -> float:
    ok = ~np.isnan(x)
    return float(np.dot(w[ok], x[ok]) / w[ok].sum()) if ok.any() else float("nan")
