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

import html as _html
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import ALL_OTHERS
from ..study import labels
from .district_names import district_name, is_demo
from .indicator_table import STUDY as _STUDY
from .model_tables import (
    diagnostics_table,
    growth_table,
    hetop_table,
    model_trust_note,
    robustness_note,
    sensitivity_table,
    v_gap_table,
)
from .school_detail import select_schools, selection_notes
from .scorecard_page import goals_table, schools_table, scorecard_page, scorecard_tables
from .tables import Col, HtmlBlock, Table, humanize, needs_note, reader_words, render, stylesheet, table

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
    """The district at a glance (``analysis.at_a_glance``).

    Examples
    --------
    >>> import pandas as pd
    >>> glance_table(pd.DataFrame({"what": ["Students"], "number": [1200]})).frame.iloc[0].tolist()
    ['Students', '1,200']
    """
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

    Examples
    --------
    >>> import pandas as pd
    >>> rates = pd.DataFrame({"subject": "all", "resource": ["engaged"], "n": [400], "n_classrooms": [20],
    ...                       "estimate": [0.55], "ci_lower": [0.48], "ci_upper": [0.62], "hours_without": [81]})
    >>> resources_table(rates).frame.iloc[0].tolist()
    ['Deep engagement', '400 surveyed moments', '20', '55%', '48% to 62%', '55%', '81']
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
    """Met the demands of the assignment vs met grade-level standards (``measures.demands_vs_standards``).

    Examples
    --------
    >>> import pandas as pd
    >>> demands = pd.DataFrame({"measure": ["met_grade_level"], "n": [300], "n_classrooms": [20], "estimate": [0.2],
    ...                         "ci_lower": [0.15], "ci_upper": [0.26]})
    >>> demands_table(demands).frame.iloc[0].tolist()
    ['Showed mastery of grade-level standards', '300', '20', '20%', '15% to 26%', '17%']
    """
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


