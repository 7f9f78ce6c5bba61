"""The yearly results panel under the trajectories, and the cell helpers every trajectory table shares.

One spring result per student, subject and school year (:func:`yearly_results`) with the students' school
and groups from the analysis-year roster; district and school subgroup cells with intervals clustered by
student (:func:`subgroup_cells`), ordered the same way in every table (:func:`order_rows`); the "needs"
notes of a trajectory that the data cannot give (:func:`needs_years`, :func:`needs_ge`). Definitions: see
:mod:`opportunity_research.study.trajectories`.

Examples
--------
>>> VARIABLES
('race_ethnicity', 'low_income', 'english_learner', 'disability')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..intake.contract import SUBJECTS_TESTED
from ..stats.estimates import subgroup_estimates, text_as_categories, text_back

__all__ = [
    "VARIABLES",
    "needs_ge",
    "needs_years",
    "order_rows",
    "side_by_side",
    "student_subject_key",
    "subgroup_cells",
    "with_pooled",
    "yearly_results",
]

#: Student groups the trajectories are broken down by (plus ``started_behind`` where it applies).
VARIABLES = ("race_ethnicity", "low_income", "english_learner", "disability")
_STUDENT_COLS = ("school_id",) + VARIABLES


def needs_years(window: str, found) -> str:
    """The "needs" note of catch-up rates and level movement when fewer than two years of results exist.

    Examples
    --------
    >>> needs_years("spring", [2016])
    'assessments.csv with spring results in at least two school years for catch-up rates and performance-level movement (found: 2016)'
    """
    got = ", ".join(str(y) for y in found) if len(found) else "none"
    return (
        f"assessments.csv with {window} results in at least two school years for catch-up rates and "
        f"performance-level movement (found: {got})"
    )


def needs_ge(window: str, found=None) -> str:
    """The "needs" note of growth in grade levels when ``grade_equivalent`` is missing (years found, if any).

    Examples
    --------
    >>> needs_ge("spring", [])
    'assessments.grade_equivalent (spring results in at least two school years) for growth in grade levels per year (found spring grade_equivalent in: no year)'
    """
    extra = (
        ""
        if found is None
        else f" (found {window} grade_equivalent in: " + (", ".join(str(y) for y in found) or "no year") + ")"
    )
    return (
        f"assessments.grade_equivalent ({window} results in at least two school years) for growth in grade "
        f"levels per year{extra}"
    )


def yearly_results(
    data: pd.DataFrame | None,
    *,
    students: pd.DataFrame | None = None,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
) -> pd.DataFrame:
    """One row per student, subject and school year from one testing window, with school and groups.

    Returns
    -------
    DataFrame
        ``student_id``, ``subject``, ``school_year`` (int), ``grade``, ``scale_score``, ``grade_level_cut``,
        ``performance_level``, ``grade_equivalent`` (NaN when not provided), ``at_grade_level`` (1.0 / 0.0),
        ``start_offset`` (``grade_equivalent - grade``), and from ``students``: ``school_id``,
        ``race_ethnicity``, ``low_income``, ``english_learner``, ``disability``.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> t = yearly_results(assessments, students=students)
    >>> sorted(t["subject"].unique())
    ['ela', 'math']
    """
    cols = [
        "student_id",
        "subject",
        "school_year",
        "grade",
        "scale_score",
        "grade_level_cut",
        "performance_level",
        "grade_equivalent",
        "at_grade_level",
        "start_offset",
        *_STUDENT_COLS,
    ]
    if data is None or len(data) == 0:
        return pd.DataFrame(columns=cols)
    rows = (data["window"] == window) & data["subject"].isin(list(subjects))
    # one copy of the rows and columns used (not of every column first)
    out = data.loc[
        rows,
        [
            "student_id",
            "subject",
            "school_year",
            "grade",
            "scale_score",
            "grade_level_cut",
            "performance_level",
        ],
    ]
    out["grade_equivalent"] = (
        data.loc[rows, "grade_equivalent"].astype(float).to_numpy()
        if "grade_equivalent" in data.columns
        else np.nan
    )
    out["school_year"] = out["school_year"].astype(np.int64)
    ok = out["scale_score"].notna() & out["grade_level_cut"].notna()
    out["at_grade_level"] = (out["scale_score"] >= out["grade_level_cut"]).astype(float).where(ok)
    out["start_offset"] = out["grade_equivalent"] - out["grade"].astype(float)
    if students is not None:
        if students["student_id"].duplicated().any():
            raise ValueError("students: student_id is not unique")
        keep = ["student_id"] + [c for c in _STUDENT_COLS if c in students.columns]
        # roster position of each result's student: the roster's ids (unique, first) are codes 0..n-1 of one
        # factorization of both id columns (hashed as Arrow text; no Python string per row)
        ids = pd.concat([students["student_id"], out["student_id"]], ignore_index=True)
        at = pd.factorize(ids)[0][len(students) :]
        on_roster = (
            len(at) and students["student_id"].notna().all() and ((at >= 0) & (at < len(students))).all()
        )
        if on_roster:
            # every result's student is on the roster: their columns taken by position, added to the rows
            # (what the left merge gives, without copying every column of the results into a new frame)
            for c in keep[1:]:
                out[c] = students[c].iloc[at].set_axis(out.index)
        else:
            # student_id is unique (checked above), so no validate= (it would sort the ids again)
            out = out.merge(students[keep], on="student_id", how="left")
    for c in _STUDENT_COLS:
        if c not in out.columns:
            out[c] = np.nan
    return out[cols].reset_index(drop=True)


def student_subject_key(frame: pd.DataFrame) -> np.ndarray:
    """One integer per (``student_id``, ``subject``) of ``frame``: a cheaper join key than the two text columns.

    Joining two tables cut from ``frame`` on this key and ``school_year`` pairs the same rows, in the same
    order, as joining them on the three columns (a missing id matches a missing id, as in a merge).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"student_id": ["a", "b", "a", "a"], "subject": ["ela", "ela", "ela", "math"]})
    >>> student_subject_key(f).tolist()
    [0, 1, 0, 2]
    """
    return (
        frame.groupby(["student_id", "subject"], sort=False, dropna=False, observed=True)
        .ngroup()
        .to_numpy()
        .astype(np.int64)
    )


def with_pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows per subject plus the same rows with ``subject == "all"`` (the subjects pooled).

    Examples
    --------
    >>> import pandas as pd
    >>> with_pooled(pd.DataFrame({"subject": ["ela", "math"], "v": [1, 2]}))["subject"].tolist()
    ['ela', 'math', 'all', 'all']
    """
    return pd.concat([frame, frame.assign(subject="all")], ignore_index=True)


