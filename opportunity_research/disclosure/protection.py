"""The joint protection rules and their audit: suppression decided once over a set of published tables.

The analyses of a district (:func:`opportunity_research.study.analysis.unprotected_analysis`) compute complete tidy
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
* **Subjects add up**: in a table whose universe has a ``subject`` column, the pooled subject (``"all"``)
  counts the results of every subject (``n_all = n_ela + n_math``), and its students lie between the
  largest subject and the sum; values add up with the same weights (``TableSpec.weight``, default ``n``).
* **Columns of one row**: ``n_students <= n`` (a pooled-subject row counts each student once per subject);
  a row describing fewer than ``min_n`` students in any count column is small in all of them.

**One population, one unknown**: counts of the same group, school and year with the same value are one
variable in every table and column (the attacker is assumed to link them: the scorecard's pooled growth
row and ``movement.csv`` count the same results), so a count hidden in one place is hidden in every place,
and a row is hidden as a whole. From the published files alone (:func:`audit_published`, the gate),
hidden counts of universes whose shown school or district totals are equal are read as one unknown.

What is published at all
------------------------
Before these rules, :mod:`~opportunity_research.disclosure.design` decides the published set of a district
(:func:`~opportunity_research.disclosure.joint.protect_district`): the smallest race/ethnicity groups are
analysed as one pooled group, and schools' "all other students" rows of yes/no groups (level ``0`` of a
0/1 variable at a school) are never published, in any district
(:func:`~opportunity_research.disclosure.design.never_published`, passed as ``never_published``); every
other row is published or hidden cell by cell. Rows not published reach :func:`protect_tables` as
``unpublished`` or ``never_published``: they are audited as hidden cells (an attacker who adds up the
published rows bounds them like any hidden count, from a lower bound of 0, since a row left out does not
show that its group exists), preferred as complements (hiding them costs nothing), never returned, and not
counted as published cells; their small rows count as small cells in
:attr:`AuditReport.secondary_per_primary`, and the other rows left out (``unpublished``, data-dependent)
count as loss, while the design's rows (``never_published``, the same rule everywhere) do not. A design
row of at least ``min_n`` students whose count an attacker can work out (the school's all-students count
minus the group's) is no secret: rule 4 reads its value as shown (and never withholds it).

The rules (in the order they are applied)
-----------------------------------------
1. **Primary**: a population with ``0 < n < min_n`` is hidden, and so is a row comparing a group with a
   reference (all other students, or a named level) of fewer than ``min_n`` students.
2. **One value everywhere**: a hidden population is hidden in every table. A count of the same group,
   school and year in another table that is within ``protection`` students of a hidden count (e.g. the
   same students with one missing outcome) is hidden too, so no published count approximates it.
3. **Complements, from counts only**: while the audit finds a hidden count whose interval is narrower
   than ``protection``, the smallest shown count that shares an additive relation with it is hidden
   (a count of unpublished rows first, then levels before totals; ties broken by labels). A school or
   district all-students count (or any total) is chosen only when no group's count is within reach, through
   the relations of ``v`` and of its hidden neighbours. Within a round, a complement is added (with its
   rule-2 closure) for an unprotected count only if none of its relations got a new hidden count earlier in
   the round (the others wait for the next audit: one complement often protects several counts, and adding
   one per count hid whole rows of groups; Hillcrest 9.6 -> 8.1, Lakeside 3.5 -> 2.9 hidden per small cell).
   The choice never looks at an estimate, so which cells are complements says nothing about any hidden share
   or mean. Among equal candidates the smaller count comes first; after the clean-up (below) the rounds run
   once more from the small cells with the larger count first (in a district with at most
   :data:`SECOND_ORDER_MAX_SMALL` small counts), and if they hide fewer published rows than
   the first order did before its clean-up, they are cleaned up too and the order that hides fewer published
   rows (and no more all-students rows) is kept (neither order wins everywhere: an isolated small cell needs a
   rectangle of three complements, which the larger-first order finds where the smaller-first one can hide
   five; Hillcrest 8.09 -> 6.74 hidden per small cell).
   **Where rows are left out** (``unpublished``: a large district's design, school breakdowns not published),
   a complement must hide a row that is shown so far: a count of rows left out is hidden already, so taking it
   (as a district that leaves nothing out still does, for its closure) changed nothing the audit sees, and a
   1,000,000-student district took such counts for 1,377 rounds without end. The search then takes the
   relation that pins the count first (hidden counts being every count no shown row has), through hidden
   neighbours, and in it a group's count before a total, a school's before the district's all-students count
   (the 1,000,000-student pass ends after 6 rounds of the count audit).
4. **Hidden values**: for every additive relation whose total value is shown, the hidden cells' pooled
   value is what an attacker can compute (total minus shown cells). If a single hidden cell's count is
   known exactly, or the pooled value of the hidden cells lies within ``near_bound`` (default 5% of the
   range) of a bound of the outcome (0% or 100% for shares: a homogeneous hidden set), the estimates of
   the smallest shown row of the relation are withheld as well (a relation whose hidden parts are all
   unpublished and none shown is skipped: its pooled value is its published total's own) (its count,
   published elsewhere, stays public). When nothing is left to hide in a cell relation (every part hidden,
   the total shown), the total's own estimates are withheld, and this rule then protects that value like
   any withheld estimate (withholding every row of the universe at that school instead hid district
   all-students figures); in a gap relation the estimates of the whole population (every row of that
   table's universe) are withheld. Homogeneous values are handled by withholding estimates, never by
   choosing a count complement that depends on the value.
5. The loop ends when the audit passes. Every suppressed row shows the same reason text,
   :data:`REASON`, so a reader cannot tell a small cell from a complement.

The audit
---------
:func:`audit` bounds every hidden population count, ``min`` and ``max`` subject to every published count
(as equalities), the additive relations and ``count >= 1`` (``>= 0`` for a count of unpublished rows
only). The relations split into independent components (union-find); each component is one HiGHS model (scipy's bundled solver) re-solved from the
previous basis for each target, and every solution found is a feasible point, so a target whose values
over the points found already span ``protection`` is decided without its own solve. Components with one
equation are solved in closed form; solved components are cached across the protection rounds. A hidden
count is protected when ``floor(max) - ceil(min) >= protection``. After the audit passes, a clean-up
pass publishes again every complement that is no longer needed: first whole populations (every complement
count of one group at one school in one year), then single counts (all-students and district counts first).
Then complement populations are swapped, the one shown in the most published rows first: it is taken out
(with the counts hidden only as close to it) and barred, rules 3 and 4 protect again without it, and the
result is kept only if every audit passes, fewer published rows are hidden and no more all-students rows
(Fairview 1.92 -> 1.85, Lakeside 2.76 -> 2.67 hidden per small cell); at most ``swaps`` populations are
tried (:mod:`~opportunity_research.disclosure.refine`). Every step is decided from counts, in an order
fixed by the counts and labels, and bounded by a number of tries, never by time.

Residual risk (documented in the README): the rule of step 4 reveals, at most, that the pooled value of
some hidden cells was within ``near_bound`` of 0% or 100% (never which, nor any cell's value), and a total
withheld for its hidden parts (its count shown) may be read as exactly 0% or 100% -- what it would have
shown itself; counts of
other units (classrooms, evidence such as assignments or observed lessons) are published as they are;
model estimates (growth effects) describe whole samples and are not cells.

Examples
--------
>>> import pandas as pd
>>> from opportunity_research.disclosure.model import ALL_OTHERS
>>> t = pd.DataFrame({"group": "ell", "level": [0, 1], "n": [45, 3], "reference": ALL_OTHERS,
...                   "reference_n": [3, 45], "estimate": [0.4, 0.0], "reference_estimate": [0.0, 0.4],
...                   "suppressed": False, "suppression_reason": ""})
>>> out, report = protect_tables({"t": (t, TableSpec("gap", estimates={"estimate": (0, 1)}))}, min_n=10)
>>> out["t"]["suppressed"].tolist(), report.passed
([True, True], True)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import sparse

from .. import config
from .audit import apply_hidden, audit, audit_published
from .audit import suppressed_flags as _flag
from .complements import (
    complement,
    design_by_one_relation,
    next_complement,
    partitions_to_read,
    pooled_near,
    touched,
)
from .lp import (
    LOCAL_MIN,
    component_above,
    interval_width,
    intervals,
    narrow_targets,
    pinned_targets,
    true_counts_hold,
)
from .memo import (
    LINK_BY_LISTS_MAX,
    StateMemo,
    by_state,
    close_counts,
    row_closure,
    without_cyclic_gc,
)
from .model import (
    AuditReport,
    PopulationModel,
    TableSpec,
    populations,
    row_label,
    var_label,
)
from .model_arrays import flat_index_lists, ranges
from .refine import hidden_rows_count, other_order, publish_unneeded, swap_complements

__all__ = ["audit", "audit_published", "protect_tables"]

#: Rule 3's second order (``protect_tables(strategies=2)``) runs only where the primary rule hides at most this
#: many counts: it costs about one more pass, and the passes of larger districts are long (a 10,000-student
#: synthetic district with 344 small counts: 62 -> 135 s, for no lower loss; the demo districts have 22-116).
SECOND_ORDER_MAX_SMALL = 200


# ---------------------------------------------------------------------------------------------
# Protection


class _State:
    def __init__(
        self,
        model: PopulationModel,
        min_n: int,
        protection: int,
        near_bound: float,
        close_counts: str = "all",
    ):
        self.m = model
        self.close_counts = close_counts
        self.larger_first = False  # rule 3's order among equal candidates: the smaller count first
        # rule 3 takes only a complement that hides a row shown now (protect_tables: where rows are left out)
        self.shown_only = False
        # complements.design_by_one_relation's work, kept between calls: the rows of one count, each design
        # count's short equalities; and the last count audit (hidden rows, intervals)
        self.single_entries, self.design_relations, self.last_audit = None, {}, None
        self._design_rows = None  # known_design_rows' rows and their counts (fixed by the model)
        self._known_design = StateMemo()  # known_design_rows' rows by the hidden counts (a function of them)
        self._all_students = None  # the model's all-students rows (refine.hidden_rows_count)
        self._partition_rows = None  # rule 4's relations as sparse rows of the model's rows
        self._audited = None  # the last count audit: (hidden counts, too narrow, intervals or None)
        self._own_mat = None  # counts x rows: the counts each row describes (link's closure)
        self._near_memo = {}  # estimate_audit's value test by (relation, total, hidden parts): pooled_near
        self.min_n, self.protection, self.near = min_n, protection, near_bound
        self.H: set[int] = set()  # hidden population counts
        self.E: set[int] = set()  # rows whose estimates are withheld (population level)
        self.why: dict[int, str] = {}  # why each hidden count is hidden (for the analyst, never published)
        nv = len(model.var_key)
        # the rows and the relations of each count (ascending), and the counts rows show
        # the relations of each count from model_arrays.Relations' arrays
        self.var_rows = flat_index_lists(model.row_vars.lens(), model.row_vars.var)
        self.var_rel = model.relations.index_lists()
        self.decision, self._closed = np.zeros(nv, dtype=bool), (set(), set())  # _closed: link()'s work
        self.decision[model.row_var_mat.indices] = True
        self.small_rows = {r for v in model.primary_vars for r in self.var_rows[v]}
        # the populations (unit, year, school, variable, level) of students' counts that are not totals, numbered
        # in the order first met: each one's counts (ascending), and each count's population (-1: none)
        self.group_list, self.group_of = populations(model)
        self._group_arrays = None  # memo.close_counts' arrays of the groups (built on first use)

    def hidden_rows(self, *, counts: bool = False) -> np.ndarray:
        """Suppressed rows; with ``counts``, only those whose counts are secret (rows withheld for their
        estimates alone, ``E``, keep counts that are published elsewhere: the audit treats them as shown)."""
        hid = self.m.pre_hidden.copy()
        h = np.zeros(self.m.row_var_mat.shape[1])
        h[list(self.H)] = 1.0
        hid |= self.m.row_var_mat @ h > 0
        if self.E and not counts:
            hid[list(self.E)] = True
        return hid

    def link(self) -> None:
        """Rule 2: hidden everywhere, and close counts of the same group hidden with it."""
        # H only grows here (and since the last call unless it lost counts): closed rows and groups stay closed
        changed, (done, last) = True, self._closed if self._closed[1] <= self.H else (set(), set())
        m, nv = self.m, len(self.m.var_key)
        if self._own_mat is None:  # rows x the counts each row describes (row_own), for the closure below
            own = m.row_own
            self._own_mat = sparse.csr_matrix(
                (np.ones(len(own.var)), own.var, own.start), shape=(len(own), nv)
            ).T.tocsr()
        while changed:
            changed = False
            # a row is hidden as a whole: every count it shows (n, n_students, ...) is hidden in every table (the
            # rows of the counts not closed yet, and their counts, as sparse products)
            front = self.H - done
            if front:
                done |= front
                if len(front) <= LINK_BY_LISTS_MAX:  # a few counts: their rows' lists, not products over all
                    reached_l = row_closure(front, self.var_rows, m.row_own, self.H)
                else:
                    f = np.zeros(nv)
                    f[np.fromiter(front, dtype=np.int64, count=len(front))] = 1.0
                    rows = (m.row_var_mat @ f > 0).astype(float)
                    reached = self._own_mat @ rows > 0
                    reached[np.fromiter(self.H, dtype=np.int64, count=len(self.H))] = False
                    reached_l = np.flatnonzero(reached).tolist()
                for u in reached_l:
                    self.H.add(u)
                    self.why[u] = "same row as a hidden count"
                    changed = True
            # only a group with a hidden count, and one whose hidden counts changed, can change (a count is in one)
            new = self.H - last
            g = self.group_of[np.fromiter(new, dtype=np.int64, count=len(new))]
            groups = np.unique(g[g >= 0]).tolist()
            last = set(self.H)
            # a shown count close to a hidden small count would approximate it ("all": close to any hidden count,
            # complements included; "small": only to a hidden count below min_n, measured to hide less, and leaving
            # a complement approximable by a close count of another measure, which the audit does not model)
            for v in close_counts(self, groups):
                self.H.add(v)
                self.why[v] = "same group, close count"
                changed = True
        self._closed = (done, last)

    def complement(self, v: int, exclude=()) -> int | None:
        """Rule 3: a shown count sharing a relation with ``v`` (:func:`.complements.complement`)."""
        return complement(self, v, exclude)

    @by_state
    def count_audit(self):
        """Every hidden count's interval and the counts narrower than the protection range: ``(iv, bad)``.

        Where the true counts satisfy every relation (:func:`.lp.true_counts_hold`: every LP is feasible and
        exact), a count wide in the last audit stays wide while counts are only hidden since (the attacker's
        feasible set only grows), so an audit of a state that hides more than the last one first checks only the
        counts that were too narrow (in a large model first by the short relations near each,
        :func:`.lp.narrow_targets`) and the counts hidden since: when some are too narrow, those are ``bad`` and
        ``iv`` holds only the counts checked (the rounds then hide more; at 1,000,000 students such audits took
        2-15 CPU-s each). When none is, the full audit runs, as does every audit of a state that shows
        a count again; an audit of the state just audited in full returns that audit again. In a district audited
        cell by cell whose components are all small, an audit (partial or full) that finds a count pinned by
        elimination fails at once (:meth:`_pinned_first`: no LP for the components whose counts are all pinned). So
        every audit that passes gives the intervals of the full audit, and ``bad`` is always the full audit's."""
        hid = self.hidden_rows(counts=True)
        prev = self._audited
        if prev is not None and prev[0] == self.H and prev[2] is not None:
            return dict(prev[2]), list(prev[1])
        partial = prev is not None and prev[0] <= self.H and true_counts_hold(self.m)
        large = self.probes_blocks(hid)
        # a district audited cell by cell whose components are all small: a pinned count fails the audit first
        small = not self.shown_only and not large
        if partial:
            # the counts too narrow before, first by the short relations near each (most stay narrow: in a large
            # model, where the audit probes blocks before it reads those relations), then the rest of them and the
            # counts hidden since by the audit's own intervals (a model whose components are all small, as a
            # 10,000-student district's: its LPs decide them in milliseconds, sooner than the relaxations)
            part = narrow_targets(self.m, ~hid, prev[1], self.protection) if large else {}
            rest = sorted((set(prev[1]) - set(part)) | (self.H - prev[0]))
            got = self._pinned_first(hid, rest) if small else None
            if got is not None:
                part.update(got[0])
                return part, got[1]
            if rest:
                part.update(intervals(self.m, ~hid, rest, self.protection, within=self.H))
            bad = sorted(t for t, w in part.items() if interval_width(w) < self.protection)
            if bad:
                self._audited = (set(self.H), bad, None)
                return part, bad
        elif small:
            got = self._pinned_first(hid, sorted(self.H))
            if got is not None:
                return got
        targets = sorted(self.H)
        iv = intervals(self.m, ~hid, targets, self.protection)
        # the protection rule: every hidden count keeps an interval at least `protection` wide (measured: only
        # requiring complements not to be pinned hides more here, through rule 4's withheld estimates)
        bad = [t for t in targets if interval_width(iv[t]) < self.protection]
        self.last_audit = (hid, iv)
        self._audited = (set(self.H), bad, iv)
        return dict(iv), list(bad)

    def _pinned_first(self, hid: np.ndarray, targets: list[int]) -> tuple[dict, list] | None:
        """The count audit of ``targets`` (every hidden count, or those a partial audit checks) when one of them is
        pinned by elimination (:func:`.lp.pinned_targets`, a small model's): the audit fails, and ``bad`` is the
        pinned counts and the others' LPs found too narrow (every target decided, so the full audit's ``bad``),
        without the LPs of the components whose targets are all pinned; ``iv`` holds the targets, the pinned ones
        at their true value (an audit that fails reports the full audit's intervals through
        :meth:`full_intervals`). None when no target is pinned (then the audit runs as it did). On demo_lakeside
        most audits of the rounds that fail had a pinned count."""
        if not true_counts_hold(self.m):
            return None
        pinned = pinned_targets(self.m, ~hid, targets)
        if not pinned:
            return None
        iv = {v: (float(self.m.var_x[v]),) * 2 for v in pinned}
        rest = [t for t in targets if t not in iv]
        if rest:
            iv.update(intervals(self.m, ~hid, rest, self.protection, within=self.H))
        bad = sorted(t for t, w in iv.items() if interval_width(w) < self.protection)
        self._audited = (set(self.H), bad, None)
        return iv, bad

    def full_intervals(self, iv: dict, bad: list) -> dict:
        """``iv`` of a count audit that found ``bad``, as the full audit gives it (an audit that found counts too
        narrow may have checked part of the counts only: the pass' failures report the full audit's)."""
        done = self._audited
        if not bad or (done is not None and done[0] == self.H and done[2] is not None):
            return iv
        hid = self.hidden_rows(counts=True)
        return intervals(self.m, ~hid, sorted(self.H), self.protection)

    def narrow_near(self, shown_again) -> bool:
        """Whether a hidden count sharing a relation with a count of ``shown_again`` is surely narrower than the
        protection range (:func:`.lp.any_narrow`): then :meth:`count_audit` would find it too narrow.

        Asked only where a component of the audit holds more than :data:`.lp.LOCAL_MIN` unknown counts (the
        count audit probes it by blocks, seconds at 1,000,000 students); elsewhere False and the count audit
        decides sooner (at 10,000 students this check took 13.9 of the clean-up's 34 CPU-s to refuse 6 tries)."""
        hid = self.hidden_rows(counts=True)
        if not self.probes_blocks(hid):
            return False
        rel, near = self.m.relations, {}
        # the hidden counts of each relation of a count shown again, the relation with the fewest hidden counts
        # first (the one that pins its counts, as rule 3 reads it), the smaller count first within it
        for v in sorted(shown_again):
            ks = [(sum(u in self.H for u in rel[k][0]), k) for k in self.var_rel[v]]
            for _, k in sorted(ks):
                for u in sorted((u for u in rel[k][0] if u in self.H), key=lambda u: (self.m.var_x[u], u)):
                    near.setdefault(u, None)
        return bool(narrow_targets(self.m, ~hid, list(near), self.protection, first=True))

    def pinned(self) -> bool:
        """Whether a hidden count is pinned by the shown counts and the equalities (:func:`.lp.pinned_targets`): then
        :meth:`count_audit` would find it too narrow. Asked in a district audited cell by cell where the count audit
        does not probe a component block by block (elsewhere :meth:`narrow_near` checks the neighbours of what is
        shown again; a district that leaves rows out keeps its own checks): on a 1,500-student district it refused
        45 of the clean-up's 55 failing tries, about 0.6 ms each instead of a count audit's 5-10 ms."""
        if self.shown_only:
            return False
        hid = self.hidden_rows(counts=True)
        return not self.probes_blocks(hid) and bool(pinned_targets(self.m, ~hid, sorted(self.H), first=True))

    def probes_blocks(self, hid: np.ndarray) -> bool:
        """Whether the count audit of the rows ``hid`` hides probes a component block by block: more than
        :data:`.lp.LOCAL_MIN` counts hidden and one component of the audit holding more than that many unknown
        counts (:func:`.lp.component_above`; the 1,000,000-student pass). Only there do the relaxations
        (:func:`.lp.narrow_targets`) decide sooner than the components' own LPs."""
        return len(self.H) > LOCAL_MIN and component_above(self.m, ~hid, LOCAL_MIN)

    def known_design_rows(self) -> np.ndarray:
        """Rows the publication design never publishes whose count an attacker can work out exactly and that
        describe at least ``min_n`` students (a school's "all other students" row, all-students minus the
        shown group): not a secret, so their values count as shown in rule 4 (never as rows to withhold). A function
        of the hidden counts: kept by them (the clean-up and the swaps come back to states seen before)."""
        m = self.m
        out = np.zeros(len(m.rows), dtype=bool)
        design = m.design
        if not len(design) or not design.any():
            return out
        key = frozenset(self.H)
        got = self._known_design.get(key)
        if got is None:
            got = self._known_design_rows(design)
            self._known_design.keep(key, got, size=len(key) + len(got))
        out[got] = True
        return out

    def _known_design_rows(self, design: np.ndarray) -> np.ndarray:
        """:meth:`known_design_rows` computed, as row positions."""
        m = self.m
        hid = self.hidden_rows(counts=True)
        if self._design_rows is None:  # the design rows that are not small and have a count, and that count
            rv = m.row_vars
            rows = np.flatnonzero(design & (rv.lens() > 0))
            rows = rows[
                ~np.isin(rows, np.fromiter(self.small_rows, dtype=np.int64, count=len(self.small_rows)))
            ]
            self._design_rows = rows, rv.var[rv.start[rows]]
        rows, first = self._design_rows
        in_h = np.zeros(len(m.var_key), dtype=bool)
        in_h[np.fromiter(self.H, dtype=np.int64, count=len(self.H))] = True
        vs = np.unique(first[~in_h[first]]).tolist()
        if not vs:
            return rows[:0]
        iv, pinned = {}, np.zeros(len(m.var_key), dtype=bool)
        if self.shown_only:
            # a large district: most of these counts are decided by one relation (below); the LPs only for the rest
            iv = design_by_one_relation(self, hid, vs)
        else:  # a district audited cell by cell: counts pinned by elimination over the equalities need no LP
            pinned[pinned_targets(m, ~hid, vs)] = True
        vs = [v for v in vs if v not in iv and not pinned[v]]
        if vs:
            iv.update(intervals(m, ~hid, vs, 1, decide=True))  # whether pinned, only
        pinned[[v for v, w in iv.items() if interval_width(w) == 0]] = True
        return rows[pinned[first] & (np.asarray(m.var_x)[first] >= self.min_n)]

    def estimate_audit(self) -> list[tuple[list[int], list[int], int | None, tuple]]:
        """Rule 4: relations whose hidden estimates an attacker can determine (or bound near 0%/100%)."""
        m = self.m
        hid = self.hidden_rows()
        known = self.known_design_rows()
        hid &= ~known
        cand = []
        by_uni = defaultdict(list)  # shown gap rows against all others, by universe: each gives its total
        for r in m.ref_rows[~hid[m.ref_rows]].tolist():
            by_uni[(m.row_tid[r], m.row_uni[r])].append(r)
        hid_l = hid.tolist()
        # the relations read, their part rows and whether each is hidden taken at once (m.partitions[i] reads one)
        p, idx = m.partitions, partitions_to_read(self, hid)
        lo, hi = p.start[idx], p.start[idx + 1]
        flat = p.rows[ranges(lo, hi - lo)]
        rows_l, hid_parts, ends = flat.tolist(), hid[flat].tolist(), np.cumsum(hi - lo).tolist()
        a = 0
        for i, b, total, cell in zip(idx.tolist(), ends, p.total[idx].tolist(), p.cell[idx].tolist()):
            parts, hs, a = rows_l[a:b], hid_parts[a:b], b
            hp = [r for r, h in zip(parts, hs) if h]
            if not hp:
                continue
            sp = [r for r, h in zip(parts, hs) if not h]
            if not sp and len(m.unpublished) and m.unpublished[hp].all():
                continue  # nothing of the relation is published but its total: the total says no more than itself
            kind = "cell" if cell else "gap"
            if kind == "gap":
                key = p.keys[i]
                n_all = sum(m.row_weight[r] for r in parts)
                src = [
                    r
                    for r in by_uni.get((key[0], key[1]), ())
                    if abs(m.row_weight[r] + m.row_ref[r][0] - n_all) < 0.5
                ]
                if not src:
                    continue  # no shown row gives the population's overall value
                total = src[0]
            elif hid_l[total]:
                continue
            cand.append((i, parts, hp, sp, total, kind))
        singles = [m.row_vars[hp[0]][0] for _, _, hp, *_ in cand if len(hp) == 1]
        iv = intervals(m, ~self.hidden_rows(counts=True), singles, 1, decide=True) if singles else {}
        out = []
        memo = self._near_memo
        for i, parts, hp, sp, total, kind in cand:
            one_known = len(hp) == 1 and interval_width(iv[m.row_vars[hp[0]][0]]) == 0
            # the value test is a function of the relation, its hidden parts and its total alone (the model's
            # counts and values are fixed): kept by them (a clean-up try changes few relations)
            mk = (i, total, tuple(hp))
            near = memo.get(mk)
            if near is None:
                if len(memo) > 500_000:
                    memo.clear()
                near = memo[mk] = pooled_near(self, parts, hp, sp, total, kind)
            if one_known or near:
                # only a published row can be withheld (a row the design never publishes shows nothing)
                shown = [r for r in sp if not (len(m.unpublished) and m.unpublished[r])]
                out.append((hp, shown, total if kind == "cell" else None, kind))
        return out


