"""One indicator table per district: every headline number once, with its interval, n and definition.

The report's first screen, the board summary (``summary.html``), the index and ``findings.json``
(``indicators``) all render from :func:`indicator_table`, so a number cannot read differently on two
pages (the rows come from the protected tables that are published as CSV files, unchanged): each row carries the number as printed (``value_text``), its own 95% interval
(``interval_text``, the interval *of that number*: a ratio's interval under a ratio, a contrast's under
the contrast) and what its ``n`` counts. Two measures that differ in definition have different names
and a ``definition`` line saying how (e.g. the report's catch-up a year later vs the scorecard's catch-up
within three years; the share of rated evidence vs the average student's share).

Ranking by what students lose
    Every row has ``hours_lost``: class hours a year per subject (of :data:`config.HOURS_PER_SUBJECT`
    when present, else 180) that the number stands for. A resource share ``s``: ``(1 - s) x 180`` hours
    without it. A gap of ``d`` points between groups: ``|d| x 180`` hours fewer than the comparison group.
    A growth effect worth ``m`` months of learning: ``m x 180 / 9`` hours (one school month of a 180-hour
    subject). The board summary ranks its findings by this figure, counting only numbers whose interval
    excludes no difference (so an uncertain gap never outranks a clear one). It is a rough common currency,
    documented as such on the page, not a statistic.

Nothing here computes a statistic: values come from the protected analysis tables (suppressed rows are
never indicators).
"""

from __future__ import annotations

import pandas as pd

from ..intake.contract import ALL_OTHERS
from ..study import labels
from .tables import is_missing

__all__ = ["HOURS", "INDICATOR_FIELDS", "STUDY", "fmt_interval", "fmt_value", "indicator_table"]

#: Class hours a year per core subject (the study's 180).
HOURS = 180.0
#: School months in a year (months of learning).
MONTHS = 9.0

#: The Opportunity Myth's published figures (TNTP 2018): a national baseline of how much students get.
STUDY = {
    "grade_appropriate": 0.26,
    "strong_instruction": 0.16,
    "engaged": 0.55,
    "high_expectations": 0.44,
    "met_demands": 0.71,
    "met_grade_level": 0.17,
}

#: Columns of the indicator table, in order.
INDICATOR_FIELDS = (
    "indicator",
    "kind",
    "name",
    "definition",
    "unit",
    "value",
    "ci_lower",
    "ci_upper",
    "n",
    "n_counts",
    "n_reference",
    "subject",
    "population",
    "year",
    "study",
    "hours_lost",
    "clear",
    "value_text",
    "interval_text",
    "n_text",
    "measure",
    "group",
    "level",
    "estimate",
    "reference_estimate",
    "reference_label",
    "months",
    "months_ci_lower",
    "months_ci_upper",
)


def _num(v, digits: int) -> str:
    return labels.number(v, digits)


def fmt_value(unit: str, v) -> str:
    """A value as every page prints it (``unit``: share, points, ratio, sd, grade_levels, months).

    Examples
    --------
    >>> fmt_value("ratio", 3.6), fmt_value("points", -0.121), fmt_value("share", 0.0956)
    ('3.6×', '−12.1', '10%')
    """
    if is_missing(v):
        return labels.MISSING
    if unit == "share":
        return labels.percent(v)
    if unit == "points":
        return labels.points(v)
    if unit == "ratio":
        return f"{float(v):.1f}×"
    if unit == "sd":
        return _num(v, 2)
    if unit == "grade_levels":
        return _num(v, 2)
    if unit == "months":
        return _num(v, 1)
    return str(v)


def fmt_interval(unit: str, lo, hi) -> str:
    """The 95% interval as printed (``"15% to 23%"``; a ratio's bounds without the ``×``).

    Examples
    --------
    >>> fmt_interval("share", 0.0687, 0.1316), fmt_interval("ratio", 2.0, 6.6)
    ('7% to 13%', '2.0 to 6.6')
    """
    if is_missing(lo) or is_missing(hi):
        return labels.MISSING
    if unit == "ratio":
        return f"{float(lo):.1f} to {float(hi):.1f}"
    return f"{fmt_value(unit, lo)} to {fmt_value(unit, hi)}"