def subgroup_cells(
    frame: pd.DataFrame,
    *,
    keys: list[str],
    variables,
    value: str | Sequence[str],
    kind: str,
    confidence: float,
    pooled: bool = False,
):
    """District and school rows of subgroup estimates, intervals clustered by student.

    ``pooled=True`` adds the cells of the subjects pooled (``subject == "all"``), as ``with_pooled(frame)``
    would, on only the columns the cells use. With a list of ``value`` columns, a list of tables, one per value
    (the frame prepared once for all of them).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"student_id": ["a", "b", "c", "d"], "subject": "ela", "school_id": ["S1", "S1", "S2", "S2"],
    ...                   "low_income": [1, 0, 1, 0], "at_grade_level": [1.0, 1.0, 0.0, 1.0]})
    >>> t = subgroup_cells(f, keys=["subject"], variables=["low_income"], value="at_grade_level", kind="share",
    ...                    confidence=0.95)
    >>> all_rows = order_rows(t, ["subject"]).query("group == 'all'")
    >>> all_rows[["school_id", "n_students", "estimate"]].values.tolist()
    [['all', 4, 0.75], ['S1', 2, 1.0], ['S2', 2, 0.5]]
    """
    # only the columns the cells use, and integer student ids: cheaper grouping
    values = [value] if isinstance(value, str) else list(value)
    used = [c for c in dict.fromkeys([*keys, "school_id", *variables, *values]) if c in frame.columns]
    frame = frame[used].assign(_sid=pd.factorize(frame["student_id"])[0])
    # text keys as categories, once (the results get the text back)
    frame, text = text_as_categories(frame, [*keys, "school_id", *variables])
    if pooled:
        # the pooled rows after the per-subject rows, "all" a category in sorted place (as the categories of
        # the text column with_pooled gives): the same cells, in the same order, from the same rows
        subj = frame["subject"].astype("category")
        cats = sorted({*subj.cat.categories, "all"})
        subj = subj.cat.set_categories(pd.Index(cats, dtype=subj.cat.categories.dtype))
        every = pd.Categorical.from_codes(np.full(len(frame), cats.index("all")), dtype=subj.dtype)
        frame = pd.concat([frame.assign(subject=subj), frame.assign(subject=every)], ignore_index=True)
        text.setdefault("subject", frame["subject"].cat.categories.dtype)
    # Cluster on each student's rows within a cell of ``keys`` (one id per student and cell) rather than on the
    # student: every cell below refines the cells of ``keys``, so its clusters (and their order of first row)
    # are the same, and its student-in-cell ids each fall in one cell, which cell_estimates pairs without
    # hashing every (cell, student) combination again.
    cell = frame.groupby(keys, sort=False, observed=True, dropna=False).ngroup().to_numpy().astype(np.int64)
    sid = frame["_sid"].to_numpy().astype(np.int64)
    frame["_sid"] = pd.factorize(cell * (int(sid.max(initial=0)) + 2) + (sid + 1))[0]
    outs = []
    for v in values:
        dist, sch = (
            subgroup_estimates(
                frame,
                keys=k,
                variables=variables,
                value=v,
                kind=kind,
                cluster="_sid",
                unit="_sid",
                confidence=confidence,
            )
            for k in (keys, keys + ["school_id"])
        )
        out = pd.concat(
            [text_back(dist.assign(school_id="all"), text), text_back(sch, text)], ignore_index=True
        )
        outs.append(out.rename(columns={"n_units": "n_students"}).drop(columns=["n_clusters"]))
    return outs[0] if isinstance(value, str) else outs


