"""Validation of a district export (``data/raw/<district_id>/``) against the data contract.

Everything is derived from :data:`opportunity_research.intake.contract.TABLES`: the per-table rules
(:func:`table_schema`, checked on columns with pyarrow compute), the reference checks and the cross-table
rules. Validation reads the files and writes nothing.

How cells are read (documented choices)
---------------------------------------
* Files must be UTF-8; a byte-order mark (``utf-8-sig``) is fine. A file that is not UTF-8 is an
  error on every line holding a bad byte, with the likely encoding named (cp1252 / latin-1 /
  UTF-16); the rest of the file is still checked, decoded with that encoding, so every other
  problem is reported too.
* Every cell is read as text first, so line numbers and values in the report are exactly what the
  file holds. Line numbers count physical lines with the header as line 1 (the first data row is
  line 2), also when quoted values span several lines or blank lines are present.
* Leading and trailing whitespace is stripped from every cell and column name (one warning per
  column says how many cells had it). Only an empty cell is missing: ``NA``, ``NULL``, ``.`` and the
  like are not, and in a number or code column they are errors with a hint to leave the cell empty.
* Codes are case-sensitive and lower case; a code that would match in lower case gets a hint.
* Numbers: plain decimal notation (``12``, ``-0.5``, ``1e3``); ``inf``/``nan`` and thousands
  separators are not numbers. Whole-number columns accept ``3.0`` (but not ``3.5``).

Typed tables (:attr:`ValidationReport.tables`): id/text/category columns are ``str`` with NaN for
empty cells; flags ``int8``; non-nullable whole numbers ``int64``; nullable whole numbers and numbers
``float64`` with NaN. Columns not in the contract are dropped; optional columns the file lacks are
absent. Only when the report is ``ok`` are the final dtypes applied (otherwise numeric columns stay
``float64``, with NaN where a cell was bad).

The report may contain raw values from the export, student and teacher identifiers included: it is
for the data steward fixing the export, not for sharing.

Examples
--------
>>> from opportunity_research.intake.validation import validate_district
>>> report = validate_district("no/such/folder")
>>> report.ok, report.problems[0].rule
(False, 'district folder not found')

Where things are
----------------
This module holds the entry point (:func:`validate_district`: the folder, the crosswalk, which files are
tables, the district's names in the problems, the final dtypes) and the ``validate`` command. The rest is in:

* :mod:`~opportunity_research.intake.validation_report`: :class:`Problem`, :class:`ValidationReport`,
  :class:`ValidationFailed` and the problem list's text form;
* :mod:`~opportunity_research.intake.validation_schema`: the rules of each table (on columns) and duplicate keys;
* :mod:`~opportunity_research.intake.validation_read`: reading and checking one file;
* :mod:`~opportunity_research.intake.validation_rules`: the rules across tables and the plausibility rules.

The names other modules use are importable from here too.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import textwrap
from pathlib import Path

import pandas as pd

from .. import config
from ..files import atomic_path
from .contract import SUBGROUP_VARIABLES, TABLES
from .crosswalk import CROSSWALK_FILE, Crosswalk, load_crosswalk, suggest
from .validation_read import NA_MARKERS, NUMBER_RE, check_table
from .validation_report import (
    MAX_VALUE_CHARS,
    Problem,
    ProblemCollector,
    ValidationFailed,
    ValidationReport,
    plural,
)
from .validation_rules import FORM_ITEMS, check_across_tables
from .validation_schema import (
    as_categories,
    duplicated_key,
    forget_encoding,
    shared_encodings,
    table_schema,
)

__all__ = [
    "ACROSS_COLUMNS",
    "DISTRICT_ID_RULE",
    "FORM_ITEMS",
    "MAX_VALUE_CHARS",
    "NA_MARKERS",
    "Problem",
    "ValidationFailed",
    "ValidationReport",
    "check_district_id",
    "csv_safe",
    "duplicated_key",
    "register",
    "table_schema",
    "validate_district",
]

#: District ids (folder names) must match this: ASCII letters, digits, ``_`` and ``-``, starting with a letter
#: or digit, at most 64 characters (they become folder names, file names and report titles).
DISTRICT_ID_RULE = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"


#: The columns the rules across tables read (references, years, grades, forms and their items, goals, student
#: groups); ``validate_district(..., keep="across")`` keeps only these once a table's own checks are done.
ACROSS_COLUMNS = frozenset(
    {c for t in TABLES.values() for r in t.references for c in (*r.columns, *r.target_columns)}
    | {
        "student_id",
        "classroom_id",
        "school_id",
        "assignment_id",
        "school_year",
        "grade",
        "subject",
        "window",
        "days_present",
        "days_enrolled",
        "form",
        "met_demands",
        "met_grade_level",
        "group",
        "baseline_year",
        "target_year",
    }
    | set(SUBGROUP_VARIABLES)
    | {item for items in FORM_ITEMS.values() for item in items}
)


# --------------------------------------------------------------------------------------------------
# The entry point


def _final_dtypes(name: str, df: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for col in df.columns:
        c = TABLES[name].columns[col]
        if c.kind == "flag" and not c.nullable:
            out[col] = df[col].astype("int8")
        elif c.kind == "int" and not c.nullable:
            out[col] = df[col].astype("int64")
        else:
            out[col] = df[col]
    return pd.DataFrame(out, columns=df.columns, copy=False)


def _narrow(values: pd.Series) -> pd.Series:
    """A float64 column as float32 when every value is exactly a float32 (whole numbers below 2**24: years,
    grades, days, flags), else unchanged; the rules compare and print the same numbers either way."""
    if values.dtype != "float64":
        return values
    narrow = values.astype("float32")
    same = (narrow.to_numpy().astype("float64") == values.to_numpy()) | values.isna().to_numpy()
    return narrow if same.all() else values


def _across_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`ACROSS_COLUMNS`, text as categoricals (a 9.5-million-row text column of ids takes
    ~150 MB as text, ~40 MB as codes) and exact whole numbers as float32; the text (and its cached encoding) of
    every column is let go."""
    out = {}
    for c in frame.columns:
        text = frame[c].dtype == "str"
        if c in ACROSS_COLUMNS:
            out[c] = as_categories(frame[c]) if text else _narrow(frame[c])
        elif text:
            forget_encoding(frame[c])
    return pd.DataFrame(out, columns=list(out), copy=False)


