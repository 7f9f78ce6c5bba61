"""Disclosure control at one boundary: joint suppression over everything a district publishes, and its audit.

The analyses of a district (:func:`opportunity_research.study.analysis.analyze_district`) compute complete tidy
tables; :func:`protect_tables` then decides suppression once, over the whole published set (report tables,
scorecard indicators, CSV tables, figures and ``findings.json`` are all built from these tables), and
:func:`audit` checks the result the way an attacker who reads every page would.

The model
---------
Every published count is a linear expression in *population counts*: the number of students of a group
level (``variable = level``) at a school (or ``"all"`` = the district) in a school year. Tables are read
through a :class:`TableSpec`:

* ``"gap"`` tables (:func:`~opportunity_research.stats.gaps.gap_table` style: ``group``, ``level``, ``n``,
  ``reference``, ``reference_n``): a row publishes ``n = x[level]`` and ``reference_n = N - x[level]``
  against all other students (``N`` the students with a value of the variable) or ``x[reference]``
  against a named reference level; the levels add up to ``N``.
* ``"cell"`` tables (school x group cells: ``school_id``, ``group`` = ``"all"`` or ``"variable=level"``,
  count columns such as ``n`` or ``n_students``): the levels of a variable add up to the school's
  ``"all"`` row, and the schools' cells add up to the district's (as equalities when the true counts
  add up, as inequalities when students may be in the total but in no cell).

Counts of the same group, school and year with the same value are taken to be the same population in
every table (the attacker is assumed to link them), so the audit is conservative.

The rules (in the order they are applied)
-----------------------------------------
1. **Primary**: a population with ``0 < n < min_n`` is hidden, and so is a row comparing a group with a
   reference (all other students, or a named level) of fewer than ``min_n`` students.
2. **One value everywhere**: a hidden population is hidden in every table. A count of the same group,
   school and year in another table that is within ``protection`` students of a hidden count (e.g. the
   same students with one missing outcome) is hidden too, so no published count approximates it.
3. **Complements, from counts only**: while the audit finds a hidden count whose interval is narrower
   than ``protection``, the smallest shown count that shares an additive relation with it is hidden
   (levels before totals; ties broken by labels). The choice never looks at an estimate, so which cells
   are complements says nothing about any hidden share or mean.
4. **Hidden values**: for every additive relation whose total value is shown, the hidden cells' pooled
   value is what an attacker can compute (total minus shown cells). If a single hidden cell's count is
   known exactly, or the pooled value of the hidden cells lies within ``near_bound`` (default 5% of the
   range) of a bound of the outcome (0% or 100% for shares: a homogeneous hidden set), the estimates of
   the smallest shown row of the relation are withheld as well (its count, published elsewhere, stays
   public). When nothing is left to hide in the relation, the estimates of the whole population (every
   row of that table describing that school) are withheld: a homogeneous population is handled at the
   population level, never by choosing a count complement that depends on its value.
5. The loop ends when the audit passes. Every suppressed row shows the same reason text,
   :data:`REASON`, so a reader cannot tell a small cell from a complement.

The audit
---------
:func:`audit` solves, for every hidden population count, ``min`` and ``max`` of the count subject to every
published count (as equalities), the additive relations, and ``count >= 1`` (a listed level has
students), with :func:`scipy.optimize.linprog` (HiGHS). The relations split into small independent
components (one table partition each, joined where tables share counts); components with one equation
are solved in closed form. A hidden count is protected when ``floor(max) - ceil(min) >= protection``.

Residual risk (documented in the README): the rule of step 4 reveals, at most, that the pooled value of
some hidden cells was within ``near_bound`` of 0% or 100% (never which, nor any cell's value); counts of
other units (classrooms, evidence such as assignments or observed lessons) are published as they are;
model estimates (growth effects) describe whole samples and are not cells.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"group": "ell", "level": [0, 1], "n": [45, 3], "reference": ALL_OTHERS,
...                   "reference_n": [3, 45], "estimate": [0.4, 0.0], "reference_estimate": [0.0, 0.4],
...                   "suppressed": False, "suppression_reason": ""})
>>> out, report = protect_tables({"t": (t, TableSpec("gap", estimates={"estimate": (0, 1)}))}, min_n=10)
>>> out["t"]["suppressed"].tolist(), report.passed
([True, True], True)
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from .. import config
from ..intake.contract import ALL_OTHERS, CLIMATE_SCALE

__all__ = [
    "ALL_OTHERS",
    "REASON",
    "AuditReport",
    "DisclosureError",
    "TableSpec",
    "audit",
    "audit_published",
    "audit_report_folder",
    "district_tables",
    "protect_district",
    "protect_tables",
]

#: The one reason text of every suppressed row (``{min_n}`` is filled in).
REASON = "n < {min_n} or complementary"
#: Columns that label rows: never blanked in a suppressed row.
LABELS = frozenset({"group", "level", "variable", "school_id", "reference", "label", "measure", "subject",
                    "outcome", "kind", "ci_method", "school_year", "scale", "start_year", "end_year", "years_later",
                    "from_year", "unit", "resource", "suppressed", "suppression_reason", "item", "question"})
_TOL = 1e-7


class DisclosureError(RuntimeError):
    """Published outputs fail the disclosure audit; ``cells`` names the unprotected cells."""

    def __init__(self, message: str, cells: Sequence[str] = ()):
        super().__init__(message)
        self.cells = list(cells)


@dataclass(frozen=True)
class TableSpec:
    """How a published tidy table maps onto populations.

    Attributes
    ----------
    style
        ``"gap"`` or ``"cell"`` (see the module docstring).
    universe
        Label columns that, with the table's name, identify the set of students the table splits
        (e.g. ``("measure", "subject")`` for resource gaps).
    counts
        Count columns. The first one decides primary suppression of ``"cell"`` rows; every one of
        them must reach ``min_n`` in a shown row.
    estimates
        ``{column: (low, high)}``: estimate columns whose hidden values are protected (rule 4), with the
        range of the outcome (``None``: unbounded).
    year
        Column holding the school year the population belongs to (default: the analysis year).
    unit
        What the counts count; counts of ``"students"`` are linked across tables.
    """

    style: str
    universe: tuple[str, ...] = ()
    counts: tuple[str, ...] = ("n",)
    estimates: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    year: str | None = None
    unit: str = "students"


@dataclass
class AuditReport:
    """Outcome of :func:`protect_tables` / :func:`audit`.

    Attributes
    ----------
    min_n, protection
        Minimum cell size and protection range (students).
    cells, primary, beyond_primary
        Published rows examined, rows suppressed by the primary rule, rows suppressed beyond it
        (complements and withheld estimates: the information loss).
    withheld
        Rows suppressed because a population's estimates were withheld (rule 4).
    hidden_counts
        Hidden population counts audited.
    failures
        ``(cell, low, high)`` for each hidden count whose interval is narrower than ``protection``, and
        ``(cell, nan, nan)`` for each hidden estimate an attacker can determine. Empty when passed.
    intervals
        Per audited count: ``cell``, ``true`` (None in a published-only audit), ``low``, ``high``.
    seconds
        Time spent.
    """

    min_n: int
    protection: int
    cells: int = 0
    primary: int = 0
    beyond_primary: int = 0
    withheld: int = 0
    hidden_counts: int = 0
    failures: list = field(default_factory=list)
    intervals: pd.DataFrame | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        """Summary for ``findings.json`` (no cell values)."""
        return {"min_n": self.min_n, "protection_range": self.protection, "published_cells": self.cells,
                "suppressed_primary": self.primary, "suppressed_beyond_primary": self.beyond_primary,
                "estimates_withheld": self.withheld, "hidden_counts_audited": self.hidden_counts,
                "audit_passed": self.passed, "unprotected_cells": [f[0] for f in self.failures]}

    def methods_text(self) -> str:
        """One paragraph for a report's methods section."""
        return (f"Suppression: every count of fewer than {self.min_n} students is hidden in every table, page and "
                f"file of this report, with further (complementary) cells chosen from the counts alone until "
                f"a linear-programming audit of everything published shows that each hidden count can only be "
                f"bounded to a range at least {self.protection} students wide and no hidden share or mean can "
                f"be worked out. Of {self.cells:,} published cells, {self.primary:,} were suppressed as small "
                f"and {self.beyond_primary:,} more to protect them (information loss); "
                f"audit {'passed' if self.passed else 'FAILED'}.")


