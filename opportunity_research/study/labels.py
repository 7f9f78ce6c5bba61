"""One registry of the human labels every table, figure and sentence of a report uses.

The analysis modules return tidy tables with identifier-safe names (``ci_lower``, ``low_income``,
``grade_appropriate``, ``ela``, ``RSCH003``); a reviewer reads "95% interval", "Low-income students",
"Grade-appropriate assignments", "ELA", "Lakeside Middle School". This module is the single place that
maps the one to the other, so a label changes everywhere at once:

=====================  ========================================================================
:data:`COLUMNS`        column name -> column header (``"ci_lower"`` -> ``"95% interval, low"``)
:data:`VARIABLES`      student-group variable -> name (``"low_income"`` -> ``"Low income"``)
:func:`level`          (variable, level) -> the group's name (``("low_income", 1)`` -> ``"Low-income students"``)
:data:`SUBJECTS`       subject code -> name (``"ela"`` -> ``"ELA"``)
:data:`MEASURES`       resource / indicator / outcome code -> name
:data:`UNITS`          what a measure's ``n`` counts
:func:`school`         school id -> name, from a ``{school_id: school_name}`` map
=====================  ========================================================================

and display formats: :func:`year` (``2016`` -> ``"2016"``, never ``"2,016"``), :func:`school_year`
(``2016`` -> ``"2016-17"``), :func:`count` (``29.0`` -> ``"29"``), :func:`percent`, :func:`points`.

It depends on :mod:`opportunity_research.intake.contract` only (for the federal race/ethnicity names), so every
module of the study and the layers after it (disclosure, report, batch) may import it.

Examples
--------
>>> column("ci_lower"), variable("race_ethnicity"), level("race_ethnicity", "black")
('95% interval, low', 'Race/ethnicity', 'Black or African American students')
>>> level("low_income", 1.0), level("started_behind", "0.0"), subject("ela"), measure("engaged")
('Low-income students', 'Students who started at grade level', 'ELA', 'Deep engagement')
>>> level_phrase("low_income", 1), level_phrase("english_learner", 1), level_phrase("race_ethnicity", "asian")
('low-income students', 'English learners', 'Asian students')
>>> group("english_learner=1"), group("all"), year(2016.0), school_year(2016), count(29.0)
('English learners', 'All students', '2016', '2016-17', '29')
>>> school("RSCH003", {"RSCH003": "Riverton High"}), school("all")
('Riverton High', 'District')
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Mapping

from ..intake.contract import POOLED_RACE_ETHNICITY, POOLED_RACE_ETHNICITY_LABEL, RACE_ETHNICITY

__all__ = [
    "ALL_OTHERS_LABEL",
    "COLUMNS",
    "MEASURES",
    "MISSING",
    "MISSING_SPOKEN",
    "MISSING_TEXT",
    "SUBJECTS",
    "SUPPRESSED_LABEL",
    "SUPPRESSED_MARK",
    "UNITS",
    "VARIABLES",
    "column",
    "count",
    "group",
    "level",
    "level_phrase",
    "long_date",
    "measure",
    "number",
    "percent",
    "points",
    "school",
    "school_year",
    "subject",
    "variable",
    "year",
]

#: Shown instead of a suppressed number (in tables, figures and sentences).
SUPPRESSED_MARK = "‡"
#: The one accessible label of a hidden cell (title / aria-label beside the mark, and the legend's words).
SUPPRESSED_LABEL = "hidden to protect small groups"
#: Shown where a number is not available (not estimable, no data) in tables, pages and CSV-facing text;
#: suppression has its own mark.
MISSING = "–"
#: The same "no number" in text that is read aloud (a chart's alt text): a screen reader announces a lone
#: dash as "en dash" or skips it, so charts say it in words. The two media differ on purpose; both live here.
MISSING_SPOKEN = "not available"
#: The same in plain-text sentences (findings, the scorecard's goal text), where a dash could read as a minus.
MISSING_TEXT = "n/a"

#: The reference group "everyone else in the district" as readers see it (start of a sentence: capitalize).
#: Tables hold the machine value :data:`opportunity_research.intake.contract.ALL_OTHERS`; it reads the same today,
#: but a page shows this label, so a change of wording (or a translation) happens here, not in the data.
ALL_OTHERS_LABEL = "all other students"

#: Student-group (and classroom-group) variables.
VARIABLES: dict[str, str] = {
    "all": "All students",
    "race_ethnicity": "Race/ethnicity",
    "low_income": "Low income",
    "english_learner": "English learner",
    "disability": "Students with disabilities (IEP)",
    "started_behind": "Started the year behind",
    "grade": "Grade",
    "majority_students_of_color": "Classrooms by students of color",
    "majority_low_income": "Classrooms by family income",
    "school_id": "School",
}

#: Names of the levels of 0/1 group variables: (name when 1, name when 0).
_FLAG_LEVELS: dict[str, tuple[str, str]] = {
    "low_income": ("Low-income students", "Students not from low-income families"),
    "english_learner": ("English learners", "Students who are not English learners"),
    "disability": ("Students with disabilities", "Students without disabilities"),
    "started_behind": ("Students who started the year behind", "Students who started at grade level"),
    "majority_students_of_color": (
        "Classrooms with mostly students of color",
        "Classrooms with mostly white students",
    ),
    "majority_low_income": (
        "Classrooms with mostly low-income students",
        "Classrooms with mostly higher-income students",
    ),
}

#: Tested and other subjects.
SUBJECTS: dict[str, str] = {
    "all": "All subjects",
    "ela": "ELA",
    "math": "Math",
    "science": "Science",
    "social_studies": "Social studies",
}

#: Resources, scorecard indicators, multiple measures, work-sample and model outcomes.
MEASURES: dict[str, str] = {
    "grade_appropriate": "Grade-appropriate assignments",
    "strong_instruction": "Strong instruction",
    "engaged": "Deep engagement",
    "high_expectations": "Teachers with high expectations",
    "never_grade_appropriate": "Never received a grade-appropriate assignment",
    "met_demands": "Met the demands of the assignment",
    "met_grade_level": "Showed mastery of grade-level standards",
    # the scorecard's shares: the average student's share of time (students weighted equally), a different
    # definition from the report's share of rated evidence, hence a different name
    "grade_appropriate_share": "Grade-appropriate assignments (average student's share)",
    "strong_instruction_share": "Strong instruction (average student's share)",
    "engaged_share": "Deep engagement (average student's share)",
    "high_expectations_share": "Teachers with high expectations (average student's share)",
    "belonging_favorable": "Belonging (favorable)",
    "consistency_favorable": "Consistency (favorable)",
    "coherence_favorable": "Coherence (favorable)",
    "belonging": "Belonging",
    "consistency": "Consistency",
    "coherence": "Coherence",
    "catch_up_rate": "Catch-up rate (at grade level three years later)",
    "growth_grade_levels": "Growth (grade levels per year)",
    "chronic_absence": "Chronic absence",
    "chronic_absence_rate": "Chronic absence",
    "advanced_course": "Advanced coursework",
    "advanced_course_rate": "Advanced coursework",
    "all_four": "All four resources together",
    "access": "Access (all students)",
    "extra_if_behind": "Extra for students who started behind",
    "access_if_behind": "Access, students who started behind",
}

#: What ``n`` counts for each resource and work-sample measure.
UNITS: dict[str, str] = {
    "grade_appropriate": "assignments",
    "strong_instruction": "observed lessons",
    "engaged": "surveyed moments",
    "high_expectations": "teacher survey responses",
    "met_demands": "work samples",
    "met_grade_level": "work samples",
}

#: Column headers. Columns not listed fall back to a readable form of the name (``"n_schools"`` -> ``"Schools"``).
COLUMNS: dict[str, str] = {
    "label": "Measure",
    "measure": "Measure",
    "resource": "Resource",
    "subject": "Subject",
    "unit": "Evidence",
    "n": "Students",
    "n_students": "Students",
    "n_classrooms": "Classrooms",
    "n_schools": "Schools",
    "n_units": "Students",
    "n_started_behind": "Started behind",
    "estimate": "Share",
    "ci_lower": "95% interval, low",
    "ci_upper": "95% interval, high",
    "interval": "95% interval",
    "hours_without": "Hours a year without it (of 180)",
    "group": "Student group",
    "level": "Group",
    "reference": "Compared with",
    "reference_n": "Students compared with",
    "reference_estimate": "Their share",
    "difference": "Difference (points)",
    "ratio": "Ratio",
    "hedges_g": "Effect size (g)",
    "school_id": "School",
    "school_name": "School",
    "school_year": "School year",
    "year": "School year",
    "start_year": "Starting year",
    "years_later": "Years later",
    "model": "Model",
    "effect": "Effect",
    "months": "Months of learning",
    "months_ci_lower": "Months, 95% interval low",
    "months_ci_upper": "Months, 95% interval high",
    "converged": "Converged",
    "scale": "Scale",
    "mean_score": "Mean score (1-5)",
    "favorable": "Favorable",
    "alpha": "Cronbach's alpha",
    "goal_id": "Goal",
    "target": "Target",
    "target_year": "Target year",
    "baseline": "Baseline",
    "baseline_year": "Baseline year",
    "current": "Current",
    "current_year": "Year",
    "status": "Status",
    "reason": "Why",
    "description": "Goal",
    "district_id": "District",
    "what": "What",
    "number": "Number",
    "item": "Item",
    "value": "Value",
    "note": "Note",
    "needs": "What this section needs",
    "suppressed": "Suppressed",
}


def _text(value) -> str:
    """A level as text: whole-number floats without ``.0`` (``1.0`` -> ``"1"``)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return str(int(f))
    text = str(value).strip()
    return re.sub(r"^(-?\d+)\.0+$", r"\1", text)


