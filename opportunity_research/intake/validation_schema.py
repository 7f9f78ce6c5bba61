"""The rules each contract table's columns must follow, checked on columns with pyarrow compute, and the
vectorized key helpers the rules share.

Holds :func:`table_schema` (the rules of one table, built from
:data:`opportunity_research.intake.contract.TABLES`), the checks of each column with the rule text each reports
(:func:`column_checks`; :func:`failing_rows` runs one on a column), duplicate-key detection (:func:`key_codes`,
:func:`duplicated_key`) and two small helpers (:func:`format_number`, :func:`as_chunked_array`).

Decisions
---------
* The checks run on pyarrow arrays, one column at a time (pyarrow compute kernels, no Python object per row):
  text columns are strings, numeric columns ``float64``, an empty cell is null. A check ignores empty cells
  (emptiness is its own rule, ``nullable``), so every failing check of a cell is reported once.
* pyarrow compute replaced pandera here (issue 21): pandera's pandas backend ran the checks on a pandas frame and
  returned its failure cases as a frame to translate; at a million students its validate call (the key check
  included) was a third of the sampled time of validation. The schema keeps the same shape (``columns`` with
  ``nullable``/``required``/``checks``, a ``unique_key`` table check) so the contract reads the same.
* Keys are hashed by pyarrow into one integer code per row, which is much faster than pandas on text keys of
  tens of millions of rows; missing values are a value of their own.

Examples
--------
>>> table_schema("students").name
'students'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pya
import pyarrow.compute as pyc

from .contract import TABLES, Column, Table

__all__ = [
    "NUMERIC_KINDS",
    "Check",
    "ColumnSchema",
    "IdCodes",
    "TableSchema",
    "as_chunked_array",
    "column_checks",
    "dictionary_codes",
    "duplicated_key",
    "failing_rows",
    "format_number",
    "key_codes",
    "shared_encodings",
    "shared_ids",
    "table_schema",
]

#: Column kinds parsed as numbers (``float64`` in the parsed frame).
NUMERIC_KINDS = ("int", "float", "flag")


def format_number(x) -> str:
    """A contract value as text: floats in ``g`` format (``3.0`` -> ``3``), anything else by ``str``.

    Examples
    --------
    >>> format_number(3.0), format_number(0.25), format_number(np.float32(2016)), format_number("ela")
    ('3', '0.25', '2016', 'ela')
    """
    return f"{float(x):g}" if isinstance(x, (float, np.floating)) else str(x)


@dataclass(frozen=True)
class Check:
    """One rule on a column's values: ``test`` maps a pyarrow array to a boolean array (True = passes; null
    where the cell is empty, which the check ignores).

    Examples
    --------
    >>> import pyarrow as pa
    >>> Check("at_least", lambda a: pyc.greater_equal(a, 0)).test(pa.array([1.0, -1.0, None])).to_pylist()
    [True, False, None]
    """

    name: str
    test: Callable


def column_checks(c: Column) -> list[tuple[Check, str]]:
    """The checks of a column with the rule text each one reports.

    Examples
    --------
    >>> [rule for _, rule in column_checks(TABLES["students"].columns["grade"])]
    ['must be a whole number', 'must be between 3 and 12']
    """
    checks = []
    if c.allowed is not None:
        allowed = list(c.allowed)
        if c.kind in NUMERIC_KINDS:
            value_set = pya.array([float(a) for a in allowed], type=pya.float64())
        else:
            value_set = pya.array([str(a) for a in allowed], type=pya.string())
        checks.append(
            (
                Check(
                    "isin",
                    lambda a, vs=value_set: pyc.if_else(pyc.is_null(a), None, pyc.is_in(a, value_set=vs)),
                ),
                "must be one of: " + ", ".join(map(format_number, c.allowed)),
            )
        )
    if c.kind == "int":
        checks.append((Check("whole_number", lambda a: pyc.equal(pyc.floor(a), a)), "must be a whole number"))
    if c.min is not None and c.max is not None:
        lo, hi = float(c.min), float(c.max)
        checks.append(
            (
                Check("in_range", lambda a: pyc.and_(pyc.greater_equal(a, lo), pyc.less_equal(a, hi))),
                f"must be between {format_number(c.min)} and {format_number(c.max)}",
            )
        )
    elif c.min is not None:
        lo = float(c.min)
        checks.append(
            (
                Check("greater_than_or_equal_to", lambda a: pyc.greater_equal(a, lo)),
                f"must be at least {format_number(c.min)}",
            )
        )
    elif c.max is not None:
        hi = float(c.max)
        checks.append(
            (
                Check("less_than_or_equal_to", lambda a: pyc.less_equal(a, hi)),
                f"must be at most {format_number(c.max)}",
            )
        )
    return checks


def failing_rows(check: Check, values) -> np.ndarray:
    """Row numbers where ``check`` fails on the pyarrow array ``values`` (empty cells never fail).

    Examples
    --------
    >>> check, rule = column_checks(TABLES["students"].columns["grade"])[1]
    >>> failing_rows(check, pya.array([3.0, None, 13.0, 2.0])).tolist(), rule
    ([2, 3], 'must be between 3 and 12')
    """
    passes = check.test(values)
    if pyc.all(passes).as_py() is not False:  # no cell fails (the usual case): no mask of every row made
        return np.zeros(0, dtype=np.int64)
    fails = pyc.fill_null(pyc.invert(passes), False)
    return np.flatnonzero(fails.to_numpy(zero_copy_only=False))


_ENCODINGS: ContextVar[dict | None] = ContextVar("intake_encodings", default=None)


@contextmanager
def shared_encodings() -> Iterator[None]:
    """Inside this block, :func:`dictionary_codes` hashes each text column once and reuses the result (the key
    check, the references across tables and the pseudonyms all need the same encoding of the id columns);
    nested blocks share the outermost one's, and the encodings are dropped when it ends.

    Examples
    --------
    >>> ids = pya.chunked_array([pya.array(["a", "b", "a"])])
    >>> with shared_encodings():
    ...     first, second = dictionary_codes(ids), dictionary_codes(ids)
    >>> first[0] is second[0]
    True
    """
    if _ENCODINGS.get() is not None:
        yield
        return
    token = _ENCODINGS.set({})
    try:
        yield
    finally:
        _ENCODINGS.reset(token)


def dictionary_codes(values) -> tuple[np.ndarray, pya.Array]:
    """(code of each row as int32, -1 when empty; the distinct values) of a text column, hashed once by pyarrow.

    ``values`` is a pyarrow array or a pandas text Series (or categorical: its codes and categories). Inside
    :func:`shared_encodings` the result is kept and returned again for the same column (the same buffers).

    Examples
    --------
    >>> codes, uniques = dictionary_codes(pd.Series(["x", None, "y", "x"], dtype="str"))
    >>> codes.tolist(), uniques.to_pylist()
    ([0, -1, 1, 0], ['x', 'y'])
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):  # coded already
        return values.cat.codes.to_numpy().astype(np.int32), pya.array(values.cat.categories)
    arr = values if isinstance(values, (pya.Array, pya.ChunkedArray)) else as_chunked_array(values)
    cache, key = _ENCODINGS.get(), _encoding_key(arr)
    if cache is not None and key in cache:
        return cache[key][1], cache[key][2]
    packed = _packed(arr)
    enc = pyc.dictionary_encode(arr if packed is None else packed[0])
    width = None if packed is None else packed[1]
    del packed  # the numbers (8 bytes a row) let go before the codes are made
    parts = enc.chunks if isinstance(enc, pya.ChunkedArray) else [enc]
    codes = np.concatenate(
        [pyc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in parts]
        or [np.zeros(0, dtype=np.int32)]
    ).astype(np.int32, copy=False)
    uniques = parts[0].dictionary if parts else pya.array([], type=arr.type)
    if width is not None:
        uniques = _unpacked(uniques, width, arr.type)
    if cache is not None:
        cache[key] = (arr, codes, uniques)  # arr keeps the buffers (and so the key's addresses) alive
    return codes, uniques