# ---------------------------------------------------------------------------------------------
# The model: rows, variables, relations


def _split_group(group: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    g = group.astype("str").to_numpy()
    var = np.array([s.split("=", 1)[0] if "=" in s else "all" for s in g], dtype=object)
    lev = np.array([s.split("=", 1)[1] if "=" in s else "all" for s in g], dtype=object)
    return var, lev


def _level_text(values: pd.Series) -> np.ndarray:
    return values.astype("str").str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).to_numpy(dtype=object)


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


class _Model:
    """Rows of every table, the population-count variables they publish and the additive relations."""

    def __init__(self, tables: Mapping[str, tuple[pd.DataFrame, TableSpec]], *, year: int | None,
                 known: bool, min_n: int):
        self.known = known
        self._min_n = min_n
        self.lp_cache: dict = {}  # component LPs already solved (the protection loop re-audits unchanged parts)  # True: true values (protecting); False: only what is published (auditing files)
        self.names = list(tables)
        self.frames = [tables[k][0].reset_index(drop=True) for k in self.names]
        self.specs = [tables[k][1] for k in self.names]
        self.var_key: list[tuple] = []
        self.var_x: list[float] = []
        self.var_total: list[bool] = []
        self._index: dict = {}
        rows = []  # (tid, row, uni, school, variable, level, year)
        self.row_vars: list[list[int]] = []  # decision variables of each row
        self.entries: list[tuple[int, dict, float]] = []  # (row id, {var: coef}, value)
        self.relations: list[tuple[dict, str]] = []  # ({var: coef}, "eq" | "le") meaning sum <= / == 0
        self.row_est: list[dict] = []  # {column: value}
        self.row_weight: list[float] = []
        self.row_ref: list[tuple[float, float] | None] = []  # gap rows against all others: (reference_n, its value)
        self.pre_hidden: list[bool] = []  # rows already suppressed in the input (counts missing)
        self.primary_vars: set[int] = set()
        self.ref_small_rows: list[int] = []
        self.partitions: list[tuple[list[int], int | None, str, tuple]] = []  # (part rows, total row, kind, key)
        for tid, (df, spec) in enumerate(zip(self.frames, self.specs)):
            if len(df) == 0:
                continue
            if spec.style == "gap":
                self._gap_rows(tid, df, spec, year, rows)
            elif spec.style == "cell":
                self._cell_rows(tid, df, spec, year, rows)
            else:
                raise ValueError(f"TableSpec.style must be 'gap' or 'cell', got {spec.style!r}")
        self.rows = pd.DataFrame(rows, columns=["tid", "row", "uni", "school", "variable", "level", "year"])

    # variables ---------------------------------------------------------------------------------
    def var(self, unit, year, school, variable, level, x, *, total=False, private=None) -> int:
        """The variable of one population count of one universe (``private`` names it within the universe).

        Counts of different universes are different variables (an attacker does not know that two hidden
        counts are equal); the same total of a gap universe shown for several variables is one variable.
        """
        key = (unit, year, school, variable, level, private if not total or math.isnan(x) else (private[0], x))
        v = self._index.get(key)
        if v is None:
            v = self._index[key] = len(self.var_key)
            self.var_key.append(key)
            self.var_x.append(float(x))
            self.var_total.append(total)
        return v

    def _new_row(self, rows, tid, i, uni, school, variable, level, year, est, weight, pre) -> int:
        rid = len(rows)
        rows.append((tid, i, uni, school, variable, level, year))
        self.row_vars.append([])
        self.row_est.append(est)
        self.row_weight.append(weight)
        self.row_ref.append(None)
        self.pre_hidden.append(pre)
        return rid

    def _year_of(self, df, spec, year):
        if spec.year and spec.year in df.columns:
            return _num(df[spec.year])
        return np.full(len(df), np.nan if year is None else float(year))

    def _unis(self, tid, df, spec):
        cols = [c for c in spec.universe if c in df.columns]
        if not cols:
            return np.full(len(df), self.names[tid], dtype=object)
        parts = [df[c].astype("str").to_numpy(dtype=object) for c in cols]
        return np.array([self.names[tid] + "|" + "|".join(p) for p in zip(*parts)], dtype=object)

    def _est(self, df, spec):
        cols = {c: _num(df[c]) for c in spec.estimates if c in df.columns}
        return [{c: v[i] for c, v in cols.items()} for i in range(len(df))]

    def _pre(self, df, spec, counts):
        pre = df["suppressed"].fillna(False).astype(bool).to_numpy() if "suppressed" in df.columns else \
            np.zeros(len(df), dtype=bool)
        return pre | np.isnan(counts[0])

    # gap tables ---------------------------------------------------------------------------------
    def _gap_rows(self, tid, df, spec, year, rows):
        n = _num(df[spec.counts[0]])
        ref_n = _num(df["reference_n"]) if "reference_n" in df.columns else np.full(len(df), np.nan)
        ref = df["reference"].astype("str").to_numpy(dtype=object) if "reference" in df.columns else \
            np.full(len(df), ALL_OTHERS, dtype=object)
        var = df["group"].astype("str").to_numpy(dtype=object)
        lev = _level_text(df["level"])
        yrs = self._year_of(df, spec, year)
        unis = self._unis(tid, df, spec)
        est = self._est(df, spec)
        ref_est = _num(df["reference_estimate"]) if "reference_estimate" in df.columns else np.full(len(df), np.nan)
        pre = self._pre(df, spec, [n])
        for (uni, v), ix in pd.DataFrame({"u": unis, "v": var}).groupby(["u", "v"], sort=False).indices.items():
            ix = np.asarray(ix)
            yr = yrs[ix[0]]
            named = ref[ix[0]] != ALL_OTHERS
            own = []
            if self.known:
                total = float(np.nansum(n[ix]) + (np.nanmax(ref_n[ix]) if named and len(ix) else 0.0))
            else:
                shown = ~pre[ix]
                total = float(np.nanmax(n[ix][shown] + ref_n[ix][shown])) if shown.any() and not named else np.nan
            tvar = self.var(spec.unit, yr, "all", "all", "all", total, total=True, private=(uni, v))
            ref_var, rx = None, np.nan
            if named:
                shown_ref = ref_n[ix] if self.known else ref_n[ix][~pre[ix]]
                rx = float(np.nanmax(shown_ref)) if len(shown_ref) and not np.isnan(shown_ref).all() else np.nan
                ref_var = self.var(spec.unit, yr, "all", v, str(ref[ix[0]]), rx, private=(uni, v, "reference"))
            rids = []
            for i in ix:
                rid = self._new_row(rows, tid, int(i), uni, "all", v, lev[i], yr, est[i], n[i], bool(pre[i]))
                x = self.var(spec.unit, yr, "all", v, lev[i], n[i], private=(uni, v, lev[i]))
                own.append(x)
                rids.append(rid)
                self.row_vars[rid].append(x)
                self.entries.append((rid, {x: 1.0}, n[i]))
                if named:
                    self.row_vars[rid].append(ref_var)
                    self.entries.append((rid, {ref_var: 1.0}, ref_n[i]))
                else:
                    self.entries.append((rid, {tvar: 1.0, x: -1.0}, ref_n[i]))
                    self.row_ref[rid] = (ref_n[i], ref_est[i])
                    if self.known and 0 < ref_n[i] < self._min_n:
                        self.ref_small_rows.append(rid)
                if self.known and 0 < n[i] < self._min_n:
                    self.primary_vars.add(x)
            if named and self.known and 0 < rx < self._min_n:
                self.primary_vars.add(ref_var)
            coefs = defaultdict(float)
            for x in own + ([ref_var] if named else []):
                coefs[x] += 1.0
            coefs[tvar] -= 1.0
            self.relations.append((dict(coefs), "eq"))
            self.partitions.append((rids, None, "gap", (tid, uni, v)))

    # cell tables --------------------------------------------------------------------------------
    def _cell_rows(self, tid, df, spec, year, rows):
        counts = [_num(df[c]) for c in spec.counts if c in df.columns]
        if not counts:
            raise KeyError(f"table {self.names[tid]!r}: none of the count columns {spec.counts}")
        if "variable" in df.columns:
            var = df["variable"].astype("str").to_numpy(dtype=object)
            _, lev = _split_group(df["group"])
        else:
            var, lev = _split_group(df["group"])
        school = df["school_id"].astype("str").to_numpy(dtype=object) if "school_id" in df.columns else \
            np.full(len(df), "all", dtype=object)
        yrs = self._year_of(df, spec, year)
        unis = self._unis(tid, df, spec)
        est = self._est(df, spec)
        pre = self._pre(df, spec, counts)
        k = len(counts)
        rvars = np.empty((len(df), k), dtype=np.int64)
        rids = np.empty(len(df), dtype=np.int64)
        for i in range(len(df)):
            rid = self._new_row(rows, tid, i, unis[i], school[i], var[i], lev[i], yrs[i], est[i], counts[0][i],
                                bool(pre[i]))
            rids[i] = rid
            for j in range(k):
                x = counts[j][i]
                v = self.var(spec.unit, yrs[i], school[i], var[i], lev[i], x, total=var[i] == "all",
                             private=(unis[i], school[i], var[i], lev[i], j))
                rvars[i, j] = v
                self.row_vars[rid].append(v)
                self.entries.append((rid, {v: 1.0}, x))
                if self.known and j == 0 and 0 < x < self._min_n:
                    self.primary_vars.add(v)
                if self.known and j > 0 and 0 < x < self._min_n:
                    self.primary_vars.add(rvars[i, 0])
        frame = pd.DataFrame({"u": unis, "s": school, "v": var, "l": lev})
        # levels of a variable within a school add up to the school's "all" row
        tot = {(u, s): i for i, (u, s, v) in enumerate(zip(unis, school, var)) if v == "all"}
        for (u, s, v), ix in frame.groupby(["u", "s", "v"], sort=False).indices.items():
            if v == "all" or (u, s) not in tot:
                continue
            self._relation(ix, tot[(u, s)], counts, rvars, rids, ("levels", tid, u, s, v))
        # schools add up to the district
        dist = {(u, v, lv): i for i, (u, s, v, lv) in enumerate(zip(unis, school, var, lev)) if s == "all"}
        sch = frame[frame["s"] != "all"]
        for (u, v, lv), ix in sch.groupby(["u", "v", "l"], sort=False).indices.items():
            if (u, v, lv) not in dist:
                continue
            ix = sch.index.to_numpy()[ix]
            self._relation(ix, dist[(u, v, lv)], counts, rvars, rids, ("schools", tid, u, v, lv))

    def _relation(self, ix, t, counts, rvars, rids, key):
        ix = np.asarray(ix)
        for j in range(len(counts)):
            parts, total = counts[j][ix], counts[j][t]
            if self.known:
                if np.isnan(parts).any() or np.isnan(total):
                    continue
                if abs(parts.sum() - total) < 0.5:
                    sense = "eq"
                elif parts.sum() < total:
                    sense = "le"
                else:
                    continue  # counts that do not add up (e.g. students counted in two cells)
            else:
                sense = "eq"
            coefs = defaultdict(float)
            for i in ix:
                coefs[int(rvars[i, j])] += 1.0
            coefs[int(rvars[t, j])] -= 1.0
            self.relations.append((dict(coefs), sense))
        self.partitions.append(([int(rids[i]) for i in ix], int(rids[t]), "cell", key))