# The 0/1 groups whose mirror row :func:`one_per_contrast` drops: student flags (a group against all other
# students) and classroom composition (mostly students of color / mostly low-income classrooms against the rest).
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
    (the other level's row is the same contrast with the sign flipped: low-income vs not, and not vs low-income).

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"measure": "engaged", "subject": "math", "group": "low_income", "level": [1, 0],
    ...                      "n": [80, 120], "estimate": [0.22, 0.31], "reference": "all other students",
    ...                      "reference_estimate": [0.31, 0.22], "difference": [-0.09, 0.09], "ci_lower": [-0.16, 0.02],
    ...                      "ci_upper": [-0.02, 0.16], "ratio": [0.71, 1.41]})
    >>> one_per_contrast(gaps)["level"].tolist()  # level 0 is the same contrast, mirrored
    [1]
    """
    if not len(data) or "group" not in data.columns:
        return data
    lv = data["level"].astype(str).str.removesuffix(".0")
    ref = (
        data["reference"].astype(str)
        if "reference" in data.columns
        else pd.Series(ALL_OTHERS, index=data.index)
    )
    mirror = (
        data["group"].isin(_FLAGS)
        & lv.isin(["0", "1"])
        & lv.ne(keep)
        & ref.isin([ALL_OTHERS, "nan", "None", ""])
    )
    return data[~mirror]


def gaps_table(gaps: pd.DataFrame, resource: str, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """One resource's gaps by student group, both subjects (``equity.resource_gaps``); one row per contrast.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"measure": "engaged", "subject": "math", "group": "low_income", "level": [1, 0],
    ...                      "n": [80, 120], "estimate": [0.22, 0.31], "reference": "all other students",
    ...                      "reference_estimate": [0.31, 0.22], "difference": [-0.09, 0.09], "ci_lower": [-0.16, 0.02],
    ...                      "ci_upper": [-0.02, 0.16], "ratio": [0.71, 1.41]})
    >>> gaps_table(gaps, "engaged").frame.iloc[0].tolist()
    ['Low-income students', '80', '22%', '31%', '−9.0', '−16.0 to −2.0', '0.71×']
    """
    t = one_per_contrast(gaps[gaps["measure"] == resource])
    cols = _with_ratio_interval(_GAP_COLS, t)
    if len(t) and t["reference"].astype(str).isin([ALL_OTHERS, "nan", "None", ""]).all():
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
    """Classrooms by composition (``equity.classroom_composition``); counts are classrooms.

    Examples
    --------
    >>> import pandas as pd
    >>> comp = pd.DataFrame({"measure": "engaged", "group": "majority_low_income", "level": [0.0, 1.0],
    ...                      "n": [12, 30], "estimate": [0.5, 0.4], "reference_estimate": [0.4, 0.5],
    ...                      "difference": [0.1, -0.1], "ci_lower": [0.0, -0.2], "ci_upper": [0.2, 0.0],
    ...                      "ratio": [1.25, 0.8]})
    >>> t = composition_table(comp).frame  # one row per contrast: the mirrored low-income row is dropped
    >>> len(t), t.iloc[0]["Classrooms"], t.iloc[0]["Compared with"], t.iloc[0]["Difference (points)"]
    (1, 'Classrooms with mostly higher-income students', 'Classrooms with mostly low-income students', '+10.0')
    """
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
    """Groups over-represented among students furthest from opportunity (``equity.furthest_from_opportunity``).

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"measure": "engaged", "subject": "math", "group": "low_income", "level": [1, 0],
    ...                      "n": [80, 120], "estimate": [0.22, 0.31], "reference": "all other students",
    ...                      "reference_estimate": [0.31, 0.22], "difference": [-0.09, 0.09], "ci_lower": [-0.16, 0.02],
    ...                      "ci_upper": [-0.02, 0.16], "ratio": [0.71, 1.41]})
    >>> furthest_table(gaps.drop(columns="measure")).frame.iloc[0].tolist()
    ['Low-income students', '80', '22%', '31%', '−9.0', '−16.0 to −2.0', '0.71×']
    """
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

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"measure": "engaged", "subject": "math", "group": "low_income", "level": [1, 0],
    ...                      "n": [80, 120], "estimate": [0.22, 0.31], "reference": "all other students",
    ...                      "reference_estimate": [0.31, 0.22], "difference": [-0.09, 0.09], "ci_lower": [-0.16, 0.02],
    ...                      "ci_upper": [-0.02, 0.16], "ratio": [0.71, 1.41]})
    >>> multiple_table(gaps.assign(measure="chronic_absence")).frame.iloc[0].tolist()
    ['Low-income students', '80', '22%', '31%', '−9.0', '−16.0 to −2.0', '0.71×']
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


def climate_table(cs: pd.DataFrame, *, min_n: int = config.MIN_CELL_SIZE) -> Table:
    """Belonging, consistency and coherence, district by group (``climate.climate_summary``).

    Examples
    --------
    >>> import pandas as pd
    >>> cs = pd.DataFrame({"school_id": "all", "school_year": [2018], "scale": "belonging", "group": "all", "n": [300],
    ...                    "mean_score": [3.6], "mean_ci_lower": [3.5], "mean_ci_upper": [3.7], "favorable": [0.55],
    ...                    "favorable_ci_lower": [0.5], "favorable_ci_upper": [0.6]})
    >>> climate_table(cs).frame.iloc[0].tolist()
    ['All students', '300', '3.60', '3.50 to 3.70', '55%', '50% to 60%']
    """
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
    """Internal consistency of the climate scales (``climate.climate_reliability``).

    Examples
    --------
    >>> import pandas as pd
    >>> rel = pd.DataFrame({"school_year": [2018], "scale": "belonging", "n_items": [4], "n": [300], "alpha": [0.81],
    ...                     "ci_lower": [0.77], "ci_upper": [0.84]})
    >>> reliability_table(rel).frame.iloc[0].tolist()
    ['2018-19', 'Belonging', '4', '300', '0.81', '0.77 to 0.84']
    """
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
    """Catch-up rates, district, all students (``trajectories.catch_up_rates``).

    Examples
    --------
    >>> import pandas as pd
    >>> cu = pd.DataFrame({"school_id": "all", "group": "all", "subject": "math", "start_year": [2015],
    ...                    "years_later": [3], "n_start": [150], "n": [120], "estimate": [0.25], "ci_lower": [0.18],
    ...                    "ci_upper": [0.33]})
    >>> catch_up_table(cu).frame.iloc[0].tolist()
    ['2015-16', '3', '150', '120', '25%', '18% to 33%']
    """
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
    ggl: pd.DataFrame,
    *,
    min_n: int = config.MIN_CELL_SIZE,
    school_names: Mapping | None = None,
    max_schools: int | None = None,
) -> Table:
    """Growth in grade levels per year (``trajectories.grade_level_growth``), all students; schools by name
    (``school_names``, default the names the analysis tables carry in ``attrs["school_names"]``). A district of
    more than ``max_schools`` schools (:data:`~opportunity_research.config.PAGE_SCHOOLS`) shows, per subject and
    period, the district and the lowest, middle and highest growing schools with their rank
    (:mod:`opportunity_research.report.school_detail`).

    Examples
    --------
    >>> import pandas as pd
    >>> ggl = pd.DataFrame({"group": "all", "subject": "ela", "school_id": ["S1"], "start_year": [2016],
    ...                     "end_year": [2018], "n": [90], "start_offset": [-0.8], "growth": [1.1],
    ...                     "growth_ci_lower": [0.9], "growth_ci_upper": [1.3]})
    >>> grade_level_growth_table(ggl, school_names={"S1": "Oak Hill"}).frame.iloc[0].tolist()
    ['Oak Hill', '2016-17', '2018-19', '90', '−0.80', '1.10', '0.90 to 1.30']
    """
    t = ggl[(ggl["group"] == "all")] if len(ggl) else ggl
    names = dict(school_names or ggl.attrs.get("school_names", {}))
    cols = [
        Col("school_id", "school"),
        Col("start_year", "school_year"),
        Col("end_year", "school_year"),
        Col("n", "count"),
        Col("start_offset", "number", label="Grade levels ahead (+) or behind (−) at the start"),
        Col("growth", "number", label="Grade levels a year"),
        Col("growth", "interval_number", prefix="growth_"),
    ]
    notes: list = [
        (
            "1.0 is a typical year's growth; schools whose students start behind and grow at least 1.3 "
            "grade levels a year are trajectory-changing. The scorecard's growth measure is a different "
            "one: grade levels gained in the latest year only, ELA and math together."
        )
    ]
    subtitle = None
    t, info = select_schools(
        t, within=["subject", "start_year", "end_year"], value="growth", max_schools=max_schools
    )
    if info is not None:
        cols.insert(1, Col("rank_text", "value", label="Rank (1 = lowest)"))
        subtitle, note = selection_notes(info, per="subject and period", csv="growth_grade_levels")
        notes.append(note)
    return table(
        t,
        cols,
        caption="Growth in grade levels per year, averaged from the starting to the ending year",
        subtitle=subtitle,
        groups="subject",
        min_n=min_n,
        school_names=names,
        notes=notes,
    )


def reproducibility_table(card: pd.DataFrame) -> Table:
    """The reproducibility card with values as a reader writes them (lists joined, empty mappings 'none').

    Examples
    --------
    >>> import pandas as pd
    >>> card = pd.DataFrame({"item": ["parameter: subjects", "seed"], "value": ["['ela', 'math']", "20260101"]})
    >>> reproducibility_table(card).frame.values.tolist()
    [['Parameter: subjects', 'ELA, Math'], ['seed', '20260101']]
    """

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
    the rates used; a share scored with a rule other than the study's gets a note instead of a silent comparison).

    Examples
    --------
    >>> import pandas as pd
    >>> rates = pd.DataFrame({"subject": "all", "resource": ["engaged"], "n": [400], "n_classrooms": [20],
    ...                       "estimate": [0.55], "ci_lower": [0.48], "ci_upper": [0.62], "hours_without": [81]})
    >>> demands = pd.DataFrame({"measure": ["met_grade_level"], "n": [300], "n_classrooms": [20], "estimate": [0.2],
    ...                         "ci_lower": [0.15], "ci_upper": [0.26]})
    >>> study_comparison_table(rates, demands).frame["District − study (points)"].tolist()
    ['0.0', '+3.0']
    """
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
    (a cell tagged ``remove``); the published pages have their own stylesheet.

    Examples
    --------
    >>> lab_style().html.startswith("<style>") and "gt_table" in lab_style().html
    True
    """
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
    """A link shown in the report (e.g. to the scorecard page beside it).

    Examples
    --------
    >>> b = link("Scorecard", "scorecard.html", note="(one page)")
    >>> b.html, b.text
    ('<p class="note"><a href="scorecard.html">Scorecard</a> (one page)</p>', 'Scorecard: scorecard.html')
    """
    return HtmlBlock(
        f'<p class="note"><a href="{_html.escape(href)}">{_html.escape(text)}</a>'
        + (f" {_html.escape(note)}" if note else "")
        + "</p>",
        f"{text}: {href}",
    )


# The headline findings and first screen live in :mod:`opportunity_research.report.headlines`, the cross-district
# tables in :mod:`opportunity_research.report.crosspage` (both build on this module).
