"""Every public function and class of the modules listed here has a numpydoc Examples section, run as a
doctest by `make test` (`pytest --doctest-modules opportunity_research`). Extend MODULES as modules gain
examples."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ("config", "intake.contract", "intake.crosswalk", "intake.draft", "intake.dataset", "intake.validation", "report.explore")
#: Public names still without an example (owned by work in progress elsewhere).
PENDING: set[str] = set()


def _public(module):
    mod = importlib.import_module(f"opportunity_research.{module}")
    for name in mod.__all__:
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
            yield f"{module}.{name}", obj


@pytest.mark.parametrize("module", MODULES)
def test_public_functions_have_examples(module):
    missing = [name for name, obj in _public(module)
               if name not in PENDING and ("Examples\n--------" not in (inspect.getdoc(obj) or "")
                                           or ">>>" not in inspect.getdoc(obj))]
    assert missing == []