# ---------------------------------------------------------------------------------------------
# The audit (linear programming)


def _components(n_vars, relations, unknown):
    """Connected components of the unknown variables through the relations."""
    parent = list(range(n_vars))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for coefs, _ in relations:
        vs = [v for v in coefs if unknown[v]]
        for a, b in itertools.pairwise(vs):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    comp = defaultdict(list)
    for v in range(n_vars):
        if unknown[v]:
            comp[find(v)].append(v)
    return comp


def _intervals(model: _Model, shown_rows: np.ndarray, targets: Sequence[int]) -> dict[int, tuple[float, float]]:
    """Tightest (LP) interval of each target variable given the shown rows' entries and the relations."""
    nv = len(model.var_key)
    fixed = np.full(nv, np.nan)
    eqs = []
    for rid, coefs, value in model.entries:
        if not shown_rows[rid] or math.isnan(value):
            continue
        if len(coefs) == 1:
            (v, c), = coefs.items()
            fixed[v] = value / c
        else:
            eqs.append((coefs, value, "eq"))
    rels = [(c, 0.0, s) for c, s in model.relations] + eqs
    unknown = np.isnan(fixed)
    lb = np.where(np.array(model.var_x) == 0, 0.0, 1.0) if model.known else np.ones(nv)
    # reduce: substitute fixed values
    reduced = []
    for coefs, rhs, sense in rels:
        rest = {v: c for v, c in coefs.items() if unknown[v]}
        if not rest:
            continue
        b = rhs - sum(c * fixed[v] for v, c in coefs.items() if not unknown[v])
        reduced.append((rest, b, sense))
    comps = _components(nv, [(c, s) for c, _, s in reduced], unknown)
    where = {}
    for root, members in comps.items():
        for v in members:
            where[v] = root
    by_comp = defaultdict(list)
    for r in reduced:
        by_comp[where[next(iter(r[0]))]].append(r)
    out: dict[int, tuple[float, float]] = {}
    pending = []
    wanted = defaultdict(list)
    for t in targets:
        if not unknown[t]:
            out[t] = (fixed[t], fixed[t])
        else:
            wanted[where[t]].append(t)
    for root, ts in wanted.items():
        members = comps[root]
        cons = by_comp.get(root, [])
        if not cons:
            for t in ts:
                out[t] = (lb[t], math.inf)
            continue
        if len(cons) == 1 and cons[0][2] == "eq" and all(c == 1.0 for c in cons[0][0].values()):
            coefs, b, _ = cons[0]
            lbs = {v: lb[v] for v in coefs}
            s = sum(lbs.values())
            for t in ts:
                out[t] = (lbs[t], b - (s - lbs[t]))
            continue
        key = (tuple(members), tuple((tuple(sorted(c.items())), round(b, 6), sn) for c, b, sn in cons), tuple(ts))
        hit = model.lp_cache.get(key)
        if hit is None:
            step = max(1, _LP_CELLS // max(len(members), 1))  # keep each block-diagonal LP moderate in size
            pending += [(key, members, cons, ts[i:i + step]) for i in range(0, len(ts), step)]
        else:
            out.update(hit)
    # the components still to solve, packed into few block-diagonal LPs (one call has a fixed cost of
    # milliseconds; one LP of many independent blocks costs about the sum of their sizes)
    batch, size = [], 0
    for job in pending + [None]:
        if job is not None:
            batch.append(job)
            size += len(job[1]) * len(job[3])
        if batch and (job is None or size >= _LP_CELLS):
            for (key, *_), res in zip(batch, _lp_many([j[1:] for j in batch], lb)):
                model.lp_cache.setdefault(key, {}).update(res)
                out.update(res)
            batch, size = [], 0
    return out


def _lp_many(jobs, lb):
    """Solve several components' min/max problems as one pair of LPs; fall back to one pair per component."""
    if len(jobs) == 1:
        return [_lp(*jobs[0][:2], lb, jobs[0][2])]
    rows = {"eq": ([], [], [], []), "le": ([], [], [], [])}  # data, row, col, rhs
    n_rows = {"eq": 0, "le": 0}
    bounds, c, where = [], [], []
    off = 0
    for members, cons, ts in jobs:
        pos = {v: i for i, v in enumerate(members)}
        m = len(members)
        for copy, t in enumerate(ts):
            base = off + copy * m
            for coefs, b, sense in cons:
                kind = "eq" if sense == "eq" else "le"
                data, ri, ci, rhs = rows[kind]
                r = n_rows[kind]
                for v, cf in coefs.items():
                    data.append(cf)
                    ri.append(r)
                    ci.append(base + pos[v])
                rhs.append(b)
                n_rows[kind] += 1
            bounds += [(lb[v], _BIG) for v in members]
            obj = np.zeros(m)
            obj[pos[t]] = 1.0
            c.append(obj)
            where.append(base + pos[t])
        off += m * len(ts)
    c = np.concatenate(c)
    kw = {"bounds": bounds, "method": "highs"}
    for kind, (a, b) in (("eq", ("A_eq", "b_eq")), ("le", ("A_ub", "b_ub"))):
        data, ri, ci, rhs = rows[kind]
        if n_rows[kind]:
            kw[a] = sparse.csr_matrix((data, (ri, ci)), shape=(n_rows[kind], off))
            kw[b] = np.array(rhs)
    lo = linprog(c, **kw)
    hi = linprog(-c, **kw) if lo.status == 0 else None
    if lo.status != 0 or hi is None or hi.status != 0:
        return [_lp(members, cons, lb, ts) for members, cons, ts in jobs]
    out, k = [], 0
    for _members, _cons, ts in jobs:
        res = {}
        for t in ts:
            j = where[k]
            high = float(hi.x[j])
            res[t] = (float(lo.x[j]), math.inf if high >= _BIG * 0.5 else high)
            k += 1
        out.append(res)
    return out


_BIG = 1e9  # an upper bound no count reaches: a count bounded only by it is unbounded
_LP_CELLS = 100_000  # variables per block-diagonal LP (targets are solved in chunks of this size)


def _lp(members, cons, lb, targets):
    """Min and max of each target over one component, as two block-diagonal LPs (one block per target).

    The blocks are independent copies of the component, so minimizing the sum of the targets' copies
    minimizes each target: two :func:`scipy.optimize.linprog` calls (HiGHS) per component instead of two
    per target.
    """
    pos = {v: i for i, v in enumerate(members)}
    m, k = len(members), len(targets)

    def matrix(rows):
        data, ri, ci = [], [], []
        for r, (coefs, _) in enumerate(rows):
            for v, c in coefs.items():
                data.append(c)
                ri.append(r)
                ci.append(pos[v])
        return sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), m))

    eq = [(c, b) for c, b, s in cons if s == "eq"]
    ub = [(c, b) for c, b, s in cons if s != "eq"]
    bounds = [(lb[v], _BIG) for v in members] * k
    c = np.zeros(m * k)
    c[[i * m + pos[t] for i, t in enumerate(targets)]] = 1.0

    def solve(eq, ub, sign):
        kw = {"bounds": bounds, "method": "highs"}
        if eq:
            kw["A_eq"] = sparse.kron(sparse.identity(k, format="csr"), matrix(eq), format="csr")
            kw["b_eq"] = np.tile([b for _, b in eq], k)
        if ub:
            kw["A_ub"] = sparse.kron(sparse.identity(k, format="csr"), matrix(ub), format="csr")
            kw["b_ub"] = np.tile([b for _, b in ub], k)
        return linprog(sign * c, **kw)

    lo = solve(eq, ub, 1.0)
    if lo.status == 2:  # infeasible: relations assumed exact do not all hold; read them as <=
        eq, ub = [], eq + ub
        lo = solve(eq, ub, 1.0)
    hi = solve(eq, ub, -1.0)
    out = {}
    for i, t in enumerate(targets):
        j = i * m + pos[t]
        low = float(lo.x[j]) if lo.status == 0 else float(lb[t])
        high = float(hi.x[j]) if hi.status == 0 else math.inf
        out[t] = (low, math.inf if high >= _BIG * 0.5 else high)
    return out