def _clear(lo, hi, ref: float) -> bool:
    return not (is_missing(lo) or is_missing(hi)) and not (float(lo) <= ref <= float(hi))


def _row(**kw) -> dict:
    row = dict.fromkeys(INDICATOR_FIELDS)
    row.update(kw)
    unit = row["unit"]
    row["value_text"] = fmt_value(unit, row["value"])
    row["interval_text"] = fmt_interval(unit, row["ci_lower"], row["ci_upper"])
    n = labels.count(row["n"])
    if not is_missing(row.get("n_reference")):
        n = f"{n} vs {labels.count(row['n_reference'])}"
    row["n_text"] = f"{n} {row['n_counts']}"
    return row


def _reference(group: str, reference) -> str:
    if is_missing(reference) or str(reference) in (ALL_OTHERS, "nan", ""):
        return labels.ALL_OTHERS_LABEL
    return labels.level_phrase(group, reference)


def indicator_table(a) -> pd.DataFrame:
    """The district's published indicators (one row each), from a protected ``DistrictAnalysis``.

    Rows: the share of evidence with each resource and the two work-sample shares (beside the study's
    baseline); per resource, the largest gap between a student group and the students it is compared with;
    per resource, mostly higher- vs mostly low-income classrooms (a ratio with the ratio's own interval);
    per subject, the clearest growth effect of access as the 25th -> 75th percentile contrast with the months
    of learning converted from that same contrast; the catch-up rate a year later (latest cohort); and the
    scorecard's district-wide measures for all students, under their own names.

    Returns
    -------
    DataFrame
        Columns :data:`INDICATOR_FIELDS`. ``value``/``ci_lower``/``ci_upper`` at full precision; the
        ``*_text`` columns as every page prints them; ``hours_lost`` and ``clear`` (the interval excludes
        the point of comparison) for ranking.

    Examples
    --------
    >>> ind = indicator_table(example_analysis())
    >>> ind[["indicator", "value_text", "interval_text", "n_text"]].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [['share.strong_instruction', '10%', '7% to 13%', '481 observed lessons'],
     ['work.met_grade_level', '12%', '10% to 15%', '8,064 work samples'],
     ['gap.grade_appropriate', '−12.1', '−17.8 to −6.4', '806 vs 694 students'],
     ['income_ratio.strong_instruction', '3.6×', '2.0 to 6.6', '26 vs 96 classrooms'],
     ['growth.math', '0.06', '0.00 to 0.12', '1,500 students']]
    """
    from ..study.measures import analysis_year

    year = labels.school_year(analysis_year(a.district)) if getattr(a, "district", None) is not None else ""
    rows: list[dict] = []
    rates = a.rates[a.rates["subject"] == "all"] if "subject" in a.rates.columns else a.rates
    for r in rates.itertuples():
        if is_missing(r.estimate):
            continue
        unit_word = labels.UNITS.get(r.resource, "pieces of evidence")
        rows.append(
            _row(
                indicator=f"share.{r.resource}",
                kind="resource",
                name=labels.measure(r.resource),
                definition=f"Share of rated {unit_word} with the resource, all classrooms pooled.",
                unit="share",
                value=r.estimate,
                ci_lower=r.ci_lower,
                ci_upper=r.ci_upper,
                n=r.n,
                n_counts=unit_word,
                subject="all",
                population="all classrooms",
                year=year,
                study=STUDY.get(r.resource),
                hours_lost=(1 - float(r.estimate)) * HOURS,
                clear=True,
                measure=r.resource,
                estimate=r.estimate,
            )
        )
    for r in a.demands.itertuples() if len(a.demands) else ():
        if is_missing(r.estimate):
            continue
        rows.append(
            _row(
                indicator=f"work.{r.measure}",
                kind="work",
                name=labels.measure(r.measure),
                definition="Share of scored student work samples.",
                unit="share",
                value=r.estimate,
                ci_lower=r.ci_lower,
                ci_upper=r.ci_upper,
                n=r.n,
                n_counts="work samples",
                subject="all",
                population="all students",
                year=year,
                study=STUDY.get(r.measure),
                hours_lost=(1 - float(r.estimate)) * HOURS if r.measure == "met_grade_level" else 0.0,
                clear=True,
                measure=r.measure,
                estimate=r.estimate,
            )
        )
    g = a.gaps
    if len(g):
        g = g[~g["suppressed"].astype(bool) & g["difference"].notna() & g["ci_upper"].notna()]
        g = g.assign(_clear=g["ci_upper"] < 0)
        for measure, part in g.groupby("measure", sort=False):
            # the largest shortfall whose interval excludes no difference; else the largest shortfall
            part = part.sort_values(["_clear", "difference"], ascending=[False, True])
            r = part.iloc[0]
            if r["difference"] >= 0:
                continue
            who = labels.level(r["group"], r["level"])
            rows.append(
                _row(
                    indicator=f"gap.{measure}",
                    kind="gap",
                    name=f"{labels.measure(measure)}: {who} ({labels.subject(r['subject'])})",
                    definition=(
                        "Difference in percentage points between the group's share of its classrooms' "
                        "evidence with the resource and the share for the students it is compared with."
                    ),
                    unit="points",
                    value=r["difference"],
                    ci_lower=r["ci_lower"],
                    ci_upper=r["ci_upper"],
                    n=r["n"],
                    n_reference=r.get("reference_n"),
                    n_counts="students",
                    subject=r["subject"],
                    population=who,
                    year=year,
                    hours_lost=-float(r["difference"]) * HOURS,
                    clear=bool(r["_clear"]),
                    measure=measure,
                    group=r["group"],
                    level=str(r["level"]),
                    estimate=r["estimate"],
                    reference_estimate=r["reference_estimate"],
                    reference_label=_reference(r["group"], r["reference"]),
                )
            )
    comp = getattr(a, "composition", None)
    if comp is not None and len(comp) and "ratio_ci_lower" in comp.columns:
        c = comp[
            ~comp["suppressed"].astype(bool)
            & comp["measure"].isin(list(STUDY))
            & comp["ratio"].notna()
            & comp["group"].eq("majority_low_income")
            & comp["level"].astype(str).isin(["0", "0.0"])
        ]
        for r in c.to_dict("records"):
            rows.append(
                _row(
                    indicator=f"income_ratio.{r['measure']}",
                    kind="classrooms",
                    name=f"{labels.measure(r['measure'])}: higher- vs lower-income classrooms",
                    definition=(
                        "Share of evidence with the resource in classrooms with mostly higher-income students "
                        "divided by the share in classrooms with mostly low-income students (a ratio; its own "
                        "95% interval)."
                    ),
                    unit="ratio",
                    value=r["ratio"],
                    ci_lower=r["ratio_ci_lower"],
                    ci_upper=r["ratio_ci_upper"],
                    n=r["n"],
                    n_reference=r["reference_n"],
                    n_counts="classrooms",
                    subject="all",
                    population="classrooms",
                    year=year,
                    hours_lost=float(r["difference"]) * HOURS,
                    clear=_clear(r["ratio_ci_lower"], r["ratio_ci_upper"], 1.0),
                    measure=r["measure"],
                    group="majority_low_income",
                    level="0",
                    estimate=r["estimate"],
                    reference_estimate=r["reference_estimate"],
                    reference_label="classrooms with mostly low-income students",
                )
            )
    gr = a.growth
    if len(gr) and "contrast_estimate" in gr.columns:
        e = gr[(gr["model"] == "all_four") & (gr["effect"] == "access") & gr["converged"].astype(bool)]
        e = e[e["contrast_estimate"].notna()]
        for subject, part in e.groupby("subject", sort=False):
            part = part.assign(
                _clear=[
                    _clear(lo, hi, 0.0)
                    for lo, hi in zip(part["contrast_ci_lower"], part["contrast_ci_upper"])
                ]
            )
            r = part.sort_values(["_clear", "contrast_estimate"], ascending=False).iloc[0]
            if r["contrast_estimate"] <= 0:
                continue
            months = r.get("months")
            rows.append(
                _row(
                    indicator=f"growth.{subject}",
                    kind="growth",
                    name=f"Growth with more {labels.measure(r['resource']).lower()} ({labels.subject(subject)})",
                    definition=(
                        "Extra growth over the year, in standard deviations of the spring score, of students in "
                        "classrooms at the district's 75th vs 25th percentile of access (all four resources in one "
                        "model; an association, not proof of cause). Months of learning are converted from this "
                        "same contrast (an approximation)."
                    ),
                    unit="sd",
                    value=r["contrast_estimate"],
                    ci_lower=r["contrast_ci_lower"],
                    ci_upper=r["contrast_ci_upper"],
                    n=r["n"],
                    n_counts="students",
                    subject=subject,
                    population="students with fall and spring scores",
                    year=year,
                    hours_lost=(0.0 if is_missing(months) else float(months) * HOURS / MONTHS),
                    clear=bool(r["_clear"]),
                    measure=r["resource"],
                    months=months,
                    months_ci_lower=r.get("months_ci_lower"),
                    months_ci_upper=r.get("months_ci_upper"),
                )
            )
    cu = a.catch_up
    if len(cu):
        c = cu[
            (cu["school_id"] == "all")
            & (cu["group"] == "all")
            & (cu["subject"] == "all")
            & (cu["years_later"] == 1)
            & ~cu["suppressed"].astype(bool)
        ].sort_values("start_year", ascending=False)
        if len(c):
            r = c.iloc[0]
            cohort = labels.school_year(r["start_year"])
            rows.append(
                _row(
                    indicator="catch_up.one_year",
                    kind="trajectory",
                    name=f"Caught up a year later (students behind in {cohort})",
                    definition=(
                        f"Of students below grade level in spring of {cohort}, the share at grade level one year "
                        "later (ELA and math together). The scorecard's catch-up rate is a different measure: "
                        "at grade level three years later."
                    ),
                    unit="share",
                    value=r["estimate"],
                    ci_lower=r["ci_lower"],
                    ci_upper=r["ci_upper"],
                    n=r["n"],
                    n_counts="test results (ELA and math; a student tested in both counts twice)",
                    subject="all",
                    population=f"students behind in {cohort}",
                    year=cohort,
                    hours_lost=0.0,
                    clear=False,
                    measure="catch_up_rate",
                    estimate=r["estimate"],
                )
            )
    rows += _scorecard_rows(a)
    out = pd.DataFrame(rows, columns=list(INDICATOR_FIELDS))
    return out


