"""The population model of the joint disclosure pass: tables, rows, population counts and their relations.

See :mod:`opportunity_research.disclosure.joint` for the rules and the audit; this module reads published
tables (through :class:`TableSpec`) into :class:`PopulationModel`: every count a row publishes is a
variable (one variable per population: equal counts of a group, school and year are linked across tables
and columns), with the additive relations an attacker adds up (levels, schools, subjects, columns).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from ..intake.contract import ALL_OTHERS
from .model_arrays import (
    Entries,
    Partitions,
    Relations,
    RowEstimates,
    RowLists,
    VarKeys,
    codes,
    count_codes,
    group_relations,
    key_codes,
    key_groups,
    picked_groups,
    subject_relations,
)
from .model_arrays import entry as _entry
from .model_arrays import label_codes as codes_of
from .model_arrays import sums as _sums

__all__ = [
    "ALL_OTHERS",
    "LABELS",
    "REASON",
    "AuditReport",
    "DisclosureError",
    "PopulationModel",
    "TableSpec",
    "populations",
    "row_label",
    "var_label",
]

#: The one reason text of every suppressed row (``{min_n}`` is filled in).
REASON = "n < {min_n} or complementary"
#: Columns that label rows: never blanked in a suppressed row.
LABELS = frozenset(
    {
        "group",
        "level",
        "variable",
        "school_id",
        "reference",
        "label",
        "measure",
        "subject",
        "outcome",
        "kind",
        "ci_method",
        "school_year",
        "scale",
        "start_year",
        "end_year",
        "years_later",
        "from_year",
        "unit",
        "resource",
        "suppressed",
        "suppression_reason",
        "item",
        "question",
    }
)


class DisclosureError(RuntimeError):
    """Published outputs fail the disclosure audit; ``cells`` names the unprotected cells.

    Examples
    --------
    >>> DisclosureError("audit failed", ["students school A 2016 ell=1"]).cells
    ['students school A 2016 ell=1']
    """

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
    weight
        Count column that weights the estimates (means and shares add up with these weights; default
        ``"n"``, the results an estimate describes; the first count column when absent).

    Examples
    --------
    >>> TableSpec("cell", universe=("subject",), counts=("n_students", "n")).weight
    'n'

    """

    style: str
    universe: tuple[str, ...] = ()
    counts: tuple[str, ...] = ("n",)
    estimates: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    year: str | None = None
    unit: str = "students"
    weight: str = "n"


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
    pooled_groups
        Groups published only as one pooled group (``"race_ethnicity=asian"``, ...;
        :func:`~opportunity_research.study.analysis.pool_small_groups`).
    left_out
        ``{table: rows}``: rows left out because of the data (``protect_tables(unpublished=...)``, such as
        :func:`~opportunity_research.disclosure.design.school_breakdowns`); not counted in ``cells``.
    small_unpublished
        Rows left out that describe fewer than ``min_n`` students: small cells that need no suppression
        (counted with ``primary`` in :attr:`secondary_per_primary`).
    unpublished_beyond
        Rows left out that are not small: information withheld to protect the small ones (counted with
        ``beyond_primary`` in :attr:`secondary_per_primary`, exactly as if they had been hidden).
    never_published, small_never_published
        Rows the publication design never publishes in any district (schools' "all other students" rows of
        yes/no groups, :func:`~opportunity_research.disclosure.design.never_published`): those of at least
        ``min_n`` students are not information loss (the rule does not depend on the data) and are not counted
        in :attr:`secondary_per_primary`; the small ones are small cells (counted in ``small_unpublished``).

    Examples
    --------
    >>> r = AuditReport(min_n=10, protection=10, cells=100, primary=4, beyond_primary=2)
    >>> r.passed, r.secondary_per_primary
    (True, 0.5)

    Rows of a school breakdown that is not published count like hidden rows (small ones with the small
    cells, the others as loss):

    >>> AuditReport(min_n=10, protection=10, primary=4, beyond_primary=2, small_unpublished=4,
    ...             unpublished_beyond=8).secondary_per_primary
    1.25

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
    pooled_groups: list = field(default_factory=list)
    left_out: dict = field(default_factory=dict)
    small_unpublished: int = 0
    unpublished_beyond: int = 0
    never_published: int = 0
    small_never_published: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def secondary_per_primary(self) -> float:
        """Information loss: cells withheld beyond the small cells, per small cell (0 when nothing is small).

        Both sides count the rows of school breakdowns left out (:func:`~opportunity_research.disclosure.design.
        school_breakdowns`) as if they had been hidden: their small rows with the small cells
        (:attr:`small_unpublished`), the others as loss (:attr:`unpublished_beyond`), so that leaving a row out
        never looks cheaper than hiding it."""
        small = self.primary + self.small_unpublished
        return (self.beyond_primary + self.unpublished_beyond) / small if small else 0.0

    def to_dict(self) -> dict:
        """Summary for ``findings.json`` (no cell values)."""
        return {
            "min_n": self.min_n,
            "protection_range": self.protection,
            "published_cells": self.cells,
            "suppressed_primary": self.primary,
            "suppressed_beyond_primary": self.beyond_primary,
            "secondary_per_primary": round(self.secondary_per_primary, 3),
            "pooled_groups": list(self.pooled_groups),
            # rows not published that the loss counts: school breakdowns left out, and small rows the design
            # never publishes (small_rows_not_published counts both kinds of small row)
            "school_breakdown_rows_not_published": int(sum(self.left_out.values()))
            + self.small_never_published,
            "small_rows_not_published": self.small_unpublished,
            # by design, in every district (not information loss): schools' "all other students" rows of yes/no
            # groups with at least min_n students
            "rows_never_published_by_design": self.never_published,
            "estimates_withheld": self.withheld,
            "hidden_counts_audited": self.hidden_counts,
            "audit_passed": self.passed,
            "unprotected_cells": [f[0] for f in self.failures],
        }

    def methods_text(self) -> str:
        """One paragraph for a report's methods section (including the information loss)."""
        return (
            f"Suppression: every count of fewer than {self.min_n} students is hidden in every table, page and "
            f"file of this report, with further (complementary) cells chosen from the counts alone until "
            f"an audit of everything published, adding up what the tables imply (levels to totals, schools "
            f"to the district, subjects to all subjects, the same students counted in two tables), shows "
            f"that each hidden count can only be bounded to a range at least {self.protection} students "
            f"wide and no hidden share or mean can be worked out. Of {self.cells:,} published cells, "
            f"{self.primary:,} were hidden as small and {self.beyond_primary:,} more to protect them"
            f"{self._small_text()}: an information loss of {self.secondary_per_primary:.2f} cells withheld "
            f"beyond the small ones per small cell. "
            f"{self._design_text()}Audit {'passed' if self.passed else 'FAILED'}."
        )

    def _small_text(self) -> str:
        if not self.small_unpublished:
            return ""
        return (
            f"; of the rows that are not published, {self.small_unpublished:,} are small (counted with the "
            f"small cells) and {self.unpublished_beyond:,} others are counted in the loss as if hidden"
        )

    def _design_text(self) -> str:
        from ..study import labels

        parts = []
        if self.pooled_groups:
            names = [labels.group(g) for g in self.pooled_groups]
            parts.append(
                f"The smallest race/ethnicity groups ({', '.join(names)}) are reported together as one group. "
            )
        else:
            parts.append("No group was pooled. ")
        if self.never_published or self.small_never_published:
            parts.append(
                f"A school's figures for the students outside a yes/no group (for example students who are "
                f"not English learners) are never published in any district: they are the school's "
                f"all-students figure minus the group's ({self.never_published + self.small_never_published:,} "
                f"rows; not counted as hidden). "
            )
        left = int(sum(self.left_out.values()))
        if left:
            parts.append(
                f"A school's figures by a group variable are shown only where every group of that variable "
                f"has at least {self.min_n} students at every school in that year ({left:,} rows are not "
                f"published; each school's all-students figures and the district's group figures are). "
            )
        return "".join(parts)