def _protect_rounds(st: _State, max_rounds: int | None, stop=None) -> tuple[list, dict]:
    """Rules 3 and 4 until the count and estimate audits pass; ``(failures, intervals)``.

    Every round hides at least one more count or withholds at least one more estimate (both finite), so the
    rounds end; they stop with failures only when nothing is left to hide. ``max_rounds`` (None: no limit)
    never ends them silently: reaching it, the audits are run once more and their failures returned.
    ``stop(st)``, when given, is asked at the start of every round (after rule 2's closure): when it says the
    result can no longer be of use (the rounds only ever hide more), they end at once with a failure named
    ``stopped``, and the caller discards that state (a swap that cannot win, :mod:`.refine`).
    """
    model = st.m
    failures: list = []
    iv: dict = {}
    rounds = 0
    while True:
        if max_rounds is not None and rounds >= max_rounds:
            iv, bad = st.count_audit()
            iv = st.full_intervals(iv, bad)
            failures = [(var_label(model, v), *iv[v]) for v in bad]
            if not failures:
                failures = [(row_label(model, hp[0]), math.nan, math.nan) for hp, *_ in st.estimate_audit()]
            break
        rounds += 1
        st.link()
        if stop is not None and stop(st):
            return [("stopped", math.nan, math.nan)], iv
        iv, bad = st.count_audit()
        if bad:
            added = False
            before = set(st.H)
            # complements first: a hidden complement that is pinned often pins the small counts it protects
            order = sorted(bad, key=lambda v: (v in model.primary_vars, v))
            for v in order:
                if added and touched(st, v, before):
                    continue  # a relation of v already has a new hidden count: audit again before adding more
                c = next_complement(st, v)
                if c is not None:  # progress: a count not hidden yet
                    st.H.add(c)
                    st.why.setdefault(c, f"complement (count of {var_label(model, v)})")
                    added = True
                    st.link()  # its closure (rule 2) too, so that later counts of this round see it
            if added:
                continue
            iv = st.full_intervals(iv, bad)
            failures = [(var_label(model, v), *iv[v]) for v in bad]
            break
        flagged = st.estimate_audit()
        if not flagged:
            failures = []
            break
        changed = False
        for hp, sp, total, kind in flagged:
            if sp:
                # the smallest shown row's estimates are withheld (its count stays: it is not what leaks)
                r = min(sp, key=lambda r: (model.row_weight[r], row_label(model, r)))
                st.E.add(int(r))
                changed = True
            elif kind == "cell" and (total not in st.E or changed):
                # nothing left to hide in a cell relation: the shown total (a group's district or school row,
                # or a pooled subject) whose parts are all hidden gives their value away, so its estimates are
                # withheld, and rule 4 then protects its value like any withheld estimate (withholding every
                # row of the universe at that school instead hid district all-students figures: Hillcrest 8
                # rows, Fairview 6). A total withheld earlier in this pass needs nothing more until the next
                # audit.
                if total not in st.E:
                    st.E.add(int(total))
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
                if not new and total is not None and total not in st.E:
                    # the total lies in another universe (the pooled subject of a subjects relation): its
                    # value is what gives the hidden cells' value away, so it is withheld
                    new = {int(total)}
                if new:
                    st.E |= new
                    changed = True
        if not changed:
            failures = [(row_label(model, hp[0]), math.nan, math.nan) for hp, *_ in flagged]
            break
    return failures, iv


