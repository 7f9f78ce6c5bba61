"""Months of learning: an effect in SD units as an *approximate* number of school months.

:func:`months_of_learning` computes effect / typical annual gain for the grade and subject x 9. The benchmark table (Hill, Bloom, Black &
Lipsey 2008, shipped as ``resources/annual_gains.csv``) is a replaceable input.
"""

from __future__ import annotations

from importlib import resources as _resources

import numpy as np
import pandas as pd

__all__ = ["MIN_ANNUAL_GAIN", "MONTHS_CAVEAT", "add_months_of_learning", "annual_gains", "months_of_learning"]


#: Sentence every report shows next to a months-of-learning figure.
MONTHS_CAVEAT = (
    "Months of learning are an approximation: the effect in standard deviations (for the growth "
    "models, the contrast between classrooms at the district's 75th and 25th percentiles of access) "
    "divided by a typical annual gain for the grade and subject (by default Hill, Bloom, Black & Lipsey "
    "2008, national norms), times 9 school months; not given where that gain is below 0.10 SD or the "
    "result would exceed one school year; the benchmark's own uncertainty is not included."
)
#: Smallest benchmark annual gain (SD) that months of learning are computed from.
MIN_ANNUAL_GAIN = 0.10
_SUBJECT_ALIASES = {
    "ela": "reading",
    "english": "reading",
    "english language arts": "reading",
    "reading": "reading",
    "math": "math",
    "mathematics": "math",
    "maths": "math",
}


def annual_gains(table: pd.DataFrame | str | None = None) -> pd.DataFrame:
    """The benchmark table of typical annual gains (SD units) by subject and grade.

    Parameters
    ----------
    table
        None for the default, Hill, Bloom, Black & Lipsey (2008), Table 1 (reading and math, national norms;
        ``resources/annual_gains.csv``); or a replacement DataFrame / CSV path with columns ``subject``,
        ``grade_to`` (the grade whose school year the gain covers) and ``annual_gain``, optionally ``source``.

    Returns
    -------
    DataFrame
        ``subject``, ``grade_from``, ``grade_to``, ``annual_gain``, ``source``.

    Examples
    --------
    >>> t = annual_gains()
    >>> sorted(t["subject"].unique()), list(t.columns)
    (['math', 'reading'], ['subject', 'grade_from', 'grade_to', 'annual_gain', 'source'])
    """
    if table is None:
        with _resources.files("opportunity_research").joinpath("resources/annual_gains.csv").open("r") as fh:
            t = pd.read_csv(fh, comment="#")
    elif isinstance(table, pd.DataFrame):
        t = table.copy()
    else:
        t = pd.read_csv(table, comment="#")
    missing = [c for c in ("subject", "grade_to", "annual_gain") if c not in t.columns]
    if missing:
        raise KeyError(
            f"annual gains table: missing column(s) {missing}; need subject, grade_to, annual_gain"
        )
    t["subject"] = t["subject"].astype(str).str.lower()
    if "grade_from" not in t.columns:
        t["grade_from"] = t["grade_to"] - 1
    if "source" not in t.columns:
        t["source"] = "user-supplied table"
    if (t["annual_gain"] <= 0).any():
        raise ValueError("annual gains table: every annual_gain must be positive")
    return t[["subject", "grade_from", "grade_to", "annual_gain", "source"]].reset_index(drop=True)


def _gain_lookup(grade, subject: str, table) -> np.ndarray:
    t = annual_gains(table)
    subj = _SUBJECT_ALIASES.get(str(subject).lower(), str(subject).lower())
    part = t[t["subject"] == subj]
    if part.empty:
        raise ValueError(
            f"no annual gains for subject {subject!r} (as {subj!r}); table subjects: "
            f"{sorted(t['subject'].unique())}"
        )
    lookup = part.set_index("grade_to")["annual_gain"]
    g = np.atleast_1d(np.asarray(grade))
    gains = pd.Series(g).map(lookup).to_numpy(dtype=float)
    if np.isnan(gains).any():
        bad = sorted(set(g[np.isnan(gains)].tolist()))
        raise ValueError(f"no annual gain for grade(s) {bad} in {subj}; table grades: {sorted(lookup.index)}")
    return gains


