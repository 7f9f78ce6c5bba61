"""Key findings as plain sentences generated from the tidy result tables.

Every sentence is built from numbers in a table passed in (never typed by hand), carries its interval
and says what a group is compared with. Suppressed rows are never described. The functions return
lists of sentences so the report can show them as a bulleted list.

This module is the one home of the key-finding sentences (:func:`opportunity_research.study.analysis.key_findings`
assembles them, ``findings.json`` carries them). The report's headline sentences, rendered from the published
indicator table, have their one home in :mod:`opportunity_research.report.headlines`.

Examples
--------
>>> import pandas as pd
>>> rates = pd.DataFrame({"resource": ["grade_appropriate"], "label": ["Grade-appropriate assignments"],
...                       "subject": ["all"], "unit": ["assignments"], "n": [500], "estimate": [0.26],
...                       "ci_lower": [0.22], "ci_upper": [0.30], "hours_without": [133.2]})
>>> resource_sentences(rates)[0]
'Grade-appropriate assignments: 26% of assignments (95% CI 22% to 30%; n = 500), about 133 of 180 hours a year per subject without it.'
"""

from __future__ import annotations

import math

import pandas as pd

from .. import config
from ..intake.contract import ALL_OTHERS
from . import labels, measures

__all__ = [
    "catch_up_sentences",
    "ci_phrase",
    "composition_sentences",
    "demands_sentence",
    "furthest_sentences",
    "gap_sentences",
    "growth_sentences",
    "level_label",
    "pct",
    "resource_sentences",
    "robustness_sentences",
    "subject_label",
]


def pct(x: float, digits: int = 0) -> str:
    """Format a share as a percentage in a sentence ('26%'); missing values as 'n/a' (:func:`labels.percent
    <opportunity_research.study.labels.percent>` with ASCII minus).

    Examples
    --------
    >>> pct(0.263), pct(-0.0004), pct(float("nan"))
    ('26%', '0%', 'n/a')
    """
    return labels.percent(x, digits, missing=labels.MISSING_TEXT, minus="-")


def level_label(group: str, level) -> str:
    """Readable name of a student group, e.g. ('low_income', 1) -> 'low-income students'
    (:func:`opportunity_research.study.labels.level_phrase`, the one label registry).

    Examples
    --------
    >>> level_label("low_income", 1), level_label("race_ethnicity", "hispanic_latino")
    ('low-income students', 'Hispanic or Latino (of any race) students')
    """
    return labels.level_phrase(group, level)


def subject_label(subject: str) -> str:
    """Readable subject name: 'ela' -> 'ELA', 'math' -> 'math' (mid-sentence; from the label registry).

    Examples
    --------
    >>> subject_label("ela"), subject_label("math")
    ('ELA', 'math')
    """
    return "ELA" if subject == "ela" else labels.subject(subject).lower()


def _times(x) -> str:
    return labels.number(x, 1, missing=labels.MISSING_TEXT, minus="-")


def ci_phrase(lo, hi, fmt=pct) -> str:
    """A 95% interval in words, each bound formatted by ``fmt`` (default :func:`pct`).

    Examples
    --------
    >>> ci_phrase(0.21, 0.3), ci_phrase(float("nan"), 0.3)
    ('95% CI 21% to 30%', '95% CI not estimable')
    """
    if any(x is None or (isinstance(x, float) and math.isnan(x)) for x in (lo, hi)):
        return "95% CI not estimable"
    return f"95% CI {fmt(lo)} to {fmt(hi)}"


def resource_sentences(
    rates: pd.DataFrame, *, hours_per_year: float = config.HOURS_PER_SUBJECT_YEAR
) -> list[str]:
    """One sentence per resource from :func:`~opportunity_research.study.measures.resource_rates`.

    Examples
    --------
    >>> import pandas as pd
    >>> rates = pd.DataFrame({"subject": ["all"], "label": ["Grade-appropriate assignments"], "estimate": [0.26],
    ...                       "unit": ["assignments"], "ci_lower": [0.21], "ci_upper": [0.31], "n": [1200],
    ...                       "hours_without": [133.0]})
    >>> print(resource_sentences(rates, hours_per_year=180)[0])
    Grade-appropriate assignments: 26% of assignments (95% CI 21% to 31%; n = 1,200), about 133 of 180 hours a year per subject without it.
    """
    out = []
    for row in rates[rates["subject"] == "all"].itertuples():
        out.append(
            f"{row.label}: {pct(row.estimate)} of {row.unit} ({ci_phrase(row.ci_lower, row.ci_upper)}; "
            f"n = {row.n:,}), about {row.hours_without:.0f} of {hours_per_year:.0f} hours a year per subject "
            f"without it."
        )
    return out


