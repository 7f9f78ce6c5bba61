"""The Opportunity Scorecard: a district's indicators per school, compared with the goals it writes.

The indicator format every analysis returns and the "needs" convention for missing data are
:mod:`opportunity_research.study.indicators`; the interval and cell helpers behind the indicators are
:mod:`opportunity_research.stats.estimates`.

The scorecard
    :func:`opportunity_scorecard` turns indicators (and optionally a goals table and a gap table)
    into a :class:`Scorecard` of tidy tables (data only: the printable page is
    :func:`opportunity_research.report.presentation.scorecard_page`, written by
    :func:`opportunity_research.report.reporting.write_scorecard`).

Examples
--------
>>> import pandas as pd
>>> ind = pd.DataFrame({"measure": ["catch_up_rate"] * 2, "school_id": "all", "group": "all",
...                     "school_year": [2015, 2016], "n": [120, 130], "estimate": [0.20, 0.31],
...                     "ci_lower": [0.14, 0.24], "ci_upper": [0.28, 0.39], "suppressed": False,
...                     "suppression_reason": ""})
>>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": ["catch_up_rate"], "group": ["all"],
...                       "baseline_year": [2015], "target": [0.40], "target_year": [2017]})
>>> sc = opportunity_scorecard(ind, goals=goals)
>>> sc.goals[["goal_id", "baseline", "current", "status"]].to_dict("records")
[{'goal_id': 'G1', 'baseline': 0.2, 'current': 0.31, 'status': 'on track'}]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import GOAL_MEASURES, POOLED_RACE_ETHNICITY
from ..stats.estimates import level_strings
from . import labels
from .indicators import normalize_group, validate_indicators

__all__ = [
    "GOAL_STATUSES",
    "GOAL_STATUS_RULES",
    "LOWER_IS_BETTER",
    "MEASURE_LABELS",
    "MEASURE_NEEDS",
    "Scorecard",
    "largest_gaps",
    "opportunity_scorecard",
]


#: The statuses a goal can have.
GOAL_STATUSES = ("met", "on track", "off track", "baseline set", "no data")
#: The rule behind each goal status, in the words the scorecard prints.
GOAL_STATUS_RULES = {
    "met": "the latest measured value meets the target (chronic absence: at or below it; every other measure: "
    "at or above it)",
    "on track": "at least two years measured (the baseline year and a later one) and the latest value is at or "
    "past the straight-line path from the baseline to the target",
    "off track": "the latest value is behind that straight-line path, or the target year has passed without "
    "meeting the target, or no baseline value exists to judge progress from",
    "baseline set": "only the baseline year has been measured so far: progress cannot be judged until a later "
    "year is measured",
    "no data": "the measure or group has no indicator, or its latest value is suppressed",
}
#: Measures for which a lower value is better (all others: higher is better).
LOWER_IS_BETTER = frozenset({"chronic_absence_rate"})
#: Measures reported in grade levels per year rather than as a share (0-1).
_NOT_SHARES = frozenset({"growth_grade_levels"})

#: Readable names of the scorecard measures (from :mod:`opportunity_research.study.labels`).
MEASURE_LABELS = {m: labels.measure(m) for m in GOAL_MEASURES}
#: What data each measure needs, used when a goal's measure has no indicator at all.
MEASURE_NEEDS = {
    "grade_appropriate_share": "rated assignments (assignments.csv)",
    "strong_instruction_share": "classroom observations (observations.csv)",
    "engaged_share": "student engagement surveys (engagement_surveys.csv)",
    "high_expectations_share": "teacher expectation surveys (teacher_surveys.csv)",
    "belonging_favorable": "climate survey data (climate_surveys.csv)",
    "consistency_favorable": "climate survey data (climate_surveys.csv)",
    "coherence_favorable": "climate survey data (climate_surveys.csv)",
    "catch_up_rate": "spring assessment results in at least two school years (assessments.csv)",
    "growth_grade_levels": "grade-equivalent scores in at least two school years (assessments.grade_equivalent)",
    "chronic_absence_rate": "attendance data (attendance.csv)",
    "advanced_course_rate": "advanced coursework data (advanced_courses.csv)",
}


# ---------------------------------------------------------------------------------------------
# The scorecard


@dataclass(frozen=True)
class Scorecard:
    """An Opportunity Scorecard (read-only tables).

    Attributes
    ----------
    table
        One row per school (``"all"`` = district), measure and group: the value in the latest year
        (at or before ``current_year``) with its interval and suppression, and the trend (first year,
        its value, change). Columns: ``school_id``, ``measure``, ``label``, ``group``, ``school_year``,
        ``n``, ``estimate``, ``ci_lower``, ``ci_upper``, ``suppressed``, ``suppression_reason``,
        ``n_years``, ``first_year``, ``first_estimate``, ``change``.
    goals
        One row per goal: ``goal_id``, ``measure``, ``label``, ``group``, ``description``,
        ``baseline_year``, ``baseline``, ``target``, ``target_year``, ``current_year``, ``current``,
        ``ci_lower``, ``ci_upper``, ``n``, ``expected`` (value on the straight-line path in
        ``current_year``), ``status`` (one of :data:`GOAL_STATUSES`), ``reason``.
    largest_gaps
        Per resource (and subject): the group with the largest negative unsuppressed difference.
    needs
        What the district would need to provide for the measures it lacks.
    min_n
        The smallest published cell of the disclosure pass that protected the indicators (set by
        :func:`opportunity_research.disclosure.joint.protect_district`; the printed page's legend quotes it).

    Examples
    --------
    >>> import pandas as pd
    >>> ind = pd.DataFrame({"measure": ["catch_up_rate"] * 2, "school_id": "all", "group": "all",
    ...                     "school_year": [2015, 2016], "n": [120, 130], "estimate": [0.20, 0.31],
    ...                     "ci_lower": [0.14, 0.24], "ci_upper": [0.28, 0.39], "suppressed": False,
    ...                     "suppression_reason": ""})
    >>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": ["catch_up_rate"], "group": ["all"],
    ...                       "baseline_year": [2015], "target": [0.40], "target_year": [2017]})
    >>> sc = opportunity_scorecard(ind, goals=goals)
    >>> isinstance(sc, Scorecard), len(sc.table), sc.current_year, sc.needs
    (True, 1, None, ())
    """

    table: pd.DataFrame
    goals: pd.DataFrame
    largest_gaps: pd.DataFrame
    needs: tuple[str, ...] = ()
    min_n: int = config.MIN_CELL_SIZE
    current_year: int | None = None
    schools: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        counts = self.goals["status"].value_counts().to_dict() if len(self.goals) else {}
        return (
            f"Scorecard({self.table['school_id'].nunique() if len(self.table) else 0} school rows incl. district, "
            f"{self.table['measure'].nunique() if len(self.table) else 0} measures, goals {counts})"
        )


def _fmt_value(measure: str, x) -> str:
    if measure in _NOT_SHARES:
        return labels.number(x, 2, missing=labels.MISSING_TEXT, minus="-")
    return labels.percent(x, missing=labels.MISSING_TEXT, minus="-")


def _trend_table(ind: pd.DataFrame, current_year: int | None) -> pd.DataFrame:
    key = ["school_id", "measure", "group"]
    cols = key + ["school_year", "n", "estimate", "ci_lower", "ci_upper", "suppressed", "suppression_reason"]
    if current_year is not None:
        ind = ind[ind["school_year"] <= current_year]
    if len(ind) == 0:
        return pd.DataFrame(
            columns=cols[:3] + ["label"] + cols[3:] + ["n_years", "first_year", "first_estimate", "change"]
        )
    ind = ind.sort_values(key + ["school_year"])
    g = ind.groupby(key, sort=False)
    last = g.tail(1).set_index(key)
    first = g.head(1).set_index(key)
    out = last[cols[3:]].copy()
    out["n_years"] = g.size()
    out["first_year"] = first["school_year"]
    out["first_estimate"] = first["estimate"]
    several = out["n_years"] > 1
    out["first_year"] = out["first_year"].where(several).astype("Int64")
    out["first_estimate"] = out["first_estimate"].where(several)
    out["change"] = out["estimate"] - out["first_estimate"]
    out = out.reset_index()
    out.insert(3, "label", out["measure"].map(MEASURE_LABELS).astype("str"))
    order = {m: i for i, m in enumerate(GOAL_MEASURES)}
    out = out.assign(_s=out["school_id"].ne("all"), _m=out["measure"].map(order), _g=out["group"].ne("all"))
    out = out.sort_values(["_s", "school_id", "_m", "_g", "group"]).drop(columns=["_s", "_m", "_g"])
    return out.reset_index(drop=True)


def _goal_rows(goals: pd.DataFrame, ind: pd.DataFrame, current_year: int | None) -> pd.DataFrame:
    required = ["goal_id", "measure", "group", "target", "target_year"]
    missing = [c for c in required if c not in goals.columns]
    if missing:
        raise ValueError(f"goals table: missing column(s) {', '.join(missing)}")
    district = ind[ind["school_id"] == "all"]
    if current_year is not None:
        district = district[district["school_year"] <= current_year]
    series = {k: v.sort_values("school_year") for k, v in district.groupby(["measure", "group"], sort=False)}
    measures_present = set(district["measure"])
    # the analysis reported the smallest race/ethnicity groups as one pooled group (disclosure step 0)
    pooled = bool((district["group"] == f"race_ethnicity={POOLED_RACE_ETHNICITY}").any())
    rows = []
    for g in goals.itertuples(index=False):
        gd = g._asdict()
        measure = str(gd["measure"]).strip()
        group = normalize_group(gd["group"]) if pd.notna(gd["group"]) else "all"
        target = float(gd["target"])
        if measure not in GOAL_MEASURES:
            raise ValueError(
                f"goals table: goal {gd['goal_id']}: measure {measure!r} is not one of contract.GOAL_MEASURES"
            )
        if measure not in _NOT_SHARES and target > 1:
            warnings.warn(
                f"goals table: goal {gd['goal_id']}: target {target:g} for share measure {measure} read "
                f"as a percentage ({target / 100:g})",
                stacklevel=3,
            )
            target = target / 100
        by = gd.get("baseline_year")
        by = int(by) if by is not None and pd.notna(by) else None
        ty = int(gd["target_year"])
        row = {
            "goal_id": str(gd["goal_id"]),
            "measure": measure,
            "label": MEASURE_LABELS[measure],
            "group": group,
            "description": "" if pd.isna(gd.get("description", None)) else str(gd.get("description")),
            "baseline_year": by,
            "baseline": np.nan,
            "target": target,
            "target_year": ty,
            "current_year": None,
            "current": np.nan,
            "ci_lower": np.nan,
            "ci_upper": np.nan,
            "n": pd.NA,
            "expected": np.nan,
            "status": "no data",
            "reason": "",
        }
        s = series.get((measure, group))
        if s is None or len(s) == 0:
            if measure not in measures_present:
                row["reason"] = f"no data: needs {MEASURE_NEEDS[measure]}"
            elif pooled and group.startswith("race_ethnicity="):
                row["reason"] = (
                    f"this group ({group}) is reported only together with the district's other smaller "
                    "race/ethnicity groups, to protect small groups"
                )
            else:
                row["reason"] = f"no data for this group ({group})"
            rows.append(row)
            continue
        cur = s.iloc[-1]
        row["current_year"] = int(cur["school_year"])
        if by is not None:
            base = s[s["school_year"] == by]
            if len(base) and not base["suppressed"].iloc[0]:
                row["baseline"] = float(base["estimate"].iloc[0])
        if cur["suppressed"]:
            reason = f" ({cur['suppression_reason']})" if cur["suppression_reason"] else ""
            row["reason"] = f"suppressed{reason} in {row['current_year']}"
            rows.append(row)
            continue
        if pd.isna(cur["estimate"]):
            row["reason"] = f"no estimate in {row['current_year']}"
            rows.append(row)
            continue
        current = float(cur["estimate"])
        row.update(
            current=current, ci_lower=float(cur["ci_lower"]), ci_upper=float(cur["ci_upper"]), n=cur["n"]
        )
        lower = measure in LOWER_IS_BETTER
        better_or_equal = (lambda a, b: a <= b + 1e-12) if lower else (lambda a, b: a >= b - 1e-12)
        cy = row["current_year"]
        if better_or_equal(current, target):
            row["status"] = "met"
            row["reason"] = (
                f"{_fmt_value(measure, current)} meets the target of {_fmt_value(measure, target)}"
            )
        elif cy >= ty:
            row["status"], row["reason"] = "off track", f"target year {ty} reached without meeting the target"
        elif by is not None and cy <= by:
            row["status"] = "baseline set"
            row["reason"] = (
                f"only the baseline year {by} is measured ({_fmt_value(measure, current)}); progress "
                f"can be judged once a later year is measured"
            )
        elif math.isnan(row["baseline"]):
            row["status"] = "off track"
            row["reason"] = (
                "no baseline year given; target not met"
                if by is None
                else f"no unsuppressed baseline value for {by}; target not met"
            )
        else:
            b = row["baseline"]
            frac = min(max((cy - by) / (ty - by), 0.0), 1.0) if ty != by else 1.0
            expected = b + (target - b) * frac
            row["expected"] = expected
            if better_or_equal(current, expected):
                row["status"] = "on track"
                row["reason"] = (
                    f"{_fmt_value(measure, current)} is at or past the straight-line path from the "
                    f"baseline ({_fmt_value(measure, expected)} expected in {cy})"
                )
            else:
                row["status"] = "off track"
                row["reason"] = (
                    f"{_fmt_value(measure, current)} is behind the straight-line path from the "
                    f"baseline ({_fmt_value(measure, expected)} expected in {cy})"
                )
        rows.append(row)
    cols = [
        "goal_id",
        "measure",
        "label",
        "group",
        "description",
        "baseline_year",
        "baseline",
        "target",
        "target_year",
        "current_year",
        "current",
        "ci_lower",
        "ci_upper",
        "n",
        "expected",
        "status",
        "reason",
    ]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("baseline_year", "target_year", "current_year", "n"):
        out[c] = out[c].astype("Int64")
    for c in ("baseline", "target", "current", "ci_lower", "ci_upper", "expected"):
        out[c] = out[c].astype(float)
    return out


def largest_gaps(gaps: pd.DataFrame) -> pd.DataFrame:
    """Per resource (``measure``, and ``subject`` if present): the group level furthest below its reference.

    ``gaps`` is a tidy gap table (:func:`opportunity_research.stats.gaps.gap_table` columns plus ``measure``,
    e.g. :func:`opportunity_research.study.equity.resource_gaps`). Among unsuppressed rows with a negative
    ``difference``, the most negative is kept. A resource with no such row gets a row with missing
    values and ``note`` saying so.

    Returns
    -------
    DataFrame
        ``measure``, ``label``, [``subject``], ``group``, ``level``, ``group_label`` (``"var=level"``),
        ``n``, ``estimate``, ``reference``, ``reference_estimate``, ``difference``, ``ci_lower``,
        ``ci_upper``, ``note``.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"measure": "engaged", "group": "low_income", "level": [0, 1], "n": [60, 40],
    ...                      "estimate": [0.6, 0.45], "reference": "all other students", "reference_estimate": [0.45, 0.6],
    ...                      "difference": [0.15, -0.15], "ci_lower": [0.05, -0.25], "ci_upper": [0.25, -0.05],
    ...                      "suppressed": False})
    >>> largest_gaps(gaps)[["measure", "group_label", "difference"]].to_dict("records")
    [{'measure': 'engaged', 'group_label': 'low_income=1', 'difference': -0.15}]
    """
    keys = ["measure"] + (["subject"] if "subject" in gaps.columns else [])
    cols = (
        keys[:1]
        + ["label"]
        + keys[1:]
        + [
            "group",
            "level",
            "group_label",
            "n",
            "estimate",
            "reference",
            "reference_estimate",
            "difference",
            "ci_lower",
            "ci_upper",
            "note",
        ]
    )
    if gaps is None or len(gaps) == 0:
        return pd.DataFrame(columns=cols)
    g = gaps.copy()
    if "label" not in g.columns:
        g["label"] = g["measure"]
    g["group_label"] = g["group"].astype("str") + "=" + level_strings(g["level"])
    neg = g[~g["suppressed"].astype(bool) & (g["difference"] < 0)]
    best = neg.loc[neg.groupby(keys, sort=False)["difference"].idxmin()] if len(neg) else neg
    allkeys = g[keys + ["label"]].drop_duplicates(keys)
    out = allkeys.merge(best.drop(columns=["label"]), on=keys, how="left")
    out["note"] = np.where(out["difference"].isna(), "no unsuppressed group below its reference", "")
    return out[[c for c in cols if c in out.columns]].reset_index(drop=True)


def opportunity_scorecard(
    indicators: pd.DataFrame,
    *,
    goals: pd.DataFrame | None = None,
    gaps: pd.DataFrame | None = None,
    current_year: int | None = None,
    needs: Iterable[str] | None = None,
    school_names: Mapping[str, str] | None = None,
) -> Scorecard:
    """Build the Opportunity Scorecard from indicator tables and the district's goals.

    Parameters
    ----------
    indicators
        One table (or the concatenation of several) in the indicator format (:data:`INDICATOR_COLUMNS`),
        as published: the district report passes the indicators protected by the joint disclosure pass
        (:func:`opportunity_research.disclosure.joint.protect_district` builds the scorecard), and the
        scorecard shows them as they are (a row flagged ``suppressed`` stays hidden, with its reason).
    goals
        The district's goals (contract table ``goals``): ``goal_id``, ``measure``, ``group``,
        ``baseline_year`` (may be missing), ``target`` (a share 0-1, or grade levels per year for
        ``growth_grade_levels``; a share target above 1 is read as a percentage, with a warning),
        ``target_year``, ``description``. Goals are about the district (``school_id == "all"``).
    gaps
        Optional tidy gap table of the resources (e.g. ``equity.resource_gaps``) for the "largest
        gaps" panel.
    current_year
        The year to report; default the latest year of each measure. The current value of a measure
        is its latest value at or before this year.
    needs
        Sentences naming missing data (default: the ``attrs["needs"]`` of ``indicators``).
    school_names
        Optional ``{school_id: name}`` for display.

    Returns
    -------
    Scorecard
        ``table``, ``goals``, ``largest_gaps`` and ``needs``. Goal status rule: **met** when the
        current value meets the target (``chronic_absence_rate``: at or below; all others: at or
        above); **baseline set** when the current year is the baseline year (one measured year: nothing to
        track yet); otherwise **on track** when a baseline value exists for ``baseline_year`` and the
        current value, in a later year, is at or past the straight-line path from the baseline (at
        ``baseline_year``) to the target (at ``target_year``); otherwise **off track** (also when
        the target year has passed); **no data** when the measure or group has no indicator or its
        current value is suppressed (the reason says which, e.g. ``"suppressed (n < 10 or complementary)
        in 2016"``).
        :data:`GOAL_STATUS_RULES` states each rule in words for the printed scorecard.

    Examples
    --------
    >>> import pandas as pd
    >>> ind = pd.DataFrame({"measure": ["catch_up_rate"] * 2, "school_id": "all", "group": "all",
    ...                     "school_year": [2015, 2016], "n": [120, 130], "estimate": [0.20, 0.31],
    ...                     "ci_lower": [0.14, 0.24], "ci_upper": [0.28, 0.39], "suppressed": False,
    ...                     "suppression_reason": ""})
    >>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": ["catch_up_rate"], "group": ["all"],
    ...                       "baseline_year": [2015], "target": [0.40], "target_year": [2017]})
    >>> sc = opportunity_scorecard(ind, goals=goals)
    >>> sc.goals[["goal_id", "baseline", "current", "status"]].to_dict("records")
    [{'goal_id': 'G1', 'baseline': 0.2, 'current': 0.31, 'status': 'on track'}]
    """
    need_list = list(needs) if needs is not None else list(indicators.attrs.get("needs", []))
    ind = validate_indicators(indicators)
    table = _trend_table(ind, current_year)
    goal_table = (
        _goal_rows(goals, ind, current_year)
        if goals is not None and len(goals)
        else _goal_rows(
            pd.DataFrame(columns=["goal_id", "measure", "group", "target", "target_year"]),
            ind,
            current_year,
        )
    )
    gap_panel = largest_gaps(gaps) if gaps is not None else largest_gaps(pd.DataFrame())
    return Scorecard(
        table=table,
        goals=goal_table,
        largest_gaps=gap_panel,
        needs=tuple(need_list),
        current_year=current_year,
        schools=dict(school_names or {}),
    )
