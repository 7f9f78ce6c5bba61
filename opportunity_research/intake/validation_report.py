"""The problem report of a district validation: :class:`Problem`, :class:`ValidationReport` and its text form.

Holds the objects :func:`opportunity_research.intake.validation.validate_district` returns and raises
(:class:`ValidationReport`, :class:`ValidationFailed`), the grouped aligned-text rendering
(:meth:`ValidationReport.format`) and :class:`ProblemCollector`, which the rules use to record problems.

Decisions
---------
* Problems are kept as one tidy DataFrame (never one Python object per row), so an export with millions of
  bad cells still validates quickly; :class:`Problem` objects are made only on request.
* Cell values are truncated to :data:`MAX_VALUE_CHARS` characters.
* The frame is ordered errors first, then by the contract's file order, file name and line.

Examples
--------
>>> out = ProblemCollector()
>>> out.add("error", "students.csv", "must be between 3 and 12", column="grade", line=6, value="2")
>>> ValidationReport(Path("demo"), out.frame(["students.csv"])).summary()
'1 error, 0 warnings in 1 file'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .crosswalk import Crosswalk

__all__ = ["MAX_VALUE_CHARS", "Problem", "ProblemCollector", "ValidationFailed", "ValidationReport", "plural"]

#: Characters of a cell value kept in a problem (longer values end with "...").
MAX_VALUE_CHARS = 40

_PROBLEM_COLUMNS = ["severity", "file", "line", "column", "value", "rule"]


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
    >>> from opportunity_research.intake.validation import validate_district
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
    >>> from opportunity_research.intake.validation import validate_district
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
            f"{plural(self.n_errors, 'error')}, {plural(self.n_warnings, 'warning')} in "
            f"{plural(files, 'file')}"
        )

    def format(self, max_rows: int | None = None, *, per_group: int = 3) -> str:
        """The problems as an aligned text table, followed by the one-line summary.

        Problems sharing severity, file, column and rule are grouped: the first ``per_group``
        are listed, the rest summarized as ``... and N more rows (lines a-b)``. ``max_rows`` caps
        the number of problem lines printed in all (None: no cap); :meth:`to_frame` has them all.
        """
        head = f"{self.district}: "
        if self.frame.empty:
            return head + f"valid ({plural(len(self.tables), 'table')}, {self.n_rows:,} rows)"
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


def plural(n: int, word: str) -> str:
    """``n`` (with thousands separators) and ``word``, plural unless ``n`` is 1.

    Examples
    --------
    >>> plural(1, "error"), plural(1200, "warning")
    ('1 error', '1,200 warnings')
    """
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _as_problems(frame: pd.DataFrame) -> list[Problem]:
    cols = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in _PROBLEM_COLUMNS]
    cols[2] = [None if x is None else int(x) for x in cols[2]]
    return list(map(Problem, *cols))


class ProblemCollector:
    """Accumulates problems as small DataFrames (never one Python object per row).

    Examples
    --------
    >>> out = ProblemCollector()
    >>> out.add("warning", "students.csv", "unexpected column (ignored)", column="notes", line=1)
    >>> out.add("error", "students.csv", "must not be empty", column="grade", line=[4, 7])
    >>> out.frame(["students.csv"])[["severity", "line", "rule"]].values.tolist()
    [['error', 4, 'must not be empty'], ['error', 7, 'must not be empty'], ['warning', 1, 'unexpected column (ignored)']]
    """

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
