"""A report's analysis settings in words: the scoring rules actually used, what differs from the defaults.

Everything a researcher can change in the district notebook's ``parameters`` cell (cut points, subjects,
reference groups, minimum cell size, bootstrap replicates and seed) must show in the report's text, not only
as a Python value: the Methods section states the cut rules used (:func:`scoring_text`), a comparison with the
study's published figure under a rule other than TNTP's default says so (:func:`study_note`,
:func:`comparable_study`), and the reproducibility card lists every non-default setting in words
(:func:`changed_settings`) and whether the project's git working tree was modified (:func:`working_tree`).

Examples
--------
>>> changed_settings({"cuts": {"grade_appropriate": 5}, "n_boot": 1000})
['Grade-appropriate assignment: content + practice + relevance is at least 5 of 6 (TNTP’s default: 4)']
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from .. import config
from ..intake.contract import CUT_POINTS, SUBGROUP_VARIABLES
from ..study import labels

__all__ = [
    "CUT_WORDS",
    "RESOURCE_CUTS",
    "changed_cuts",
    "changed_settings",
    "comparable_study",
    "scoring_text",
    "study_note",
    "working_tree",
]

#: The cut points each resource's score depends on.
RESOURCE_CUTS = {
    "grade_appropriate": ("grade_appropriate",),
    "strong_instruction": ("strong_instruction",),
    "engaged": ("engaged",),
    "high_expectations": ("high_expectations_current", "high_expectations_old"),
}

#: (name, what is scored, "of N") of every cut point, for sentences.
CUT_WORDS = {
    "grade_appropriate": ("Grade-appropriate assignment", "content + practice + relevance is", "6"),
    "strong_instruction": ("Strong instruction", "the IPG composite is", "3"),
    "engaged": ("Engaged moment", "the four engagement items sum to", "12"),
    "high_expectations_current": ("High expectations (4-item form)", "the 4-item sum is", "20"),
    "high_expectations_old": (
        "High expectations (6-item form)",
        "the 6-item sum (reverse-coded items as 5 − x) is",
        "30",
    ),
}


def _num(x) -> str:
    return f"{float(x):g}"


def changed_cuts(cuts: Mapping | None) -> dict[str, float]:
    """The cut points of ``cuts`` that differ from TNTP's defaults.

    Examples
    --------
    >>> changed_cuts({"grade_appropriate": 4, "engaged": 9}), changed_cuts(None)
    ({'engaged': 9}, {})
    """
    return {k: v for k, v in (cuts or {}).items() if k in CUT_POINTS and float(v) != float(CUT_POINTS[k][0])}


def _rule(key: str, value) -> str:
    _name, what, of = CUT_WORDS[key]
    text = f"{what} at least {_num(value)} of {of}"
    if key in changed_cuts({key: value}):
        text += f" (TNTP’s default: {_num(CUT_POINTS[key][0])})"
    return text


def scoring_text(cuts: Mapping | None = None) -> str:
    """The Methods bullet on scoring, with the cut points this report used; a changed one says so.

    Examples
    --------
    >>> scoring_text().startswith("Scoring follows TNTP’s public rules: an assignment is grade-appropriate when")
    True
    >>> "at least 5 of 6 (TNTP’s default: 4)" in scoring_text({"grade_appropriate": 5})
    True
    """
    c = {k: v[0] for k, v in CUT_POINTS.items()} | dict(cuts or {})
    changed = changed_cuts(c)
    lead = (
        "Scoring follows TNTP’s public rules"
        if not changed
        else "Scoring follows TNTP’s public rules with cut points changed for this report ("
        + ", ".join(CUT_WORDS[k][0].lower() for k in changed)
        + ")"
    )
    return (
        f"{lead}: an assignment is grade-appropriate when {_rule('grade_appropriate', c['grade_appropriate'])}; "
        f"a lesson has strong instruction when {_rule('strong_instruction', c['strong_instruction'])}; "
        f"a surveyed moment is engaged when {_rule('engaged', c['engaged'])}; a teacher holds high "
        f"expectations when {_rule('high_expectations_current', c['high_expectations_current'])} (older "
        f"form: {_rule('high_expectations_old', c['high_expectations_old'])}). Evidence with a missing item is "
        "left out."
    )


def study_note(resource: str, cuts: Mapping | None) -> str | None:
    """Why the study's figure for ``resource`` does not measure the same thing, when a cut it depends on differs
    from TNTP's default (None when the rule is the study's).

    Examples
    --------
    >>> study_note("grade_appropriate", {"grade_appropriate": 5})
    'the study’s figure uses TNTP’s default rule (at least 4 of 6); this report uses at least 5 of 6, so the two are not directly comparable'
    >>> study_note("engaged", {"grade_appropriate": 5}) is None
    True
    """
    changed = changed_cuts({k: v for k, v in (cuts or {}).items() if k in RESOURCE_CUTS.get(resource, ())})
    if not changed:
        return None
    default = " and ".join(f"at least {_num(CUT_POINTS[k][0])} of {CUT_WORDS[k][2]}" for k in changed)
    used = " and ".join(f"at least {_num(v)} of {CUT_WORDS[k][2]}" for k, v in changed.items())
    rule = "rule" if len(changed) == 1 else "rules"
    return (
        f"the study’s figure uses TNTP’s default {rule} ({default}); this report uses {used}, so the two are "
        "not directly comparable"
    )


def comparable_study(study: Mapping[str, float], cuts: Mapping | None) -> dict[str, float]:
    """The study's figures where they measure what this report measures (the cut rule is TNTP's default);
    NaN where this report changed the rule, so a chart shows the district's figure without a study marker.

    Examples
    --------
    >>> comparable_study({"grade_appropriate": 0.26, "met_demands": 0.71}, {"grade_appropriate": 5})
    {'grade_appropriate': nan, 'met_demands': 0.71}
    """
    return {k: (v if study_note(k, cuts) is None else float("nan")) for k, v in study.items()}


def _subjects(value) -> str:
    return " and ".join(labels.subject(s) for s in value)


def changed_settings(parameters: Mapping) -> list[str]:
    """Every setting in ``parameters`` that differs from the package's defaults
    (:data:`opportunity_research.config.ANALYSIS_DEFAULTS`), in words, one phrase each.

    Examples
    --------
    >>> changed_settings({"subjects": ["math"], "reference_groups": {"race_ethnicity": "white"}, "min_n": 20})
    ['Subjects: Math only (default: ELA and Math)', 'Race/ethnicity compared with White students (default: all other students)', 'Smallest published cell: 20 students (default: 10)']
    >>> changed_settings(config.analysis_defaults())
    []
    """
    d = config.ANALYSIS_DEFAULTS
    out = []
    for name, value in parameters.items():
        if name not in d or value == d[name]:
            continue
        if name == "subjects":
            only = " only" if len(value) < len(d["subjects"]) else ""
            out.append(f"Subjects: {_subjects(value)}{only} (default: {_subjects(d['subjects'])})")
        elif name == "cuts":
            for key, v in changed_cuts(value).items():
                name_, what, of = CUT_WORDS[key]
                out.append(
                    f"{name_}: {what} at least {_num(v)} of {of} (TNTP’s default: {_num(CUT_POINTS[key][0])})"
                )
        elif name == "reference_groups":
            for var, level in value.items():
                out.append(
                    f"{SUBGROUP_VARIABLES.get(var, var)} compared with {labels.level_phrase(var, level)} "
                    "(default: all other students)"
                )
        elif name == "min_n":
            out.append(f"Smallest published cell: {value} students (default: {d['min_n']})")
        elif name == "n_boot":
            out.append(f"Bootstrap replicates of the gap intervals: {value:,} (default: {d['n_boot']:,})")
        elif name == "seed":
            out.append(f"Bootstrap seed: {value} (default: {d['seed']})")
    return out


def working_tree(cwd=None) -> str:
    """Whether the project's git working tree has uncommitted changes to tracked files: ``"clean"``,
    ``"modified (N files)"``, or ``"unknown"`` outside a git checkout. File names are not given (a report
    shows no paths); untracked files (such as ``notebooks/work/``) do not count.

    Examples
    --------
    >>> import tempfile
    >>> working_tree(tempfile.mkdtemp())  # not a git checkout
    'unknown'
    """
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    n = len([x for x in out.stdout.splitlines() if x.strip()])
    return "clean" if n == 0 else f"modified ({n} file{'s' if n > 1 else ''} not committed)"
