"""Reading a district export as it comes out of its student information system: the crosswalk.

A district rarely exports files in the contract's shape. Instead of rewriting every file, the analyst puts
one optional file beside the export, ``data/raw/<district_id>/crosswalk.yaml``, with three sections:

``files``
    contract table -> the district's file name (``students: Student_Roster.csv``);
``columns``
    contract table -> ``{contract column: district column}``;
``codes``
    ``table.column`` -> ``{district value: contract value}``. Once a column has codes, every non-empty
    value in it must be listed (an unlisted value is an error, never passed through); several district
    values may map to one contract value; a value mapped to ``""`` is read as missing (an empty cell).

Validation (:func:`opportunity_research.intake.validation.validate_district`) and processing read the export
through the crosswalk, and every problem names the district's own file and column together with the
contract's, e.g. ``Student_Roster.csv (students.csv)`` and ``FED_RACE (race_ethnicity)``. Unknown
sections, tables, columns or codes, a contract value the contract does not allow, and mappings that
collide (two tables on one file, two contract columns on one district column, one district value listed
twice) are errors with a suggestion.

Every scalar is read as text (YAML's "base" schema): ``Y``, ``yes``, ``01`` and ``2016-17`` stay exactly
what they are, so codes never change meaning by YAML's type guessing.

``opportunity-research init data/raw/<district_id>`` writes a draft (:func:`draft_crosswalk`): it matches
files and columns (exactly, ignoring case and spacing, or by known synonyms such as ``FED_RACE`` or
``FRL``) and the code tables it recognizes (federal race/ethnicity codes 1-7 in the federal reporting
order, Y/N and Yes/No flags, F/M/X, ELA/MATH, ``2016-17`` years, performance levels as words). Everything
it cannot decide is written as ``CHOOSE`` with a comment listing the candidates; validation refuses a
crosswalk that still holds one.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "crosswalk.yaml").write_text(
...     "files:\\n  students: roster.csv\\n"
...     "columns:\\n  students:\\n    student_id: STU_NUM\\n"
...     "codes:\\n  students.low_income:\\n    Y: 1\\n    N: 0\\n")
>>> cw, problems = load_crosswalk(folder)
>>> cw.filename("students"), cw.columns["students"], cw.codes[("students", "low_income")], problems
('roster.csv', {'student_id': 'STU_NUM'}, {'Y': '1', 'N': '0'}, [])
>>> cw.file_label("students")
'roster.csv (students.csv)'
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .contract import RACE_ETHNICITY, TABLES, Column

__all__ = [
    "CHOOSE",
    "CROSSWALK_FILE",
    "Crosswalk",
    "Draft",
    "draft_crosswalk",
    "load_crosswalk",
    "normalize_name",
    "register",
    "suggest",
]

#: The crosswalk's file name inside the district folder.
CROSSWALK_FILE = "crosswalk.yaml"
#: Placeholder the draft writes where the analyst must choose; validation refuses it.
CHOOSE = "CHOOSE"
_SECTIONS = ("files", "columns", "codes")


def normalize_name(name: str) -> str:
    """A name with case, spacing and punctuation removed, for matching.

    Examples
    --------
    >>> normalize_name("Student ID"), normalize_name("student_id"), normalize_name("  STUDENT-Id ")
    ('studentid', 'studentid', 'studentid')
    """
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def suggest(word: str, candidates, *, n: int = 1) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate ignoring case and spacing, or ``""``.

    Examples
    --------
    >>> suggest("race_ethnicty", ["race_ethnicity", "grade"])
    " (did you mean 'race_ethnicity'?)"
    >>> suggest("race", ["race_ethnicity", "grade"])
    " (did you mean 'race_ethnicity'?)"
    >>> suggest("zzz", ["race_ethnicity"])
    ''
    """
    cands = [str(c) for c in candidates]
    by_norm = {}
    for c in cands:
        by_norm.setdefault(normalize_name(c), c)
    hit = by_norm.get(normalize_name(word))
    if hit is not None and hit != word:
        return f" (did you mean '{hit}'?)"
    w = normalize_name(word)
    close = [c.lower() for c in cands if len(w) >= 3 and normalize_name(c).startswith(w)][:n]
    if not close:
        close = difflib.get_close_matches(str(word).lower(), [c.lower() for c in cands], n=n, cutoff=0.6)
    if not close:
        return ""
    orig = [next(c for c in cands if c.lower() == x) for x in close]
    return " (did you mean " + " or ".join(f"'{o}'" for o in orig) + "?)"


# --------------------------------------------------------------------------------------------------
# The crosswalk object