def _width(interval) -> float:
    lo, hi = interval
    if math.isinf(hi):
        return math.inf
    return math.floor(hi + _TOL) - math.ceil(lo - _TOL)


# ---------------------------------------------------------------------------------------------
# Protection


def _row_label(model: _Model, rid: int) -> str:
    r = model.rows.iloc[rid]
    where = "" if r["school"] == "all" else f" school {r['school']}"
    yr = "" if pd.isna(r["year"]) else f" {int(r['year'])}"
    return f"{model.names[r['tid']]}[{r['uni'].split('|', 1)[-1]}]{where}{yr} {r['variable']}={r['level']}"


def _var_label(model: _Model, v: int) -> str:
    unit, year, school, variable, level = model.var_key[v][:5]
    yr = "" if year is None or (isinstance(year, float) and math.isnan(year)) else f" {int(year)}"
    where = "district" if school == "all" else f"school {school}"
    return f"{unit} {where}{yr} {variable}={level}"


class _State:
    def __init__(self, model: _Model, min_n: int, protection: int, near_bound: float):
        self.m = model
        self.min_n, self.protection, self.near = min_n, protection, near_bound
        self.H: set[int] = set()  # hidden population counts
        self.E: set[int] = set()  # rows whose estimates are withheld (population level)
        self.why: dict[int, str] = {}  # why each hidden count is hidden (for the analyst, never published)
        nv = len(model.var_key)
        self.var_rows = defaultdict(list)
        for rid, vs in enumerate(model.row_vars):
            for v in vs:
                self.var_rows[v].append(rid)
        self.var_rel = defaultdict(list)
        for k, (coefs, _) in enumerate(model.relations):
            for v in coefs:
                self.var_rel[v].append(k)
        self.decision = np.zeros(nv, dtype=bool)
        for vs in model.row_vars:
            self.decision[vs] = True
        self.group = defaultdict(list)  # (unit, year, school, variable, level) -> vars
        for v, key in enumerate(model.var_key):
            if key[0] == "students" and not model.var_total[v]:
                self.group[key[:5]].append(v)

    def hidden_rows(self, *, counts: bool = False) -> np.ndarray:
        """Suppressed rows; with ``counts``, only those whose counts are secret (rows withheld for their
        estimates alone, ``E``, keep counts that are published elsewhere: the audit treats them as shown)."""
        hid = np.array(self.m.pre_hidden, dtype=bool)
        for v in self.H:
            hid[self.var_rows[v]] = True
        if self.E and not counts:
            hid[list(self.E)] = True
        return hid

    def link(self) -> None:
        """Rule 2: hidden everywhere, and close counts of the same group hidden with it."""
        changed = True
        while changed:
            changed = False
            for vs in self.group.values():
                hx = [self.m.var_x[v] for v in vs if v in self.H]
                if not hx:
                    continue
                for v in vs:
                    if v not in self.H and min(abs(self.m.var_x[v] - h) for h in hx) < self.protection:
                        self.H.add(v)
                        self.why[v] = "same group, close count"
                        changed = True

    def complement(self, v: int, exclude=()) -> int | None:
        """Rule 3: the smallest shown decision variable sharing a relation with ``v`` (levels first)."""
        m = self.m
        # the relations holding v, the one with the fewest hidden cells first (it is the one that pins v)
        rels = sorted(self.var_rel[v], key=lambda k: (sum(u in self.H for u in m.relations[k][0]), k))
        for total_ok in (False, True):
            for k in rels:
                coefs = m.relations[k][0]
                part = coefs.get(v, 0) > 0
                cands = [u for u, c in coefs.items() if u != v and self.decision[u] and u not in self.H
                         and u not in exclude and m.var_x[u] > 0
                         and (total_ok or (not m.var_total[u] and (c > 0 or not part)))]
                if cands:
                    # parts before totals, and a count shown in one row before one shown in many (a named
                    # reference level, whose hiding hides every row compared with it)
                    return min(cands, key=lambda u: (m.var_total[u], coefs[u] < 0, len(self.var_rows[u]) > 1,
                                                     m.var_x[u], str(m.var_key[u])))
        return None

    def count_audit(self):
        hid = self.hidden_rows(counts=True)
        targets = sorted(self.H)
        iv = _intervals(self.m, ~hid, targets)
        bad = [t for t in targets if _width(iv[t]) < self.protection]
        return iv, bad

    def estimate_audit(self) -> list[tuple[list[int], list[int], int | None, tuple]]:
        """Rule 4: relations whose hidden estimates an attacker can determine (or bound near 0%/100%)."""
        m = self.m
        hid = self.hidden_rows()
        cand = []
        by_uni = defaultdict(list)  # shown gap rows against all others, by universe: each gives its total
        for r in np.flatnonzero(~hid):
            if m.row_ref[r] is not None:
                by_uni[(m.rows.at[r, "tid"], m.rows.at[r, "uni"])].append(int(r))
        for parts, total, kind, key in m.partitions:
            hp = [r for r in parts if hid[r]]
            if not hp:
                continue
            sp = [r for r in parts if not hid[r]]
            if kind == "gap":
                n_all = sum(m.row_weight[r] for r in parts)
                src = [r for r in by_uni.get((key[0], key[1]), ())
                       if abs(m.row_weight[r] + m.row_ref[r][0] - n_all) < 0.5]
                if not src:
                    continue  # no shown row gives the population's overall value
                total = src[0]
            elif hid[total]:
                continue
            cand.append((parts, hp, sp, total, kind, key))
        singles = [m.row_vars[hp[0]][0] for _, hp, *_ in cand if len(hp) == 1]
        iv = _intervals(m, ~self.hidden_rows(counts=True), singles) if singles else {}
        out = []
        for parts, hp, sp, total, kind, key in cand:
            one_known = len(hp) == 1 and _width(iv[m.row_vars[hp[0]][0]]) == 0
            near = False
            spec = m.specs[m.rows.at[parts[0], "tid"]]
            for col, bounds in spec.estimates.items():
                if bounds is None:
                    continue
                lo, hi = bounds
                if kind == "gap":
                    if col != "estimate":
                        continue
                    r0 = total
                    ref_n, ref_est = m.row_ref[r0]
                    tw = m.row_weight[r0] + ref_n
                    ts = m.row_weight[r0] * m.row_est[r0].get(col, np.nan) + ref_n * ref_est
                else:
                    tw = m.row_weight[total]
                    ts = tw * m.row_est[total].get(col, np.nan)
                sh = ts - sum(m.row_weight[r] * m.row_est[r].get(col, np.nan) for r in sp)
                th = sum(m.row_weight[r] for r in hp)
                if not (th > 0) or math.isnan(sh):
                    continue
                pooled = sh / th
                span = (hi - lo) * self.near
                if pooled <= lo + span + _TOL or pooled >= hi - span - _TOL:
                    near = True
            if one_known or near:
                out.append((hp, sp, total if kind == "cell" else None, kind))
        return out


