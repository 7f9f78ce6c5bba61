"""opportunity-research: Opportunity Myth-style equity analysis on a school district's own data.

The most used entry points are importable from the package itself::

    from opportunity_research import load_district, gap_table, fit_growth_model
"""

from __future__ import annotations

__version__ = "0.1.0"

from .intake.dataset import District, load_district, process_district
from .intake.validation import ValidationFailed, validate_district
from .stats.gaps import gap_table, hedges_g
from .stats.models import (
    ConvergenceError,
    GrowthModelResult,
    StudyModels,
    annual_gains,
    fit_growth_model,
    fit_study_models,
    mixedlm_check,
    months_of_learning,
    ols_cluster_check,
)

__all__ = [
    "ConvergenceError",
    "District",
    "GrowthModelResult",
    "StudyModels",
    "ValidationFailed",
    "annual_gains",
    "fit_growth_model",
    "fit_study_models",
    "gap_table",
    "hedges_g",
    "load_district",
    "mixedlm_check",
    "months_of_learning",
    "ols_cluster_check",
    "process_district",
    "validate_district",
]
