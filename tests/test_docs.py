"""Every public function and class of the package has a numpydoc Examples section, run as a doctest by
`make test` (`pytest --doctest-modules opportunity_research`).

Public: the names in a module's ``__all__`` (without one: the names not starting with ``_``) that are functions
or classes defined in that module. Every module is checked except those in :data:`PENDING_MODULES`, which
still have public names without an example; the list only shrinks (a pending module that is complete fails
:func:`test_pending_modules_are_still_pending`, so it is taken off the list).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import opportunity_research

#: Modules with public names still without an Examples section. Shrink it; never grow it.
PENDING_MODULES: set[str] = set()
#: Examples that do not run as doctests (``# doctest: +SKIP``), as {module: reason}. Shrink it; never grow it.
SKIPPED_EXAMPLES: dict[str, str] = {
    # screenshots() needs a built report and waits 5 s for Chromium's PDF viewer (``make screenshots`` runs it)
    "report.browser": "screenshots",
}

MODULES = sorted(
    m.name.removeprefix("opportunity_research.")
    for m in pkgutil.walk_packages(opportunity_research.__path__, "opportunity_research.")
)


def _public(module: str):
    mod = importlib.import_module(f"opportunity_research.{module}")
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    for name in names:
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
            yield f"{module}.{name}", obj


def _missing(module: str) -> list[str]:
    out = []
    for name, obj in _public(module):
        doc = inspect.getdoc(obj) or ""
        if "Examples\n--------" not in doc or ">>>" not in doc:
            out.append(name)
    return out


@pytest.mark.parametrize("module", [m for m in MODULES if m not in PENDING_MODULES])
def test_public_functions_have_examples(module):
    assert _missing(module) == []


def test_examples_run():
    """Every example runs as a doctest: ``+SKIP`` only where :data:`SKIPPED_EXAMPLES` says why."""
    root = Path(opportunity_research.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        n = path.read_text(encoding="utf-8").count("doctest: +SKIP")
        if n:
            found[".".join(path.relative_to(root).with_suffix("").parts)] = n
    assert set(found) <= set(SKIPPED_EXAMPLES), sorted(set(found) - set(SKIPPED_EXAMPLES))
    assert set(SKIPPED_EXAMPLES) <= set(found), "an allowed skip is gone: take it off SKIPPED_EXAMPLES"


def test_pending_modules_are_still_pending():
    """A pending module whose public names all have examples comes off :data:`PENDING_MODULES`."""
    done = sorted(m for m in PENDING_MODULES if m in MODULES and not _missing(m))
    assert done == []
    assert PENDING_MODULES <= set(MODULES), PENDING_MODULES - set(MODULES)


def test_report_of_missing_examples():
    """The package-wide report: every public name without an example (printed with ``pytest -s``)."""
    missing = {m: _missing(m) for m in sorted(PENDING_MODULES)}
    report = "\n".join(
        f"{m}: {len(v)} ({', '.join(n.split('.')[-1] for n in v)})" for m, v in missing.items()
    )
    total = sum(len(v) for v in missing.values())
    print(f"{total} public names without an Examples section:\n{report}")
    assert all(missing.values())