def protect_tables(tables: Mapping[str, tuple[pd.DataFrame, TableSpec]], *, min_n: int = config.MIN_CELL_SIZE,
                   protection: int | None = None, near_bound: float = 0.05, year: int | None = None,
                   max_rounds: int = 200) -> tuple[dict[str, pd.DataFrame], AuditReport]:
    """Decide suppression jointly over a district's published tables, and audit the result.

    Parameters
    ----------
    tables
        ``{name: (complete table, TableSpec)}``: every table the district publishes, unsuppressed (rows
        whose counts are missing, or already flagged ``suppressed``, stay suppressed).
    min_n
        Smallest number of students a shown cell may describe (primary rule).
    protection
        Protection range: the narrowest interval an attacker may be able to derive for a hidden count
        (default ``min_n``).
    near_bound
        Rule 4's margin, as a share of an outcome's range.
    year
        School year of tables whose spec names no year column (the analysis year).

    Returns
    -------
    (dict, AuditReport)
        The protected tables (same names, columns and row order; ``suppressed``, ``suppression_reason``
        set, every number of a suppressed row missing) and the audit report. The report fails (and
        lists the cells) only if no further cell could be hidden.
    """
    import time

    t0 = time.perf_counter()
    if min_n < 1:
        raise ValueError(f"protect_tables: min_n must be at least 1, got {min_n}")
    protection = min_n if protection is None else int(protection)
    model = _Model(tables, year=year, known=True, min_n=min_n)
    st = _State(model, min_n, protection, near_bound)
    st.H |= model.primary_vars
    for rid in model.ref_small_rows:
        st.H.add(model.row_vars[rid][0])
    st.why.update({v: "primary" for v in st.H})
    primary_rows = st.hidden_rows()
    failures: list = []
    iv: dict = {}
    for _ in range(max_rounds):
        st.link()
        iv, bad = st.count_audit()
        if bad:
            added = False
            for v in bad:
                c = st.complement(v)
                if c is not None:
                    st.H.add(c)
                    st.why.setdefault(c, f"complement (count of {_var_label(model, v)})")
                    added = True
            if added:
                continue
            failures = [(_var_label(model, v), *iv[v]) for v in bad]
            break
        flagged = st.estimate_audit()
        if not flagged:
            failures = []
            break
        changed = False
        for hp, sp, total, kind in flagged:
            if sp:
                # the smallest shown row's estimates are withheld (its count stays: it is not what leaks)
                r = min(sp, key=lambda r: (model.row_weight[r], _row_label(model, r)))
                st.E.add(int(r))
                changed = True
            else:
                # nothing left to hide in the relation: withhold the estimates of the whole population
                rows = model.rows
                tid, uni = rows.at[hp[0], "tid"], rows.at[hp[0], "uni"]
                sel = (rows["tid"] == tid) & (rows["uni"] == uni)
                if kind == "cell":
                    sel &= rows["school"] == rows.at[total, "school"]
                else:
                    total = None
                new = set(np.flatnonzero(sel.to_numpy()).tolist()) - st.E
                if new:
                    st.E |= new
                    changed = True
        if not changed:
            failures = [(_row_label(model, hp[0]), math.nan, math.nan) for hp, *_ in flagged]
            break
    hidden = st.hidden_rows()
    out = _apply(model, hidden, min_n)
    ivs = pd.DataFrame([{"cell": _var_label(model, v), "true": model.var_x[v], "low": iv[v][0], "high": iv[v][1],
                         "why": st.why.get(v, "")} for v in sorted(st.H) if v in iv],
                       columns=["cell", "true", "low", "high", "why"])
    report = AuditReport(min_n=min_n, protection=protection, cells=len(model.rows),
                         primary=int(primary_rows.sum()), beyond_primary=int((hidden & ~primary_rows).sum()),
                         withheld=len(st.E), hidden_counts=len(st.H), failures=failures, intervals=ivs,
                         seconds=time.perf_counter() - t0)
    return out, report


