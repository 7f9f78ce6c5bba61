"""Key findings as plain sentences generated from the tidy result tables.

Every sentence is built from numbers in a table passed in (never typed by hand), carries its interval
and says what a group is compared with. Suppressed rows are never described. The functions return
lists of sentences so the report can show them as a bulleted list.

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
from ..stats.gaps import ALL_OTHERS
from . import labels

__all__ = [
    "ci_phrase",
    "composition_sentences",
    "demands_sentence",
    "furthest_sentences",
    "gap_sentences",
    "level_label",
    "pct",
    "resource_sentences",
    "subject_label",
]


def pct(x: float, digits: int = 0) -> str:
    """Format a share as a percentage ('26%'); missing values as 'n/a'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    text = f"{100 * x:.{digits}f}%"
    return text[1:] if text.startswith("-") and float(text[:-1]) == 0 else text


def level_label(group: str, level) -> str:
    """Readable name of a student group, e.g. ('low_income', 1) -> 'low-income students'
    (:func:`opportunity_research.study.labels.level_phrase`, the one label registry)."""
    return labels.level_phrase(group, level)


def subject_label(subject: str) -> str:
    """Readable subject name: 'ela' -> 'ELA', 'math' -> 'math' (mid-sentence; from the label registry)."""
    return "ELA" if subject == "ela" else labels.subject(subject).lower()


def _times(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


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


def resource_sentences(rates: pd.DataFrame, *, hours_per_year: float = config.HOURS_PER_SUBJECT_YEAR) -> list[str]:
    """One sentence per resource from :func:`~opportunity_research.study.measures.resource_rates`."""
    out = []
    for row in rates[rates["subject"] == "all"].itertuples():
        out.append(f"{row.label}: {pct(row.estimate)} of {row.unit} ({ci_phrase(row.ci_lower, row.ci_upper)}; "
                   f"n = {row.n:,}), about {row.hours_without:.0f} of {hours_per_year:.0f} hours a year per subject "
                   f"without it.")
    return out


def demands_sentence(table: pd.DataFrame) -> str:
    """The study's contrast, from :func:`~opportunity_research.study.measures.demands_vs_standards`."""
    t = table.set_index("measure")
    md, gl = t.loc["met_demands"], t.loc["met_grade_level"]
    return (f"Students met the demands of their assignments in {pct(md.estimate)} of work samples "
            f"({ci_phrase(md.ci_lower, md.ci_upper)}), but showed mastery of grade-level standards in only "
            f"{pct(gl.estimate)} ({ci_phrase(gl.ci_lower, gl.ci_upper)}; n = {int(md.n):,} work samples).")


def gap_sentences(gaps: pd.DataFrame, *, top: int = 3) -> list[str]:
    """The largest unsuppressed shortfalls in access (most negative differences) across resources.

    Uses :func:`~opportunity_research.study.equity.resource_gaps` output; only rows whose interval excludes
    zero are described as gaps; the comparison group is always named.
    """
    g = gaps[~gaps["suppressed"].astype(bool) & (gaps["ci_upper"] < 0)]
    g = g.sort_values("difference").head(top)
    out = []
    for row in g.itertuples():
        ref = ALL_OTHERS if pd.isna(row.reference) or row.reference == ALL_OTHERS else level_label(row.group,
                                                                                                  row.reference)
        out.append(f"{level_label(row.group, row.level).capitalize()} ({subject_label(row.subject)}) "
                   f"had {row.label.lower()} {pct(row.estimate)} of the time vs {pct(row.reference_estimate)} for "
                   f"{ref}: a gap of {100 * row.difference:.1f} percentage points "
                   f"(95% CI {100 * row.ci_lower:.1f} to {100 * row.ci_upper:.1f}; n = {int(row.n):,} vs "
                   f"{int(row.reference_n):,}).")
    if not out:
        out.append("No group's access to any resource differed from other students' by more than the 95% "
                   "intervals allow (suppressed groups are not assessed).")
    return out


def composition_sentences(comp: pd.DataFrame) -> list[str]:
    """The study's classroom-composition contrasts from :func:`~opportunity_research.study.equity.classroom_composition`."""
    out = []
    c = comp[~comp["suppressed"].astype(bool)]
    for group, measure in (("majority_low_income", "grade_appropriate"), ("majority_low_income", "strong_instruction"),
                           ("majority_students_of_color", "grade_appropriate")):
        row = c[(c["group"] == group) & (c["measure"] == measure) & (c["level"].astype(float) == 0)]
        if len(row) and row["estimate"].iloc[0] == row["estimate"].iloc[0]:
            r = row.iloc[0]
            out.append(f"{level_label(group, 0).capitalize()} had {r.label.lower()} {pct(r.estimate)} of the time vs "
                       f"{pct(r.reference_estimate)} in {level_label(group, 1)}: {r.ratio:.1f} times as much "
                       f"({ci_phrase(r.ratio_ci_lower, r.ratio_ci_upper, _times)}; n = {int(r.n)} vs {int(r.reference_n)} "
                       f"classrooms).")
    never = c[(c["group"] == "majority_students_of_color") & (c["measure"] == "never_grade_appropriate")
              & (c["level"].astype(float) == 1)]
    if len(never):
        r = never.iloc[0]
        out.append(f"{pct(r.estimate)} of classrooms with mostly students of color never received a grade-appropriate "
                   f"assignment among those rated ({ci_phrase(r.estimate_ci_lower, r.estimate_ci_upper)}; n = {int(r.n)} "
                   f"classrooms).")
    return out


def furthest_sentences(table: pd.DataFrame, *, top: int = 3) -> list[str]:
    """Groups most over-represented among students furthest from opportunity (risk ratio > 1, CI above 0)."""
    t = table[~table["suppressed"].astype(bool) & (table["ci_lower"] > 0) & table["ratio_ci_lower"].notna()]
    t = t.sort_values("ratio", ascending=False)
    out = []
    for row in t.head(top).itertuples():
        out.append(f"In {subject_label(row.subject)}, {pct(row.estimate)} of "
                   f"{level_label(row.group, row.level)} were among the students with the least access, vs "
                   f"{pct(row.reference_estimate)} of all other students ({row.ratio:.1f} times as likely, "
                   f"{ci_phrase(row.ratio_ci_lower, row.ratio_ci_upper, _times)}; n = {int(row.n):,}).")
    return out