def demands_sentence(table: pd.DataFrame) -> str:
    """The study's contrast, from :func:`~opportunity_research.study.measures.demands_vs_standards`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": ["met_demands", "met_grade_level"], "estimate": [0.71, 0.17],
    ...                   "ci_lower": [0.66, 0.13], "ci_upper": [0.76, 0.22], "n": [600, 600]})
    >>> print(demands_sentence(t))
    Students met the demands of their assignments in 71% of work samples (95% CI 66% to 76%), but showed mastery of grade-level standards in only 17% (95% CI 13% to 22%; n = 600 work samples).
    """
    t = table.set_index("measure")
    md, gl = t.loc["met_demands"], t.loc["met_grade_level"]
    return (
        f"Students met the demands of their assignments in {pct(md.estimate)} of work samples "
        f"({ci_phrase(md.ci_lower, md.ci_upper)}), but showed mastery of grade-level standards in only "
        f"{pct(gl.estimate)} ({ci_phrase(gl.ci_lower, gl.ci_upper)}; n = {int(md.n):,} work samples)."
    )


def gap_sentences(gaps: pd.DataFrame, *, top: int = 3) -> list[str]:
    """The largest unsuppressed shortfalls in access (most negative differences) across resources.

    Uses :func:`~opportunity_research.study.equity.resource_gaps` output; only rows whose interval excludes
    zero are described as gaps; the comparison group is always named.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"group": ["low_income"], "level": [1], "subject": ["math"], "label": ["Strong instruction"],
    ...                      "estimate": [0.10], "reference": ["all other students"], "reference_estimate": [0.20],
    ...                      "difference": [-0.10], "ci_lower": [-0.15], "ci_upper": [-0.05], "n": [300], "reference_n": [500],
    ...                      "suppressed": [False]})
    >>> print(gap_sentences(gaps)[0])
    Low-income students (math) had strong instruction 10% of the time vs 20% for all other students: a gap of -10.0 percentage points (95% CI -15.0 to -5.0; n = 300 vs 500).
    >>> gap_sentences(gaps.assign(ci_upper=0.01))[0][:40]
    "No group's access to any resource differ"
    """
    g = gaps[~gaps["suppressed"].astype(bool) & (gaps["ci_upper"] < 0)]
    g = g.sort_values("difference").head(top)
    out = []
    for row in g.itertuples():
        ref = (
            ALL_OTHERS
            if pd.isna(row.reference) or row.reference == ALL_OTHERS
            else level_label(row.group, row.reference)
        )
        out.append(
            f"{level_label(row.group, row.level).capitalize()} ({subject_label(row.subject)}) "
            f"had {row.label.lower()} {pct(row.estimate)} of the time vs {pct(row.reference_estimate)} for "
            f"{ref}: a gap of {100 * row.difference:.1f} percentage points "
            f"(95% CI {100 * row.ci_lower:.1f} to {100 * row.ci_upper:.1f}; n = {int(row.n):,} vs "
            f"{int(row.reference_n):,})."
        )
    if not out:
        out.append(
            "No group's access to any resource differed from other students' by more than the 95% "
            "intervals allow (suppressed groups are not assessed)."
        )
    return out


def composition_sentences(comp: pd.DataFrame) -> list[str]:
    """The study's classroom-composition contrasts from :func:`~opportunity_research.study.equity.classroom_composition`.

    Examples
    --------
    >>> import pandas as pd
    >>> comp = pd.DataFrame({"group": ["majority_low_income"], "measure": ["grade_appropriate"], "level": [0.0],
    ...                      "label": ["Grade-appropriate assignments"], "estimate": [0.3], "reference_estimate": [0.1],
    ...                      "ratio": [3.0], "ratio_ci_lower": [1.5], "ratio_ci_upper": [6.0], "n": [40], "reference_n": [60],
    ...                      "suppressed": [False]})
    >>> print(composition_sentences(comp)[0])
    Classrooms with mostly higher-income students had grade-appropriate assignments 30% of the time vs 10% in classrooms with mostly low-income students: 3.0 times as much (95% CI 1.5 to 6.0; n = 40 vs 60 classrooms).
    """
    out = []
    c = comp[~comp["suppressed"].astype(bool)]
    for group, measure in (
        ("majority_low_income", "grade_appropriate"),
        ("majority_low_income", "strong_instruction"),
        ("majority_students_of_color", "grade_appropriate"),
    ):
        row = c[(c["group"] == group) & (c["measure"] == measure) & (c["level"].astype(float) == 0)]
        if len(row) and row["estimate"].iloc[0] == row["estimate"].iloc[0]:
            r = row.iloc[0]
            out.append(
                f"{level_label(group, 0).capitalize()} had {r.label.lower()} {pct(r.estimate)} of the time vs "
                f"{pct(r.reference_estimate)} in {level_label(group, 1)}: {r.ratio:.1f} times as much "
                f"({ci_phrase(r.ratio_ci_lower, r.ratio_ci_upper, _times)}; n = {int(r.n)} vs {int(r.reference_n)} "
                f"classrooms)."
            )
    never = c[
        (c["group"] == "majority_students_of_color")
        & (c["measure"] == "never_grade_appropriate")
        & (c["level"].astype(float) == 1)
    ]
    if len(never):
        r = never.iloc[0]
        out.append(
            f"{pct(r.estimate)} of classrooms with mostly students of color never received a grade-appropriate "
            f"assignment among those rated ({ci_phrase(r.estimate_ci_lower, r.estimate_ci_upper)}; n = {int(r.n)} "
            f"classrooms)."
        )
    return out


