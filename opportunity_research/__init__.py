"""opportunity-research: Opportunity Myth-style equity analysis on a school district's own data.

The most used entry points are importable from the package itself::

    from opportunity_research import load_district, gap_table, fit_growth_model
"""

from __future__ import annotations

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

__all__ = [
    "ConvergenceError",
    "District",
    "GrowthModelResult",
    "StudyModels",
    "ValidationFailed",
    "annual_gains",
    "e_value",
    "fit_growth_model",
    "fit_study_models",
    "gap_table",
    "hedges_g",
    "hetop",
    "load_district",
    "mixedlm_check",
    "months_of_learning",
    "ols_cluster_check",
    "ovb_bounds",
    "partial_r2",
    "process_district",
    "robustness_value",
    "v_statistic",
    "validate_district",
]