class IdCodes:
    """Codes of ids shared across columns and tables, one set per domain (``student_id``, ``classroom_id``...).

    :meth:`codes` gives each of a column's distinct values (a pyarrow array, e.g. from :func:`dictionary_codes`) its
    code among every id of the domain met so far, the new ones appended: the domain's ids are hashed once while no
    id is added to them (:meth:`_at`), each column's distinct values looked up in them. The answer is kept by the distinct values' buffers, so asking again for the same values (the same
    column later as a categorical, whose categories share them) costs nothing: ``process`` looks the student ids of
    each table up once, for its pseudonyms, and the rules across tables reuse those codes.

    Examples
    --------
    >>> ids = IdCodes()
    >>> ids.codes(pya.array(["p", "q"]), "x").tolist(), ids.codes(pya.array(["r", "p"]), "x").tolist()
    ([0, 1], [2, 0])
    >>> ids.ids("x").to_pylist(), ids.size("x"), ids.size("y")
    (['p', 'q', 'r'], 3, 0)
    """

    def __init__(self):
        self._ids = {}  # domain -> the distinct ids met so far (pyarrow), in the order met
        self._found = {}  # (domain, the values' buffers) -> (the values, kept alive; their codes)
        self._lookup = {}  # domain -> (width, hash index of the ids as numbers) while no id is added (:meth:`_at`)

    def codes(self, uniques: pya.Array, domain) -> np.ndarray:
        """The domain's code (int32) of each of ``uniques`` (distinct values, no null)."""
        key = (domain, _encoding_key(uniques))
        if key not in self._found:
            known = self._ids.get(domain)
            if known is None:
                self._ids[domain], found = uniques, np.arange(len(uniques), dtype=np.int32)
            else:
                found = self._at(uniques, domain).astype(np.int32)
                new = found < 0
                if new.any():
                    found[new] = len(known) + np.arange(int(new.sum()), dtype=np.int32)
                    fresh = uniques.filter(pya.array(new)).cast(known.type)
                    self._ids[domain] = pya.concat_arrays([known, fresh])
                    self._lookup.pop(domain, None)
            self._found[key] = (uniques, found)
        return self._found[key][1]

    def _at(self, uniques: pya.Array, domain) -> np.ndarray:
        """The position of each of ``uniques`` among the domain's ids (-1: not there). Ids of one width up to 8 bytes
        (:func:`_packed`) are looked up as numbers in a hash index of the domain's ids built once and kept until an
        id is added (at a million students each table's student ids were hashed against a new table of the
        million, 0.2 CPU-s a table); other ids by pyarrow's hash of the domain's ids."""
        packed = _packed(uniques)
        if packed is not None:
            if domain not in self._lookup:
                known = _packed(self._ids[domain])
                self._lookup[domain] = (
                    (None, None) if known is None else (known[1], pd.Index(known[0].to_numpy()))
                )
            width, index = self._lookup[domain]
            if width == packed[1]:
                return index.get_indexer(packed[0].to_numpy())
        at = pyc.index_in(uniques, value_set=self._ids[domain])
        return pyc.fill_null(at, -1).to_numpy(zero_copy_only=False)

    def ids(self, domain) -> pya.Array | None:
        """The domain's ids in the order of their codes (None before any)."""
        return self._ids.get(domain)

    def size(self, domain) -> int:
        """How many ids the domain holds so far (its codes are below this)."""
        return len(self._ids.get(domain, ()))