def _apply(model: _Model, hidden: np.ndarray, min_n: int) -> dict[str, pd.DataFrame]:
    reason = REASON.format(min_n=min_n)
    out = {}
    rows = model.rows
    for tid, (name, df) in enumerate(zip(model.names, model.frames)):
        df = df.copy()
        sup = np.zeros(len(df), dtype=bool)
        if len(df):
            sel = rows["tid"].to_numpy() == tid
            sup[rows["row"].to_numpy()[sel]] = hidden[sel]
        old = df["suppressed"].fillna(False).astype(bool).to_numpy() if "suppressed" in df.columns else \
            np.zeros(len(df), dtype=bool)
        spec = model.specs[tid]
        keep = LABELS | set(spec.universe)
        for c in df.columns:
            if c in keep:
                continue
            col = df[c]
            if pd.api.types.is_bool_dtype(col) or str(col.dtype) == "boolean":
                df[c] = col.astype("boolean").mask(sup)
            elif pd.api.types.is_integer_dtype(col):
                df[c] = col.astype("Int64").mask(sup)
            elif pd.api.types.is_numeric_dtype(col):
                df[c] = col.mask(sup)
            else:
                df[c] = col.mask(sup, "" if col.dtype == object or str(col.dtype) == "str" else pd.NA)
        df["suppressed"] = sup | old
        # one reason for every hidden row, whatever hid it: a reader cannot tell a small cell from a complement
        df["suppression_reason"] = np.where(sup | old, reason, "")
        df["suppression_reason"] = df["suppression_reason"].astype("str")
        df.attrs = dict(model.frames[tid].attrs)
        df.attrs["disclosure"] = "protected"
        out[name] = df
    return out