def furthest_sentences(table: pd.DataFrame, *, top: int = 3) -> list[str]:
    """Groups most over-represented among students furthest from opportunity (risk ratio > 1, CI above 0).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"subject": ["ela"], "group": ["english_learner"], "level": [1], "estimate": [0.4],
    ...                   "reference_estimate": [0.2], "ratio": [2.0], "ci_lower": [0.05], "ratio_ci_lower": [1.4],
    ...                   "ratio_ci_upper": [2.9], "n": [120], "suppressed": [False]})
    >>> print(furthest_sentences(t)[0])
    In ELA, 40% of English learners were among the students with the least access, vs 20% of all other students (2.0 times as likely, 95% CI 1.4 to 2.9; n = 120).
    """
    t = table[~table["suppressed"].astype(bool) & (table["ci_lower"] > 0) & table["ratio_ci_lower"].notna()]
    t = t.sort_values("ratio", ascending=False)
    out = []
    for row in t.head(top).itertuples():
        out.append(
            f"In {subject_label(row.subject)}, {pct(row.estimate)} of "
            f"{level_label(row.group, row.level)} were among the students with the least access, vs "
            f"{pct(row.reference_estimate)} of all other students ({row.ratio:.1f} times as likely, "
            f"{ci_phrase(row.ratio_ci_lower, row.ratio_ci_upper, _times)}; n = {int(row.n):,})."
        )
    return out


def _share(x) -> str:
    """A partial R2 as a percentage, with a decimal when it is below 1%."""
    return pct(
        x, 1 if x is not None and not (isinstance(x, float) and math.isnan(x)) and abs(x) < 0.01 else 0
    )


def robustness_sentences(growth: pd.DataFrame, *, model: str = "all_four") -> list[str]:
    """One sentence per access effect: how strong an unmeasured confounder would have to be to erase it.

    Reads the sensitivity columns of :func:`opportunity_research.study.growth.fit_study_models` (robustness
    values on the between-classroom contrast, and the strongest observed classroom covariate as a benchmark).
    Only models that converged.

    Examples
    --------
    >>> g = pd.DataFrame({"model": ["all_four"], "effect": ["access"], "converged": [True], "subject": ["math"],
    ...                   "resource": ["grade_appropriate"], "robustness_value": [0.254],
    ...                   "robustness_value_05": [0.0], "benchmark": ["low_income"], "benchmark_r2_access": [0.106],
    ...                   "benchmark_r2_growth": [0.0009]})
    >>> print(robustness_sentences(g)[0])
    In math, grade-appropriate assignments: an unmeasured classroom factor would have to explain at least 25% of the remaining variation in both access and growth to erase this effect (it is already not statistically distinguishable from zero at the 5% level); the strongest observed classroom characteristic, the share of low-income students, explains 11% of the remaining variation in access and 0.1% in growth.
    """
    need = {"robustness_value", "robustness_value_05", "benchmark"}
    if growth is None or growth.empty or not need <= set(growth.columns):
        return []
    g = growth[
        (growth["model"] == model)
        & (growth["effect"] == "access")
        & growth["converged"].astype(bool)
        & growth["robustness_value"].notna()
    ]
    out = []
    for r in g.itertuples():
        rv05 = r.robustness_value_05
        sig = (
            "it is already not statistically distinguishable from zero at the 5% level"
            if rv05 == 0
            else f"at least {_share(rv05)} to make it statistically indistinguishable from zero"
        )
        text = (
            f"In {subject_label(r.subject)}, {labels.measure(r.resource).lower()}: an unmeasured classroom "
            f"factor would have to explain at least {_share(r.robustness_value)} of the remaining variation in "
            f"both access and growth to erase this effect ({sig})"
        )
        if r.benchmark:
            text += (
                f"; the strongest observed classroom characteristic, the share of "
                f"{level_label(r.benchmark, 1)}, explains {_share(r.benchmark_r2_access)} of the remaining "
                f"variation in access and {_share(r.benchmark_r2_growth)} in growth"
            )
        out.append(text + ".")
    return out


