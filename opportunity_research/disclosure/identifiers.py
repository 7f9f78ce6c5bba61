"""The identifiers a report must not contain, read when a screen needs them and held as Arrow strings.

The batch names every district's raw student and teacher ids and their pseudonyms (the folders holding them) before
it processes the data, so that the privacy screen and the redaction of error messages
(:mod:`opportunity_research.disclosure.privacy`) can look for them; they are read when one first does, not while the
notebook runs. A million-student district has about two million
of them: as a Python set they cost 360 MB and 3.7 CPU-s to read, and the screen's lookups built from that set
another 400 MB and 8.6 CPU-s. :class:`Identifiers` reads only the id columns (pyarrow), keeps them as Arrow arrays
(about 20 bytes an id, no Python object per id), and builds the screen's lookups once, with Arrow's string kernels
(Python's own ``str.strip`` and ``str.casefold`` for the rare id that is not ASCII, so the result is the same), as
:class:`StringSet` sets: sorted arrays of the ids' bytes, no Python string per id (at 1,000,000 students the lookups
held 377 MB as frozensets, 51 MB so).

Examples
--------
>>> ids = Identifiers(["L0000123 ", "l0000123", "T-77", None])
>>> found, keys, skipped = ids.lookups(min_length=5)
>>> sorted(found), sorted(keys), skipped
(['l0000123'], ['l0000123'], 1)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ID_SOURCES", "Identifiers", "StringSet"]

#: (table, column) of the identifiers the screen looks for: raw CSVs and processed parquet files.
ID_SOURCES = (("students", "student_id"), ("classrooms", "teacher_id"))
#: The ASCII characters Python's ``str.strip()`` removes (it also removes \x1c-\x1f).
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
#: An identifier's last run of letters and digits (casefolded): its key (see ``privacy._Matcher``).
_KEY = r"(?P<key>[0-9a-z]+)[^0-9a-z]*$"
#: Each byte as the byte it lowercases to when it is an ASCII letter or digit, 0 for every other byte (UTF-8: every
#: byte of a character that is not ASCII is 0x80 or more): :meth:`StringSet.holds_word`'s words.
_WORD_BYTES = np.zeros(256, dtype=np.uint8)
_WORD_BYTES[np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.frombuffer(
    b"0123456789abcdefghijklmnopqrstuvwxyz", np.uint8
)
_WORD_BYTES[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)] = np.frombuffer(
    b"abcdefghijklmnopqrstuvwxyz", np.uint8
)


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
        self._lookups: dict[int, tuple[StringSet, StringSet, int]] = {}
        # the folders given to read(), read when the lookups are next built
        self._unread: list[tuple[Path, tuple]] = []
        self._lock = threading.Lock()  # a screen's and a redaction's threads: the ids are read and built once
        self.add(values)

    def add(self, values: Iterable[str] | pa.Array | pa.ChunkedArray) -> None:
        """Add identifiers: an Arrow array or chunked array (any type, cast to strings), or strings.

        Examples
        --------
        >>> ids = Identifiers()
        >>> ids.add(pa.array([1234567, None]))
        >>> ids.lookups(min_length=5)[0]
        StringSet(['1234567'])
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

        The files are read when :meth:`lookups` is first asked for after this call, not now: a batch names a
        district's folders before its notebook runs and holds no id while it runs (at 1,000,000 students about
        50 MB of the runner's memory beside the notebook), and the screen or a redaction reads them when it needs
        them (the folders must then still be there, as a batch's raw and processed folders are).

        Examples
        --------
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "students.csv").write_text("student_id,grade\\nL0000123,3\\n,4\\n")
        >>> ids = Identifiers()
        >>> ids.read(folder)
        >>> ids.lookups(min_length=5)[0]
        StringSet(['l0000123'])
        """
        with self._lock:
            self._unread.extend((Path(folder), tuple(sources)) for folder in folders)
            self._lookups.clear()

    def _read_folders(self) -> None:
        """Read the folders :meth:`read` was given (with ``_lock`` held)."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        unread, self._unread = self._unread, []
        for folder, sources in unread:
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

    def lookups(self, min_length: int) -> tuple[StringSet, StringSet, int]:
        """``(ids, keys, skipped)``: the distinct identifiers, stripped and casefolded, at least ``min_length``
        characters long; the last run of letters and digits of each (its key); how many distinct stripped
        identifiers were shorter. Built once per ``min_length`` (until ids are added).

        Examples
        --------
        >>> Identifiers(["ab-123-xy9", "ab-123-XY9", " 1234 "]).lookups(min_length=5)
        (StringSet(['ab-123-xy9']), StringSet(['xy9']), 1)
        """
        with self._lock:
            if self._unread:
                self._read_folders()
            if min_length not in self._lookups:
                self._lookups[min_length] = self._build(min_length)
            return self._lookups[min_length]

    def _build(self, min_length: int) -> tuple[StringSet, StringSet, int]:
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
        del values, ascii_  # (each copy of two million ids is about 35 MB: dropped as soon as done with)
        # the distinct short ones counted; the others kept as they are (StringSet drops repeats as it sorts: a hash
        # table of every distinct id took 280 MB of Arrow's pool at 1,000,000 students)
        long_enough = pc.greater_equal(pc.utf8_length(stripped), min_length)
        skipped = len(pc.unique(stripped.filter(pc.invert(long_enough)).combine_chunks()))
        kept = stripped.filter(long_enough)
        del stripped, long_enough
        ascii_ = pc.string_is_ascii(kept)
        folded = pa.chunked_array(
            [
                # casefold is lower for ASCII; its chunks, not the chunked array itself (an element of this list
                # that is not an Array is converted value by value: 1 CPU-s of the screen at 1,000,000 students)
                *pc.ascii_lower(kept.filter(ascii_)).chunks,
                pa.array([s.casefold() for s in kept.filter(pc.invert(ascii_)).to_pylist()], pa.string()),
            ],
            pa.string(),
        )
        del kept, ascii_
        found = StringSet(folded)
        keys = pc.struct_field(pc.extract_regex(folded, _KEY), [0]).drop_null()
        del folded
        return found, StringSet(keys), int(skipped)