# ---------------------------------------------------------------------------------------------
# The model: rows, variables, relations


def _last_rows(code: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Per code (:func:`~.model_arrays.key_codes`): the last row of ``which`` with it, -1 where there is none (the
    row a dict from each such row's key to the row keeps)."""
    last = np.full(int(code.max(initial=-1)) + 1, -1, dtype=np.int64)
    rows = np.flatnonzero(which & (code >= 0))
    np.maximum.at(last, code[rows], rows)
    return last


def _split_group(group: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    code, g = pd.factorize(group.astype("str").to_numpy(dtype=object), use_na_sentinel=False)  # each once
    var = np.array([s.split("=", 1)[0] if "=" in s else "all" for s in g], dtype=object)
    lev = np.array([s.split("=", 1)[1] if "=" in s else "all" for s in g], dtype=object)
    return var[code], lev[code]


def _text_exact(dtype) -> bool:
    """Whether two values of ``dtype`` are equal exactly when their texts (``astype("str")``) are: text and integers
    (not floats: ``-0.0 == 0.0``; not objects: ``1 == 1.0 == True``).

    Examples
    --------
    >>> _text_exact(pd.Series([2016, 2017]).dtype), _text_exact(pd.Series([0.0, -0.0]).dtype)
    (True, False)
    """
    return isinstance(dtype, pd.StringDtype) or (dtype != object and pd.api.types.is_integer_dtype(dtype))


def _level_text(values: pd.Series) -> np.ndarray:
    return values.astype("str").str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).to_numpy(dtype=object)


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


#: The columns of :attr:`PopulationModel.rows` and their types (labels as categories: as text they took about 50 MB
#: at 1,000,000 students).
ROW_COLUMNS = {
    "tid": np.int64,
    "row": np.int64,
    "uni": "category",
    "school": "category",
    "variable": "category",
    "level": "category",
    "year": float,
}


def _row_frame(blocks: list[tuple]) -> pd.DataFrame:
    """The model's rows from their columns' blocks (each block one value sequence per column of
    :data:`ROW_COLUMNS`, in order)."""
    if not blocks:
        return pd.DataFrame([], columns=list(ROW_COLUMNS))
    cols = {}
    for j, (c, t) in enumerate(ROW_COLUMNS.items()):
        values = np.concatenate([np.asarray(b[j], dtype=object if t == "category" else t) for b in blocks])
        if t == "category":  # the categories as the labels' own strings (text ones made a string a row read)
            code, uniques = pd.factorize(values)
            values = pd.Categorical.from_codes(code, categories=pd.Index(uniques, dtype=object))
        cols[c] = values
    return pd.DataFrame(cols)


class PopulationModel:
    """Rows of every table, the population-count variables they publish and the additive relations.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = pd.DataFrame({"school_id": "A", "group": ["all", "ell=1", "ell=0"], "n": [50, np.nan, np.nan],
    ...                   "suppressed": [False, True, True]})
    >>> m = PopulationModel({"t": (t, TableSpec("cell"))}, year=2016, known=False, min_n=10)
    >>> len(m.rows), len(m.relations)  # three rows; the levels of ell add up to the school's students
    (3, 1)
    """

    def __init__(
        self,
        tables: Mapping[str, tuple[pd.DataFrame, TableSpec]],
        *,
        year: int | None,
        known: bool,
        min_n: int,
    ):
        self.known = known
        self._min_n = min_n
        self.lp_cache: dict = {}  # component LPs already solved (the protection loop re-audits unchanged parts)
        self.lp_arrays = None  # the entries and relations as sparse rows (built by lp.intervals on first use)
        # rows audited as hidden but not published (protect_tables)
        self.unpublished = np.zeros(0, dtype=bool)
        self.design = np.zeros(0, dtype=bool)  # of those, the rows the publication design never publishes
        self.names = list(tables)
        self.frames = [tables[k][0].reset_index(drop=True) for k in self.names]
        self.specs = [tables[k][1] for k in self.names]
        # each variable's key, value and whether it counts a total (the values and flags as arrays once built)
        self.var_key = VarKeys()  # as columns (model_arrays.VarKeys)
        self.var_x: list[float] | np.ndarray = []
        self.var_total: list[bool] | np.ndarray = []
        self._index: dict = {}
        # the rows' columns (tid, row, uni, school, variable, level, year), a block a table (a tuple a row took
        # about 170 MB at 1,000,000 students while the model was built)
        rows: list[tuple] = []
        self._n_rows = 0
        self.row_vars = RowLists()  # decision variables of each row, as arrays (model_arrays.RowLists)
        self.entries = Entries()  # (row id, {var: coef}, value), as arrays
        # ({var: coef}, "eq" | "le") meaning sum <= / == 0, held as arrays table by table (model_arrays.Relations)
        self.relations = Relations()
        self.row_est = RowEstimates()  # {column: value}, read from the tables' columns
        self._weights: list[np.ndarray] = []  # each table's rows' weights (row_weight once built)
        self.row_own = RowLists()  # the counts a row describes (not a gap row's total or reference)
        # gap rows against all others: (reference_n, its value)
        self.row_ref: list[tuple[float, float] | None] = []
        self._pre_blocks: list[
            np.ndarray
        ] = []  # each table's rows already suppressed (pre_hidden once built)
        self.primary_vars: set[int] = set()
        self.ref_small_rows: list[int] = []
        self.partitions = Partitions()  # (part rows, total, kind, key), as arrays (model_arrays.Partitions)
        for tid, (df, spec) in enumerate(zip(self.frames, self.specs)):
            if len(df) == 0:
                continue
            if spec.style == "gap":
                self._gap_rows(tid, df, spec, year, rows)
            elif spec.style == "cell":
                self._cell_rows(tid, df, spec, year, rows)
            else:
                raise ValueError(f"TableSpec.style must be 'gap' or 'cell', got {spec.style!r}")
            self.relations.flush()
            self.partitions.flush()
        self.entries.freeze()
        self.row_vars.freeze()
        self.row_own.freeze()
        self._index = {}  # var()'s lookup serves the build only
        # the variables' values and flags, the rows' weights and whether each was suppressed in the input, as arrays
        self.var_x = np.array(self.var_x, dtype=float)
        self.var_total = np.array(self.var_total, dtype=bool)
        self.var_key.freeze(self.var_x)
        n_rows = len(self.row_vars)
        self.row_weight = np.concatenate([np.zeros(0), *self._weights]).astype(float)
        self.pre_hidden = (
            np.concatenate([np.zeros(0, dtype=bool), *self._pre_blocks]).astype(bool).reshape(n_rows)
        )
        del self._weights, self._pre_blocks, self._n_rows
        self.rows = _row_frame(rows)
        # for the protection loop's hot paths: each row's table and universe, the variables of each row (rows x
        # variables) and the gap rows measured against all others
        code, uni = codes_of(self.rows["uni"].to_numpy())  # one string a universe (90 MB at 1M students)
        self.row_tid, self.row_uni = self.rows["tid"].tolist(), uni[code].tolist()
        rv = self.row_vars
        ij = (np.repeat(np.arange(n_rows), rv.lens()), rv.var)
        self.row_var_mat = sparse.csr_matrix((np.ones(len(rv.var)), ij), shape=(n_rows, len(self.var_key)))
        self.ref_rows = np.array([r for r, x in enumerate(self.row_ref) if x is not None], dtype=np.int64)

    # variables ---------------------------------------------------------------------------------
    def var(self, unit, year, school, variable, level, x, *, total=False, private=None, link=None) -> int:
        """The variable of one population count of one universe (``private`` names it within the universe).

        With true values (protecting), equal counts of one group, school and year are one variable wherever
        they appear. From published files alone, hidden counts are linked through ``link`` (the shown size of
        the set of students their universe splits: two universes of the same size and year count the same
        students, as an attacker who compares them would assume); otherwise each universe has its own.
        """
        if self.known and not math.isnan(x):
            # one population, one variable: counts of the same group, school and year with the same value are
            # taken to be the same students in every table and column (an attacker links equal counts), so a
            # count hidden in one place is hidden in all of them
            key = (unit, year, school, variable, level, ("n", float(x)))
        elif not self.known and link is not None:
            key = (unit, year, school, variable, level, link)
        else:
            key = (unit, year, school, variable, level, private)
        v = self._index.get(key)
        if v is None:
            v = self._index[key] = len(self.var_key)
            self.var_key.append(key)
            self.var_x.append(float(x))
            self.var_total.append(total)
        return v

    def _year_of(self, df, spec, year):
        if spec.year and spec.year in df.columns:
            return _num(df[spec.year])
        return np.full(len(df), np.nan if year is None else float(year))

    def _unis(self, tid, df, spec):
        cols = [c for c in spec.universe if c in df.columns]
        if not cols:
            return np.full(len(df), self.names[tid], dtype=object)
        # each distinct combination joined once, as text: the columns numbered as they are where two values are equal
        # exactly when their texts are (text, integers: every row's text took about 0.3 CPU-s at 1,000,000 students)
        code, first = codes([df[c] if _text_exact(df[c].dtype) else df[c].astype("str") for c in cols])
        parts = [df[c].iloc[first].astype("str").to_numpy(dtype=object) for c in cols]
        uni = [self.names[tid] + "|" + "|".join(p) for p in zip(*parts)]
        return np.array(uni, dtype=object)[code]

    def _est(self, df, spec):
        return {c: _num(df[c]) for c in spec.estimates if c in df.columns}

    def _pre(self, df, spec, counts):
        pre = (
            df["suppressed"].fillna(False).astype(bool).to_numpy()
            if "suppressed" in df.columns
            else np.zeros(len(df), dtype=bool)
        )
        return pre | np.isnan(counts[0])

    # gap tables ---------------------------------------------------------------------------------
    def _gap_rows(self, tid, df, spec, year, rows):
        n = _num(df[spec.counts[0]])
        ref_n = _num(df["reference_n"]) if "reference_n" in df.columns else np.full(len(df), np.nan)
        ref = (
            df["reference"].astype("str").to_numpy(dtype=object)
            if "reference" in df.columns
            else np.full(len(df), ALL_OTHERS, dtype=object)
        )
        var = df["group"].astype("str").to_numpy(dtype=object)
        lev = _level_text(df["level"])
        yrs = self._year_of(df, spec, year)
        unis = self._unis(tid, df, spec)
        est, order = self._est(df, spec), []
        ent: tuple[list, list, list, list, list] = ([], [], [], [], [])  # the table's entries (Entries.add)
        rv: tuple[list, list, list] = (
            [],
            [],
            [],
        )  # the rows' counts: how many, the counts, their own (RowLists)
        labels: list[tuple] = []  # the rows' labels (uni, variable, level, year), row by row
        ref_est = (
            _num(df["reference_estimate"]) if "reference_estimate" in df.columns else np.full(len(df), np.nan)
        )
        pre = self._pre(df, spec, [n])
        for (uni, v), ix in (
            pd.DataFrame({"u": unis, "v": var}, dtype=object).groupby(["u", "v"], sort=False).indices.items()
        ):
            ix = np.asarray(ix)
            yr = yrs[ix[0]]
            named = ref[ix[0]] != ALL_OTHERS
            own = []
            if self.known:
                total = float(np.nansum(n[ix]) + (np.nanmax(ref_n[ix]) if named and len(ix) else 0.0))
            else:
                shown = ~pre[ix]
                total = (
                    float(np.nanmax(n[ix][shown] + ref_n[ix][shown])) if shown.any() and not named else np.nan
                )
            tvar = self.var(spec.unit, yr, "all", "all", "all", total, total=True, private=(uni, v))
            ref_var, rx = None, np.nan
            if named:
                shown_ref = ref_n[ix] if self.known else ref_n[ix][~pre[ix]]
                rx = (
                    float(np.nanmax(shown_ref))
                    if len(shown_ref) and not np.isnan(shown_ref).all()
                    else np.nan
                )
                ref_var = self.var(
                    spec.unit, yr, "all", v, str(ref[ix[0]]), rx, private=(uni, v, "reference")
                )
            rids = []
            for i in ix:
                rid = self._n_rows + len(order)
                labels.append((uni, v, lev[i], yr))
                self.row_ref.append(None)
                order.append(i)
                link = (
                    ("set", total)
                    if not self.known and pre[i] and not named and not math.isnan(total)
                    else None
                )
                x = self.var(spec.unit, yr, "all", v, lev[i], n[i], private=(uni, v, lev[i]), link=link)
                own.append(x)
                rids.append(rid)
                rv[2].append(x)
                rv[0].append(2 if named else 1)
                rv[1].append(x)
                _entry(ent, rid, [x], [1.0], n[i])
                if named:
                    rv[1].append(ref_var)
                    _entry(ent, rid, [ref_var], [1.0], ref_n[i])
                else:
                    _entry(ent, rid, [tvar, x], [1.0, -1.0], ref_n[i])
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
            self.partitions.append(rids, None, "gap", (tid, uni, v))
        self.entries.add(*ent)
        order = np.asarray(order, dtype=np.int64)
        uni_l, var_l, lev_l, yr_l = (list(x) for x in zip(*labels)) if labels else ([], [], [], [])
        rows.append((np.full(len(order), tid), order, uni_l, ["all"] * len(order), var_l, lev_l, yr_l))
        self._n_rows += len(order)
        self.row_est.add(est, order)
        self.row_vars.add(rv[0], rv[1])
        self.row_own.add(np.ones(len(rv[2])), rv[2])
        self._weights.append(n[order])
        self._pre_blocks.append(pre[order])

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
        school = (
            df["school_id"].astype("str").to_numpy(dtype=object)
            if "school_id" in df.columns
            else np.full(len(df), "all", dtype=object)
        )
        yrs = self._year_of(df, spec, year)
        unis = self._unis(tid, df, spec)
        pre = self._pre(df, spec, counts)
        small = np.zeros(len(df), dtype=bool)
        if self.known:
            for c in counts:
                small |= (c > 0) & (c < self._min_n)
        # the labels' codes (as groupby numbers them: a missing label in no group), grouped without a groupby on text;
        # the counts' keys are numbered from them too (each label column factorized once)
        cu, cs, cv, cl = (pd.factorize(x)[0] for x in (unis, school, var, lev))
        rvars, rids = self._number_rows(
            tid, df, spec, rows, (unis, school, var, lev, yrs), counts, pre, (cu, cs, cv, cl)
        )
        # a row describing fewer than min_n students (or results) is small in every column, wherever else its
        # counts are shown (a pooled-subject results count of 12 may be 6 students)
        self.primary_vars.update(rvars[small & (counts[0] > 0)].ravel().tolist())
        # columns of one row: students <= results (a pooled-subject row counts each student once per subject)
        names = [c for c in spec.counts if c in df.columns]
        if "n_students" in names and "n" in names:
            js, jn = names.index("n_students"), names.index("n")
            a, b = rvars[:, js], rvars[:, jn]
            keep = (a != b) & ((counts[js] <= counts[jn]) if self.known else True)
            n_le = int(keep.sum())  # ({u: 1.0, w: -1.0}, "le") each, as arrays
            self.relations.add(
                np.full(n_le, 2),
                np.column_stack([a[keep], b[keep]]).ravel(),
                np.tile([1.0, -1.0], n_le),
                np.ones(n_le, dtype=bool),
            )
        # levels of a variable within a school add up to the school's "all" row (of several, the last)
        us = key_codes([cu, cs])
        tot = _last_rows(us, var == "all")
        rows_, starts = key_groups([cu, cs, cv])
        first = rows_[starts[:-1]]
        t = tot[us[first]]
        g = np.flatnonzero((var[first] != "all") & (t >= 0))
        self._relations(picked_groups(rows_, starts, g, t[g]), counts, rvars, rids)
        # schools add up to the district
        uvl = key_codes([cu, cv, cl])
        dist = _last_rows(uvl, school == "all")
        at = np.flatnonzero(school != "all")
        rows_, starts = key_groups([cu[at], cv[at], cl[at]])
        first = at[rows_[starts[:-1]]]
        t = dist[uvl[first]]
        g = np.flatnonzero(t >= 0)
        self._relations(picked_groups(at[rows_], starts, g, t[g]), counts, rvars, rids)
        # subjects add up: the pooled subject ("all") counts the results of every subject
        if "subject" in spec.universe and "subject" in df.columns:
            subj = df["subject"].astype("str").to_numpy(dtype=object)
            other = [c for c in spec.universe if c != "subject" and c in df.columns]
            # the other universe columns as one key (text joined by "|", column by column: no row-wise apply)
            cols = [df[c].astype("str").to_numpy(dtype=object) for c in other]
            okey = (
                np.array(["|".join(p) for p in zip(*cols)], dtype=object)
                if other
                else np.full(len(df), "", dtype=object)
            )
            # each group of one other-universe key, school and level with one pooled row and two subjects or more
            flat, starts = key_groups([pd.factorize(okey)[0], cs, cv, cl])
            if len(flat):
                lens = np.diff(starts)
                gid = np.repeat(np.arange(len(lens)), lens)
                pooled = subj[flat] == "all"
                n_pooled = np.bincount(gid[pooled], minlength=len(lens))
                ok = (n_pooled == 1) & (lens - n_pooled >= 2)
                tots = flat[pooled & ok[gid]]
                part_of = flat[~pooled & ok[gid]]
                n_parts = (lens - n_pooled)[ok]
                cuts = np.concatenate([[0], np.cumsum(n_parts)])
                self._subject_relations(
                    picked_groups(part_of, cuts, np.arange(len(n_parts)), tots),
                    counts,
                    names,
                    rvars,
                    rids,
                )

    def _number_rows(self, tid, df, spec, rows, labels, counts, pre, label_codes):
        """A cell table's rows, then their counts row by row, column by column (the order the variables are
        numbered in; as var(): one variable per population count); returns the variables (rows x counts) and the
        rows' ids. From plain lists of the labels (``labels``: universe, school, variable, level, year) and the
        first four's codes (``label_codes``, numbered in the order first met: the counts are told apart by them)."""
        unit, n, k, base = spec.unit, len(pre), len(counts), self._n_rows
        links = self._set_links(*label_codes[:2], labels[2], counts, pre)
        u_l, s_l, v_l, l_l, y_l = (list(x) for x in labels)
        rows.append((np.full(n, tid), np.arange(n), *labels))
        self._n_rows += n
        self.row_est.add(self._est(df, spec), np.arange(n))
        self._weights.append(_num(df[spec.weight]) if spec.weight in df.columns else counts[0])
        self.row_ref.extend([None] * n)
        self._pre_blocks.append(pre)
        # every count (row by row, column by column) as the code of its key: each distinct key is built once, in
        # the order first met (a key per count, 2 million at 1,000,000 students, took most of the build), by one
        # comprehension, and looked up at once (a loop with a lookup per key took about 4 CPU-s at 1,000,000)
        code, first, lk = count_codes((*label_codes, labels[4]), counts, links, self.known)
        x_arr = np.column_stack(counts).astype(float).ravel()
        index, var_key, var_x, var_total = self._index, self.var_key, self.var_x, self.var_total
        il, jl = (x.tolist() for x in np.divmod(first, k))
        x_first = x_arr[first].tolist()  # each count's own value (a key of -0.0 reads as one of 0.0)
        if self.known:
            tail = [None if math.isnan(x) else ("n", x) for x in x_first]
        else:
            tail = [lk[p] for p in first.tolist()]
        keys = [
            (unit, y_l[i], s_l[i], v_l[i], l_l[i], (u_l[i], s_l[i], v_l[i], l_l[i], j) if t is None else t)
            for i, j, t in zip(il, jl, tail)
        ]
        got = [index.get(key) for key in keys]
        new, nv = [], len(var_key)  # the keys met for the first time, in order
        for at in [a for a, v in enumerate(got) if v is None]:
            key = keys[at]
            v = index.get(key)  # (a key met twice in this table is the same count)
            if v is None:
                v = index[key] = nv + len(new)
                new.append(at)
                var_x.append(x_first[at])
                var_total.append(key[3] == "all")
            got[at] = v
        if new:  # their keys as columns: a count's value (known), its row and column, or its link
            ia, t_new = np.asarray(il, dtype=np.int64)[new], [tail[a] for a in new]
            own = np.fromiter((t is None for t in t_new), dtype=bool, count=len(new))
            kind = np.where(own, VarKeys.OWN, VarKeys.COUNT if self.known else VarKeys.OTHER)
            other = {} if self.known else {p: t for p, t in enumerate(t_new) if t is not None}
            var_key.add(
                unit,
                *(labels[c][ia] for c in (4, 1, 2, 3)),
                kind,
                np.where(own, labels[0][ia], None),
                np.asarray(jl, dtype=np.int64)[new],
                other,
            )
        vs = np.asarray(got, dtype=np.int64)[code]
        rvars, rids = np.array(vs, dtype=np.int64).reshape(n, k), np.arange(base, base + n)
        self.row_vars.add(np.full(n, k), vs)
        self.row_own.add(np.full(n, k), vs)  # a cell row describes every count it shows
        self.entries.add(np.repeat(rids, k), np.ones(n * k), vs, np.ones(n * k), x_arr)
        return rvars, rids

    def _set_links(self, unis, school, var, counts, pre):
        """Published-only audit: each hidden count's link, the shown size of the set its universe splits.

        Two universes of one year whose school (or district) totals are shown and equal are read as the
        same students (the attacker's assumption), so their hidden counts of a group are one unknown. ``unis`` and
        ``school`` may be the labels' codes.
        """
        k = len(counts)
        out = [np.full(len(unis), None, dtype=object) for _ in range(k)]
        if self.known:
            return out
        # each set's shown total row (the last one of each universe and school), for every row of the set
        code = codes([unis, school])[0]
        tot = np.full(len(unis), -1)
        shown = np.flatnonzero((var == "all") & ~pre)
        tot[code[shown]] = shown  # the last of equal positions wins
        t_of = tot[code]
        at = np.flatnonzero(pre & (t_of >= 0))
        for j in range(k):
            x = counts[j][t_of[at]]
            for i, v in zip(at[~np.isnan(x)].tolist(), x[~np.isnan(x)].tolist()):
                out[j][i] = ("set", v)
        return out

    def _subject_senses(self, counts, names, flat, gid, tot, n_groups) -> list[list[str]]:
        """Each count column's relation of each pooled-subject group (:meth:`_subject_relations`; ``flat``, ``gid``,
        ``tot`` from :func:`~.model_arrays.grouped`): ``"eq"`` (results add up), ``"le"`` (students lie between the
        largest subject and the sum) or ``""`` (none: a part missing, or the published counts fit neither)."""
        senses = []
        for j in range(len(counts)):
            students = names[j] == "n_students"
            if not self.known:
                senses.append(["le" if students else "eq"] * n_groups)
                continue
            vals, tv = counts[j][flat], counts[j][tot]
            gap, (missing, sums) = np.isnan(vals), _sums(vals, tv, gid, n_groups)
            top = np.full(n_groups, -np.inf)
            np.maximum.at(top, gid, np.where(gap, -np.inf, vals))
            eq = np.abs(sums - tv) < 0.5
            between = (top <= tv + 0.5) & (tv <= sums + 0.5)
            senses.append(np.where(missing, "", np.where(eq, "eq", np.where(between, "le", ""))).tolist())
        return senses

    def _subject_relations(self, groups, counts, names, rvars, rids):
        """The pooled subject's counts of each group (``groups``: its parts and pooled row, as
        :func:`~.model_arrays.grouped` gives them), in turn: results add up (``all = ela + math``); students lie
        between the largest subject and the sum (sums taken at once)."""
        flat, gid, tot, starts = groups
        if not len(tot):
            return
        senses = self._subject_senses(counts, names, flat, gid, tot, len(tot))
        sense = np.array(senses, dtype=object).reshape(len(counts), len(tot)).T
        self.relations.add(*subject_relations(sense, rvars, flat, tot, starts))
        self.partitions.add(np.diff(starts), rids[flat], rids[tot])

    def _relations(self, groups, counts, rvars, rids):
        """Each group's relation (``groups``: its parts and total row, as :func:`~.model_arrays.grouped` gives them),
        in turn: the parts add up to the total (``le`` where they add up to less; sums taken for every group at
        once)."""
        flat, gid, tot, starts = groups
        if not len(tot):
            return
        senses = []
        for j in range(len(counts)):
            if not self.known:
                senses.append(["eq"] * len(tot))
                continue
            total = counts[j][tot]
            missing, sums = _sums(counts[j][flat], total, gid, len(tot))
            eq = np.abs(sums - total) < 0.5
            le = ~eq & (sums < total)
            senses.append(np.where(missing, "", np.where(eq, "eq", np.where(le, "le", ""))).tolist())
        sense = np.array(senses, dtype=object).reshape(len(counts), len(tot)).T
        self.relations.add(*group_relations(sense, rvars, flat, tot, np.asarray(starts, dtype=np.int64)))
        self.partitions.add(np.diff(starts), rids[flat], rids[tot])


def populations(model: PopulationModel) -> tuple[RowLists, np.ndarray]:
    """The populations of the students' counts that are not totals (one group at one school in one year, every table
    and column: the keys' unit, year, school, variable and level), numbered in the order first met: each one's counts,
    ascending (a :class:`~.model_arrays.RowLists`), and each count's population (-1: none). A missing year equals no
    other, as in the keys.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = pd.DataFrame({"school_id": "A", "group": ["all", "ell=1", "ell=0"], "n": [50, 4, 46]})
    >>> u = t.assign(n=[50, 4, 40])  # the same 4 students, another count of all other students
    >>> m = PopulationModel({"t": (t, TableSpec("cell")), "u": (u, TableSpec("cell"))}, year=2016, known=True,
    ...                     min_n=10)
    >>> lists, of = populations(m)
    >>> list(lists), of.tolist()
    ([[1], [2, 3]], [-1, 0, 1, 1])
    """
    k = model.var_key
    of = np.full(len(k), -1, dtype=np.int64)
    sel = np.flatnonzero((k.units[k.unit] == "students") & ~model.var_total)
    year = k.year_codes(nan_apart=True)
    of[sel] = codes([x[sel] for x in (k.unit, year, k.school, k.variable, k.level)])[0]
    lists = RowLists()
    lists.add(
        np.bincount(of[sel], minlength=int(of.max(initial=-1)) + 1), sel[np.argsort(of[sel], kind="stable")]
    )
    lists.freeze()
    return lists, of


def row_label(model: PopulationModel, rid: int) -> str:
    """A row's name for the analyst and the gate (table, universe, school, year, group; no value).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = pd.DataFrame({"school_id": "A", "group": ["all", "ell=1", "ell=0"], "n": [50, np.nan, np.nan],
    ...                   "suppressed": [False, True, True]})
    >>> m = PopulationModel({"t": (t, TableSpec("cell"))}, year=2016, known=False, min_n=10)
    >>> row_label(m, 1)
    't[t] school A 2016 ell=1'
    """
    cols = model.__dict__.get("_label_cols")
    if cols is None:  # the rows' label columns, read by position (not a row Series per label)
        cols = model._label_cols = tuple(
            codes_of(model.rows[c].to_numpy()) for c in ("tid", "uni", "school", "variable", "level", "year")
        )
    tid, uni, school, variable, level, year = (values[code[rid]] for code, values in cols)
    where = "" if school == "all" else f" school {school}"
    yr = "" if pd.isna(year) else f" {int(year)}"
    return f"{model.names[tid]}[{uni.split('|', 1)[-1]}]{where}{yr} {variable}={level}"


def var_label(model: PopulationModel, v: int) -> str:
    """A population count's name (unit, school or district, year, group; no value).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = pd.DataFrame({"school_id": "A", "group": ["all", "ell=1", "ell=0"], "n": [50, np.nan, np.nan],
    ...                   "suppressed": [False, True, True]})
    >>> m = PopulationModel({"t": (t, TableSpec("cell"))}, year=2016, known=False, min_n=10)
    >>> var_label(m, m.row_vars[1][0])
    'students school A 2016 ell=1'
    """
    unit, year, school, variable, level = model.var_key[v][:5]
    yr = "" if year is None or (isinstance(year, float) and math.isnan(year)) else f" {int(year)}"
    where = "district" if school == "all" else f"school {school}"
    return f"{unit} {where}{yr} {variable}={level}"
