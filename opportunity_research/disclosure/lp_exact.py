"""Exact LP bounds of a component whose relations, read as exact, may not all hold: one warm-started HiGHS model.

The audit engine (:mod:`opportunity_research.disclosure.lp`) reads a component's relations as exact; when they
contradict each other (a published audit that meets two counts of one population with different values in two
tables: a relation of one count then bounds it above its other bound), it reads every relation as ``<=`` instead,
and gives each target's minimum and maximum over what is left. :func:`exact_bounds` solves those LPs on one HiGHS
model re-solved from the previous basis (a changed objective keeps the basis primal feasible), instead of the two
block-diagonal :func:`scipy.optimize.linprog` calls of one copy of the component per target (a 190-count
component of Lakeside's published audit: 190 copies, 92,000 rows, 1.4 s; here a few pivots per target). The
values are the same LP optima; whenever a solve does not end optimal, the caller's own LPs decide instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import sparse

from .lp_blocks import highs_model

__all__ = ["exact_bounds"]


def exact_bounds(
    members: Sequence[int],
    cons: list[tuple[dict, float, str]],
    lb: np.ndarray,
    targets: Sequence[int],
    *,
    big: float,
    fallback: Callable,
) -> dict[int, tuple[float, float]]:
    """Min and max of each target over ``cons`` (rows ``({var: coef}, rhs, sense)``), read as ``fallback`` reads them.

    Every count lies in ``[lb, big]``. The rows are read as written (``"eq"`` an equality, any other sense
    ``<=``); when that has no feasible point, every row is read as ``<=``. Each target's minimum and maximum
    are then solved for on one HiGHS model, from the previous basis. A maximum at ``big / 2`` or more is
    unbounded (``inf``). Whenever HiGHS is not available or a solve does not end optimal (both readings
    infeasible, numerical trouble), ``fallback(members, cons, lb, targets)`` gives the answer instead (the
    block-diagonal ``linprog`` of :mod:`~opportunity_research.disclosure.lp`, which reads the rows the same way).

    Examples
    --------
    Two counts that add up to 50, each at least 1; then the same with a relation that contradicts it (read
    as ``<=``, the counts only add up to at most 50 and at most 40):

    >>> import numpy as np
    >>> cons = [({0: 1.0, 1: 1.0}, 50.0, "eq")]
    >>> exact_bounds([0, 1], cons, np.ones(2), [0, 1], big=1e9, fallback=None)
    {0: (1.0, 49.0), 1: (1.0, 49.0)}
    >>> cons += [({0: 1.0, 1: 1.0}, 40.0, "eq")]
    >>> exact_bounds([0, 1], cons, np.ones(2), [0], big=1e9, fallback=None)
    {0: (1.0, 39.0)}
    """
    try:
        from scipy.optimize._highspy import _core as hc  # scipy's bundled HiGHS (private; fallback below)

        hc._Highs  # noqa: B018
    except (ImportError, AttributeError):  # pragma: no cover - older or newer scipy layouts
        return fallback(members, cons, lb, targets)
    pos = {v: i for i, v in enumerate(members)}
    m = len(members)
    data, ri, ci = [], [], []
    for r, (coefs, _, _) in enumerate(cons):
        for v, c in coefs.items():
            data.append(c)
            ri.append(r)
            ci.append(pos[v])
    a = sparse.csc_matrix((data, (ri, ci)), shape=(len(cons), m))
    b = np.array([rhs for _, rhs, _ in cons], dtype=float)
    eq = np.array([sense == "eq" for _, _, sense in cons], dtype=bool)
    lower = np.asarray([lb[v] for v in members], dtype=float)
    upper = np.full(m, float(big))
    h = highs_model(hc, (a, lower, upper, np.where(eq, b, -np.inf), b))
    optimal = hc.HighsModelStatus.kOptimal
    h.run()
    if h.getModelStatus() == hc.HighsModelStatus.kInfeasible:  # read every row as <=
        h = highs_model(hc, (a, lower, upper, np.full(len(b), -np.inf), b))
        h.run()
    if h.getModelStatus() != optimal:
        return fallback(members, cons, lb, targets)
    out = {}
    for t in targets:
        j = pos[t]
        h.changeColCost(j, 1.0)
        ends = []
        for sense in (hc.ObjSense.kMinimize, hc.ObjSense.kMaximize):
            h.changeObjectiveSense(sense)
            h.run()
            if h.getModelStatus() != optimal:
                return fallback(members, cons, lb, targets)
            ends.append(float(np.asarray(h.getSolution().col_value)[j]))
        h.changeColCost(j, 0.0)
        out[t] = (ends[0], math.inf if ends[1] >= big * 0.5 else ends[1])
    return out