def _published_failures(model, st, tables, unpublished, min_n, protection, year) -> tuple[list, dict]:
    """The failures of :func:`audit_published` on what this state publishes (the publish gate's audit), and the
    tables as this state publishes them (:func:`~.audit.apply_hidden`). That audit builds a model of its own: the pass'
    arrays derived from its model are dropped first (built again from it on use, the same values)."""
    model.lp_arrays = None
    for k in ("_label_cols", "lp_blocks"):
        model.__dict__.pop(k, None)
    st.single_entries, st.design_relations, st._partition_rows, st._own_mat = None, {}, None, None
    out = apply_hidden(model, st.hidden_rows(), min_n)
    shown = {}
    for k, (_, spec) in tables.items():
        df = out[k]
        if unpublished and k in unpublished:
            df = df[~np.asarray(unpublished[k], dtype=bool)].reset_index(drop=True)
        shown[k] = (df, spec)
    return list(audit_published(shown, min_n=min_n, protection=protection, year=year).failures), out


@without_cyclic_gc
def protect_tables(
    tables: Mapping[str, tuple[pd.DataFrame, TableSpec]],
    *,
    min_n: int = config.MIN_CELL_SIZE,
    protection: int | None = None,
    near_bound: float = 0.05,
    year: int | None = None,
    max_rounds: int | None = None,
    cleanup: bool = True,
    swaps: int = 30,
    strategies: int = 2,
    close_counts: str = "all",
    unpublished: Mapping[str, np.ndarray] | None = None,
    never_published: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, pd.DataFrame], AuditReport]:
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
    close_counts
        Rule 2's reach: ``"all"`` (default) hides a shown count of the same group, school and year within
        ``protection`` of any hidden count (complements included); ``"small"`` only of a hidden count below
        ``min_n``. ``"small"`` hides less (Fairview 2.13 -> 1.75 hidden per small cell) but leaves a
        complement approximable by a close count of another measure, which the audit does not model.
    cleanup
        After the audit passes, publish again the complements that are no longer needed
        (:func:`~opportunity_research.disclosure.refine.publish_unneeded`).
    strategies
        2 (default): where the primary rule hides at most :data:`SECOND_ORDER_MAX_SMALL` counts, after
        the clean-up (with ``cleanup``), protect again from the small cells with rule 3's other order (the
        larger candidate first) and keep the order that hides fewer rows
        (:func:`~opportunity_research.disclosure.refine.other_order`); 1: the smaller first only.
    swaps
        Then (with ``cleanup``) try at most this many complement populations, the costliest first, for a swap that hides
        fewer rows (:func:`~opportunity_research.disclosure.refine.swap_complements`; 0: none). Not tried where
        ``unpublished`` leaves rows out (a large district's design: they cost most of its pass and gained next to
        nothing).
    unpublished
        ``{table: boolean mask}``: rows that are not published at all (a school breakdown left out,
        :func:`~opportunity_research.disclosure.design.school_breakdowns`; rule 3 then takes only complements
        that hide a shown row, see the module's rule 3). They are audited as hidden
        cells (what the published rows imply about them is bounded like any hidden count), preferred as
        complements (hiding them costs nothing), left out of the returned tables and not counted as
        published cells. A relation whose hidden parts are all unpublished and none shown says nothing
        beyond its shown total, so rule 4 does not withhold that total.

    Returns
    -------
    (dict, AuditReport)
        The protected tables (same names, columns and row order; ``suppressed``, ``suppression_reason``
        set, every number of a suppressed row missing) and the audit report. The report fails (and
        lists the cells) only if no further cell could be hidden.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.model import ALL_OTHERS
    >>> t = pd.DataFrame({"group": "ell", "level": [0, 1], "n": [45, 3], "reference": ALL_OTHERS,
    ...                   "reference_n": [3, 45], "estimate": [0.4, 0.0], "reference_estimate": [0.0, 0.4],
    ...                   "suppressed": False, "suppression_reason": ""})
    >>> out, report = protect_tables({"t": (t, TableSpec("gap", estimates={"estimate": (0, 1)}))}, min_n=10)
    >>> out["t"]["suppressed"].tolist(), report.passed
    ([True, True], True)
    """
    import time

    t0 = time.perf_counter()
    if min_n < 1:
        raise ValueError(f"protect_tables: min_n must be at least 1, got {min_n}")
    protection = min_n if protection is None else int(protection)
    design_masks = {k: np.asarray(m, dtype=bool) for k, m in (never_published or {}).items()}
    left_out = any(np.asarray(m, dtype=bool).any() for m in (unpublished or {}).values())
    if design_masks:
        merged = {k: np.asarray(m, dtype=bool) for k, m in (unpublished or {}).items()}
        for k, m in design_masks.items():
            merged[k] = merged[k] | m if k in merged else m
        unpublished = merged
    if unpublished:
        tables = {
            k: ((df.assign(suppressed=_flag(df) | unpublished[k]), spec) if k in unpublished else (df, spec))
            for k, (df, spec) in tables.items()
        }
    model = PopulationModel(tables, year=year, known=True, min_n=min_n)
    model.unpublished = np.zeros(0, dtype=bool)
    if unpublished:
        rows = model.rows
        mask = np.zeros(len(rows), dtype=bool)
        for tid, name in enumerate(model.names):
            if name in unpublished:
                sel = rows["tid"].to_numpy() == tid
                mask[sel] = np.asarray(unpublished[name], dtype=bool)[rows["row"].to_numpy()[sel]]
        model.unpublished = mask
        design = np.zeros(len(rows), dtype=bool)
        for tid, name in enumerate(model.names):
            if name in design_masks:
                sel = rows["tid"].to_numpy() == tid
                design[sel] = design_masks[name][rows["row"].to_numpy()[sel]]
        model.design = design
    if strategies not in (1, 2):
        raise ValueError(f"protect_tables: strategies must be 1 or 2, got {strategies!r}")
    if close_counts not in ("all", "small"):
        raise ValueError(f"protect_tables: close_counts must be 'all' or 'small', got {close_counts!r}")
    st = _State(model, min_n, protection, near_bound, close_counts)
    st.shown_only = left_out
    st.H |= model.primary_vars
    for rid in model.ref_small_rows:
        st.H.add(model.row_vars[rid][0])
    st.why.update({v: "primary" for v in st.H})
    primary_rows = st.hidden_rows()
    start = (set(st.H), dict(st.why), set(st.E))
    failures: list = []
    iv: dict = {}
    out = None  # the protected tables, as the gate's audit read them
    cleaned = not cleanup
    while True:
        failures, iv = _protect_rounds(st, max_rounds)
        if failures:
            break
        if not cleaned:
            before = hidden_rows_count(st)
            iv = publish_unneeded(st, iv)
            if strategies == 2 and len(model.primary_vars) <= SECOND_ORDER_MAX_SMALL:
                iv = other_order(st, lambda s: _protect_rounds(s, max_rounds), iv, start, before)
            # where rows are left out (a large district's design) the swaps gain next to nothing for what they
            # cost: at 1,000,000 students 30 swaps took 333 of 526 CPU-s (before their early stop) and hid 6 rows fewer
            # (213 -> 207 beyond the small cells, of 272,596 cells; the loss per small cell 2.566 either way)
            if swaps and not left_out:
                iv = swap_complements(
                    st, lambda s, stop=None: _protect_rounds(s, max_rounds, stop), iv, max_tries=swaps
                )
            cleaned = True
        # The pass ends only when what it publishes passes the publish gate's own audit
        # (audit_published, on the protected tables without the rows left out): any relation that audit
        # models beyond this pass' model gets its complements here, chosen by the same rule 3, and the
        # rounds run again (the clean-up is not repeated: it checks this pass' model only).
        gate, out = _published_failures(model, st, tables, unpublished, min_n, protection, year)
        if not gate:
            break
        by_label = {var_label(model, v): v for v in range(len(model.var_x))}
        added = False
        for label, *_ in gate:
            v = by_label.get(label)
            c = next_complement(st, v) if v is not None else None
            if c is not None:
                st.H.add(c)
                st.why.setdefault(c, f"complement (count of {label}, publish audit)")
                added = True
        if not added:
            failures = gate
            break
        out = None  # the state changed since
    hidden = st.hidden_rows()
    out = apply_hidden(model, hidden, min_n) if out is None else out  # the gate's, of this state
    gone = np.zeros(len(model.rows), dtype=bool) if not len(model.unpublished) else model.unpublished
    design = model.design if len(model.design) else np.zeros(len(model.rows), dtype=bool)
    small_rows = np.zeros(len(model.rows), dtype=bool)
    for v in model.primary_vars:
        small_rows[st.var_rows[v]] = True
    for k, drop in (unpublished or {}).items():
        kept = out[k][~np.asarray(drop, dtype=bool)].reset_index(drop=True)
        kept.attrs = dict(out[k].attrs)
        out[k] = kept
    ivs = pd.DataFrame(
        [
            {
                "cell": var_label(model, v),
                "true": model.var_x[v],
                "low": iv[v][0],
                "high": iv[v][1],
                "why": st.why.get(v, ""),
            }
            for v in sorted(st.H)
            if v in iv
        ],
        columns=["cell", "true", "low", "high", "why"],
    )
    report = AuditReport(
        min_n=min_n,
        protection=protection,
        cells=int((~gone).sum()),
        primary=int((primary_rows & ~gone).sum()),
        small_unpublished=int((gone & small_rows).sum()),
        unpublished_beyond=int((gone & ~small_rows & ~design).sum()),
        never_published=int((design & ~small_rows).sum()),
        small_never_published=int((design & small_rows).sum()),
        left_out={
            k: int((np.asarray(mk, dtype=bool) & ~design_masks.get(k, np.zeros(len(mk), dtype=bool))).sum())
            for k, mk in (unpublished or {}).items()
        },
        beyond_primary=int((hidden & ~primary_rows & ~gone).sum()),
        withheld=len(st.E),
        hidden_counts=len(st.H),
        failures=failures,
        intervals=ivs,
        seconds=time.perf_counter() - t0,
    )
    return out, report