def _readable(name: str) -> str:
    text = str(name).replace("_", " ").strip()
    text = re.sub(r"^n ", "", text)
    return text[:1].upper() + text[1:]


def column(name: str) -> str:
    """Header of a column: the registry's, else a readable form of the name.

    Examples
    --------
    >>> column("ci_lower"), column("n_students")
    ('95% interval, low', 'Students')
    """
    return COLUMNS.get(str(name), _readable(str(name)))


def variable(name: str) -> str:
    """Name of a group variable (``"disability"`` -> ``"Students with disabilities (IEP)"``).

    Examples
    --------
    >>> variable("disability"), variable("race_ethnicity")
    ('Students with disabilities (IEP)', 'Race/ethnicity')
    """
    return VARIABLES.get(str(name), _readable(str(name)))


def level(var: str, value) -> str:
    """Name of one group: a variable's level, as a reader says it.

    0/1 flags become the group's name (``("english_learner", 0)`` -> ``"Students who are not English
    learners"``), race/ethnicity codes the federal category ("... students"), grades ``"Grade 5"``;
    anything else ``"<Variable>: <level>"``.

    Examples
    --------
    >>> level("english_learner", 0), level("race_ethnicity", "asian"), level("grade", 5), level("all", "all")
    ('Students who are not English learners', 'Asian students', 'Grade 5', 'All students')
    """
    var, text = str(var), _text(value)
    if var == "all" or text == "all":
        return "All students"
    if var in _FLAG_LEVELS and text in ("0", "1"):
        return _FLAG_LEVELS[var][0 if text == "1" else 1]
    if text == POOLED_RACE_ETHNICITY:
        return POOLED_RACE_ETHNICITY_LABEL
    if var == "race_ethnicity" or text in RACE_ETHNICITY:
        return f"{RACE_ETHNICITY.get(text, text)} students"
    if var == "grade":
        return f"Grade {text}"
    return f"{variable(var)}: {text}"


