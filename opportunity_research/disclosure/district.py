"""The protected entry points of a district's analysis: what notebooks, the command line and the explorer call.

:func:`analyze_district` (``opportunity_research.analyze_district``) runs
:func:`opportunity_research.study.analysis.unprotected_analysis`, whose complete tables are never published or
displayed, and then the joint disclosure pass (:func:`opportunity_research.disclosure.joint.protect_district`) over
everything the district publishes. :func:`analyze_level_counts` does the same for a district that brings only
counts by performance level. So the study layer never imports the disclosure layer, and the only analysis a report
receives from the package's public functions has passed the disclosure pass.

Examples
--------
>>> a = demo_analysis("demo_pinebrook")  # its smallest race/ethnicity groups are published as one pooled group
>>> a.disclosure.passed, a.disclosure.pooled_groups[0], "suppressed" in a.gaps.columns
(True, 'race_ethnicity=asian', True)
"""

from __future__ import annotations

import copy

from .. import config
from ..study import analysis
from . import joint

__all__ = ["analyze_district", "analyze_level_counts", "demo_analysis"]


def analyze_district(
    district_id: str,
    *,
    processed_dir: str | None = None,
    subjects=("ela", "math"),
    min_n: int = config.MIN_CELL_SIZE,
    reference: dict | None = None,
    cuts: dict | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    pool_below: int | None = None,
) -> analysis.DistrictAnalysis:
    """Run every analysis of the district report on a processed district; every table protected.

    :func:`opportunity_research.study.analysis.unprotected_analysis` computes the complete tables, then
    :func:`opportunity_research.disclosure.joint.protect_district` decides suppression over everything the district
    publishes, builds the scorecard from the protected indicators and records its audit in ``disclosure``.

    Parameters
    ----------
    district_id, processed_dir
        Which district, and the processed root (default ``data/processed``).
    subjects
        Tested subjects to analyse (``"ela"``, ``"math"``).
    min_n
        Smallest reported cell (students).
    reference
        ``{variable: level}`` named reference groups for the gap tables, e.g. ``{"race_ethnicity": "white"}``
        (default: each group against all other students).
    cuts
        Cut points overriding TNTP's defaults (see :data:`opportunity_research.study.measures.CUT_POINTS`):
        ``grade_appropriate`` (4 of 6), ``strong_instruction`` (2 of 3), ``engaged`` (8 of 12),
        ``high_expectations_current`` (12 of 20), ``high_expectations_old`` (18 of 30).
    n_boot, seed
        Cluster-bootstrap replicates and seed of the gap intervals.
    pool_below
        Race/ethnicity groups smaller than this (students in the district) are pooled into one published
        group (:func:`~opportunity_research.study.analysis.pool_small_groups`; default ``2 * min_n``).

    Raises
    ------
    ValueError
        If an option is unusable (:func:`~opportunity_research.study.analysis.check_analysis_options`).
    DisclosureError
        When the disclosure audit cannot be satisfied.

    Examples
    --------
    >>> a = analyze_district("demo_pinebrook", cuts={"grade_appropriate": 5}, n_boot=20)
    >>> a.cuts["grade_appropriate"], a.rates.loc[0, "resource"], a.disclosure.passed
    (5, 'grade_appropriate', True)
    """
    a, indicators = analysis.unprotected_analysis(
        district_id,
        processed_dir=processed_dir,
        subjects=subjects,
        min_n=min_n,
        reference=reference,
        cuts=cuts,
        n_boot=n_boot,
        seed=seed,
        pool_below=pool_below,
    )
    return joint.protect_district(a, indicators=indicators)


_DEMO: dict[tuple, analysis.DistrictAnalysis] = {}


