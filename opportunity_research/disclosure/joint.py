"""Disclosure control at one boundary: a district's published tables, their joint protection and the gate.

The analyses of a district (:func:`opportunity_research.study.analysis.unprotected_analysis`) compute complete tidy
tables; :func:`protect_district` protects everything the district publishes in one joint pass
(:func:`~opportunity_research.disclosure.protection.protect_tables`, whose module documents the rules and the
audit), and :func:`audit_report_folder`, the publishing gate, re-audits a finished report folder from its files
alone. This module holds the registry of published tables (:data:`PUBLISHED`, :data:`DISTRICT_SPECS`) and
re-exports the protection pass (:func:`protect_tables`, :func:`audit`, :func:`audit_published`) and the model's
names, so callers import everything from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import CLIMATE_SCALE
from .design import (
    CELL_BY_CELL_MAX_SCHOOL_ROWS,
    POOLED_LEVEL,
    never_published,
    school_breakdowns,
    school_rows,
    unshown_trend_rows,
)
from .model import ALL_OTHERS, REASON, AuditReport, DisclosureError, TableSpec
from .protection import audit, audit_published, protect_tables

__all__ = [
    "ALL_OTHERS",
    "POOLED_LEVEL",
    "PUBLISHED",
    "REASON",
    "AuditReport",
    "DisclosureError",
    "PublishedTable",
    "TableSpec",
    "audit",
    "audit_published",
    "audit_report_folder",
    "district_tables",
    "never_published",
    "protect_district",
    "protect_table",
    "protect_tables",
    "published_tables",
    "school_breakdowns",
]


# ---------------------------------------------------------------------------------------------
# A district's published set

#: How each published table of :class:`~opportunity_research.study.analysis.DistrictAnalysis` maps onto populations.
DISTRICT_SPECS: dict[str, TableSpec] = {
    "gaps": TableSpec("gap", universe=("measure", "subject"), estimates={"estimate": (0.0, 1.0)}),
    "furthest": TableSpec("gap", universe=("subject",), estimates={"estimate": (0.0, 1.0)}),
    "multiple": TableSpec("gap", universe=("measure",), estimates={"estimate": (0.0, 1.0)}),
    "composition": TableSpec(
        "gap", universe=("measure",), unit="classrooms", estimates={"estimate": (0.0, 1.0)}
    ),
    "climate": TableSpec(
        "cell",
        universe=("school_year", "scale"),
        year="school_year",
        estimates={"favorable": (0.0, 1.0), "mean_score": tuple(map(float, CLIMATE_SCALE))},
    ),
    "catch_up": TableSpec(
        "cell",
        universe=("subject", "start_year", "years_later", "school_year"),
        counts=("n_students", "n", "n_start"),
        year="school_year",
        estimates={"estimate": (0.0, 1.0)},
    ),
    "growth_grade_levels": TableSpec(
        "cell", universe=("subject", "start_year", "end_year"), counts=("n_students", "n"), year="end_year"
    ),
    "movement": TableSpec(
        "cell",
        universe=("subject", "from_year", "school_year"),
        counts=("n_students", "n"),
        year="school_year",
        estimates={"moved_up": (0.0, 1.0), "moved_down": (0.0, 1.0)},
    ),
    # V gaps from performance-level counts (study.levelgaps.level_gaps): students by group, subject and year
    "level_gaps": TableSpec(
        "gap", universe=("subject", "school_year"), year="school_year", counts=("n", "reference_n")
    ),
    # HETOP means from performance-level counts (study.levelgaps.hetop_means): school x group cells
    "level_means": TableSpec("cell", universe=("subject", "school_year"), counts=("n",), year="school_year"),
    "indicators_shares": TableSpec(
        "cell", universe=("measure", "school_year"), year="school_year", estimates={"estimate": (0.0, 1.0)}
    ),
    "indicators_growth": TableSpec("cell", universe=("measure", "school_year"), year="school_year"),
}
_UNBOUNDED_INDICATORS = frozenset({"growth_grade_levels"})


def district_tables(a, indicators: pd.DataFrame | None = None) -> dict[str, tuple[pd.DataFrame, TableSpec]]:
    """The published tables of a district analysis with their specs (``indicators`` split by kind).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": "grade_appropriate", "subject": "ela", "group": "ell", "level": [0, 1],
    ...                   "n": [45, 3], "reference": ALL_OTHERS, "reference_n": [3, 45], "estimate": [0.4, 0.0],
    ...                   "reference_estimate": [0.0, 0.4], "suppressed": False, "suppression_reason": ""})
    >>> tables = district_tables(SimpleNamespace(gaps=t))
    >>> list(tables), tables["gaps"][1] is DISTRICT_SPECS["gaps"]
    (['gaps'], True)
    """
    out = {}
    for name, spec in DISTRICT_SPECS.items():
        if name.startswith("indicators"):
            continue
        df = getattr(a, name, None)
        if isinstance(df, pd.DataFrame):
            out[name] = (df, spec)
    if indicators is not None and len(indicators):
        growth = indicators["measure"].isin(_UNBOUNDED_INDICATORS).to_numpy()
        out["indicators_shares"] = (indicators[~growth], DISTRICT_SPECS["indicators_shares"])
        out["indicators_growth"] = (indicators[growth], DISTRICT_SPECS["indicators_growth"])
    return out


def protect_district(
    a, *, indicators: pd.DataFrame | None = None, min_n: int | None = None, protection: int | None = None
):
    """Protect everything a district analysis publishes; returns a new analysis with ``disclosure`` set.

    ``a`` is a :class:`~opportunity_research.study.analysis.DistrictAnalysis` whose tables were computed without
    suppression; ``indicators`` the scorecard's indicator table (every year), from which the scorecard is
    built (once, here) so that its pages show only protected values. Schools' "all other students" rows of
    yes/no groups are never published (:func:`~opportunity_research.disclosure.design.never_published`, the
    same rule in every district); every other row is published or hidden cell by cell, except in a district
    with more than :data:`~opportunity_research.disclosure.design.CELL_BY_CELL_MAX_SCHOOL_ROWS` school rows,
    where a variable's school breakdowns are left out for a year in which one school's group is small
    (:func:`~opportunity_research.disclosure.design.school_breakdowns`; counted as loss). A school's indicator
    of a year between the first and last of its measure and group is shown nowhere and, cell by cell, is not in
    the published set (:func:`~opportunity_research.disclosure.design.unshown_trend_rows`; the scorecard still
    counts its years). The groups the analysis pooled (``a.district.manifest["pooled_groups"]``) are recorded in the report.

    Raises
    ------
    DisclosureError
        When the audit cannot be satisfied (it names the cells).

    Examples
    --------
    The analysis runs this pass itself (:func:`~opportunity_research.disclosure.district.demo_analysis` is the
    analysis of a demonstration district); the report shows its audit:

    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> a = demo_analysis("demo_pinebrook")
    >>> a.disclosure.passed, a.gaps["suppressed"].dtype.name
    (True, 'bool')

    The tables it protects together are the analysis' registered ones:

    >>> from types import SimpleNamespace
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": "grade_appropriate", "subject": "ela", "group": "ell", "level": [0, 1],
    ...                   "n": [45, 3], "reference": ALL_OTHERS, "reference_n": [3, 45], "estimate": [0.4, 0.0],
    ...                   "reference_estimate": [0.0, 0.4], "suppressed": False, "suppression_reason": ""})
    >>> sorted(district_tables(SimpleNamespace(gaps=t, climate=None)))
    ['gaps']
    """
    import dataclasses

    from ..study import measures, scorecard

    min_n = a.min_n if min_n is None else min_n
    year = measures.analysis_year(a.district)
    tables = district_tables(a, indicators)
    large = school_rows(tables) > CELL_BY_CELL_MAX_SCHOOL_ROWS
    # a school's indicator of a year between its first and last is shown nowhere: not in the published set (cell
    # by cell; a large district's design, below, leaves school breakdowns out by year and keeps its set)
    unshown = unshown_trend_rows(indicators) if indicators is not None and not large else None
    if unshown is not None and unshown.any():
        tables = district_tables(a, indicators[~unshown])
    design, left_out = never_published(tables), {}
    if large:
        # a large district: cell-by-cell protection of every school's groups would not finish (design.py)
        tables, left_out = school_breakdowns(tables, min_n=min_n, year=year)
    protected, report = protect_tables(
        tables,
        min_n=min_n,
        protection=protection,
        year=year,
        unpublished=left_out or None,
        never_published=design,
    )
    report.pooled_groups = list(getattr(a.district, "manifest", {}).get("pooled_groups", []))
    if not report.passed:
        cells = [f[0] for f in report.failures]
        raise DisclosureError(
            f"disclosure audit failed for {a.district.district_id}: {len(cells)} cell(s) cannot "
            f"be protected: " + "; ".join(cells[:8]),
            cells,
        )
    changes = {k: protected[k] for k in tables if not k.startswith("indicators")}
    if indicators is not None:
        # the scorecard is built here, once, from the protected indicators (never from complete ones)
        parts = [
            protected[k]
            for k in ("indicators_shares", "indicators_growth")
            if k in protected and len(protected[k])
        ]
        if unshown is not None and unshown.any():
            # the years shown nowhere still count in the scorecard's n_years: blank, marked suppressed
            # (not the design's rows: the pass never returns those, in any year)
            spec = DISTRICT_SPECS["indicators_shares"]
            ever = never_published({"ind": (indicators, spec)}).get(
                "ind", np.zeros(len(indicators), dtype=bool)
            )
            quiet = indicators[unshown & ~ever].copy()
            for c in ("n", "estimate", "ci_lower", "ci_upper"):
                if c in quiet.columns:  # blanked as the pass blanks a hidden row (integers stay Int64)
                    col = quiet[c]
                    col = col.astype("Int64") if pd.api.types.is_integer_dtype(col) else col
                    quiet[c] = col.mask(np.ones(len(col), dtype=bool))
            quiet["suppressed"] = True
            quiet["suppression_reason"] = REASON.format(min_n=min_n)
            # only for rows the scorecard has (a school breakdown left out, in a large district, has none)
            key = ["school_id", "measure", "group"]
            have = (
                pd.MultiIndex.from_frame(pd.concat([p[key] for p in parts]).astype("str")) if parts else None
            )
            if have is not None:
                quiet = quiet[pd.MultiIndex.from_frame(quiet[key].astype("str")).isin(have)]
                parts.append(quiet)
        ind = pd.concat(parts).sort_index() if parts else indicators.iloc[:0]
        ind.attrs = dict(indicators.attrs)
        d = a.district
        names = dict(zip(d.schools["school_id"], d.schools["school_name"])) if d.has("schools") else {}
        card = scorecard.opportunity_scorecard(
            ind,
            goals=d.goals if d.has("goals") else None,
            gaps=changes.get("gaps", a.gaps),
            needs=list(a.needs),
            school_names=names,
        )
        changes["scorecard"] = dataclasses.replace(card, min_n=min_n)
    return dataclasses.replace(a, **changes, disclosure=report)


@dataclass(frozen=True)
class PublishedTable:
    """One table a district report publishes as ``tables/<name>.csv``.

    Examples
    --------
    >>> PUBLISHED["gaps"].spec is DISTRICT_SPECS["gaps"], PUBLISHED["scorecard"].source
    (True, 'scorecard.table')
    >>> PUBLISHED["resources"].spec is None, PUBLISHED["resources"].note
    (True, 'district-wide rates of classroom evidence; no student groups')

    Attributes
    ----------
    source
        Attribute path on :class:`~opportunity_research.study.analysis.DistrictAnalysis`
        (``"scorecard.table"``); empty for a table another analysis publishes (``level_means``).
    spec
        How its rows map onto populations (the joint pass and the gate audit it), or ``None`` for a table
        without student-group cells, with ``note`` saying why.
    note
        Why a table without a spec holds no cell to protect (shown in the README's table list).
    """

    source: str
    spec: TableSpec | None
    note: str = ""


#: THE registry of published tables: the notebook writes exactly these (:func:`published_tables`), the joint
#: pass protects the ones with a spec, and the publishing gate (:func:`audit_report_folder`) re-audits every
#: ``tables/*.csv`` of a report folder against it and refuses a CSV it does not name.
PUBLISHED: dict[str, PublishedTable] = {
    "resources": PublishedTable(
        "rates", None, "district-wide rates of classroom evidence; no student groups"
    ),
    "demands_vs_standards": PublishedTable(
        "demands", None, "district-wide shares of student work; no groups"
    ),
    "gaps": PublishedTable("gaps", DISTRICT_SPECS["gaps"]),
    "classroom_composition": PublishedTable("composition", DISTRICT_SPECS["composition"]),
    "furthest_from_opportunity": PublishedTable("furthest", DISTRICT_SPECS["furthest"]),
    "growth_effects": PublishedTable(
        "growth", None, "model estimates over whole samples (README: residual risk)"
    ),
    "scorecard_goals": PublishedTable(
        "scorecard.goals",
        None,
        "repeats scorecard values; the gate checks that every goal value it shows is shown in scorecard.csv",
    ),
    "multiple_measures": PublishedTable("multiple", DISTRICT_SPECS["multiple"]),
    "climate": PublishedTable("climate", DISTRICT_SPECS["climate"]),
    "catch_up": PublishedTable("catch_up", DISTRICT_SPECS["catch_up"]),
    "growth_grade_levels": PublishedTable("growth_grade_levels", DISTRICT_SPECS["growth_grade_levels"]),
    "movement": PublishedTable("movement", DISTRICT_SPECS["movement"]),
    "level_gaps": PublishedTable("level_gaps", DISTRICT_SPECS["level_gaps"]),
    "level_means": PublishedTable("", DISTRICT_SPECS["level_means"]),  # the level-counts analysis only
    "scorecard": PublishedTable("scorecard.table", DISTRICT_SPECS["indicators_shares"]),
}
#: Kept for callers of the earlier name: the registered tables that carry cells.
FILE_SPECS: dict[str, TableSpec] = {k: t.spec for k, t in PUBLISHED.items() if t.spec is not None}


def published_tables(a) -> dict[str, pd.DataFrame]:
    """Every table of :data:`PUBLISHED`, from a protected district analysis (what the notebook writes).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> published_tables(NS(disclosure=None))
    Traceback (most recent call last):
    ...
    opportunity_research.disclosure.model.DisclosureError: published_tables: the analysis has not been through the joint disclosure pass
    >>> tops = {t.source.split(".")[0] for t in PUBLISHED.values() if t.source} - {"scorecard"}
    >>> a = NS(disclosure="passed", scorecard=NS(table="card", goals="goals"), **{k: k for k in tops})
    >>> tabs = published_tables(a)
    >>> tabs["scorecard"], tabs["classroom_composition"], "level_means" in tabs
    ('card', 'composition', False)
    """
    if getattr(a, "disclosure", None) is None:
        raise DisclosureError("published_tables: the analysis has not been through the joint disclosure pass")
    out = {}
    for name, t in PUBLISHED.items():
        if not t.source:
            continue
        obj = a
        for part in t.source.split("."):
            obj = getattr(obj, part)
        out[name] = obj
    return out


def protect_table(
    table: pd.DataFrame,
    kind: str,
    *,
    min_n: int = config.MIN_CELL_SIZE,
    protection: int | None = None,
    year: int | None = None,
) -> pd.DataFrame:
    """Protect one complete table through the joint pass (for views such as the explorer).

    ``kind`` names its entry in :data:`PUBLISHED` (``"gaps"``, ``"climate"``, ...), which says how its rows
    map onto populations. Returns the protected copy.

    Raises
    ------
    DisclosureError
        When the audit cannot be satisfied.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": "grade_appropriate", "subject": "ela", "group": "ell", "level": [0, 1],
    ...                   "n": [45, 3], "reference": ALL_OTHERS, "reference_n": [3, 45], "estimate": [0.4, 0.0],
    ...                   "reference_estimate": [0.0, 0.4], "suppressed": False, "suppression_reason": ""})
    >>> protect_table(t, "gaps", min_n=10)["suppressed"].tolist()
    [True, True]
    """
    if kind not in PUBLISHED or PUBLISHED[kind].spec is None:
        raise ValueError(f"protect_table: kind must name a registered table with cells, got {kind!r}")
    tables = _split_unbounded(kind, table, PUBLISHED[kind].spec)
    out, report = protect_tables(tables, min_n=min_n, protection=protection, year=year)
    if not report.passed:
        raise DisclosureError(
            f"protect_table: {len(report.failures)} cell(s) cannot be protected",
            [f[0] for f in report.failures],
        )
    return pd.concat([out[k] for k in tables]).sort_index() if len(tables) > 1 else out[kind]


def _split_unbounded(
    name: str, df: pd.DataFrame, spec: TableSpec
) -> dict[str, tuple[pd.DataFrame, TableSpec]]:
    """An indicator table holds shares and growth (unbounded): audited as two tables, as it was protected."""
    if "measure" not in df.columns or spec is not DISTRICT_SPECS["indicators_shares"]:
        return {name: (df, spec)}
    growth = df["measure"].isin(_UNBOUNDED_INDICATORS).to_numpy()
    return {name: (df[~growth], spec), f"{name}_growth": (df[growth], DISTRICT_SPECS["indicators_growth"])}


#: The columns of a published table the gate reads besides its spec's own (the model's labels and flags, the
#: indicator split and the goals' check).
_GATE_COLUMNS = frozenset(
    {
        "group",
        "level",
        "variable",
        "school_id",
        "reference",
        "reference_n",
        "reference_estimate",
        "subject",
        "measure",
        "school_year",
        "estimate",
        "suppressed",
    }
)


def _audited_columns(spec: TableSpec | None) -> frozenset | None:
    """The columns :func:`audit_report_folder` reads of a table with ``spec`` (None: every column).

    Examples
    --------
    >>> sorted(_audited_columns(DISTRICT_SPECS["climate"]) - _GATE_COLUMNS)
    ['favorable', 'mean_score', 'n', 'scale']
    """
    if spec is None:
        return None
    own = {*spec.universe, *spec.counts, *spec.estimates, spec.weight, spec.year}
    return _GATE_COLUMNS | {c for c in own if c}


def _goal_problems(goals: pd.DataFrame, card: pd.DataFrame | None) -> list[str]:
    """A goal value shown while the scorecard hides the same indicator (hidden in one place, hidden in all)."""
    need = {"measure", "group", "current_year", "current"}
    if not need <= set(goals.columns):
        return []
    shown = goals[goals["current"].notna()]
    if not len(shown):
        return []
    if card is None or not {"measure", "group", "school_year", "school_id", "estimate"} <= set(card.columns):
        return ["tables/scorecard_goals.csv: goal values shown without scorecard.csv"]
    d = card[(card["school_id"].astype("str") == "all") & card["estimate"].notna()]
    ok = set(zip(d["measure"].astype("str"), d["group"].astype("str"), pd.to_numeric(d["school_year"])))
    bad = [
        f"{r.measure} {r.group} {int(r.current_year)}"
        for r in shown.itertuples()
        if (str(r.measure), str(r.group), float(r.current_year)) not in ok
    ]
    return [f"tables/scorecard_goals.csv: goal value shown but hidden in scorecard.csv ({b})" for b in bad]


def audit_report_folder(
    folder, *, min_n: int = config.MIN_CELL_SIZE, protection: int | None = None
) -> list[str]:
    """The publishing gate: re-audit a finished district report folder from its files alone.

    Reads ``findings.json`` (its ``disclosure`` record, when there is one, must say the joint suppression
    passed) and every ``tables/*.csv``: a CSV not named in :data:`PUBLISHED` is refused; the ones with a
    spec are audited together with :func:`audit_published`, as an attacker reading those files would; goal
    values must be shown in the scorecard too. Returns the problems (unprotected cells named, no values);
    empty when the folder may be published.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": "grade_appropriate", "subject": "ela", "group": "ell", "level": [0, 1],
    ...                   "n": [45, 3], "reference": ALL_OTHERS, "reference_n": [3, 45], "estimate": [0.4, 0.0],
    ...                   "reference_estimate": [0.0, 0.4], "suppressed": False, "suppression_reason": ""})
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "tables").mkdir()
    >>> protect_table(t, "gaps", min_n=10).to_csv(folder / "tables" / "gaps.csv", index=False)
    >>> audit_report_folder(folder, min_n=10)
    []
    >>> t.to_csv(folder / "tables" / "gaps.csv", index=False)  # unprotected
    >>> _ = (folder / "tables" / "extra.csv").write_text("a\\n1\\n")
    >>> for problem in audit_report_folder(folder, min_n=10):
    ...     print(problem.split(" (")[0])
    tables/extra.csv: not a registered published table
    tables: gaps[grade_appropriate|ela] ell=0
    tables: gaps[grade_appropriate|ela] ell=1
    """
    import json
    from pathlib import Path

    folder = Path(folder)
    problems = []
    year = None
    f = folder / "findings.json"
    if f.exists():
        found = json.loads(f.read_text(encoding="utf-8"))
        year = found.get("analysis_year")
        rec = found.get("disclosure")
        if isinstance(rec, dict) and not rec.get("audit_passed", False):
            problems += [
                f"findings.json: unprotected cell {c}" for c in rec.get("unprotected_cells", [])
            ] or ["findings.json: disclosure audit did not pass"]
    tables, frames = {}, {}
    for p in sorted((folder / "tables").glob("*.csv")):
        name = p.stem
        if name not in PUBLISHED:
            problems.append(
                f"tables/{p.name}: not a registered published table (disclosure.PUBLISHED); "
                f"it cannot be audited, so it is refused"
            )
            continue
        spec = PUBLISHED[name].spec
        if not p.read_text(encoding="utf-8").strip():
            continue  # an empty file publishes nothing
        # only the columns the audit reads (labels, counts, estimates, flags): the others (long labels, intervals)
        # took most of the gate's reading at 1,000,000 students, and each column is read as it was
        need = _audited_columns(spec)
        df = pd.read_csv(
            p,
            keep_default_na=True,
            dtype={"level": "str", "group": "str", "school_id": "str"},
            usecols=None if need is None else need.__contains__,
        )
        if name in ("scorecard", "scorecard_goals"):
            frames[name] = df  # for the goals' check (below)
        if spec is None or not len(df):
            continue
        if "suppressed" not in df.columns:
            problems.append(f"tables/{p.name}: no 'suppressed' column; it cannot be audited")
            continue
        df["suppressed"] = df["suppressed"].astype("str").str.lower().isin(["true", "1", "1.0"])
        tables.update(_split_unbounded(name, df, spec))
    if "scorecard_goals" in frames:
        problems += _goal_problems(frames["scorecard_goals"], frames.get("scorecard"))
    if tables:
        rep = audit_published(
            tables, min_n=min_n, protection=protection, year=int(year) if year is not None else None
        )
        problems += [f"tables: {c} (attacker's interval {lo:g} to {hi:g})" for c, lo, hi in rep.failures]
    return problems
