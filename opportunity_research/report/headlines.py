"""Headline findings and the report's first screen, rendered from the district's indicator table.

Every headline is one row of :func:`opportunity_research.report.indicator_table.indicator_table`: its number, the
interval of that number and its n are the row's printed texts, so the first screen, the board summary and
``findings.json`` cannot disagree. Headlines are ranked by how much opportunity students lose (the row's
``hours_lost``: class hours a year per subject), not by statistical clarity; a number whose interval
covers its point of comparison never outranks one whose interval does not.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ..study import labels
from .indicator_table import HOURS, indicator_table
from .presentation import HtmlBlock, district_name, is_demo, render

__all__ = [
    "Finding",
    "finding_from",
    "first_screen",
    "gap_sentence",
    "headline_findings",
    "largest_gap",
]

#: The study's contrast of classrooms serving mostly higher-income vs mostly low-income students.
STUDY_INCOME_RATIO = {
    "grade_appropriate": "about twice as much",
    "strong_instruction": "about five times as much",
}


@dataclass(frozen=True)
class Finding:
    """One headline finding: what it is about, the number, its interval and n, what it means, its rank score
    (class hours a year per subject that students lose), and the indicator it renders.

    Examples
    --------
    >>> f = Finding("Strong instruction", "10%", "95% interval 7% to 13%; 481 observed lessons", "...", 162.8)
    >>> f.number, f.score
    ('10%', 162.8)
    """

    what: str
    number: str
    interval: str
    meaning: str
    score: float
    indicator: str = ""


def _what(row, T) -> str:
    kind = row["kind"]
    m = T(labels.measure(row["measure"])) if row.get("measure") else ""
    if kind == "gap":
        who = T(labels.level(row["group"], row["level"]))
        return T("{measure}: {group} ({subject})").format(
            measure=m, group=who, subject=T(labels.subject(row["subject"]))
        )
    if kind == "classrooms":
        return T("{measure}: higher- vs lower-income classrooms").format(measure=m)
    if kind == "growth":
        return T("Growth with more {measure} ({subject})").format(
            measure=m[:1].lower() + m[1:], subject=T(labels.subject(row["subject"]))
        )
    if kind == "trajectory":
        return T("Caught up a year later (students behind in {cohort})").format(cohort=row["year"])
    return m


def finding_from(row, lang: str = "en", cuts: Mapping | None = None) -> Finding:
    """A :class:`Finding` from one indicator row (a mapping), in ``lang`` (``"en"`` or ``"es"``).

    ``cuts`` are the analysis's cut points: where one a resource depends on differs from TNTP's default, the
    study's baseline is named as not directly comparable
    (:func:`~opportunity_research.report.settings.study_note`).

    Examples
    --------
    >>> from opportunity_research.report.indicator_table import example_analysis, indicator_table
    >>> row = indicator_table(example_analysis()).iloc[3].to_dict()
    >>> f = finding_from(row)
    >>> f.what, f.number, f.interval
    ('Strong instruction: higher- vs lower-income classrooms', '3.6×', '95% interval 2.0 to 6.6; 26 vs 96 classrooms')
    >>> finding_from(row, "es").interval
    'intervalo del 95 %: 2,0 a 6,6; 26 frente a 96 aulas'
    >>> finding_from(indicator_table(example_analysis()).iloc[0].to_dict(), cuts={"strong_instruction": 2.5}).meaning
    'About 163 of 180 class hours a year per subject without it. The study’s national baseline (16%) is not directly comparable: this report uses a different cut point for this resource.'
    """
    from .settings import study_note

    def T(text: str) -> str:
        return labels.translate(text, lang)

    def L(text: str) -> str:
        return labels.localize(text, lang)

    kind, unit = row["kind"], row["unit"]
    number = L(row["value_text"] + {"points": " " + T("points"), "sd": " SD"}.get(unit, ""))
    n = labels.count(row["n"])
    if not pd.isna(row.get("n_reference")):
        n = T("{n} vs {n_reference}").format(n=n, n_reference=labels.count(row["n_reference"]))
    counts = T(row["n_counts"])
    interval = L(
        T("95% interval {interval}; {n} {counts}").format(interval=row["interval_text"], n=n, counts=counts)
    )
    h = float(row["hours_lost"] or 0.0)
    hours = L(labels.count(h))
    if kind == "resource" and study_note(row["measure"], cuts):
        meaning = T(
            "About {hours} of {total} class hours a year per subject without it. The study’s national baseline "
            "({study}) is not directly comparable: this report uses a different cut point for this resource."
        ).format(hours=hours, total=f"{HOURS:.0f}", study=labels.percent(row["study"]))
    elif kind == "resource":
        meaning = T(
            "About {hours} of {total} class hours a year per subject without it. National baseline from the study: "
            "{study} (how little students typically get, not a target)."
        ).format(hours=hours, total=f"{HOURS:.0f}", study=labels.percent(row["study"]))
    elif kind == "work":
        meaning = T(
            "Share of student work that showed mastery of grade-level standards. National baseline from the study: "
            "{study}."
        ).format(study=labels.percent(row["study"]))
    elif kind == "gap":
        meaning = T(
            "{group} had this resource {share} of the time, vs {reference_share} for {reference}: about {hours} "
            "fewer class hours a year."
        ).format(
            group=T(labels.level(row["group"], row["level"])),
            share=labels.percent(row["estimate"]),
            reference_share=labels.percent(row["reference_estimate"]),
            reference=T(row["reference_label"]),
            hours=hours,
        )
    elif kind == "classrooms":
        meaning = T(
            "Classrooms serving mostly higher-income students had this resource {share} of the time, vs "
            "{reference_share} in classrooms serving mostly low-income students: about {hours} fewer class hours "
            "a year in the latter."
        ).format(
            share=labels.percent(row["estimate"]),
            reference_share=labels.percent(row["reference_estimate"]),
            hours=hours,
        )
        if row["measure"] in STUDY_INCOME_RATIO:
            meaning += " " + T("The study found {ratio}.").format(ratio=T(STUDY_INCOME_RATIO[row["measure"]]))
    elif kind == "growth":
        from .indicator_table import fmt_interval, fmt_value

        meaning = T(
            "Students in classrooms at the district's 75th percentile of access grew this much more over the year "
            "than students at its 25th percentile (an association, not proof of cause)."
        )
        if not pd.isna(row["months"]) and not pd.isna(row["months_ci_lower"]):
            meaning += " " + L(
                T("Roughly {months} months of learning (95% interval {interval}; an approximation).").format(
                    months=fmt_value("months", row["months"]),
                    interval=fmt_interval("months", row["months_ci_lower"], row["months_ci_upper"]),
                )
            )
        elif not pd.isna(row["months"]):
            meaning += " " + L(
                T(
                    "Roughly {months} months of learning (an approximation; no interval could be computed)."
                ).format(months=fmt_value("months", row["months"]))
            )
    else:
        meaning = T(row["definition"])
    return Finding(L(_what(row, T)), number, interval, meaning, h, row["indicator"])


def _ranked(ind: pd.DataFrame) -> pd.DataFrame:
    """Clear rows before unclear ones, then most hours lost first (stable in table order)."""
    if not len(ind):
        return ind
    return ind.assign(_c=ind["clear"].astype(bool)).sort_values(
        ["_c", "hours_lost"], ascending=False, kind="stable"
    )


def headline_findings(a, *, top: int = 5, indicators: pd.DataFrame | None = None) -> list[Finding]:
    """The report's ranked headline findings (3 to ``top``), each an indicator row.

    Candidates: the resources and the work-sample share (each beside the study's national baseline), the
    largest gap between groups per resource, the higher- vs lower-income classroom ratio, and the growth
    effect per subject. Rule: of the rows whose interval excludes the point of comparison, the one row of each
    kind that loses students the most class hours, the kinds ranked by hours lost; when fewer than three such
    rows exist, the next rows by hours lost fill in (clear before unclear), and the catch-up rate comes last.

    Examples
    --------
    >>> from opportunity_research.report.indicator_table import example_analysis
    >>> [(f.indicator, round(f.score)) for f in headline_findings(example_analysis())]  # doctest: +NORMALIZE_WHITESPACE
    [('share.strong_instruction', 163), ('work.met_grade_level', 158), ('growth.math', 36),
     ('income_ratio.strong_instruction', 30), ('gap.grade_appropriate', 22)]
    """
    ind = indicator_table(a) if indicators is None else indicators
    ind = ind[ind["kind"].isin(["resource", "work", "gap", "classrooms", "growth", "trajectory"])]
    ranked = _ranked(ind)
    lead = ranked[(ranked["kind"] != "trajectory") & ranked["clear"].astype(bool)].drop_duplicates("kind")
    lead = _ranked(lead)
    rows = list(lead.to_dict("records"))[:top]
    if len(rows) < 3:
        rest = [r for r in ranked.to_dict("records") if r["indicator"] not in {x["indicator"] for x in rows}]
        rest.sort(key=lambda r: r["kind"] == "trajectory")
        rows += rest[: 3 - len(rows)]
    return [finding_from(r, cuts=getattr(a, "cuts", None)) for r in rows]


def largest_gap(ind: pd.DataFrame):
    """The indicator row naming the district's largest opportunity gap (between groups or classrooms), or None.

    Examples
    --------
    >>> from opportunity_research.report.indicator_table import example_analysis, indicator_table
    >>> largest_gap(indicator_table(example_analysis()))["indicator"]
    'income_ratio.strong_instruction'
    """
    g = ind[ind["kind"].isin(["gap", "classrooms"])]
    if not len(g):
        return None
    return _ranked(g).iloc[0].to_dict()


def first_screen(
    a,
    *,
    generated: _dt.date | None = None,
    source: str | None = None,
    findings: Sequence[Finding] | None = None,
    indicators: pd.DataFrame | None = None,
):
    """The report's first screen: district, school year, date, data source, demo banner, ranked findings.

    ``a`` is a :class:`~opportunity_research.analysis.DistrictAnalysis`. The school year is the analysis
    year; ``generated`` defaults to today (UTC); ``source`` to a description of the district's data;
    ``indicators`` to ``indicator_table(a)`` (pass it when the caller has it already).

    Examples
    --------
    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> block = first_screen(demo_analysis("demo_pinebrook"), generated=_dt.date(2026, 1, 5))
    >>> print(block.text.splitlines()[0])
    Opportunity report: Pinebrook (2016-17)
    >>> "Synthetic demonstration data" in block.html
    True
    """
    from ..study.measures import analysis_year

    d = a.district
    did = d.district_id
    demo = is_demo(did)
    year = analysis_year(d)
    date = generated or _dt.datetime.now(_dt.UTC).date()
    if source is None:
        n = len(d.manifest.get("inputs", {}))
        source = (
            "Synthetic demonstration data (opportunity-research synthesize)"
            if demo
            else f"The district's own records ({n} data files)"
        )
    ind = indicator_table(a) if indicators is None else indicators
    found = list(findings) if findings is not None else headline_findings(a, indicators=ind)
    gap = largest_gap(ind)
    name = district_name(did)
    html = render(
        "first_screen.html.j2",
        title=f"Opportunity report: {name}",
        name=name,
        district_id=did,
        school_year=labels.school_year(year),
        generated=labels.long_date(date),
        source=source,
        demo=demo,
        findings=found,
        story=gap_sentence(name, gap) if gap else "",
        n_students=labels.count(len(d.students)),
        n_schools=labels.count(d.schools["school_id"].nunique()),
    )
    text = "\n".join(
        [f"Opportunity report: {name} ({labels.school_year(year)})"]
        + [f"{i + 1}. {f.what}: {f.number} ({f.interval}). {f.meaning}" for i, f in enumerate(found)]
    )
    return HtmlBlock(html, text)


def gap_sentence(name: str, row, lang: str = "en") -> str:
    """One sentence naming the district's largest opportunity gap (a row of :func:`largest_gap`), in ``lang``.

    The one builder of this sentence: the report's first screen, the index page and the board summary (English
    and Spanish) all print it.

    Examples
    --------
    >>> from opportunity_research.report.indicator_table import example_analysis, indicator_table
    >>> row = largest_gap(indicator_table(example_analysis()))
    >>> print(gap_sentence("Lakeside", row))  # doctest: +NORMALIZE_WHITESPACE
    Lakeside's largest opportunity gap: classrooms serving mostly low-income students had strong instruction 6% of
    the time, vs 23% in classrooms serving mostly higher-income students (3.6× as much, 95% interval 2.0 to 6.6):
    about 30 fewer class hours a year.
    >>> print(gap_sentence("Lakeside", row, "es"))  # doctest: +NORMALIZE_WHITESPACE
    La mayor brecha de oportunidades en Lakeside: las aulas con mayoría de estudiantes de bajos ingresos tuvieron
    enseñanza sólida el 6% del tiempo, frente al 23% en las aulas con mayoría de estudiantes de mayores ingresos
    (3,6× más; intervalo del 95 %: 2,0 a 6,6), unas 30 horas de clase menos al año.
    """

    def T(text: str) -> str:
        return labels.translate(text, lang)

    common = {
        "name": name,
        "measure": T(labels.measure(row["measure"])).lower(),
        "share": labels.percent(row["estimate"]),
        "reference_share": labels.percent(row["reference_estimate"]),
        "interval": row["interval_text"],
        "hours": labels.count(row["hours_lost"]),
    }
    if row["kind"] == "gap":
        text = T(
            "{name}'s largest opportunity gap: {group} ({subject}) had {measure} {share} of the time, vs "
            "{reference_share} for {reference}: about {hours} fewer class hours a year (difference {difference} "
            "points, 95% interval {interval})."
        ).format(
            group=T(labels.level(row["group"], row["level"])),
            subject=T(labels.subject(row["subject"])),
            reference=T(row["reference_label"]),
            difference=row["value_text"],
            **common,
        )
    else:
        text = T(
            "{name}'s largest opportunity gap: classrooms serving mostly low-income students had {measure} "
            "{reference_share} of the time, vs {share} in classrooms serving mostly higher-income students "
            "({ratio} as much, 95% interval {interval}): about {hours} fewer class hours a year."
        ).format(ratio=row["value_text"], **common)
    return labels.localize(text, lang)
