"""Belonging, consistency and coherence: the Opportunity Makers climate survey.

The survey (contract table ``climate_surveys``, optional) asks the eleven items of
:data:`opportunity_research.intake.contract.CLIMATE_ITEMS` on a 1-5 agreement scale (1 = strongly
disagree ... 5 = strongly agree, :data:`~opportunity_research.intake.contract.CLIMATE_SCALE`).

Definitions (documented choices, all parameters)
------------------------------------------------
* **Scale score** of a response: the mean of the scale's answered items, when at least
  ``min_answered`` (default half) of the items are answered; otherwise missing. (With 3 items,
  2 must be answered; with 4, 2.)
* **Favorable**: a scale score of at least ``favorable_at`` = 4, i.e. agreeing or strongly
  agreeing on average. Percent favorable = share of responses with a scale score that are favorable.
  For a single item, favorable = an answer of 4 or 5.
* **Internal consistency**: Cronbach's alpha on the responses that answered every item of the scale,
  with Feldt's (1965) F-based interval.
* **Students' school and groups** come from ``students.csv`` (the analysis-year roster), joined on
  ``student_id``; responses of students not on the roster count in district rows only.
* **Intervals**: district rows are clustered by school (``cluster="school_id"``; cluster-robust
  t interval for means, Wilson interval with a design-effect-adjusted sample size for shares, see
  :func:`opportunity_research.stats.estimates.cell_estimates`); rows of one school treat its responses as
  independent. With few schools the district intervals are wide, honestly so; pass
  ``cluster=None`` to treat all responses as independent.
* **Complete tables**: every cell is computed and shown (``suppressed`` is ``False``); the district report
  hides small cells, and the cells that would give them away, in one joint disclosure pass over everything it
  publishes (:mod:`opportunity_research.disclosure.joint`).

Every function takes the climate survey table first (``district.climate_surveys``, which is
``None`` when the district has none) and then returns an empty table with ``.attrs["needs"]``
naming the missing file instead of failing (see :mod:`opportunity_research.study.indicators`).

Examples
--------
>>> import pandas as pd
>>> s = pd.DataFrame({"belong_1": [5, 4, 2], "belong_2": [4, 4, 2], "belong_3": [4, None, 3],
...                   "belong_4": [5, None, None]})
>>> scale_scores(s, scales=["belonging"])[["belonging_score", "belonging_favorable"]].to_dict("list")
{'belonging_score': [4.5, 4.0, 2.3333333333333335], 'belonging_favorable': [1.0, 1.0, 0.0]}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..intake.contract import CLIMATE_ITEMS, CLIMATE_SCALE
from ..stats.estimates import cell_estimates, complete_table, text_as_categories, two_level_estimates
from .indicators import INDICATOR_COLUMNS, indicator_rows, unavailable
from .joins import merge_positions, unique_ids
from .panels import student_year_codes as _student_year_codes

__all__ = [
    "NEEDS_SURVEY",
    "SCALES",
    "VARIABLES",
    "climate_gaps",
    "climate_indicators",
    "climate_reliability",
    "climate_summary",
    "cronbach_alpha",
    "item_summary",
    "scale_scores",
]

#: The three scales, in report order.
SCALES = tuple(CLIMATE_ITEMS)
#: Student groups the climate results are broken down by.
VARIABLES = ("race_ethnicity", "low_income", "english_learner", "disability")
#: The "needs" sentence of a district without a climate survey.
NEEDS_SURVEY = (
    "climate_surveys.csv (the belonging, consistency and coherence items, 1-5) for belonging, "
    "consistency and coherence"
)
_STUDENT_COLS = ("school_id",) + VARIABLES
_SUMMARY_COLUMNS = [
    "school_year",
    "scale",
    "school_id",
    "group",
    "variable",
    "n",
    "mean_score",
    "mean_ci_lower",
    "mean_ci_upper",
    "favorable",
    "favorable_ci_lower",
    "favorable_ci_upper",
    "suppressed",
    "suppression_reason",
]


def _absent(data) -> bool:
    return data is None or len(data) == 0


def _items(scales) -> dict[str, list[str]]:
    unknown = [s for s in scales if s not in CLIMATE_ITEMS]
    if unknown:
        raise ValueError(f"unknown climate scale {unknown[0]!r}; use {', '.join(CLIMATE_ITEMS)}")
    return {s: list(CLIMATE_ITEMS[s]) for s in scales}


def scale_scores(
    data: pd.DataFrame,
    *,
    scales: Sequence[str] = SCALES,
    min_answered: float = 0.5,
    favorable_at: float = 4.0,
) -> pd.DataFrame:
    """Per-response scale scores and favorable flags.

    Parameters
    ----------
    data
        Climate survey responses (the items of ``scales`` as columns, 1-5, missing = not answered).
    scales
        Which scales to score (default all three).
    min_answered
        Smallest share of a scale's items that must be answered for a score (default 0.5).
    favorable_at
        A score at or above this is favorable (default 4 = agree).

    Returns
    -------
    DataFrame
        A copy of ``data`` with, per scale ``s``: ``s_score`` (mean of answered items, NaN when too few),
        ``s_answered`` (items answered) and ``s_favorable`` (1.0 / 0.0 / NaN).

    Raises
    ------
    ValueError
        If an item column is missing or holds a value outside 1-5 (naming the column and value).

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> s = scale_scores(surveys)
    >>> [c for c in s.columns if c.startswith("belonging")]
    ['belonging_score', 'belonging_answered', 'belonging_favorable']
    """
    out = data.copy(
        deep=False
    )  # the scales' columns added to a new frame of the same columns (copy-on-write)
    lo, hi = CLIMATE_SCALE
    for scale, items in _items(scales).items():
        missing = [c for c in items if c not in out.columns]
        if missing:
            raise ValueError(f"climate_surveys: missing item column {missing[0]}")
        x = out[items].astype(float)
        bad = x.notna() & ((x < lo) | (x > hi))
        if bad.to_numpy().any():
            col = bad.any().idxmax()
            raise ValueError(
                f"climate_surveys: column {col} has {x.loc[bad[col], col].iloc[0]:g}, outside {lo}-{hi}"
            )
        answered = x.notna().sum(axis=1)
        score = x.mean(axis=1, skipna=True).where(answered >= min_answered * len(items) - 1e-9)
        out[f"{scale}_score"] = score
        out[f"{scale}_answered"] = answered.astype(np.int64)
        out[f"{scale}_favorable"] = (score >= favorable_at).astype(float).where(score.notna())
    return out


def cronbach_alpha(
    data: pd.DataFrame, *, items: Sequence[str] | None = None, confidence: float = 0.95
) -> dict:
    """Cronbach's alpha of ``items`` on complete cases, with Feldt's (1965) F-based interval.

    ``alpha = k / (k - 1) * (1 - sum of item variances / variance of the total)`` (sample variances).
    Interval: with ``n`` complete responses, ``df1 = n - 1`` and ``df2 = (n - 1)(k - 1)``,
    ``[1 - (1 - alpha) F_{1-a/2}(df1, df2), 1 - (1 - alpha) F_{a/2}(df1, df2)]``.

    Returns
    -------
    dict
        ``alpha``, ``ci_lower``, ``ci_upper``, ``n`` (complete responses), ``n_items``. Alpha is NaN with
        fewer than 2 items or 2 complete responses, or when the total has no variance.

    >>> x = pd.DataFrame({"a": [1, 2, 3, 4, 5], "b": [2, 2, 3, 5, 4], "c": [1, 3, 3, 4, 5]})
    >>> round(cronbach_alpha(x)["alpha"], 4)  # 3/2 * (1 - (2.5 + 1.7 + 2.2) / 17.3)
    0.9451

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> a = cronbach_alpha(surveys, items=CLIMATE_ITEMS["belonging"])
    >>> sorted(a), 0 < a["alpha"] < 1
    (['alpha', 'ci_lower', 'ci_upper', 'n', 'n_items'], True)
    """
    cols = list(items) if items is not None else list(data.columns)
    x = data[cols].astype(float).dropna().to_numpy()
    n, k = x.shape
    out = {"alpha": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "n": int(n), "n_items": int(k)}
    if k < 2 or n < 2:
        return out
    total_var = x.sum(axis=1).var(ddof=1)
    if not total_var > 0:
        return out
    alpha = k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / total_var)
    a = 1 - confidence
    df1, df2 = n - 1, (n - 1) * (k - 1)
    out.update(
        alpha=float(alpha),
        ci_lower=float(1 - (1 - alpha) * stats.f.ppf(1 - a / 2, df1, df2)),
        ci_upper=float(1 - (1 - alpha) * stats.f.ppf(a / 2, df1, df2)),
    )
    return out


def climate_reliability(
    data: pd.DataFrame | None, *, scales: Sequence[str] = SCALES, confidence: float = 0.95
) -> pd.DataFrame:
    """Cronbach's alpha with Feldt's interval per school year and scale.

    Returns
    -------
    DataFrame
        ``school_year``, ``scale``, ``n_items``, ``n`` (responses answering every item), ``alpha``,
        ``ci_lower``, ``ci_upper``. Empty with ``attrs["needs"]`` without a survey.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> climate_reliability(surveys)["scale"].tolist()
    ['belonging', 'consistency', 'coherence', 'belonging', 'consistency', 'coherence']
    """
    cols = ["school_year", "scale", "n_items", "n", "alpha", "ci_lower", "ci_upper"]
    if _absent(data):
        return unavailable(cols, NEEDS_SURVEY)
    rows = []
    for year, part in data.groupby("school_year", sort=True):
        for scale, items in _items(scales).items():
            r = cronbach_alpha(part, items=items, confidence=confidence)
            rows.append(
                {
                    "school_year": int(year),
                    "scale": scale,
                    "n_items": r["n_items"],
                    "n": r["n"],
                    "alpha": r["alpha"],
                    "ci_lower": r["ci_lower"],
                    "ci_upper": r["ci_upper"],
                }
            )
    out = pd.DataFrame(rows, columns=cols)
    out.attrs["needs"] = []
    return out


def _codes(values: pd.Series) -> np.ndarray:
    """Integer cluster codes; a response with no cluster value (not on the roster) is a cluster of its own."""
    codes = pd.factorize(values)[0]
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(missing.sum())
    return codes


def _with_students(
    scored: pd.DataFrame, students: pd.DataFrame | None
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The scored responses with their students' school and groups, and each row's row of the roster (None: not
    joined on positions)."""
    if students is None:
        out = scored.copy()
        for c in _STUDENT_COLS:
            out[c] = np.nan
        return out, None
    cols = ["student_id"] + [c for c in _STUDENT_COLS if c in students.columns]
    ids = students["student_id"]
    if not unique_ids(ids) and ids.duplicated().any():
        raise ValueError("students: student_id is not unique")
    return merge_positions(scored, students[cols], on="student_id", validate="many_to_one")


