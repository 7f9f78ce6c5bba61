"""Drafting a crosswalk for a district export: ``opportunity-research init``.

``opportunity-research init data/raw/<district_id>`` writes a draft (:func:`draft_crosswalk`): it matches
files and columns (exactly, ignoring case and spacing, or by known synonyms such as ``FED_RACE`` or
``FRL``) and the code tables it recognizes (federal race/ethnicity codes 1-7 in the federal reporting
order, Y/N and Yes/No flags, F/M/X, ELA/MATH, ``2016-17`` years, performance levels as words). Everything
it cannot decide is written as ``CHOOSE`` with a comment listing the candidates; validation refuses a
crosswalk that still holds one.

The crosswalk itself (its sections, how it is read and checked) is :mod:`opportunity_research.intake.crosswalk`.
"""

from __future__ import annotations

import argparse
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from .contract import RACE_ETHNICITY, TABLES, Column
from .crosswalk import CHOOSE, CROSSWALK_FILE, normalize_name

__all__ = ["PERFORMANCE_SCALES", "Draft", "draft_crosswalk", "register"]


#: Known district names for contract tables (compared with case, spacing and punctuation removed).
TABLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "schools": ("school", "buildings", "building", "sites", "schoollist", "schooldirectory"),
    "students": ("student", "roster", "studentroster", "demographics", "studentdemographics", "studentinfo"),
    "classrooms": (
        "classroom",
        "sections",
        "section",
        "classes",
        "courses",
        "coursesections",
        "mastersched",
        "masterschedule",
    ),
    "enrollments": (
        "enrollment",
        "schedules",
        "studentschedules",
        "sectionenrollment",
        "rosters",
        "studentsections",
        "courseenrollment",
    ),
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
    "student_id": (
        "studentnumber",
        "stunum",
        "stuid",
        "studentid",
        "localid",
        "localstudentid",
        "sid",
        "studentno",
        "statestudentid",
        "ssid",
        "pupilid",
    ),
    "school_id": (
        "schoolcode",
        "schoolnumber",
        "buildingid",
        "buildingcode",
        "schid",
        "schoolno",
        "sitecode",
        "siteid",
        "schoolnum",
    ),
    "school_name": ("name", "school", "buildingname", "sitename"),
    "school_level": ("level", "schooltype", "gradespan", "schoolcategory"),
    "grade": ("gradelevel", "grd", "gr", "enrolledgrade", "currentgrade", "testedgrade", "gradetested"),
    "race_ethnicity": (
        "race",
        "ethnicity",
        "fedrace",
        "federalrace",
        "racecode",
        "fedracecode",
        "raceethnicitycode",
        "federalraceethnicity",
        "reportingrace",
    ),
    "low_income": (
        "frl",
        "frpl",
        "frlflag",
        "econdis",
        "economicallydisadvantaged",
        "econdisadv",
        "edflag",
        "freereducedlunch",
        "lowincomeflag",
        "ecodis",
    ),
    "english_learner": (
        "ell",
        "el",
        "lep",
        "elflag",
        "ellflag",
        "lepflag",
        "englishlanguagelearner",
        "elstatus",
    ),
    "disability": (
        "iep",
        "swd",
        "sped",
        "specialed",
        "iepflag",
        "spedflag",
        "studentwithdisability",
        "disabilityflag",
    ),
    "gender": ("sex", "gendercode", "sexcode"),
    "classroom_id": ("sectionid", "section", "classid", "coursesection", "sectionnumber", "classsection"),
    "teacher_id": ("teacher", "staffid", "educatorid", "teachernumber", "employeeid", "instructorid"),
    "subject": ("subjectarea", "contentarea", "coursesubject", "testsubject", "subj"),
    "school_year": ("year", "sy", "schoolyr", "academicyear", "testyear", "endyear", "yearstart"),
    "window": ("testwindow", "season", "admin", "administration", "term", "testseason"),
    "scale_score": ("score", "ss", "scaledscore", "scalescore", "rawscale"),
    "grade_level_cut": ("proficiencycut", "cutscore", "proficientcut", "gradelevelcut", "cut"),
    "performance_level": (
        "perflevel",
        "achievementlevel",
        "proficiencylevel",
        "perfLevel",
        "plevel",
        "performancelevelcode",
    ),
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
    "hispanic_latino": (
        "h",
        "hi",
        "hispanic",
        "latino",
        "latinx",
        "hispaniclatino",
        "hispanicorlatino",
        "hispaniclatinoofanyrace",
    ),
    "american_indian_alaska_native": (
        "i",
        "am",
        "ai",
        "americanindian",
        "americanindianoralaskanative",
        "americanindianalaskanative",
        "nativeamerican",
        "aian",
    ),
    "asian": ("a", "as", "asian"),
    "black": ("b", "bl", "black", "africanamerican", "blackorafricanamerican", "blackafricanamerican"),
    "native_hawaiian_pacific_islander": (
        "p",
        "pi",
        "hp",
        "pacificislander",
        "nativehawaiian",
        "nativehawaiianorotherpacificislander",
        "nativehawaiianpacificislander",
        "nhpi",
    ),
    "white": ("w", "wh", "white", "caucasian"),
    "two_or_more": ("m", "mu", "tr", "twoormore", "twoormoreraces", "multiracial", "multiple", "multirace"),
}
_FLAG_WORDS = {"1": ("y", "yes", "true", "t", "1"), "0": ("n", "no", "false", "f", "0")}
_GENDER_WORDS = {
    "female": ("f", "female", "girl", "woman"),
    "male": ("m", "male", "boy", "man"),
    "nonbinary": ("x", "nonbinary", "nb", "other"),
}
_SUBJECT_WORDS = {
    "ela": (
        "ela",
        "englishlanguagearts",
        "reading",
        "readinglanguagearts",
        "english",
        "rla",
        "ela/literacy",
        "literacy",
        "read",
    ),
    "math": ("math", "mathematics", "maths", "mat", "mth"),
    "science": ("science", "sci"),
    "social_studies": ("socialstudies", "ss", "history", "soc"),
}
_WINDOW_WORDS = {
    "fall": ("fall", "autumn", "boy", "beginningofyear", "f", "fa"),
    "spring": ("spring", "eoy", "endofyear", "s", "sp", "spr"),
}
_LEVEL_WORDS = {
    "elementary": ("es", "elem", "elementary", "elementaryschool", "e"),
    "middle": ("ms", "middle", "middleschool", "juniorhigh", "jh", "m"),
    "high": ("hs", "high", "highschool", "h"),
}
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
            return (
                {v: FEDERAL_RACE_CODES[v] for v in values},
                (
                    "federal race/ethnicity codes 1-7 in the federal reporting order (1 = Hispanic/Latino, "
                    "2 = American Indian/Alaska Native, 3 = Asian, 4 = Black, 5 = Native Hawaiian/Pacific "
                    "Islander, 6 = White, 7 = Two or more): check against your system's code book"
                ),
                [],
            )
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
        return (
            mapping,
            "school years written as '2016-17' (read as the year the school year starts in)",
            [v for v in values if v not in mapping],
        )
    elif c.name == "performance_level":
        present = set(norm.values())
        for scale in PERFORMANCE_SCALES:
            if present <= set(scale):
                return (
                    {v: str(scale.index(norm[v]) + 1) for v in values},
                    "performance levels as words (" + " < ".join(scale) + ")",
                    [],
                )
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
    csvs = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() == ".csv" and not p.name.startswith(".") and p.is_file() and not p.is_symlink()
    )
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
    lines = [
        "# Crosswalk drafted by `opportunity-research init`. Check every line; replace each CHOOSE.",
        "# Sections: files (contract table -> your file), columns (contract column -> your column),",
        '# codes (table.column -> {your value: contract value}; "" reads a value as missing).',
        "# See docs/data_contract.md, 'Bringing your own export: the crosswalk'.",
        "",
        "files:",
    ]
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
        usecols = {
            used[col][0]: col
            for col in table.columns
            if col in used
            and col not in ambiguous
            and (table.columns[col].allowed is not None or table.columns[col].kind in ("int", "flag"))
        }
        if not usecols:
            continue
        df = pd.read_csv(
            folder / name,
            usecols=list(usecols),
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            encoding_errors="replace",
        )
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
                    code_lines.append(f'    {_q(v)}: {CHOOSE}  # CHOOSE: one of {opts}, or "" for missing')
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
    atomic_write(target, draft.text.encode("utf-8"))
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
        "init",
        help="draft data/raw/<district_id>/crosswalk.yaml from the district's own export",
        description=textwrap.fill(
            "Inspect the CSV files of a district export and draft its crosswalk: which file is which contract "
            "table, which column is which contract column, and how its codes translate (federal race codes "
            "1-7, Y/N flags, F/M/X, ELA/MATH, '2016-17' years, performance levels as words, case and spacing). "
            "What cannot be decided is written as CHOOSE with the candidates. The export's files are only "
            "read; the draft is written to crosswalk.yaml (or crosswalk.draft.yaml if a crosswalk exists).",
            88,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  opportunity-research init data/raw/my_district\n"
        "  opportunity-research init data/raw/my_district --print",
    )
    p.add_argument("path", help="district folder, data/raw/<district_id>")
    p.add_argument("--print", action="store_true", help="print the draft instead of writing it")
    p.add_argument("--output", default=None, metavar="FILE", help="write the draft to FILE")
    p.set_defaults(func=_cmd_init)
