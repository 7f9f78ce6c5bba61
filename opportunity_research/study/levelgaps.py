"""Gaps and group means from performance levels: V gaps beside scale-score gaps, and HETOP means and SDs.

Two kinds of district use this module:

* a district with student results (``assessments``): the counts of students by performance level are
  tallied from them (:func:`level_counts_from_assessments`) and each group's V gap is shown beside its
  scale-score gap (:func:`score_gaps`), so a reader sees that the two agree where both exist;
* a district that brings only counts by level (the contract's ``level_counts`` table: counts by school,
  group, subject, year and level, as public state files publish them): the same V gaps and HETOP sections
  come from the counts alone (:func:`opportunity_research.disclosure.district.analyze_level_counts`, which also
  runs the joint disclosure control).

The statistics are :func:`opportunity_research.stats.ordinal.v_statistic` (Ho & Reardon 2012) and
:func:`opportunity_research.stats.ordinal.hetop` (Reardon, Shear, Castellano & Ho 2017). Tables are complete
(not suppressed); the columns that carry counts of students are ``n`` and ``reference_n`` (V gaps) and ``n``
(HETOP), which the publishing boundary's disclosure pass must treat as cells.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from ..stats.estimates import text_as_categories, text_back
from ..stats.ordinal import hetop, v_statistic
from . import panels
from .joins import positions_of, unique_ids
from .measures import id_positions
from .panels import roster_join

__all__ = [
    "LEVEL_COUNT_COLUMNS",
    "LEVEL_GAP_COLUMNS",
    "LEVEL_MEAN_COLUMNS",
    "hetop_means",
    "level_counts_from_assessments",
    "level_gaps",
    "score_gaps",
]

#: The tidy counts (the contract's ``level_counts`` table).
LEVEL_COUNT_COLUMNS = ("school_id", "subject", "school_year", "group", "performance_level", "n_students")
#: Columns of :func:`level_gaps`.
LEVEL_GAP_COLUMNS = (
    "subject",
    "school_year",
    "group",
    "level",
    "reference",
    "n",
    "reference_n",
    "v",
    "v_std_error",
    "v_ci_lower",
    "v_ci_upper",
    "score_gap",
    "score_gap_ci_lower",
    "score_gap_ci_upper",
    "levels_used",
    "note",
)
#: Columns of :func:`hetop_means`.
LEVEL_MEAN_COLUMNS = (
    "subject",
    "school_year",
    "school_id",
    "group",
    "n",
    "mean",
    "mean_se",
    "mean_ci_lower",
    "mean_ci_upper",
    "sd",
    "sd_se",
    "sd_ci_lower",
    "sd_ci_upper",
    "sd_shared",
    "note",
)
_VARIABLES = ("race_ethnicity", "low_income", "english_learner", "disability")


def _split(spec: pd.Series) -> tuple[pd.Series, pd.Series]:
    parts = spec.astype(str).str.partition("=")
    return parts[0].where(parts[1] == "=", "all"), parts[2].where(parts[1] == "=", "all")


def level_counts_from_assessments(
    assessments: pd.DataFrame,
    *,
    students: pd.DataFrame,
    window: str = "spring",
    variables=_VARIABLES,
    roster_at: np.ndarray | None = None,
) -> pd.DataFrame:
    """Counts of students by school, subject, year, group and performance level, tallied from student results.

    Students are grouped by their analysis-year characteristics (``students``); ``group`` is ``"all"`` or
    ``"<variable>=<level>"`` as in the contract's ``level_counts`` table (:data:`LEVEL_COUNT_COLUMNS`).
    ``roster_at``: each result's roster position, :func:`~.joins.roster_positions` of ``students`` and
    ``assessments``, when already made (the same counts; the results are not looked up again).

    Examples
    --------
    >>> a = pd.DataFrame({"student_id": ["a", "b", "c"], "subject": "math", "school_year": 2016,
    ...                   "window": "spring", "performance_level": [1, 2, 2]})
    >>> s = pd.DataFrame({"student_id": ["a", "b", "c"], "school_id": "S1", "low_income": [1, 1, 0]})
    >>> level_counts_from_assessments(a, students=s, variables=["low_income"])[["group", "performance_level",
    ...                                                                         "n_students"]].values.tolist()
    [['all', 1, 1], ['all', 2, 2], ['low_income=0', 2, 1], ['low_income=1', 1, 1], ['low_income=1', 2, 1]]
    """
    variables = [v for v in variables if v in students.columns]
    # the roster's text columns as categories: each part takes their codes, not their text, and groups on them (the
    # school ids given back as text at the end, in the same sorted order)
    students, text = text_as_categories(students, ["school_id", *variables])
    rows = (assessments["window"] == window) & assessments["performance_level"].notna()
    parts = []
    # one subject and school year at a time (every count lies in one): a fraction of the rows in memory at once
    for r in _joined_parts(
        assessments,
        rows,
        ["subject", "school_year", "performance_level"],
        students,
        ["school_id", *variables],
        roster_at=roster_at,
    ):
        parts += _level_count_parts(r, variables)
        del r
    keys = ["school_id", "subject", "school_year"]
    both = pd.concat(parts, ignore_index=True).astype({"group": "str"})
    out = (
        both.groupby([*keys, "group", "performance_level"], sort=True, observed=True)["n_students"]
        .sum()
        .astype(np.int64)
        .reset_index()
    )
    out["performance_level"] = out["performance_level"].astype(int)
    out = text_back(out, {c: dt for c, dt in text.items() if c == "school_id"})
    return out[list(LEVEL_COUNT_COLUMNS)].reset_index(drop=True)


def _level_count_parts(r: pd.DataFrame, variables) -> list[pd.DataFrame]:
    """The counts by (school, subject, year, level) of the joined rows ``r``, for all and for each variable's level."""
    keys = ["school_id", "subject", "school_year", "performance_level"]
    # one numbering of the rows' (school, subject, year, level) cells (the keys' codes combined, not a groupby of
    # the four columns: the counts are summed per cell and sorted at the end, in whatever order they come), then
    # one count per cell and level of each variable (np.bincount on integer codes): no long table of every row
    # once per variable
    cell, cells = panels.key_cells(r, keys)
    cells = cells.assign(n_students=np.bincount(cell[cell >= 0], minlength=len(cells)))
    parts = [cells.assign(group="all")]
    for v in variables:
        code, text = _level_codes(r[v])
        ok = (code >= 0) & (cell >= 0)
        k = max(len(text), 1)
        n = np.bincount(cell[ok] * k + code[ok], minlength=len(cells) * k)
        hit = np.flatnonzero(n)
        part = cells.iloc[hit // k].reset_index(drop=True)
        parts.append(part.assign(group=v + "=" + text[hit % k], n_students=n[hit]))
    return parts


def _joined_parts(
    assessments: pd.DataFrame,
    rows: pd.Series,
    cols: list[str],
    students: pd.DataFrame,
    columns,
    *,
    roster_at: np.ndarray | None = None,
):
    """``roster_join(assessments.loc[rows, ["student_id", *cols]], students, columns)`` without its ``student_id``,
    one (subject, school year) at a time (a small district's put together: :data:`~.panels.PARTS_MIN_ROWS`), in
    their sorted order (each part's rows in their order; rows without a subject or year, which no grouping on
    them keeps, left out). Only each row's position and roster position are held for every row at once; a roster
    with a missing or repeated id, or ids not comparable in Arrow, give one part: the whole join. ``roster_at``:
    :func:`~.joins.roster_positions` of ``students`` and ``assessments`` when already made (not looked up again)."""
    pos = np.flatnonzero(rows.to_numpy(dtype=bool))
    ids = students["student_id"]
    at = None
    if roster_at is not None:
        at = positions_of(roster_at, assessments, pos) if len(pos) else None
    elif len(pos) and unique_ids(ids):
        at = id_positions(ids, assessments["student_id"].take(pos))
    if at is None:
        yield roster_join(assessments.loc[rows, ["student_id", *cols]], students, columns).drop(
            columns="student_id"
        )
        return
    on = at >= 0
    # positions as 32-bit integers where they fit, and each row's part from the codes of the whole columns (no copy
    # of the rows' text): at 7.5 million results the int64 arrays and the text were 430 MB at once
    small = np.int32 if max(len(assessments), len(students)) < 2**31 else np.int64
    pos, at = pos[on].astype(small), at[on].astype(small)
    del on
    subj, subjects = pd.factorize(assessments["subject"], sort=True)
    subj = subj.astype(small)
    year, years = pd.factorize(assessments["school_year"], sort=True)
    year = year.astype(small)
    # parts numbered among the whole columns' values: in the same order as among the selected rows' alone
    ny = len(years) + 1
    part = np.where((subj >= 0) & (year >= 0), subj * ny + year, -1)[pos]
    del subj, year
    order = np.argsort(part, kind="stable")  # each part's rows in their order
    bounds = np.flatnonzero(np.diff(part[order], prepend=-2, append=-2))
    spans = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if part[order[lo]] >= 0]
    # each subject's value taken once, from the first row of its first part (a part's subject column is taken from
    # these few values by its rows' codes: a take from the whole column of text costs a pass over all of it)
    first = {}
    for lo, _ in spans:
        first.setdefault(int(part[order[lo]]) // ny, int(pos[order[lo]]))
    subject = assessments["subject"].take(list(first.values())).reset_index(drop=True)
    local = np.zeros(len(subjects), dtype=np.int64)
    local[list(first)] = np.arange(len(first))
    other = [c for c in cols if c != "subject"]
    columns = list(columns)
    done = False
    for lo, hi in _batched(spans, panels.PARTS_MIN_ROWS):
        take = order[lo:hi]
        out = assessments[other].take(pos[take]).reset_index(drop=True)
        if "subject" in cols:
            out.insert(
                cols.index("subject"), "subject", subject.take(local[part[take] // ny]).reset_index(drop=True)
            )
        for c in columns:
            out[c] = students[c].take(at[take]).reset_index(drop=True)
        done = True
        yield out
        del out
    if not done:  # no row: the join's empty frame
        yield roster_join(assessments.loc[rows, ["student_id", *cols]].iloc[:0], students, columns).drop(
            columns="student_id"
        )


def _batched(spans, min_rows: int):
    """Consecutive ``(lo, hi)`` spans put together until they hold ``min_rows`` rows (a small district's parts in
    one, as :func:`~.panels.subgroup_cells_parts` puts its parts together).

    Examples
    --------
    >>> list(_batched([(0, 2), (2, 5), (6, 9), (9, 10)], 4))
    [(0, 5), (6, 10)]
    """
    start = end = None
    for lo, hi in spans:
        if start is not None and lo != end:  # not consecutive: a gap (rows left out) closes the batch
            yield start, end
            start = None
        start, end = (lo if start is None else start), hi
        if end - start >= min_rows:
            yield start, end
            start = None
    if start is not None:
        yield start, end


def _level_text(x) -> str:
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x)


def _level_codes(x: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's level of ``x`` as text (``1.0`` -> ``"1"``): a code per row (-1: missing) into the texts.

    The text is made once per distinct value (values with the same text share a code).
    """
    codes, uniq = pd.factorize(x)
    texts = [_level_text(u) for u in uniq]  # one per distinct value, not per row
    tcode, text = pd.factorize(pd.Series(texts, dtype=object))
    codes = codes.astype(np.int64)
    return np.where(codes >= 0, np.asarray(tcode, dtype=np.int64)[np.maximum(codes, 0)], -1), np.asarray(
        text, dtype=object
    )


def _wide(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Counts summed over ``keys`` + group, one column per performance level (lowest first)."""
    w = counts.pivot_table(
        index=[*keys, "group"], columns="performance_level", values="n_students", aggfunc="sum", fill_value=0
    )
    return w.reindex(columns=sorted(w.columns))


def level_gaps(
    counts: pd.DataFrame, *, scores: pd.DataFrame | None = None, level: float = 0.95
) -> pd.DataFrame:
    """V gap of every group against all other students, per subject and year, from district counts by level.

    Counts are summed over schools. "All other students" are the ``"all"`` counts minus the group's (or, without
    ``"all"`` rows, the other levels of the same variable summed).

    Parameters
    ----------
    counts
        Tidy counts (:data:`LEVEL_COUNT_COLUMNS`).
    scores
        Optional scale-score gaps (:func:`score_gaps`) to show beside the V gaps.
    level
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        :data:`LEVEL_GAP_COLUMNS` (the gap-table layout: ``group`` is the variable, ``level`` its value,
        ``reference`` "all other students"): ``v`` (positive: the group scores higher than all other students, in pooled
        SD units), its ``v_std_error`` and interval, ``score_gap`` (standardized mean difference of scale scores,
        where given) and its interval, ``n`` and ``reference_n`` (students: counts), ``levels_used``, ``note``.

    Examples
    --------
    >>> c = pd.DataFrame({"school_id": "S1", "subject": "math", "school_year": 2016,
    ...                   "group": ["all"] * 3 + ["low_income=1"] * 3, "performance_level": [1, 2, 3] * 2,
    ...                   "n_students": [50, 80, 70, 30, 30, 10]})
    >>> t = level_gaps(c)
    >>> t[["group", "level", "n", "reference_n"]].values.tolist(), round(float(t["v"].iloc[0]), 2)
    ([['low_income', '1', 70, 130]], -0.91)
    """
    cols = list(LEVEL_GAP_COLUMNS)
    if counts is None or counts.empty:
        return pd.DataFrame(columns=cols)
    keys = ["subject", "school_year"]
    w = _wide(counts, keys)
    rows = []
    for (subject, year), part in w.groupby(
        level=[0, 1], sort=True
    ):  # one V fit per group (counts, not students)
        part = part.droplevel([0, 1])
        groups = [g for g in part.index if g != "all"]
        var, lv = _split(pd.Series(groups, dtype=object))
        for g, v, l_ in zip(groups, var, lv):
            a = part.loc[g].to_numpy(float)
            if "all" in part.index:
                b = part.loc["all"].to_numpy(float) - a
            else:
                same = [h for h, hv in zip(groups, var) if hv == v and h != g]
                b = part.loc[same].to_numpy(float).sum(axis=0) if same else np.zeros_like(a)
            if np.any(b < 0):
                r = {
                    "v": np.nan,
                    "std_error": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "levels_used": 0,
                    "note": "the group's counts exceed the 'all' counts at some level",
                }
            else:
                r = v_statistic(a, b, level=level)
            rows.append(
                {
                    "subject": subject,
                    "school_year": int(year),
                    "group": v,
                    "level": l_,
                    "reference": "all other students",
                    "n": int(a.sum()),
                    "reference_n": int(b.sum()),
                    "v": r["v"],
                    "v_std_error": r["std_error"],
                    "v_ci_lower": r["ci_lower"],
                    "v_ci_upper": r["ci_upper"],
                    "levels_used": r["levels_used"],
                    "note": r["note"],
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=cols)
    if scores is not None and len(scores):
        s = scores[
            [
                "subject",
                "school_year",
                "variable",
                "level",
                "score_gap",
                "score_gap_ci_lower",
                "score_gap_ci_upper",
            ]
        ].rename(columns={"variable": "group"})
        out = out.merge(s.astype({"level": str}), on=["subject", "school_year", "group", "level"], how="left")
    else:
        out[["score_gap", "score_gap_ci_lower", "score_gap_ci_upper"]] = np.nan
    return out[cols]


def score_gaps(
    assessments: pd.DataFrame,
    *,
    students: pd.DataFrame,
    window: str = "spring",
    variables=_VARIABLES,
    level: float = 0.95,
    roster_at: np.ndarray | None = None,
) -> pd.DataFrame:
    """Scale-score gaps in pooled-SD units: each group against all other students, per subject and year.

    Scores are standardized within grade, subject and year (scale scores of different grades are not on one
    scale); the gap is the difference of the group's and all other students' mean standardized score divided
    by their pooled SD, with the large-sample standard error ``sqrt(1/n1 + 1/n2 + d^2 / (2 (n1 + n2)))``
    (students treated as independent; the V gap beside it uses only the level counts). ``roster_at``: as in
    :func:`level_counts_from_assessments`.

    Returns
    -------
    pandas.DataFrame
        ``subject``, ``school_year``, ``variable``, ``level``, ``n``, ``reference_n``, ``score_gap``,
        ``score_gap_ci_lower``, ``score_gap_ci_upper``.

    Examples
    --------
    >>> a = pd.DataFrame({"student_id": list("abcdef"), "subject": "math", "school_year": 2016, "grade": 4,
    ...                   "window": "spring", "scale_score": [1.0, 2, 3, 4, 5, 6]})
    >>> s = pd.DataFrame({"student_id": list("abcdef"), "school_id": "S1", "low_income": [1, 1, 1, 0, 0, 0]})
    >>> round(float(score_gaps(a, students=s, variables=["low_income"]).query("level == '1'")["score_gap"].iloc[0]), 3)
    -3.0
    """
    variables = [v for v in variables if v in students.columns]
    students = text_as_categories(students, variables)[0]  # each part takes codes, not text (read as levels)
    rows = (assessments["window"] == window) & assessments["scale_score"].notna()
    keys = ["subject", "school_year", "variable"]
    # one subject and school year at a time (scores are standardized, and gaps taken, within one): a fraction of
    # the rows in memory at once, each group's sums over the same rows in the same order as on all rows
    grps, tots = [], []
    for r in _joined_parts(
        assessments,
        rows,
        ["subject", "school_year", "grade", "scale_score"],
        students,
        variables,
        roster_at=roster_at,
    ):
        grp, tot = _score_sums(r, variables)
        del r
        grps.append(grp)
        tots.append(tot)
    grp = pd.concat(grps, ignore_index=True) if len(grps) > 1 else grps[0]
    tot = pd.concat(tots, ignore_index=True) if len(tots) > 1 else tots[0]
    m = grp.merge(tot, on=keys)
    n1, n2 = m["n"], m["N"] - m["n"]
    m1, m2 = m["s"] / n1, (m["S"] - m["s"]) / n2.where(n2 > 0)
    v1 = (m["ss"] - n1 * m1**2) / (n1 - 1).where(n1 > 1)
    v2 = (m["SS"] - m["ss"] - n2 * m2**2) / (n2 - 1).where(n2 > 1)
    sp = np.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    d = (m1 - m2) / sp
    se = np.sqrt(1 / n1 + 1 / n2 + d**2 / (2 * (n1 + n2)))
    z = stats.norm.ppf(0.5 + level / 2)
    return pd.DataFrame(
        {
            "subject": m["subject"],
            "school_year": m["school_year"].astype(int),
            "variable": m["variable"],
            "level": m["level"],
            "n": n1,
            "reference_n": n2,
            "score_gap": d,
            "score_gap_ci_lower": d - z * se,
            "score_gap_ci_upper": d + z * se,
        }
    )


def _score_sums(r: pd.DataFrame, variables) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (subject, year, variable, level) of the joined rows ``r``: n, sum and sum of squares of the scores
    standardized within grade, subject and year; and per (subject, year, variable) the same over every level."""
    # the (subject, year, grade) groups as their numbers (panels.key_cells: the keys' codes combined, numbered as
    # the groupby of the three columns numbers them, a row with a missing key in none), not grouped on the columns
    cell = panels.key_cells(r, ["subject", "school_year", "grade"])[0]
    g = r["scale_score"].groupby(
        pd.Categorical.from_codes(cell, categories=pd.RangeIndex(int(cell.max(initial=-1)) + 1)),
        observed=True,
    )
    r = r.assign(z=(r["scale_score"] - g.transform("mean")) / g.transform("std"))
    r = r[np.isfinite(r["z"])]
    # One long table of every row once per variable (rows of a variable in row order), as integer keys that
    # sort as (subject, year, variable, level) do: the groupby sums then see the same groups in the same order
    # as on the table of text columns, so they are the same to the bit (pandas sums sorted groups with
    # reduceat, others with compensated summation), without a text or object column per row.
    cell, cells = panels.key_cells(r, ["subject", "school_year"])
    coded = {v: _level_codes(r[v]) for v in variables}
    names = sorted(variables)
    texts = sorted({t for _, text in coded.values() for t in text})
    nv, nt = max(len(names), 1), max(len(texts), 1)
    rank = {t: i for i, t in enumerate(texts)}
    z, parts, zs, masks = r["z"].to_numpy(), [], [], []
    for v, (code, text) in coded.items():
        ok = (code >= 0) & (cell >= 0)
        trank = np.array([rank[t] for t in text], dtype=np.int64)  # one per distinct level
        parts.append((cell[ok] * nv + names.index(v)) * nt + trank[code[ok]])
        zs.append(z[ok])
        # the variables whose levels are on the same rows (most often every row): one set of those rows
        same = next((m for m in masks if np.array_equal(m[0], ok)), None)
        if same is None:
            masks.append((ok, [names.index(v)]))
        else:
            same[1].append(names.index(v))
    tot = _total_sums(cell, z, masks, nv, [names.index(v) for v in coded])
    zz = np.concatenate(zs) if zs else np.zeros(0)
    key = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    del parts, zs, r, g, z, masks  # the long table holds every row once per variable: no second or third copy
    # the keys as a category of their sorted distinct values (found by counting the keys, which lie in a small
    # range, not by hashing every row's): the groupby's groups and each row's group are those of the keys
    seen = np.bincount(key, minlength=len(cells) * nv * nt) > 0
    key = pd.Categorical.from_codes(
        (np.cumsum(seen) - 1)[key], categories=pd.Index(np.flatnonzero(seen), dtype=np.int64)
    )
    long = pd.DataFrame({"key": key, "z": zz, "z2": zz**2}, copy=False)
    del key, zz, seen

    def decode(k: np.ndarray) -> pd.DataFrame:
        return (
            cells.iloc[k // (nv * nt)]
            .reset_index(drop=True)
            .assign(variable=pd.Series(np.asarray(names, dtype=object)[(k // nt) % nv], dtype="str"))
        )

    a = long.groupby("key", sort=True, observed=True).agg(n=("z", "size"), s=("z", "sum"), ss=("z2", "sum"))
    grp = decode(a.index.to_numpy()).assign(
        level=pd.Series(np.asarray(texts, dtype=object)[a.index.to_numpy() % nt], dtype="str"),
        n=a["n"].to_numpy(),
        s=a["s"].to_numpy(),
        ss=a["ss"].to_numpy(),
    )
    tot = decode(tot.index.to_numpy() * nt).assign(
        N=tot["N"].to_numpy(), S=tot["S"].to_numpy(), SS=tot["SS"].to_numpy()
    )
    return grp, tot


def _total_sums(cell: np.ndarray, z: np.ndarray, masks: list, nv: int, order: list) -> pd.DataFrame:
    """N, S and SS (rows, sum and sum of squares of ``z``) per ``cell * nv + variable``, sorted by it: of each
    variable, its rows with a level (``masks``: each set of rows, ``ok``, with the numbers of the variables whose
    rows they are; ``order``, their numbers in the order of the long table of :func:`_score_sums`). The same sums
    to the bit as a groupby of that long table (every variable's rows, one after the other), made once per set of
    rows rather than once per variable: each cell's sums run over its rows in their order, and by the same method.
    pandas sums groups whose rows come in sorted order (the long table's keys never decreasing) segment by
    segment, and others with compensated summation: a set of rows whose cells come in order but whose long
    table's keys do not gets one first row of a cell of its own, after every other, so that it is summed as the
    long table was (that row's sums left out).

    Examples
    --------
    >>> cell, z = np.array([0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0])
    >>> t = _total_sums(cell, z, [(np.array([True, True, True, False]), [0, 2]), (cell >= 0, [1])], 3, [0, 1, 2])
    >>> t.index.tolist(), t["N"].tolist(), t["S"].tolist()
    ([0, 1, 2, 3, 4, 5], [2, 2, 2, 1, 2, 1], [4.0, 4.0, 4.0, 2.0, 6.0, 2.0])
    """
    # the long table's keys (cell * nv + variable) in its order: never decreasing?
    ends, sorted_keys = {}, True
    for ok, numbers in masks:
        c = cell[ok]
        if len(c):
            sorted_keys = sorted_keys and bool((c[1:] >= c[:-1]).all())
            ends.update({i: (c[0] * nv + i, c[-1] * nv + i) for i in numbers})
    ends = [ends[i] for i in order if i in ends]
    sorted_keys = sorted_keys and all(a[1] <= b[0] for a, b in itertools.pairwise(ends))
    keys, sums = [], []
    for ok, numbers in masks:
        c, zk = cell[ok], z[ok]
        if not sorted_keys:  # compensated summation, as the long table's groups were summed
            c, zk = np.concatenate([[cell.max(initial=0) + 1], c]), np.concatenate([[0.0], zk])
        t = pd.DataFrame({"cell": c, "z": zk, "z2": zk**2}, copy=False)
        t = t.groupby("cell", sort=True).agg(N=("z", "size"), S=("z", "sum"), SS=("z2", "sum"))
        if not sorted_keys:
            t = t.iloc[:-1]
        for i in numbers:
            keys.append(t.index.to_numpy(dtype=np.int64) * nv + i)
            sums.append(t)
    if not sums:  # no variable: no rows
        return pd.DataFrame(
            {"N": np.zeros(0, np.int64), "S": np.zeros(0), "SS": np.zeros(0)}, index=np.zeros(0, np.int64)
        )
    key = np.concatenate(keys)
    return pd.concat(sums).set_axis(key).take(np.argsort(key, kind="stable"))


def hetop_means(
    counts: pd.DataFrame, *, year: int | None = None, shared_sd_below: int = 50, level: float = 0.95
) -> pd.DataFrame:
    """HETOP means and SDs per subject for schools (all students) and for the groups of each variable.

    One joint fit per subject and grouping (``"school"``, or a student-group variable whose levels partition the
    students) for ``year`` (default: the latest year). Groups with fewer than ``shared_sd_below`` students share
    one SD (a modelling choice for small groups, not suppression). Means and SDs are in units of the
    district's SD (population of the fitted groups: mean 0, SD 1). Rows use the cell layout of the other
    school x group tables: a school's row is ``school_id = <school>, group = "all"``; a district group's row is
    ``school_id = "all", group = "<variable>=<level>"``.

    Returns
    -------
    pandas.DataFrame
        :data:`LEVEL_MEAN_COLUMNS` (``n`` counts students).

    Examples
    --------
    >>> from scipy.stats import norm
    >>> cut = np.array([-0.8, 0.0, 0.9])
    >>> def n(m, s, size):
    ...     return np.round(size * np.diff(np.r_[0, norm.cdf(cut, m, s), 1])).astype(int)
    >>> rows = [(sch, "math", 2016, "all", lv + 1, k) for sch, m in (("S1", -0.3), ("S2", 0.3))
    ...         for lv, k in enumerate(n(m, 1.0, 4000))]
    >>> c = pd.DataFrame(rows, columns=list(LEVEL_COUNT_COLUMNS))
    >>> t = hetop_means(c)
    >>> t[["school_id", "group", "mean"]].round(2).values.tolist()
    [['S1', 'all', -0.29], ['S2', 'all', 0.29]]
    """
    cols = list(LEVEL_MEAN_COLUMNS)
    if counts is None or counts.empty:
        return pd.DataFrame(columns=cols)
    year = int(counts["school_year"].max()) if year is None else int(year)
    c = counts[counts["school_year"] == year]
    var, _ = _split(c["group"])
    parts = []
    for subject, cs in c.groupby("subject", sort=True):  # one joint fit per subject and grouping
        vs = var.loc[cs.index]
        sets = [("school", cs[vs == "all"].assign(group=lambda d: d["school_id"]))]
        sets += [(v, cs[vs == v]) for v in sorted(set(vs) - {"all"})]
        for grouping, part in sets:
            w = part.pivot_table(
                index="group", columns="performance_level", values="n_students", aggfunc="sum", fill_value=0
            )
            w = w.reindex(columns=sorted(w.columns))
            if len(w) < 2:
                continue
            try:
                fit = hetop(w, shared_sd=(w.sum(axis=1) < shared_sd_below).to_numpy(), level=level)
            except ValueError:
                continue  # fewer than two usable groups: nothing to compare
            g = fit.groups.assign(subject=subject, school_year=year)
            if grouping == "school":
                g = g.assign(school_id=g["group"], group="all")
            else:
                g = g.assign(school_id="all")
            if not fit.converged:
                g["note"] = g["note"].where(g["note"] != "", "the fit did not converge")
            parts.append(g)
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True).reindex(columns=cols)