def _with_scale(table: pd.DataFrame, scale: str) -> pd.DataFrame:
    """``table`` with a ``scale`` column (text, every row ``scale``) after its ``school_year``."""
    at = table.columns.get_loc("school_year") + 1
    return pd.concat(
        [table.iloc[:, :at], pd.DataFrame({"scale": pd.Series([scale] * len(table))}), table.iloc[:, at:]],
        axis=1,
    )


def climate_summary(
    data: pd.DataFrame | None,
    *,
    students: pd.DataFrame | None,
    scales: Sequence[str] = SCALES,
    variables: Sequence[str] = VARIABLES,
    favorable_at: float = 4.0,
    min_answered: float = 0.5,
    cluster: str | None = "school_id",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Scale score and percent favorable per school year, scale, school and student group.

    Parameters
    ----------
    data
        Climate survey responses (``district.climate_surveys``; ``None`` if absent).
    students
        The students table (school and group variables).
    scales, variables
        Scales to report and student-group variables to break down by.
    favorable_at, min_answered
        See :func:`scale_scores`.
    cluster
        Cluster of the district-level intervals (default ``"school_id"``; ``None`` = independent).
    confidence
        Interval level.

    Returns
    -------
    DataFrame
        ``school_year``, ``scale``, ``school_id`` (``"all"`` = district), ``group`` (``"all"`` or
        ``"variable=level"``), ``variable``, ``n`` (responses with a score), ``mean_score`` with
        ``mean_ci_lower`` / ``mean_ci_upper``, ``favorable`` (share, 0-1) with ``favorable_ci_lower`` /
        ``favorable_ci_upper``, ``suppressed`` (``False``: a complete table, protected by the joint disclosure pass),
        ``suppression_reason``. Empty with ``attrs["needs"]`` when the district has no climate survey.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> s = climate_summary(surveys, students=students)
    >>> s[["school_year", "scale", "group", "n"]].iloc[0].to_dict()
    {'school_year': 2015, 'scale': 'belonging', 'group': 'all', 'n': 257}
    """
    if _absent(data):
        return unavailable(_SUMMARY_COLUMNS, NEEDS_SURVEY)
    frame, at = _with_students(
        scale_scores(data, scales=scales, min_answered=min_answered, favorable_at=favorable_at), students
    )
    frame["school_year"] = frame["school_year"].astype(np.int64)
    frame["_sid"] = _student_year_codes(frame, at)
    if cluster is not None:
        frame["_cluster"] = _codes(frame[cluster])
        cluster = "_cluster"
    # the students' text columns as categories once, for every scale's tables (each gives them back as text)
    frame, text = text_as_categories(frame, ["school_id", *variables])
    # every scale's cells at once (the scale is one value of a key in each scale's table: the same cells, in the
    # same order, as with it), the cells and the clusters' sums made once for every scale's mean and share
    memo: dict = {}
    common = {"keys": ["school_year"], "variables": variables, "cluster": cluster, "confidence": confidence}
    means = two_level_estimates(
        frame, value=[f"{s}_score" for s in scales], kind="mean", text=text, _memo=memo, **common
    )
    shares = two_level_estimates(
        frame, value=[f"{s}_favorable" for s in scales], kind="share", text=text, _memo=memo, **common
    )
    del memo
    long = []
    for scale, m, s in zip(scales, means, shares, strict=True):
        keys = ["school_year", "scale"]
        m, s = _with_scale(m, scale), _with_scale(s, scale)
        on = keys + ["school_id", "group"]
        m = m.rename(
            columns={"estimate": "mean_score", "ci_lower": "mean_ci_lower", "ci_upper": "mean_ci_upper"}
        )
        s = s.rename(
            columns={
                "estimate": "favorable",
                "ci_lower": "favorable_ci_lower",
                "ci_upper": "favorable_ci_upper",
            }
        )
        long.append(
            m.merge(
                s[on + ["favorable", "favorable_ci_lower", "favorable_ci_upper"]],
                on=on,
                how="left",
                validate="one_to_one",
            )
        )
    out = pd.concat(long, ignore_index=True)
    out = complete_table(out, counts=["n"])
    order = {s: i for i, s in enumerate(scales)}
    out = out.assign(_s=out["scale"].map(order), _d=out["school_id"].ne("all"), _g=out["group"].ne("all"))
    out = out.sort_values(["school_year", "_s", "_d", "school_id", "_g", "variable", "group"])
    out = out[_SUMMARY_COLUMNS].reset_index(drop=True)
    out.attrs["needs"] = []
    return out


def item_summary(
    data: pd.DataFrame | None,
    *,
    students: pd.DataFrame | None = None,
    scales: Sequence[str] = SCALES,
    favorable_at: int = 4,
    cluster: str | None = "school_id",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Item-level breakdown: per school year, item and school, the mean answer, percent favorable and
    the distribution of answers (figure-ready for a stacked bar per item).

    Returns
    -------
    DataFrame
        ``school_year``, ``scale``, ``item``, ``question`` (the item's text), ``school_id`` (``"all"`` =
        district; schools only when ``students`` is given), ``n`` (answers), ``mean`` with ``mean_ci_lower``
        / ``mean_ci_upper``, ``favorable`` (share answering ``favorable_at`` or higher) with
        ``favorable_ci_lower`` / ``favorable_ci_upper``, ``share_1`` ... ``share_5`` (share giving each
        answer), ``suppressed``, ``suppression_reason``. Empty with ``attrs["needs"]`` without a survey.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> t = item_summary(surveys, students=students)
    >>> sorted(t["scale"].unique())
    ['belonging', 'coherence', 'consistency']
    """
    if cluster not in ("school_id", None):
        raise ValueError(f"item_summary: cluster must be 'school_id' or None, not {cluster!r}")
    lo, hi = CLIMATE_SCALE
    shares = [f"share_{v}" for v in range(lo, hi + 1)]
    cols = [
        "school_year",
        "scale",
        "item",
        "question",
        "school_id",
        "n",
        "mean",
        "mean_ci_lower",
        "mean_ci_upper",
        "favorable",
        "favorable_ci_lower",
        "favorable_ci_upper",
        *shares,
        "suppressed",
        "suppression_reason",
    ]
    if _absent(data):
        return unavailable(cols, NEEDS_SURVEY)
    scored = scale_scores(data, scales=scales)  # validates the items
    frame = _with_students(scored, students)[0] if students is not None else scored.assign(school_id=np.nan)
    frame["school_year"] = frame["school_year"].astype(np.int64)
    value_cols = [i for s in scales for i in CLIMATE_ITEMS[s]]
    frame["_sid"] = pd.factorize(frame["student_id"])[0]
    frame["_school"] = _codes(frame["school_id"])
    long = frame.melt(
        id_vars=["_sid", "_school", "school_year", "school_id"],
        value_vars=value_cols,
        var_name="item",
        value_name="answer",
    ).dropna(subset=["answer"])
    long["favorable"] = (long["answer"] >= favorable_at).astype(float)
    for v in range(lo, hi + 1):
        long[f"share_{v}"] = (long["answer"] == v).astype(float)
    keys = ["school_year", "item"]

    def both(value, kind):
        d = cell_estimates(
            long,
            by=keys,
            value=value,
            kind=kind,
            cluster=cluster and "_school",
            unit="_sid",
            confidence=confidence,
        ).assign(school_id="all")
        s = cell_estimates(
            long, by=keys + ["school_id"], value=value, kind=kind, unit="_sid", confidence=confidence
        )
        return pd.concat([d, s], ignore_index=True)

    on = keys + ["school_id"]
    out = both("answer", "mean").rename(
        columns={"estimate": "mean", "ci_lower": "mean_ci_lower", "ci_upper": "mean_ci_upper"}
    )
    fav = both("favorable", "share").rename(
        columns={"estimate": "favorable", "ci_lower": "favorable_ci_lower", "ci_upper": "favorable_ci_upper"}
    )
    out = out.merge(fav[on + ["favorable", "favorable_ci_lower", "favorable_ci_upper"]], on=on, how="left")
    dist = long.groupby(keys, sort=True)[shares].mean().reset_index().assign(school_id="all")
    dist_s = (
        long.dropna(subset=["school_id"])
        .groupby(keys + ["school_id"], sort=True)[shares]
        .mean()
        .reset_index()
    )
    out = out.merge(pd.concat([dist, dist_s], ignore_index=True), on=on, how="left")
    out = complete_table(out, counts=["n"])
    scale_of = {i: s for s in scales for i in CLIMATE_ITEMS[s]}
    out["scale"] = out["item"].map(scale_of).astype("str")
    out["question"] = (
        out["item"].map({i: q for s in scales for i, q in CLIMATE_ITEMS[s].items()}).astype("str")
    )
    order = {i: k for k, i in enumerate(value_cols)}
    out = out.assign(_i=out["item"].map(order), _d=out["school_id"].ne("all"))
    out = out.sort_values(["school_year", "_i", "_d", "school_id"])[cols].reset_index(drop=True)
    out.attrs["needs"] = []
    return out


def climate_gaps(
    data: pd.DataFrame | None,
    *,
    students: pd.DataFrame | None,
    scales: Sequence[str] = SCALES,
    variables: Sequence[str] = VARIABLES,
    reference: dict | None = None,
    cluster: str | None = "school_id",
    n_boot: int = 0,
    seed: int = 0,
    favorable_at: float = 4.0,
    min_answered: float = 0.5,
) -> pd.DataFrame:
    """Differences between student groups in each scale, per school year (a complete table).

    Uses :func:`opportunity_research.stats.gaps.gap_table` (each level against all other students by default,
    or against ``reference`` levels), once for the scale score (``outcome="score"``) and once for
    favorable (``outcome="favorable"``).

    Intervals: by default the analytic cluster-robust t interval over schools (``n_boot=0``). A district
    has few schools, and the percentile cluster bootstrap (``n_boot > 0``) is then too narrow: on the
    demo districts (3-7 schools) it held the planted differences 77% of the time, against 94% for the
    analytic interval and 93% for students treated as independent (``cluster=None``, the interval for
    the district's own students with its schools taken as fixed).

    Returns
    -------
    DataFrame
        ``school_year``, ``scale``, ``outcome`` and ``gap_table``'s columns. Empty with
        ``attrs["needs"]`` without a survey.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> g = climate_gaps(surveys, students=students)
    >>> sorted(g["group"].unique())[:2]
    ['disability', 'english_learner']
    """
    lead = ["school_year", "scale", "outcome"]
    if _absent(data):
        return unavailable(
            lead
            + [
                "group",
                "level",
                "n",
                "reference",
                "reference_n",
                "estimate",
                "reference_estimate",
                "difference",
                "ratio",
                "hedges_g",
                "ci_lower",
                "ci_upper",
                "suppressed",
                "suppression_reason",
            ],
            NEEDS_SURVEY,
        )
    from ..stats.gaps import gap_table

    frame = _with_students(
        scale_scores(data, scales=scales, min_answered=min_answered, favorable_at=favorable_at), students
    )[0]
    frame["school_year"] = frame["school_year"].astype(np.int64)
    present = [v for v in variables if v in frame.columns and frame[v].notna().any()]
    frames = []
    for year, part in frame.groupby("school_year", sort=True):
        for scale in scales:
            for outcome, col in (("score", f"{scale}_score"), ("favorable", f"{scale}_favorable")):
                t = gap_table(
                    part,
                    outcome=col,
                    group=present,
                    reference=reference,
                    cluster=cluster,
                    n_boot=n_boot,
                    seed=seed,
                )
                frames.append(t.assign(school_year=int(year), scale=scale, outcome=outcome))
    out = pd.concat(frames, ignore_index=True)
    out = out[lead + [c for c in out.columns if c not in lead]]
    out.attrs["needs"] = []
    return out


def climate_indicators(summary: pd.DataFrame) -> pd.DataFrame:
    """Scorecard indicators from :func:`climate_summary`: ``<scale>_favorable`` per school, group and year.

    Returns
    -------
    DataFrame
        The indicator format (:data:`opportunity_research.study.indicators.INDICATOR_COLUMNS`); empty with the
        summary's ``attrs["needs"]`` when there is no survey.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> surveys, students = tables["climate_surveys"], tables["students"]
    >>> ind = climate_indicators(climate_summary(surveys, students=students))
    >>> sorted(ind["measure"].unique())
    ['belonging_favorable', 'coherence_favorable', 'consistency_favorable']
    """
    if len(summary) == 0:
        return unavailable(INDICATOR_COLUMNS, summary.attrs.get("needs", [NEEDS_SURVEY]))
    frames = []
    for scale, part in summary.groupby("scale", sort=False):
        t = part.rename(
            columns={
                "favorable": "estimate",
                "favorable_ci_lower": "ci_lower",
                "favorable_ci_upper": "ci_upper",
            }
        )
        frames.append(indicator_rows(t, measure=f"{scale}_favorable"))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["needs"] = []
    return out