@dataclass
class Crosswalk:
    """A district's crosswalk (see the module docstring). An empty one (``Crosswalk()``) changes nothing.

    Attributes
    ----------
    files
        ``{table: district file name}``.
    columns
        ``{table: {contract column: district column}}``.
    codes
        ``{(table, column): {district value: contract value}}`` (all text; ``""`` = missing).
    present
        Whether the district folder has a crosswalk file.

    Examples
    --------
    >>> cw = Crosswalk(files={"students": "roster.csv"}, columns={"students": {"race_ethnicity": "FED_RACE"}})
    >>> cw.file_label("students"), cw.column_label("students", "race_ethnicity")
    ('roster.csv (students.csv)', 'FED_RACE (race_ethnicity)')
    """

    files: dict[str, str] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    codes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    present: bool = False

    def filename(self, table: str) -> str:
        """The district's file name for contract ``table``.

        Examples
        --------
        >>> Crosswalk(files={"students": "roster.csv"}).filename("students"), Crosswalk().filename("schools")
        ('roster.csv', 'schools.csv')
        """
        return self.files.get(table, TABLES[table].filename)

    def file_label(self, table: str) -> str:
        """How problems name the table's file: ``"roster.csv (students.csv)"``, or ``"students.csv"``.

        Examples
        --------
        >>> Crosswalk().file_label("students")
        'students.csv'
        """
        own = self.filename(table)
        return own if own == TABLES[table].filename else f"{own} ({TABLES[table].filename})"

    def column_label(self, table: str, column: str) -> str:
        """How problems name a contract column: ``"FED_RACE (race_ethnicity)"``, or the contract name.

        Examples
        --------
        >>> Crosswalk(columns={"students": {"grade": "GRD"}}).column_label("students", "grade")
        'GRD (grade)'
        """
        own = self.columns.get(table, {}).get(column)
        return column if own is None or own == column else f"{own} ({column})"

    def rename_header(self, table: str, header: list[str]) -> tuple[list[str], list[str]]:
        """The header in contract names, and the district columns left unused because of the mapping.

        A district column named like a contract column that the crosswalk maps to *another* district column
        is not used; it keeps a name that is not a contract column, so it is reported as ignored.

        Examples
        --------
        >>> cw = Crosswalk(columns={"students": {"grade": "GRD"}})
        >>> cw.rename_header("students", ["student_id", "GRD", "grade"])
        (['student_id', 'grade', 'grade (not used: the crosswalk reads grade from GRD)'], ['grade'])
        """
        mapping = self.columns.get(table, {})
        reverse = {d: c for c, d in mapping.items()}
        out, unused = [], []
        for h in header:
            if h in reverse:
                out.append(reverse[h])
            elif h in mapping and mapping[h] != h:
                out.append(f"{h} (not used: the crosswalk reads {h} from {mapping[h]})")
                unused.append(h)
            else:
                out.append(h)
        return out, unused


# --------------------------------------------------------------------------------------------------
# Loading and checking


@dataclass
class _Node:
    value: object  # str, dict[str, _Node] or list
    line: int  # 1-based