#: How each scorecard measure is defined, where it differs from a report measure of a similar name.
SCORECARD_DEFINITIONS = {
    "grade_appropriate_share": "Each student's classrooms' share of grade-appropriate assignments, averaged over "
    "students (every student counts once); the report's share pools all rated assignments.",
    "strong_instruction_share": "Each student's classrooms' share of strong lessons, averaged over students; the "
    "report's share pools all observed lessons.",
    "engaged_share": "Each student's classrooms' share of engaged moments, averaged over students; the report's "
    "share pools all surveyed moments.",
    "high_expectations_share": "Each student's teachers' share holding high expectations, averaged over "
    "students; the report's share pools all teacher responses.",
    "catch_up_rate": "Of students below grade level three years earlier, the share at grade level this year "
    "(ELA and math together); the report's catch-up table also shows one and two years later.",
    "growth_grade_levels": "Average grade levels gained from last spring to this spring (ELA and math together); "
    "the report's growth table averages over a longer span of years.",
}
_POOLED = {"catch_up_rate", "growth_grade_levels"}


def _scorecard_rows(a) -> list[dict]:
    card = getattr(a, "scorecard", None)
    t = getattr(card, "table", None)
    if t is None or not len(t):
        return []
    t = t[(t["school_id"] == "all") & (t["group"] == "all") & ~t["suppressed"].astype(bool)]
    rows = []
    for r in t.to_dict("records"):
        m = r["measure"]
        unit = "grade_levels" if m == "growth_grade_levels" else "share"
        counts = (
            "test results (ELA and math; a student tested in both counts twice)"
            if m in _POOLED
            else "survey responses"
            if m.endswith("_favorable")
            else "students"
        )
        rows.append(
            _row(
                indicator=f"scorecard.{m}",
                kind="scorecard",
                name=labels.measure(m),
                definition=SCORECARD_DEFINITIONS.get(m, ""),
                unit=unit,
                value=r["estimate"],
                ci_lower=r["ci_lower"],
                ci_upper=r["ci_upper"],
                n=r["n"],
                n_counts=counts,
                subject="all",
                population="all students",
                year=labels.school_year(r["school_year"]),
                hours_lost=0.0,
                clear=False,
                measure=m,
                estimate=r["estimate"],
            )
        )
    return rows