def audit(tables: Mapping[str, tuple[pd.DataFrame, TableSpec]], *, min_n: int = config.MIN_CELL_SIZE,
          protection: int | None = None, year: int | None = None) -> AuditReport:
    """Audit already protected tables as an attacker who reads all of them would (published values only).

    Hidden counts are unknowns; every shown count is an equality; levels add up to totals and schools to
    the district. Each hidden count's interval is computed with :func:`scipy.optimize.linprog`. The report's
    ``failures`` name each hidden count whose interval is narrower than ``protection`` (default ``min_n``)
    and reaches below ``min_n`` (a hidden row pinned at ``min_n`` or more is a large group withheld for its
    estimates, whose size other tables publish), and each shown count below ``min_n``.
    """
    return audit_published(tables, min_n=min_n, protection=protection, year=year)


def audit_published(tables: Mapping[str, tuple[pd.DataFrame, TableSpec]], *, min_n: int = config.MIN_CELL_SIZE,
                    protection: int | None = None, year: int | None = None) -> AuditReport:
    """See :func:`audit`."""
    import time

    t0 = time.perf_counter()
    protection = min_n if protection is None else int(protection)
    model = _Model(tables, year=year, known=False, min_n=min_n)
    hidden = np.array(model.pre_hidden, dtype=bool)
    failures = []
    targets = sorted({v for rid in np.flatnonzero(hidden) for v in model.row_vars[rid]
                      if math.isnan(model.var_x[v])})
    iv = _intervals(model, ~hidden, targets)
    for v in targets:
        # a hidden row whose count the attacker pins at min_n or more is a large group whose size is published
        # elsewhere (a row withheld for its estimates only): not a small cell
        if _width(iv[v]) < protection and iv[v][0] < min_n - _TOL:
            failures.append((_var_label(model, v), *iv[v]))
    for rid, coefs, value in model.entries:
        if not hidden[rid] and 0 < value < min_n:
            failures.append((_row_label(model, rid) + " (shown count below min_n)", value, value))
    ivs = pd.DataFrame([{"cell": _var_label(model, v), "true": None, "low": iv[v][0], "high": iv[v][1]}
                        for v in targets], columns=["cell", "true", "low", "high"])
    return AuditReport(min_n=min_n, protection=protection, cells=len(model.rows), primary=0,
                       beyond_primary=0, hidden_counts=len(targets), failures=failures, intervals=ivs,
                       seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# A district's published set

#: How each published table of :class:`~opportunity_research.study.analysis.DistrictAnalysis` maps onto populations.
DISTRICT_SPECS: dict[str, TableSpec] = {
    "gaps": TableSpec("gap", universe=("measure", "subject"), estimates={"estimate": (0.0, 1.0)}),
    "furthest": TableSpec("gap", universe=("subject",), estimates={"estimate": (0.0, 1.0)}),
    "multiple": TableSpec("gap", universe=("measure",), estimates={"estimate": (0.0, 1.0)}),
    "composition": TableSpec("gap", universe=("measure",), unit="classrooms", estimates={"estimate": (0.0, 1.0)}),
    "climate": TableSpec("cell", universe=("school_year", "scale"), year="school_year",
                         estimates={"favorable": (0.0, 1.0), "mean_score": tuple(map(float, CLIMATE_SCALE))}),
    "catch_up": TableSpec("cell", universe=("subject", "start_year", "years_later", "school_year"),
                          counts=("n_students", "n", "n_start"), year="school_year", estimates={"estimate": (0.0, 1.0)}),
    "growth_grade_levels": TableSpec("cell", universe=("subject", "start_year", "end_year"),
                                     counts=("n_students", "n"), year="end_year"),
    "movement": TableSpec("cell", universe=("subject", "from_year", "school_year"), counts=("n_students", "n"),
                          year="school_year", estimates={"moved_up": (0.0, 1.0), "moved_down": (0.0, 1.0)}),
    # V gaps from performance-level counts (study.levelgaps.level_gaps): students by group, subject and year
    "level_gaps": TableSpec("gap", universe=("subject", "school_year"), year="school_year",
                            counts=("n", "reference_n")),
    # HETOP means from performance-level counts (study.levelgaps.hetop_means): school x group cells
    "level_means": TableSpec("cell", universe=("subject", "school_year"), counts=("n",), year="school_year"),
    "indicators_shares": TableSpec("cell", universe=("measure", "school_year"), year="school_year",
                                   estimates={"estimate": (0.0, 1.0)}),
    "indicators_growth": TableSpec("cell", universe=("measure", "school_year"), year="school_year"),
}
_UNBOUNDED_INDICATORS = frozenset({"growth_grade_levels"})


def district_tables(a, indicators: pd.DataFrame | None = None) -> dict[str, tuple[pd.DataFrame, TableSpec]]:
    """The published tables of a district analysis with their specs (``indicators`` split by kind)."""
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


def protect_district(a, *, indicators: pd.DataFrame | None = None, min_n: int | None = None,
                     protection: int | None = None):
    """Protect everything a district analysis publishes; returns a new analysis with ``disclosure`` set.

    ``a`` is a :class:`~opportunity_research.study.analysis.DistrictAnalysis` whose tables were computed without
    suppression; ``indicators`` the scorecard's indicator table (every year), from which the scorecard is
    rebuilt so that its pages show only protected values.

    Raises
    ------
    DisclosureError
        When the audit cannot be satisfied (it names the cells).
    """
    import dataclasses

    from ..study import measures, scorecard

    min_n = a.min_n if min_n is None else min_n
    year = measures.analysis_year(a.district)
    tables = district_tables(a, indicators)
    protected, report = protect_tables(tables, min_n=min_n, protection=protection, year=year)
    if not report.passed:
        cells = [f[0] for f in report.failures]
        raise DisclosureError(f"disclosure audit failed for {a.district.district_id}: {len(cells)} cell(s) cannot "
                              f"be protected: " + "; ".join(cells[:8]), cells)
    changes = {k: protected[k] for k in tables if not k.startswith("indicators")}
    if indicators is not None and len(indicators):
        parts = [protected[k] for k in ("indicators_shares", "indicators_growth") if len(protected[k])]
        ind = pd.concat(parts).sort_index() if parts else indicators.iloc[:0]
        ind.attrs = dict(indicators.attrs)
        d = a.district
        changes["scorecard"] = scorecard.opportunity_scorecard(
            ind, goals=d.goals if d.has("goals") else None, gaps=changes.get("gaps"), min_n=min_n,
            needs=list(a.scorecard.needs), school_names=a.scorecard.schools)
    return dataclasses.replace(a, **changes, disclosure=report)


#: Published CSV tables (``tables/<name>.csv`` of a district report) that the runner's gate re-audits.
FILE_SPECS: dict[str, TableSpec] = {
    "gaps": DISTRICT_SPECS["gaps"],
    "furthest_from_opportunity": DISTRICT_SPECS["furthest"],
    "multiple_measures": DISTRICT_SPECS["multiple"],
    "classroom_composition": DISTRICT_SPECS["composition"],
    "climate": DISTRICT_SPECS["climate"],
    "catch_up": DISTRICT_SPECS["catch_up"],
    "growth_grade_levels": DISTRICT_SPECS["growth_grade_levels"],
    "movement": DISTRICT_SPECS["movement"],
    "level_gaps": DISTRICT_SPECS["level_gaps"],
    "level_means": DISTRICT_SPECS["level_means"],
}


def audit_report_folder(folder, *, min_n: int = config.MIN_CELL_SIZE, protection: int | None = None) -> list[str]:
    """The publishing gate: re-audit a finished district report folder from its files alone.

    Reads ``findings.json`` (its ``disclosure`` record, when there is one, must say the joint suppression
    passed) and every
    ``tables/<name>.csv`` named in :data:`FILE_SPECS`, and audits them with :func:`audit_published` as an
    attacker reading those files would. Returns the problems (unprotected cells named, no values); empty
    when the folder may be published.
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
            problems += [f"findings.json: unprotected cell {c}" for c in rec.get("unprotected_cells", [])] or [
                "findings.json: disclosure audit did not pass"]
    tables = {}
    for name, spec in FILE_SPECS.items():
        p = folder / "tables" / f"{name}.csv"
        if p.exists():
            df = pd.read_csv(p, keep_default_na=True, dtype={"level": "str", "group": "str", "school_id": "str"})
            if len(df) and "suppressed" in df.columns:
                df["suppressed"] = df["suppressed"].astype("str").str.lower().isin(["true", "1", "1.0"])
                tables[name] = (df, spec)
    if tables:
        rep = audit_published(tables, min_n=min_n, protection=protection,
                              year=int(year) if year is not None else None)
        problems += [f"tables: {c} (attacker's interval {lo:g} to {hi:g})" for c, lo, hi in rep.failures]
    return problems