def level_phrase(var: str, value) -> str:
    """:func:`level` as written mid-sentence: lower case except proper names (``"low-income students"``,
    ``"English learners"``, ``"Black or African American students"``).

    Examples
    --------
    >>> level_phrase("low_income", 1), level_phrase("english_learner", 1), level_phrase("race_ethnicity", "black")
    ('low-income students', 'English learners', 'Black or African American students')
    """
    text = level(var, value)
    first = text.split(" ", 1)[0]
    if _text(value) == POOLED_RACE_ETHNICITY:
        return text[:1].lower() + text[1:]
    if str(var) == "race_ethnicity" or _text(value) in RACE_ETHNICITY or first in ("English", "Grade"):
        return text
    return text[:1].lower() + text[1:]


def group(spec: str) -> str:
    """Name of a group written ``"all"`` or ``"<variable>=<level>"`` (the scorecard's spelling).

    Examples
    --------
    >>> group("all"), group("low_income=1"), group("race_ethnicity=white")
    ('All students', 'Low-income students', 'White students')
    """
    spec = str(spec)
    if spec == "all" or "=" not in spec:
        return level("all", "all") if spec == "all" else spec
    var, _, lev = spec.partition("=")
    return level(var.strip(), lev.strip())


def subject(code: str) -> str:
    """Subject name (``"ela"`` -> ``"ELA"``, ``"math"`` -> ``"Math"``).

    Examples
    --------
    >>> subject("ela"), subject("math")
    ('ELA', 'Math')
    """
    return SUBJECTS.get(str(code), _readable(str(code)))


