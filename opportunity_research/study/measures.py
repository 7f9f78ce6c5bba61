"""The four resources: TNTP's scoring rules, classroom- and student-level access, and analysis frames.

Scoring follows TNTP's public common-metrics rules (the ``tntpmetrics`` R package); every cut point is
a keyword argument with the published default:

* grade-appropriate assignment: content + practice + relevance (each 0-2) >= ``cut=4`` of 6;
* strong instruction: IPG composite = (culture of learning + Core Action 1 + Core Action 2 + Core
  Action 3) / 4 on 0-3, where CA1 = number of yes on 1a-1c and the 1-4 ratings are rescaled as x - 1;
  strong when >= ``cut=2``;
* engaged moment: the four 0-3 engagement items sum to >= ``cut=8`` of 12;
* high expectations: current 4-item form sum >= ``cut_current=12`` of 20; old 6-item form (four items
  reverse-coded as 5 - x) sum >= ``cut_old=18`` of 30.

An evidence row with any item missing gets a missing score and is left out of the shares (it is not
counted as "no"). Access is measured per section (class) and given to each student through the
sections they are enrolled in; a student with two sections in one subject gets their mean.

Examples
--------
>>> import pandas as pd
>>> a = pd.DataFrame({"content": [2, 1, 2], "practice": [2, 1, None], "relevance": [0, 1, 2]})
>>> score_assignments(a)[["assignment_score", "grade_appropriate"]].to_dict("list")
{'assignment_score': [4.0, 3.0, nan], 'grade_appropriate': [1.0, 0.0, nan]}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import (
    CUT_POINTS,
    ENGAGEMENT_ITEMS,
    EXPECTATION_ITEMS_CURRENT,
    EXPECTATION_ITEMS_OLD,
    EXPECTATION_REVERSED,
    RESOURCES,
)
from ..intake.dataset import District
from . import labels as registry
from .joins import (
    id_positions,
    id_positions_of,
    increasing_ids,
    merge_positions,
    merge_unique,
    run_positions,
    unique_ids,
)

__all__ = [
    "CUT_POINTS",
    "RESOURCES",
    "RESOURCE_LABELS",
    "analysis_year",
    "classroom_access",
    "cluster_mean_ci",
    "default_cuts",
    "demands_vs_standards",
    "growth_frame",
    "id_positions",
    "resource_rates",
    "score_assignments",
    "score_engagement",
    "score_evidence",
    "score_expectations",
    "score_observations",
    "student_access",
]

#: The four resources' names, from the label registry (``labels.MEASURES``).
RESOURCE_LABELS = {r: registry.MEASURES[r] for r in RESOURCES}
_EVIDENCE = {  # resource -> (table, scorer, unit label)
    "grade_appropriate": ("assignments", "assignments"),
    "strong_instruction": ("observations", "observed lessons"),
    "engaged": ("engagement_surveys", "surveyed moments"),
    "high_expectations": ("teacher_surveys", "teacher survey responses"),
}


def _sum_items(df: pd.DataFrame, cols) -> pd.Series:
    """Each row's sum of the ``cols`` items, missing if any item is: ``df[cols].astype(float).sum(axis=1,
    min_count=len(cols))``, column by column (that sum adds the columns in their order) rather than across rows."""
    total = None
    for c in cols:
        x = df[c].to_numpy(dtype=float, na_value=np.nan)
        total = x.copy() if total is None else total + x  # NaN (a missing item) stays NaN
    if total is None:
        return df[list(cols)].astype(float).sum(axis=1, min_count=0)
    return pd.Series(total, index=df.index)


def _flag(score: pd.Series, cut: float) -> pd.Series:
    return (score >= cut).astype(float).where(score.notna())


def score_assignments(data: pd.DataFrame, *, cut: float = 4) -> pd.DataFrame:
    """Add ``assignment_score`` (0-6) and ``grade_appropriate`` (1.0/0.0; NaN if an item is missing).

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"content": [2, 1], "practice": [2, 1], "relevance": [1, None]})
    >>> score_assignments(a)[["assignment_score", "grade_appropriate"]].to_dict("list")
    {'assignment_score': [5.0, nan], 'grade_appropriate': [1.0, nan]}
    """
    out = data.copy(deep=False)  # copy-on-write: the new columns never touch data, its columns are not copied
    out["assignment_score"] = _sum_items(out, ["content", "practice", "relevance"])
    out["grade_appropriate"] = _flag(out["assignment_score"], cut)
    return out


def score_observations(data: pd.DataFrame, *, cut: float = 2.0) -> pd.DataFrame:
    """Add ``ca1`` (0-3), ``ipg_composite`` (0-3) and ``strong_instruction`` (1.0/0.0/NaN).

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> bool(score_observations(tables["observations"])["strong_instruction"].dropna().isin([0, 1]).all())
    True
    """
    out = data.copy()
    out["ca1"] = _sum_items(out, ["ca1a", "ca1b", "ca1c"])
    rescaled = out[["ca2", "ca3", "col"]].astype(float) - 1
    out["ipg_composite"] = (out["ca1"] + rescaled.sum(axis=1, min_count=3)) / 4
    out["strong_instruction"] = _flag(out["ipg_composite"], cut)
    return out


def score_engagement(data: pd.DataFrame, *, cut: float = 8) -> pd.DataFrame:
    """Add ``engagement_score`` (0-12) and ``engaged`` (1.0/0.0/NaN).

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> bool(score_engagement(tables["engagement_surveys"])["engaged"].dropna().isin([0, 1]).all())
    True
    """
    out = data.copy(deep=False)  # copy-on-write: the new columns never touch data, its columns are not copied
    out["engagement_score"] = _sum_items(out, list(ENGAGEMENT_ITEMS))
    out["engaged"] = _flag(out["engagement_score"], cut)
    return out


def score_expectations(data: pd.DataFrame, *, cut_current: float = 12, cut_old: float = 18) -> pd.DataFrame:
    """Add ``expectations_score`` and ``high_expectations`` (1.0/0.0/NaN) for both survey forms.

    Rows with ``form == "current"`` sum the four current items (0-20); rows with ``form == "old"`` sum the
    six old items after reverse-coding exp_toochallenging, exp_different, exp_overburden and exp_began as
    5 - x (0-30).

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> bool(score_expectations(tables["teacher_surveys"])["high_expectations"].dropna().isin([0, 1]).all())
    True
    """
    out = data.copy()
    cur_cols = [c for c in EXPECTATION_ITEMS_CURRENT]
    old_cols = [c for c in EXPECTATION_ITEMS_OLD]
    for c in set(cur_cols + old_cols) - set(out.columns):
        out[c] = np.nan
    old_items = out[old_cols].astype(float).copy()
    for c in EXPECTATION_REVERSED:
        old_items[c] = 5 - old_items[c]
    cur_score = _sum_items(out, cur_cols)
    old_score = old_items.sum(axis=1, min_count=len(old_cols)).where(old_items.notna().all(axis=1))
    is_old = out["form"].eq("old")
    out["expectations_score"] = cur_score.where(~is_old, old_score)
    cut = pd.Series(np.where(is_old, cut_old, cut_current), index=out.index)
    out["high_expectations"] = (
        (out["expectations_score"] >= cut).astype(float).where(out["expectations_score"].notna())
    )
    return out


def default_cuts() -> dict[str, float]:
    """TNTP's published cut points, by name (a fresh dict each call).

    Examples
    --------
    >>> default_cuts()["grade_appropriate"], default_cuts()["engaged"]
    (4, 8)
    """
    return {k: v[0] for k, v in CUT_POINTS.items()}


def score_evidence(district: District, *, cuts: dict | None = None) -> dict[str, pd.DataFrame]:
    """Score every evidence table of ``district``; returns {resource: scored table}.

    ``cuts`` may override ``grade_appropriate`` (4), ``strong_instruction`` (2), ``engaged`` (8),
    ``high_expectations_current`` (12) and ``high_expectations_old`` (18).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> sorted(score_evidence(d))
    ['engaged', 'grade_appropriate', 'high_expectations', 'strong_instruction']
    """
    cuts = cuts or {}
    return {
        "grade_appropriate": score_assignments(district.assignments, cut=cuts.get("grade_appropriate", 4)),
        "strong_instruction": score_observations(
            district.observations, cut=cuts.get("strong_instruction", 2)
        ),
        "engaged": score_engagement(district.engagement_surveys, cut=cuts.get("engaged", 8)),
        "high_expectations": score_expectations(
            district.teacher_surveys,
            cut_current=cuts.get("high_expectations_current", 12),
            cut_old=cuts.get("high_expectations_old", 18),
        ),
    }


def analysis_year(district: District) -> int:
    """The school year the classroom evidence describes.

    The year set when the district was processed (``opportunity-research process --analysis-year YEAR``,
    recorded as ``analysis_year`` in the manifest), else the latest ``classrooms.school_year``. Years are
    named by the calendar year they start in (2016 = 2016-17). Growth models use that year's fall and
    spring scores; "started behind" uses its fall score (else the prior spring).

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.intake.dataset import District
    >>> d = District("x", {"classrooms": pd.DataFrame({"school_year": [2015, 2016]})})
    >>> analysis_year(d), analysis_year(District("x", d.tables, {"analysis_year": 2015}))
    (2016, 2015)
    """
    year = (district.manifest or {}).get("analysis_year")
    return int(year) if year is not None else int(district.classrooms["school_year"].max())


def classroom_access(
    district: District,
    *,
    cuts: dict | None = None,
    hours_per_year: float = config.HOURS_PER_SUBJECT_YEAR,
    scored: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """One row per section: evidence counts, the share with each resource, hours without it, composition.

    Parameters
    ----------
    district
        Processed district (:func:`~opportunity_research.intake.dataset.load_district`).
    cuts
        Optional cut points: keys ``grade_appropriate``, ``strong_instruction``, ``engaged``,
        ``high_expectations_current``, ``high_expectations_old``.
    hours_per_year
        Class hours per subject and year (default 180).
    scored
        Optional :func:`score_evidence` of ``district`` with these ``cuts`` (scored once for this and
        :func:`resource_rates`).

    Returns
    -------
    DataFrame
        ``classroom_id``, ``school_id``, ``subject``, ``grade``, ``n_students``; for each resource ``r``:
        ``n_<r>`` (evidence rows scored), ``r`` (share 0-1, NaN without evidence) and
        ``hours_without_<r>`` (``(1 - share) * hours_per_year``); ``never_grade_appropriate`` (1.0 when the
        section had rated assignments and none was grade-appropriate); ``share_students_of_color``,
        ``share_low_income``, ``majority_students_of_color``, ``majority_low_income``.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> c = classroom_access(d)
    >>> len(c) == len(tables["classrooms"]), [r in c.columns for r in RESOURCES]
    (True, [True, True, True, True])
    """
    scored = scored if scored is not None else score_evidence(district, cuts=cuts)
    out = district.classrooms[["classroom_id", "school_id", "subject", "grade"]].copy()
    enr = merge_unique(
        district.enrollments,
        district.students[["student_id", "race_ethnicity", "low_income"]],
        on="student_id",
    )
    enr["student_of_color"] = (enr["race_ethnicity"] != "white").astype(float)
    comp = enr.groupby("classroom_id").agg(
        n_students=("student_id", "size"),
        share_students_of_color=("student_of_color", "mean"),
        share_low_income=("low_income", "mean"),
    )
    out = out.join(comp, on="classroom_id")
    out["n_students"] = out["n_students"].fillna(0).astype(np.int64)
    for r, df in scored.items():
        df = df.dropna(subset=[r]).dropna(subset=["classroom_id"])
        agg = df.groupby("classroom_id")[r].agg(["size", "mean", "sum"])
        out[f"n_{r}"] = out["classroom_id"].map(agg["size"]).fillna(0).astype(np.int64)
        out[r] = out["classroom_id"].map(agg["mean"])
        out[f"hours_without_{r}"] = (1 - out[r]) * hours_per_year
        if r == "grade_appropriate":
            out["never_grade_appropriate"] = (
                (out["classroom_id"].map(agg["sum"]) == 0).astype(float).where(out[f"n_{r}"] > 0)
            )
    out["majority_students_of_color"] = (
        (out["share_students_of_color"] > 0.5).astype(float).where(out["share_students_of_color"].notna())
    )
    out["majority_low_income"] = (
        (out["share_low_income"] > 0.5).astype(float).where(out["share_low_income"].notna())
    )
    return out


def _standardized(assess: pd.DataFrame) -> pd.Series:
    g = assess.groupby(["subject", "grade", "window", "school_year"])["scale_score"]
    return (assess["scale_score"] - g.transform("mean")) / g.transform("std")


def _started_behind(district: District, year: int) -> pd.DataFrame:
    """Per student and subject: 1 if the fall score of ``year`` (else the prior spring) is below the cut."""
    a = district.assessments
    tested = a["subject"].isin(["ela", "math"])
    cols = ["student_id", "subject"]
    used = cols + ["scale_score", "grade_level_cut"]  # copies of only these columns of the rows used
    fall = a.loc[tested & (a["school_year"] == year) & (a["window"] == "fall"), used]
    prior = a.loc[tested & (a["school_year"] == year - 1) & (a["window"] == "spring"), used]
    f = fall.assign(b=(fall["scale_score"] < fall["grade_level_cut"]).astype(float))[cols + ["b"]]
    p = prior.assign(b=(prior["scale_score"] < prior["grade_level_cut"]).astype(float))[cols + ["b"]]
    both = f.merge(p, on=cols, how="outer", suffixes=("", "_prior"))
    both["started_behind"] = both["b"].fillna(both["b_prior"])
    return both[cols + ["started_behind"]]


def _with_started_behind(frame: pd.DataFrame, district: District, year: int) -> pd.DataFrame:
    """``frame.merge(_started_behind(district, year), on=["student_id", "subject"], how="left")``.

    The same table, made on roster positions when every result used is of a student on the roster (unique ids)
    with one fall (and one prior spring) result per subject: each row's status is looked up by its student's
    roster position and subject, without the merges on the ids' text. Otherwise the merges are made.
    """
    a, roster = district.assessments, district.students["student_id"]
    keys = at = None
    if len(frame) and unique_ids(roster):
        subjects = ("ela", "math")

        def subject_codes(subject: pd.Series) -> np.ndarray:  # each row's subject of subjects (-1: another)
            s = np.full(len(subject), -1, dtype=np.int64)
            for i, name in enumerate(subjects):
                s[(subject == name).to_numpy(dtype=bool, na_value=False)] = i
            return s

        # the results' subjects as codes, the whole column's once: the selected rows' are taken from them (not
        # their text, which took most of this at a million students)
        tested = subject_codes(a["subject"])
        rows = [
            np.flatnonzero((tested >= 0) & ((a["school_year"] == y) & (a["window"] == window)).to_numpy())
            for y, window in ((year, "fall"), (year - 1, "spring"))
        ]
        parts = [(a["student_id"].take(r), tested[r]) for r in rows]
        parts.append((frame["student_id"], subject_codes(frame["subject"])))
        # every id's roster position from one hash table of the roster (the fall and prior spring results', the
        # frame's)
        found = id_positions_of(roster, [ids for ids, _ in parts])
        if found is not None:
            # roster position * 2 + subject (-1: not on the roster or not a tested subject)
            codes = [
                np.where((pos >= 0) & (s >= 0), pos * len(subjects) + s, -1)
                for pos, (_, s) in zip(found, parts, strict=True)
            ]
            keys, status, at = [], [], codes[2]
            for r, k in zip(rows, codes[:2], strict=True):
                if (k < 0).any() or (len(k) and np.bincount(k).max() > 1):
                    keys = None  # a result of a student not on the roster, or repeated: the merges
                    break
                score, cut = (a[c].take(r).to_numpy(dtype=float) for c in ("scale_score", "grade_level_cut"))
                keys.append(k)
                status.append((score < cut).astype(float))
    if keys is None or at is None:
        return frame.merge(_started_behind(district, year), on=["student_id", "subject"], how="left")
    size = len(roster) * 2 + 1  # the last slot: rows without a key (no status)
    fall, prior = np.full(size, np.nan), np.full(size, np.nan)
    fall[keys[0]], prior[keys[1]] = status
    has_fall = np.zeros(size, dtype=bool)
    has_fall[keys[0]] = True
    at = np.where(at >= 0, at, size - 1)
    out = frame.reset_index(drop=True)
    out["started_behind"] = np.where(has_fall[at], fall[at], prior[at])
    return out


def student_access(
    district: District,
    *,
    cuts: dict | None = None,
    classrooms: pd.DataFrame | None = None,
    hours_per_year: float = config.HOURS_PER_SUBJECT_YEAR,
) -> pd.DataFrame:
    """One row per student and tested subject (ELA, math): the student's access to each resource.

    Returns
    -------
    DataFrame
        ``student_id``, ``subject``, ``classroom_id`` (the student's section in that subject; the first if
        several), ``school_id``, ``grade``, ``race_ethnicity``, ``low_income``, ``english_learner``,
        ``disability``, ``started_behind`` (1.0 below grade level on the fall test of the analysis year, or
        the prior spring if no fall score; NaN if neither), the four resource shares and
        ``hours_without_<resource>``.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> s = student_access(d)
    >>> sorted(s["subject"].unique()), s[list(RESOURCES)].stack().between(0, 1).all()
    (['ela', 'math'], True)
    """
    cls = (
        classrooms
        if classrooms is not None
        else classroom_access(district, cuts=cuts, hours_per_year=hours_per_year)
    )
    cls = cls[cls["subject"].isin(["ela", "math"])]
    keep = ["classroom_id", "subject", *RESOURCES]
    enr = merge_unique(district.enrollments, cls[keep], on="classroom_id", how="inner")
    st = district.students[
        ["student_id", "school_id", "grade", "race_ethnicity", "low_income", "english_learner", "disability"]
    ]
    per, at = _per_student_subject(
        enr, st["student_id"], classroom_id=("classroom_id", "first"), **{r: (r, "mean") for r in RESOURCES}
    )
    for r in RESOURCES:
        per[f"hours_without_{r}"] = (1 - per[r]) * hours_per_year
    joined = merge_positions(per, st, on="student_id", positions=at)[0]
    out = _with_started_behind(joined, district, analysis_year(district))
    lead = [
        "student_id",
        "subject",
        "classroom_id",
        "school_id",
        "grade",
        "race_ethnicity",
        "low_income",
        "english_learner",
        "disability",
        "started_behind",
    ]
    return out[lead + [c for c in out.columns if c not in lead]]


def _per_student_subject(
    enr: pd.DataFrame, roster: pd.Series, **spec
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """``enr.groupby(["student_id", "subject"], sort=False).agg(**spec).reset_index()`` and each of its rows'
    student's position on the roster ``roster`` (None when not found so).

    When every row's student is on the roster (unique ids, found in one Arrow hash table) and has a subject, the
    rows are grouped on integer codes of (roster position, subject) instead of the two text columns: the groups
    are numbered by first row either way, so they are the same groups in the same order, each reduced over the same
    rows in the same order (the same numbers), and the keys are their first rows'. Otherwise on the text.

    Examples
    --------
    >>> enr = pd.DataFrame({"student_id": ["b", "a", "b"], "subject": ["ela", "ela", "ela"], "x": [1.0, 2.0, 4.0]})
    >>> per, at = _per_student_subject(enr, pd.Series(["a", "b"]), x=("x", "mean"))
    >>> per.values.tolist(), at.tolist()
    ([['b', 'ela', 2.5], ['a', 'ela', 2.0]], [1, 0])
    """
    at = id_positions(roster, enr["student_id"]) if len(enr) and unique_ids(roster) else None
    subject = pd.factorize(enr["subject"])[0] if at is not None else None
    if at is None or (at < 0).any() or (subject < 0).any():
        return enr.groupby(["student_id", "subject"], sort=False).agg(**spec).reset_index(), None
    # numbered by first row, as groupby's groups
    cell = pd.factorize(at * (int(subject.max()) + 1) + subject)[0]
    first = np.flatnonzero(np.diff(np.maximum.accumulate(cell), prepend=-1) > 0)  # each group's first row
    per = enr.groupby(cell, sort=False).agg(**spec).reset_index(drop=True)
    keys = enr[["student_id", "subject"]].take(first).reset_index(drop=True)
    return pd.concat([keys, per], axis=1), at[first]


def _sorted_codes(values) -> np.ndarray:
    """Integer codes of ``values`` numbered in the sorted order of the distinct values, -1 where missing.

    The codes of ``pd.factorize(values, sort=True)``: an Arrow text column is factorized as Arrow text (no
    Python string per row), in the order Python sorts its strings (code points, as UTF-8 bytes sort).

    Examples
    --------
    >>> _sorted_codes(pd.Series(["b", None, "a", "b"], dtype="str")).tolist()
    [1, -1, 0, 1]
    """
    x = values if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    return pd.factorize(x, sort=True)[0].astype(np.int64)


def cluster_mean_ci(values, clusters, *, confidence: float = 0.95) -> tuple[float, float, float, int, int]:
    """Mean of ``values`` with a cluster-robust (linearization) interval.

    Returns ``(estimate, ci_lower, ci_upper, n, n_clusters)``. The variance is the usual ratio-estimator
    sandwich: ``G/(G-1) * sum_g (s_g - mean * m_g)^2 / M^2`` with cluster sums ``s_g`` and sizes ``m_g``,
    and a t quantile on ``G - 1`` degrees of freedom. For 0/1 values (a share) the interval is Wilson's on
    the effective sample size ``n / deff`` (design effect ``max(1, sandwich / binomial variance)``) with that
    t quantile, so it stays inside 0-1 and has positive width even when every value is 0 or 1.

    >>> est, lo, hi, n, g = cluster_mean_ci([1, 0, 1, 1, 0, 0], ["a", "a", "b", "b", "c", "c"])
    >>> round(est, 3), n, g
    (0.5, 6, 3)

    Examples
    --------
    >>> est, lo, hi, n, g = cluster_mean_ci([1, 0, 1, 1, 0, 0], ["a", "a", "b", "b", "c", "c"])
    >>> round(est, 3), n, g, lo < est < hi
    (0.5, 6, 3, True)
    """
    # the clusters as integer codes numbered in their sorted order (-1: missing), so that grouping on the codes
    # gives the groups, and their order, of grouping on the values, without a Python object per row
    return _coded_mean_ci(values, _sorted_codes(clusters), confidence=confidence)


def _coded_mean_ci(values, c: np.ndarray, *, confidence: float = 0.95):
    """:func:`cluster_mean_ci` on clusters given as integer codes in the clusters' sorted order (-1: missing)."""
    from scipy import stats

    v = pd.Series(np.asarray(values, dtype=float))
    ok = v.notna().to_numpy() & (c >= 0)
    v, c = v[ok], c[ok]
    n = len(v)
    if n == 0:
        return (np.nan, np.nan, np.nan, 0, 0)
    est = float(v.mean())
    grp = v.groupby(c)
    s, m = grp.sum().to_numpy(), grp.size().to_numpy()
    g = len(s)
    if g < 2:
        return (est, np.nan, np.nan, n, g)
    var = g / (g - 1) * np.sum((s - est * m) ** 2) / n**2
    tq = stats.t.ppf(0.5 + confidence / 2, g - 1)
    if v.isin([0.0, 1.0]).all():
        from ..stats.estimates import wilson_interval

        vbin = est * (1 - est) / n
        deff = max(1.0, var / vbin) if vbin > 0 else 1.0
        lo, hi = wilson_interval(est * n / deff, n / deff, critical=tq)
        return (est, float(lo), float(hi), n, g)
    half = tq * np.sqrt(var)
    return (est, est - half, est + half, n, g)