def shared_ids() -> IdCodes:
    """The :class:`IdCodes` of the enclosing :func:`shared_encodings` block (a new one outside any).

    Examples
    --------
    >>> with shared_encodings():
    ...     shared_ids() is shared_ids()
    True
    >>> shared_ids() is shared_ids()
    False
    """
    cache = _ENCODINGS.get()
    if cache is None:
        return IdCodes()
    if "ids" not in cache:
        cache["ids"] = IdCodes()
    return cache["ids"]


def _packed(arr) -> tuple[pya.ChunkedArray, int] | None:
    """A text column (pyarrow) as one uint64 a cell, with the width: when every cell that is not null holds the
    same number of bytes, 1 to 8 (ids written at a fixed width, e.g. ``M0000001``), its bytes zero-padded, which
    are the same number for the same text and different numbers for different texts (exact, not a hash; null
    stays null); else None. Arrow hashes these numbers in about half the time it hashes their text (at 1,000,000
    students: 9.5 million student ids dictionary-encoded in 0.66 + 0.19 s against 1.35 s, and a million looked up
    among a million in 0.22 s against 0.42).

    Examples
    --------
    >>> keys, width = _packed(pya.chunked_array([["ab", None], ["ba", "ab"]]))
    >>> width, keys.to_pylist() == [0x6261, None, 0x6162, 0x6261]
    (2, True)
    >>> _packed(pya.array(["ab", "abc"])) is None, _packed(pya.array(["123456789"])) is None
    (True, True)
    """
    chunks = arr.chunks if isinstance(arr, pya.ChunkedArray) else [arr]
    if not chunks or not all(
        pya.types.is_string(c.type) or pya.types.is_large_string(c.type) for c in chunks
    ):
        return None
    width, parts = None, []
    for c in chunks:
        if not len(c):
            parts.append(pya.array(np.zeros(0, dtype=np.uint64)))
            continue
        _, offsets, data = c.buffers()
        step = np.int64 if pya.types.is_large_string(c.type) else np.int32
        at = np.frombuffer(offsets, dtype=step, count=len(c) + 1, offset=c.offset * np.dtype(step).itemsize)
        lengths = np.diff(at)
        valid = None if not c.null_count else c.is_valid().to_numpy(zero_copy_only=False)
        n = int(lengths[0]) if valid is None else int(lengths[valid][0]) if valid.any() else width or 1
        if width is None:
            width = n
        if not 1 <= width <= 8 or n != width:
            return None
        if valid is None:
            same = bool((lengths == width).all())
        else:  # a null cell must hold no bytes, so the filled cells' bytes follow each other
            same = bool((lengths == np.where(valid, width, 0)).all())
        if not same:
            return None
        filled = int(at[-1] - at[0]) // width
        cells = np.zeros((filled, 8), dtype=np.uint8)
        cells[:, :width] = np.frombuffer(
            data, dtype=np.uint8, count=filled * width, offset=int(at[0])
        ).reshape(filled, width)
        keys = cells.view(np.uint64).ravel()
        if valid is not None:
            full = np.zeros(len(c), dtype=np.uint64)
            full[valid] = keys
            keys = pya.array(full, mask=~valid)
        parts.append(pya.array(keys) if valid is None else keys)
    return None if width is None else (pya.chunked_array(parts, type=pya.uint64()), width)  # None: no cell


