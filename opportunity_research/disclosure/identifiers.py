"""The identifiers a report must not contain, held as Arrow strings until a screen needs them.

The batch collects every district's raw student and teacher ids and their pseudonyms before it processes the data,
and holds them while the notebook runs, so that the privacy screen and the redaction of error messages
(:mod:`opportunity_research.disclosure.privacy`) can look for them. A million-student district has about two million
of them: as a Python set they cost 360 MB and 3.7 CPU-s to read, and the screen's lookups built from that set
another 400 MB and 8.6 CPU-s. :class:`Identifiers` reads only the id columns (pyarrow), keeps them as Arrow arrays
(about 20 bytes an id, no Python object per id), and builds the screen's lookups once, with Arrow's string kernels
(Python's own ``str.strip`` and ``str.casefold`` for the rare id that is not ASCII, so the result is the same).

Examples
--------
>>> ids = Identifiers(["L0000123 ", "l0000123", "T-77", None])
>>> found, keys, skipped = ids.lookups(min_length=5)
>>> sorted(found), sorted(keys), skipped
(['l0000123'], ['l0000123'], 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ID_SOURCES", "Identifiers"]

#: (table, column) of the identifiers the screen looks for: raw CSVs and processed parquet files.
ID_SOURCES = (("students", "student_id"), ("classrooms", "teacher_id"))
#: The ASCII characters Python's ``str.strip()`` removes (it also removes \x1c-\x1f).
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
#: An identifier's last run of letters and digits (casefolded): its key (see ``privacy._Matcher``).
_KEY = r"(?P<key>[0-9a-z]+)[^0-9a-z]*$"


class Identifiers:
    """Identifiers the privacy screen looks for, read from a district's files or given as strings.

    Parameters
    ----------
    values
        Identifiers to start with (strings; None is skipped).

    Examples
    --------
    >>> ids = Identifiers({"S0000123"})
    >>> ids.add(["S0000456"])
    >>> sorted(ids.lookups(min_length=5)[0])
    ['s0000123', 's0000456']
    """

    def __init__(self, values: Iterable[str] = ()):
        self._arrays: list[pa.Array] = []
        self._lookups: dict[int, tuple[frozenset, frozenset, int]] = {}
        self.add(values)

    def add(self, values: Iterable[str] | pa.Array | pa.ChunkedArray) -> None:
        """Add identifiers: an Arrow array or chunked array (any type, cast to strings), or strings.

        Examples
        --------
        >>> ids = Identifiers()
        >>> ids.add(pa.array([1234567, None]))
        >>> ids.lookups(min_length=5)[0]
        frozenset({'1234567'})
        """
        if isinstance(values, pa.ChunkedArray):
            arrays = values.chunks
        elif isinstance(values, pa.Array):
            arrays = [values]
        else:
            arrays = [pa.array([None if pd.isna(v) else str(v) for v in values], pa.string())]
        for a in arrays:
            if pa.types.is_dictionary(a.type):
                a = a.dictionary_decode()
            if len(a):
                self._arrays.append(a if a.type == pa.string() else pc.cast(a, pa.string()))
                self._lookups.clear()

    def read(self, *folders: Path, sources=ID_SOURCES) -> None:
        """Add the ids of the folders' ``sources`` tables: ``<table>.csv`` (raw) and ``<table>.parquet``
        (processed), only the id column. Best effort: a missing or unreadable file or column is skipped (reading
        it is the validator's business).

        Examples
        --------
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "students.csv").write_text("student_id,grade\\nL0000123,3\\n,4\\n")
        >>> ids = Identifiers()
        >>> ids.read(folder)
        >>> ids.lookups(min_length=5)[0]
        frozenset({'l0000123'})
        """
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        for folder in folders:
            for table, col in sources:
                for f in (Path(folder) / f"{table}.csv", Path(folder) / f"{table}.parquet"):
                    if not f.exists():
                        continue
                    try:
                        if (
                            f.suffix == ".csv"
                        ):  # as pandas.read_csv(dtype=str) reads it: empty and NA -> missing
                            options = pacsv.ConvertOptions(
                                include_columns=[col],
                                column_types={col: pa.string()},
                                strings_can_be_null=True,
                            )
                            column = pacsv.read_csv(f, convert_options=options).column(col)
                        else:
                            column = pq.read_table(f, columns=[col]).column(col)
                    except (OSError, ValueError, KeyError, pa.ArrowException):
                        continue
                    self.add(column)

    def lookups(self, min_length: int) -> tuple[frozenset, frozenset, int]:
        """``(ids, keys, skipped)``: the distinct identifiers, stripped and casefolded, at least ``min_length``
        characters long; the last run of letters and digits of each (its key); how many distinct stripped
        identifiers were shorter. Built once per ``min_length`` (until ids are added).

        Examples
        --------
        >>> Identifiers(["ab-123-xy9", "ab-123-XY9", " 1234 "]).lookups(min_length=5)
        (frozenset({'ab-123-xy9'}), frozenset({'xy9'}), 1)
        """
        if min_length not in self._lookups:
            self._lookups[min_length] = self._build(min_length)
        return self._lookups[min_length]

    def _build(self, min_length: int) -> tuple[frozenset, frozenset, int]:
        values = pa.chunked_array(self._arrays, pa.string()).drop_null()
        ascii_ = pc.string_is_ascii(values)
        other = values.filter(pc.invert(ascii_)).to_pylist()  # Python's strip and casefold, exactly
        stripped = pa.chunked_array(
            [
                *pc.utf8_trim(values.filter(ascii_), characters=_ASCII_WHITESPACE).chunks,
                pa.array([s.strip() for s in other], pa.string()),
            ],
            pa.string(),
        )
        distinct = pc.unique(stripped)
        long_enough = pc.greater_equal(pc.utf8_length(distinct), min_length)
        skipped = len(distinct) - pc.sum(long_enough).as_py() if len(distinct) else 0
        kept = distinct.filter(long_enough)
        ascii_ = pc.string_is_ascii(kept)
        folded = pa.chunked_array(
            [
                pc.ascii_lower(kept.filter(ascii_)),  # casefold is lower for ASCII
                pa.array([s.casefold() for s in kept.filter(pc.invert(ascii_)).to_pylist()], pa.string()),
            ],
            pa.string(),
        )
        keys = pc.struct_field(pc.extract_regex(folded, _KEY), [0]).drop_null()
        return frozenset(folded.to_pylist()), frozenset(keys.to_pylist()), int(skipped)
