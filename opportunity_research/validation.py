"""Validation of a district export (``data/raw/<district_id>/``) against the data contract.

Everything is derived from :data:`opportunity_research.contract.TABLES`: the per-table pandera
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
>>> from opportunity_research.validation import validate_district
>>> report = validate_district("no/such/folder")
>>> report.ok, report.problems[0].rule
(False, 'district folder not found')
"""

from __future__ import annotations

import argparse
import csv
import os
import re
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

from . import config
from .contract import EXPECTATION_ITEMS_CURRENT, EXPECTATION_ITEMS_OLD, TABLES, Column, Table

__all__ = [
    "Problem",
    "ValidationFailed",
    "ValidationReport",
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


# --------------------------------------------------------------------------------------------------
# Report objects


@dataclass(slots=True)
class Problem:
    """One problem found in an export.

    ``file`` is a file name only (``students.csv``), or ``<folder>/`` for the folder itself;
    ``line`` is the 1-based line in the CSV file (header = line 1), None for problems about a whole
    file or column; ``column`` is None when the problem is not about one column; ``value`` is the
    cell text (truncated) or None; ``rule`` is the rule broken, in words.
    """

    severity: str
    file: str
    line: int | None
    column: str | None
    value: str | None
    rule: str


class ValidationFailed(Exception):
    """A district export breaks the data contract; ``.report`` holds the full :class:`ValidationReport`."""

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
    """

    path: Path
    frame: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

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
        return (f"{_plural(self.n_errors, 'error')}, {_plural(self.n_warnings, 'warning')} in "
                f"{_plural(files, 'file')}")

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
        shown = shown.assign(first_=first[shown["g_"].to_numpy()]).sort_values(["first_", "r_"], kind="stable")
        rest = f[rank >= per_group].assign(g_=gid[rank >= per_group])
        rest_lines = rest.groupby("g_")["line"].agg(["min", "max", "size"])
        cells = [("severity", "file", "line", "column", "value", "rule")]
        more = {}  # index in cells -> "... and N more" text printed after it
        covered = 0
        for printed, row in enumerate(shown.itertuples(index=False)):
            if max_rows is not None and printed >= max_rows:
                break
            value = "" if pd.isna(row.value) else row.value
            cells.append((row.severity, row.file, "-" if pd.isna(row.line) else f"{int(row.line)}",
                          "-" if pd.isna(row.column) else row.column,
                          value if len(value) <= 30 else value[:27] + "...", row.rule))
            covered += 1
            if row.r_ == min(per_group, size[row.g_]) - 1 and row.g_ in rest_lines.index:
                lo, hi, n = rest_lines.loc[row.g_]
                where = "" if pd.isna(lo) else (f" (line {int(lo)})" if lo == hi else f" (lines {int(lo)}-{int(hi)})")
                more[len(cells) - 1] = f"... and {int(n):,} more {'row' if n == 1 else 'rows'}{where}"
                covered += int(n)
        widths = [min(max(len(str(c[i])) for c in cells), cap) for i, cap in enumerate((8, 40, 9, 30, 30))]
        out = []
        for i, c in enumerate(cells):
            parts = [str(c[0]).ljust(widths[0]), str(c[1]).ljust(widths[1]), str(c[2]).rjust(widths[2]),
                     str(c[3]).ljust(widths[3]), str(c[4]).ljust(widths[4]), str(c[5])]
            out.append("  ".join(parts).rstrip())
            if i in more:
                out.append(" " * (sum(widths[:3]) + 6) + more[i])
        if covered < len(f):
            out.append(f"... {len(f) - covered:,} more problems not shown (max_rows={max_rows}; "
                       "to_frame() or --csv FILE has every one)")
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
        n = max((len(x) for x in (line, value, rule) if isinstance(x, (np.ndarray, pd.Series, pd.Index, list))),
                default=1)
        if n == 0:
            return
        if isinstance(value, pd.Series) and value.dtype == "str":
            value = _truncate(value.reset_index(drop=True))
        elif value is not None and not np.isscalar(value):
            value = _truncate(pd.Series(np.asarray(value, dtype=object), dtype="str"))
        elif value is not None:
            value = _truncate(pd.Series([str(value)] * n, dtype="str"))
        part = pd.DataFrame({
            "severity": np.repeat(severity, n),
            "file": np.repeat(file, n),
            "line": pd.array(np.broadcast_to(np.nan if line is None else np.asarray(line, dtype=float), (n,)),
                             dtype="Int64"),
            "column": pd.Series([column] * n, dtype="str"),
            "value": value.to_numpy() if value is not None else pd.Series([None] * n, dtype="str").to_numpy(),
            "rule": np.broadcast_to(np.asarray(rule, dtype=object), (n,)),
        })
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
        order = pd.DataFrame({
            "s": (f["severity"] != "error").astype(int),
            "f": f["file"].map(rank).astype("float64").fillna(len(rank)),
            "name": f["file"],
            "l": f["line"].astype("float64").fillna(-1.0),
        })
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
            part = np.concatenate([pyc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in enc.chunks]
                                  or [np.zeros(0)]).astype(np.int64)
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
        cols[name] = pa.Column("float64" if c.kind in _NUMERIC else str, nullable=c.nullable,
                               required=c.required, checks=[ch for ch, _ in _column_checks(c)])
    checks = []
    if set(t.key) <= set(names):
        key = list(t.key)
        checks.append(pa.Check(lambda df: pd.Series(~duplicated_key(df, key), index=df.index), name="unique_key"))
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
            out.add("error", file, rule, column=col, line=np.array([bad_lines[i] for i in sel]),
                    value=np.array([values[i] for i in sel], dtype=object))
    trailing_blank = max(last[len(last.rstrip(b"\r\n")):].count(b"\n") - 1, 0)
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
        values.append(b[lo: hi if hi >= 0 else len(b)].strip(b'\r\n "'))
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
        read_options=pycsv.ReadOptions(column_names=[f"c{i}" for i in range(ncols)], skip_rows=1,
                                       encoding="utf8" if scan.encoding == "utf-8-sig" else scan.encoding,
                                       block_size=1 << 24),
        parse_options=pycsv.ParseOptions(newlines_in_values=scan.has_quote, invalid_row_handler=on_invalid),
        convert_options=pycsv.ConvertOptions(column_types={f"c{i}": pya.string() for i in range(ncols)},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    n_lines = scan.newlines + (0 if scan.ends_with_newline else 1) - scan.trailing_blank
    if not ragged and n_lines == table.num_rows + 1:
        return table, None
    lines, bad = _record_lines(path, scan.encoding, ncols)
    for line, n, text in bad:
        out.add("error", file, f"row has {n} {'field' if n == 1 else 'fields'}; the header has {ncols}",
                line=line, value=text)
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
        out.add("warning", file, f"leading/trailing whitespace stripped ({n:,} "
                f"{'cell' if n == 1 else 'cells'}; first shown)", column=column,
                line=_line_of(lines, [first]), value=np.array([repr(arr[first].as_py())], dtype=object))
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


def _check_table(path: Path, t: Table, out: _Collector):
    """Read, parse and check one table.

    Returns (parsed frame, line numbers or None, bad-number masks by column), or None if unreadable.
    """
    file = t.filename
    if path.stat().st_size == 0:
        out.add("error", file, "file is empty (0 bytes); it needs at least the header row")
        return None
    header_guess = _read_header(path, "utf-8-sig")
    scan = _scan(path, file, header_guess, out)
    header = _read_header(path, scan.encoding) if scan.encoding != "utf-8-sig" else header_guess
    if not header or all(h == "" for h in header):
        out.add("error", file, "no header row (the first line must name the columns)", line=1)
        return None
    ncols = len(header)
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if ncols == 1 and header[0].count(sep) >= 1:
            out.add("error", file, f"columns are separated by {name}; the contract needs commas (export as "
                    "'CSV UTF-8 (comma delimited)')", line=1)
            return None
    index = {}
    for i, h in enumerate(header):
        if h in index:
            out.add("error", file, "duplicate column name (the later one is ignored)", column=h, line=1)
        else:
            index[h] = i
    lower = {h.lower(): h for h in index if h not in t.columns}
    for c in t.columns.values():
        if c.name not in index and c.required:
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
        out.add("error" if t.required else "warning", file,
                "has no data rows (header only)" if t.required else "optional table has no data rows")
    data, bad_type = {}, {}
    for name in present:
        c = t.columns[name]
        data[name], bad_type[name] = _convert(table.column(index[name]), c, file, lines, out)
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
    for (name, check, number), g in cols.groupby(["column", "check", "check_number"], dropna=False, sort=False):
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
                    [str(a) for a in t.columns[name].allowed])
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
    return pd.Series(pyc.utf8_trim_whitespace(table.column(col).take(pya.array(rows))).to_pandas(), dtype="str")


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
            if (target is None or not set(ref.columns) <= set(df.columns)
                    or not set(ref.target_columns) <= set(target.columns)):
                continue
            if len(ref.columns) == 1:
                vals = df[ref.columns[0]]
                missing = vals.notna().to_numpy() & ~_isin(vals, usable, ref.table, ref.target_columns[0], sets)
                value = vals
            else:
                a = pd.Series(_key_codes(pd.concat([df[list(ref.columns)], target[list(ref.target_columns)].set_axis(
                    list(ref.columns), axis=1)], ignore_index=True), list(ref.columns)))
                missing = (~a[: len(df)].isin(a[len(df):]).to_numpy()) & df[list(ref.columns)].notna().all(
                    axis=1).to_numpy()
                value = df[list(ref.columns)].astype("str").agg(", ".join, axis=1)
            rows = np.flatnonzero(missing)
            if len(rows):
                value = value.iloc[rows].astype("str")
                rule = f"must exist in {ref.table}.{', '.join(ref.target_columns)}"
                rule = np.where(value.str.upper().isin(NA_MARKERS), rule + " (leave missing values empty)", rule)
                out.add("error", t.filename, rule, column=", ".join(ref.columns), line=_line_of(lines[name], rows),
                        value=value)
                unresolved[name] = unresolved.get(name, np.zeros(len(df), bool)) | missing

    att = tables.get("attendance")
    if att is not None and {"days_present", "days_enrolled"} <= set(att.columns):
        rows = np.flatnonzero((att["days_present"] > att["days_enrolled"]).to_numpy())
        if len(rows):
            value = _int_text(att["days_present"].iloc[rows]) + " > " + _int_text(att["days_enrolled"].iloc[rows])
            out.add("error", "attendance.csv", "must not exceed days_enrolled", column="days_present",
                    line=_line_of(lines["attendance"], rows), value=value)

    ts = tables.get("teacher_surveys")
    if ts is not None and "form" in ts.columns:
        for form, items in FORM_ITEMS.items():
            on_form = (ts["form"] == form).to_numpy()
            if not on_form.any():
                continue
            for item in items:
                if item not in ts.columns:
                    out.add("error", "teacher_surveys.csv",
                            f"column is missing but {on_form.sum():,} rows use form '{form}'", column=item, line=1)
                    continue
                empty = on_form & ts[item].isna().to_numpy()
                if bad_type["teacher_surveys"].get(item) is not None:
                    empty = empty & ~bad_type["teacher_surveys"][item]  # a bad number is reported already
                rows = np.flatnonzero(empty)
                if len(rows):
                    out.add("error", "teacher_surveys.csv", f"must be answered on form '{form}'", column=item,
                            line=_line_of(lines["teacher_surveys"], rows))

    ws = tables.get("work_samples")
    if ws is not None and {"met_demands", "met_grade_level"} <= set(ws.columns):
        rows = np.flatnonzero(((ws["met_grade_level"] == 1) & (ws["met_demands"] == 0)).to_numpy())
        if len(rows):
            out.add("warning", "work_samples.csv", "met_grade_level = 1 but met_demands = 0",
                    column="met_grade_level", line=_line_of(lines["work_samples"], rows), value="1")
    asg, enr = usable.get("assignments"), usable.get("enrollments")
    if (_has(ws, "assignment_id", "student_id") and len(ws) and _has(asg, "assignment_id", "classroom_id")
            and _has(enr, "student_id", "classroom_id")):
        at = _index_in(ws["assignment_id"], asg["assignment_id"])
        classroom = pd.Series(asg["classroom_id"].to_numpy()[np.maximum(at, 0)], dtype="str").where(at >= 0)
        students = enr["student_id"].dropna().unique()
        rooms = enr["classroom_id"].dropna().unique()
        s_ws, c_ws = _index_in(ws["student_id"], pd.Series(students)), _index_in(classroom, pd.Series(rooms))
        s_en, c_en = _index_in(enr["student_id"], pd.Series(students)), _index_in(enr["classroom_id"], pd.Series(rooms))
        enrolled = pd.Series(s_ws * (len(rooms) + 1) + c_ws).isin(s_en * (len(rooms) + 1) + c_en).to_numpy()
        check = (ws["student_id"].notna() & classroom.notna()).to_numpy()
        if "work_samples" in unresolved:
            check = check & ~unresolved["work_samples"]  # the unresolved reference is the error to fix
        rows = np.flatnonzero(check & ~enrolled)
        if len(rows):
            out.add("warning", "work_samples.csv", "student is not enrolled in the assignment's classroom",
                    column="student_id", line=_line_of(lines["work_samples"], rows),
                    value=ws["student_id"].iloc[rows])

    cls = tables.get("classrooms")
    if _has(cls, "classroom_id") and _has(enr, "classroom_id"):
        rows = np.flatnonzero(cls["classroom_id"].notna().to_numpy() & ~_isin(cls["classroom_id"], usable, "enrollments", "classroom_id", sets))
        if len(rows):
            out.add("warning", "classrooms.csv", "no students enrolled (not in enrollments.csv)",
                    column="classroom_id", line=_line_of(lines["classrooms"], rows),
                    value=cls["classroom_id"].iloc[rows])
    st, asm = tables.get("students"), usable.get("assessments")
    if _has(st, "student_id") and _has(asm, "student_id"):
        rows = np.flatnonzero(st["student_id"].notna().to_numpy() & ~_isin(st["student_id"], usable, "assessments", "student_id", sets))
        if len(rows):
            out.add("warning", "students.csv", "no assessment results (not in assessments.csv)",
                    column="student_id", line=_line_of(lines["students"], rows),
                    value=st["student_id"].iloc[rows])


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


def validate_district(path: str | os.PathLike) -> ValidationReport:
    """Check one district folder against the data contract; reads only, writes nothing.

    Parameters
    ----------
    path
        The district folder, ``data/raw/<district_id>``, holding ``<table>.csv`` files.

    Returns
    -------
    ValidationReport
        ``ok`` (no errors), every problem (``to_frame()``: severity, file, line, column, value,
        rule; ``format()`` for reading) and the typed tables.

    Notes
    -----
    Errors: missing folder or required table; empty (0-byte) file or header-only required table;
    not UTF-8; unparseable CSV (rows with the wrong number of fields); missing required column;
    duplicate column name; a value that is not a number / whole number, not an allowed code, out of
    range, or empty where the contract forbids it; duplicate keys and duplicated rows; references
    that do not resolve; ``days_present > days_enrolled``; an unanswered item of the teacher
    survey's form. Warnings: unknown CSV files and columns, stripped whitespace, header-only optional
    table, ``met_grade_level = 1`` with ``met_demands = 0``, work by a student not enrolled in the
    assignment's classroom, a classroom without students, a student without assessment results.
    """
    path = Path(path)
    out = _Collector()
    file_order = [path.name + "/"] + [t.filename for t in TABLES.values()]
    if not path.is_dir():
        out.add("error", path.name + "/", "district folder not found" if not path.exists() else
                "not a folder (expected data/raw/<district_id>/)")
        return ValidationReport(path, out.frame(file_order), {})
    csvs = sorted(p.name for p in path.iterdir()
                  if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith("."))
    known = {t.filename for t in TABLES.values()}
    by_lower = {t.filename.lower(): t.filename for t in TABLES.values()}
    for name in csvs:
        if name not in known:
            hint = (f" (did you mean {by_lower[name.lower()]}? file names are lower case)"
                    if name.lower() in by_lower else "")
            out.add("warning", name, "not a contract table (ignored)" + hint)
    tables, lines, bad_type = {}, {}, {}
    for t in TABLES.values():
        p = path / t.filename
        if t.filename not in csvs:
            if t.required:
                others = sorted(q.name for q in path.iterdir() if q.stem.lower() == t.name and q.name != t.filename)
                hint = f" (found {', '.join(others)}; export it as CSV named {t.filename})" if others else ""
                out.add("error", t.filename, "required table is missing" + hint)
            continue
        result = _check_table(p, t, out)
        if result is not None:
            tables[t.name], lines[t.name], bad_type[t.name] = result
    _cross_table(tables, lines, bad_type, out)
    report = ValidationReport(path, out.frame(file_order), tables)
    if report.ok:
        report.tables = {n: _final_dtypes(n, df) for n, df in tables.items()}
    return report


# --------------------------------------------------------------------------------------------------
# Command line


def _write_csv_atomic(frame: pd.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
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
    report = validate_district(path)
    if report.frame.empty:
        print(f"{args.path}: valid ({_plural(len(report.tables), 'table')}, {report.n_rows:,} rows)")
    else:
        print(report.format(max_rows=args.max_rows or None))
    if args.csv:
        _write_csv_atomic(report.to_frame(), Path(args.csv))
        print(f"problem list written to {args.csv} ({len(report.frame):,} rows)")
    return 0 if report.ok else 1


def register(subparsers) -> None:
    """Add the ``validate`` subcommand."""
    p = subparsers.add_parser(
        "validate", help="check a district export against the data contract (writes nothing)",
        description=textwrap.fill(
            "Check data/raw/<district_id>/ against the data contract (docs/data_contract.md): files, encoding, "
            "columns, types, allowed values, ranges, empty cells, duplicate keys, references between tables and "
            "the cross-table rules. Every problem is listed with its file, line (header = line 1), column, value "
            "and rule; many alike are grouped. Exit code 1 if there is any error, 0 otherwise (warnings are "
            "printed but do not fail). Reads only; the report may show raw ids, so do not share it.", 88),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  opportunity-research validate data/raw/demo_lakeside\n"
        "  opportunity-research validate data/raw/my_district --max-rows 0 --csv /tmp/problems.csv")
    p.add_argument("path", help="district folder, data/raw/<district_id> (or just the district id)")
    p.add_argument("--max-rows", type=int, default=60, metavar="N",
                   help="problem lines to print at most (default 60; 0 = all)")
    p.add_argument("--csv", metavar="FILE", default=None,
                   help="also write every problem (one row each) to FILE as CSV (written atomically)")
    p.set_defaults(func=main_validate)