def side_by_side(cells: list[pd.DataFrame], names: list[str], keys: list[str]) -> pd.DataFrame:
    """The cells of several values (:func:`subgroup_cells` with a list of values) in one table: each value's
    ``estimate``, ``ci_lower`` and ``ci_upper`` named after it (``name``, ``name_ci_lower``, ``name_ci_upper``), on
    the rows of the first value's cells (its counts kept).

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"year": 1, "school_id": "all", "group": "all", "n": [4], "estimate": [0.5],
    ...                   "ci_lower": [0.1], "ci_upper": [0.9]})
    >>> side_by_side([a, a.assign(estimate=0.25)], ["up", "down"], ["year"]).columns.tolist()
    ['year', 'school_id', 'group', 'n', 'up', 'up_ci_lower', 'up_ci_upper', 'down', 'down_ci_lower', 'down_ci_upper']
    """
    on = keys + ["school_id", "group"]
    out = None
    for t, name in zip(cells, names, strict=True):
        cols = {"estimate": name, "ci_lower": f"{name}_ci_lower", "ci_upper": f"{name}_ci_upper"}
        t = t.rename(columns=cols)
        out = (
            t
            if out is None
            else out.merge(t[on + list(cols.values())], on=on, how="left", validate="one_to_one")
        )
    return out


def order_rows(out: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in the tables' order: subject (ELA, math, pooled), the other keys, district before schools, all
    students before groups.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"subject": ["all", "math", "ela"], "school_id": ["all", "S1", "all"],
    ...                   "group": "all", "variable": "all"})
    >>> order_rows(t, ["subject"])[["subject", "school_id"]].values.tolist()
    [['ela', 'all'], ['math', 'S1'], ['all', 'all']]
    """
    subj = {"ela": 0, "math": 1, "all": 2}
    out = out.assign(
        _subj=out["subject"].map(subj).fillna(3), _d=out["school_id"].ne("all"), _g=out["group"].ne("all")
    )
    rest = [k for k in keys if k != "subject"]
    out = out.sort_values(["_subj"] + rest + ["_d", "school_id", "_g", "variable", "group"])
    return out.drop(columns=["_subj", "_d", "_g"]).reset_index(drop=True)