def demo_analysis(
    district_id: str = "demo_pinebrook", *, processed_dir: str | None = None
) -> analysis.DistrictAnalysis:
    """The protected analysis of a demonstration district with 20 bootstrap replicates, for examples and quick looks.

    :func:`analyze_district` with the report's settings except ``n_boot=20`` (faster intervals); computed once per
    process and district, and returned as a copy, so a caller cannot change what the next one gets. Only for the
    synthetic ``demo_*`` districts (``make data process`` builds them): a real district's analysis is not kept in
    memory.

    Raises
    ------
    ValueError
        If ``district_id`` is not a demonstration district.

    Examples
    --------
    >>> a = demo_analysis()
    >>> a.district.district_id, a.disclosure.passed, demo_analysis() is a
    ('demo_pinebrook', True, False)
    """
    if not str(district_id).startswith("demo_"):
        raise ValueError(f"demo_analysis: {district_id!r} is not a demonstration district (demo_*)")
    key = (district_id, str(config.resolve(processed_dir)) if processed_dir else None)
    if key not in _DEMO:
        _DEMO[key] = analyze_district(district_id, processed_dir=processed_dir, n_boot=20)
    return copy.deepcopy(_DEMO[key])


def analyze_level_counts(
    district_id: str, *, processed_dir: str | None = None, min_n: int = config.MIN_CELL_SIZE
) -> analysis.LevelCountsAnalysis:
    """V gaps and HETOP means of a district from its ``level_counts`` table (no student-level data needed).

    Both tables pass the joint disclosure control (:func:`opportunity_research.disclosure.joint.protect_tables`,
    specs ``level_gaps`` and ``level_means``) before they are returned; ``min_n`` is the publishing boundary's
    smallest cell.

    Raises
    ------
    ValueError
        If the district has no ``level_counts`` table.

    Examples
    --------
    A district that brings only ``schools.csv`` and ``level_counts.csv`` (two schools, one subject and year, students
    by family income and performance level), processed into a temporary folder:

    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> from opportunity_research.intake.dataset import process_district
    >>> from opportunity_research.study.levelgaps import LEVEL_COUNT_COLUMNS
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> raw = root / "raw" / "counts_only"
    >>> raw.mkdir(parents=True)
    >>> pd.DataFrame({"school_id": ["S1", "S2"], "school_name": ["Oak", "Pine"], "school_level": "elementary"}
    ...              ).to_csv(raw / "schools.csv", index=False)
    >>> low, other = {"S1": [40, 45, 25, 10], "S2": [30, 40, 30, 15]}, {"S1": [15, 35, 45, 25], "S2": [10, 30, 50, 30]}
    >>> pd.DataFrame([(s, "math", 2016, g, lv + 1, n) for s in ("S1", "S2") for lv in range(4)
    ...               for g, n in (("all", low[s][lv] + other[s][lv]), ("low_income=1", low[s][lv]),
    ...                            ("low_income=0", other[s][lv]))],
    ...              columns=list(LEVEL_COUNT_COLUMNS)).to_csv(raw / "level_counts.csv", index=False)
    >>> _ = process_district(raw, processed_root=root / "processed", key="0123456789abcdef")
    >>> a = analyze_level_counts("counts_only", processed_dir=str(root / "processed"))
    >>> a.gaps[["group", "level", "v", "v_ci_lower", "v_ci_upper"]].round(2)
            group level     v  v_ci_lower  v_ci_upper
    0  low_income     0  0.67        0.47        0.86
    1  low_income     1 -0.67       -0.86       -0.47
    """
    counts, gaps, means, names = analysis.unprotected_level_counts(district_id, processed_dir=processed_dir)
    year = int(counts["school_year"].max()) if len(counts) else None
    protected, report = joint.protect_tables(
        {
            "level_gaps": (gaps, joint.DISTRICT_SPECS["level_gaps"]),
            "level_means": (means, joint.DISTRICT_SPECS["level_means"]),
        },
        min_n=min_n,
        year=year,
    )
    if not report.passed:
        raise joint.DisclosureError(
            f"disclosure audit failed for {district_id}", [f[0] for f in report.failures]
        )
    return analysis.LevelCountsAnalysis(
        district_id=district_id,
        counts=counts,
        gaps=protected["level_gaps"],
        means=protected["level_means"],
        schools=names,
        disclosure=report,
    )