def _unpacked(keys: pya.Array, width: int, kind: pya.DataType) -> pya.Array:
    """The texts of :func:`_packed` numbers ``keys`` (no null), as pyarrow ``kind`` (``string`` or ``large_string``).

    Examples
    --------
    >>> keys, width = _packed(pya.array(["ab", "ba"]))
    >>> _unpacked(keys.chunks[0], width, pya.string()).to_pylist()
    ['ab', 'ba']
    """
    data = np.ascontiguousarray(keys.to_numpy(zero_copy_only=False).view(np.uint8).reshape(-1, 8)[:, :width])
    step = np.int64 if pya.types.is_large_string(kind) else np.int32
    offsets = np.arange(len(keys) + 1, dtype=step) * width
    return pya.Array.from_buffers(kind, len(keys), [None, pya.py_buffer(offsets), pya.py_buffer(data)])


def _encoding_key(arr) -> tuple:
    """The cache key of a pyarrow array: its length, chunks and (first two chunks') buffer addresses."""
    chunks = arr.chunks if isinstance(arr, pya.ChunkedArray) else [arr]
    return (len(arr), len(chunks)) + tuple(
        (c.offset, *(b.address if b is not None else 0 for b in c.buffers())) for c in chunks[:2]
    )


def as_categories(values: pd.Series) -> pd.Series:
    """A text column as a pandas categorical (the same values, each held once; rows hold small integer codes).

    Built from :func:`dictionary_codes` (its cached encoding when there is one, which is dropped then: the text
    column is let go). Categories are in order of first appearance; an empty cell stays missing.

    Examples
    --------
    >>> c = as_categories(pd.Series(["fall", None, "spring", "fall"], dtype="str"))
    >>> c.tolist(), c.cat.codes.tolist(), c.dtype.categories.tolist()
    (['fall', nan, 'spring', 'fall'], [0, -1, 1, 0], ['fall', 'spring'])
    """
    codes, uniques = dictionary_codes(values)
    forget_encoding(values)
    categories = pd.Index(uniques.to_pandas(), dtype=values.dtype)
    # the categories are distinct already (pyarrow's dictionary): pandas' check of that would hash them again into
    # a table of Python strings (~80 MB for a million ids, kept with the column), so it is skipped when possible
    fast = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype = fast(categories, False) if fast is not None else pd.CategoricalDtype(categories)
    return pd.Series(
        pd.Categorical.from_codes(codes, dtype=dtype, validate=False), index=values.index, name=values.name
    )


def forget_encoding(values) -> None:
    """Drop the encoding :func:`dictionary_codes` keeps for ``values`` inside :func:`shared_encodings` (which holds
    the column's text alive), once no later step will ask for it.

    Examples
    --------
    >>> ids = pd.Series(["a", "b"], dtype="str")
    >>> with shared_encodings():
    ...     first = dictionary_codes(ids)[0]
    ...     forget_encoding(ids)
    ...     dictionary_codes(ids)[0] is first
    False
    """
    cache = _ENCODINGS.get()
    if cache is not None and not (
        isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype)
    ):
        arr = values if isinstance(values, (pya.Array, pya.ChunkedArray)) else as_chunked_array(values)
        cache.pop(_encoding_key(arr), None)


