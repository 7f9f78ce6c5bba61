"""The Opportunity Scorecard page and its tables: goals, district measures with trends, groups, gaps, schools.

Built from a :class:`~opportunity_research.study.scorecard.Scorecard`; nothing here computes a statistic. The
names are re-exported by :mod:`opportunity_research.report.presentation`, where the notebooks find them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence

import pandas as pd

from ..study import labels
from ..study.labels import SUPPRESSED_MARK
from ..version import __version__
from .district_names import district_name, is_demo
from .indicator_table import SCORECARD_DEFINITIONS
from .school_detail import select_schools, selection_notes
from .tables import STATUS_TEXT as _STATUS
from .tables import Col, Table, reader_words, render, table
from .tables import fmt_number as _number
from .tables import is_missing as _missing

__all__ = ["goals_table", "schools_table", "scorecard_page", "scorecard_tables"]


def goals_table(goals: pd.DataFrame) -> Table:
    """The district's goals and their status (``Scorecard.goals``).

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.study.scorecard import opportunity_scorecard
    >>> ind = pd.DataFrame({"measure": "catch_up_rate", "school_id": ["all", "all", "S1"], "group": "all",
    ...                     "school_year": [2017, 2018, 2018], "n": [200, 210, 80], "estimate": [0.20, 0.31, 0.25],
    ...                     "ci_lower": [0.15, 0.25, 0.16], "ci_upper": [0.26, 0.38, 0.36], "suppressed": False,
    ...                     "suppression_reason": ""})
    >>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": "catch_up_rate", "group": "all", "baseline_year": [2017],
    ...                       "target": [0.30], "target_year": [2018]})
    >>> card = opportunity_scorecard(ind, goals=goals)
    >>> goals_table(card.goals).frame.iloc[0].tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['G1', 'Catch-up rate (at grade level three years later)', 'All students', '30% by 2018', '31% (2018-19)',
     '✓ Met', '31% meets the target of 30%']
    """
    g = goals.copy()
    if len(g):
        share = ~g["measure"].eq("growth_grade_levels")
        fmtv = [labels.percent(v) if s else _number(v, 2) for v, s in zip(g["target"], share)]
        g["target_text"] = [f"{t} by {labels.year(y)}" for t, y in zip(fmtv, g["target_year"])]
        g["reason"] = [reader_words(r) for r in g["reason"]]
        g["current_text"] = [
            labels.MISSING
            if _missing(v)
            else (labels.percent(v) if s else _number(v, 2)) + f" ({labels.school_year(y)})"
            for v, s, y in zip(g["current"], share, g["current_year"])
        ]
    return table(
        g,
        [
            Col("goal_id", label="Goal"),
            Col("measure", "measure"),
            Col("group", "groupspec", label="Students"),
            Col("target_text", label="Target"),
            Col("current_text", label="Current"),
            Col("status", "status"),
            Col("reason", label="Why"),
        ],
        caption="The district's goals",
        empty="The district has not written goals.",
    )


# ---------------------------------------------------------------------------------------------
# The Opportunity Scorecard page


def _measure_value(measure: str, x) -> str:
    if _missing(x):
        return labels.MISSING
    return _number(x, 2) if measure == "growth_grade_levels" else labels.percent(x)


def _with_values(t: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    t["value_text"] = [_measure_value(m, v) for m, v in zip(t["measure"], t["estimate"])]
    t["n_unit"] = [_n_unit(m) for m in t["measure"]]
    t["interval_text"] = [
        labels.MISSING
        if _missing(lo) or _missing(hi)
        else f"{_measure_value(m, lo)} to {_measure_value(m, hi)}"
        for m, lo, hi in zip(t["measure"], t["ci_lower"], t["ci_upper"])
    ]
    return t


def _trend(r) -> str:
    """The change since the first year, computed from the two values as printed, so the cell adds up."""
    if _missing(r["first_year"]):
        return "One year only"
    if _missing(r["change"]) or _missing(r["first_estimate"]):
        return f"Since {labels.school_year(r['first_year'])}: not available"
    first, last = (
        _measure_value(r["measure"], r["first_estimate"]),
        _measure_value(r["measure"], r["estimate"]),
    )
    if r["measure"] == "growth_grade_levels":
        ch = round(float(last.replace("−", "-")) - float(first.replace("−", "-")), 2)
        text = f"{ch:+.2f}".replace("-", "−")
    else:
        ch = int(last.replace("−", "-").rstrip("%")) - int(first.replace("−", "-").rstrip("%"))
        text = (f"{ch:+d}" if ch else "0").replace("-", "−") + (" point" if abs(ch) == 1 else " points")
    return f"{text} since {labels.school_year(r['first_year'])} ({first})"


def _n_unit(measure: str) -> str:
    """What ``n`` counts for a scorecard measure (where ELA and math pool, a student tested in both counts twice)."""
    return (
        "test results (ELA + math)"
        if measure in ("catch_up_rate", "growth_grade_levels")
        else "survey responses"
        if measure.endswith("_favorable")
        else "students"
    )


def _compact(t: Table, *, subtitle: bool = False) -> Table:
    """Mark a table made of many small per-group tables to print in two columns (``subtitle``: its first
    caption's subtitle prints too; otherwise a compact table prints captions without subtitles)."""
    cls = "table-wrap compact with-subtitle" if subtitle else "table-wrap compact"
    t.html = t.html.replace('<div class="table-wrap">', f'<div class="{cls}">', 1)
    return t


def scorecard_tables(
    card, *, school_names: Mapping | None = None, max_schools: int | None = None
) -> list[Table]:
    """The scorecard's tables: goals, district measures with trends, student groups, largest gaps, schools (every
    school up to ``max_schools``, :data:`~opportunity_research.config.PAGE_SCHOOLS`; then the lowest, middle and
    highest of each measure, :mod:`opportunity_research.report.school_detail`).

    Every table is long (one row per value), so no column is lost on paper or on a phone.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.study.scorecard import opportunity_scorecard
    >>> ind = pd.DataFrame({"measure": "catch_up_rate", "school_id": ["all", "all", "S1"], "group": "all",
    ...                     "school_year": [2017, 2018, 2018], "n": [200, 210, 80], "estimate": [0.20, 0.31, 0.25],
    ...                     "ci_lower": [0.15, 0.25, 0.16], "ci_upper": [0.26, 0.38, 0.36], "suppressed": False,
    ...                     "suppression_reason": ""})
    >>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": "catch_up_rate", "group": "all", "baseline_year": [2017],
    ...                       "target": [0.30], "target_year": [2018]})
    >>> card = opportunity_scorecard(ind, goals=goals)
    >>> tables = scorecard_tables(card)
    >>> [t.text.splitlines()[0] for t in tables]
    ["The district's goals", 'District measures', 'Schools']
    >>> tables[1].frame.iloc[0]["Trend"]
    '+11 points since 2017-18 (20%)'
    """
    names = {**getattr(card, "schools", {}), **dict(school_names or {})}
    min_n = card.min_n
    out = [goals_table(card.goals)]
    t = card.table
    value_cols = [
        Col("value_text", "value", label="Value"),
        Col("interval_text", "value", label="95% interval"),
        Col("n", "count", label="n"),
        Col("n_unit", "note", label="n counts"),
    ]
    if len(t):
        dist = _with_values(t[(t["school_id"] == "all") & (t["group"] == "all")])
        dist["trend"] = [_trend(r) for r in dist.to_dict("records")]
        out.append(
            table(
                dist,
                [Col("measure", "measure"), Col("school_year", "school_year")]
                + value_cols
                + [Col("trend", "note", label="Trend")],
                caption="District measures",
                min_n=min_n,
                subtitle="The latest value of each measure with its 95% interval, and the change since the "
                "first year with data (from the two values as printed).",
                notes=[
                    f"{labels.measure(m)}: {SCORECARD_DEFINITIONS[m]}"
                    for m in dict.fromkeys(dist["measure"])
                    if m in SCORECARD_DEFINITIONS
                ],
            )
        )
        short_cols = value_cols[:3]  # what n counts is said once, in the district table above
        grp = _with_values(t[(t["school_id"] == "all") & (t["group"] != "all")])
        if len(grp):
            out.append(
                _compact(
                    table(
                        grp,
                        [Col("group", "groupspec", label="Students")] + short_cols,
                        caption="District by student group",
                        groups="measure",
                        min_n=min_n,
                    )
                )
            )
        sch = _with_values(t[(t["school_id"] != "all") & (t["group"] == "all")])
        if len(sch):
            out.append(
                _schools(sch, names, short_cols, caption="Schools", min_n=min_n, max_schools=max_schools)
            )
    lg = card.largest_gaps
    if len(lg):
        lg = lg.copy()
        lg["who"] = [
            labels.level(g, lv) if not _missing(lv) else r
            for g, lv, r in zip(lg["group"], lg["level"], lg["note"])
        ]
        lg["reference_text"] = [
            (
                "All other students"
                if _missing(ref) or str(ref) in ("all other students", "nan")
                else labels.level(g, ref)
            )
            if not _missing(d)
            else ""
            for g, ref, d in zip(lg["group"], lg["reference"], lg["difference"])
        ]
        cols = (
            [Col("measure", "measure", label="Resource")]
            + ([Col("subject", "subject")] if "subject" in lg.columns else [])
            + [
                Col("who", label="Students"),
                Col("estimate", "percent", label="Group's share"),
                Col("reference_text", label="Compared with"),
                Col("reference_estimate", "percent", label="Comparison group's share"),
                Col("difference", "points"),
                Col("interval", "interval_points"),
            ]
        )
        if lg["reference_text"].isin(["All other students", ""]).all():
            cols = [c for c in cols if c.name != "reference_text"]
        out.append(
            table(
                lg,
                cols,
                caption="Largest gaps in access",
                subtitle="Per resource, the group furthest below the students it is compared with (all "
                "other students unless a column names them).",
            )
        )
    return out


def scorecard_page(
    card,
    *,
    district_id: str,
    links: Sequence[tuple[str, str | None]] = (),
    generated: _dt.date | None = None,
    school_names: Mapping | None = None,
    max_schools: int | None = None,
) -> str:
    """The printable Opportunity Scorecard page (self-contained HTML) of a :class:`~opportunity_research.study.scorecard.Scorecard`.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.study.scorecard import opportunity_scorecard
    >>> ind = pd.DataFrame({"measure": "catch_up_rate", "school_id": ["all", "all", "S1"], "group": "all",
    ...                     "school_year": [2017, 2018, 2018], "n": [200, 210, 80], "estimate": [0.20, 0.31, 0.25],
    ...                     "ci_lower": [0.15, 0.25, 0.16], "ci_upper": [0.26, 0.38, 0.36], "suppressed": False,
    ...                     "suppression_reason": ""})
    >>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": "catch_up_rate", "group": "all", "baseline_year": [2017],
    ...                       "target": [0.30], "target_year": [2018]})
    >>> card = opportunity_scorecard(ind, goals=goals)
    >>> import datetime
    >>> page = scorecard_page(card, district_id="demo_lakeside", generated=datetime.date(2026, 12, 5))
    >>> "<h1>Lakeside</h1>" in page, "Synthetic demonstration data" in page, page.count("<table")
    (True, True, 3)
    """
    name = district_name(district_id)
    t = card.table
    years = sorted({int(y) for y in t["school_year"]}) if len(t) else []
    date = generated or _dt.datetime.now(_dt.UTC).date()
    facts = [
        ("School year", labels.school_year(years[-1]) if years else labels.MISSING),
        ("Generated", labels.long_date(date)),
        (
            "Data source",
            "Synthetic demonstration data" if is_demo(district_id) else "The district's own records",
        ),
    ]
    tables = scorecard_tables(card, school_names=school_names, max_schools=max_schools)
    title = f"Opportunity Scorecard: {name}"
    from ..study import scorecard as _sc

    rules = getattr(_sc, "GOAL_STATUS_RULES", None) or {
        "on track": "at or past the straight-line path from the baseline to the target"
    }
    statuses = [_STATUS.get(k, k) for k in getattr(_sc, "GOAL_STATUSES", _STATUS)]
    return render(
        "scorecard.html.j2",
        title=title,
        kicker="Opportunity Scorecard",
        heading=name,
        facts=facts,
        banner=_DEMO_BANNER if is_demo(district_id) else "",
        links=[{"text": x, "href": h} for x, h in links],
        tables=tables,
        needs=[reader_words(x) for x in card.needs],
        statuses=statuses,
        rules=[(_STATUS.get(k, k), v) for k, v in rules.items()],
        min_n=card.min_n,
        mark=SUPPRESSED_MARK,
        running_head=title,
        running_right=facts[0][1],
        footer=f"Generated by opportunity-research {__version__}. Belonging, consistency and coherence: "
        "shares of students answering favorably; the other measures are defined under District "
        "measures.",
    )


_DEMO_BANNER = (
    "Synthetic demonstration data: this district and its students are invented; the numbers show what "
    "the report does, not any real school system."
)


def schools_table(card, *, school_names: Mapping | None = None, max_schools: int | None = None) -> Table:
    """School-level breakdown: every scorecard measure per school (latest year), schools by name; a district of
    more than ``max_schools`` schools (:data:`~opportunity_research.config.PAGE_SCHOOLS`) shows the lowest, middle
    and highest schools of each measure (:mod:`opportunity_research.report.school_detail`).

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.study.scorecard import opportunity_scorecard
    >>> ind = pd.DataFrame({"measure": "catch_up_rate", "school_id": ["all", "all", "S1"], "group": "all",
    ...                     "school_year": [2017, 2018, 2018], "n": [200, 210, 80], "estimate": [0.20, 0.31, 0.25],
    ...                     "ci_lower": [0.15, 0.25, 0.16], "ci_upper": [0.26, 0.38, 0.36], "suppressed": False,
    ...                     "suppression_reason": ""})
    >>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": "catch_up_rate", "group": "all", "baseline_year": [2017],
    ...                       "target": [0.30], "target_year": [2018]})
    >>> card = opportunity_scorecard(ind, goals=goals)
    >>> schools_table(card, school_names={"S1": "Oak Hill"}).frame.to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'Measure': 'Catch-up rate (at grade level three years later)', 'Value': '25%', '95% interval': '16% to 36%',
      'Students': '80'}]
    """
    names = {**getattr(card, "schools", {}), **dict(school_names or {})}
    t = card.table
    sch = _with_values(t[(t["school_id"] != "all") & (t["group"] == "all")]) if len(t) else t
    value_cols = [
        Col("value_text", "value", label="Value"),
        Col("interval_text", "value", label="95% interval"),
        Col("n", "count"),
    ]
    return _schools(
        sch,
        names,
        value_cols,
        caption="Schools: every measure, latest year",
        min_n=card.min_n,
        empty="No school-level measures could be computed.",
        max_schools=max_schools,
    )


def _schools(
    sch: pd.DataFrame,
    names: Mapping,
    value_cols: list[Col],
    *,
    caption: str,
    min_n: int,
    empty: str = "No rows to show.",
    max_schools: int | None = None,
) -> Table:
    """The scorecard measures per school (rows of ``Scorecard.table``, ``_with_values``): every school, one small
    table each, when there are at most ``max_schools`` (:data:`~opportunity_research.config.PAGE_SCHOOLS`);
    otherwise per measure the lowest, middle and highest schools with their rank
    (:func:`~opportunity_research.report.school_detail.select_schools`), and the CSV with every school named.
    Either way the tables print in two columns (the selection's subtitle, saying what is shown, prints too), so
    a scorecard of any size keeps to its 6 printed pages."""
    if len(sch):
        sch = sch.assign(school_label=[labels.school(x, names) for x in sch["school_id"]])
    shown, info = select_schools(sch, within=["measure"], max_schools=max_schools)
    if info is None:
        if len(sch):
            sch = sch.sort_values(["school_label"], kind="stable")
        return _compact(
            table(
                sch,
                [Col("measure", "measure")] + value_cols,
                caption=caption,
                groups="school_label" if len(sch) else None,
                min_n=min_n,
                empty=empty,
            )
        )
    subtitle, note = selection_notes(info, per="measure", csv="scorecard")
    return _compact(
        table(
            shown,
            [Col("school_label", label="School"), Col("rank_text", "value", label="Rank")] + value_cols,
            caption=caption,
            subtitle=subtitle,
            groups="measure",
            min_n=min_n,
            notes=[note],
        ),
        subtitle=True,
    )
