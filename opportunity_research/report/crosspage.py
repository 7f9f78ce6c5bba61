"""The cross-district report's tables and its first screen (which districts are furthest from the baseline).

Every table renders from ``crossdistrict.compare(...)``, which reads each district's published
``findings.json``; numbers are formatted by :mod:`opportunity_research.labels` as on the district pages.
"""

from __future__ import annotations

import html as _html

import numpy as np
import pandas as pd

from ..study import labels
from .indicator_table import STUDY, fmt_interval
from .presentation import STUDY_SOURCE, Col, HtmlBlock, Table, district_name, is_demo, table


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v))


def _number(v, digits: int) -> str:
    return labels.MISSING if _missing(v) else f"{float(v):.{digits}f}".replace("-", "−")

__all__ = [
    "cross_first_screen",
    "cross_gaps_table",
    "cross_goals_table",
    "cross_growth_table",
    "cross_resources_table",
]


def _district_col(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(district=[district_name(d) for d in t["district_id"]]) if len(t) else t


def cross_resources_table(resources: pd.DataFrame) -> Table:
    """Each district's share of class time with each resource (``crossdistrict.compare(...).resources``)."""
    t = _district_col(resources)
    if len(t):
        t = t.assign(study=[STUDY.get(r, np.nan) for r in t["resource"]]).sort_values(
            ["resource", "district"], kind="stable"
        )
    return table(
        t,
        [
            Col("district", label="District"),
            Col("n", "count", label="Evidence"),
            Col("estimate", "percent", label="Share"),
            Col("interval", "interval_percent"),
            Col("study", "percent", label="Study (2018)"),
        ],
        caption="The four resources in each district",
        groups="resource" if len(t) else None,
        notes=[f"Study: {STUDY_SOURCE}."],
    )


def cross_gaps_table(gaps: pd.DataFrame) -> Table:
    """Per district and resource, the largest unsuppressed shortfall (``crossdistrict.compare(...).gaps``)."""
    t = _district_col(gaps)
    return table(
        t,
        [
            Col("district", label="District"),
            Col("subject", "subject"),
            Col("level", "group"),
            Col("n", "count"),
            Col("difference", "points"),
            Col("interval", "interval_points"),
        ],
        caption="Largest gap in each resource, by district",
        groups="measure" if len(t) else None,
        subtitle="The group furthest below all other students, per district; percentage points.",
    )


def cross_growth_table(growth: pd.DataFrame) -> Table:
    """Growth-model effects (all four resources together) per district (``crossdistrict.compare(...).growth``).

    The months of learning sit beside the effect they are converted from (classrooms at the district's 75th
    vs 25th percentile of access); the full-vs-none effect follows with its own interval, and a row whose
    interval includes no effect says so.
    """
    t = _district_col(growth)
    if len(t):
        t = t.assign(district=[d + ("" if bool(c) else " †") for d, c in zip(t["district"], t["converged"])])
        t = t.sort_values(["resource", "effect", "district", "subject"], kind="stable")
        lo = t["contrast_ci_lower"] if "contrast_ci_lower" in t.columns else t["ci_lower"]
        hi = t["contrast_ci_upper"] if "contrast_ci_upper" in t.columns else t["ci_upper"]
        t = t.assign(
            reading=[
                "Clear"
                if (x > 0 or y < 0)
                else "Uncertain: the interval includes no effect"
                if not (_missing(x) or _missing(y))
                else labels.MISSING
                for x, y in zip(lo, hi)
            ]
        )
    notes = [
        (
            "Standard deviations (SD) of the spring score. Months of learning are converted from the 25th → 75th "
            "percentile contrast beside them (an approximation; not given where it would exceed a school year). "
            "Full vs none: classrooms that always vs never have the resource, a larger and less certain contrast."
        )
    ]
    if len(t) and not t["converged"].astype(bool).all():
        notes.append("† The model could not be verified; do not rely on this row.")
    return table(
        t,
        [
            Col("district", label="District"),
            Col("subject", "subject"),
            Col("effect", "measure"),
            Col("contrast_estimate", "number", label="25th → 75th percentile (SD)"),
            Col("contrast", "interval_number", prefix="contrast_", label="95% interval"),
            Col("months", "number1", label="Months"),
            Col("months", "interval_number1", prefix="months_", label="Months, 95% interval"),
            Col("estimate", "number", label="Full vs none (SD)"),
            Col("interval", "interval_number", label="Full vs none, 95% interval"),
            Col("reading", "note", label="Reading"),
        ],
        caption="What access is worth, by district",
        groups="resource" if len(t) else None,
        notes=notes,
        empty="No district had enough students for growth models.",
    )


def cross_goals_table(goals: pd.DataFrame) -> Table:
    """Every district's goals and their status (``crossdistrict.compare(...).goals``)."""
    t = _district_col(goals)
    if len(t):
        t = t.assign(
            target_text=[
                (labels.percent(v) if m != "growth_grade_levels" else _number(v, 2)) + f" by {labels.year(y)}"
                for v, m, y in zip(t["target"], t["measure"], t["target_year"])
            ]
        )
    return table(
        t,
        [
            Col("district", label="District"),
            Col("goal_id", label="Goal"),
            Col("measure", "measure"),
            Col("group", "groupspec", label="Students"),
            Col("target_text", label="Target"),
            Col("status", "status"),
        ],
        caption="Goals and their status, by district",
        empty="No district has written goals.",
    )


_BANNER = (
    "Synthetic demonstration data: these districts and their students are invented; the numbers show what "
    "the report does, not any real school system."
)


def cross_first_screen(resources: pd.DataFrame) -> HtmlBlock:
    """The cross-district page's first screen: the banner (demo districts) and, per district, the resource
    furthest below the study's national baseline, furthest first (only shortfalls whose interval lies below
    the baseline)."""
    rows = []
    t = resources
    if len(t):
        t = t.assign(study=[STUDY.get(r, np.nan) for r in t["resource"]])
        t = t[t["study"].notna() & t["estimate"].notna()]
        t = t.assign(short=t["study"] - t["estimate"], clear=t["ci_upper"] < t["study"])
        t = t[t["clear"]].sort_values("short", ascending=False)
        for did, part in t.groupby("district_id", sort=False):
            r = part.iloc[0]
            rows.append(
                (
                    district_name(did),
                    labels.measure(r["resource"]),
                    labels.percent(r["estimate"]),
                    fmt_interval("share", r["ci_lower"], r["ci_upper"]),
                    labels.percent(r["study"]),
                    labels.count(r["n"]),
                    labels.UNITS.get(r["resource"], ""),
                    round(float(r["short"]) * 180),
                )
            )
    demo = len(resources) and all(is_demo(d) for d in resources["district_id"].unique())
    items = "".join(
        f"<li><strong>{_html.escape(n)}</strong>: {_html.escape(m.lower())} {v} of the time (95% interval {i}; "
        f"{c} {_html.escape(u)}) vs the national baseline of {s}, about {h} fewer class hours a year.</li>"
        for n, m, v, i, s, c, u, h in rows
    )
    lead = (
        f'<p class="story">{_html.escape(rows[0][0])} is furthest from the study\'s national baseline: '
        f"{_html.escape(rows[0][1].lower())} {rows[0][2]} of the time against {rows[0][4]}.</p>"
        if rows
        else '<p class="story">No district is clearly below the study\'s national baseline in any resource.</p>'
    )
    html = (
        (f'<p class="banner" role="note">{_html.escape(_BANNER)}</p>' if demo else "")
        + '<section class="headlines" aria-labelledby="cross-headline"><h2 id="cross-headline">Which districts '
        "are furthest from the national baseline</h2>"
        + lead
        + f"<ol>{items}</ol>"
        + '<p class="note">Per district, the resource furthest below the figure of TNTP\'s <cite>The Opportunity '
        "Myth</cite> (2018), whose five school systems show how little students typically get: a baseline, not "
        "a target. Only shortfalls whose 95% interval lies below the baseline are listed.</p></section>"
    )
    text = "\n".join(f"{n}: {m} {v} ({i}) vs baseline {s}" for n, m, v, i, s, *_ in rows)
    return HtmlBlock(html, text)