def key_codes(frame, key: list[str]) -> np.ndarray:
    """One integer code per distinct combination of the key columns (text hashed by pyarrow; NaN is a value).

    ``frame`` is a DataFrame or a dict of pyarrow arrays (the parsed columns of
    :func:`~opportunity_research.intake.validation_read.check_table`, empty cells null).

    Examples
    --------
    >>> codes = key_codes(pd.DataFrame({"a": ["x", "y", "x"], "b": [1.0, 2.0, 1.0]}), ["a", "b"])
    >>> bool(codes[0] == codes[2]), bool(codes[0] == codes[1])
    (True, False)
    """
    n_rows = len(frame[key[0]]) if key else len(frame)
    codes, span = np.zeros(n_rows, dtype=np.int64), 1
    for k in key:
        col = frame[k]
        arrow = isinstance(col, (pya.Array, pya.ChunkedArray))
        if (arrow and pya.types.is_floating(col.type)) or (not arrow and col.dtype.kind == "f"):
            if arrow:
                col = pyc.fill_null(col, np.nan).to_numpy()
            part, uniq = pd.factorize(col, use_na_sentinel=True)
        else:
            part, uniq = dictionary_codes(col)
        n = len(uniq) + 1  # codes -1..len-1 shifted to 0..len
        if span * n >= 2**62:  # keep the combined code inside int64
            codes, _ = pd.factorize(codes)
            span = int(codes.max(initial=0)) + 1
        codes, span = codes * n + part + 1, span * n
    return codes


def duplicated_key(frame: pd.DataFrame, key: list[str], *, keep: str | bool = "first") -> np.ndarray:
    """Boolean mask of rows whose key repeats an earlier row's (``keep=False``: every row of a repeated key).

    Same result as ``frame.duplicated(subset=key, keep=keep)``, faster on text keys of tens of
    millions of rows (the keys are hashed by pyarrow).

    Examples
    --------
    >>> duplicated_key(pd.DataFrame({"a": ["x", "y", "x"], "b": [1.0, 2.0, 1.0]}), ["a", "b"]).tolist()
    [False, False, True]
    """
    return pd.Series(key_codes(frame, key)).duplicated(keep=keep).to_numpy()


@dataclass(frozen=True)
class ColumnSchema:
    """The rules of one column: its parsed type (``float64`` or ``str``), whether it may be empty, whether a
    file must have it, and its checks.

    Examples
    --------
    >>> table_schema("students").columns["grade"].dtype
    'float64'
    """

    dtype: str
    nullable: bool
    required: bool
    checks: list = field(default_factory=list)


@dataclass(frozen=True)
class TableSchema:
    """The rules of one table: its columns' rules and the table checks (``unique_key``).

    Examples
    --------
    >>> list(table_schema("schools").columns)
    ['school_id', 'school_name', 'school_level']
    """

    name: str
    columns: dict
    checks: list = field(default_factory=list)
    key: tuple = ()


def table_schema(table: str | Table, *, columns: list[str] | None = None) -> TableSchema:
    """The rules of one contract table, as checked on the parsed (not yet final) columns.

    Text columns are ``str``, numeric columns ``float64`` (empty = missing); the rules are the allowed
    values, ranges, whole numbers, nullability and uniqueness of the key (a table check named ``unique_key``
    that fails on every repeat of an earlier row's key). ``columns`` restricts it to the columns a file has
    (default: every contract column, optional ones not required).

    Examples
    --------
    >>> table_schema("attendance").checks[0].name
    'unique_key'
    """
    t = TABLES[table] if isinstance(table, str) else table
    names = list(t.columns) if columns is None else [c for c in t.columns if c in columns]
    cols = {}
    for name in names:
        c = t.columns[name]
        cols[name] = ColumnSchema(
            "float64" if c.kind in NUMERIC_KINDS else "str",
            nullable=c.nullable,
            required=c.required,
            checks=[ch for ch, _ in column_checks(c)],
        )
    checks = []
    if set(t.key) <= set(names):
        key = list(t.key)
        checks.append(Check("unique_key", lambda df: ~duplicated_key(df, key)))
    return TableSchema(t.name, cols, checks, tuple(t.key))


def as_chunked_array(s: pd.Series) -> pya.ChunkedArray:
    """A pandas Series as a pyarrow ChunkedArray (what the pyarrow compute functions here expect).

    Examples
    --------
    >>> as_chunked_array(pd.Series(["a", None])).to_pylist()
    ['a', None]
    """
    a = pya.array(s)
    if pya.types.is_dictionary(a.type):  # a categorical: its values, not codes
        a = a.dictionary_decode()
    return a if isinstance(a, pya.ChunkedArray) else pya.chunked_array([a])