def _plain(node) -> _Node:
    """A YAML node as nested _Node values; duplicate keys are kept as ``(key, node)`` pairs."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        return _Node([(k.value if isinstance(k, yaml.ScalarNode) else None, k.start_mark.line + 1, _plain(v))
                      for k, v in node.value], line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_plain(v) for v in node.value], line)
    return _Node(node.value, line)


def _pairs(node: _Node, where: str, problems: list) -> dict[str, _Node]:
    """The mapping of ``node`` (``where`` names it in messages); duplicates and non-mappings are problems."""
    if not isinstance(node.value, list) or any(not isinstance(p, tuple) for p in node.value):
        if node.value in ("", None):
            return {}
        problems.append(("error", node.line, where, None, "must be a mapping (key: value lines)"))
        return {}
    out: dict[str, _Node] = {}
    for key, line, child in node.value:
        if key is None:
            problems.append(("error", line, where, None, "keys must be plain text"))
        elif key in out:
            problems.append(("error", line, where, key, (f"listed twice (first on line {out[key].line}); "
                             "the two mappings collide: keep one")))
        else:
            child.line = line  # the line of its key
            out[key] = child
    return out


def _scalar(node: _Node, where: str, key: str, problems: list) -> str | None:
    if isinstance(node.value, list):
        problems.append(("error", node.line, where, key, "must be a single value, not a list or mapping"))
        return None
    return str(node.value).strip()


def _value_rule(c: Column, value: str) -> str | None:
    """Why ``value`` cannot stand in contract column ``c`` (None if it can)."""
    if value == "":
        return None
    if c.kind in ("int", "float", "flag"):
        try:
            x = float(value)
        except ValueError:
            return f"maps to '{value}', which is not a number"
        if c.allowed is not None and x not in c.allowed:
            return f"maps to '{value}'; {c.name} must be one of: " + ", ".join(map(str, c.allowed))
        if c.kind in ("int", "flag") and x % 1:
            return f"maps to '{value}'; {c.name} must be a whole number"
        if (c.min is not None and x < c.min) or (c.max is not None and x > c.max):
            return f"maps to '{value}'; {c.name} must be between {c.min:g} and {c.max:g}"
        return None
    if c.allowed is not None and value not in c.allowed:
        return (f"maps to '{value}', which is not a contract code; {c.name} must be one of: "
                + ", ".join(map(str, c.allowed)) + suggest(value, c.allowed))
    return None


def load_crosswalk(folder: str | os.PathLike) -> tuple[Crosswalk, list[tuple]]:
    """Read ``<folder>/crosswalk.yaml`` (if there is one) and check it against the contract.

    Parameters
    ----------
    folder
        The district folder.

    Returns
    -------
    (Crosswalk, problems)
        The crosswalk (empty when the folder has none) and its problems as
        ``(severity, line, key, value, rule)`` tuples (``key`` names the entry, e.g. ``columns.students``).
        Entries with a problem are left out of the crosswalk.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "crosswalk.yaml").write_text("files:\\n  student: roster.csv\\n")
    >>> cw, problems = load_crosswalk(folder)
    >>> problems[0][1:]
    (2, 'files', 'student', "unknown contract table (did you mean 'students'?)")
    """
    path = Path(folder) / CROSSWALK_FILE
    cw, problems = Crosswalk(), []
    if not os.path.lexists(path):
        return cw, problems
    cw.present = True
    if path.is_symlink() or not path.is_file():
        problems.append(("error", None, None, None, ("must be a regular file in the district folder (not a link, "
                         "folder or pipe); not read")))
        return cw, problems
    try:
        text = path.read_text(encoding="utf-8-sig")
        root = yaml.compose(text, Loader=yaml.BaseLoader)
    except UnicodeDecodeError:
        problems.append(("error", None, None, None, "not valid UTF-8 text; save it as UTF-8"))
        return cw, problems
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(("error", mark.line + 1 if mark else None, None, None,
                         f"not valid YAML: {getattr(exc, 'problem', None) or exc}"))
        return cw, problems
    if root is None:
        return cw, problems
    top = _pairs(_plain(root), "(top level)", problems)
    for key, node in top.items():
        if key not in _SECTIONS:
            problems.append(("error", node.line, "(top level)", key, "unknown section; the sections are files, "
                             "columns and codes" + suggest(key, _SECTIONS)))
    tables = list(TABLES)
    if "files" in top:
        seen: dict[str, str] = {}
        for table, node in _pairs(top["files"], "files", problems).items():
            value = _scalar(node, "files", table, problems)
            if table not in TABLES:
                problems.append(("error", node.line, "files", table, "unknown contract table" + suggest(table, tables)))
            elif value is None:
                continue
            elif value == CHOOSE or value == "":
                problems.append(("error", node.line, "files", table, ("no file chosen yet: name the district's "
                                 f"file for {table}, or delete the line if the district has none")))
            elif "/" in value or "\\" in value or value in (".", ".."):
                problems.append(("error", node.line, "files", table, (f"'{value}' must be a file name in the "
                                 "district folder, not a path")))
            elif value.lower() in seen:
                problems.append(("error", node.line, "files", table, (f"'{value}' is already the file of "
                                 f"{seen[value.lower()]}; two tables cannot share a file")))
            else:
                seen[value.lower()] = table
                cw.files[table] = value
        taken = {TABLES[t].filename.lower(): t for t in TABLES if t not in cw.files}
        for table, value in cw.files.items():
            other = taken.get(value.lower())
            if other is not None:
                problems.append(("error", top["files"].line, "files", table, (f"'{value}' is the contract file "
                                 f"name of {other}, which is not mapped elsewhere; map {other} to its own file")))
    if "columns" in top:
        for table, node in _pairs(top["columns"], "columns", problems).items():
            if table not in TABLES:
                problems.append(("error", node.line, "columns", table,
                                 "unknown contract table" + suggest(table, tables)))
                continue
            where = f"columns.{table}"
            mapping, used = {}, {}
            for col, cnode in _pairs(node, where, problems).items():
                value = _scalar(cnode, where, col, problems)
                if col not in TABLES[table].columns:
                    problems.append(("error", cnode.line, where, col, f"unknown column of {table}"
                                     + suggest(col, TABLES[table].columns)))
                elif value is None:
                    continue
                elif value == CHOOSE or value == "":
                    problems.append(("error", cnode.line, where, col, ("no district column chosen yet: name it, or "
                                     "delete the line if the contract column is optional and absent")))
                elif value in used:
                    problems.append(("error", cnode.line, where, col, (f"district column '{value}' is already "
                                     f"mapped to {used[value]}; one district column feeds one contract column")))
                else:
                    used[value] = col
                    mapping[col] = value
            if mapping:
                cw.columns[table] = mapping
    if "codes" in top:
        for key, node in _pairs(top["codes"], "codes", problems).items():
            table, _, col = key.partition(".")
            if table not in TABLES:
                problems.append(("error", node.line, "codes", key, "must be '<table>.<column>' with a contract "
                                 "table" + suggest(table, tables)))
                continue
            if col not in TABLES[table].columns:
                problems.append(("error", node.line, "codes", key, f"unknown column of {table}"
                                 + suggest(col, TABLES[table].columns)))
                continue
            c = TABLES[table].columns[col]
            where = f"codes.{key}"
            mapping = {}
            for dv, vnode in _pairs(node, where, problems).items():
                value = _scalar(vnode, where, dv, problems)
                if value is None:
                    continue
                if value == CHOOSE:
                    allowed = (": one of " + ", ".join(map(str, c.allowed))) if c.allowed else ""
                    problems.append(("error", vnode.line, where, dv, (f"no contract value chosen yet{allowed} "
                                     "(or \"\" to read it as missing)")))
                    continue
                rule = _value_rule(c, value)
                if rule:
                    problems.append(("error", vnode.line, where, dv, rule))
                    continue
                mapping[dv] = value
            if mapping:
                cw.codes[(table, col)] = mapping
    return cw, problems


# --------------------------------------------------------------------------------------------------
# Drafting a crosswalk: `opportunity-research init`

#: Known district names for contract tables (compared with case, spacing and punctuation removed).
TABLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "schools": ("school", "buildings", "building", "sites", "schoollist", "schooldirectory"),
    "students": ("student", "roster", "studentroster", "demographics", "studentdemographics", "studentinfo"),
    "classrooms": ("classroom", "sections", "section", "classes", "courses", "coursesections", "mastersched",
                   "masterschedule"),
    "enrollments": ("enrollment", "schedules", "studentschedules", "sectionenrollment", "rosters",
                    "studentsections", "courseenrollment"),
    "assessments": ("assessment", "tests", "testscores", "scores", "statetests", "statetest", "testresults"),
    "assignments": ("assignment", "assignmentratings", "ratedassignments"),
    "work_samples": ("worksamples", "studentwork", "work"),
    "observations": ("observation", "ipg", "ipgobservations", "walkthroughs", "lessonobservations"),
    "engagement_surveys": ("engagement", "studentsurveys", "realtimesurveys", "engagementsurvey"),
    "teacher_surveys": ("teachersurvey", "expectations", "expectationsurvey", "teacherexpectations"),
    "climate_surveys": ("climate", "climatesurvey", "studentclimate"),
    "attendance": ("attendancesummary", "daysattended", "absences"),
    "advanced_courses": ("advancedcoursework", "advanced", "apcourses", "honors"),
    "programs": ("program", "programparticipation", "participation"),
    "goals": ("goal", "scorecardgoals", "targets"),
}
#: Known district names for contract columns (any table), normalized as :func:`normalize_name` does.
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "student_id": ("studentnumber", "stunum", "stuid", "studentid", "localid", "localstudentid", "sid",
                   "studentno", "statestudentid", "ssid", "pupilid"),
    "school_id": ("schoolcode", "schoolnumber", "buildingid", "buildingcode", "schid", "schoolno", "sitecode",
                  "siteid", "schoolnum"),
    "school_name": ("name", "school", "buildingname", "sitename"),
    "school_level": ("level", "schooltype", "gradespan", "schoolcategory"),
    "grade": ("gradelevel", "grd", "gr", "enrolledgrade", "currentgrade", "testedgrade", "gradetested"),
    "race_ethnicity": ("race", "ethnicity", "fedrace", "federalrace", "racecode", "fedracecode",
                       "raceethnicitycode", "federalraceethnicity", "reportingrace"),
    "low_income": ("frl", "frpl", "frlflag", "econdis", "economicallydisadvantaged", "econdisadv", "edflag",
                   "freereducedlunch", "lowincomeflag", "ecodis"),
    "english_learner": ("ell", "el", "lep", "elflag", "ellflag", "lepflag", "englishlanguagelearner", "elstatus"),
    "disability": ("iep", "swd", "sped", "specialed", "iepflag", "spedflag", "studentwithdisability",
                   "disabilityflag"),
    "gender": ("sex", "gendercode", "sexcode"),
    "classroom_id": ("sectionid", "section", "classid", "coursesection", "sectionnumber", "classsection"),
    "teacher_id": ("teacher", "staffid", "educatorid", "teachernumber", "employeeid", "instructorid"),
    "subject": ("subjectarea", "contentarea", "coursesubject", "testsubject", "subj"),
    "school_year": ("year", "sy", "schoolyr", "academicyear", "testyear", "endyear", "yearstart"),
    "window": ("testwindow", "season", "admin", "administration", "term", "testseason"),
    "scale_score": ("score", "ss", "scaledscore", "scalescore", "rawscale"),
    "grade_level_cut": ("proficiencycut", "cutscore", "proficientcut", "gradelevelcut", "cut"),
    "performance_level": ("perflevel", "achievementlevel", "proficiencylevel", "perfLevel", "plevel",
                          "performancelevelcode"),
    "grade_equivalent": ("ge", "gradeeq", "gradeequiv"),
    "days_enrolled": ("membershipdays", "daysmembership", "daysenrolled", "daysinmembership"),
    "days_present": ("daysattended", "attendancedays", "dayspresent"),
    "course_type": ("coursetype", "coursecategory", "advancedtype"),
    "program": ("programname", "programtype", "programcode"),
}

#: Federal race/ethnicity codes 1-7 in the federal reporting order (the order of
#: :data:`~opportunity_research.intake.contract.RACE_ETHNICITY`), and the usual letter and word codes.
FEDERAL_RACE_CODES: dict[str, str] = {str(i + 1): k for i, k in enumerate(RACE_ETHNICITY)}
_RACE_WORDS = {
    "hispanic_latino": ("h", "hi", "hispanic", "latino", "latinx", "hispaniclatino", "hispanicorlatino",
                        "hispaniclatinoofanyrace"),
    "american_indian_alaska_native": ("i", "am", "ai", "americanindian", "americanindianoralaskanative",
                                      "americanindianalaskanative", "nativeamerican", "aian"),
    "asian": ("a", "as", "asian"),
    "black": ("b", "bl", "black", "africanamerican", "blackorafricanamerican", "blackafricanamerican"),
    "native_hawaiian_pacific_islander": ("p", "pi", "hp", "pacificislander", "nativehawaiian",
                                         "nativehawaiianorotherpacificislander", "nativehawaiianpacificislander",
                                         "nhpi"),
    "white": ("w", "wh", "white", "caucasian"),
    "two_or_more": ("m", "mu", "tr", "twoormore", "twoormoreraces", "multiracial", "multiple", "multirace"),
}
_FLAG_WORDS = {"1": ("y", "yes", "true", "t", "1"), "0": ("n", "no", "false", "f", "0")}
_GENDER_WORDS = {"female": ("f", "female", "girl", "woman"), "male": ("m", "male", "boy", "man"),
                 "nonbinary": ("x", "nonbinary", "nb", "other")}
_SUBJECT_WORDS = {"ela": ("ela", "englishlanguagearts", "reading", "readinglanguagearts", "english", "rla",
                          "ela/literacy", "literacy", "read"),
                  "math": ("math", "mathematics", "maths", "mat", "mth"),
                  "science": ("science", "sci"), "social_studies": ("socialstudies", "ss", "history", "soc")}
_WINDOW_WORDS = {"fall": ("fall", "autumn", "boy", "beginningofyear", "f", "fa"),
                 "spring": ("spring", "eoy", "endofyear", "s", "sp", "spr")}
_LEVEL_WORDS = {"elementary": ("es", "elem", "elementary", "elementaryschool", "e"),
                "middle": ("ms", "middle", "middleschool", "juniorhigh", "jh", "m"),
                "high": ("hs", "high", "highschool", "h")}
#: Performance levels as words, low to high (levels 1-4).
PERFORMANCE_SCALES = (
    ("belowbasic", "basic", "proficient", "advanced"),
    ("notmet", "partiallymet", "met", "exceeded"),
    ("standardnotmet", "standardnearlymet", "standardmet", "standardexceeded"),
    ("didnotmeet", "approaches", "meets", "masters"),
    ("doesnotmeet", "partiallymeets", "meets", "exceeds"),
    ("doesnotmeetexpectations", "partiallymeetsexpectations", "meetsexpectations", "exceedsexpectations"),
    ("minimal", "basic", "proficient", "advanced"),
    ("level1", "level2", "level3", "level4"),
    ("l1", "l2", "l3", "l4"),
)
_YEAR_RE = re.compile(r"^\s*(?:sy|fy)?\s*((?:19|20)\d\d)\s*[-/–]\s*((?:19|20)?\d\d)\s*$", re.IGNORECASE)


def _year_code(value: str) -> str | None:
    """``"2016-17"`` / ``"2016-2017"`` / ``"SY 2016-17"`` -> ``"2016"`` (the start year), else None."""
    m = _YEAR_RE.match(value)
    if not m:
        return None
    start, end = int(m.group(1)), m.group(2)
    end_full = int(end) if len(end) == 4 else (start // 100) * 100 + int(end)
    return str(start) if end_full == start + 1 else None


def _words(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {w: code for code, words in table.items() for w in words}


def _recognize(c: Column, values: list[str]) -> tuple[dict[str, str], str, list[str]]:
    """Codes for the distinct ``values`` of a district column feeding contract column ``c``.

    Returns ``(mapping, how, undecided)``: ``mapping`` holds every value it could decide, ``how`` says which
    code table it recognized, ``undecided`` the values the analyst must choose.
    """
    norm = {v: normalize_name(v) for v in values}
    if c.name == "race_ethnicity":
        if all(v in FEDERAL_RACE_CODES for v in values):
            return ({v: FEDERAL_RACE_CODES[v] for v in values},
                    ("federal race/ethnicity codes 1-7 in the federal reporting order (1 = Hispanic/Latino, "
                    "2 = American Indian/Alaska Native, 3 = Asian, 4 = Black, 5 = Native Hawaiian/Pacific "
                    "Islander, 6 = White, 7 = Two or more): check against your system's code book"), [])
        table, how = _words(_RACE_WORDS), "race/ethnicity words and letter codes"
    elif c.kind == "flag":
        table, how = _words(_FLAG_WORDS), "Y/N, Yes/No, True/False flags"
    elif c.name == "gender":
        table, how = _words(_GENDER_WORDS), "F/M/X gender codes"
    elif c.name == "subject":
        table, how = _words(_SUBJECT_WORDS), "subject names (ELA/MATH ...)"
    elif c.name == "window":
        table, how = _words(_WINDOW_WORDS), "testing windows"
    elif c.name == "school_level":
        table, how = _words(_LEVEL_WORDS), "school levels"
    elif c.name in ("school_year", "baseline_year", "target_year"):
        mapping = {v: y for v in values if (y := _year_code(v)) is not None}
        return mapping, "school years written as '2016-17' (read as the year the school year starts in)", [
            v for v in values if v not in mapping]
    elif c.name == "performance_level":
        present = set(norm.values())
        for scale in PERFORMANCE_SCALES:
            if present <= set(scale):
                return ({v: str(scale.index(norm[v]) + 1) for v in values},
                        "performance levels as words (" + " < ".join(scale) + ")", [])
        table, how = {}, "performance levels"
    elif c.allowed is not None:
        table = {normalize_name(a): str(a) for a in c.allowed}
        how = "codes that differ from the contract's only in case or spacing"
    else:
        return {}, "", []
    mapping = {v: table[norm[v]] for v in values if norm[v] in table}
    return mapping, how, [v for v in values if v not in mapping]


def _needs_codes(c: Column, values: list[str]) -> bool:
    """Whether the district's distinct values differ from what the contract accepts as they are."""
    if c.kind in ("int", "float", "flag"):
        for v in values:
            try:
                x = float(v)
            except ValueError:
                return True
            if c.allowed is not None and x not in c.allowed:
                return True
        return False
    return c.allowed is not None and any(v not in c.allowed for v in map(str, values))


