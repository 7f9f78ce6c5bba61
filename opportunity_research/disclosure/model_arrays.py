"""Array helpers of the population model's build (:class:`~opportunity_research.disclosure.model.PopulationModel`).

The model is built with array work over a table's rows instead of a loop over them (issue #21): :func:`codes`
numbers the combinations of label columns (a universe's text is joined once per combination, a set's total row
found once per universe and school), :func:`ones` writes a relation's coefficients; :class:`IndexLists`
(:func:`flat_index_lists`) holds the protection state's lists of the rows and relations of each count.
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np
import pandas as pd

__all__ = [
    "Entries",
    "IndexLists",
    "Partitions",
    "Relations",
    "RowEstimates",
    "RowLists",
    "VarKeys",
    "codes",
    "count_codes",
    "entry",
    "flat_index_lists",
    "group_relations",
    "grouped",
    "int32",
    "label_codes",
    "part_sums",
    "ranges",
    "subject_relations",
    "sums",
]


def int32(x) -> np.ndarray:
    """Integers (counts' or rows' numbers) as int32 (half the memory of int64; a model's numbers fit).

    Examples
    --------
    >>> int32([3, 2**31 - 1]).dtype.name
    'int32'
    >>> int32([2**31])
    Traceback (most recent call last):
    OverflowError: model_arrays.int32: a number does not fit in 32 bits
    """
    x = np.asarray(x, dtype=np.int64)
    if len(x) and (x.max() >= 2**31 or x.min() < -(2**31)):
        raise OverflowError("model_arrays.int32: a number does not fit in 32 bits")
    return x.astype(np.int32)


def codes(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code of its combination of the arrays' values (numbered in the order first met), and each
    code's first row.

    Examples
    --------
    >>> import numpy as np
    >>> code, first = codes([np.array(["b", "a", "b", "a"], dtype=object), np.array([1, 2, 1, 3])])
    >>> code.tolist(), first.tolist()
    ([0, 1, 0, 2], [0, 1, 3])
    """
    code = None
    for p in parts:
        c, u = pd.factorize(p, use_na_sentinel=False)
        # the first array's codes are already numbered in the order first met
        code = c.astype(np.int64, copy=False) if code is None else pd.factorize(code * len(u) + c)[0]
    # a code's first row is where it exceeds every code before it (codes are numbered in the order first met)
    return code, np.flatnonzero(np.diff(np.maximum.accumulate(code), prepend=-1) > 0)


def ranges(lo: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """``lo[i], lo[i] + 1, ..., lo[i] + cnt[i] - 1`` for each ``i`` in turn, as one array (the positions of slices of
    CSR-style arrays, taken at once).

    Examples
    --------
    >>> ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist()
    [5, 6, 9, 10, 11]
    """
    cnt = np.asarray(cnt, dtype=np.int64)
    return np.repeat(np.asarray(lo, dtype=np.int64) - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))


class Entries:
    """The published counts of a model's rows as arrays: entry ``i`` says that row ``rid[i]`` shows the count
    ``sum(coef * var)`` over its variables (``var[start[i]:start[i + 1]]``) with the value ``val[i]``.

    Iterating gives ``(row id, {variable: coefficient}, value)`` tuples, built when read (a list of such tuples, one
    dict per entry, took about 0.5 GB at 1,000,000 students); :func:`~.lp` reads the arrays themselves. Entries are
    added in blocks (:meth:`add`), in order, and read once :meth:`freeze` has joined the blocks.

    Examples
    --------
    >>> import numpy as np
    >>> e = Entries()
    >>> e.add([0, 0], [1, 2], [5, 7, 3], [1.0, 1.0, -1.0], [40.0, 3.0])
    >>> e.freeze()
    >>> len(e), list(e)
    (2, [(0, {5: 1.0}, np.float64(40.0)), (0, {7: 1.0, 3: -1.0}, np.float64(3.0))])
    """

    def __init__(self):
        self._blocks: list = []
        self.rid = np.zeros(0, dtype=np.int32)  # rows and counts as int32 (model_arrays.int32)
        self.start = np.zeros(1, dtype=np.int64)
        self.var = np.zeros(0, dtype=np.int32)
        self.coef = np.zeros(0, dtype=float)
        self.val = np.zeros(0, dtype=float)

    def add(self, rid, lens, var, coef, val) -> None:
        """A block of entries: their rows, how many variables each has, the variables and coefficients in
        order, their values."""
        self._blocks.append(
            tuple(
                np.asarray(x, dtype=t)
                for x, t in zip((rid, lens, var, coef, val), (np.int64,) * 3 + (float,) * 2)
            )
        )

    def freeze(self) -> None:
        """Join the blocks added so far into the arrays read."""
        if not self._blocks:
            return
        parts = [self.rid, np.diff(self.start), self.var, self.coef, self.val]
        cols = [np.concatenate([p, *(b[j] for b in self._blocks)]) for j, p in enumerate(parts)]
        self._blocks = []
        rid, lens, var, self.coef, self.val = cols
        self.rid, self.var = int32(rid), int32(var)
        self.start = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.rid)

    def __iter__(self):
        var, coef, bounds = self.var.tolist(), self.coef.tolist(), self.start.tolist()
        for i, (rid, val) in enumerate(zip(self.rid.tolist(), self.val)):
            a, b = bounds[i], bounds[i + 1]
            yield rid, dict(zip(var[a:b], coef[a:b])), val


