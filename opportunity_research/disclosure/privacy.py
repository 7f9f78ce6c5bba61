"""The privacy screen run on every report before it is published.

:func:`screen_outputs` scans what a district's report would share -- the executed notebook, the
HTML report, ``findings.json`` and ``tables/*.csv`` -- for three kinds of leak:

``student_id`` / ``pseudonym``
    A raw identifier from the district's export (students and teachers) or a pseudonym made from it
    (any ``S-`` / ``T-`` followed by 16 hex digits counts, known or not). Identifiers are matched as
    whole tokens with a set lookup, so the scan is linear in the text whatever the number of ids.
``absolute_path``
    A local absolute path: the project root, the home folder, ``/home/...``, ``/Users/...``,
    ``/root/...``, ``/tmp/...``, ``C:\\...`` or ``file://``.
``small_cell``
    A count below the minimum cell size that is not flagged suppressed: in CSV tables and in
    ``findings.json``, any column or key named ``n``, ``n_*`` or ``*_n`` with ``0 < n < min_n`` on a
    row (record) whose ``suppressed`` flag is not true; in HTML tables (the report, and HTML outputs
    in the notebook), a whole number below ``min_n`` in a column headed like that (or "students",
    "number of students", "count") on a row with no cell marked ``class="suppressed"``.

The screen checks each published count on its own; whether hidden cells can be recovered from
everything published together is the disclosure audit's job
(:func:`opportunity_research.disclosure.joint.audit_report_folder`, run by the batch right after this screen).

A :class:`ScreenHit` never contains the leaked value itself, only where it is, so the list can be
printed, logged and written to the manifest. :func:`redact` cleans free text (error messages) the
same way before it goes anywhere shared.

Limits: figures (PNG pixels) are not read; identifiers shorter than ``min_id_length`` characters are
not searched (they would match ordinary numbers) and a warning says how many were skipped.

Examples
--------
>>> from opportunity_research.disclosure.privacy import redact
>>> redact("duplicate student_id L0000123 in /home/ana/export/students.csv", ids={"L0000123"})
'duplicate student_id [id] in [path]/students.csv'
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from .identifiers import Identifiers

__all__ = ["PSEUDONYM_PATTERN", "ScreenHit", "is_count_column", "redact", "screen_outputs", "screen_text"]

#: Pseudonyms written by :func:`opportunity_research.intake.dataset.pseudonymize`.
PSEUDONYM_PATTERN = re.compile(r"(?<![0-9A-Za-z])[ST]-[0-9a-fA-F]{16}(?![0-9A-Za-z])")
# Absolute paths that are never acceptable in a shared output, whatever the machine.
_GENERIC_PATH = re.compile(
    r"(?<![\w.~/-])/(?:home|Users|root|tmp|private|mnt|media)/[^\s\"'<>]*"
    r"|(?<![A-Za-z])[A-Za-z]:\\\\?[A-Za-z0-9_ .$-][^\s\"'<>]*"
    r"|file://[^\s\"'<>]*"
)
#: Text every match of ``_GENERIC_PATH`` contains: a text holding none of these has none (no regex scan needed).
_GENERIC_PATH_NEEDS = tuple(f"/{d}/" for d in ("home", "Users", "root", "tmp", "private", "mnt", "media")) + (
    ":\\",
    "file://",
)
# Identifiers are matched as tokens: compound tokens (alphanumeric parts joined by - _ . /) and every
# contiguous run of their parts, so 'x-2019-001' holds the id '2019-001' and 'L0000123-L0000124' two ids.
_TOKEN = re.compile(r"[0-9A-Za-z]+(?:[-_./][0-9A-Za-z]+)*")
_PART = re.compile(r"[0-9A-Za-z]+")
# Base64 payloads (embedded images) are not text a reader sees; they are skipped.
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
_COUNT_COLUMN = re.compile(r"^(n|n_\w+|\w+_n)$")


@dataclass(frozen=True)
class ScreenHit:
    """One problem found by the screen. Never holds the leaked value.

    Attributes
    ----------
    file
        The file's name relative to the scanned report folder (or as given).
    kind
        ``"student_id"``, ``"pseudonym"``, ``"absolute_path"`` or ``"small_cell"``.
    location
        Where in the file: ``"cells[7].outputs[0].text"``, ``"line 120"``, ``"row 3, column n"``.
    detail
        A description that is safe to share.

    Examples
    --------
    >>> found = screen_text("student L0000123 was absent", student_ids={"L0000123"}, file="report.html")
    >>> print(found[0])
    report.html: student_id at text (1 identifier(s) from the district's export)
    """

    file: str
    kind: str
    location: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind} at {self.location} ({self.detail})"


#: Counts of units other than students (``n_schools``, ``n_classrooms``, ...) are not screened.
_OTHER_UNITS = re.compile(r"school|classroom|cluster|teacher|item|goal|year|assignment|observation|response")


def is_count_column(name: str) -> bool:
    """Whether a column or key names a count of students: ``n``, ``n_*`` or ``*_n``, except counts of other
    units (schools, classrooms, clusters, teachers, items, goals, years, assignments, observations, responses).

    Examples
    --------
    >>> is_count_column("n"), is_count_column("n_students"), is_count_column("reference_n"), is_count_column("n_schools")
    (True, True, True, False)
    """
    name = str(name)
    return bool(_COUNT_COLUMN.match(name)) and not _OTHER_UNITS.search(name)


def _spans(token: str, max_parts: int = 6):
    """(start, end) of the token and of every contiguous run of up to ``max_parts`` of its parts."""
    parts = [m.span() for m in _PART.finditer(token)]
    if len(parts) > max_parts:
        yield 0, len(token)
    for i in range(len(parts)):
        for j in range(i, min(i + max_parts, len(parts))):
            yield parts[i][0], parts[j][1]


class _Matcher:
    """Finds identifiers and local paths in text; built once per screen."""

    def __init__(self, ids: Iterable[str] | Identifiers, paths: Iterable[str], min_id_length: int = 5):
        ids = ids if isinstance(ids, Identifiers) else Identifiers(ids)
        # an identifier found in a text has all its parts among the text's parts: its last one is its key, and a
        # text none of whose parts is a key holds no identifier (most lines of a report: no token-by-token scan)
        self.ids, self.keys, self.skipped = ids.lookups(min_id_length)
        known = sorted(
            {str(p).rstrip("/\\") for p in paths if len(str(p).rstrip("/\\")) > 1}, key=len, reverse=True
        )
        self.known_paths = (
            re.compile("(?<![\\w.-])(?:" + "|".join(map(re.escape, known)) + ")(?![\\w-])") if known else None
        )
        self.known = tuple(known)  # a text holding none of them has no match of known_paths

    def id_spans(self, text: str) -> list[tuple[int, int]]:
        """Non-overlapping spans of known identifiers (casefolded comparison), longest first."""
        if not self.ids or not self.keys.holds_word(text):
            return []
        out = []
        for m in _TOKEN.finditer(text):
            tok, base = m.group(0).casefold(), m.start()
            hits = sorted(((a, b) for a, b in _spans(tok) if tok[a:b] in self.ids), key=lambda s: s[0] - s[1])
            taken: list[tuple[int, int]] = []
            for a, b in hits:
                if all(b <= c or a >= d for c, d in taken):
                    taken.append((a, b))
            out += [(base + a, base + b) for a, b in taken]
        return sorted(out)

    def path_spans(self, text: str) -> list[tuple[int, int]]:
        # each pattern is searched only in a text that holds a string every match of it contains (the same
        # spans: the scans of a report's pages and notebook for a path that is not there were most of the
        # screen's time)
        spans = (
            [m.span() for m in self.known_paths.finditer(text)]
            if self.known_paths and any(p in text for p in self.known)
            else []
        )
        if any(p in text for p in _GENERIC_PATH_NEEDS):
            spans += [
                m.span()
                for m in _GENERIC_PATH.finditer(text)
                if all(m.end() <= a or m.start() >= b for a, b in spans)
            ]
        return sorted(spans)


def _default_paths(root: str | os.PathLike | None) -> list[str]:
    paths = [str(Path.home()), tempfile.gettempdir(), sys.prefix, sys.base_prefix]
    if root is not None:
        paths.append(str(Path(root).resolve()))
    return [p for p in paths if p not in ("/", "")]


def screen_text(
    text: str,
    *,
    student_ids: Iterable[str] = (),
    root: str | os.PathLike | None = None,
    paths: Iterable[str] = (),
    min_id_length: int = 5,
    file: str = "<text>",
    location: str = "text",
) -> list[ScreenHit]:
    """Screen one piece of text for identifiers and absolute paths (see the module docstring).

    Examples
    --------
    >>> found = screen_text("L0000123 in /home/ana/export/students.csv", student_ids={"L0000123"})
    >>> [(x.kind, x.location) for x in found]
    [('student_id', 'text'), ('absolute_path', 'text')]
    """
    m = _Matcher(student_ids, [*_default_paths(root), *paths], min_id_length)
    return _screen_string(text, m, file, location)


def _screen_string(text: str, m: _Matcher, file: str, location: str) -> list[ScreenHit]:
    out = []
    text = _DATA_URI.sub("data:", text)
    if n := len(m.id_spans(text)):
        out.append(ScreenHit(file, "student_id", location, f"{n} identifier(s) from the district's export"))
    # every pseudonym holds "S-" or "T-": a text with neither has none (no regex scan: a quarter of the screen's
    # time on a million-student district's tables)
    if ("S-" in text or "T-" in text) and (n := len(PSEUDONYM_PATTERN.findall(text))):
        out.append(ScreenHit(file, "pseudonym", location, f"{n} pseudonymized identifier(s)"))
    if n := len(m.path_spans(text)):
        out.append(ScreenHit(file, "absolute_path", location, f"{n} absolute local path(s)"))
    return out


def _walk(obj, where: str):
    """Yield (location, string) for every string in a JSON structure, skipping embedded images."""
    if isinstance(obj, str):
        yield where, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).startswith("image/") and not str(k).endswith("svg+xml"):
                continue
            yield from _walk(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, list):
        # notebook text is a list of lines: screen it joined, so tokens split over lines are not missed
        if obj and all(isinstance(x, str) for x in obj):
            yield where, "".join(obj)
        else:
            for i, v in enumerate(obj):
                yield from _walk(v, f"{where}[{i}]")


def _screen_notebook(path: Path, m: _Matcher, file: str, min_n: int) -> list[ScreenHit]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for where, text in _walk(nb, ""):
        out += _screen_string(text, m, file, where)
        if where.endswith(".text/html") and "<table" in text:
            out += _small_cells_html(text, min_n, file, f"{where} ")
    return out


class _Tables(HTMLParser):
    """Collects the rows of every HTML table: (cell texts, whether a cell is marked suppressed)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[tuple[list[str], bool]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._marked = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self._row, self._marked = [], False
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            cls = dict(attrs).get("class") or ""
            self._marked |= "suppressed" in cls.split()

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append((self._row, self._marked))
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


_COUNT_LABELS = {"students", "number_of_students", "count"}
_INTEGER = re.compile(r"^\d{1,3}(?:,\d{3})*$|^\d+$")


def _small_cells_html(text: str, min_n: int, file: str, where: str) -> list[ScreenHit]:
    """Unsuppressed counts below ``min_n`` in HTML tables whose header names a count column.

    A count column is headed ``n``, ``n_*``, ``*_n`` (any case, spaces as ``_``), "students",
    "number of students" or "count"; only whole numbers are read (shares and means are not counts).
    Rows with a cell of class ``suppressed``, or a ``suppressed`` column saying true, are skipped.
    """
    parser = _Tables()
    parser.feed(text)
    out = []
    for t, rows in enumerate(parser.tables, start=1):
        if not rows:
            continue
        header = [re.sub(r"[^a-z0-9]+", "_", h.lower()).strip("_") for h in rows[0][0]]
        counts = [i for i, h in enumerate(header) if h and (is_count_column(h) or h in _COUNT_LABELS)]
        flag = header.index("suppressed") if "suppressed" in header else None
        bad = []
        for r, (cells, marked) in enumerate(rows[1:], start=1):
            if marked or (
                flag is not None and flag < len(cells) and cells[flag].lower() in ("true", "1", "yes")
            ):
                continue
            for i in counts:
                v = cells[i] if i < len(cells) else ""
                if _INTEGER.match(v) and 0 < int(v.replace(",", "")) < min_n:
                    bad.append(r)
                    break
        if bad:
            shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
            out.append(
                ScreenHit(
                    file,
                    "small_cell",
                    f"{where}table {t}, row(s) {shown}",
                    f"{len(bad)} unsuppressed count(s) below {min_n}",
                )
            )
    return out


def _screen_lines(text: str, m: _Matcher, file: str) -> list[ScreenHit]:
    text = _DATA_URI.sub("data:", text)
    # no identifier, pseudonym or path crosses a line break, so a clean text is clean line by line: screened
    # whole first, line by line only to say where when something was found
    if not _screen_string(text, m, file, "text"):
        return []
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        out += _screen_string(line, m, file, f"line {i}")
    return out


def _small_cells_frame(df: pd.DataFrame, min_n: int, file: str, where: str) -> list[ScreenHit]:
    cols = [c for c in df.columns if is_count_column(c)]
    if not cols:
        return []
    if "suppressed" in df.columns:
        flag = df["suppressed"].astype("string").str.strip().str.lower().isin(["true", "1", "1.0", "yes"])
    else:
        flag = pd.Series(False, index=df.index)
    out = []
    for c in cols:
        v = pd.to_numeric(df[c], errors="coerce")
        bad = (v > 0) & (v < min_n) & ~flag.to_numpy()
        rows = np.flatnonzero(bad.fillna(False).to_numpy())
        if len(rows):
            shown = ", ".join(str(r + 1) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
            out.append(
                ScreenHit(
                    file,
                    "small_cell",
                    f"{where}column {c}, row(s) {shown}",
                    f"{len(rows)} unsuppressed count(s) below {min_n}",
                )
            )
    return out


def _small_cells_json(obj, min_n: int, file: str, where: str = "") -> list[ScreenHit]:
    out = []
    if isinstance(obj, dict):
        suppressed = obj.get("suppressed")
        count_keys = [k for k in obj if is_count_column(k)]
        lists = {k: obj[k] for k in count_keys if isinstance(obj[k], list)}
        if lists:  # column-oriented table: {"n": [...], "suppressed": [...]}
            frame = {k: v for k, v in obj.items() if isinstance(v, list)}
            if len({len(v) for v in frame.values()}) == 1:
                out += _small_cells_frame(pd.DataFrame(frame), min_n, file, f"{where} " if where else "")
        if suppressed is not True and suppressed not in (1, "true", "True"):
            for k in count_keys:
                v = obj[k]
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < min_n:
                    out.append(
                        ScreenHit(
                            file,
                            "small_cell",
                            f"{where}.{k}" if where else k,
                            f"unsuppressed count below {min_n}",
                        )
                    )
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and k not in lists:
                out += _small_cells_json(v, min_n, file, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, (dict, list)):
                out += _small_cells_json(v, min_n, file, f"{where}[{i}]")
    return out


def screen_outputs(
    paths: Iterable[str | os.PathLike],
    *,
    student_ids: Iterable[str] = (),
    min_n: int = 10,
    root: str | os.PathLike | None = None,
    base: str | os.PathLike | None = None,
    extra_paths: Iterable[str] = (),
    min_id_length: int = 5,
) -> list[ScreenHit]:
    """Screen report files for identifiers, absolute paths and unsuppressed small cells.

    Parameters
    ----------
    paths
        Files to scan; folders are scanned recursively. ``.ipynb`` files are read as JSON (every
        string: sources, outputs, metadata; embedded images skipped); ``.html``, ``.json``, ``.csv``,
        ``.txt`` and ``.md`` files as text, line by line; ``.csv`` tables and ``.json`` files are also
        checked for small cells. Other files (PNG figures) are not read.
    student_ids
        Raw identifiers and pseudonyms of the district's students (and teachers): see the module notes.
    min_n
        Minimum cell size.
    root
        Project root; its absolute path counts as a leak, as do the home folder, the temp folder
        and the Python installation.
    base
        Folder that ``ScreenHit.file`` names are given relative to (default: each file's parent).
    extra_paths
        Other absolute paths that must not appear.
    min_id_length
        Identifiers shorter than this are not searched (a warning says how many).

    Returns
    -------
    list of ScreenHit
        Empty when the outputs are clean.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "gaps.csv").write_text("group,level,n,estimate\\nell,1,3,0.5\\nell,0,40,0.4\\n")
    >>> for x in screen_outputs([folder / "gaps.csv"], base=folder):
    ...     print(x)
    gaps.csv: small_cell at column n, row(s) 1 (1 unsuppressed count(s) below 10)
    """
    m = _Matcher(student_ids, [*_default_paths(root), *extra_paths], min_id_length)
    if m.skipped:
        warnings.warn(
            f"privacy screen: {m.skipped} identifier(s) shorter than {min_id_length} characters "
            "were not searched (they would match ordinary numbers)",
            stacklevel=2,
        )
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    out: list[ScreenHit] = []
    for f in files:
        name = f.relative_to(base).as_posix() if base is not None and f.is_relative_to(base) else f.name
        suffix = f.suffix.lower()
        if suffix == ".ipynb":
            out += _screen_notebook(f, m, name, min_n)
        elif suffix in (".html", ".htm", ".json", ".csv", ".txt", ".md"):
            text = f.read_text(encoding="utf-8", errors="replace")
            out += _screen_lines(text, m, name)
            if suffix in (".html", ".htm"):
                out += _small_cells_html(text, min_n, name, "")
            elif suffix == ".csv" and text.strip():
                df = pd.read_csv(io.StringIO(text), dtype="str", keep_default_na=False)
                out += _small_cells_frame(df, min_n, name, "")
            elif suffix == ".json":
                out += _small_cells_json(json.loads(text), min_n, name)
    return out


def redact(
    text: str,
    *,
    ids: Iterable[str] = (),
    root: str | os.PathLike | None = None,
    paths: Iterable[str] = (),
    min_id_length: int = 5,
) -> str:
    """Replace identifiers by ``[id]`` and absolute paths by ``[path]`` in free text (error messages).

    Paths under the project ``root`` become relative (``<root>/data/raw/x`` -> ``data/raw/x``); other
    absolute paths become ``[path]`` followed by their last component, so messages stay useful.

    Examples
    --------
    >>> redact("duplicate student_id L0000123 in /home/ana/export/students.csv", ids={"L0000123"})
    'duplicate student_id [id] in [path]/students.csv'
    """
    if root is not None:
        r = str(Path(root).resolve())
        text = text.replace(r + os.sep, "").replace(r, ".")
    text = PSEUDONYM_PATTERN.sub("[id]", text)
    m = _Matcher(ids, [*_default_paths(None), *paths], min_id_length)

    def sub(text, spans, repl):
        for a, b in reversed(spans):
            text = text[:a] + repl(text[a:b]) + text[b:]
        return text

    text = sub(text, m.id_spans(text), lambda s: "[id]")
    return sub(
        text,
        m.path_spans(text),
        lambda s: "[path]" + (("/" + re.split(r"[/\\]", s)[-1]) if re.split(r"[/\\]", s)[-1] else ""),
    )