def measure(code: str) -> str:
    """Name of a resource, indicator or outcome.

    Examples
    --------
    >>> measure("engaged"), measure("catch_up_rate"), measure("program_tutoring")
    ('Deep engagement', 'Catch-up rate (at grade level three years later)', 'Program: Tutoring')
    """
    code = str(code)
    if code.startswith("program_"):
        return "Program: " + _readable(code.removeprefix("program_"))
    return MEASURES.get(code, _readable(code))


def school(school_id, names: Mapping | None = None) -> str:
    """A school's name from ``names`` (``{school_id: school_name}``); ``"all"`` is the district.

    Examples
    --------
    >>> school("S1", {"S1": "Oak Elementary"}), school("all"), school("S9")
    ('Oak Elementary', 'District', 'S9')
    """
    sid = str(school_id)
    if sid == "all":
        return "District"
    return str((names or {}).get(sid, sid))


def pd_isna(value) -> bool:
    """True for NaN (any float type); False for other values."""
    try:
        return math.isnan(value)
    except TypeError:
        return False


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd_isna(value)) or str(value) in ("<NA>", "NaT")
    except (TypeError, ValueError):
        return False


def year(value) -> str:
    """A calendar or school year as digits only (``2016.0`` -> ``"2016"``).

    Examples
    --------
    >>> year(2016.0), year(None)
    ('2016', '–')
    """
    return MISSING if _missing(value) else _text(value)


def school_year(value) -> str:
    """The school year starting in ``value`` (``2016`` -> ``"2016-17"``).

    Examples
    --------
    >>> school_year(2016), school_year(float("nan"))
    ('2016-17', '–')
    """
    if _missing(value):
        return MISSING
    y = int(float(value))
    return f"{y}-{str(y + 1)[-2:]}"


def count(value) -> str:
    """A count as an integer with a thousands separator (``1234.0`` -> ``"1,234"``).

    Examples
    --------
    >>> count(1234.0), count(None)
    ('1,234', '–')
    """
    return MISSING if _missing(value) else f"{round(float(value)):,}"


def long_date(d) -> str:
    """A date as a reader writes it, the one form on every page: day without a leading zero, month, year.

    Examples
    --------
    >>> import datetime
    >>> long_date(datetime.date(2026, 12, 6))
    '6 December 2026'
    """
    return f"{d.day} {d:%B %Y}"


