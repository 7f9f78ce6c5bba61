"""What the demo districts are made of and what the generator plants in them.

The make-up of each district (:class:`DistrictSpec`, :data:`DISTRICTS`, :data:`METRO`), the study's headline
figures the pooled demo is calibrated to (:data:`TARGETS`) and the planted effects. The generator itself is
:mod:`opportunity_research.synth.districts`; the module docstring there says what ``truth.json`` means.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..intake.contract import RACE_ETHNICITY

__all__ = [
    "ANALYSIS_YEAR",
    "BEHIND_EXTRA",
    "CLIMATE_EFFECTS",
    "DISTRICTS",
    "GRADES",
    "GROWTH_EFFECTS",
    "GROWTH_OTHER",
    "METRO",
    "POC",
    "RESOURCE_SLOPES",
    "TARGETS",
    "VAR_CLASSROOM",
    "VAR_SCHOOL",
    "DistrictSpec",
]

#: Headline figures of the study the pooled demo is calibrated to (domain brief, section 1).
TARGETS = {
    "grade_appropriate": 0.26,
    "strong_instruction": 0.16,
    "engaged": 0.55,
    "high_expectations": 0.44,
    "met_demands": 0.71,
    "met_grade_level": 0.17,
}
#: Planted growth effects (SD of spring score per unit of section-level access, 0-1).
GROWTH_EFFECTS = {
    "grade_appropriate": 0.20,
    "strong_instruction": 0.15,
    "engaged": 0.12,
    "high_expectations": 0.08,
}
#: Planted extra effect of access for students who started the year behind.
BEHIND_EXTRA = {
    "grade_appropriate": 0.15,
    "strong_instruction": 0.10,
    "engaged": 0.06,
    "high_expectations": 0.05,
}
GROWTH_OTHER = {
    "fall_z": 0.70,
    "started_behind": -0.05,
    "low_income": -0.04,
    "english_learner": -0.03,
    "disability": -0.05,
}
VAR_SCHOOL, VAR_CLASSROOM = 0.02, 0.03
ANALYSIS_YEAR = 2016
POC = [k for k in RACE_ETHNICITY if k != "white"]


@dataclass(frozen=True)
class DistrictSpec:
    """Make-up of one demo district.

    Examples
    --------
    >>> [s.district_id for s in DISTRICTS], round(sum(s.share for s in DISTRICTS), 6)
    (['demo_lakeside', 'demo_riverton', 'demo_hillcrest', 'demo_fairview', 'demo_pinebrook'], 1.0)
    >>> METRO.district_id, METRO.schools
    ('demo_metro', (3, 2, 2))
    """

    district_id: str
    letter: str
    share: float  # share of all demo students
    schools: tuple[int, int, int]  # elementary, middle, high
    poc_share: float
    poc_mix: tuple[float, ...]  # over POC categories, in RACE_ETHNICITY order (minus white)
    low_income_base: float  # logit intercept
    segregation: float  # SD of school-level logit shift of poc share
    resource_shift: float  # district logit shift of all resources
    climate: bool = True
    prior_years: int = 4
    trajectory_changing_school: int | None = None  # index among the district's schools


DISTRICTS = (
    DistrictSpec(
        "demo_lakeside",
        "L",
        0.375,
        (3, 2, 2),
        0.72,
        (0.50, 0.01, 0.07, 0.35, 0.01, 0.06),
        0.6,
        0.9,
        -0.15,
        trajectory_changing_school=3,
    ),
    DistrictSpec(
        "demo_riverton", "R", 0.25, (2, 1, 1), 0.55, (0.62, 0.02, 0.10, 0.20, 0.01, 0.05), 0.1, 0.7, 0.0
    ),
    DistrictSpec(
        "demo_hillcrest", "H", 0.1875, (1, 1, 1), 0.45, (0.35, 0.01, 0.25, 0.30, 0.02, 0.07), -0.2, 0.5, 0.25
    ),
    DistrictSpec(
        "demo_fairview", "F", 0.1125, (1, 1, 1), 0.25, (0.40, 0.05, 0.15, 0.25, 0.01, 0.14), -0.6, 0.3, 0.1
    ),
    DistrictSpec(
        "demo_pinebrook",
        "P",
        0.075,
        (1, 1, 0),
        0.85,
        (0.30, 0.00, 0.02, 0.62, 0.00, 0.06),
        0.9,
        0.2,
        -0.1,
        climate=False,
        prior_years=0,
    ),
)
GRADES = {"elementary": (3, 4, 5), "middle": (6, 7, 8), "high": (9, 10, 11, 12)}
# Section-level logit slopes: share of students of colour, share low income, mean prior z.
RESOURCE_SLOPES = {
    "grade_appropriate": (-1.5, -1.5, 0.8, 1.0),  # (poc, low income, prior achievement, section SD)
    "strong_instruction": (-1.2, -3.2, 0.6, 0.8),
    "engaged": (-0.4, -0.3, 0.2, 0.4),
    "high_expectations": (-0.6, -0.6, 0.8, 0.5),
}
CLIMATE_EFFECTS = {  # scale: (mean latent, low_income, english_learner, disability, poc)
    "belonging": (3.55, -0.25, -0.15, -0.20, -0.20),
    "consistency": (3.45, -0.15, -0.10, -0.10, -0.15),
    "coherence": (3.65, -0.10, -0.20, -0.15, -0.05),
}


#: The one large district of ``synthesize --districts 1``: Lakeside's make-up (urban, segregated, a planted
#: trajectory-changing school), holding every student; schools scale with the number of students.
METRO = DistrictSpec(
    "demo_metro",
    "M",
    1.0,
    (3, 2, 2),
    0.72,
    (0.50, 0.01, 0.07, 0.35, 0.01, 0.06),
    0.6,
    0.9,
    -0.15,
    trajectory_changing_school=3,
)
