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

from .. import config

__all__ = [
    "CROSS_DISTRICT",
    "PARAMETER_RULES",
    "RUNNER_PARAMETERS",
    "TemplateModified",
    "batch_parameters",
    "check_parameters",
    "check_template",
    "notebook_parameters",
    "parse_value",
]  # ParameterError: public through opportunity_research.batch.runner

#: Folder (under reports/) of the cross-district report; not a valid district id.
CROSS_DISTRICT = "cross_district"
#: Parameters the runner sets itself when the notebook declares them (``district_id`` and
#: ``output_dir`` must be declared by a district notebook).
RUNNER_PARAMETERS = ("district_id", "output_dir", "processed_dir", "raw_dir", "min_n", "seed")
DISTRICT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_UNKNOWN = object()


class ParameterError(ValueError):
    """The notebook's parameters cell is unusable, or parameters do not fit it."""


class TemplateModified(ParameterError):
    """A report template differs from its committed version in its parameters cell or its code.

    Examples
    --------
    >>> issubclass(TemplateModified, ParameterError)
    True
    """


def batch_parameters(declared: Mapping[str, dict], *runner: Mapping, options: Mapping | None = None) -> dict:
    """Every parameter the batch passes to a notebook: each analysis default of
    :data:`opportunity_research.config.ANALYSIS_DEFAULTS` the notebook declares, then the runner's own values
    (``runner``: district, folders, ``min_n``, ``seed`` when given), then the run's options (``options``).

    Nothing is left to the literal values of the notebook's ``parameters`` cell: a researcher's edit of them
    (or an autosave) cannot change what the batch publishes.

    Examples
    --------
    >>> declared = {"district_id": {}, "cuts": {"default": {"engaged": 9}}, "n_boot": {"default": 5}}
    >>> batch_parameters(declared, {"district_id": "demo_x"}, options={"n_boot": 200})
    {'cuts': {}, 'n_boot': 200, 'district_id': 'demo_x'}
    """
    params = {k: v for k, v in config.analysis_defaults().items() if k in declared}
    for given in runner:
        params.update(given)
    params.update(options or {})
    return params


def _code_cells(nb) -> list[tuple[str, str, bool]]:
    """What a notebook computes and states: (cell type, source, is the parameters cell) of every cell."""
    return [
        (c.cell_type, c.source.strip(), "parameters" in c.get("metadata", {}).get("tags", []))
        for c in nb.cells
    ]


def check_template(notebook: str | os.PathLike, root: str | os.PathLike | None = None) -> str | None:
    """Raise :class:`TemplateModified` if ``notebook`` is tracked by git and its cells (parameters cell, code or
    text; stored outputs and metadata do not count) differ from the committed version.

    The batch publishes what the committed template computes, never a researcher's exploratory edit of it
    (explore in a working copy: ``make lab`` opens ``notebooks/work/``). Returns ``"committed"`` when the
    template matches the commit, None when there is nothing to compare with (no git, or an untracked
    notebook such as a test's own). ``root`` is accepted for symmetry with the runner and not needed: the
    notebook's own git repository is used.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> nb = pathlib.Path(tempfile.mkdtemp()) / "mine.ipynb"  # untracked: nothing to compare with
    >>> _ = nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    >>> check_template(nb) is None
    True
    """
    import subprocess

    import nbformat

    path = Path(notebook).resolve()
    cwd = path.parent  # the notebook's own repository, wherever the run's root is
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if top.returncode != 0 or not path.is_relative_to(Path(top.stdout.strip()).resolve()):
            return None
        rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
        committed = subprocess.run(
            ["git", "show", f"HEAD:{rel}"], cwd=cwd, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if committed.returncode != 0:  # not tracked (or no commit yet): nothing to compare with
        return None
    now = _code_cells(nbformat.read(path, as_version=4))
    then = _code_cells(nbformat.reads(committed.stdout.decode("utf-8"), as_version=4))
    if now == then:
        return "committed"
    where = next((i for i, (a, b) in enumerate(zip(now, then)) if a != b), min(len(now), len(then)))
    what = (
        "its parameters cell"
        if where < len(now) and now[where][2] or where < len(then) and then[where][2]
        else f"cell {where + 1}"
    )
    raise TemplateModified(
        f"{rel} differs from the committed template ({what} was changed; {len(now)} cells now, {len(then)} "
        "committed). The batch publishes only what the committed template computes, so it does not run a "
        f"modified one. Explore in a working copy instead (make lab opens notebooks/work/), restore the "
        f"template with `git checkout -- {rel}`, or commit the change; pass --allow-modified-template to run it "
        "anyway (the reproducibility card then reports a modified working tree)."
    )


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
            problems.append(
                f"unknown parameter '{name}' (the notebook declares: {', '.join(sorted(declared))})"
            )
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
            problems.append(
                f"parameter '{name}' must be {kind}{shown}, got {type(value).__name__} {value!r}"[:300]
            )
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