def percent(value, digits: int = 0, *, missing: str = MISSING, minus: str = "−") -> str:
    """A share (0-1) as a percentage (``0.263`` -> ``"26%"``); no ``"-0%"``.

    The one percent formatter: tables and pages use the defaults (the typographic minus, ``missing`` shown as
    :data:`MISSING`); sentences use ``missing=MISSING_TEXT`` and ``minus="-"`` (see
    :func:`opportunity_research.study.findings.pct`).

    Examples
    --------
    >>> percent(0.263), percent(-0.0004), percent(-0.05, 1), percent(None)
    ('26%', '0%', '−5.0%', '–')
    >>> percent(float("nan"), missing="n/a"), percent(-0.05, minus="-")
    ('n/a', '-5%')
    """
    if _missing(value):
        return missing
    text = f"{100 * float(value):.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", minus) + "%"


def number(
    value,
    digits: int = 2,
    *,
    signed: bool = False,
    thousands: bool = False,
    missing: str = MISSING,
    minus: str = "−",
) -> str:
    """A plain number with ``digits`` decimals (``-0.254`` -> ``"−0.25"``); no ``"-0.00"``.

    ``signed`` shows a ``+`` on positive numbers, ``thousands`` a thousands separator; ``missing`` and ``minus``
    as in :func:`percent`.

    Examples
    --------
    >>> number(-0.254), number(0.3, signed=True), number(-0.001), number(1234.5, 1, thousands=True), number(None)
    ('−0.25', '+0.30', '0.00', '1,234.5', '–')
    >>> number(-0.8, minus="-", missing=MISSING_SPOKEN), number(float("nan"), missing=MISSING_SPOKEN)
    ('-0.80', 'not available')
    """
    if _missing(value):
        return missing
    text = f"{float(value):{'+' if signed else ''}{',' if thousands else ''}.{digits}f}"
    if float(text.replace(",", "")) == 0:
        text = f"{0:.{digits}f}"
    return text.replace("-", minus)


def points(value, digits: int = 1, *, missing: str = MISSING, minus: str = "−") -> str:
    """A difference of shares in signed percentage points (``-0.052`` -> ``"−5.2"``).

    Examples
    --------
    >>> points(-0.052), points(0.0004), points(None)
    ('−5.2', '0.0', '–')
    >>> points(-0.052, minus="-"), points(None, missing=MISSING_SPOKEN)
    ('-5.2', 'not available')
    """
    if _missing(value):
        return missing
    return number(100 * float(value), digits, signed=True, minus=minus)


# ---------------------------------------------------------------------------------------------
# Other languages: the board summary in Spanish (``resources/summary.es.po``, read with babel)

#: Languages with a catalogue, besides English (the msgids).
LANGUAGES = ("en", "es")


@functools.cache
def _catalogue(lang: str) -> dict[str, str]:
    """``lang``'s catalogue, read once per process (the board summary translates a few hundred strings; reading
    and parsing the ``.po`` file for each of them cost a quarter of a second a district). Callers only read it.
    """
    from pathlib import Path

    from babel.messages.pofile import read_po

    path = Path(__file__).parents[1] / "resources" / f"summary.{lang}.po"
    with path.open("rb") as f:
        cat = read_po(f, locale=lang)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


def translate(text: str, lang: str = "en") -> str:
    """``text`` (an English label or sentence template) in ``lang``; English when ``lang`` is ``"en"``.

    Raises ``KeyError`` naming the text when the catalogue lacks it, so an untranslated string cannot
    slip into a Spanish page.
    """
    if lang == "en":
        return text
    cat = _catalogue(lang)
    if text not in cat:
        raise KeyError(f"no {lang} translation for {text!r} in resources/summary.{lang}.po")
    return cat[text]


_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def localize(text: str, lang: str = "en") -> str:
    """Numbers inside printed text in ``lang``'s style (Spanish: ``1,500`` -> ``1.500``, ``0.06`` -> ``0,06``)."""
    if lang == "en":
        return text
    out = _DECIMAL.sub(",", _THOUSANDS.sub("\u2009", str(text))).replace("\u2009", ".")
    return re.sub(r"(?<=[\d%]) to (?=[−+\d])", " a ", out)