def check_district_id(district_id: str) -> str | None:
    """Why ``district_id`` is not a safe district id (None when it is).

    Examples
    --------
    >>> check_district_id("demo_lakeside") is None
    True
    >>> check_district_id("Städtische Schulen")  # doctest: +ELLIPSIS
    "district id 'Städtische Schulen' may hold only ASCII letters, digits, '_' and '-' ..."
    """
    if re.fullmatch(DISTRICT_ID_RULE, district_id):
        return None
    return (
        f"district id {district_id!r} may hold only ASCII letters, digits, '_' and '-' (starting with a letter "
        "or digit, at most 64 characters): rename the folder, e.g. "
        f"'{re.sub(r'[^A-Za-z0-9_-]+', '_', district_id.encode('ascii', 'ignore').decode()).strip('_-') or 'district'}'"
    )


def _entry_problem(path: Path, folder: Path) -> str | None:
    """Why the directory entry ``path`` cannot be read as a table (None if it can). Never opens it."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return "symbolic link to nothing (broken link); not read"
        if not target.is_relative_to(folder.resolve()):
            return (
                "symbolic link to a file outside the district folder; refused and not read (copy the file in)"
            )
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a CSV file"
    if not stat.S_ISREG(st.st_mode):
        kind = "named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "socket or device"
        return f"is a {kind}, not a regular file; not read"
    if not os.access(path, os.R_OK):
        return "cannot be read (no read permission)"
    return None


def _size(path: Path | None) -> int:
    """Bytes of a regular file (0 for anything else or nothing)."""
    try:
        return path.stat().st_size if path is not None and path.is_file() and not path.is_symlink() else 0
    except OSError:
        return 0


def _relabel(frame: pd.DataFrame, cw: Crosswalk) -> pd.DataFrame:
    """Name each problem's file and column as the district does, with the contract's name beside it.

    Vectorized: the labels are computed once per distinct (file, column) pair and mapped onto the rows.
    """
    if frame.empty or not (cw.files or cw.columns):
        return frame
    by_file = {TABLES[t].filename: t for t in TABLES}
    f = frame.copy()
    f["file"] = frame["file"].map({fn: cw.file_label(t) for fn, t in by_file.items()}).fillna(frame["file"])
    key = frame["file"] + "\x1f" + frame["column"].fillna("\x00")
    labels = {}
    for k in key.unique():
        fn, _, c = k.partition("\x1f")
        t = by_file.get(fn)
        if t in cw.columns and c != "\x00":
            labels[k] = ", ".join(
                cw.column_label(t, part) if part in TABLES[t].columns else part for part in c.split(", ")
            )
    if labels:
        f["column"] = key.map(labels).fillna(frame["column"]).astype("str")
    return f


def validate_district(
    path: str | os.PathLike,
    *,
    analysis_year: int | None = None,
    keep: str = "all",
    on_table=None,
) -> ValidationReport:
    """Check one district folder against the data contract; reads only, writes nothing.

    Parameters
    ----------
    path
        The district folder, ``data/raw/<district_id>``, holding one CSV file per table: ``<table>.csv``, or
        the names its ``crosswalk.yaml`` gives (see :mod:`opportunity_research.intake.crosswalk`).
    analysis_year
        The school year the classroom evidence describes (default: the latest ``classrooms.school_year``);
        assessments after it are flagged.
    keep
        ``"all"``: the report holds every contract column of every table; ``"across"``: once a table's own
        checks are done only the columns the rules across tables read (:data:`ACROSS_COLUMNS`) are kept, text as
        pandas categoricals and numbers that are exact in float32 as float32, so a large district needs far less
        memory (the problems are the same; the report's tables hold these dtypes).
    on_table
        Called as ``on_table(name, frame, file)`` with each table that passed its own checks, typed as in the final
        report, and the path of the file it was read from, before the rules across tables run (``process`` writes
        it then; the report decides afterwards whether anything written is kept).

    Returns
    -------
    ValidationReport
        ``ok`` (no errors), every problem (``to_frame()``: severity, file, line, column, value,
        rule; ``format()`` for reading) and the typed tables (in the contract's names and codes).

    Notes
    -----
    Errors: unsafe district id; missing folder or required table; a crosswalk problem (unknown key,
    CHOOSE left in, colliding mapping, value the contract does not allow, unmapped district code); a
    symbolic link leaving the folder (not read); a folder, pipe or binary file where a table should be;
    empty (0-byte) file or header-only required table; not UTF-8; unparseable CSV (rows with the wrong
    number of fields); missing required column; duplicate column name; a value that is not a number /
    whole number, not an allowed code, out of range (e.g. a negative scale score), or empty where the
    contract forbids it; duplicate keys and duplicated rows; references that do not resolve;
    ``days_present > days_enrolled``; an unanswered item of the teacher survey's form; a school year that
    has not started yet; a fall grade above the spring grade; a goal group that names no student group;
    a goal target year before its baseline. Warnings: unknown CSV files and columns, stripped whitespace,
    header-only optional table, ``met_grade_level = 1`` with ``met_demands = 0``, work by a student not
    enrolled in the assignment's classroom, a classroom without students, a student without assessment
    results, a student without enrollments, a student in sections of several grades or in a section of
    another school, a classroom outside the analysis year, an assessment after the analysis year, a goal
    group no student belongs to.

    Examples
    --------
    >>> validate_district("no/such/folder").problems[0].rule
    'district folder not found'
    """
    if keep not in ("all", "across"):
        raise ValueError(f"keep must be 'all' or 'across', not {keep!r}")
    with shared_encodings():
        return _validate(Path(path), analysis_year, keep, on_table)


def _validate(path: Path, analysis_year: int | None, keep: str, on_table) -> ValidationReport:
    out = ProblemCollector()
    folder_label = path.name + "/"
    file_order = [folder_label, CROSSWALK_FILE] + [t.filename for t in TABLES.values()]
    if not path.is_dir():
        out.add(
            "error",
            folder_label,
            "district folder not found"
            if not path.exists()
            else "not a folder (expected data/raw/<district_id>/)",
        )
        return ValidationReport(path, out.frame(file_order), {})
    id_problem = check_district_id(path.resolve().name if path.name in ("", ".", "..") else path.name)
    if id_problem:
        out.add("error", folder_label, id_problem)
    cw, cw_problems = load_crosswalk(path)
    for severity, line, where, key, rule in cw_problems:
        out.add(severity, CROSSWALK_FILE, rule, column=where, line=line, value=key)
    names = {p.name: p for p in path.iterdir() if not p.name.startswith(".")}
    wanted = {cw.filename(t): t for t in TABLES}
    known = set(wanted)
    by_lower = {f.lower(): f for f in known}
    for name in sorted(names):
        if name.lower().endswith(".csv") and name not in known:
            hint = (
                f" (did you mean {by_lower[name.lower()]}? file names are case-sensitive)"
                if name.lower() in by_lower
                else ""
            )
            out.add("warning", name, "not a contract table (ignored)" + hint)
    tables, lines, bad_type = {}, {}, {}
    # a district that brings only counts by performance level (level_counts.csv, no students.csv) needs only
    # schools.csv besides: its report is the performance-level gaps and means
    counts_only = cw.filename("level_counts") in names and cw.filename("students") not in names
    for t in sorted(TABLES.values(), key=lambda t: -_size(names.get(cw.filename(t.name)))):
        # largest file first: its text is read while the least of the other tables is held
        fname = cw.filename(t.name)
        p = path / fname
        if fname not in names:
            if t.required and not (counts_only and t.name != "schools"):
                others = sorted(
                    q for q in names if Path(q).stem.lower() == Path(fname).stem.lower() and q != fname
                )
                hint = f" (found {', '.join(others)}; export it as CSV named {fname})" if others else ""
                if not others and t.name in cw.files:
                    hint = (
                        f" (crosswalk.yaml names it '{fname}', which is not in the folder"
                        + suggest(fname, [q for q in names if q.lower().endswith(".csv")])
                        .replace(" (", "; ", 1)
                        .rstrip(")")
                        + ")"
                    )
                elif not others and not cw.present:
                    hint = (
                        " (if the district names it differently, run 'opportunity-research init' to draft a "
                        "crosswalk)"
                    )
                out.add("error", t.filename, "required table is missing" + hint)
            continue
        problem = _entry_problem(p, path)
        if problem:
            out.add("error", t.filename, problem)
            continue
        before = len(out.parts)
        result = check_table(p, t, out, cw)
        if result is not None and t.required and len(result[0]) == 0:
            continue  # a header and no rows (said by check_table): left out of the checks across tables
        if result is not None:
            frame, table_lines, bad = result
            del result
            if on_table is not None and not any(
                (part["severity"] == "error").any() for part in out.parts[before:]
            ):
                on_table(t.name, _final_dtypes(t.name, frame), p)
            if keep == "across":
                frame = _across_only(frame)
                bad = {c: m for c, m in bad.items() if c in ACROSS_COLUMNS}
            tables[t.name], lines[t.name], bad_type[t.name] = frame, table_lines, bad
            del frame, bad
    tables = {n: tables[n] for n in TABLES if n in tables}  # the contract's order again
    check_across_tables(tables, lines, bad_type, out, analysis_year=analysis_year)
    report = ValidationReport(path, _relabel(out.frame(file_order), cw), tables)
    report.crosswalk = cw
    report.files = {n: cw.filename(n) for n in tables}
    if report.ok:
        report.tables = {n: _final_dtypes(n, df) for n, df in tables.items()}
    return report


# --------------------------------------------------------------------------------------------------
# Command line


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_safe(values: pd.Series) -> pd.Series:
    """Text cells made safe to open in a spreadsheet: a cell that would start a formula gets a leading ``'``.

    Spreadsheets run a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (also the
    full-width forms) as a formula (CSV injection); plain numbers such as ``-3.5`` are left as they are.

    Examples
    --------
    >>> csv_safe(pd.Series(["=cmd|' /C calc'!A0", "-3.5", "@SUM(A1)", "ok", None])).tolist()
    ["'=cmd|' /C calc'!A0", '-3.5', "'@SUM(A1)", 'ok', nan]
    """
    s = values.astype("str")
    risky = s.str.startswith(_FORMULA_START, na=False) & ~s.str.fullmatch(NUMBER_RE, na=False)
    return s.where(~risky, "'" + s)


def _write_csv_atomic(frame: pd.DataFrame, target: Path) -> None:
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype == "str" or frame[c].dtype == object:
            frame[c] = csv_safe(frame[c])
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8")


def main_validate(args: argparse.Namespace) -> int:
    """The ``validate`` subcommand: print the report; exit code 1 on errors, else 0."""
    path = Path(args.path)
    if not path.exists() and os.sep not in args.path and (config.raw_dir() / args.path).is_dir():
        path = config.raw_dir() / args.path  # a bare district id
    if args.csv:
        target = Path(args.csv).resolve()
        if path.is_dir() and path.resolve() in target.parents:
            print(f"--csv: refusing to write into the raw district folder {path}; choose another place")
            return 2
    report = validate_district(path, analysis_year=args.analysis_year, keep="across")
    if report.frame.empty:
        print(f"{args.path}: valid ({plural(len(report.tables), 'table')}, {report.n_rows:,} rows)")
    else:
        print(report.format(max_rows=args.max_rows or None))
    if args.csv:
        _write_csv_atomic(report.to_frame(), Path(args.csv))
        print(f"problem list written to {args.csv} ({len(report.frame):,} rows)")
    return 0 if report.ok else 1


def register(subparsers) -> None:
    """Add the ``validate`` subcommand.

    Examples
    --------
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="opportunity-research").add_subparsers()
    >>> register(sub)
    >>> args = sub.choices["validate"].parse_args(["data/raw/x", "--csv", "problems.csv"])
    >>> args.csv, args.max_rows, args.analysis_year
    ('problems.csv', 60, None)
    """
    p = subparsers.add_parser(
        "validate",
        help="check a district export against the data contract (writes nothing)",
        description=textwrap.fill(
            "Check data/raw/<district_id>/ against the data contract (docs/data_contract.md): files, encoding, "
            "columns, types, allowed values, ranges, empty cells, duplicate keys, references between tables and "
            "the cross-table rules. Every problem is listed with its file, line (header = line 1), column, value "
            "and rule; many alike are grouped. Exit code 1 if there is any error, 0 otherwise (warnings are "
            "printed but do not fail). Reads only; the report may show raw ids, so do not share it.",
            88,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  opportunity-research validate data/raw/demo_lakeside\n"
        "  opportunity-research validate data/raw/my_district --max-rows 0 --csv /tmp/problems.csv",
    )
    p.add_argument("path", help="district folder, data/raw/<district_id> (or just the district id)")
    p.add_argument(
        "--max-rows",
        type=int,
        default=60,
        metavar="N",
        help="problem lines to print at most (default 60; 0 = all)",
    )
    p.add_argument(
        "--csv",
        metavar="FILE",
        default=None,
        help="also write every problem (one row each) to FILE as CSV (written atomically; cells that "
        "a spreadsheet would run as a formula start with ')",
    )
    p.add_argument(
        "--analysis-year",
        type=int,
        default=None,
        metavar="YEAR",
        help="the school year the classroom evidence describes, named by the year it starts in "
        "(default: the latest classrooms.school_year)",
    )
    p.set_defaults(func=main_validate)