def resource_rates(
    district: District,
    *,
    cuts: dict | None = None,
    by_subject: bool = False,
    hours_per_year: float = config.HOURS_PER_SUBJECT_YEAR,
    scored: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """District-wide share of evidence with each resource (the study's headline figures), with intervals.

    Shares are pooled over evidence rows (e.g. all rated assignments); intervals are cluster-robust by
    section. ``high_expectations`` is the share of teacher survey responses (one per section) that hold
    high expectations. ``scored``: optional :func:`score_evidence` of ``district`` with these ``cuts``.

    Returns
    -------
    DataFrame
        ``resource``, ``label``, ``subject`` ("all" unless ``by_subject``), ``unit`` (what was counted),
        ``n`` (evidence rows), ``n_classrooms``, ``estimate``, ``ci_lower``, ``ci_upper``,
        ``hours_with`` and ``hours_without`` (per subject and year, from ``estimate``).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> r = resource_rates(d)
    >>> r[["resource", "subject", "n"]].head(2).to_dict("list")
    {'resource': ['grade_appropriate', 'strong_instruction'], 'subject': ['all', 'all'], 'n': [783, 187]}
    """
    scored = scored if scored is not None else score_evidence(district, cuts=cuts)
    subj = district.classrooms.set_index("classroom_id")["subject"]
    rows = []
    for r, df in scored.items():
        parts = [("all", df)]
        if by_subject:  # the subject of each row's classroom (only the per-subject rows use it)
            df = df.assign(subject=df["classroom_id"].map(subj))
            parts += [(s, g) for s, g in df.groupby("subject")]
        for s, part in parts:
            est, lo, hi, n, g = cluster_mean_ci(part[r], part["classroom_id"])
            rows.append(
                {
                    "resource": r,
                    "label": RESOURCE_LABELS[r],
                    "subject": s,
                    "unit": _EVIDENCE[r][1],
                    "n": n,
                    "n_classrooms": g,
                    "estimate": est,
                    "ci_lower": lo,
                    "ci_upper": hi,
                    "hours_with": est * hours_per_year,
                    "hours_without": (1 - est) * hours_per_year,
                }
            )
    return pd.DataFrame(rows)


def demands_vs_standards(district: District) -> pd.DataFrame:
    """Share of student work that met the assignment's demands vs that met grade-level standards.

    Returns
    -------
    DataFrame
        ``measure`` (``met_demands``, ``met_grade_level``), ``label``, ``n`` (work samples),
        ``n_classrooms``, ``estimate``, ``ci_lower``, ``ci_upper`` (cluster-robust by section).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> demands_vs_standards(d)["measure"].tolist()
    ['met_demands', 'met_grade_level']
    """
    ws, cls = district.work_samples, _work_sample_classrooms(district)
    if cls is None:  # the assignments' ids are not unique (or not comparable): the merge
        ws = ws.merge(district.assignments[["assignment_id", "classroom_id"]], on="assignment_id", how="left")
        cls = _sorted_codes(ws["classroom_id"])
    rows = []
    for m in ("met_demands", "met_grade_level"):
        label = registry.MEASURES[m]
        est, lo, hi, n, g = _coded_mean_ci(ws[m], cls)
        rows.append(
            {
                "measure": m,
                "label": label,
                "n": n,
                "n_classrooms": g,
                "estimate": est,
                "ci_lower": lo,
                "ci_upper": hi,
            }
        )
    return pd.DataFrame(rows)


def _work_sample_classrooms(district: District) -> np.ndarray | None:
    """Each work sample's classroom (its assignment's) as a code in the classrooms' sorted order, -1 where
    missing: the clusters of ``work_samples.merge(assignments, on="assignment_id", how="left")["classroom_id"]``,
    found by each id's position among the assignments' ids, not by a merge on the id text. None when the
    assignments' ids are missing, repeated or not comparable with the work samples' in Arrow."""
    ws, a = district.work_samples, district.assignments
    ids = a["assignment_id"]
    if not (len(ws) and len(ids) and (increasing_ids(ids) or unique_ids(ids))):
        return None
    # an assignment's work samples come one after another: one lookup for each run of them
    at = run_positions(ids, ws["assignment_id"])
    if at is None:
        return None
    codes = _sorted_codes(a["classroom_id"])  # numbered among every assignment's classroom: the same order
    return np.where(at >= 0, codes[np.maximum(at, 0)], -1)


def growth_frame(
    district: District, *, subject: str, access: pd.DataFrame | None = None, cuts: dict | None = None
) -> pd.DataFrame:
    """One row per student for the growth models of ``subject`` in the analysis year.

    ``fall_z`` and ``spring_z`` are scale scores standardized within subject, grade, window and year in
    the district (mean 0, SD 1). Students missing either score are left out; a student whose classroom lacks
    evidence on a resource keeps the row with that resource missing, so that each growth model can use every
    student with the resources it needs (:func:`~opportunity_research.study.growth.fit_study_models`).

    Returns
    -------
    DataFrame
        ``student_id``, ``school_id``, ``classroom_id``, ``subject``, ``grade``, ``fall_z``, ``spring_z``,
        ``started_behind``, the four resource shares, ``low_income``, ``english_learner``, ``disability``.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> g = growth_frame(d, subject="math")
    >>> sorted(set(["spring_z", "fall_z", "started_behind"]) & set(g.columns))
    ['fall_z', 'spring_z', 'started_behind']
    """
    year = analysis_year(district)
    acc = access if access is not None else student_access(district, cuts=cuts)
    mine = np.flatnonzero(
        (acc["subject"] == subject).to_numpy(dtype=bool, na_value=False)
    )  # the subject's rows
    a = district.assessments
    rows = (a["subject"] == subject) & (a["school_year"] == year)
    used = ["student_id", "subject", "grade", "window", "school_year", "scale_score"]  # a copy of only these
    a = a.loc[rows, used].assign(z=lambda d: _standardized(d))
    cols = [
        "student_id",
        "school_id",
        "classroom_id",
        "subject",
        "grade",
        "fall_z",
        "spring_z",
        "started_behind",
        *RESOURCES,
        "low_income",
        "english_learner",
        "disability",
    ]
    scores = _fall_spring(a, acc["student_id"].take(mine), district.students["student_id"])
    if scores is not None:  # each student's scores by roster position: the rows and values of the merge below
        keep = ~(np.isnan(scores[0]) | np.isnan(scores[1]))
        # the columns used of the rows kept, taken once (a million students' text columns among them)
        out = (
            acc[[c for c in cols if c not in ("fall_z", "spring_z")]].take(mine[keep]).reset_index(drop=True)
        )
        for c, z in zip(("fall_z", "spring_z"), scores):
            out.insert(cols.index(c), c, z[keep])
        return out
    acc = acc.take(mine)
    z = a.pivot_table(index="student_id", columns="window", values="z", aggfunc="mean")
    z = z.rename(columns={"fall": "fall_z", "spring": "spring_z"})
    for c in ("fall_z", "spring_z"):
        if c not in z:
            z[c] = np.nan
    out = acc.merge(z[["fall_z", "spring_z"]], left_on="student_id", right_index=True, how="inner")
    out = out[cols].dropna(subset=["fall_z", "spring_z"])
    return out.reset_index(drop=True)


def _fall_spring(scores: pd.DataFrame, ids: pd.Series, roster: pd.Series) -> tuple | None:
    """Each of the access rows' student ids ``ids``' fall and spring ``z`` in ``scores`` (NaN: none), as arrays; None
    unless every result is of a student on the roster (unique ids) and no student has two results in one window.

    Then a student's mean score of a window (the pivot table of :func:`growth_frame`) is their one score, and the
    inner merge of the access rows with the pivot table followed by dropping rows without both scores keeps the
    rows whose two values here are not missing.
    """
    if not (len(ids) and unique_ids(roster)):
        return None
    found = id_positions_of(roster, [scores["student_id"], ids])  # one hash table of the roster
    if found is None or (found[0] < 0).any():
        return None
    at, rows = found
    z, window, out = scores["z"].to_numpy(dtype=float), scores["window"], []
    rows = np.where(rows >= 0, rows, len(roster))  # a student not on the roster has no score
    for name in ("fall", "spring"):
        these = np.flatnonzero((window == name).to_numpy(dtype=bool, na_value=False))
        if len(these) and np.bincount(at[these]).max() > 1:
            return None
        by_student = np.full(len(roster) + 1, np.nan)
        by_student[at[these]] = z[these]
        out.append(by_student[rows])
    return tuple(out)
