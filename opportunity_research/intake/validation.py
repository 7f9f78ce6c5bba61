"""Validation of a district export (``data/raw/<district_id>/``) against the data contract.

Everything is derived from :data:`opportunity_research.intake.contract.TABLES`: the per-table pandera
schemas (:func:`table_schema`), the reference checks and the cross-table rules. Validation reads
the files and writes nothing.

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
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import re
import stat
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pya
import pyarrow.compute as pyc
import pyarrow.csv as pycsv

from .. import config
from .contract import (
    EXPECTATION_ITEMS_CURRENT,
    EXPECTATION_ITEMS_OLD,
    RACE_ETHNICITY,
    SUBGROUP_VARIABLES,
    TABLES,
    Column,
    Table,
)
from .crosswalk import CROSSWALK_FILE, Crosswalk, load_crosswalk, suggest

__all__ = [
    "DISTRICT_ID_RULE",
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

#: Characters of a cell value kept in a problem (longer values end with "...").
MAX_VALUE_CHARS = 40
#: Texts commonly used for "missing" that the contract does not accept (an empty cell is missing).
NA_MARKERS = ("NA", "N/A", "#N/A", "NULL", "NAN", "NONE", "NIL", ".", "-", "--", "?", "MISSING")
#: Forms of the teacher survey and the items each must answer.
FORM_ITEMS = {"current": tuple(EXPECTATION_ITEMS_CURRENT), "old": tuple(EXPECTATION_ITEMS_OLD)}

_PROBLEM_COLUMNS = ["severity", "file", "line", "column", "value", "rule"]
_NUMERIC = ("int", "float", "flag")
_NUMBER_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_CHUNK = 1 << 23
#: District ids (folder names) must match this: ASCII letters, digits, ``_`` and ``-``, starting with a letter
#: or digit, at most 64 characters (they become folder names, file names and report titles).
DISTRICT_ID_RULE = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
#: Bytes of a file inspected to tell text from binary.
_SNIFF = 1 << 16


# --------------------------------------------------------------------------------------------------
# Report objects


@dataclass(slots=True)
class Problem:
    """One problem found in an export.

    ``file`` is a file name only (``students.csv``), or ``<folder>/`` for the folder itself;
    ``line`` is the 1-based line in the CSV file (header = line 1), None for problems about a whole
    file or column; ``column`` is None when the problem is not about one column; ``value`` is the
    cell text (truncated) or None; ``rule`` is the rule broken, in words.

    Examples
    --------
    >>> Problem("error", "students.csv", 6, "grade", "2", "must be between 3 and 12").rule
    'must be between 3 and 12'
    """

    severity: str
    file: str
    line: int | None
    column: str | None
    value: str | None
    rule: str


class ValidationFailed(Exception):
    """A district export breaks the data contract; ``.report`` holds the full :class:`ValidationReport`.

    Examples
    --------
    >>> try:
    ...     raise ValidationFailed(validate_district("no/such/place"))
    ... except ValidationFailed as exc:
    ...     print(exc, "|", exc.report.errors[0].rule)
    place: 1 error, 0 warnings in 1 file | district folder not found
    """

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(f"{report.district}: {report.summary()}")


@dataclass
class ValidationReport:
    """The outcome of :func:`validate_district`.

    Attributes
    ----------
    path
        The district folder as given.
    frame
        Every problem, one row each (see :meth:`to_frame`), errors first, then by file and line.
    tables
        Typed tables by name (see the module docstring); only meaningful when :attr:`ok`.

    Examples
    --------
    >>> r = validate_district("no/such/place")
    >>> r.ok, r.n_errors, r.summary(), list(r.to_frame().columns)
    (False, 1, '1 error, 0 warnings in 1 file', ['severity', 'file', 'line', 'column', 'value', 'rule'])

    Attributes (continued)
    ----------------------
    crosswalk
        The district's crosswalk (empty if it has none).
    files
        ``{table: the district's file name}`` of every table read.
    """

    path: Path
    frame: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    crosswalk: Crosswalk = field(default_factory=Crosswalk)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def district(self) -> str:
        """The district id (the folder name)."""
        return self.path.name

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return self.n_errors == 0

    @property
    def n_errors(self) -> int:
        return int((self.frame["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        return int((self.frame["severity"] == "warning").sum())

    @property
    def problems(self) -> list[Problem]:
        """Every problem as a :class:`Problem` (use :meth:`to_frame` for very long lists)."""
        return _as_problems(self.frame)

    @property
    def errors(self) -> list[Problem]:
        return _as_problems(self.frame[self.frame["severity"] == "error"])

    @property
    def warnings(self) -> list[Problem]:
        return _as_problems(self.frame[self.frame["severity"] == "warning"])

    @property
    def n_rows(self) -> int:
        """Data rows over all tables read."""
        return sum(len(t) for t in self.tables.values())

    def to_frame(self) -> pd.DataFrame:
        """Every problem as a tidy DataFrame.

        Columns: ``severity`` ("error"/"warning"), ``file`` (file name), ``line`` (nullable integer,
        header = 1), ``column``, ``value`` (cell text, truncated), ``rule``.
        """
        return self.frame.copy()

    def summary(self) -> str:
        """One line: ``"N errors, M warnings in K files"``."""
        files = self.frame["file"].nunique()
        return (
            f"{_plural(self.n_errors, 'error')}, {_plural(self.n_warnings, 'warning')} in "
            f"{_plural(files, 'file')}"
        )

    def format(self, max_rows: int | None = None, *, per_group: int = 3) -> str:
        """The problems as an aligned text table, followed by the one-line summary.

        Problems sharing severity, file, column and rule are grouped: the first ``per_group``
        are listed, the rest summarized as ``... and N more rows (lines a-b)``. ``max_rows`` caps
        the number of problem lines printed in all (None: no cap); :meth:`to_frame` has them all.
        """
        head = f"{self.district}: "
        if self.frame.empty:
            return head + f"valid ({_plural(len(self.tables), 'table')}, {self.n_rows:,} rows)"
        f = self.frame
        keys = ["severity", "file", "column", "rule"]
        gid = f.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
        rank = f.groupby(gid, sort=False).cumcount().to_numpy()
        size = np.bincount(gid)
        first = np.full(size.size, len(f))
        np.minimum.at(first, gid, np.arange(len(f)))
        shown = f[rank < per_group].assign(g_=gid[rank < per_group], r_=rank[rank < per_group])
        shown = shown.assign(first_=first[shown["g_"].to_numpy()]).sort_values(
            ["first_", "r_"], kind="stable"
        )
        rest = f[rank >= per_group].assign(g_=gid[rank >= per_group])
        rest_lines = rest.groupby("g_")["line"].agg(["min", "max", "size"])
        cells = [("severity", "file", "line", "column", "value", "rule")]
        more = {}  # index in cells -> "... and N more" text printed after it
        covered = 0
        for printed, row in enumerate(shown.itertuples(index=False)):
            if max_rows is not None and printed >= max_rows:
                break
            value = "" if pd.isna(row.value) else row.value
            cells.append(
                (
                    row.severity,
                    row.file,
                    "-" if pd.isna(row.line) else f"{int(row.line)}",
                    "-" if pd.isna(row.column) else row.column,
                    value if len(value) <= 30 else value[:27] + "...",
                    row.rule,
                )
            )
            covered += 1
            if row.r_ == min(per_group, size[row.g_]) - 1 and row.g_ in rest_lines.index:
                lo, hi, n = rest_lines.loc[row.g_]
                where = (
                    ""
                    if pd.isna(lo)
                    else (f" (line {int(lo)})" if lo == hi else f" (lines {int(lo)}-{int(hi)})")
                )
                more[len(cells) - 1] = f"... and {int(n):,} more {'row' if n == 1 else 'rows'}{where}"
                covered += int(n)
        widths = [min(max(len(str(c[i])) for c in cells), cap) for i, cap in enumerate((8, 40, 9, 30, 30))]
        out = []
        for i, c in enumerate(cells):
            parts = [
                str(c[0]).ljust(widths[0]),
                str(c[1]).ljust(widths[1]),
                str(c[2]).rjust(widths[2]),
                str(c[3]).ljust(widths[3]),
                str(c[4]).ljust(widths[4]),
                str(c[5]),
            ]
            out.append("  ".join(parts).rstrip())
            if i in more:
                out.append(" " * (sum(widths[:3]) + 6) + more[i])
        if covered < len(f):
            out.append(
                f"... {len(f) - covered:,} more problems not shown (max_rows={max_rows}; "
                "to_frame() or --csv FILE has every one)"
            )
        out.append(head + self.summary())
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"ValidationReport({self.district!r}: {self.summary()})"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _as_problems(frame: pd.DataFrame) -> list[Problem]:
    cols = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in _PROBLEM_COLUMNS]
    cols[2] = [None if x is None else int(x) for x in cols[2]]
    return list(map(Problem, *cols))


class _Collector:
    """Accumulates problems as small DataFrames (never one Python object per row)."""

    def __init__(self):
        self.parts: list[pd.DataFrame] = []

    def add(self, severity, file, rule, *, column=None, line=None, value=None) -> None:
        """Add problems; ``line``/``value``/``rule`` may be scalars or equal-length arrays."""
        n = max(
            (len(x) for x in (line, value, rule) if isinstance(x, (np.ndarray, pd.Series, pd.Index, list))),
            default=1,
        )
        if n == 0:
            return
        if isinstance(value, pd.Series) and value.dtype == "str":
            value = _truncate(value.reset_index(drop=True))
        elif value is not None and not np.isscalar(value):
            value = _truncate(pd.Series(np.asarray(value, dtype=object), dtype="str"))
        elif value is not None:
            value = _truncate(pd.Series([str(value)] * n, dtype="str"))
        part = pd.DataFrame(
            {
                "severity": np.repeat(severity, n),
                "file": np.repeat(file, n),
                "line": pd.array(
                    np.broadcast_to(np.nan if line is None else np.asarray(line, dtype=float), (n,)),
                    dtype="Int64",
                ),
                "column": pd.Series([column] * n, dtype="str"),
                "value": value.to_numpy()
                if value is not None
                else pd.Series([None] * n, dtype="str").to_numpy(),
                "rule": np.broadcast_to(np.asarray(rule, dtype=object), (n,)),
            }
        )
        self.parts.append(part)

    def frame(self, file_order: list[str]) -> pd.DataFrame:
        if not self.parts:
            f = pd.DataFrame({c: pd.Series(dtype="str") for c in _PROBLEM_COLUMNS})
            f["line"] = f["line"].astype("Int64")
            return f
        f = pd.concat(self.parts, ignore_index=True)
        for c in ("severity", "file", "column", "value", "rule"):
            f[c] = f[c].astype("str")
        rank = {name: i for i, name in enumerate(file_order)}
        order = pd.DataFrame(
            {
                "s": (f["severity"] != "error").astype(int),
                "f": f["file"].map(rank).astype("float64").fillna(len(rank)),
                "name": f["file"],
                "l": f["line"].astype("float64").fillna(-1.0),
            }
        )
        idx = order.sort_values(["s", "f", "name", "l"], kind="stable").index
        return f.loc[idx].reset_index(drop=True)


def _truncate(s: pd.Series) -> pd.Series:
    long = s.str.len() > MAX_VALUE_CHARS
    if long.any():
        s = s.where(~long, s.str.slice(0, MAX_VALUE_CHARS - 3) + "...")
    return s


# --------------------------------------------------------------------------------------------------
# pandera schemas from the contract


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _column_checks(c: Column) -> list[tuple[pa.Check, str]]:
    """The pandera checks of a column with the rule text each one reports."""
    checks = []
    if c.allowed is not None:
        checks.append((pa.Check.isin(list(c.allowed)), "must be one of: " + ", ".join(map(_fmt, c.allowed))))
    if c.kind == "int":
        checks.append((pa.Check(lambda s: s % 1 == 0, name="whole_number"), "must be a whole number"))
    if c.min is not None and c.max is not None:
        checks.append((pa.Check.in_range(c.min, c.max), f"must be between {_fmt(c.min)} and {_fmt(c.max)}"))
    elif c.min is not None:
        checks.append((pa.Check.ge(c.min), f"must be at least {_fmt(c.min)}"))
    elif c.max is not None:
        checks.append((pa.Check.le(c.max), f"must be at most {_fmt(c.max)}"))
    return checks


def _key_codes(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """One integer code per distinct combination of the key columns (text hashed by pyarrow; NaN is a value)."""
    codes, span = np.zeros(len(frame), dtype=np.int64), 1
    for k in key:
        col = frame[k]
        if col.dtype == "float64":
            part, uniq = pd.factorize(col, use_na_sentinel=True)
        else:
            enc = pyc.dictionary_encode(_arrow(col))
            part = np.concatenate(
                [pyc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in enc.chunks]
                or [np.zeros(0)]
            ).astype(np.int64)
            uniq = enc.chunk(0).dictionary if enc.num_chunks else []
        n = len(uniq) + 1  # codes -1..len-1 shifted to 0..len
        if span * n >= 2**62:  # keep the combined code inside int64
            codes, _ = pd.factorize(codes)
            span = int(codes.max(initial=0)) + 1
        codes, span = codes * n + part + 1, span * n
    return codes


def duplicated_key(frame: pd.DataFrame, key: list[str], *, keep: str | bool = "first") -> np.ndarray:
    """Boolean mask of rows whose key repeats an earlier row's (``keep=False``: every row of a repeated key).

    Same result as ``frame.duplicated(subset=key, keep=keep)``, faster on text keys of tens of
    millions of rows (the keys are hashed by pyarrow).

    Examples
    --------
    >>> duplicated_key(pd.DataFrame({"a": ["x", "y", "x"], "b": [1.0, 2.0, 1.0]}), ["a", "b"]).tolist()
    [False, False, True]
    """
    return pd.Series(_key_codes(frame, key)).duplicated(keep=keep).to_numpy()


def table_schema(table: str | Table, *, columns: list[str] | None = None) -> pa.DataFrameSchema:
    """The pandera schema of one contract table, as checked on the parsed (not yet final) frame.

    Text columns are ``str``, numeric columns ``float64`` (NaN = empty); the schema checks allowed
    values, ranges, whole numbers, nullability and uniqueness of the key (a dataframe-level check
    named ``unique_key`` that fails on every repeat of an earlier row's key). ``columns``
    restricts it to the columns a file has (default: every contract column, optional ones not
    required).

    Examples
    --------
    >>> table_schema("attendance").checks[0].name
    'unique_key'
    """
    t = TABLES[table] if isinstance(table, str) else table
    names = list(t.columns) if columns is None else [c for c in t.columns if c in columns]
    cols = {}
    for name in names:
        c = t.columns[name]
        cols[name] = pa.Column(
            "float64" if c.kind in _NUMERIC else str,
            nullable=c.nullable,
            required=c.required,
            checks=[ch for ch, _ in _column_checks(c)],
        )
    checks = []
    if set(t.key) <= set(names):
        key = list(t.key)
        checks.append(
            pa.Check(lambda df: pd.Series(~duplicated_key(df, key), index=df.index), name="unique_key")
        )
    return pa.DataFrameSchema(cols, checks=checks, name=t.name)


# --------------------------------------------------------------------------------------------------
# Reading one file


@dataclass
class _Scan:
    encoding: str  # encoding to read with
    newlines: int
    ends_with_newline: bool
    has_quote: bool
    trailing_blank: int = 0  # empty lines at the end of the file


def _scan(path: Path, file: str, header_hint: list[str] | None, out: _Collector) -> _Scan:
    """Check the encoding line by line (in chunks), count newlines and look for quotes."""
    with open(path, "rb") as fh:
        start = fh.read(4)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        out.add("error", file, "not UTF-8: the file is UTF-16 (save it as 'CSV UTF-8')", line=1)
        return _Scan("utf-16", 0, True, True)
    newlines, quote, last = 0, False, b""
    bad_lines, bad_values, bad_cols, bad_bytes = [], [], [], []
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            if not chunk.endswith(b"\n"):
                chunk += fh.readline()  # keep every chunk a run of whole lines (UTF-8 never spans a newline)
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                _bad_utf8_lines(chunk, newlines, bad_lines, bad_values, bad_cols, bad_bytes)
            newlines += chunk.count(b"\n")
            quote = quote or b'"' in chunk
            last = chunk[-4096:]
    encoding = "utf-8-sig"
    if bad_lines:
        encoding = "cp1252"
        try:
            b"".join(bad_bytes).decode("cp1252")
        except UnicodeDecodeError:
            encoding = "latin-1"
        label = {"cp1252": "cp1252 (Windows-1252)", "latin-1": "latin-1 (ISO-8859-1)"}[encoding]
        rule = f"not valid UTF-8; looks like {label}: save the file as UTF-8"
        names = header_hint or []
        cols = [names[i] if i is not None and i < len(names) else None for i in bad_cols]
        values = [v.decode(encoding, errors="replace") for v in bad_values]
        for col in dict.fromkeys(cols):
            sel = [i for i, c in enumerate(cols) if c == col]
            out.add(
                "error",
                file,
                rule,
                column=col,
                line=np.array([bad_lines[i] for i in sel]),
                value=np.array([values[i] for i in sel], dtype=object),
            )
    trailing_blank = max(last[len(last.rstrip(b"\r\n")) :].count(b"\n") - 1, 0)
    return _Scan(encoding, newlines, last.endswith(b"\n"), quote, trailing_blank)


def _bad_utf8_lines(chunk: bytes, before: int, lines, values, cols, raw) -> None:
    """Record the line, field text, field index and bytes of the first bad byte on every bad line."""
    text = chunk.decode("utf-8", errors="surrogateescape")
    for i, line in enumerate(text.split("\n")):
        m = re.search("[\udc80-\udcff]", line)
        if not m:
            continue
        b = line.encode("utf-8", errors="surrogateescape")
        pos = len(line[: m.start()].encode("utf-8", errors="surrogateescape"))
        field_no = b.count(b",", 0, pos)
        lo = b.rfind(b",", 0, pos) + 1
        hi = b.find(b",", pos)
        lines.append(before + i + 1)
        values.append(b[lo : hi if hi >= 0 else len(b)].strip(b'\r\n "'))
        cols.append(field_no)
        raw.append(b)


def _read_header(path: Path, encoding: str) -> list[str] | None:
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        row = next(csv.reader(fh), None)
    return None if row is None else [h.strip() for h in row]


def _record_lines(path: Path, encoding: str, ncols: int):
    """Physical start line of every data record (pure Python; only for files where lines != records).

    Returns the lines of the well-formed records and ``(line, n_fields, text)`` of the ragged ones.
    """
    good, ragged = [], []
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        start = reader.line_num + 1
        for rec in reader:
            if rec:
                if len(rec) == ncols:
                    good.append(start)
                else:
                    ragged.append((start, len(rec), ",".join(rec)))
            start = reader.line_num + 1
    return np.asarray(good, dtype=np.int64), ragged


def _read_table(path: Path, file: str, scan: _Scan, ncols: int, out: _Collector):
    """Read every cell as text. Returns (arrow table, line numbers or None when line = row + 2)."""
    ragged = []

    def on_invalid(row):
        ragged.append(row)
        return "skip"

    table = pycsv.read_csv(
        path,
        read_options=pycsv.ReadOptions(
            column_names=[f"c{i}" for i in range(ncols)],
            skip_rows=1,
            encoding="utf8" if scan.encoding == "utf-8-sig" else scan.encoding,
            block_size=1 << 24,
        ),
        parse_options=pycsv.ParseOptions(newlines_in_values=scan.has_quote, invalid_row_handler=on_invalid),
        convert_options=pycsv.ConvertOptions(
            column_types={f"c{i}": pya.string() for i in range(ncols)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    n_lines = scan.newlines + (0 if scan.ends_with_newline else 1) - scan.trailing_blank
    if not ragged and n_lines == table.num_rows + 1:
        return table, None
    lines, bad = _record_lines(path, scan.encoding, ncols)
    for line, n, text in bad:
        out.add(
            "error",
            file,
            f"row has {n} {'field' if n == 1 else 'fields'}; the header has {ncols}",
            line=line,
            value=text,
        )
    if len(lines) != table.num_rows:  # the two parsers disagree (exotic quoting): fall back to record order
        lines = np.arange(table.num_rows, dtype=np.int64) + 2
    return table, lines


def _line_of(lines: np.ndarray | None, rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64)
    return rows + 2 if lines is None else lines[rows]


def _whitespace(arr, file, column, lines, out) -> pya.ChunkedArray:
    trimmed = pyc.utf8_trim_whitespace(arr)
    changed = pyc.not_equal(pyc.binary_length(arr), pyc.binary_length(trimmed))
    n = pyc.sum(changed).as_py() or 0
    if n:
        first = pyc.index(changed, True).as_py()
        out.add(
            "warning",
            file,
            f"leading/trailing whitespace stripped ({n:,} {'cell' if n == 1 else 'cells'}; first shown)",
            column=column,
            line=_line_of(lines, [first]),
            value=np.array([repr(arr[first].as_py())], dtype=object),
        )
    return trimmed


def _convert(arr: pya.ChunkedArray, c: Column, file: str, lines, out: _Collector):
    """Parse one column. Returns (values, bad-type mask or None)."""
    if c.kind not in _NUMERIC:
        trimmed = _whitespace(arr, file, c.name, lines, out)
        return pyc.if_else(pyc.equal(trimmed, ""), None, trimmed).to_pandas(), None
    nulled = pyc.if_else(pyc.equal(arr, ""), None, arr)
    try:
        values = nulled.cast(pya.float64())
        if pyc.all(pyc.is_finite(values)).as_py() is False:
            raise ValueError("inf or nan")
        return pd.Series(values.to_numpy(), dtype="float64"), None
    except (pya.ArrowInvalid, ValueError):
        pass
    trimmed = _whitespace(arr, file, c.name, lines, out)
    nulled = pyc.if_else(pyc.equal(trimmed, ""), None, trimmed)
    ok = pyc.match_substring_regex(nulled, _NUMBER_RE)
    values = pyc.if_else(ok, nulled, None).cast(pya.float64())
    ok = pyc.and_kleene(ok, pyc.is_finite(values))  # e.g. 1e999
    values = pyc.if_else(ok, values, None)
    bad = pyc.fill_null(pyc.invert(ok), False).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(bad)
    text = pd.Series(trimmed.take(pya.array(rows)).to_pandas(), dtype="str")
    rule = {"int": "must be a whole number", "float": "must be a number"}.get(c.kind)
    if c.allowed is not None:
        rule = "must be one of: " + ", ".join(map(_fmt, c.allowed))
    rules = np.where(text.str.upper().isin(NA_MARKERS), rule + " (leave missing values empty)", rule)
    out.add("error", file, rules, column=c.name, line=_line_of(lines, rows), value=text)
    return pd.Series(values.to_numpy(), dtype="float64"), bad


def _is_binary(path: Path) -> bool:
    """Whether the start of a file looks binary: a NUL byte, or many control characters (UTF-16 is caught
    before this by its byte-order mark)."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if b"\x00" in head:
        return True
    control = sum(head.count(bytes([b])) for b in (*range(1, 9), 11, 12, *range(14, 32), 127))
    return len(head) > 0 and control / len(head) > 0.05


def _apply_codes(arr, mapping: dict, table: str, c: Column, file: str, lines, out: _Collector):
    """Translate a district column's codes to the contract's; every value must be in the crosswalk.

    Returns (translated text array, mask of unmapped cells). Unmapped cells are errors naming the value,
    with the closest crosswalk code as a suggestion, and read as missing (not reported again as empty).
    """
    trimmed = pyc.utf8_trim_whitespace(arr)
    keys = pya.array(list(mapping), type=pya.string())
    vals = pya.array(list(mapping.values()), type=pya.string())
    idx = pyc.index_in(trimmed, value_set=keys)
    translated = pyc.fill_null(pyc.take(vals, idx), "")
    unmapped = pyc.and_(pyc.is_null(idx), pyc.not_equal(trimmed, "")).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(unmapped)
    if len(rows):
        text = pd.Series(trimmed.take(pya.array(rows)).to_pandas(), dtype="str")
        hints = {v: suggest(v, mapping) for v in text.unique()[:1000]}
        rule = f"not in the crosswalk's codes for {table}.{c.name}: add it to {CROSSWALK_FILE}"
        rules = rule + text.map(hints).fillna("").to_numpy(dtype=object)
        out.add("error", file, rules, column=c.name, line=_line_of(lines, rows), value=text)
    return translated, unmapped


def _check_table(path: Path, t: Table, out: _Collector, cw: Crosswalk | None = None):
    """Read, parse and check one table (through the crosswalk ``cw``, if any).

    Returns (parsed frame, line numbers or None, bad-number masks by column), or None if unreadable.
    Problems name the contract's file and columns; :func:`validate_district` relabels them with the
    district's own names afterwards.
    """
    cw = cw or Crosswalk()
    file = t.filename
    if path.stat().st_size == 0:
        out.add("error", file, "file is empty (0 bytes); it needs at least the header row")
        return None
    if _is_binary(path):
        out.add(
            "error",
            file,
            "binary file, not text (e.g. a spreadsheet or archive); export the table as "
            "'CSV UTF-8 (comma delimited)'",
        )
        return None
    raw_guess = _read_header(path, "utf-8-sig")
    header_guess = cw.rename_header(t.name, raw_guess)[0] if raw_guess else raw_guess
    scan = _scan(path, file, header_guess, out)
    raw_header = _read_header(path, scan.encoding) if scan.encoding != "utf-8-sig" else raw_guess
    header = raw_header
    if raw_header:
        header = cw.rename_header(t.name, raw_header)[0]
    if not header or all(h == "" for h in header):
        out.add("error", file, "no header row (the first line must name the columns)", line=1)
        return None
    ncols = len(header)
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if ncols == 1 and header[0].count(sep) >= 1:
            out.add(
                "error",
                file,
                f"columns are separated by {name}; the contract needs commas (export as "
                "'CSV UTF-8 (comma delimited)')",
                line=1,
            )
            return None
    index = {}
    for i, h in enumerate(header):
        if h in index:
            out.add("error", file, "duplicate column name (the later one is ignored)", column=h, line=1)
        else:
            index[h] = i
    lower = {h.lower(): h for h in index if h not in t.columns}
    mapped = cw.columns.get(t.name, {})
    for c in t.columns.values():
        if c.name not in index and c.required:
            if c.name in mapped:
                hint = (
                    f" (the crosswalk reads it from '{mapped[c.name]}', which the file does not have"
                    + suggest(mapped[c.name], raw_header).replace(" (", "; ", 1).rstrip(")")
                    + ")"
                )
            else:
                hint = f" (found '{lower[c.name]}'; column names are lower case)" if c.name in lower else ""
            out.add("error", file, "required column is missing" + hint, column=c.name, line=1)
    for h in index:
        if h not in t.columns:
            out.add("warning", file, "unexpected column (ignored)", column=h or "(empty name)", line=1)
    try:
        table, lines = _read_table(path, file, scan, ncols, out)
    except (pya.ArrowInvalid, UnicodeDecodeError) as exc:
        out.add("error", file, f"could not be parsed as CSV: {str(exc).splitlines()[0][:120]}")
        return None
    present = [c for c in t.columns if c in index]
    if table.num_rows == 0:
        out.add(
            "error" if t.required else "warning",
            file,
            "has no data rows (header only)" if t.required else "optional table has no data rows",
        )
    data, bad_type = {}, {}
    for name in present:
        c = t.columns[name]
        arr, unmapped = table.column(index[name]), None
        if (t.name, name) in cw.codes:
            arr, unmapped = _apply_codes(arr, cw.codes[(t.name, name)], t.name, c, file, lines, out)
        data[name], bad_type[name] = _convert(arr, c, file, lines, out)
        if unmapped is not None:
            bad_type[name] = unmapped if bad_type[name] is None else (bad_type[name] | unmapped)
    frame = pd.DataFrame(data, columns=present, copy=False)
    del data
    _schema_problems(frame, t, table, index, bad_type, lines, out)
    return frame, lines, bad_type


def _schema_problems(frame, t: Table, table, index, bad_type, lines, out: _Collector) -> None:
    """Run the pandera schema lazily and turn its failure cases into problems."""
    file = t.filename
    schema = table_schema(t, columns=list(frame.columns))
    try:
        schema.validate(frame, lazy=True, inplace=True)
        return
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
    uniq = (fc["check"] == "unique_key").to_numpy()
    cols = fc[~uniq & fc["index"].notna()]
    for (name, check, number), g in cols.groupby(
        ["column", "check", "check_number"], dropna=False, sort=False
    ):
        rows = g["index"].to_numpy(dtype=np.int64)
        if check == "not_nullable":
            if bad_type.get(name) is not None:
                rows = rows[~bad_type[name][rows]]  # non-empty cells that were not numbers: reported already
            rule, value = "must not be empty", None
        else:
            rule = _column_checks(t.columns[name])[int(number)][1]
            value = _raw_text(table, index[name], rows)
            if t.columns[name].allowed is not None and t.columns[name].kind == "category":
                low = value.str.lower().isin([str(a) for a in t.columns[name].allowed]) & ~value.isin(
                    [str(a) for a in t.columns[name].allowed]
                )
                rule = np.where(low, rule + " (codes are lower case)", rule)
        out.add("error", file, rule, column=name, line=_line_of(lines, rows), value=value)
    other = fc[~uniq & fc["index"].isna()]
    for row in other.itertuples(index=False):  # column-level failures (e.g. dtype); not expected
        out.add("error", file, f"{row.check}: {row.failure_case}", column=row.column)
    if uniq.any():
        rows = np.unique(fc.loc[uniq, "index"].to_numpy(dtype=np.int64))
        keys = frame.iloc[rows][list(t.key)]
        rows = rows[keys.notna().all(axis=1).to_numpy()]  # an empty key cell is reported already
        if len(rows):
            _duplicate_problems(frame, t, table, index, rows, lines, out)


def _raw_text(table, col: int, rows: np.ndarray) -> pd.Series:
    return pd.Series(
        pyc.utf8_trim_whitespace(table.column(col).take(pya.array(rows))).to_pandas(), dtype="str"
    )


def _duplicate_problems(frame, t: Table, table, index, rows, lines, out: _Collector) -> None:
    """Duplicate keys; rows identical (in every column) to an earlier row are named as such."""
    key = list(t.key)
    in_group = np.flatnonzero(duplicated_key(frame, key, keep=False))
    whole = table.take(pya.array(in_group)).to_pandas()
    identical = set(in_group[whole.duplicated(keep="first").to_numpy()].tolist())  # all columns, as text
    is_identical = np.isin(rows, np.fromiter(identical, dtype=np.int64, count=len(identical)))
    value = pd.Series([""] * len(rows), dtype="str")
    for i, k in enumerate(key):
        part = _raw_text(table, index[k], rows)
        value = part if i == 0 else value + ", " + part
    keytext = ", ".join(key)
    rule = np.where(is_identical, "duplicate row (identical to an earlier row)", f"duplicate key ({keytext})")
    out.add("error", t.filename, rule, column=keytext, line=_line_of(lines, rows), value=value)


# --------------------------------------------------------------------------------------------------
# Cross-table rules


def _int_text(x: pd.Series) -> pd.Series:
    return x.map(_fmt).astype("str")


def _arrow(s: pd.Series) -> pya.ChunkedArray:
    a = pya.array(s)
    return a if isinstance(a, pya.ChunkedArray) else pya.chunked_array([a])


def _has(df: pd.DataFrame | None, *columns: str) -> bool:
    return df is not None and set(columns) <= set(df.columns)


def _isin(values: pd.Series, tables: dict, table: str, column: str, cache: dict) -> np.ndarray:
    """``values.isin(tables[table][column])``, hashed by pyarrow; the value set is cached by (table, column)."""
    universe = tables[table][column]
    if values.dtype == "float64" or universe.dtype == "float64":
        return values.isin(universe.dropna().unique()).to_numpy()
    if (table, column) not in cache:
        cache[table, column] = pyc.drop_null(pyc.unique(_arrow(universe)))
    return pyc.is_in(_arrow(values), value_set=cache[table, column]).to_numpy(zero_copy_only=False)


def _index_in(values: pd.Series, universe: pd.Series) -> np.ndarray:
    """Position of each value's first occurrence in ``universe``, -1 if absent or missing."""
    idx = pyc.index_in(_arrow(values), value_set=_arrow(universe).combine_chunks())
    return pyc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _cross_table(tables: dict, lines: dict, bad_type: dict, out: _Collector) -> None:
    """References, days present, teacher-survey forms and the warnings linking tables (all vectorized)."""
    usable = {n: df for n, df in tables.items() if len(df)}
    sets = {}  # unique values of the target columns, computed once
    unresolved = {}  # table -> mask of rows with an unresolved reference
    for name, df in tables.items():
        t = TABLES[name]
        for ref in t.references:
            target = usable.get(ref.table)
            if (
                target is None
                or not set(ref.columns) <= set(df.columns)
                or not set(ref.target_columns) <= set(target.columns)
            ):
                continue
            if len(ref.columns) == 1:
                vals = df[ref.columns[0]]
                missing = vals.notna().to_numpy() & ~_isin(
                    vals, usable, ref.table, ref.target_columns[0], sets
                )
                value = vals
            else:
                a = pd.Series(
                    _key_codes(
                        pd.concat(
                            [
                                df[list(ref.columns)],
                                target[list(ref.target_columns)].set_axis(list(ref.columns), axis=1),
                            ],
                            ignore_index=True,
                        ),
                        list(ref.columns),
                    )
                )
                missing = (~a[: len(df)].isin(a[len(df) :]).to_numpy()) & df[list(ref.columns)].notna().all(
                    axis=1
                ).to_numpy()
                value = df[list(ref.columns)].astype("str").agg(", ".join, axis=1)
            rows = np.flatnonzero(missing)
            if len(rows):
                value = value.iloc[rows].astype("str")
                rule = f"must exist in {ref.table}.{', '.join(ref.target_columns)}"
                rule = np.where(
                    value.str.upper().isin(NA_MARKERS), rule + " (leave missing values empty)", rule
                )
                out.add(
                    "error",
                    t.filename,
                    rule,
                    column=", ".join(ref.columns),
                    line=_line_of(lines[name], rows),
                    value=value,
                )
                unresolved[name] = unresolved.get(name, np.zeros(len(df), bool)) | missing

    att = tables.get("attendance")
    if att is not None and {"days_present", "days_enrolled"} <= set(att.columns):
        rows = np.flatnonzero((att["days_present"] > att["days_enrolled"]).to_numpy())
        if len(rows):
            value = (
                _int_text(att["days_present"].iloc[rows]) + " > " + _int_text(att["days_enrolled"].iloc[rows])
            )
            out.add(
                "error",
                "attendance.csv",
                "must not exceed days_enrolled",
                column="days_present",
                line=_line_of(lines["attendance"], rows),
                value=value,
            )

    ts = tables.get("teacher_surveys")
    if ts is not None and "form" in ts.columns:
        for form, items in FORM_ITEMS.items():
            on_form = (ts["form"] == form).to_numpy()
            if not on_form.any():
                continue
            for item in items:
                if item not in ts.columns:
                    out.add(
                        "error",
                        "teacher_surveys.csv",
                        f"column is missing but {on_form.sum():,} rows use form '{form}'",
                        column=item,
                        line=1,
                    )
                    continue
                empty = on_form & ts[item].isna().to_numpy()
                if bad_type["teacher_surveys"].get(item) is not None:
                    empty = empty & ~bad_type["teacher_surveys"][item]  # a bad number is reported already
                rows = np.flatnonzero(empty)
                if len(rows):
                    out.add(
                        "error",
                        "teacher_surveys.csv",
                        f"must be answered on form '{form}'",
                        column=item,
                        line=_line_of(lines["teacher_surveys"], rows),
                    )

    ws = tables.get("work_samples")
    if ws is not None and {"met_demands", "met_grade_level"} <= set(ws.columns):
        rows = np.flatnonzero(((ws["met_grade_level"] == 1) & (ws["met_demands"] == 0)).to_numpy())
        if len(rows):
            out.add(
                "warning",
                "work_samples.csv",
                "met_grade_level = 1 but met_demands = 0",
                column="met_grade_level",
                line=_line_of(lines["work_samples"], rows),
                value="1",
            )
    asg, enr = usable.get("assignments"), usable.get("enrollments")
    if (
        _has(ws, "assignment_id", "student_id")
        and len(ws)
        and _has(asg, "assignment_id", "classroom_id")
        and _has(enr, "student_id", "classroom_id")
    ):
        at = _index_in(ws["assignment_id"], asg["assignment_id"])
        classroom = pd.Series(asg["classroom_id"].to_numpy()[np.maximum(at, 0)], dtype="str").where(at >= 0)
        students = enr["student_id"].dropna().unique()
        rooms = enr["classroom_id"].dropna().unique()
        s_ws, c_ws = _index_in(ws["student_id"], pd.Series(students)), _index_in(classroom, pd.Series(rooms))
        s_en, c_en = (
            _index_in(enr["student_id"], pd.Series(students)),
            _index_in(enr["classroom_id"], pd.Series(rooms)),
        )
        enrolled = pd.Series(s_ws * (len(rooms) + 1) + c_ws).isin(s_en * (len(rooms) + 1) + c_en).to_numpy()
        check = (ws["student_id"].notna() & classroom.notna()).to_numpy()
        if "work_samples" in unresolved:
            check = check & ~unresolved["work_samples"]  # the unresolved reference is the error to fix
        rows = np.flatnonzero(check & ~enrolled)
        if len(rows):
            out.add(
                "warning",
                "work_samples.csv",
                "student is not enrolled in the assignment's classroom",
                column="student_id",
                line=_line_of(lines["work_samples"], rows),
                value=ws["student_id"].iloc[rows],
            )

    cls = tables.get("classrooms")
    if _has(cls, "classroom_id") and _has(enr, "classroom_id"):
        rows = np.flatnonzero(
            cls["classroom_id"].notna().to_numpy()
            & ~_isin(cls["classroom_id"], usable, "enrollments", "classroom_id", sets)
        )
        if len(rows):
            out.add(
                "warning",
                "classrooms.csv",
                "no students enrolled (not in enrollments.csv)",
                column="classroom_id",
                line=_line_of(lines["classrooms"], rows),
                value=cls["classroom_id"].iloc[rows],
            )
    st, asm = tables.get("students"), usable.get("assessments")
    if _has(st, "student_id") and _has(asm, "student_id"):
        rows = np.flatnonzero(
            st["student_id"].notna().to_numpy()
            & ~_isin(st["student_id"], usable, "assessments", "student_id", sets)
        )
        if len(rows):
            out.add(
                "warning",
                "students.csv",
                "no assessment results (not in assessments.csv)",
                column="student_id",
                line=_line_of(lines["students"], rows),
                value=st["student_id"].iloc[rows],
            )


def _school_year_now(today: datetime.date | None = None) -> int:
    """The school year under way (named by the calendar year it starts in; a year starts on July 1)."""
    today = today or datetime.date.today()
    return today.year if today.month >= 7 else today.year - 1


def _goal_group_problem(group: str, students: pd.DataFrame | None) -> tuple[str, str] | None:
    """(severity, rule) when a goal's group names no student group, else None."""
    if group == "all":
        return None
    var, eq, level = group.partition("=")
    var, level = var.strip(), level.strip()
    if not eq or not var or not level:
        return "error", "must be 'all' or '<variable>=<level>' (e.g. 'low_income=1', 'race_ethnicity=black')"
    if var not in SUBGROUP_VARIABLES:
        return "error", (
            f"'{var}' is not a student group variable; use one of: {', '.join(SUBGROUP_VARIABLES)}"
            + suggest(var, SUBGROUP_VARIABLES)
        )
    levels = tuple(RACE_ETHNICITY) if var == "race_ethnicity" else ("0", "1")
    if re.fullmatch(r"[01]\.0+", level):
        level = level[0]
    if level not in levels:
        return "error", f"'{level}' is not a level of {var}; use one of: {', '.join(levels)}" + suggest(
            level, levels
        )
    if students is not None and var in students.columns:
        have = students[var].dropna()
        have = have.astype("str") if var == "race_ethnicity" else have.map(_fmt).astype("str")
        if not have.eq(level).any():
            return "warning", f"no student in students.csv is in {var}={level}; the goal will have no data"
    return None


def _plausibility(tables: dict, lines: dict, out: _Collector, *, analysis_year: int | None) -> None:
    """Rules on values that are each allowed but together implausible (school years, grades, goals, links)."""
    now = _school_year_now()
    future = {}
    for name, df in tables.items():
        if "school_year" in df.columns and len(df):
            mask = (df["school_year"] > now).to_numpy()
            future[name] = mask
            rows = np.flatnonzero(mask)
            if len(rows):
                out.add(
                    "error",
                    TABLES[name].filename,
                    f"school year has not started yet (the current school year "
                    f"is {now}; years are named by the calendar year they start in)",
                    column="school_year",
                    line=_line_of(lines[name], rows),
                    value=_int_text(df["school_year"].iloc[rows]),
                )
    cls = tables.get("classrooms")
    year = analysis_year
    if _has(cls, "school_year") and cls["school_year"].notna().any():
        years = cls["school_year"].dropna()
        if year is None:
            ok_years = years[years <= now]
            year = int(ok_years.max()) if len(ok_years) else None
        elif not (years == year).any():
            out.add(
                "error",
                "classrooms.csv",
                f"no classroom is in the analysis year {year} (the classrooms are in "
                + ", ".join(map(_fmt, sorted(years.unique())))
                + ")",
                column="school_year",
                value=str(year),
            )
        if year is not None:
            rows = np.flatnonzero(
                ((cls["school_year"] != year) & cls["school_year"].notna()).to_numpy()
                & ~future.get("classrooms", False)
            )
            if len(rows):
                out.add(
                    "warning",
                    "classrooms.csv",
                    f"section is not in the analysis year {year}; its evidence still "
                    "counts in the district's shares",
                    column="school_year",
                    line=_line_of(lines["classrooms"], rows),
                    value=_int_text(cls["school_year"].iloc[rows]),
                )
    asm = tables.get("assessments")
    if year is not None and _has(asm, "school_year"):
        rows = np.flatnonzero((asm["school_year"] > year).to_numpy() & ~future.get("assessments", False))
        if len(rows):
            out.add(
                "warning",
                "assessments.csv",
                f"after the analysis year {year}; only the trajectories (catch-up) use it",
                column="school_year",
                line=_line_of(lines["assessments"], rows),
                value=_int_text(asm["school_year"].iloc[rows]),
            )
    if _has(asm, "student_id", "subject", "school_year", "window", "grade") and len(asm):
        key = ["student_id", "subject", "school_year"]
        fall, spring = asm["window"].eq("fall").to_numpy(), asm["window"].eq("spring").to_numpy()
        codes = _key_codes(asm[key], key)
        spring_grade = pd.Series(asm["grade"].to_numpy()[spring], index=codes[spring])
        spring_grade = spring_grade[~spring_grade.index.duplicated()]
        sg = pd.Series(codes).map(spring_grade).to_numpy()
        rows = np.flatnonzero(fall & (asm["grade"].to_numpy() > sg))
        if len(rows):
            out.add(
                "error",
                "assessments.csv",
                "fall grade is above the same year's spring grade for this student and subject",
                column="grade",
                line=_line_of(lines["assessments"], rows),
                value=_int_text(asm["grade"].iloc[rows])
                + " > "
                + pd.Series(sg[rows]).map(_fmt).astype("str"),
            )
    st, enr = tables.get("students"), tables.get("enrollments")
    if _has(st, "student_id") and _has(enr, "student_id") and len(enr):
        rows = np.flatnonzero(
            st["student_id"].notna().to_numpy()
            & ~_isin(st["student_id"], tables, "enrollments", "student_id", {})
        )
        if len(rows):
            out.add(
                "warning",
                "students.csv",
                "not enrolled in any section (not in enrollments.csv); the student gets no access measures",
                column="student_id",
                line=_line_of(lines["students"], rows),
                value=st["student_id"].iloc[rows],
            )
    if _has(enr, "student_id", "classroom_id") and _has(cls, "classroom_id") and len(enr) and len(cls):
        at = _index_in(enr["classroom_id"], cls["classroom_id"])
        known = at >= 0
        if _has(cls, "grade"):
            g = np.where(known, cls["grade"].to_numpy(dtype=float)[np.maximum(at, 0)], np.nan)
            per = (
                pd.DataFrame({"s": enr["student_id"], "g": g})
                .groupby("s")["g"]
                .transform("nunique")
                .to_numpy()
            )
            rows = np.flatnonzero(per > 1)
            if len(rows):
                out.add(
                    "warning",
                    "enrollments.csv",
                    "student is enrolled in sections of different grades (this section's grade shown)",
                    column="classroom_id",
                    line=_line_of(lines["enrollments"], rows),
                    value=enr["classroom_id"].iloc[rows]
                    + " (grade "
                    + pd.Series(g[rows]).map(_fmt).astype("str").to_numpy()
                    + ")",
                )
        if _has(cls, "school_id") and _has(st, "student_id", "school_id"):
            sec_school = pd.Series(
                np.where(known, cls["school_id"].to_numpy(dtype=object)[np.maximum(at, 0)], None)
            )
            si = _index_in(enr["student_id"], st["student_id"])
            stu_school = pd.Series(
                np.where(si >= 0, st["school_id"].to_numpy(dtype=object)[np.maximum(si, 0)], None)
            )
            rows = np.flatnonzero(
                (sec_school.notna() & stu_school.notna() & (sec_school != stu_school)).to_numpy()
            )
            if len(rows):
                out.add(
                    "warning",
                    "enrollments.csv",
                    "section belongs to another school than the student's (students.csv school_id)",
                    column="classroom_id",
                    line=_line_of(lines["enrollments"], rows),
                    value=enr["classroom_id"].iloc[rows]
                    + " (school "
                    + sec_school.iloc[rows].astype("str")
                    + ", student's "
                    + stu_school.iloc[rows].astype("str")
                    + ")",
                )
    lc = tables.get("level_counts")
    if _has(lc, "group") and len(lc):
        found = {g: _goal_group_problem(g, None) for g in lc["group"].dropna().unique()}
        for g, prob in found.items():
            if prob is not None:
                rows = np.flatnonzero(lc["group"].eq(g).to_numpy())
                out.add(
                    prob[0],
                    "level_counts.csv",
                    prob[1],
                    column="group",
                    line=_line_of(lines["level_counts"], rows),
                    value=g,
                )
    goals = tables.get("goals")
    if _has(goals, "group") and len(goals):
        found = {g: _goal_group_problem(g, st) for g in goals["group"].dropna().unique()}
        for severity in ("error", "warning"):
            for g, prob in found.items():
                if prob and prob[0] == severity:
                    rows = np.flatnonzero(goals["group"].eq(g).to_numpy())
                    out.add(
                        severity,
                        "goals.csv",
                        prob[1],
                        column="group",
                        line=_line_of(lines["goals"], rows),
                        value=g,
                    )
    if _has(goals, "baseline_year", "target_year") and len(goals):
        rows = np.flatnonzero((goals["target_year"] < goals["baseline_year"]).to_numpy())
        if len(rows):
            out.add(
                "error",
                "goals.csv",
                "target year is before the baseline year",
                column="target_year",
                line=_line_of(lines["goals"], rows),
                value=_int_text(goals["target_year"].iloc[rows])
                + " < "
                + _int_text(goals["baseline_year"].iloc[rows]),
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


def validate_district(path: str | os.PathLike, *, analysis_year: int | None = None) -> ValidationReport:
    """Check one district folder against the data contract; reads only, writes nothing.

    Parameters
    ----------
    path
        The district folder, ``data/raw/<district_id>``, holding one CSV file per table: ``<table>.csv``, or
        the names its ``crosswalk.yaml`` gives (see :mod:`opportunity_research.intake.crosswalk`).
    analysis_year
        The school year the classroom evidence describes (default: the latest ``classrooms.school_year``);
        assessments after it are flagged.

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
    path = Path(path)
    out = _Collector()
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
    for t in TABLES.values():
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
        result = _check_table(p, t, out, cw)
        if result is not None and t.required and len(result[0]) == 0:
            continue  # a header and no rows (said by _check_table): left out of the checks across tables
        if result is not None:
            tables[t.name], lines[t.name], bad_type[t.name] = result
    _cross_table(tables, lines, bad_type, out)
    _plausibility(tables, lines, out, analysis_year=analysis_year)
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
    risky = s.str.startswith(_FORMULA_START, na=False) & ~s.str.fullmatch(_NUMBER_RE, na=False)
    return s.where(~risky, "'" + s)


def _write_csv_atomic(frame: pd.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype == "str" or frame[c].dtype == object:
            frame[c] = csv_safe(frame[c])
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    report = validate_district(path, analysis_year=args.analysis_year)
    if report.frame.empty:
        print(f"{args.path}: valid ({_plural(len(report.tables), 'table')}, {report.n_rows:,} rows)")
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