class RowLists:
    """A list of integers per model row (the counts each row shows), held as two arrays: each row's lists one after
    another (:attr:`var`) and where each row's starts (:attr:`start`); reading row ``r`` gives its list (as lists of
    Python lists, the rows' counts took about 115 MB at 1,000,000 students).

    Rows are added in blocks (:meth:`add`), in order, and read once :meth:`freeze` has joined the blocks.

    Examples
    --------
    >>> rl = RowLists()
    >>> rl.add([2, 0], [7, 3])
    >>> rl.add([1], [7])
    >>> rl.freeze()
    >>> len(rl), rl[0], rl[1], list(rl), rl.start.tolist(), rl.var.tolist()
    (3, [7, 3], [], [[7, 3], [], [7]], [0, 2, 2, 3], [7, 3, 7])
    """

    def __init__(self):
        self._blocks: list = []
        self.start = np.zeros(1, dtype=np.int64)
        self.var = np.zeros(0, dtype=np.int64)

    def add(self, lens, var) -> None:
        """A block of rows: how many integers each has, and the integers one row after another."""
        self._blocks.append((np.asarray(lens, dtype=np.int64), np.asarray(var, dtype=np.int64)))

    def freeze(self) -> None:
        """Join the blocks added so far into the arrays read."""
        if not self._blocks:
            return
        lens = np.concatenate([np.diff(self.start), *(b[0] for b in self._blocks)])
        self.var = np.concatenate([self.var, *(b[1] for b in self._blocks)])
        self._blocks = []
        self.start = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)

    def lens(self) -> np.ndarray:
        """How many integers each row holds."""
        return np.diff(self.start)

    def __len__(self) -> int:
        return len(self.start) - 1

    def __getitem__(self, r: int) -> list:
        if not 0 <= r < len(self):
            raise IndexError(r)
        return self.var[self.start[r] : self.start[r + 1]].tolist()

    def __iter__(self):
        var, bounds = self.var.tolist(), self.start.tolist()
        for a, b in itertools.pairwise(bounds):
            yield var[a:b]


class VarKeys:
    """The model's variables' keys, ``(unit, year, school, variable, level, tail)`` each
    (:meth:`~.model.PopulationModel.var`), held as columns; reading key ``v`` gives its tuple, built when read (a tuple
    per variable took about 120 MB at 1,000,000 students, and the published-only audit's model 90 MB more).

    The labels are codes (:attr:`unit`, :attr:`school`, :attr:`variable`, :attr:`level`, numbered in the order first
    met, into :attr:`units`, :attr:`schools`, ...) and the year a number (:attr:`year`, read back as the
    ``np.float64`` the build keys hold). The tail is one of three kinds: a known count, ``("n", value)`` with the
    variable's value (the model's ``var_x``, given to :meth:`freeze`); a cell table's count named by its row and
    column, ``(universe, school, variable, level, column)``; anything else, kept as it is (links, a gap table's
    own names: few).

    Keys are added one by one (:meth:`append`) or in blocks (:meth:`add`), in order, and read once :meth:`freeze`
    has joined them.

    Examples
    --------
    >>> import numpy as np
    >>> k = VarKeys()
    >>> k.append(("students", np.float64(2016.0), "A", "all", "all", ("n", 30.0)))
    >>> k.add("students", [2016.0, 2016.0], ["A", "A"], ["x", "x"], ["1", "2"], [1, 2], ["t|u", None], [0, 0],
    ...       {1: ("set", 30.0)})
    >>> k.freeze(np.array([30.0, np.nan, np.nan]))
    >>> len(k), k[0], k[1][5], k[2][5]
    (3, ('students', np.float64(2016.0), 'A', 'all', 'all', ('n', 30.0)), ('t|u', 'A', 'x', '1', 0), ('set', 30.0))
    >>> k.schools[k.school].tolist(), k.level.tolist()
    (['A', 'A', 'A'], [0, 1, 2])
    """

    COUNT, OWN, OTHER = 0, 1, 2

    def __init__(self):
        self._blocks: list = []
        self._n = 0
        self.other: dict = {}  # the tails of the other kind, by variable
        self.x = np.zeros(0)
        self.kind = np.zeros(0, dtype=np.int8)
        self.year = np.zeros(0)
        self.col = np.zeros(0, dtype=np.int64)
        for name in ("unit", "school", "variable", "level", "uni"):
            setattr(self, name, np.zeros(0, dtype=np.int64))
            setattr(self, name + "s", np.zeros(0, dtype=object))

    def append(self, key: tuple) -> None:
        """One key."""
        unit, year, school, variable, level, tail = key
        if isinstance(tail, tuple) and len(tail) == 2 and tail[0] == "n":
            kind, uni, col, other = self.COUNT, None, 0, {}
        elif (
            isinstance(tail, tuple)
            and len(tail) == 5
            and tail[1:4] == (school, variable, level)
            and type(tail[4]) is int
        ):
            kind, uni, col, other = self.OWN, tail[0], tail[4], {}
        else:
            kind, uni, col, other = self.OTHER, None, 0, {0: tail}
        self.add(unit, [year], [school], [variable], [level], [kind], [uni], [col], other)

    def add(self, unit, year, school, variable, level, kind, uni, col, other: dict) -> None:
        """A block of keys of one unit: their years, schools, variables, levels, kinds (:attr:`COUNT`, :attr:`OWN`,
        :attr:`OTHER`), universes and columns (of the :attr:`OWN` ones) and ``{position: tail}`` of the others."""
        self._blocks.append((unit, year, school, variable, level, kind, uni, col))
        self.other.update({self._n + p: t for p, t in other.items()})
        self._n += len(year)

    def freeze(self, x: np.ndarray) -> None:
        """Join the keys added into the columns read (once, when every key is added; ``x``: every variable's
        value)."""
        blocks, self._blocks = self._blocks, []
        if blocks:
            cols = {
                "unit": np.concatenate([np.full(len(b[1]), b[0], dtype=object) for b in blocks]),
                "school": np.concatenate([np.asarray(b[2], dtype=object) for b in blocks]),
                "variable": np.concatenate([np.asarray(b[3], dtype=object) for b in blocks]),
                "level": np.concatenate([np.asarray(b[4], dtype=object) for b in blocks]),
                "uni": np.concatenate([np.asarray(b[6], dtype=object) for b in blocks]),
            }
            for name, values in cols.items():
                code, uniq = pd.factorize(values, use_na_sentinel=name == "uni")
                setattr(self, name, code.astype(np.int32))
                setattr(self, name + "s", np.asarray(uniq, dtype=object))
            self.year = np.concatenate([np.asarray(b[1], dtype=float) for b in blocks])
            self.kind = np.concatenate([np.asarray(b[5], dtype=np.int8) for b in blocks])
            self.col = np.concatenate([np.asarray(b[7], dtype=np.int64) for b in blocks])
        self.x = x

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, v: int) -> tuple:
        if not 0 <= v < self._n:
            raise IndexError(v)
        school, variable, level = (
            self.schools[self.school[v]],
            self.variables[self.variable[v]],
            self.levels[self.level[v]],
        )
        kind = self.kind[v]
        if kind == self.COUNT:
            tail = ("n", float(self.x[v]))
        elif kind == self.OWN:
            tail = (self.unis[self.uni[v]], school, variable, level, int(self.col[v]))
        else:
            tail = self.other[v]
        return (self.units[self.unit[v]], np.float64(self.year[v]), school, variable, level, tail)

    def __iter__(self):
        for v in range(self._n):
            yield self[v]

    def year_codes(self, *, nan_apart: bool) -> np.ndarray:
        """Each variable's year as a code: a missing year one code (or, with ``nan_apart``, each its own, as a key's
        missing year equals no other)."""
        code = pd.factorize(self.year, use_na_sentinel=False)[0].astype(np.int64)
        if nan_apart:
            nan = np.isnan(self.year)
            code[nan] = code.max(initial=-1) + 1 + np.arange(int(nan.sum()))
        return code


