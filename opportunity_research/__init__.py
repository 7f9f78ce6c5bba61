"""opportunity-research: Opportunity Myth-style equity analysis on a school district's own data.

The most used entry points are importable from the package itself::

    from opportunity_research import analyze_district, load_district, gap_table, fit_growth_model

``analyze_district``, ``key_findings``, ``protect_tables`` and ``Explorer`` are imported on first use (they pull
in the whole analysis, disclosure and display stack), so ``import opportunity_research`` stays light.
"""

from __future__ import annotations

from .config import use_arrow_pool, use_small_pages

use_arrow_pool()  # before any table is read (see config.ARROW_POOL)
use_small_pages()  # before any large array is made (see config.use_small_pages)

from .intake.dataset import District, load_district, process_district
from .intake.validation import ValidationFailed, validate_district
from .stats.checks import mixedlm_check, ols_cluster_check
from .stats.gaps import gap_table, hedges_g
from .stats.models import ConvergenceError, GrowthModelResult, fit_growth_model
from .stats.ordinal import hetop, v_statistic
from .stats.sensitivity import e_value, ovb_bounds, partial_r2, robustness_value
from .study.growth import StudyModels, fit_study_models
from .study.months import annual_gains, months_of_learning
from .version import __version__ as __version__

#: Names imported from their modules on first use: name -> module (relative to this package).
_LAZY = {
    "DistrictAnalysis": ".study.analysis",
    "analyze_district": ".disclosure.district",
    "key_findings": ".study.analysis",
    "findings_json": ".study.analysis",
    "protect_district": ".disclosure.joint",
    "protect_tables": ".disclosure.joint",
    "explore_gaps": ".report.explore",
    "Explorer": ".report.explore",
    "processed_districts": ".report.explore",
    "run_batch": ".batch.runner",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opportunity_research' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ConvergenceError",
    "District",
    "DistrictAnalysis",
    "Explorer",
    "GrowthModelResult",
    "StudyModels",
    "ValidationFailed",
    "analyze_district",
    "annual_gains",
    "e_value",
    "explore_gaps",
    "findings_json",
    "fit_growth_model",
    "fit_study_models",
    "gap_table",
    "hedges_g",
    "hetop",
    "key_findings",
    "load_district",
    "mixedlm_check",
    "months_of_learning",
    "ols_cluster_check",
    "ovb_bounds",
    "partial_r2",
    "process_district",
    "processed_districts",
    "protect_district",
    "protect_tables",
    "robustness_value",
    "run_batch",
    "v_statistic",
    "validate_district",
]
