"""One disclosure regime (issue 22): statistics compute complete tables; only the joint pass hides cells."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pandas as pd
import pytest

import opportunity_research.stats
import opportunity_research.study

#: The analysis entry points take ``min_n`` as the setting of the disclosure pass they end with (the
#: notebook's parameter), not to hide anything themselves.
DISCLOSURE_SETTING = {
    "opportunity_research.study.analysis.unprotected_analysis",
    "opportunity_research.study.analysis.unprotected_level_counts",
}


def _functions(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj):
                for mname, meth in vars(obj).items():
                    # a dataclass's generated __init__ takes its fields: records of the setting used (an
                    # analysis' or a scorecard's min_n), which hide nothing
                    if inspect.isfunction(meth) and not (
                        dataclasses.is_dataclass(obj) and mname == "__init__"
                    ):
                        yield f"{module.__name__}.{name}.{mname}", meth


@pytest.mark.parametrize("package", [opportunity_research.stats, opportunity_research.study])
def test_no_statistics_function_takes_min_n(package):
    found = [q for q, f in _functions(package) if "min_n" in inspect.signature(f).parameters]
    assert sorted(set(found) - DISCLOSURE_SETTING) == []
    assert len(list(_functions(package))) > 20  # the walk does find the functions


def test_the_walk_would_see_a_min_n_parameter():
    def leaky(table, *, min_n=10):
        return table

    assert "min_n" in inspect.signature(leaky).parameters
    names = {q for q, _ in _functions(opportunity_research.study)}
    assert DISCLOSURE_SETTING <= names


def test_the_old_suppression_module_is_gone():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("opportunity_research.stats.suppression")
    from opportunity_research.stats import estimates

    assert not hasattr(estimates, "suppress_small_cells")


def test_statistics_tables_are_complete():
    """A group of 3 students is shown by the statistics; hiding it is the disclosure pass's job."""
    from opportunity_research.disclosure.joint import protect_table
    from opportunity_research.stats.gaps import gap_table

    df = pd.DataFrame({"y": [1.0, 0.0] * 30 + [1.0, 1.0, 0.0], "g": ["a"] * 60 + ["b"] * 3})
    t = gap_table(df, outcome="y", group="g", n_boot=0)
    assert t["n"].tolist() == [60, 3] and not t["suppressed"].any()
    assert t["estimate"].notna().all()
    p = protect_table(t.assign(measure="grade_appropriate", subject="ela"), "gaps", min_n=10)
    assert p["suppressed"].all() and p["n"].isna().all()
