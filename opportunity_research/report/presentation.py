"""The report's section tables and the Opportunity Scorecard page, built from tidy results.

Statistics modules return tidy DataFrames with identifier-safe columns; this module turns them into
what a reviewer reads, with every header, group, subject, school and measure name taken from
:mod:`opportunity_research.study.labels` and every number formatted by it (so a number reads the same in a
table, a sentence and a chart). Nothing here computes a statistic. The table machinery is
:mod:`opportunity_research.report.tables`; the headline findings and first screen
:mod:`opportunity_research.report.headlines`; the cross-district page :mod:`opportunity_research.report.crosspage`.

Section tables
    One function per analysis (:func:`resources_table`, :func:`gaps_table`, :func:`growth_table`, ...)
    fixes its columns and caption, so the notebook holds no layout decisions. Group tables show one row per
    contrast (:func:`one_per_contrast`).
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import config
from ..study import labels
from ..study.labels import SUPPRESSED_MARK
from ..version import __version__
from .indicator_table import SCORECARD_DEFINITIONS
from .indicator_table import STUDY as _STUDY
from .tables import STATUS_TEXT as _STATUS
from .tables import Col, HtmlBlock, Table, humanize, needs_note, reader_words, render, stylesheet, table
from .tables import fmt_number as _number
from .tables import is_missing as _missing

__all__ = [
    "LAB_CSS",
    "STUDY",
    "Col",
    "HtmlBlock",
    "Table",
    "catch_up_table",
    "climate_table",
    "composition_table",
    "demands_table",
    "diagnostics_table",
    "district_name",
    "furthest_table",
    "gaps_table",
    "glance_table",
    "goals_table",
    "grade_level_growth_table",
    "growth_table",
    "hetop_table",
    "humanize",
    "is_demo",
    "lab_style",
    "link",
    "methods_scoring",
    "model_trust_note",
    "multiple_table",
    "needs_note",
    "one_per_contrast",
    "reader_words",
    "reliability_table",
    "render",
    "reproducibility_table",
    "resources_table",
    "robustness_note",
    "schools_table",
    "scorecard_page",
    "scorecard_tables",
    "sensitivity_table",
    "study_comparison_table",
    "stylesheet",
    "table",
    "v_gap_table",
]

#: The Opportunity Myth's published figures (TNTP 2018; see the domain brief), shown beside the district's.
STUDY = {
    "grade_appropriate": (_STUDY["grade_appropriate"], "of assignments were grade-appropriate"),
    "strong_instruction": (_STUDY["strong_instruction"], "of lessons had strong instruction"),
    "engaged": (_STUDY["engaged"], "of surveyed moments were engaged"),
    "high_expectations": (_STUDY["high_expectations"], "of teachers held high expectations"),
    "met_demands": (_STUDY["met_demands"], "of work met the assignment's demands"),
    "met_grade_level": (_STUDY["met_grade_level"], "of work met grade-level standards"),
}
STUDY_SOURCE = "TNTP, The Opportunity Myth (2018): five school systems, about 4,000 students, mostly 2016-17"


# ---------------------------------------------------------------------------------------------
# Section tables (one per analysis of the district report)


def glance_table(glance: pd.DataFrame) -> Table:
    """The district at a glance (``analysis.at_a_glance``)."""
    return table(
        glance,
        [Col("what", label="What"), Col("number", "count", label="Number")],
        caption="What the analysis is based on",
    )


def resources_table(
    rates: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE, cuts: Mapping | None = None
) -> Table:
    """The four resources, district-wide, beside the study's published figures (``measures.resource_rates``).

    ``cuts``: the cut points the rates used (``DistrictAnalysis.cuts``); a resource scored with a rule other
    than TNTP's default gets a note saying its study figure is not directly comparable.
    """
    from .settings import study_note

    r = rates[rates["subject"] == "all"] if "subject" in rates.columns else rates
    changed = [f"{labels.measure(x)}: {study_note(x, cuts)}." for x in r["resource"] if study_note(x, cuts)]
    r = r.assign(
        study=[STUDY.get(x, (np.nan,))[0] for x in r["resource"]],
        evidence=[
            f"{labels.count(n)} {labels.UNITS.get(x, '')}".strip() for x, n in zip(r["resource"], r["n"])
        ],
    )
    return table(
        r,
        [
            Col("resource", "measure"),
            Col("evidence", label="Evidence"),
            Col("n_classrooms", "count"),
            Col("estimate", "percent", label="District"),
            Col("interval", "interval_percent"),
            Col("study", "percent", label="Study (2018)"),
            Col("hours_without", "count", label="Hours a year without it (of 180)"),
        ],
        caption="Share of class time with each resource",
        subtitle="District share with a 95% interval that allows for clustering in classrooms, beside "
        "the Opportunity Myth study's published figure.",
        notes=[f"Study: {STUDY_SOURCE}.", *changed],
        min_n=min_n,
    )


def demands_table(demands: pd.DataFrame) -> Table:
    """Met the demands of the assignment vs met grade-level standards (``measures.demands_vs_standards``)."""
    d = demands.assign(study=[STUDY.get(x, (np.nan,))[0] for x in demands["measure"]])
    return table(
        d,
        [
            Col("measure", "measure"),
            Col("n", "count", label="Work samples"),
            Col("n_classrooms", "count"),
            Col("estimate", "percent", label="District"),
            Col("interval", "interval_percent"),
            Col("study", "percent", label="Study (2018)"),
        ],
        caption="Student work: the assignment's demands vs grade-level standards",
        notes=[f"Study: {STUDY_SOURCE}."],
    )


_GAP_COLS = [
    Col("level", "group"),
    Col("n", "count"),
    Col("estimate", "percent", label="Group's share"),
    Col("reference", "reference"),
    Col("reference_estimate", "percent", label="Comparison group's share"),
    Col("difference", "points"),
    Col("interval", "interval_points"),
    Col("ratio", "ratio"),
]


def _with_ratio_interval(
    cols: list[Col], data: pd.DataFrame, label: str = "Ratio, 95% interval"
) -> list[Col]:
    """The ratio's own interval beside the ratio, when the table carries it (``ratio_ci_lower``/``_upper``)."""
    if "ratio_ci_lower" not in data.columns:
        return cols
    i = next(k for k, c in enumerate(cols) if c.name == "ratio") + 1
    return cols[:i] + [Col("ratio", "interval_ratio", label=label, prefix="ratio_")] + cols[i:]