class RowEstimates:
    """Each model row's estimates, ``{column: value}``, read from its table's columns when asked (a dict per row
    took about 0.2 GB at 1,000,000 students).

    Rows are added in blocks (:meth:`add`): a table's estimate columns and, for each row of the block in the
    model's order, its position in the table.

    Examples
    --------
    >>> import numpy as np
    >>> est = RowEstimates()
    >>> est.add({"estimate": np.array([0.5, 0.25])}, np.array([1, 0]))
    >>> est.add({}, np.arange(1))
    >>> len(est), est[0], est[1], est[2]
    (3, {'estimate': np.float64(0.25)}, {'estimate': np.float64(0.5)}, {})
    """

    def __init__(self):
        self._starts: list[int] = []
        self._blocks: list = []
        self._n = 0

    def add(self, cols: dict, at: np.ndarray) -> None:
        """Rows ``at`` (positions in the table) of a table whose estimate columns are ``cols``, in order."""
        self._starts.append(self._n)
        self._blocks.append((cols, np.asarray(at, dtype=np.int64)))
        self._n += len(at)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, r: int) -> dict:
        if not 0 <= r < self._n:
            raise IndexError(r)
        b = bisect.bisect_right(self._starts, r) - 1
        cols, at = self._blocks[b]
        i = at[r - self._starts[b]]
        return {c: a[i] for c, a in cols.items()}


