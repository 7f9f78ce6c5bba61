"""The board summary: ``summary.html`` (and its Spanish twin ``summary.es.html``), at most two printed pages.

One sentence naming the district's largest opportunity gap; three to five findings ranked by how much
opportunity students lose (:func:`opportunity_research.report.headlines.headline_findings`, the same rows as the
report's first screen, so the numbers are the same strings); the study's figures framed as a national
baseline; the goals' status; questions a board can ask (in the spirit of TNTP's *The Opportunity Makers*).
Every sentence goes through :func:`opportunity_research.labels.translate` (English msgids, a Spanish
catalogue in ``resources/summary.es.po``), numbers through :func:`labels.localize`.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import pandas as pd

from ..study import labels
from ..version import __version__
from .headlines import Finding, finding_from, gap_sentence, headline_findings, largest_gap
from .indicator_table import indicator_table
from .presentation import district_name, is_demo, render

__all__ = ["SUMMARY_FILES", "summary_page", "write_summary"]

#: The summary pages of a district folder, by language.
SUMMARY_FILES = {"en": "summary.html", "es": "summary.es.html"}

_STATUS_WORDS = {
    "met": "Met",
    "on track": "On track",
    "off track": "Off track",
    "baseline set": "Baseline set",
    "no data": "No data",
}


def _questions(found: list[Finding], ind, T) -> list[str]:
    """Questions a board can ask, one per kind of finding shown (then two standing questions)."""
    kinds = {str(i).split(".")[0] for i in (f.indicator for f in found)}
    qs = []
    if "gap" in kinds or "income_ratio" in kinds:
        qs.append(
            T(
                "Which students get less of each resource, in which schools, and what is the plan to close "
                "that gap this year?"
            )
        )
    if "share" in kinds or "work" in kinds:
        qs.append(
            T(
                "What share of assignments would be grade-appropriate if every classroom used the adopted "
                "curriculum, and how will we know each term?"
            )
        )
    if "growth" in kinds:
        qs.append(
            T(
                "Where students grew most, what did their classrooms do differently, and can other schools "
                "learn from them?"
            )
        )
    qs.append(T("When a student falls behind, how often do they catch up, and who follows up?"))
    qs.append(T("Which two or three goals will we track every year, and who reports on them to the board?"))
    return qs[:5]


def summary_page(
    a, *, lang: str = "en", generated: _dt.date | None = None, indicators: pd.DataFrame | None = None
) -> str:
    """The board summary page (self-contained HTML) of a ``DistrictAnalysis`` in ``lang``.

    ``indicators``: ``indicator_table(a)``, when the caller has it already (default: made here).

    Examples
    --------
    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> html = summary_page(demo_analysis("demo_pinebrook"), lang="es")
    >>> '<html lang="es">' in html, "La mayor brecha de oportunidades en Pinebrook" in html
    (True, True)
    """
    from ..study.measures import analysis_year

    def T(text: str) -> str:
        return labels.translate(text, lang)

    def L(text: str) -> str:
        return labels.localize(text, lang)

    did = a.district.district_id
    name = district_name(did)
    ind = indicator_table(a) if indicators is None else indicators
    found = [finding_from(r, lang, getattr(a, "cuts", None)) for r in _rows(a, ind)]
    gap = largest_gap(ind)
    story = (
        gap_sentence(name, gap, lang)
        if gap
        else T("No gap between student groups stood out in this district's data.")
    )
    baseline = [
        {
            "name": T(r["name"]),
            "value": r["value_text"],
            "interval": L(r["interval_text"]),
            "study": labels.percent(r["study"]),
        }
        for r in ind[ind["kind"].isin(["resource", "work"]) & ind["study"].notna()].to_dict("records")
        if r["indicator"] != "work.met_demands"
    ]
    goals = []
    g = getattr(a.scorecard, "goals", None)
    if g is not None and len(g):
        for r in g.to_dict("records"):

            def value(x, m=r["measure"]):
                return labels.percent(x) if m != "growth_grade_levels" else f"{float(x):.2f}"

            target = value(r["target"])
            now = (
                T("not available")
                if pd.isna(r.get("current"))
                else T("{value} in {year}").format(
                    value=value(r["current"]), year=labels.school_year(r["current_year"])
                )
            )
            goals.append(
                {
                    "status": T(_STATUS_WORDS.get(str(r["status"]), str(r["status"]))),
                    "text": L(
                        T("{measure}, {group}: {now}; target {target} by {year}").format(
                            measure=T(labels.measure(r["measure"])),
                            group=T(labels.group(r["group"])),
                            now=now,
                            target=target,
                            year=labels.year(r["target_year"]),
                        )
                    ),
                }
            )
    date = generated or _dt.datetime.now(_dt.UTC).date()
    year = labels.school_year(analysis_year(a.district))
    facts = [
        (T("School year"), year),
        (T("Generated"), date.isoformat() if lang != "en" else labels.long_date(date)),
        (
            T("Data source"),
            T("Synthetic demonstration data") if is_demo(did) else T("The district's own records"),
        ),
    ]
    title = T("Board summary: {name}").format(name=name)
    other = "es" if lang == "en" else "en"
    links = [
        (T("Report"), "report.html"),
        (T("Opportunity Scorecard"), "scorecard.html"),
        ("Español" if other == "es" else "English", SUMMARY_FILES[other]),
    ]
    return render(
        "summary.html.j2",
        title=title,
        kicker=T("Board summary"),
        heading=name,
        facts=facts,
        banner=T(
            "Synthetic demonstration data: this district and its students are invented; the numbers "
            "show what the report does, not any real school system."
        )
        if is_demo(did)
        else "",
        links=[{"text": t, "href": h} for t, h in links],
        story=story,
        findings=found,
        baseline=baseline,
        goals=goals,
        questions=_questions(found, ind, T),
        T=T,
        lang=lang,
        running_head=title,
        running_right=year,
        running_foot=T("Generated by opportunity-research {version}").format(version=__version__),
        footer="",
    )


def _rows(a, ind):
    found = headline_findings(a, indicators=ind)
    by_id = ind.set_index("indicator")
    return [by_id.loc[f.indicator].to_dict() | {"indicator": f.indicator} for f in found]


def write_summary(output_dir: str | os.PathLike, a, *, indicators: pd.DataFrame | None = None) -> list[Path]:
    """Write ``summary.html`` and ``summary.es.html`` into ``output_dir`` (atomically); the runner prints the PDFs.

    ``indicators``: ``indicator_table(a)``, when the caller has it already (default: made here, once for both pages).

    Examples
    --------
    >>> import tempfile
    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> [p.name for p in write_summary(tempfile.mkdtemp(), demo_analysis("demo_pinebrook"))]
    ['summary.html', 'summary.es.html']
    """
    from .. import config
    from ..files import atomic_write
    from .reporting import PUBLISHED_FILE_MODE

    ind = indicator_table(a) if indicators is None else indicators
    out = []
    for lang, fname in SUMMARY_FILES.items():
        path = config.resolve(output_dir) / fname
        atomic_write(
            path, summary_page(a, lang=lang, indicators=ind).encode("utf-8"), mode=PUBLISHED_FILE_MODE
        )
        out.append(path)
    return out
