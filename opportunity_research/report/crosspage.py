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
from .tables import is_missing

__all__ = [
    "cross_first_screen",
    "cross_gaps_table",
    "cross_goals_table",
    "cross_growth_table",
    "cross_resources_table",
]


def _district_col(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(district=[district_name(d) for d in t["district_id"]]) if len(t) else t


def _study(t: pd.DataFrame, cuts: dict) -> list[float]:
    """The study's figure per row; NaN where the row's district changed a cut point the resource depends on."""
    from .settings import study_note

    return [
        np.nan if study_note(r, cuts.get(d)) else STUDY.get(r, np.nan)
        for d, r in zip(t["district_id"], t["resource"])
    ]


def _cut_notes(t: pd.DataFrame, cuts: dict) -> list[str]:
    from .settings import study_note

    notes = {}
    for d, r in zip(t["district_id"], t["resource"]):
        note = study_note(r, cuts.get(d))
        if note:
            notes[(d, r)] = f"{district_name(d)}, {labels.measure(r).lower()}: no study figure shown: {note}."
    return list(notes.values())


def cross_resources_table(resources: pd.DataFrame, cuts: dict | None = None) -> Table:
    """Each district's share of class time with each resource (``crossdistrict.compare(...).resources``).

    ``cuts`` (default ``resources.attrs["cuts"]``, set by ``compare`` from each ``findings.json``) maps a district
    to the cut points it changed: those rows show no study figure, and a note says why.

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"district_id": ["demo_a", "demo_b"], "resource": "strong_instruction", "n": [104, 300],
    ...                     "estimate": [0.03, 0.15], "ci_lower": [0.01, 0.11], "ci_upper": [0.09, 0.19]})
    >>> cross_resources_table(res).frame.iloc[0].tolist()
    ['A', '104', '3%', '1% to 9%', '16%']
    >>> t = cross_resources_table(res, cuts={"demo_a": {"strong_instruction": 2.5}})
    >>> t.frame.iloc[0].tolist()[-1], "A, strong instruction: no study figure shown" in t.html
    ('–', True)
    """
    cuts = resources.attrs.get("cuts", {}) if cuts is None else cuts
    t = _district_col(resources)
    if len(t):
        t = t.assign(study=_study(t, cuts)).sort_values(["resource", "district"], kind="stable")
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
        notes=[f"Study: {STUDY_SOURCE}.", *(_cut_notes(t, cuts) if len(t) else [])],
    )


def cross_gaps_table(gaps: pd.DataFrame) -> Table:
    """Per district and resource, the largest unsuppressed shortfall (``crossdistrict.compare(...).gaps``).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"district_id": ["demo_a"], "measure": "engaged", "subject": "math", "group": "english_learner",
    ...                   "level": [1.0], "n": [191], "difference": [-0.1], "ci_lower": [-0.15], "ci_upper": [-0.05]})
    >>> cross_gaps_table(g).frame.iloc[0].tolist()
    ['A', 'Math', 'English learners', '191', '−10.0', '−15.0 to −5.0']
    """
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

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"district_id": ["demo_a"], "subject": "ela", "resource": "engaged", "effect": "access",
    ...                   "estimate": [1.25], "ci_lower": [-0.66], "ci_upper": [3.2], "contrast_estimate": [0.35],
    ...                   "contrast_ci_lower": [0.14], "contrast_ci_upper": [0.56], "months": [4.6],
    ...                   "months_ci_lower": [1.8], "months_ci_upper": [7.4], "converged": [True]})
    >>> row = cross_growth_table(g).frame.iloc[0]
    >>> row["25th → 75th percentile (SD)"], row["Months"], row["Reading"]
    ('0.35', '4.6', 'Clear')
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
                if not (is_missing(x) or is_missing(y))
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
    """Every district's goals and their status (``crossdistrict.compare(...).goals``).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"district_id": ["demo_a"], "goal_id": ["G1"], "measure": "catch_up_rate", "group": "all",
    ...                   "target": [0.35], "target_year": [2017], "status": ["met"]})
    >>> cross_goals_table(g).frame.iloc[0].tolist()
    ['A', 'G1', 'Catch-up rate (at grade level three years later)', 'All students', '35% by 2017', '✓ Met']
    """
    t = _district_col(goals)
    if len(t):
        t = t.assign(
            target_text=[
                (labels.percent(v) if m != "growth_grade_levels" else labels.number(v, 2))
                + f" by {labels.year(y)}"
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


def cross_first_screen(resources: pd.DataFrame, cuts: dict | None = None) -> HtmlBlock:
    """The cross-district page's first screen: the banner (demo districts) and, per district, the resource
    furthest below the study's national baseline, furthest first (only shortfalls whose interval lies below
    the baseline). A resource whose cut point the district changed (``cuts``, default
    ``resources.attrs["cuts"]``) is not compared with the study; a note names the district.

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"district_id": ["demo_a", "demo_b"], "resource": "strong_instruction", "n": [104, 300],
    ...                     "estimate": [0.03, 0.15], "ci_lower": [0.01, 0.11], "ci_upper": [0.09, 0.19]})
    >>> print(cross_first_screen(res))
    A: Strong instruction 3% (1% to 9%) vs baseline 16%
    >>> print(cross_first_screen(res, cuts={"demo_a": {"strong_instruction": 2.5}}))
    <BLANKLINE>
    """
    cuts = resources.attrs.get("cuts", {}) if cuts is None else cuts
    rows = []
    t = resources
    notes = _cut_notes(t, cuts) if len(t) else []
    if len(t):
        t = t.assign(study=_study(t, cuts))
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
        "a target. Only shortfalls whose 95% interval lies below the baseline are listed.</p>"
        + "".join(f'<p class="note">{_html.escape(n)}</p>' for n in notes)
        + "</section>"
    )
    text = "\n".join(f"{n}: {m} {v} ({i}) vs baseline {s}" for n, m, v, i, s, *_ in rows)
    return HtmlBlock(html, text)
