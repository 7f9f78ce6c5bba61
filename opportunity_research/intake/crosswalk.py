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

``opportunity-research init`` drafts a crosswalk for an export (:mod:`opportunity_research.intake.draft`).

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

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .contract import TABLES, Column

__all__ = [
    "CHOOSE",
    "CROSSWALK_FILE",
    "Crosswalk",
    "load_crosswalk",
    "normalize_name",
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
        return _Node(
            [
                (k.value if isinstance(k, yaml.ScalarNode) else None, k.start_mark.line + 1, _plain(v))
                for k, v in node.value
            ],
            line,
        )
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
            problems.append(
                (
                    "error",
                    line,
                    where,
                    key,
                    (f"listed twice (first on line {out[key].line}); the two mappings collide: keep one"),
                )
            )
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
        return (
            f"maps to '{value}', which is not a contract code; {c.name} must be one of: "
            + ", ".join(map(str, c.allowed))
            + suggest(value, c.allowed)
        )
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
        problems.append(
            (
                "error",
                None,
                None,
                None,
                ("must be a regular file in the district folder (not a link, folder or pipe); not read"),
            )
        )
        return cw, problems
    try:
        text = path.read_text(encoding="utf-8-sig")
        root = yaml.compose(text, Loader=yaml.BaseLoader)
    except UnicodeDecodeError:
        problems.append(("error", None, None, None, "not valid UTF-8 text; save it as UTF-8"))
        return cw, problems
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(
            (
                "error",
                mark.line + 1 if mark else None,
                None,
                None,
                f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            )
        )
        return cw, problems
    if root is None:
        return cw, problems
    top = _pairs(_plain(root), "(top level)", problems)
    for key, node in top.items():
        if key not in _SECTIONS:
            problems.append(
                (
                    "error",
                    node.line,
                    "(top level)",
                    key,
                    "unknown section; the sections are files, columns and codes" + suggest(key, _SECTIONS),
                )
            )
    tables = list(TABLES)
    if "files" in top:
        seen: dict[str, str] = {}
        for table, node in _pairs(top["files"], "files", problems).items():
            value = _scalar(node, "files", table, problems)
            if table not in TABLES:
                problems.append(
                    ("error", node.line, "files", table, "unknown contract table" + suggest(table, tables))
                )
            elif value is None:
                continue
            elif value == CHOOSE or value == "":
                problems.append(
                    (
                        "error",
                        node.line,
                        "files",
                        table,
                        (
                            "no file chosen yet: name the district's "
                            f"file for {table}, or delete the line if the district has none"
                        ),
                    )
                )
            elif "/" in value or "\\" in value or value in (".", ".."):
                problems.append(
                    (
                        "error",
                        node.line,
                        "files",
                        table,
                        (f"'{value}' must be a file name in the district folder, not a path"),
                    )
                )
            elif value.lower() in seen:
                problems.append(
                    (
                        "error",
                        node.line,
                        "files",
                        table,
                        (
                            f"'{value}' is already the file of "
                            f"{seen[value.lower()]}; two tables cannot share a file"
                        ),
                    )
                )
            else:
                seen[value.lower()] = table
                cw.files[table] = value
        taken = {TABLES[t].filename.lower(): t for t in TABLES if t not in cw.files}
        for table, value in cw.files.items():
            other = taken.get(value.lower())
            if other is not None:
                problems.append(
                    (
                        "error",
                        top["files"].line,
                        "files",
                        table,
                        (
                            f"'{value}' is the contract file "
                            f"name of {other}, which is not mapped elsewhere; map {other} to its own file"
                        ),
                    )
                )
    if "columns" in top:
        for table, node in _pairs(top["columns"], "columns", problems).items():
            if table not in TABLES:
                problems.append(
                    ("error", node.line, "columns", table, "unknown contract table" + suggest(table, tables))
                )
                continue
            where = f"columns.{table}"
            mapping, used = {}, {}
            for col, cnode in _pairs(node, where, problems).items():
                value = _scalar(cnode, where, col, problems)
                if col not in TABLES[table].columns:
                    problems.append(
                        (
                            "error",
                            cnode.line,
                            where,
                            col,
                            f"unknown column of {table}" + suggest(col, TABLES[table].columns),
                        )
                    )
                elif value is None:
                    continue
                elif value == CHOOSE or value == "":
                    problems.append(
                        (
                            "error",
                            cnode.line,
                            where,
                            col,
                            (
                                "no district column chosen yet: name it, or "
                                "delete the line if the contract column is optional and absent"
                            ),
                        )
                    )
                elif value in used:
                    problems.append(
                        (
                            "error",
                            cnode.line,
                            where,
                            col,
                            (
                                f"district column '{value}' is already "
                                f"mapped to {used[value]}; one district column feeds one contract column"
                            ),
                        )
                    )
                else:
                    used[value] = col
                    mapping[col] = value
            if mapping:
                cw.columns[table] = mapping
    if "codes" in top:
        for key, node in _pairs(top["codes"], "codes", problems).items():
            table, _, col = key.partition(".")
            if table not in TABLES:
                problems.append(
                    (
                        "error",
                        node.line,
                        "codes",
                        key,
                        "must be '<table>.<column>' with a contract table" + suggest(table, tables),
                    )
                )
                continue
            if col not in TABLES[table].columns:
                problems.append(
                    (
                        "error",
                        node.line,
                        "codes",
                        key,
                        f"unknown column of {table}" + suggest(col, TABLES[table].columns),
                    )
                )
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
                    problems.append(
                        (
                            "error",
                            vnode.line,
                            where,
                            dv,
                            (f'no contract value chosen yet{allowed} (or "" to read it as missing)'),
                        )
                    )
                    continue
                rule = _value_rule(c, value)
                if rule:
                    problems.append(("error", vnode.line, where, dv, rule))
                    continue
                mapping[dv] = value
            if mapping:
                cw.codes[(table, col)] = mapping
    return cw, problems