class StringSet(AbstractSet):
    """A read-only set of strings held as sorted arrays of their UTF-8 bytes, one array per byte length (about
    the strings' own bytes; a Python frozenset of two million identifiers and their keys took 377 MB at
    1,000,000 students, these about 40 MB). Membership is exact (the same answers as a frozenset of the same
    strings): a string is looked up, by binary search, among the strings of its own byte length only.
    :meth:`isdisjoint` looks many strings up at once, :meth:`holds_word` the words of a text.

    Examples
    --------
    >>> s = StringSet(["s0000123", "école-1", "s0000123"])
    >>> len(s), "s0000123" in s, "s0000124" in s, "école-1" in s, 5 in s
    (2, True, False, True, False)
    >>> s == {"s0000123", "école-1"}, s.isdisjoint(["a", "b"]), s.isdisjoint(["a", "s0000123"])
    (True, True, False)
    """

    def __init__(self, values: Iterable[str] | pa.Array | pa.ChunkedArray = ()):
        if not isinstance(values, pa.Array | pa.ChunkedArray):
            values = pa.array([v for v in values if v is not None], pa.string())
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        values = values.cast(pa.string()).drop_null()
        # a string holding a NUL byte (never seen in an identifier), and the empty string: a Python set (numpy's
        # fixed-width bytes drop trailing NULs when an element is read, and have no width 0)
        odd = pc.or_(pc.match_substring(values, "\x00"), pc.equal(pc.binary_length(values), 0))
        self._odd = frozenset(values.filter(odd).to_pylist())
        values = (values.filter(pc.invert(odd)) if self._odd else values).cast(pa.binary())
        lengths = pc.binary_length(values)
        self._by_len: dict[int, np.ndarray] = {}
        widths = pc.unique(lengths).to_pylist()
        for n in widths:
            part = values.filter(pc.equal(lengths, n)) if len(widths) > 1 else values
            offsets = np.frombuffer(
                part.buffers()[1], dtype=np.int32, count=len(part) + 1, offset=4 * part.offset
            )
            data = np.sort(
                np.frombuffer(part.buffers()[2], dtype=f"S{n}", count=len(part), offset=int(offsets[0]))
            )
            keep = np.ones(len(data), dtype=bool)
            keep[1:] = data[1:] != data[:-1]  # each string once
            self._by_len[n] = data[keep] if not keep.all() else data  # copies: the Arrow buffers are not kept
        self._len = len(self._odd) + sum(len(a) for a in self._by_len.values())

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        for n in sorted(self._by_len):
            for b in self._by_len[n].tolist():
                yield b.decode()
        yield from self._odd

    def __contains__(self, value) -> bool:
        if not isinstance(value, str):
            return False
        if "\x00" in value or not value:
            return value in self._odd
        b = value.encode("utf-8", "surrogatepass")
        arr = self._by_len.get(len(b))
        if arr is None:
            return False
        i = int(np.searchsorted(arr, b))
        return i < len(arr) and arr[i] == b

    def __repr__(self) -> str:
        return f"StringSet({sorted(self)!r})"

    def isdisjoint(self, other) -> bool:
        """Whether none of the strings of ``other`` is in the set (the strings looked up at once, by length)."""
        items = [v for v in other if isinstance(v, str)]
        if len(items) < 16:
            return not any(v in self for v in items)
        if any("\x00" in v or not v for v in items):
            return not any(v in self for v in items)
        enc = [v.encode("utf-8", "surrogatepass") for v in items]
        lens = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
        return not any(
            self._holds_any(n, np.array([e for e, k in zip(enc, lens.tolist()) if k == n], dtype=f"S{n}"))
            for n in np.unique(lens).tolist()
        )

    def holds_word(self, text: str) -> bool:
        """Whether a word of ``text`` is in the set: a longest run of ASCII letters and digits, lowercased (the
        answer of ``not self.isdisjoint({w.lower() for w in re.findall("[0-9A-Za-z]+", text)})``). The words are
        cut from the text's bytes and looked up with numpy, those of each byte length the set holds at once: no
        Python string per word (the privacy screen asks this of every file it reads, tables of millions of words).

        Examples
        --------
        >>> s = StringSet(["l0000123", "xy9"])
        >>> s.holds_word("id L0000123, grade 3"), s.holds_word("ab-123-XY9."), s.holds_word("l0000123x xy99 é")
        (True, True, False)
        """
        if not self._by_len:
            return False
        folded = _WORD_BYTES[np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)]
        # where each run of word bytes starts and ends (a 0 byte before the first and after the last)
        edges = np.flatnonzero(np.diff(folded != 0, prepend=False, append=False))
        starts, lengths = edges[::2], edges[1::2] - edges[::2]
        del edges
        for n in self._by_len:
            at = starts[lengths == n]
            if len(at) and self._holds_any(n, folded[at[:, None] + np.arange(n)].view(f"S{n}").ravel()):
                return True
        return False

    def _holds_any(self, n: int, q: np.ndarray) -> bool:
        """Whether one of ``q`` (strings of ``n`` UTF-8 bytes, numpy ``S{n}``) is in the set."""
        arr = self._by_len.get(n)
        if arr is None or not len(q):
            return False
        i = np.minimum(np.searchsorted(arr, q), len(arr) - 1)
        return bool((arr[i] == q).any())