class Relations:
    """The model's additive relations, ``({count: coefficient}, "eq" | "le")`` each, held as arrays once built.

    The build appends relations as dicts (:meth:`append`, :meth:`extend`) and :meth:`flush` turns those appended so
    far into arrays (a dict per relation took about 0.5 GB at 1,000,000 students). Reading relation ``k`` gives its
    dict, built from the arrays the first time it is read and kept (the protection loop reads the few relations
    near its hidden counts, again and again); iterating builds each in turn without keeping it. :func:`~.lp` and
    the protection state read the arrays themselves (:attr:`start`, :attr:`var`, :attr:`coef`, :attr:`senses`).

    Examples
    --------
    >>> r = Relations()
    >>> r.append(({4: 1.0, 2: 1.0, 7: -1.0}, "eq"))
    >>> r.extend([({1: 1.0, 2: -1.0}, "le")])
    >>> r.flush()
    >>> len(r), r[1], r.start.tolist(), r.var.tolist()
    (2, ({1: 1.0, 2: -1.0}, 'le'), [0, 3, 5], [4, 2, 7, 1, 2])
    >>> list(r)[0]
    ({4: 1.0, 2: 1.0, 7: -1.0}, 'eq')
    """

    _SENSES = ("eq", "le")

    def __init__(self):
        self._pending: list = []
        self._kept: dict = {}
        self.start = np.zeros(1, dtype=np.int64)
        self.var = np.zeros(0, dtype=np.int32)  # (int32: at 1,000,000 students the int64 counts took 34 MB)
        self.coef = np.zeros(0, dtype=float)
        self.le = np.zeros(0, dtype=bool)

    def append(self, rel: tuple) -> None:
        self._pending.append(rel)

    def extend(self, rels) -> None:
        self._pending.extend(rels)

    def flush(self) -> None:
        """The relations appended so far, as arrays."""
        got = self._pending
        if not got:
            return
        lens = np.fromiter((len(c) for c, _ in got), dtype=np.int64, count=len(got))
        n = int(lens.sum())
        var = np.fromiter(itertools.chain.from_iterable(c for c, _ in got), dtype=np.int64, count=n)
        coef = np.fromiter(itertools.chain.from_iterable(c.values() for c, _ in got), dtype=float, count=n)
        le = np.fromiter((s == "le" for _, s in got), dtype=bool, count=len(got))
        if any(s not in self._SENSES for _, s in got):
            raise ValueError("Relations: a relation's sense is 'eq' or 'le'")
        self._pending = []
        self.start = np.concatenate([self.start, self.start[-1] + np.cumsum(lens)])
        self.var = np.concatenate([self.var, int32(var)])
        self.coef = np.concatenate([self.coef, coef])
        self.le = np.concatenate([self.le, le])

    def add(self, lens: np.ndarray, var: np.ndarray, coef: np.ndarray, le: np.ndarray) -> None:
        """Relations given as arrays (each one's number of counts, the counts and coefficients one relation after
        another, whether each is ``le``), after those appended so far."""
        self.flush()
        self.start = np.concatenate([self.start, self.start[-1] + np.cumsum(lens, dtype=np.int64)])
        self.var = np.concatenate([self.var, int32(var)])
        self.coef = np.concatenate([self.coef, np.asarray(coef, dtype=float)])
        self.le = np.concatenate([self.le, np.asarray(le, dtype=bool)])

    @property
    def senses(self) -> list[str]:
        """Every relation's sense, ``"eq"`` or ``"le"`` (after :meth:`flush`)."""
        return np.where(self.le, "le", "eq").tolist()

    def __len__(self) -> int:
        return len(self.le) + len(self._pending)

    def size(self, k: int) -> int:
        """How many counts relation ``k`` holds (``len`` of its dict, without building it).

        Examples
        --------
        >>> r = Relations()
        >>> r.append(({4: 1.0, 2: 1.0, 7: -1.0}, "eq"))
        >>> r.size(0), (r.flush(), r.size(0))[1]
        (3, 3)
        """
        n = len(self.le)
        return int(self.start[k + 1] - self.start[k]) if 0 <= k < n else len(self[k][0])

    def sense(self, k: int) -> str:
        """Relation ``k``'s sense, ``"eq"`` or ``"le"`` (without building its dict).

        Examples
        --------
        >>> r = Relations()
        >>> r.append(({4: 1.0, 7: -1.0}, "le"))
        >>> r.sense(0), (r.flush(), r.sense(0))[1]
        ('le', 'le')
        """
        n = len(self.le)
        return self._SENSES[int(self.le[k])] if 0 <= k < n else self[k][1]

    def index_lists(self):
        """``{count: [relation, ...]}``: the relations holding each count, ascending (:func:`flat_index_lists`
        of the relations' arrays; those appended are flushed first).

        Examples
        --------
        >>> r = Relations()
        >>> r.extend([({4: 1.0, 2: 1.0}, "eq"), ({2: 1.0, 5: -1.0}, "le")])
        >>> dict(r.index_lists())
        {2: [0, 1], 4: [0], 5: [1]}
        """
        self.flush()
        return flat_index_lists(np.diff(self.start), self.var)

    def _build(self, k: int) -> tuple:
        a, b = int(self.start[k]), int(self.start[k + 1])
        return dict(zip(self.var[a:b].tolist(), self.coef[a:b].tolist())), self._SENSES[int(self.le[k])]

    def __getitem__(self, k: int) -> tuple:
        got = self._kept.get(k)
        if got is not None:
            return got
        n = len(self.le)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        if k >= n:
            return self._pending[k - n]
        got = self._kept[k] = self._build(k)
        return got

    def __iter__(self):
        for k in range(len(self.le)):
            yield self._kept.get(k) or self._build(k)
        yield from self._pending


