"""opportunity-research: Opportunity Myth-style equity analysis on a school district's own data.

The most used entry points are importable from the package itself::

    from opportunity_research import analyze_district, load_district, gap_table, fit_growth_model

Every name is imported from its module on first use, so ``import opportunity_research`` stays light (about 0.3 s:
the command line, each batch worker and each notebook kernel import the package, and most of them need only part
of it; ``scipy.stats`` alone takes 0.9 s).
"""

from __future__ import annotations

from .config import use_arrow_pool, use_small_pages

use_arrow_pool()  # before any table is read (see config.ARROW_POOL)
use_small_pages()  # before any large array is made (see config.use_small_pages)

from .version import __version__ as __version__

#: Names imported from their modules on first use: name -> module (relative to this package).
_LAZY = {
    "District": ".intake.dataset",
    "load_district": ".intake.dataset",
    "process_district": ".intake.dataset",
    "ValidationFailed": ".intake.validation",
    "validate_district": ".intake.validation",
    "mixedlm_check": ".stats.checks",
    "ols_cluster_check": ".stats.checks",
    "gap_table": ".stats.gaps",
    "hedges_g": ".stats.gaps",
    "ConvergenceError": ".stats.models",
    "GrowthModelResult": ".stats.models",
    "fit_growth_model": ".stats.models",
    "hetop": ".stats.ordinal",
    "v_statistic": ".stats.ordinal",
    "e_value": ".stats.sensitivity",
    "ovb_bounds": ".stats.sensitivity",
    "partial_r2": ".stats.sensitivity",
    "robustness_value": ".stats.sensitivity",
    "StudyModels": ".study.growth",
    "fit_study_models": ".study.growth",
    "annual_gains": ".study.months",
    "months_of_learning": ".study.months",
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