def example_analysis():
    """A small stand-in for a district analysis (the tables :func:`indicator_table` reads), for examples and tests.

    One resource share, the work-sample share, one gap, the income contrast of classrooms and one growth effect,
    with the numbers of the Lakeside demonstration district.

    Examples
    --------
    >>> a = example_analysis()
    >>> sorted(k for k in vars(a))
    ['catch_up', 'composition', 'demands', 'gaps', 'growth', 'rates']
    """
    from types import SimpleNamespace

    rates = pd.DataFrame(
        {
            "resource": ["strong_instruction"],
            "subject": "all",
            "n": [481],
            "estimate": [0.0956],
            "ci_lower": [0.0687],
            "ci_upper": [0.1316],
        }
    )
    demands = pd.DataFrame(
        {
            "measure": ["met_grade_level"],
            "n": [8064],
            "estimate": [0.12],
            "ci_lower": [0.10],
            "ci_upper": [0.15],
        }
    )
    gaps = pd.DataFrame(
        {
            "measure": "grade_appropriate",
            "subject": "ela",
            "group": "started_behind",
            "level": [1.0],
            "n": [806],
            "estimate": [0.09],
            "reference": ALL_OTHERS,
            "reference_n": [694],
            "reference_estimate": [0.22],
            "difference": [-0.121],
            "ci_lower": [-0.178],
            "ci_upper": [-0.064],
            "suppressed": False,
        }
    )
    comp = pd.DataFrame(
        {
            "measure": "strong_instruction",
            "group": "majority_low_income",
            "level": [0.0],
            "n": [26],
            "estimate": [0.23],
            "reference_n": [96],
            "reference_estimate": [0.06],
            "difference": [0.169],
            "ci_lower": [0.074],
            "ci_upper": [0.263],
            "ratio": [3.6],
            "ratio_ci_lower": [2.0],
            "ratio_ci_upper": [6.6],
            "suppressed": False,
        }
    )
    growth = pd.DataFrame(
        {
            "subject": "math",
            "model": "all_four",
            "effect": "access",
            "resource": ["grade_appropriate"],
            "estimate": [0.26],
            "ci_lower": [0.01],
            "ci_upper": [0.51],
            "contrast_estimate": [0.06],
            "contrast_ci_lower": [0.003],
            "contrast_ci_upper": [0.12],
            "months": [1.8],
            "months_ci_lower": [0.1],
            "months_ci_upper": [3.6],
            "n": [1500],
            "converged": [True],
        }
    )
    return SimpleNamespace(
        rates=rates, demands=demands, gaps=gaps, composition=comp, growth=growth, catch_up=pd.DataFrame()
    )