class Partitions:
    """Rule 4's relations of rows, ``(part rows, total row or None, kind, key)`` each, the rows held as arrays.

    The build appends them (:meth:`append`) and :meth:`flush` turns those appended so far into arrays: the part rows
    one after another (:attr:`rows`, each one's :attr:`start`) and the total rows (:attr:`total`, -1 for None);
    reading partition ``i`` gives its tuple, built when read (as tuples of Python lists they took about 190 MB at
    1,000,000 students). ``kind`` is ``"gap"`` or ``"cell"``. The cell partitions given as arrays (:meth:`add`) have
    no key (None: rule 4 reads only a gap partition's; the cell ones' took about 55 MB at 1,000,000 students).

    Examples
    --------
    >>> p = Partitions()
    >>> p.append([4, 5], None, "gap", (0, "u", "ell"))
    >>> p.append([7], 6, "cell", ("levels", 1))
    >>> p.add(np.array([2]), np.array([8, 9]), np.array([10]))
    >>> len(p), p[1], p[2], p.start.tolist(), p.rows.tolist(), p.total.tolist()
    (3, ([7], 6, 'cell', ('levels', 1)), ([8, 9], 10, 'cell', None), [0, 2, 3, 5], [4, 5, 7, 8, 9], [-1, 6, 10])
    >>> list(p)[0]
    ([4, 5], None, 'gap', (0, 'u', 'ell'))
    """

    _KINDS = ("gap", "cell")

    def __init__(self):
        self._pending: list = []
        self.keys: list = []
        self.start = np.zeros(1, dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int64)
        self.total = np.zeros(0, dtype=np.int64)
        self.cell = np.zeros(0, dtype=bool)

    def append(self, rows, total, kind: str, key) -> None:
        if kind not in self._KINDS:
            raise ValueError("Partitions: a partition's kind is 'gap' or 'cell'")
        self._pending.append((rows, total, kind, key))

    def flush(self) -> None:
        """The partitions appended so far, as arrays."""
        got = self._pending
        if not got:
            return
        lens = np.fromiter((len(r) for r, *_ in got), dtype=np.int64, count=len(got))
        rows = np.fromiter(
            itertools.chain.from_iterable(r for r, *_ in got), dtype=np.int64, count=int(lens.sum())
        )
        total = np.fromiter((-1 if t is None else t for _, t, _, _ in got), dtype=np.int64, count=len(got))
        cell = np.fromiter((k == "cell" for _, _, k, _ in got), dtype=bool, count=len(got))
        self.keys.extend(key for *_, key in got)
        self._pending = []
        self.start = np.concatenate([self.start, self.start[-1] + np.cumsum(lens)])
        self.rows = np.concatenate([self.rows, rows])
        self.total = np.concatenate([self.total, total])
        self.cell = np.concatenate([self.cell, cell])

    def add(self, lens: np.ndarray, rows: np.ndarray, total: np.ndarray) -> None:
        """Cell partitions given as arrays (each one's number of part rows, the rows one partition after another,
        the total rows), after those appended so far."""
        self.flush()
        self.keys.extend([None] * len(lens))
        self.start = np.concatenate([self.start, self.start[-1] + np.cumsum(lens, dtype=np.int64)])
        self.rows = np.concatenate([self.rows, np.asarray(rows, dtype=np.int64)])
        self.total = np.concatenate([self.total, np.asarray(total, dtype=np.int64)])
        self.cell = np.concatenate([self.cell, np.ones(len(lens), dtype=bool)])

    def __len__(self) -> int:
        return len(self.cell) + len(self._pending)

    def __getitem__(self, i: int) -> tuple:
        n = len(self.cell)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        if i >= n:
            return self._pending[i - n]
        t = int(self.total[i])
        rows = self.rows[self.start[i] : self.start[i + 1]].tolist()
        return rows, (None if t < 0 else t), self._KINDS[int(self.cell[i])], self.keys[i]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def part_sums(
    rel: np.ndarray, var: np.ndarray, coef: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relations given as their terms in order (``rel``: each term's relation, ascending; ``var``, ``coef``) as the
    dicts a loop adding each term's coefficient to its count builds them: each count once, where it first comes,
    with the sum of its coefficients (a sum of 0 is kept). Returns each relation's number of counts, the counts and
    their coefficients, one relation after another.

    Examples
    --------
    >>> n, v, c = part_sums(np.array([0, 0, 0, 1, 1]), np.array([4, 2, 4, 2, 2]), np.array([1.0, 1, -1, 1, -1]))
    >>> n.tolist(), v.tolist(), c.tolist()
    ([2, 1], [4, 2, 2], [0.0, 1.0, 0.0])
    """
    seq = np.arange(len(rel))
    order = np.lexsort((seq, var, rel))  # by relation, count, then where each term comes
    r, v = rel[order], var[order]
    first = (
        np.flatnonzero(np.concatenate([[True], (r[1:] != r[:-1]) | (v[1:] != v[:-1])])) if len(r) else seq[:0]
    )
    total = np.add.reduceat(coef[order], first) if len(first) else coef[:0].astype(float)
    again = np.lexsort((order[first], r[first]))  # each count where it first comes, relation by relation
    n = np.bincount(r[first], minlength=int(rel[-1]) + 1 if len(rel) else 0)
    return n, v[first][again], total[again].astype(float)


def group_relations(sense: np.ndarray, rvars: np.ndarray, flat, tot, starts: np.ndarray) -> tuple:
    """The relations of ``(parts, total row)`` groups of a cell table (:func:`grouped`'s ``flat``, ``tot`` and
    ``starts``; ``rvars`` the rows' counts, one column a count column): group by group, column by column where
    ``sense`` (groups x columns: ``"eq"``, ``"le"`` or ``""`` for none) has one, the parts' counts add up to the
    total's (each count once, :func:`part_sums`), as :meth:`Relations.add` takes them (a loop building a dict per
    relation took seconds at 1,000,000 students).

    Examples
    --------
    >>> rvars = np.array([[10], [11], [11], [12]])  # rows 1 and 2 show one count (11)
    >>> n, var, coef, le = group_relations(np.array([["eq"], ["le"]]), rvars, np.array([1, 2, 3]),
    ...                                    np.array([0, 0]), np.array([0, 2, 3]))
    >>> n.tolist(), var.tolist(), coef.tolist(), le.tolist()
    ([2, 2], [11, 10, 12, 10], [2.0, -1.0, 1.0, -1.0], [False, True])
    """
    g, j = np.nonzero(sense != "")
    lens = np.diff(starts)[g] + 1  # the parts, then the total
    term = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    last = term == np.repeat(lens - 1, lens)
    gg, jj = np.repeat(g, lens), np.repeat(j, lens)
    at = np.minimum(starts[gg] + term, len(flat) - 1)
    var = np.where(last, rvars[np.asarray(tot)[gg], jj], rvars[np.asarray(flat)[at], jj])
    n, var, coef = part_sums(np.repeat(np.arange(len(g)), lens), var, np.where(last, -1.0, 1.0))
    return n, var, coef, sense[g, j] == "le"


def count_codes(labels, counts, links, known: bool) -> tuple[np.ndarray, np.ndarray, list | None]:
    """The population-count key of every count of a cell table, as a code: ``(code, first, links)``.

    Counts are taken row by row, column by column; two counts have one code when
    :class:`~.model.PopulationModel` gives them one key: the row's labels (``labels``: universe, school, variable,
    level, year; the first four as text or as their codes, the same codes; a missing year is its own in every row,
    as a missing value in a key equals nothing else), and the
    count's value (``known``) or its link (from published files), or where there is neither the count's own
    name (universe and column). ``first`` is each code's first count (codes are numbered in the order first met),
    ``links`` the links of the counts in that order (None with ``known``).

    Examples
    --------
    >>> import numpy as np
    >>> obj = lambda *x: np.array(x, dtype=object)
    >>> labels = (obj("u", "u", "v"), obj("A", "A", "A"), obj("all", "x", "x"), obj("all", "1", "1"),
    ...           np.array([2016.0, 2016.0, 2016.0]))
    >>> code, first, _ = count_codes(labels, [np.array([30.0, 4.0, 4.0])], [None], True)
    >>> code.tolist(), first.tolist()  # the group's 4 students in two universes: one count
    ([0, 1, 1], [0, 1])
    >>> count_codes(labels, [np.array([30.0, np.nan, np.nan])], [None], True)[0].tolist()  # missing: each its own
    [0, 1, 2]
    """
    unis, school, var, lev, yrs = labels
    n, k = len(yrs), len(counts)
    yrs = np.asarray(yrs, dtype=float) + 0.0
    no_year = np.isnan(yrs)
    row_code = codes([np.where(no_year, 0.0, yrs), np.where(no_year, np.arange(n), -1), school, var, lev])[0]
    uni_code = codes([unis])[0]
    at, col = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    x_all = (np.column_stack(counts).ravel() if k > 1 else np.asarray(counts[0], dtype=float)) + 0.0
    lk = None
    if known:
        own, value = np.isnan(x_all), x_all
    else:
        lk = [ln for row in zip(*links) for ln in row] if k > 1 else list(links[0])
        own = np.fromiter((ln is None for ln in lk), dtype=bool, count=n * k)
        value = np.array([np.nan if ln is None else ln[1] for ln in lk], dtype=float) + 0.0
    code, first = codes(
        [
            row_code[at],
            own,
            np.where(own, 0.0, value),
            np.where(own, uni_code[at], -1),
            np.where(own, col, -1),
        ]
    )
    return code, first, lk


def entry(ent, rid, vs, coefs, value) -> None:
    """One entry appended to a table's lists of entries (rows, lengths, variables, coefficients, values).

    Examples
    --------
    >>> ent = ([], [], [], [], [])
    >>> entry(ent, 3, [7, 2], [1.0, -1.0], 45.0)
    >>> ent
    ([3], [2], [7, 2], [1.0, -1.0], [45.0])
    """
    ent[0].append(rid)
    ent[1].append(len(vs))
    ent[2].extend(vs)
    ent[3].extend(coefs)
    ent[4].append(value)


def grouped(groups) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """``(parts, total row)`` groups as flat part positions, each one's group, the total rows and starts.

    Examples
    --------
    >>> flat, gid, tot, starts = grouped([([1, 2], 0), ([4], 3)])
    >>> flat.tolist(), gid.tolist(), tot.tolist(), starts
    ([1, 2, 4], [0, 0, 1], [0, 3], [0, 2, 3])
    """
    lens = np.fromiter((len(p) for p, _ in groups), dtype=np.int64, count=len(groups))
    flat = np.concatenate([np.asarray(p, dtype=np.int64) for p, _ in groups])
    tot = np.fromiter((t for _, t in groups), dtype=np.int64, count=len(groups))
    return flat, np.repeat(np.arange(len(groups)), lens), tot, np.concatenate([[0], np.cumsum(lens)]).tolist()


def picked_groups(rows, starts, which, tot) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """:func:`grouped` of the groups ``which`` (ascending) of grouped rows (``rows``, ``starts``: group ``g``'s rows are
    ``rows[starts[g]:starts[g + 1]]``, as :func:`key_groups` gives them), the group ``which[i]`` with the total row
    ``tot[i]``: taken from the arrays at once (a list of each group's rows took about 0.3 CPU-s at 1,000,000 students).

    Examples
    --------
    >>> flat, gid, tot, starts = picked_groups(np.array([1, 2, 7, 4]), np.array([0, 2, 3, 4]), np.array([0, 2]), [0, 3])
    >>> flat.tolist(), gid.tolist(), tot.tolist(), starts
    ([1, 2, 4], [0, 0, 1], [0, 3], [0, 2, 3])
    """
    which = np.asarray(which, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    lo, lens = starts[which], starts[which + 1] - starts[which]
    flat = np.asarray(rows, dtype=np.int64)[ranges(lo, lens)]
    gid = np.repeat(np.arange(len(which)), lens)
    return flat, gid, np.asarray(tot, dtype=np.int64), np.concatenate([[0], np.cumsum(lens)]).tolist()


def sums(vals, total, gid, n) -> tuple[np.ndarray, np.ndarray]:
    """Whether each group misses a count (a part's or its total's), and the sum of its parts' counts.

    Examples
    --------
    >>> import numpy as np
    >>> missing, s = sums(np.array([1.0, 2.0, np.nan]), np.array([3.0, 5.0]), np.array([0, 0, 1]), 2)
    >>> missing.tolist(), s.tolist()
    ([False, True], [3.0, 0.0])
    """
    gap = np.isnan(vals)
    missing = (np.bincount(gid, weights=gap, minlength=n) > 0) | np.isnan(total)
    return missing, np.bincount(gid, weights=np.where(gap, 0.0, vals), minlength=n)


def label_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column of labels as ``(codes, values)``, ``values[codes]`` giving the column back: the distinct values
    (each the column's own first one) where the column holds only text (no missing value) or only numbers, else
    the column itself (values of two types that compare equal, ``1`` and ``1.0``, or ``None`` and ``nan``, are
    not merged). What :func:`~.model.row_label` keeps of the rows' label columns (at 1,000,000 students the
    columns' own values, one Python string a row and column, took 280 MB).

    Examples
    --------
    >>> code, values = label_codes(np.array(["a", "b", "a"], dtype=object))
    >>> code.tolist(), values.tolist(), values[code].tolist()
    ([0, 1, 0], ['a', 'b'], ['a', 'b', 'a'])
    >>> label_codes(np.array([1, 1.0, True], dtype=object))[1].tolist()  # mixed types: kept as they are
    [1, 1.0, True]
    """
    values = np.asarray(values)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) != "string":
        return np.arange(len(values)), values
    code = pd.factorize(values, use_na_sentinel=False)[0]
    first = np.unique(code, return_index=True)[1]  # codes are numbered in the order first met
    return code.astype(np.int32 if len(first) < 2**31 else np.int64), values[first]


def subject_relations(sense: np.ndarray, rvars: np.ndarray, flat, tot, starts) -> tuple:
    """The relations of a cell table's pooled-subject groups (``(parts, pooled row)``, as :func:`group_relations`
    takes them), group by group, column by column where ``sense`` has one: ``"eq"`` (results add up: the parts'
    counts minus the pooled count, each count once, :func:`part_sums`), or ``"le"`` (students lie between the
    largest subject and the sum: the pooled count minus the parts', then ``part - pooled <= 0`` for each part in
    turn that is not the pooled count itself). As :meth:`Relations.add` takes them, in the order a loop building a
    dict per relation appends them (that loop took about 2 CPU-s at 1,000,000 students).

    Examples
    --------
    >>> rvars = np.array([[9, 5], [3, 1], [4, 2]])  # the pooled row 0, its subjects rows 1 and 2; two columns
    >>> n, var, coef, le = subject_relations(np.array([["eq", "le"]]), rvars, np.array([1, 2]), np.array([0]),
    ...                                      np.array([0, 2]))
    >>> n.tolist(), var.tolist(), le.tolist()
    ([3, 3, 2, 2], [3, 4, 9, 1, 2, 5, 1, 5, 2, 5], [False, True, True, True])
    >>> coef.tolist()
    [1.0, 1.0, -1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0]
    """
    starts = np.asarray(starts, dtype=np.int64)
    flat, tot = np.asarray(flat, dtype=np.int64), np.asarray(tot, dtype=np.int64)
    g, j = np.nonzero(sense != "")  # each relation of a group and column, in that order
    is_le = sense[g, j] == "le"
    nparts = np.diff(starts)[g]
    lens = nparts + 1  # the parts, then the pooled count
    term = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    last = term == np.repeat(nparts, lens)
    gg, jj = np.repeat(g, lens), np.repeat(j, lens)
    at = np.minimum(starts[gg] + term, max(len(flat) - 1, 0))
    var = np.where(last, rvars[tot[gg], jj], rvars[flat[at], jj]) if len(gg) else np.zeros(0, dtype=np.int64)
    sign = np.where(np.repeat(is_le, lens), -1.0, 1.0)
    n, var_m, coef_m = part_sums(np.repeat(np.arange(len(g)), lens), var, np.where(last, -sign, sign))
    # each "le" relation's pairs (a part, then the pooled count), after it, part by part
    pair = np.repeat(is_le, lens) & ~last
    pv, pt = var[pair], np.repeat(rvars[tot[g], j], lens)[pair]
    keep = pv != pt
    owner = np.repeat(np.arange(len(g)), lens)[pair][keep]
    pv, pt = pv[keep], pt[keep]
    # the relations in order: each group and column's own, then its pairs (a stable sort by owner)
    rel_owner = np.concatenate([np.arange(len(g)), owner])
    order = np.argsort(rel_owner, kind="stable")
    all_n = np.concatenate([n, np.full(len(pv), 2, dtype=np.int64)]).astype(np.int64)
    seg = np.concatenate([[0], np.cumsum(all_n)])[:-1]
    at_all = ranges(seg[order], all_n[order])
    var_all = np.concatenate([var_m, np.column_stack([pv, pt]).ravel()]).astype(np.int64)
    coef_all = np.concatenate([coef_m, np.tile([1.0, -1.0], len(pv))])
    le_all = np.concatenate([is_le, np.ones(len(pv), dtype=bool)])
    return all_n[order], var_all[at_all], coef_all[at_all], le_all[order]


def key_codes(keys: list[np.ndarray]) -> np.ndarray:
    """One code per combination of the keys' codes (each key numbered as ``pd.factorize`` numbers it, -1 for a
    missing value): ``0..K-1`` in the order first met, -1 where a key is missing (two rows have one code when their
    keys are equal, as tuples of the values in a dict would be, missing values apart).

    Examples
    --------
    >>> key_codes([np.array([1, 0, 1, 0, -1]), np.array([0, 0, 1, 0, 0])]).tolist()
    [0, 1, 2, 1, -1]
    """
    gi = np.zeros(len(keys[0]), dtype=np.int64)
    missing = np.zeros(len(keys[0]), dtype=bool)
    for c in keys:
        c = np.asarray(c, dtype=np.int64)
        missing |= c < 0
        gi = gi * (int(c.max(initial=-1)) + 1) + c
        if len(gi) and gi.max() >= 2**40:  # renumbered: the combinations stay apart and the numbers small
            gi = pd.factorize(gi)[0]
    out = np.full(len(gi), -1, dtype=np.int64)
    out[~missing] = pd.factorize(gi[~missing])[0]
    return out


def key_groups(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``groupby(keys, sort=False).indices`` from the keys' codes (:func:`key_codes`): every group's rows
    (ascending), group after group, and the groups' starts in them (one more than the groups). The groups come in
    pandas' order, the order of their first rows; a row with a missing key is in none.

    Examples
    --------
    >>> rows, starts = key_groups([np.array([1, 0, 1, 0, -1]), np.array([0, 0, 1, 0, 0])])
    >>> rows.tolist(), starts.tolist()
    ([0, 1, 3, 2], [0, 1, 3, 4])
    """
    code = key_codes(keys)
    valid = np.flatnonzero(code >= 0)
    order = np.argsort(code[valid], kind="stable")
    starts = np.flatnonzero(np.diff(code[valid][order], prepend=-1) != 0)
    return valid[order], np.append(starts, len(valid))


def flat_index_lists(lens: np.ndarray, flat: np.ndarray) -> IndexLists:
    """``{value: [position, ...]}`` of integer values in a sequence of items (the counts of each row, of each
    relation) given as their lengths and their values one after another: the positions of the items holding each
    value, ascending, as a loop appending each item's position to the list of each of its values builds it (read
    as a ``defaultdict(list)``: :class:`IndexLists`), from one sort instead of that loop.

    Examples
    --------
    >>> dict(flat_index_lists(np.array([2, 1, 0, 2, 2]), np.array([3, 1, 1, 3, 0, 1, 1])))
    {0: [3], 1: [0, 1, 4, 4], 3: [0, 3]}
    """
    pos = np.repeat(np.arange(len(lens)), lens)
    order = np.argsort(flat, kind="stable")
    return IndexLists(flat[order], pos[order])


class IndexLists:
    """Lists of positions by integer value, read as a ``defaultdict(list)`` of them (a value without positions gives
    an empty list), held as two arrays (each list made when asked for): the protection state's lists of the rows
    and relations of every count took 310 MB as Python lists at 1,000,000 students.

    ``values`` ascending (non-negative), ``positions`` in the same order.

    Examples
    --------
    >>> lists = IndexLists(np.array([1, 1, 4]), np.array([0, 2, 1]))
    >>> lists[1], lists[4], lists[2], lists[9], lists.get(3, ()), list(lists.keys())
    ([0, 2], [1], [], [], (), [1, 4])
    """

    def __init__(self, values: np.ndarray, positions: np.ndarray):
        n = int(values[-1]) + 1 if len(values) else 0
        self._start = np.searchsorted(values, np.arange(n + 1))  # where each value's positions start
        # int32 positions where they fit (the relations of each count took 34 MB at 1,000,000 students as int64)
        small = len(positions) == 0 or int(np.max(positions)) < 2**31
        self._at = np.asarray(positions, dtype=np.int32 if small else np.int64)

    def __getitem__(self, v) -> list:
        if not 0 <= v < len(self._start) - 1:
            return []
        return self._at[self._start[v] : self._start[v + 1]].tolist()

    def positions_of(self, vs: np.ndarray) -> np.ndarray:
        """The positions of each value of ``vs`` (non-negative integers), one value's after another (as arrays).

        Examples
        --------
        >>> IndexLists(np.array([1, 1, 4]), np.array([0, 2, 1])).positions_of(np.array([4, 9, 1])).tolist()
        [1, 0, 2]
        """
        vs = vs[vs < len(self._start) - 1]
        return self._at[ranges(self._start[vs], self._start[vs + 1] - self._start[vs])]

    def get(self, v, default=None):
        """The positions of ``v``, or ``default`` when it has none."""
        got = self[v]
        return got if got else default

    def keys(self) -> list:
        """The values that have positions, ascending."""
        return np.flatnonzero(np.diff(self._start)).tolist()