@dataclass
class Draft:
    """A drafted crosswalk: the YAML text and what was matched or left to the analyst.

    ``matched`` and ``choices`` are lists of one-line texts; ``choices`` are the ``CHOOSE`` entries.

    Examples
    --------
    >>> Draft("files: {}", ["file students: roster.csv (synonym)"], []).n_choices
    0
    """

    text: str
    matched: list[str]
    choices: list[str]

    @property
    def n_choices(self) -> int:
        """How many entries the analyst must decide."""
        return len(self.choices)


def _q(s) -> str:
    """A YAML double-quoted scalar."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_header(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        row = next(csv.reader(fh), None)
    return [h.strip() for h in (row or [])]


def _match(name: str, targets, synonyms: dict[str, tuple[str, ...]]) -> tuple[str | None, str]:
    """The target ``name`` matches, and how ("exact", "case/spacing", "synonym")."""
    if name in targets:
        return name, "exact"
    n = normalize_name(name)
    for t in targets:
        if normalize_name(t) == n:
            return t, "case/spacing"
    for t in targets:
        if n in {normalize_name(s) for s in synonyms.get(t, ())}:
            return t, "synonym"
    return None, ""


def draft_crosswalk(folder: str | os.PathLike, *, max_codes: int = 200) -> Draft:
    """Inspect a district folder's CSV files and draft its crosswalk.

    Files are matched to contract tables by name (exact, case/spacing, known synonyms) and, failing that,
    by how many of their columns match the table's; columns by name (exact, case/spacing, synonyms); code
    columns (flags, categories, years, performance levels) by the distinct values they hold, against the
    code tables this module recognizes. What is not decided is written as ``CHOOSE`` with the candidates
    in a comment. Reads only.

    Parameters
    ----------
    folder
        ``data/raw/<district_id>``.
    max_codes
        A column with more distinct values than this gets no code table (it is reported instead).

    Returns
    -------
    Draft
        ``text`` (the YAML), ``matched`` and ``choices`` (one line each).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "Student Roster.csv").write_text("STUDENT_NUMBER,School_ID,Grade,FED_RACE\\n7,S1,4,2\\n")
    >>> d = draft_crosswalk(folder)
    >>> print("\\n".join(d.text.partition("\\ncolumns:")[2].strip().splitlines()[:6]))
    students:
        student_id: "STUDENT_NUMBER"  # synonym
        school_id: "School_ID"  # case/spacing
        grade: "Grade"  # case/spacing
        race_ethnicity: "FED_RACE"  # synonym
        low_income: CHOOSE  # CHOOSE: required column; unmatched columns: none left
    >>> d.n_choices  # the 9 other required files and 4 student columns (low_income, ...)
    13
    >>> '"2": "american_indian_alaska_native"' in d.text
    True
    """
    folder = Path(folder)
    csvs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and not p.name.startswith(".")
                  and p.is_file() and not p.is_symlink())
    headers = {p.name: _read_header(p) for p in csvs}
    matched, choices = [], []
    # 1. files: by name, then by columns
    files: dict[str, tuple[str, str]] = {}
    free = [p.name for p in csvs]
    for t in TABLES:
        for name in list(free):
            hit, how = _match(Path(name).stem, [t], TABLE_SYNONYMS)
            if hit:
                files[t] = (name, how)
                free.remove(name)
                break
    for t in TABLES:
        if t in files:
            continue
        scores = []
        for name in free:
            cols = {_match(h, list(TABLES[t].columns), COLUMN_SYNONYMS)[0] for h in headers[name]} - {None}
            need = {c for c, col in TABLES[t].columns.items() if col.required}
            scores.append((len(cols & need) / max(len(need), 1), name))
        scores.sort(reverse=True)
        if scores and scores[0][0] >= 0.75 and (len(scores) == 1 or scores[1][0] < scores[0][0]):
            files[t] = (scores[0][1], "columns")
            free.remove(scores[0][1])
    lines = ["# Crosswalk drafted by `opportunity-research init`. Check every line; replace each CHOOSE.",
             "# Sections: files (contract table -> your file), columns (contract column -> your column),",
             "# codes (table.column -> {your value: contract value}; \"\" reads a value as missing).",
             "# See docs/data_contract.md, 'Bringing your own export: the crosswalk'.", "", "files:"]
    for t, table in TABLES.items():
        if t in files:
            name, how = files[t]
            lines.append(f"  {t}: {_q(name)}  # {how}")
            matched.append(f"file {t}: {name} ({how})")
        elif table.required:
            cand = ", ".join(free) or "no unmatched CSV file in the folder"
            lines.append(f"  {t}: {CHOOSE}  # CHOOSE: required table; candidates: {cand}")
            choices.append(f"file of {t} (candidates: {cand})")
    lines += ["", "columns:"]
    code_lines: list[str] = []
    for t, (name, _) in files.items():
        table = TABLES[t]
        header = headers[name]
        used: dict[str, tuple[str, str]] = {}
        ambiguous: dict[str, list[str]] = {}
        for h in header:
            target, how = _match(h, list(table.columns), COLUMN_SYNONYMS)
            if target is None:
                continue
            if target in used:
                rank = {"exact": 0, "case/spacing": 1, "synonym": 2}
                if rank[how] < rank[used[target][1]]:
                    used[target] = (h, how)
                elif rank[how] == rank[used[target][1]]:
                    ambiguous.setdefault(target, [used[target][0]]).append(h)
            else:
                used[target] = (h, how)
        lines.append(f"  {t}:")
        spare = [h for h in header if h not in {u[0] for u in used.values()}]
        for col, c in table.columns.items():
            if col in ambiguous:
                cand = ", ".join(ambiguous[col])
                lines.append(f"    {col}: {CHOOSE}  # CHOOSE: several columns match: {cand}")
                choices.append(f"column {t}.{col} (several match: {cand})")
            elif col in used:
                h, how = used[col]
                lines.append(f"    {col}: {_q(h)}  # {how}")
                if how != "exact":
                    matched.append(f"column {t}.{col}: {h} ({how})")
            elif c.required:
                cand = ", ".join(spare) or "none left"
                lines.append(f"    {col}: {CHOOSE}  # CHOOSE: required column; unmatched columns: {cand}")
                choices.append(f"column {t}.{col} (unmatched columns: {cand})")
        # 3. codes of the matched columns
        usecols = {used[col][0]: col for col in table.columns if col in used and col not in ambiguous
                   and (table.columns[col].allowed is not None or table.columns[col].kind in ("int", "flag"))}
        if not usecols:
            continue
        df = pd.read_csv(folder / name, usecols=list(usecols), dtype=str, keep_default_na=False,
                         encoding="utf-8-sig", encoding_errors="replace")
        for h, col in usecols.items():
            c = table.columns[col]
            values = sorted({v.strip() for v in df[h].unique()} - {""})
            if not values or not _needs_codes(c, values):
                continue
            if len(values) > max_codes:
                choices.append(f"codes {t}.{col}: {len(values)} distinct values in {h}; too many to draft")
                continue
            mapping, how, _undecided = _recognize(c, values)
            code_lines.append(f"  {t}.{col}:  # {h}: " + (how or "no code table recognized"))
            for v in values:
                if v in mapping:
                    code_lines.append(f"    {_q(v)}: {_q(mapping[v])}")
                else:
                    opts = ", ".join(map(str, c.allowed)) if c.allowed else c.kind
                    code_lines.append(f"    {_q(v)}: {CHOOSE}  # CHOOSE: one of {opts}, or \"\" for missing")
                    choices.append(f"code {t}.{col} = {v!r} (one of {opts})")
            if mapping:
                matched.append(f"codes {t}.{col}: {len(mapping)} of {len(values)} values ({how})")
    lines += ["", "codes:"] + (code_lines or ["  {}"])
    if lines[-1] == "  {}":
        lines[-2:] = ["", "codes: {}"]
    return Draft("\n".join(lines) + "\n", matched, choices)


# --------------------------------------------------------------------------------------------------
# Command line


def _cmd_init(args) -> int:
    folder = Path(args.path)
    if not folder.is_dir():
        print(f"{folder.name}/: not a district folder (expected data/raw/<district_id>/)")
        return 2
    draft = draft_crosswalk(folder)
    if args.print:
        print(draft.text, end="")
        return 0
    target = Path(args.output) if args.output else folder / CROSSWALK_FILE
    if os.path.lexists(target) and not args.output:
        target = folder / "crosswalk.draft.yaml"
        print(f"{CROSSWALK_FILE} exists and is left as it is; the draft goes to {target.name}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(draft.text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {target.name}: {len(draft.matched)} matches, {draft.n_choices} choices left to you")
    for c in draft.choices:
        print(f"  CHOOSE {c}")
    if draft.n_choices:
        print(f"edit {target.name}, replace each CHOOSE, then run: opportunity-research validate {folder}")
    else:
        print(f"check it, then run: opportunity-research validate {folder}")
    return 0


def register(subparsers) -> None:
    """Add the ``init`` subcommand.

    Examples
    --------
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="opportunity-research").add_subparsers()
    >>> register(sub)
    >>> sub.choices["init"].parse_args(["data/raw/x", "--print"]).print
    True
    """
    p = subparsers.add_parser(
        "init", help="draft data/raw/<district_id>/crosswalk.yaml from the district's own export",
        description=textwrap.fill(
            "Inspect the CSV files of a district export and draft its crosswalk: which file is which contract "
            "table, which column is which contract column, and how its codes translate (federal race codes "
            "1-7, Y/N flags, F/M/X, ELA/MATH, '2016-17' years, performance levels as words, case and spacing). "
            "What cannot be decided is written as CHOOSE with the candidates. The export's files are only "
            "read; the draft is written to crosswalk.yaml (or crosswalk.draft.yaml if a crosswalk exists).", 88),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  opportunity-research init data/raw/my_district\n"
        "  opportunity-research init data/raw/my_district --print")
    p.add_argument("path", help="district folder, data/raw/<district_id>")
    p.add_argument("--print", action="store_true", help="print the draft instead of writing it")
    p.add_argument("--output", default=None, metavar="FILE", help="write the draft to FILE")
    p.set_defaults(func=_cmd_init)