def growth_sentences(growth: pd.DataFrame) -> list[str]:
    """Access effects as the study framed them: classrooms with more vs less access (75th vs 25th percentile).

    Only effects of models that converged, whose contrast interval excludes zero; months of learning only
    where they were computed (see :func:`~opportunity_research.study.growth.fit_study_models`) and with their
    interval.

    Examples
    --------
    >>> g = pd.DataFrame({"model": ["all_four"], "effect": ["access"], "converged": [True], "subject": ["math"],
    ...                   "resource": ["strong_instruction"], "access_p75": [0.4], "access_p25": [0.1],
    ...                   "contrast_estimate": [0.12], "contrast_ci_lower": [0.04], "contrast_ci_upper": [0.2],
    ...                   "months": [1.3], "months_ci_lower": [0.4], "months_ci_upper": [2.2], "months_note": [""],
    ...                   "n": [900]})
    >>> print(growth_sentences(g)[0])
    In math, students in classrooms with more access to strong instruction (the district's 75th percentile of classrooms, 40% of the time, against the 25th, 10%) grew more in a year: a difference of 0.12 SD (95% CI 0.04 to 0.20 SD; n = 900 students), roughly 1.3 months of learning (95% CI 0.4 to 2.2 months; an approximation).
    >>> growth_sentences(g.assign(converged=False))
    ['1 growth model(s) did not converge and should not be relied on.']
    """
    if growth.empty:
        return []
    g = growth[
        (growth["model"] == "all_four")
        & (growth["effect"] == "access")
        & growth["converged"].astype(bool)
        & ((growth["contrast_ci_lower"] > 0) | (growth["contrast_ci_upper"] < 0))
    ]
    out = []
    for row in g.itertuples():
        more = "more" if row.contrast_estimate > 0 else "less"
        months = ""
        if pd.notna(row.months) and pd.notna(row.months_ci_lower):
            months = (
                f", roughly {row.months:.1f} months of learning (95% CI {row.months_ci_lower:.1f} to "
                f"{row.months_ci_upper:.1f} months; an approximation)"
            )
        elif str(row.months_note).startswith("n/a: "):
            months = f"; months of learning not given: {str(row.months_note)[5:]}"
        out.append(
            f"In {subject_label(row.subject)}, students in classrooms with more access to "
            f"{measures.RESOURCE_LABELS[row.resource].lower()} (the district's 75th percentile of classrooms, "
            f"{pct(row.access_p75)} of the time, against the 25th, {pct(row.access_p25)}) "
            f"grew {more} in a year: a difference of {row.contrast_estimate:.2f} SD (95% CI "
            f"{row.contrast_ci_lower:.2f} to {row.contrast_ci_upper:.2f} SD; n = {int(row.n):,} "
            f"students){months}."
        )
    not_conv = growth[~growth["converged"].astype(bool)]
    if len(not_conv):
        out.append(
            f"{not_conv['model'].nunique()} growth model(s) did not converge and should not be relied on."
        )
    return out


_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def catch_up_sentences(table: pd.DataFrame, *, horizon: int = 3) -> list[str]:
    """The district's catch-up rate as the scorecard publishes it (one indicator, one value everywhere).

    ``table`` is the scorecard's table (:attr:`opportunity_research.study.scorecard.Scorecard.table`); its
    district-wide, unsuppressed ``catch_up_rate`` row is described, or nothing.

    Examples
    --------
    >>> t = pd.DataFrame({"measure": ["catch_up_rate"], "school_id": ["all"], "group": ["all"],
    ...                   "suppressed": [False], "estimate": [0.25], "ci_lower": [0.16], "ci_upper": [0.36],
    ...                   "n": [212], "school_year": [2016]})
    >>> print(catch_up_sentences(t)[0])
    Catch-up rate: among students below grade level in spring 2013, 25% were at grade level three years later (95% CI 16% to 36%; n = 212 student results in ELA and math, spring 2016).
    >>> catch_up_sentences(t.assign(suppressed=True))
    []
    """
    t = table
    if t.empty:
        return []
    row = t[
        (t["measure"] == "catch_up_rate")
        & (t["school_id"] == "all")
        & (t["group"] == "all")
        & ~t["suppressed"].astype(bool)
    ]
    if row.empty or pd.isna(row["estimate"].iloc[0]):
        return []
    r = row.iloc[0]
    year = int(r["school_year"])
    text = (
        f"Catch-up rate: among students below grade level in spring {year - horizon}, "
        f"{pct(r['estimate'])} were at grade level {_WORDS.get(horizon, str(horizon))} years later "
        f"({ci_phrase(r['ci_lower'], r['ci_upper'])}; n = {int(r['n']):,} student results in ELA and math, "
        f"spring {year})."
    )
    return [text]
