"""Notebook parameters for the batch: what a notebook declares, and whether given parameters fit it.

Part of the batch runner (:mod:`opportunity_research.batch.runner`): every district's parameters are checked here
before anything runs; a district with bad parameters is not run and nothing of it is touched.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["CROSS_DISTRICT", "PARAMETER_RULES", "RUNNER_PARAMETERS", "check_parameters", "notebook_parameters",
           "parse_value"]  # ParameterError: public through opportunity_research.batch.runner

#: Folder (under reports/) of the cross-district report; not a valid district id.
CROSS_DISTRICT = "cross_district"
#: Parameters the runner sets itself when the notebook declares them (``district_id`` and
#: ``output_dir`` must be declared by a district notebook).
RUNNER_PARAMETERS = ("district_id", "output_dir", "processed_dir", "raw_dir", "min_n", "seed")
DISTRICT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_UNKNOWN = object()


class ParameterError(ValueError):
    """The notebook's parameters cell is unusable, or parameters do not fit it."""


# ---------------------------------------------------------------------------------------------
# Parameters


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, dict]:
    """The parameters a notebook declares: name -> ``{"default": value, "type": name or None}``.

    ``default`` is the literal default (``ast.literal_eval`` of the cell text; absent when it is
    not a literal) and ``type`` the annotation or ``# type:`` comment papermill read, if any.

    Raises
    ------
    ParameterError
        If the notebook has no cell tagged ``parameters`` or more than one.
    FileNotFoundError
        If the notebook does not exist.

    Examples
    --------
    >>> from opportunity_research import config
    >>> declared = notebook_parameters(config.project_root() / "notebooks" / "district_report.ipynb")
    >>> "district_id" in declared and "output_dir" in declared
    True
    """
    import nbformat
    import papermill

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook {notebook} not found")
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ParameterError(f"{path.name}: needs exactly one cell tagged 'parameters' (found {len(tagged)})")
    out = {}
    for name, p in papermill.inspect_notebook(str(path)).items():
        entry: dict = {"type": None if p["inferred_type_name"] in ("None", None) else p["inferred_type_name"]}
        try:
            entry["default"] = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError, TypeError):
            pass
        out[name] = entry
    return out


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "tuple": tuple}


def _expected(spec: dict):
    """(python type or None, None allowed) from a parameter's annotation or default."""
    t = spec.get("type")
    if t:
        t = t.replace(" ", "")
        m = re.fullmatch(r"(?:Optional\[(\w+)\]|(\w+)\|None|None\|(\w+))", t)
        if m:
            return _TYPES.get(next(g for g in m.groups() if g)), True
        base = re.match(r"\w+", t)
        if base and base.group(0) in _TYPES:
            return _TYPES[base.group(0)], False
    if "default" not in spec or spec["default"] is None:
        return None, True
    return type(spec["default"]), False


def _type_ok(value, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


def _subjects_rule(value) -> str | None:
    from ..intake.contract import SUBJECTS_TESTED

    if isinstance(value, str):
        return f"must be a list of subjects, e.g. [{value!r}]"
    bad = [s for s in value if s not in SUBJECTS_TESTED]
    if bad:
        return f"{bad[0]!r} is not a tested subject (allowed: {', '.join(SUBJECTS_TESTED)})"
    if not value:
        return "needs at least one subject"
    if len(set(value)) != len(value):
        return "lists a subject twice"
    return None


def _at_least(low: int) -> Callable[[object], str | None]:
    def rule(value):
        return None if value >= low else f"must be at least {low}"
    return rule


def _district_rule(value) -> str | None:
    if not DISTRICT_ID.match(value) or value == CROSS_DISTRICT:
        return f"'{value}' is not a valid district id (letters, digits, '_' and '-'; not '{CROSS_DISTRICT}')"
    return None


#: Allowed values of the parameters the package's notebooks share, by name: a function of a
#: (correctly typed) value returning None or what is wrong. Checked by :func:`check_parameters` only for
#: names the notebook declares.
PARAMETER_RULES: dict[str, Callable[[object], str | None]] = {
    "subjects": _subjects_rule,
    "min_n": _at_least(1),
    "n_boot": _at_least(0),
    "seed": _at_least(0),
    "district_id": _district_rule,
}


def check_parameters(parameters: Mapping, declared: Mapping[str, dict]) -> list[str]:
    """Problems with ``parameters`` for a notebook declaring ``declared`` (empty list: all fine).

    Unknown names are problems; so is a value whose type differs from the declared default's
    (an int is accepted for a float; a default of None accepts anything; list items are checked
    against the default's items when those all share one type), and a value that
    :data:`PARAMETER_RULES` does not allow (a subject that is not tested, ``min_n`` below 1, ...).

    Examples
    --------
    >>> declared = {"min_n": {"default": 10, "type": None}, "subjects": {"default": ["ela"], "type": None}}
    >>> for problem in check_parameters({"min_n": "10", "subject": ["math"], "subjects": ["science"]}, declared):
    ...     print(problem)
    parameter 'min_n' must be int (the notebook's default is 10), got str '10'
    unknown parameter 'subject' (the notebook declares: min_n, subjects)
    parameter 'subjects': 'science' is not a tested subject (allowed: ela, math)
    """
    problems = []
    for name, value in parameters.items():
        if name not in declared:
            problems.append(f"unknown parameter '{name}' (the notebook declares: {', '.join(sorted(declared))})")
            continue
        spec = declared[name]
        expected, none_ok = _expected(spec)
        default = spec.get("default", _UNKNOWN)
        shown = "" if default is _UNKNOWN else f" (the notebook's default is {default!r})"
        if value is None:
            if not none_ok:
                problems.append(f"parameter '{name}' cannot be None{shown}")
            continue
        if expected is None:
            continue
        if not _type_ok(value, expected):
            kind = expected.__name__ + (" or None" if none_ok else "")
            problems.append(f"parameter '{name}' must be {kind}{shown}, got {type(value).__name__} {value!r}"[:300])
            continue
        if isinstance(default, (list, tuple)) and default and isinstance(value, (list, tuple)):
            item_types = {type(x) for x in default}
            if len(item_types) == 1:
                (it,) = item_types
                bad = [x for x in value if not _type_ok(x, it)]
                if bad:
                    problems.append(f"parameter '{name}': items must be {it.__name__}, got {bad[0]!r}")
                    continue
        rule = PARAMETER_RULES.get(name)
        problem = rule(value) if rule is not None else None
        if problem:
            problems.append(f"parameter '{name}': {problem}"[:300])
    return problems


def parse_value(text: str):
    """A ``--param`` value: JSON, else a Python literal, else the text itself.

    Examples
    --------
    >>> parse_value("2017"), parse_value('["math"]'), parse_value("None"), parse_value("lakeside")
    (2017, ['math'], None, 'lakeside')
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