_FLAGS = (
    "low_income",
    "english_learner",
    "disability",
    "started_behind",
    "majority_students_of_color",
    "majority_low_income",
)


def one_per_contrast(data: pd.DataFrame, *, keep: str = "1") -> pd.DataFrame:
    """Rows without their mirror: of a 0/1 group compared with all other students, only the level ``keep``
    (the other level's row is the same contrast with the sign flipped: low-income vs not, and not vs low-income)."""
    if not len(data) or "group" not in data.columns:
        return data
    lv = data["level"].astype(str).str.removesuffix(".0")
    ref = (
        data["reference"].astype(str)
        if "reference" in data.columns
        else pd.Series("all other students", index=data.index)
    )
    mirror = (
        data["group"].isin(_FLAGS)
        & lv.isin(["0", "1"])
        & lv.ne(keep)
        & ref.isin(["all other students", "nan", "None", ""])
    )
    return data[~mirror]


def gaps_table(gaps: pd.DataFrame, resource: str, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """One resource's gaps by student group, both subjects (``equity.resource_gaps``); one row per contrast."""
    t = one_per_contrast(gaps[gaps["measure"] == resource])
    cols = _with_ratio_interval(_GAP_COLS, t)
    if len(t) and t["reference"].astype(str).isin(["all other students", "nan", "None", ""]).all():
        cols = [
            c for c in cols if c.name != "reference"
        ]  # every row: all other students (said in the subtitle)
    return table(
        t,
        cols,
        caption=f"{labels.measure(resource)}: access by student group",
        subtitle="Each group's share compared with all other students (or the named group); the "
        "difference in percentage points with a 95% interval that allows for classrooms.",
        groups="subject" if "subject" in t.columns else None,
        min_n=min_n,
    )


def composition_table(comp: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Classrooms by composition (``equity.classroom_composition``); counts are classrooms."""
    cols = [
        Col("level", "group", label="Classrooms"),
        Col("n", "count", label="Classrooms (n)"),
        Col("estimate", "percent", label="Group's share"),
        Col("reference_text", label="Compared with"),
        Col("reference_estimate", "percent", label="Comparison group's share"),
        Col("difference", "points"),
        Col("interval", "interval_points"),
        Col("ratio", "ratio"),
    ]
    comp = one_per_contrast(comp, keep="0")
    t = comp.assign(
        reference_text=[
            labels.level(g, 1 - float(lv)) if str(lv) not in ("nan", "<NA>") else ""
            for g, lv in zip(comp["group"], comp["level"])
        ]
    )
    return table(
        t,
        _with_ratio_interval(cols, t),
        caption="Classrooms by who is in them",
        groups="measure",
        subtitle="Share of each kind of classroom's evidence with the resource; n counts classrooms.",
        min_n=min_n,
    )


def furthest_table(furthest: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Groups over-represented among students furthest from opportunity (``equity.furthest_from_opportunity``)."""
    cols = [
        Col("level", "group"),
        Col("n", "count"),
        Col("estimate", "percent", label="In the bottom fifth"),
        Col("reference_estimate", "percent", label="All other students"),
        Col("difference", "points"),
        Col("interval", "interval_points"),
        Col("ratio", "ratio", label="Times as likely"),
    ]
    furthest = one_per_contrast(furthest)
    return table(
        furthest,
        _with_ratio_interval(cols, furthest, "95% interval of the ratio"),
        caption="Students furthest from opportunity, by group",
        groups="subject",
        subtitle="Share of each group in the bottom fifth of a composite of the four resources.",
        min_n=min_n,
    )


def multiple_table(
    multiple: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE, programs: bool | None = None
) -> Table:
    """Chronic absence, advanced coursework and programs by group (``equity.multiple_measures_gaps``).

    ``programs``: ``False`` shows chronic absence and advanced coursework only (the report's body), ``True`` the
    program participation only (the appendix), ``None`` everything.
    """
    cols = [
        Col("level", "group"),
        Col("n", "count"),
        Col("estimate", "percent", label="Share"),
        Col("reference_estimate", "percent", label="All other students"),
        Col("difference", "points"),
        Col("interval", "interval_points"),
        Col("ratio", "ratio"),
    ]
    multiple = one_per_contrast(multiple)
    if programs is not None and len(multiple):
        multiple = multiple[multiple["measure"].astype(str).str.startswith("program_") == programs]
    caption = "Program participation by student group" if programs else "Multiple measures by student group"
    return table(
        multiple,
        _with_ratio_interval(cols, multiple),
        caption=caption,
        groups="measure",
        min_n=min_n,
        empty="The district provided no program records." if programs else "No rows to show.",
    )


def growth_table(growth: pd.DataFrame, *, models: Sequence[str] = ("all_four",)) -> Table:
    """Growth-model effects of access (``growth.fit_study_models(...).effects``); unverified models marked.

    ``models`` selects the models shown (default: the model with all four resources together; the
    technical appendix shows every model).
    """
    g = (
        growth[
            growth["effect"].isin(["access", "extra_if_behind"]) & growth["model"].isin(list(models))
        ].copy()
        if len(growth)
        else growth
    )
    if len(g):
        g["model_label"] = [
            labels.measure(r)
            if m != "all_four" or len(models) == 1
            else f"{labels.measure(r)} (all four together)"
            for m, r in zip(g["model"], g["resource"])
        ]
        g["model_label"] = [
            lab + ("" if bool(c) else " †") for lab, c in zip(g["model_label"], g["converged"])
        ]
    contrast = len(g) and "contrast_estimate" in g.columns
    notes = (
        [
            (
                "Effects in standard deviations (SD) of the spring score. 25th → 75th percentile: classrooms at the "
                "district's 75th vs its 25th percentile of access; months of learning are an approximation from that "
                "contrast (typical annual gains by grade), shown only where it can be computed. Full vs none: "
                "classrooms that always vs never have the resource."
            )
        ]
        if contrast
        else [
            (
                "Effects in standard deviations of the spring score, from no access (0) to full access (1); months "
                "of learning are an approximation (typical annual gains by grade)."
            )
        ]
    )
    if len(g) and not g["converged"].astype(bool).all():
        notes.append(
            "† The model could not be verified; do not rely on this row (see the technical appendix)."
        )
    cols = [Col("model_label", label="Resource"), Col("effect", "measure")]
    if contrast:
        cols += [
            Col("contrast_estimate", "number", label="25th → 75th percentile (SD)"),
            Col("contrast", "interval_number", prefix="contrast_", label="95% interval"),
        ]
    cols += [
        Col("months", "number1", label="Months"),
        Col("months", "interval_number1", label="Months, 95% interval", prefix="months_"),
        Col("estimate", "number", label="Full vs none (SD)"),
        Col("interval", "interval_number"),
        Col("n", "count"),
    ]
    return table(
        g,
        cols,
        caption=(
            "What access is worth: growth-model effects"
            + (", all four resources in one model" if list(models) == ["all_four"] else ", every model")
        ),
        groups="subject",
        notes=notes,
        empty="Too few students with fall and spring scores for growth models.",
    )


def diagnostics_table(growth: pd.DataFrame, warnings_: Sequence[str]) -> Table:
    """Technical appendix: convergence and samples of each growth model, with the engine's messages."""
    if len(growth):
        m = growth.drop_duplicates(["subject", "model"])[
            ["subject", "model", "n", "n_classrooms", "n_schools", "converged"]
        ]
        msgs = {}
        for w in warnings_:
            subj, _, rest = str(w).partition(" / ")
            model, _, text = rest.partition(": ")
            msgs.setdefault((subj, model), []).append(text)
        m = m.assign(
            note=[humanize("; ".join(msgs.get((s, mo), []))) for s, mo in zip(m["subject"], m["model"])],
            model=[labels.measure(x) for x in m["model"]],
        )
    else:
        m = growth
    return table(
        m,
        [
            Col("model", label="Model"),
            Col("n", "count"),
            Col("n_classrooms", "count"),
            Col("n_schools", "count"),
            Col("converged", label="Verified"),
            Col("note", label="Engine notes"),
        ],
        caption="Growth-model diagnostics",
        groups="subject" if len(m) else None,
        empty="No growth model was fitted.",
    )


def climate_table(cs: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Belonging, consistency and coherence, district by group (``climate.climate_summary``)."""
    t = cs[cs["school_id"] == "all"] if len(cs) else cs
    if len(t):
        t = t[t["school_year"] == t["school_year"].max()]
    year = labels.school_year(t["school_year"].iloc[0]) if len(t) else ""
    return table(
        t,
        [
            Col("group", "groupspec", label="Students"),
            Col("n", "count", label="Responses"),
            Col("mean_score", "number"),
            Col("mean", "interval_number", prefix="mean_", label="Mean, 95% interval"),
            Col("favorable", "percent", label="Favorable"),
            Col("favorable", "interval_percent", prefix="favorable_", label="Favorable, 95% interval"),
        ],
        caption=f"Belonging, consistency and coherence, {year}",
        groups="scale",
        subtitle="Mean scale score (1-5) and the share answering favorably (4 or more), by student group.",
        min_n=min_n,
    )


def reliability_table(rel: pd.DataFrame) -> Table:
    """Internal consistency of the climate scales (``climate.climate_reliability``)."""
    return table(
        rel,
        [
            Col("school_year", "school_year"),
            Col("scale", "measure"),
            Col("n_items", "count", label="Items"),
            Col("n", "count", label="Responses"),
            Col("alpha", "number"),
            Col("interval", "interval_number"),
        ],
        caption="How consistent the survey scales are (Cronbach's alpha)",
    )


def catch_up_table(cu: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Catch-up rates, district, all students (``trajectories.catch_up_rates``)."""
    t = cu[(cu["school_id"] == "all") & (cu["group"] == "all")] if len(cu) else cu
    return table(
        t,
        [
            Col("start_year", "school_year"),
            Col("years_later", "count"),
            Col("n_start", "count", label="Below grade level at the start"),
            Col("n", "count", label="Tested later"),
            Col("estimate", "percent", label="At grade level later"),
            Col("interval", "interval_percent"),
        ],
        caption="Do students who fall behind catch up?",
        groups="subject",
        min_n=min_n,
        notes=[
            (
                "Caught up: at grade level one, two or three years after being below it. The scorecard's "
                "catch-up rate is the three-year figure for the latest cohort. Under All subjects, counts "
                "are test results in ELA and math together (a student tested in both counts twice)."
            )
        ],
    )


def grade_level_growth_table(
    ggl: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE, school_names: Mapping | None = None
) -> Table:
    """Growth in grade levels per year (``trajectories.grade_level_growth``), all students; schools by name
    (``school_names``, default the names the analysis tables carry in ``attrs["school_names"]``)."""
    t = ggl[(ggl["group"] == "all")] if len(ggl) else ggl
    names = dict(school_names or ggl.attrs.get("school_names", {}))
    return table(
        t,
        [
            Col("school_id", "school"),
            Col("start_year", "school_year"),
            Col("end_year", "school_year"),
            Col("n", "count"),
            Col("start_offset", "number", label="Grade levels ahead (+) or behind (−) at the start"),
            Col("growth", "number", label="Grade levels a year"),
            Col("growth", "interval_number", prefix="growth_"),
        ],
        caption="Growth in grade levels per year, averaged from the starting to the ending year",
        groups="subject",
        min_n=min_n,
        school_names=names,
        notes=[
            (
                "1.0 is a typical year's growth; schools whose students start behind and grow at least 1.3 "
                "grade levels a year are trajectory-changing. The scorecard's growth measure is a different "
                "one: grade levels gained in the latest year only, ELA and math together."
            )
        ],
    )


def goals_table(goals: pd.DataFrame) -> Table:
    """The district's goals and their status (``Scorecard.goals``)."""
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


def reproducibility_table(card: pd.DataFrame) -> Table:
    """The reproducibility card with values as a reader writes them (lists joined, empty mappings 'none')."""

    def value(v) -> str:
        text = str(v)
        if text in ("{}", "[]", "None", "''"):
            return "none"
        m = re.fullmatch(r"\[(.*)\]", text)
        if m:
            return ", ".join(labels.subject(x.strip(" '\"")) for x in m.group(1).split(","))
        return text.strip("'\"")

    c = card.assign(
        value=[value(v) for v in card["value"]],
        item=[str(i).replace("parameter: ", "Parameter: ").replace("_", " ") for i in card["item"]],
    )
    return table(c, [Col("item", label="Item"), Col("value", label="Value")], caption="Reproducibility card")


def study_comparison_table(
    rates: pd.DataFrame, demands: pd.DataFrame, *, cuts: Mapping | None = None
) -> Table:
    """District vs the study's published figures, the six headline shares side by side (``cuts``: the cut points
    the rates used; a share scored with a rule other than the study's gets a note instead of a silent comparison)."""
    from .settings import study_note

    rows = []
    r = rates[rates["subject"] == "all"] if "subject" in rates.columns else rates
    for x in list(r.itertuples()) + list(demands.itertuples()):
        code = getattr(x, "resource", None) or x.measure
        if code in STUDY:
            rows.append(
                {
                    "measure": code,
                    "estimate": x.estimate,
                    "ci_lower": x.ci_lower,
                    "ci_upper": x.ci_upper,
                    "study": STUDY[code][0],
                    "difference": x.estimate - STUDY[code][0],
                }
            )
    notes = [
        f"{labels.measure(x['measure'])}: {study_note(x['measure'], cuts)}."
        for x in rows
        if study_note(x["measure"], cuts)
    ]
    return table(
        pd.DataFrame(rows),
        [
            Col("measure", "measure"),
            Col("estimate", "percent", label="District"),
            Col("interval", "interval_percent"),
            Col("study", "percent", label="Study (2018)"),
            Col("difference", "points", label="District − study (points)"),
        ],
        caption="This district beside the study's published figures",
        notes=[f"Study: {STUDY_SOURCE}.", *notes],
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


def _compact(t: Table) -> Table:
    """Mark a table made of many small per-group tables to print in two columns."""
    t.html = t.html.replace('<div class="table-wrap">', '<div class="table-wrap compact">', 1)
    return t


def scorecard_tables(card, *, school_names: Mapping | None = None) -> list[Table]:
    """The scorecard's tables: goals, district measures with trends, student groups, largest gaps, schools.

    Every table is long (one row per value), so no column is lost on paper or on a phone.
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
            sch["school_label"] = [labels.school(x, names) for x in sch["school_id"]]
            sch = sch.sort_values(["school_label"], kind="stable")
            out.append(
                _compact(
                    table(
                        sch,
                        [Col("measure", "measure")] + short_cols,
                        caption="Schools",
                        groups="school_label",
                        min_n=min_n,
                    )
                )
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
) -> str:
    """The printable Opportunity Scorecard page (self-contained HTML) of a :class:`~opportunity_research.study.scorecard.Scorecard`."""
    name = district_name(district_id)
    t = card.table
    years = sorted({int(y) for y in t["school_year"]}) if len(t) else []
    date = generated or _dt.datetime.now(_dt.UTC).date()
    facts = [
        ("School year", labels.school_year(years[-1]) if years else labels.MISSING),
        ("Generated", f"{date:%d %B %Y}".lstrip("0")),
        (
            "Data source",
            "Synthetic demonstration data" if is_demo(district_id) else "The district's own records",
        ),
    ]
    tables = scorecard_tables(card, school_names=school_names)
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


def schools_table(card, *, school_names: Mapping | None = None) -> Table:
    """School-level breakdown: every scorecard measure per school (latest year), schools by name."""
    names = {**getattr(card, "schools", {}), **dict(school_names or {})}
    t = card.table
    sch = _with_values(t[(t["school_id"] != "all") & (t["group"] == "all")]) if len(t) else t
    if len(sch):
        sch = sch.assign(school_label=[labels.school(x, names) for x in sch["school_id"]])
        sch = sch.sort_values(["school_label"], kind="stable")
    return _compact(
        table(
            sch,
            [
                Col("measure", "measure"),
                Col("value_text", "value", label="Value"),
                Col("interval_text", "value", label="95% interval"),
                Col("n", "count"),
            ],
            caption="Schools: every measure, latest year",
            groups="school_label" if len(sch) else None,
            min_n=card.min_n,
            empty="No school-level measures could be computed.",
        )
    )


def model_trust_note(growth: pd.DataFrame) -> HtmlBlock:
    """One plain-language line on whether the growth models can be trusted (details in the appendix)."""
    if growth is None or not len(growth):
        text = (
            "The district has too few students with fall and spring scores in the analysis year to estimate "
            "what access is worth."
        )
    else:
        m = growth.drop_duplicates(["subject", "model"])
        bad = m[~m["converged"].astype(bool)]
        if len(bad):
            which = "; ".join(
                f"{labels.subject(s)}: {labels.measure(x).lower()}"
                for s, x in zip(bad["subject"], bad["model"])
            )
            text = (
                f"{len(bad)} of {len(m)} growth models could not be verified ({which}); their rows are marked † "
                "and should not be relied on. The technical appendix says why."
            )
        else:
            text = (
                f"All {len(m)} growth models were verified (the estimation engine's checks passed); the "
                "technical appendix lists their samples."
            )
    return HtmlBlock(f'<p class="note" role="note">{_html.escape(text)}</p>', text)


#: Table styles of the HTML report, scoped to JupyterLab's and Jupyter's output areas (whose own table rules
#: right-align every cell and put the caption into the title), for :func:`lab_style`.
LAB_CSS = """
.jp-OutputArea-output .table-wrap, .output_html .table-wrap { margin: .4rem 0 1rem; max-width: 100%; }
.jp-OutputArea-output table.gt_table, .output_html table.gt_table {
  border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; width: auto; max-width: 100%;
  table-layout: auto; margin: 0; }
.jp-OutputArea-output table.gt_table > caption, .output_html table.gt_table > caption {
  caption-side: top; text-align: left; padding: 0 0 .4rem; }
.jp-OutputArea-output table.gt_table > caption .gt_title, .output_html table.gt_table > caption .gt_title {
  display: block; font-weight: 700; font-size: .95rem; }
.jp-OutputArea-output table.gt_table > caption .gt_subtitle, .output_html table.gt_table > caption .gt_subtitle {
  display: block; font-weight: 400; font-size: .85rem; color: var(--jp-ui-font-color2, #555); }
.jp-OutputArea-output table.gt_table th, .jp-OutputArea-output table.gt_table td,
.output_html table.gt_table th, .output_html table.gt_table td {
  padding: .2rem .45rem; border: 0; border-bottom: 1px solid var(--jp-border-color2, #ddd); white-space: normal;
  vertical-align: top; }
.jp-OutputArea-output table.gt_table .gt_left, .output_html table.gt_table .gt_left { text-align: left; }
.jp-OutputArea-output table.gt_table .gt_right, .output_html table.gt_table .gt_right {
  text-align: right; white-space: nowrap; }
.jp-OutputArea-output table.gt_table th.gt_col_heading, .output_html table.gt_table th.gt_col_heading {
  border-bottom: 2px solid var(--jp-ui-font-color1, #555); font-weight: 600; vertical-align: bottom;
  white-space: normal; }
.jp-OutputArea-output table.gt_table .gt_group_heading, .output_html table.gt_table .gt_group_heading {
  text-align: left; font-weight: 700; background: var(--jp-layout-color2, #f2f2f2); }
.jp-OutputArea-output table.gt_table .gt_sourcenote, .output_html table.gt_table .gt_sourcenote {
  text-align: left; font-size: .8rem; color: var(--jp-ui-font-color2, #555); border: 0; }
.jp-OutputArea-output p.note, .output_html p.note { font-size: .9rem; }
"""


def lab_style() -> HtmlBlock:
    """The report's table styles for tables shown in JupyterLab (captions, left-aligned labels, right-aligned
    numbers, source notes). Display it once in a notebook cell whose output the published report leaves out
    (a cell tagged ``remove``); the published pages have their own stylesheet."""
    return HtmlBlock(f"<style>{LAB_CSS}</style>", "")


def methods_scoring(cuts: Mapping | None = None) -> HtmlBlock:
    """The Methods bullet on scoring, stating the cut points this report used (a changed one says so).

    Examples
    --------
    >>> "at least 5 of 6 (TNTP’s default: 4)" in methods_scoring({"grade_appropriate": 5}).html
    True
    """
    from .settings import scoring_text

    lead, _, rest = scoring_text(cuts).partition(": ")
    return HtmlBlock(
        f"<ul><li><strong>{_html.escape(lead)}</strong>: {_html.escape(rest)}</li></ul>", f"- {lead}: {rest}"
    )


def link(text: str, href: str, *, note: str = "") -> HtmlBlock:
    """A link shown in the report (e.g. to the scorecard page beside it)."""
    return HtmlBlock(
        f'<p class="note"><a href="{_html.escape(href)}">{_html.escape(text)}</a>'
        + (f" {_html.escape(note)}" if note else "")
        + "</p>",
        f"{text}: {href}",
    )


# ---------------------------------------------------------------------------------------------
# Sensitivity of growth effects to unmeasured confounding (added beside the growth table)


def robustness_note(growth: pd.DataFrame) -> HtmlBlock:
    """The growth section's plain sentences on how strong a hidden confounder would have to be (one per effect).

    From :func:`opportunity_research.study.findings.robustness_sentences`; empty when there is no growth model.
    """
    from ..study.findings import robustness_sentences

    items = robustness_sentences(growth)
    if not items:
        return HtmlBlock("", "")
    html = (
        '<div class="note" role="note"><p><strong>Could something unmeasured explain these effects '
        "away?</strong></p><ul>" + "".join(f"<li>{_html.escape(t)}</li>" for t in items) + "</ul></div>"
    )
    return HtmlBlock(html, "\n".join(items))


def sensitivity_table(growth: pd.DataFrame) -> Table:
    """Technical appendix: robustness values of every growth effect, its benchmark and E-value.

    Columns from :data:`opportunity_research.study.growth.SENSITIVITY_COLUMNS` (no student counts: the
    degrees of freedom count classrooms).
    """
    g = growth
    if len(g) and "robustness_value" in g.columns:
        g = g.copy()
        g["model_label"] = [
            labels.measure(r) if m != "all_four" else f"{labels.measure(r)} (all four together)"
            for m, r in zip(g["model"], g["resource"])
        ]
        g["benchmark_label"] = [
            labels.level(b, 1) if isinstance(b, str) and b else labels.MISSING for b in g["benchmark"]
        ]
    else:
        g = pd.DataFrame()
    cols = [
        Col("model_label", label="Resource"),
        Col("effect", "measure"),
        Col("t_value", "number", label="t"),
        Col("sensitivity_dof", label="Degrees of freedom (classrooms)"),
        Col("partial_r2", "percent1", label="Partial R² of access"),
        Col("robustness_value", "percent1", label="Robustness value"),
        Col("robustness_value_05", "percent1", label="Robustness value (5% level)"),
        Col("benchmark_label", "note", label="Strongest observed classroom share"),
        Col("benchmark_r2_access", "percent1", label="Its partial R² with access"),
        Col("benchmark_r2_growth", "percent1", label="Its partial R² with growth"),
        Col("benchmark_adjusted_contrast", "number", label="Contrast after a confounder as strong (SD)"),
        Col("e_value", "number", label="E-value"),
        Col("e_value_ci", "number", label="E-value, interval"),
    ]
    notes = [
        (
            "Robustness value (Cinelli & Hazlett 2020): the share of the remaining variation in both access and "
            "growth an unmeasured classroom factor would have to explain to bring the effect to zero (5% level: "
            "to make it statistically indistinguishable from zero). Computed from the model's t value with "
            "degrees of freedom = classrooms minus the fixed effects constant within classrooms, since access "
            "varies by classroom. Benchmarks: classroom shares of low-income students, English learners and "
            "students with disabilities, in classroom-level regressions. E-value (VanderWeele & Ding 2017) of the "
            "25th → 75th percentile contrast, with RR = exp(0.91 × SD)."
        )
    ]
    return table(
        g,
        cols,
        caption="How strong would a hidden confounder have to be? Sensitivity of every growth effect",
        groups="subject" if len(g) else None,
        notes=notes,
        empty="No growth model was fitted.",
    )


# ---------------------------------------------------------------------------------------------
# Gaps and means from performance levels (V statistic, HETOP)

_FLAGS = ("low_income", "english_learner", "disability")


def v_gap_table(gaps: pd.DataFrame, *, year: int | None = None) -> Table:
    """V gaps (from counts by performance level) beside scale-score gaps, each group vs all other students.

    ``gaps`` is :func:`opportunity_research.study.levelgaps.level_gaps` (the latest year unless ``year``); for
    0/1 groups only the flagged group is shown (the other row is its mirror image). Count columns: ``n``,
    ``reference_n``.
    """
    g = gaps if gaps is not None else pd.DataFrame()
    if len(g):
        year = int(g["school_year"].max()) if year is None else int(year)
        g = g[
            (g["school_year"] == year) & ~(g["group"].isin(_FLAGS) & (g["level"].astype(str) == "0"))
        ].copy()
        g["group_label"] = [labels.level(v, lv) for v, lv in zip(g["group"], g["level"])]
    has_scores = len(g) and g["score_gap"].notna().any()
    cols = [
        Col("group_label", label="Group"),
        Col("n", "count"),
        Col("reference_n", "count", label="All other students"),
        Col("v", "number", label="V gap (SD)"),
        Col("v", "interval_number", prefix="v_", label="V, 95% interval"),
    ]
    if has_scores:
        cols += [
            Col("score_gap", "number", label="Scale-score gap (SD)"),
            Col("score_gap", "interval_number", prefix="score_gap_", label="Scale-score gap, 95% interval"),
        ]
    notes = [
        (
            "V (Ho & Reardon 2012): the gap between the group and all other students in pooled standard deviations, "
            "estimated from how many students of each are at each performance level (binormal maximum "
            "likelihood); it does not depend on where the cut scores fall. Negative: the group scores lower."
        )
    ]
    if has_scores:
        notes.append("Scale-score gap: the same comparison from scale scores standardized within grade.")
    return table(
        g,
        cols,
        caption=f"Achievement gaps from performance levels{'' if not len(g) else f', spring {year}'}",
        groups="subject" if len(g) else None,
        notes=notes,
        empty="No counts of students by performance level.",
    )


def hetop_table(means: pd.DataFrame, *, school_names: Mapping | None = None) -> Table:
    """Group means and SDs estimated from counts by performance level (HETOP), in district SD units."""
    m = means if means is not None else pd.DataFrame()
    if len(m):
        m = m.copy()
        school = m["group"].astype(str) == "all"
        m["group_label"] = [
            labels.school(sc, school_names) if isc else labels.group(gr)
            for isc, sc, gr in zip(school, m["school_id"], m["group"])
        ]
        m["grouping_label"] = [
            f"{labels.subject(su)}: " + ("schools" if isc else labels.variable(gr.partition("=")[0]))
            for su, isc, gr in zip(m["subject"], school, m["group"].astype(str))
        ]
        m["sd_shared"] = m["sd_shared"].map(lambda x: "shared" if x is True or x == 1 else "own")
    cols = [
        Col("group_label", label="School or group"),
        Col("n", "count"),
        Col("mean", "number", label="Mean (SD units)"),
        Col("mean", "interval_number", prefix="mean_", label="Mean, 95% interval"),
        Col("sd", "number", label="SD"),
        Col("sd", "interval_number", prefix="sd_", label="SD, 95% interval"),
        Col("sd_shared", label="SD estimated"),
    ]
    notes = [
        (
            "HETOP (Reardon, Shear, Castellano & Ho 2017): each school's or group's mean and standard deviation "
            "estimated from its counts by performance level, on a scale where the district's students have mean "
            "0 and SD 1. Groups of fewer than 50 students share one SD."
        )
    ]
    return table(
        m,
        cols,
        caption="Average achievement from performance levels (HETOP)",
        groups="grouping_label" if len(m) else None,
        notes=notes,
        school_names=school_names,
        empty="No counts of students by performance level.",
    )


# The headline findings and first screen live in :mod:`opportunity_research.report.headlines`, the cross-district
# tables in :mod:`opportunity_research.report.crosspage` (both build on this module).


def is_demo(district_id: str) -> bool:
    """Whether a district is one of the synthetic demonstration districts (ids ``demo_*``, as ``synthesize`` writes)."""
    return str(district_id).startswith("demo_")


def district_name(district_id: str) -> str:
    """A readable district name from its id (``"demo_lakeside"`` -> ``"Lakeside"``, ``"north_valley_usd"`` ->
    ``"North Valley USD"``)."""
    words = str(district_id).removeprefix("demo_").replace("-", " ").replace("_", " ").split()
    return " ".join(
        w.upper() if w.lower() in ("usd", "isd", "cusd", "sd") else w[:1].upper() + w[1:] for w in words
    ) or str(district_id)