def months_of_learning(
    effect_sd,
    *,
    grade,
    subject: str,
    table: pd.DataFrame | str | None = None,
    months_per_year: float = 9,
    min_gain: float = MIN_ANNUAL_GAIN,
):
    """Approximate months of learning: ``effect_sd / annual_gain(grade, subject) * months_per_year``.

    An approximation (see :data:`MONTHS_CAVEAT`): the typical annual gain comes from national norms (by
    default Hill, Bloom, Black & Lipsey 2008, Table 1), not from the district, and its uncertainty is not
    carried into the figure. Linear in the effect, so interval bounds convert bound by bound.

    Parameters
    ----------
    effect_sd
        Effect(s) in SD units (scalar or array).
    grade
        The grade the students are in during the school year (scalar or array, broadcast with ``effect_sd``);
        grade 4 uses the 3-4 transition. Kindergarten is 0.
    subject
        ``"math"`` or ``"reading"`` (``"ela"`` and ``"english"`` map to reading), or a subject of ``table``.
    table
        Replacement benchmark (see :func:`annual_gains`).
    months_per_year
        School months in a year (9).
    min_gain
        Smallest annual gain converted (default 0.10 SD); below it the result is NaN (grade 12 math gains
        0.01 SD a year: 0.1 SD would read as 90 months).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> round(months_of_learning(0.10, grade=4, subject="ela"), 3)   # 0.10 / 0.36 * 9
    2.5
    >>> months_of_learning([0.052, 0.104], grade=4, subject="math").round(2).tolist()
    [0.9, 1.8]
    """
    eff = np.asarray(effect_sd, dtype=float)
    gains = _gain_lookup(grade, subject, table)
    gains = gains.reshape(np.shape(grade)) if np.ndim(grade) else gains[0]
    out = np.where(gains >= min_gain, eff / gains * months_per_year, np.nan)
    return float(out) if np.ndim(out) == 0 else out


def add_months_of_learning(
    table: pd.DataFrame,
    *,
    grade,
    subject: str,
    gains: pd.DataFrame | str | None = None,
    months_per_year: float = 9,
    columns=("estimate", "ci_lower", "ci_upper"),
    min_gain: float = MIN_ANNUAL_GAIN,
    max_months: float | None = None,
) -> pd.DataFrame:
    """Return a copy of ``table`` with months-of-learning columns for its estimate and interval bounds.

    Adds ``grade_used``, ``annual_gain``, ``months``, ``months_ci_lower``, ``months_ci_upper`` (from the
    columns named in ``columns``) and ``months_note`` (:data:`MONTHS_CAVEAT`, or why months are not given).
    ``grade`` may be a scalar or the name of a column of ``table``.

    Months are left missing ("n/a", with the reason in ``months_note``) where the benchmark annual gain is
    below ``min_gain`` SD (default 0.10: dividing by a near-zero gain, e.g. 0.01 SD in grade 12 math, turns
    any effect into years), and, with ``max_months``, where the estimate lies beyond that many months either
    way (the interval alone is dropped when only its bounds do): a conversion that large is outside what the
    benchmark can support.

    Examples
    --------
    >>> t = pd.DataFrame({"estimate": [0.05, 0.05], "ci_lower": [0.01, 0.01], "ci_upper": [0.09, 0.09],
    ...                   "grade": [4, 12]})
    >>> out = add_months_of_learning(t, grade="grade", subject="math")
    >>> out["months"].round(2).tolist(), out["months_note"].iloc[1][:4]
    ([0.87, nan], 'n/a:')
    """
    out = table.copy()
    g = out[grade].to_numpy() if isinstance(grade, str) and grade in out.columns else np.full(len(out), grade)
    gain = _gain_lookup(g, subject, gains) if len(out) else np.array([])
    out["grade_used"] = g
    out["annual_gain"] = gain
    vals = {}
    for src, dst in zip(columns, ("months", "months_ci_lower", "months_ci_upper")):
        vals[dst] = out[src].to_numpy(dtype=float) / gain * months_per_year
    note = np.full(len(out), MONTHS_CAVEAT, dtype=object)
    low = gain < min_gain
    note[low] = [
        f"n/a: the benchmark annual gain for grade {gr} ({ga:.2f} SD) is below {min_gain:.2f} SD, where "
        f"dividing by it would inflate any effect into implausible months"
        for gr, ga in zip(g[low], gain[low])
    ]
    drop_all = low.copy()
    drop_ci = low.copy()
    if max_months is not None:
        big = ~low & (np.abs(vals["months"]) > max_months)
        note[big] = (
            f"n/a: the effect converts to more than {max_months:g} months (one school year), beyond what "
            f"the benchmark conversion can support"
        )
        ci_big = (
            ~low
            & ~big
            & (
                (np.abs(vals["months_ci_lower"]) > max_months)
                | (np.abs(vals["months_ci_upper"]) > max_months)
            )
        )
        note[ci_big] = (
            MONTHS_CAVEAT + f" The interval is not converted: it extends beyond {max_months:g} months "
            f"(one school year)."
        )
        drop_all |= big
        drop_ci |= big | ci_big
    out["months"] = np.where(drop_all, np.nan, vals["months"])
    out["months_ci_lower"] = np.where(drop_ci, np.nan, vals["months_ci_lower"])
    out["months_ci_upper"] = np.where(drop_ci, np.nan, vals["months_ci_upper"])
    out["months_note"] = note
    return out
