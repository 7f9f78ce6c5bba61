"""Reading one file of a district export: encoding, header, CSV parsing, cell conversion and the per-table checks.

Holds :func:`check_table` (read, parse and check one table through the crosswalk) and :func:`line_of` (the
file line of a parsed row). The choices on how cells are read are listed in
:mod:`opportunity_research.intake.validation`.

Decisions
---------
* The file is scanned in chunks of whole lines for bad UTF-8, so every bad line is reported (with the likely
  encoding) and the rest of the file is still read with that encoding.
* pyarrow reads every cell of the contract's columns as text (multi-threaded; other columns are not kept); the
  slow pure-Python pass that maps records to physical lines runs only when lines and records differ (quoted
  newlines, blank or ragged lines).
* The rules run on the parsed pyarrow columns (:func:`~opportunity_research.intake.validation_schema.column_checks`),
  each column right after it is parsed; its file text is then let go (key columns keep theirs for the
  duplicate-key problems, which re-read the file whole only when there are duplicates).
* Problems name the contract's file and columns; the entry point relabels them with the district's names.

Examples
--------
>>> line_of(None, [0, 3]).tolist()
[2, 5]
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pya
import pyarrow.compute as pyc
import pyarrow.csv as pycsv

from .contract import Column, Table
from .crosswalk import CROSSWALK_FILE, Crosswalk, suggest
from .validation_report import ProblemCollector
from .validation_schema import NUMERIC_KINDS, column_checks, failing_rows, format_number, key_codes

__all__ = ["NA_MARKERS", "NUMBER_RE", "check_table", "line_of"]

#: Texts commonly used for "missing" that the contract does not accept (an empty cell is missing).
NA_MARKERS = ("NA", "N/A", "#N/A", "NULL", "NAN", "NONE", "NIL", ".", "-", "--", "?", "MISSING")
#: A number in plain decimal notation (``12``, ``-0.5``, ``1e3``).
NUMBER_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_CHUNK = 1 << 23
#: Bytes of a file inspected to tell text from binary.
_SNIFF = 1 << 16


@dataclass
class _Scan:
    encoding: str  # encoding to read with
    newlines: int
    ends_with_newline: bool
    has_quote: bool
    trailing_blank: int = 0  # empty lines at the end of the file


def _scan(path: Path, file: str, header_hint: list[str] | None, out: ProblemCollector) -> _Scan:
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
            if not chunk.isascii():  # ASCII is UTF-8 (and isascii makes no str: decode did, 0.7 CPU-s at 1M)
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    _bad_utf8_lines(chunk, newlines, bad_lines, bad_values, bad_cols, bad_bytes)
            newlines += _count_newlines(chunk)
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


def _count_newlines(chunk: bytes) -> int:
    """The ``\\n`` bytes of ``chunk``, counted by numpy (``bytes.count`` took 0.5 CPU-s on a 1M district's 1.3 GB, this
    0.1).

    Examples
    --------
    >>> _count_newlines(b"a,b\\n1,2\\n"), _count_newlines(b"")
    (2, 0)
    """
    return int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8) == 0x0A))


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


def _read_table(
    path: Path, file: str, scan: _Scan, ncols: int, out: ProblemCollector, include=None, large=()
):
    """Read the cells of columns ``include`` (positions; default all) as text, multi-threaded; the columns at
    positions ``large`` as ``large_string`` (what a pandas text column holds, so the frame shares their buffers
    with no copy), the others as ``string`` (half the offsets: numbers' text is let go once parsed).

    Returns (arrow table, line numbers or None when line = row + 2).
    """
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
            column_types={f"c{i}": pya.large_string() if i in large else pya.string() for i in range(ncols)},
            include_columns=None if include is None else [f"c{i}" for i in include],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    n_lines = scan.newlines + (0 if scan.ends_with_newline else 1) - scan.trailing_blank
    if not ragged and n_lines == table.num_rows + 1:
        return table, None
    if out is None:  # a second read (of other columns): the line numbers are known already
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


def line_of(lines: np.ndarray | None, rows) -> np.ndarray:
    """The file lines of parsed rows ``rows``: ``lines[rows]``, or ``rows + 2`` when ``lines`` is None (header
    on line 1, one line per record).

    Examples
    --------
    >>> line_of(None, [0, 3]).tolist(), line_of(np.array([2, 4, 5]), [1]).tolist()
    ([2, 5], [4])
    """
    rows = np.asarray(rows, dtype=np.int64)
    return rows + 2 if lines is None else lines[rows]


def _edges(arr, space: bool = True) -> tuple[bool, bool]:
    """(whether a cell is empty, whether a cell may start or end with whitespace) of a text column, read from its
    offsets and first and last bytes (numpy, no new text). Only a byte outside printable ASCII (``!`` to ``~``) at
    either end may be whitespace (a non-ASCII character's bytes are all >= 0x80), so (False, False) is exact: the
    column has no empty cell and nothing to strip. A column with nulls answers (True, True) (not looked at).
    ``space=False``: only empty cells are looked for, from the offsets alone (the second answer is False).

    Examples
    --------
    >>> _edges(pya.chunked_array([["a1", "b"], ["c"]])), _edges(pya.array(["a", ""])), _edges(pya.array(["a ", "é"]))
    ((False, False), (True, False), (False, True))
    >>> _edges(pya.array(["a ", ""]), space=False)
    (True, False)
    """
    chunks = arr.chunks if isinstance(arr, pya.ChunkedArray) else [arr]
    empty = found = False
    for c in chunks:
        if c.null_count:
            return True, True
        if not len(c):
            continue
        _, offsets, data = c.buffers()
        width = np.int64 if pya.types.is_large_string(c.type) else np.int32
        at = np.frombuffer(offsets, dtype=width, count=len(c) + 1, offset=c.offset * np.dtype(width).itemsize)
        start, end = at[:-1], at[1:]
        filled = end > start
        if not filled.all():
            empty = True
            if space and not found:
                start, end = start[filled], end[filled]
        if space and not found and len(start):
            data = np.frombuffer(data, dtype=np.uint8)
            first, last = data[start], data[end - 1]
            # a byte outside 0x21..0x7e (below 0x21, uint8 arithmetic wraps to above 0x5d)
            found = bool(((first - 0x21) > 0x5D).any() or ((last - 0x21) > 0x5D).any())
        if empty and (found or not space):
            break
    return empty, found


def _empty_to_null(arr):
    """Empty cells as null (no copy when no cell is empty)."""
    if not _edges(arr, space=False)[0]:
        return arr
    empty = pyc.equal(pyc.binary_length(arr), 0)
    return pyc.if_else(empty, None, arr) if pyc.any(empty).as_py() else arr


def _whitespace(arr, file, column, lines, out) -> pya.ChunkedArray:
    """The column with leading/trailing whitespace stripped (one warning if any was); a clean column is
    returned as it is (the trimmed copy is let go; a column whose cells all start and end with printable ASCII
    is not trimmed at all, see :func:`_edges`)."""
    if not _edges(arr)[1]:
        return arr
    trimmed = pyc.utf8_trim_whitespace(arr)
    changed = pyc.not_equal(pyc.binary_length(arr), pyc.binary_length(trimmed))
    n = pyc.sum(changed).as_py() or 0
    if not n:
        return arr
    first = pyc.index(changed, True).as_py()
    out.add(
        "warning",
        file,
        f"leading/trailing whitespace stripped ({n:,} {'cell' if n == 1 else 'cells'}; first shown)",
        column=column,
        line=line_of(lines, [first]),
        value=np.array([repr(arr[first].as_py())], dtype=object),
    )
    return trimmed


def _convert(arr: pya.ChunkedArray, c: Column, file: str, lines, out: ProblemCollector):
    """Parse one column. Returns (values as a pyarrow array, empty cells null; bad-type mask or None)."""
    if c.kind not in NUMERIC_KINDS:
        # large_string is what a pandas text column holds, so the frame shares these buffers (and their encoding);
        # read as such (no copy here) unless the crosswalk translated its codes
        return _empty_to_null(_whitespace(arr, file, c.name, lines, out)).cast(pya.large_string()), None
    nulled = _empty_to_null(arr)
    try:
        values = nulled.cast(pya.float64())
        if pyc.all(pyc.is_finite(values)).as_py() is False:
            raise ValueError("inf or nan")
        return values, None
    except (pya.ArrowInvalid, ValueError):
        pass
    trimmed = _whitespace(arr, file, c.name, lines, out)
    nulled = pyc.if_else(pyc.equal(trimmed, ""), None, trimmed)
    ok = pyc.match_substring_regex(nulled, NUMBER_RE)
    values = pyc.if_else(ok, nulled, None).cast(pya.float64())
    ok = pyc.and_kleene(ok, pyc.is_finite(values))  # e.g. 1e999
    values = pyc.if_else(ok, values, None)
    bad = pyc.fill_null(pyc.invert(ok), False).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(bad)
    text = pd.Series(trimmed.take(pya.array(rows)).to_pandas(), dtype="str")
    rule = {"int": "must be a whole number", "float": "must be a number"}.get(c.kind)
    if c.allowed is not None:
        rule = "must be one of: " + ", ".join(map(format_number, c.allowed))
    rules = np.where(text.str.upper().isin(NA_MARKERS), rule + " (leave missing values empty)", rule)
    out.add("error", file, rules, column=c.name, line=line_of(lines, rows), value=text)
    return values, bad


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


def _apply_codes(arr, mapping: dict, table: str, c: Column, file: str, lines, out: ProblemCollector):
    """Translate a district column's codes to the contract's; every value must be in the crosswalk.

    Returns (translated text array, mask of unmapped cells). Unmapped cells are errors naming the value,
    with the closest crosswalk code as a suggestion, and read as missing (not reported again as empty).
    """
    trimmed = pyc.utf8_trim_whitespace(arr)
    keys = pya.array(list(mapping), type=trimmed.type)
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
        out.add("error", file, rules, column=c.name, line=line_of(lines, rows), value=text)
    return translated, unmapped


def check_table(path: Path, t: Table, out: ProblemCollector, cw: Crosswalk | None = None):
    """Read, parse and check one table (through the crosswalk ``cw``, if any).

    Returns (parsed frame, line numbers or None, bad-number masks by column), or None if unreadable.
    Problems name the contract's file and columns; :func:`validate_district` relabels them with the
    district's own names afterwards.

    Examples
    --------
    >>> import tempfile
    >>> from opportunity_research.intake.contract import TABLES
    >>> from opportunity_research.intake.validation_report import ProblemCollector
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "schools.csv"
    ...     _ = p.write_text("school_id,school_name,school_level\\nS1,Oak,elementary\\nS2,Elm,college\\n")
    ...     out = ProblemCollector()
    ...     frame, lines, bad = check_table(p, TABLES["schools"], out)
    >>> len(frame), out.frame(["schools.csv"])[["line", "value", "rule"]].values.tolist()
    (2, [[3, 'college', 'must be one of: elementary, middle, high']])
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
    present = [c for c in t.columns if c in index]
    try:
        table, lines = _read_table(
            path,
            file,
            scan,
            ncols,
            out,
            include=[index[c] for c in present],
            large={index[c] for c in present if t.columns[c].kind not in NUMERIC_KINDS},
        )
    except (pya.ArrowInvalid, UnicodeDecodeError) as exc:
        out.add("error", file, f"could not be parsed as CSV: {str(exc).splitlines()[0][:120]}")
        return None
    if table.num_rows == 0:
        out.add(
            "error" if t.required else "warning",
            file,
            "has no data rows (header only)" if t.required else "optional table has no data rows",
        )
    raw = {name: table.column(i) for i, name in enumerate(present)}  # the file's text, only these columns
    del table
    data, bad_type = {}, {}
    for name in present:
        c = t.columns[name]
        arr, unmapped = raw[name], None
        if (t.name, name) in cw.codes:
            arr, unmapped = _apply_codes(arr, cw.codes[(t.name, name)], t.name, c, file, lines, out)
        data[name], bad_type[name] = _convert(arr, c, file, lines, out)
        del arr
        if unmapped is not None:
            bad_type[name] = unmapped if bad_type[name] is None else (bad_type[name] | unmapped)
        _rule_problems(name, data[name], t, raw[name], bad_type[name], lines, out)
        if name not in t.key:
            del raw[name]  # the file's text of a column is kept only while it may be quoted in a problem
    if t.key and set(t.key) <= set(data):
        _key_problems(data, t, raw, lines, out, reread=lambda: _read_table(path, file, scan, ncols, None)[0])
    del raw
    frame = pd.DataFrame({name: data.pop(name).to_pandas() for name in present}, columns=present, copy=False)
    return frame, lines, bad_type


def _rule_problems(name: str, values, t: Table, raw, bad, lines, out: ProblemCollector) -> None:
    """Check one column's rules (empty cells, allowed values, whole numbers, ranges) with pyarrow compute.

    ``values`` are the parsed cells (null = empty), ``raw`` the file's text of the column (quoted in the
    problems), ``bad`` the mask of cells already reported as not numbers (or None).
    """
    file = t.filename
    c = t.columns[name]
    if not c.nullable and values.null_count:
        empty = pyc.is_null(values).to_numpy(zero_copy_only=False)
        if bad is not None:
            empty = empty & ~bad  # non-empty cells that were not numbers: reported already
        rows = np.flatnonzero(empty)
        if len(rows):
            out.add("error", file, "must not be empty", column=name, line=line_of(lines, rows))
    for check, rule in column_checks(c):
        rows = failing_rows(check, values)
        if not len(rows):
            continue
        value = _raw_text(raw, rows)
        if c.allowed is not None and c.kind == "category":
            allowed = [str(a) for a in c.allowed]
            low = value.str.lower().isin(allowed) & ~value.isin(allowed)
            rule = np.where(low, rule + " (codes are lower case)", rule)
        out.add("error", file, rule, column=name, line=line_of(lines, rows), value=value)


def _key_problems(data: dict, t: Table, raw: dict, lines, out: ProblemCollector, reread) -> None:
    """Duplicate keys (every repeat of an earlier row's key whose key cells are all filled)."""
    key = list(t.key)
    # a one-column key with as many distinct values as rows (the usual case): no row codes needed
    if len(key) == 1 and _all_distinct(data[key[0]]):
        return
    codes = key_codes(data, key)
    if _codes_distinct(codes):
        return
    repeat = pd.Series(codes).duplicated(keep="first").to_numpy()
    if not repeat.any():
        return
    filled = np.ones(len(codes), dtype=bool)
    for k in key:
        filled &= pyc.is_valid(data[k]).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(repeat & filled)  # an empty key cell is reported already
    if len(rows):
        _duplicate_problems(codes, t, raw, rows, lines, out, reread())


def _all_distinct(values) -> bool:
    """Whether no value of the (chunked) Arrow array repeats (a null counts as a value).

    At once when the values are in strictly increasing order, as ids written in order are (a comparison of
    neighbours: 7.6 million response ids took 0.02 CPU-s, their hash table 3); else from ``unique`` (a null counts
    as a value) rather than ``count_distinct``, which took 12 CPU-s on 5M distinct texts to unique's 1.

    Examples
    --------
    >>> _all_distinct(pya.array(["a", "b", "c"])), _all_distinct(pya.array(["b", "a", "b"]))
    (True, False)
    >>> _all_distinct(pya.array(["b", "a"])), _all_distinct(pya.array(["a", None, None]))
    (True, False)
    """
    n = len(values)
    if n > 1 and values.null_count == 0:
        try:
            if pyc.all(pyc.less(values.slice(0, n - 1), values.slice(1))).as_py():
                return True
        except pya.ArrowNotImplementedError:  # no order on this type: counted below
            pass
    return len(pyc.unique(values)) == n


def _codes_distinct(codes: np.ndarray) -> bool:
    """True when no integer of ``codes`` repeats, found by marking each in a table of their range when it is narrow
    (no hash table: 9.5 million assessment keys); False when some may repeat (the caller looks for them).

    Examples
    --------
    >>> _codes_distinct(np.array([5, 3, 9])), _codes_distinct(np.array([5, 3, 5])), _codes_distinct(np.array([0, 2**40]))
    (True, False, False)
    """
    if not len(codes):
        return True
    lo, hi = int(codes.min()), int(codes.max())
    if hi - lo >= max(16 * len(codes), 1 << 20):  # a wide range: not marked here
        return False
    seen = np.zeros(hi - lo + 1, dtype=bool)
    seen[codes - lo] = True
    return int(np.count_nonzero(seen)) == len(codes)


def _raw_text(column, rows: np.ndarray) -> pd.Series:
    return pd.Series(pyc.utf8_trim_whitespace(column.take(pya.array(rows))).to_pandas(), dtype="str")


def _duplicate_problems(codes, t: Table, raw: dict, rows, lines, out: ProblemCollector, whole) -> None:
    """Duplicate keys; rows identical (in every column of the file, as text) to an earlier row are named as such."""
    key = list(t.key)
    in_group = np.flatnonzero(pd.Series(codes).duplicated(keep=False).to_numpy())
    every = whole.take(pya.array(in_group)).to_pandas()
    identical = set(in_group[every.duplicated(keep="first").to_numpy()].tolist())  # all columns, as text
    is_identical = np.isin(rows, np.fromiter(identical, dtype=np.int64, count=len(identical)))
    value = pd.Series([""] * len(rows), dtype="str")
    for i, k in enumerate(key):
        part = _raw_text(raw[k], rows)
        value = part if i == 0 else value + ", " + part
    keytext = ", ".join(key)
    rule = np.where(is_identical, "duplicate row (identical to an earlier row)", f"duplicate key ({keytext})")
    out.add("error", t.filename, rule, column=keytext, line=line_of(lines, rows), value=value)
