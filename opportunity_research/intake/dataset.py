"""Processing raw district exports into typed, pseudonymized parquet tables, and loading them.

``process_district`` validates ``data/raw/<district_id>/`` against the contract, replaces student
and teacher identifiers by keyed pseudonyms, and writes one parquet file per table to
``data/processed/<district_id>/`` — into a temporary folder first, renamed into place only when
everything is written. ``data/raw`` is only ever read. When validation fails, nothing is written
and :class:`~opportunity_research.intake.validation.ValidationFailed` carries the full problem list.

Pseudonyms are keyed hashes (SipHash-2-4 via ``pandas.util.hash_pandas_object`` with a 128-bit
key): ``S-`` or ``T-`` followed by 16 hex digits. The same key, district and raw identifier always
give the same pseudonym, so re-processing is reproducible, while without the key (kept in
``data/pseudonym.key``, git-ignored, or ``$OPPORTUNITY_RESEARCH_KEY_FILE``) the raw identifier cannot
be recovered by hashing guesses. The district id is part of the hashed text, so the same raw id in
two districts gets two unrelated pseudonyms.

Examples
--------
>>> from opportunity_research.intake.dataset import pseudonymize
>>> import pandas as pd
>>> ids = pd.Series(["1001", "1002", "1001"])
>>> p = pseudonymize(ids, key="0123456789abcdef", prefix="S-", salt="demo")
>>> p[0] == p[2], p[0] != p[1], p[0][:2], len(p[0])
(True, True, 'S-', 18)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pya
import pyarrow.parquet as pq

from .. import config
from ..version import __version__
from .contract import TABLES
from .crosswalk import CROSSWALK_FILE
from .validation import ValidationFailed, check_district_id, validate_district
from .validation_schema import IdCodes, dictionary_codes, shared_encodings, shared_ids

__all__ = [
    "ROW_GROUP",
    "STALE_PREFIX",
    "District",
    "load_district",
    "process_district",
    "pseudonym_keys",
    "pseudonym_text",
    "pseudonymize",
    "read_key",
    "read_rows",
    "register",
    "retire_processed",
]

#: Name prefix of a district's earlier processed tables after a failed ``process`` (``.stale-<district_id>``).
STALE_PREFIX = ".stale-"

#: Rows per parquet row group of the processed tables (readers can skip or stream them group by group).
ROW_GROUP = 1 << 18

_HEX = np.array([f"{i:02x}" for i in range(256)])
#: Distinct ids hashed at a time by :func:`_hashed`.
_HASH_BLOCK = 1 << 16
_PREFIX = {"student_id": "S-", "teacher_id": "T-"}
#: The byte that two lowercase hex digits spell, by the two bytes read as one little-endian uint16; 65535 for any
#: other two bytes (:func:`pseudonym_keys`).
_HEX_PAIR = np.full(1 << 16, 0xFFFF, dtype=np.uint16)
_HEX_PAIR[
    (np.frombuffer(b"0123456789abcdef", np.uint8).astype(np.uint16)[:, None] << 8)
    | np.frombuffer(b"0123456789abcdef", np.uint8).astype(np.uint16)[None, :]
] = np.arange(256, dtype=np.uint16).reshape(16, 16).T

#: jemalloc's decay (milliseconds) while a district is processed: freed pages are kept this long for the next table's
#: buffers (see :func:`_pages_kept`), not returned at once as the package's pool otherwise does
#: (:func:`~opportunity_research.config.use_arrow_pool`).
PROCESS_DECAY_MS = 100
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
#: glibc's ``mallopt`` settings while a district is processed: no array is mapped on its own and nothing freed is
#: trimmed, so numpy's and pandas' arrays reuse the heap's pages (:func:`_pages_kept`) ...
_GLIBC_KEPT = {_M_TRIM_THRESHOLD: (1 << 31) - 1, _M_MMAP_THRESHOLD: 1 << 30}
#: ... and after: what glibc's own adjustment of the two reaches once an array of 32 MiB or more was freed.
_GLIBC_AFTER = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20}


def read_key(path: str | os.PathLike | None = None, *, create: bool = True) -> str:
    """Return the 16-character pseudonymization key, creating it (mode 600) if it does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pseudonym.key"
    >>> key = read_key(path)
    >>> len(key), read_key(path) == key, oct(path.stat().st_mode & 0o777)
    (16, True, '0o600')
    """
    path = Path(path) if path is not None else config.key_path()
    if path.exists():
        key = path.read_text().strip()
        if len(key.encode()) != 16:
            raise ValueError(f"pseudonym key file {path.name} must hold exactly 16 ASCII characters")
        return key
    if not create:
        raise FileNotFoundError(f"no pseudonym key at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(12)  # 16 characters, 96 bits
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def pseudonymize(
    ids: pd.Series, *, key: str, prefix: str, salt: str = "", memo: dict | None = None
) -> pd.Series:
    """Replace identifiers by keyed pseudonyms (vectorized; missing values stay missing).

    Parameters
    ----------
    ids
        Identifiers (text).
    key
        16-character secret key.
    prefix
        Text put before the 16 hex digits, e.g. ``"S-"``.
    salt
        Text hashed together with each id (the district id), so pseudonyms differ across districts.
    memo
        A dict kept across calls (one district's tables): the ids hashed so far and their pseudonyms, by
        ``(prefix, salt, key)`` (and, under ``"ids"``, the codes of the ids looked up: see :func:`_memo_names`).
        An id met again (the same student in every table) is looked up, not hashed again. The pseudonyms are the
        same with or without it.

    Examples
    --------
    >>> p = pseudonymize(pd.Series(["7", None, "7"]), key="0123456789abcdef", prefix="T-", salt="d1")
    >>> p[0] == p[2], p.isna().tolist(), p[0] == pseudonymize(pd.Series(["7"]), key="0123456789abcdef",
    ...                                                       prefix="T-", salt="d2")[0]
    (True, [False, True, False], False)
    >>> memo = {}
    >>> first = pseudonymize(pd.Series(["7", "8"]), key="0123456789abcdef", prefix="T-", salt="d1", memo=memo)
    >>> again = pseudonymize(pd.Series(["9", "7"]), key="0123456789abcdef", prefix="T-", salt="d1", memo=memo)
    >>> again[1] == first[0] == p[0], memo["T-", "d1", "0123456789abcdef"][0].to_pylist()
    (True, ['7', '8', '9'])
    """
    names, codes = _pseudonyms(ids, key=key, prefix=prefix, salt=salt, memo=memo)
    return pd.Series(_take(names, codes).to_pandas(), index=ids.index, dtype="str")


def _pseudonyms(
    ids: pd.Series, *, key: str, prefix: str, salt: str, memo: dict | None, domain: str | None = None
) -> tuple[pya.Array, np.ndarray]:
    """:func:`pseudonymize` as (the pseudonym of each distinct id, as pyarrow ``large_string``: what the processed
    table's column holds; each row's code into them, -1 when missing). :func:`_take` makes the rows' pseudonyms:
    ``process`` takes them one row group at a time, as it writes them (never the whole column at once).
    ``domain``: see :func:`_memo_names`."""
    if ids.dtype == "str":  # each distinct id is hashed once (and the encoding validation made is reused)
        codes, uniques = dictionary_codes(ids)
    else:
        codes, uniques = pd.factorize(ids, use_na_sentinel=True)
        uniques = pya.array(pd.Series(np.asarray(uniques, dtype=object)).astype("string"), pya.string())
    if memo is None:
        names = _hashed(uniques, key=key, prefix=prefix, salt=salt)
    else:
        names = _memo_names(uniques, memo, key=key, prefix=prefix, salt=salt, domain=domain)
    return names.cast(pya.large_string()), codes


def pseudonym_keys(ids: pd.Series, *, prefix: str = _PREFIX["student_id"]) -> np.ndarray | None:
    """The 64-bit hashes that pseudonyms ``ids`` spell (``prefix`` and 16 lowercase hex digits each: what
    :func:`pseudonymize` writes), as int64 keys in the pseudonyms' order; None when one of them is missing or has
    another form (text ids of any other kind), or ``ids`` is not Arrow-backed text.

    Each key is the hash with its top bit flipped, read as int64: one-to-one, and ordered as the pseudonyms' text
    (16 lowercase hex digits after one prefix sort as the number they spell), so sorting, grouping, factorizing
    and joining the keys gives what it gives on the text, on integers. Decoded from a numpy view of the Arrow
    text buffer, one chunk at a time, two digits at a time: no Python object per row, no copy of the text.

    Examples
    --------
    >>> ids = pd.Series(["S-ffffffffffffffff", "S-0000000000000000", "S-8000000000000001"], dtype="str")
    >>> pseudonym_keys(ids).tolist()
    [9223372036854775807, -9223372036854775808, 1]
    >>> pseudonym_keys(pd.Series(["a", "b"], dtype="str")), pseudonym_keys(pd.Series(["S-0000000000000000", None], dtype="str"))
    (None, None)
    """
    arrow = getattr(ids.array, "_pa_array", None)
    if arrow is None or not (pya.types.is_string(arrow.type) or pya.types.is_large_string(arrow.type)):
        return None
    if arrow.null_count:
        return None
    head = np.frombuffer(prefix.encode(), np.uint8)
    width = len(head) + 16
    out = np.empty(len(arrow), dtype=np.int64)
    at = 0
    for chunk in arrow.chunks:
        n = len(chunk)
        if not n:
            continue
        kind = np.int64 if pya.types.is_large_string(chunk.type) else np.int32
        _, offsets, data = chunk.buffers()
        offsets = np.frombuffer(offsets, kind)[chunk.offset : chunk.offset + n + 1]
        if not (np.diff(offsets) == width).all():
            return None
        text = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]].reshape(n, width)
        if not (text[:, : len(head)] == head).all():
            return None
        octets = _HEX_PAIR[text[:, len(head) :].view("<u2")]  # a view of each row's digits, two at a time
        if octets.max() > 255:
            return None
        hashed = octets.astype(np.uint8).view(">u8").ravel()
        out[at : at + n] = (hashed ^ np.uint64(1 << 63)).view(np.int64)
        at += n
    return out


def pseudonym_text(keys: np.ndarray, *, prefix: str = _PREFIX["student_id"]) -> pd.Series:
    """The pseudonyms whose :func:`pseudonym_keys` are ``keys`` (int64), as the text a processed table holds (a
    ``str`` Series of pyarrow ``large_string``, labelled ``0..n-1``), spelled in one numpy array of bytes.

    Examples
    --------
    >>> ids = pd.Series(["S-ffffffffffffffff", "S-0123456789abcdef"], dtype="str")
    >>> back = pseudonym_text(pseudonym_keys(ids))
    >>> back.tolist(), back.dtype == ids.dtype
    (['S-ffffffffffffffff', 'S-0123456789abcdef'], True)
    """
    head = np.frombuffer(prefix.encode(), np.uint8)
    width = len(head) + 16
    hashed = (np.asarray(keys, dtype=np.int64).view(np.uint64) ^ np.uint64(1 << 63)).astype(">u8")
    octets = hashed.view(np.uint8).reshape(-1, 8)
    hexdigits = np.frombuffer(b"0123456789abcdef", np.uint8)
    text = np.empty((len(octets), width), dtype=np.uint8)
    text[:, : len(head)] = head
    text[:, len(head) :: 2] = hexdigits[octets >> 4]
    text[:, len(head) + 1 :: 2] = hexdigits[octets & 15]
    offsets = np.arange(0, width * (len(text) + 1), width, dtype=np.int64)
    values = pya.LargeStringArray.from_buffers(len(text), pya.py_buffer(offsets), pya.py_buffer(text))
    return pd.Series(pd.arrays.ArrowStringArray(pya.chunked_array([values])), dtype="str")


def _take(names: pya.Array, codes: np.ndarray) -> pya.Array:
    """``names[codes]``, null where a code is -1."""
    return names.take(pya.array(codes, mask=codes < 0))


def _hashed(uniques: pya.Array, *, key: str, prefix: str, salt: str) -> pya.Array:
    """The pseudonym of each of ``uniques`` (distinct ids): ``prefix`` and 16 hex digits of a keyed hash.

    Hashed :data:`_HASH_BLOCK` ids at a time: their Python text and hex digits take a few MB, not the ~300 MB of a
    million ids at once (the peak of ``process`` at a million students)."""
    parts = []
    for start in range(0, max(len(uniques), 1), _HASH_BLOCK):
        text = (salt + "\x1f") + pd.Series(uniques.slice(start, _HASH_BLOCK).to_pylist(), dtype="string")
        h = pd.util.hash_pandas_object(text, index=False, hash_key=key).to_numpy(np.uint64)
        digits = (
            np.ascontiguousarray(_HEX[h.astype(">u8").view(np.uint8).reshape(-1, 8)]).view("<U16").ravel()
        )
        parts.append(pya.array(np.char.add(prefix, digits), type=pya.string()))
    return pya.concat_arrays(parts)


def _memo_names(
    uniques: pya.Array, memo: dict, *, key: str, prefix: str, salt: str, domain=None
) -> pya.Array:
    """:func:`_hashed` for ids not in ``memo`` yet; the others' pseudonyms are looked up.

    ``memo[prefix, salt, key]`` holds the ids met so far and their pseudonyms. The ids' codes are kept by the
    :class:`~opportunity_research.intake.validation_schema.IdCodes` ``memo["ids"]`` (one pyarrow hash lookup of each
    table's distinct ids), in ``domain``, by default one of the memo's own per ``(prefix, salt, key)``: ``process``
    gives the codes its rules across tables use (``shared_ids``) and the column's name, so they look the ids up no
    second time."""
    entry = (prefix, salt, key)
    ids = memo.setdefault("ids", IdCodes())
    domain = entry if domain is None else domain
    found = ids.codes(uniques, domain)
    known = ids.ids(domain)
    names = memo[entry][1] if entry in memo else pya.array([], type=pya.string())
    if len(names) < len(known):  # the ids met for the first time (or registered by a rule) are hashed
        fresh = _hashed(known.slice(len(names)), key=key, prefix=prefix, salt=salt)
        names = pya.concat_arrays([names, fresh])
    memo[entry] = (known, names)
    return names.take(pya.array(found))


def _write_parquet(table: pya.Table, coded: dict, target: Path) -> None:
    """Write ``table`` (a frame as pyarrow's ``Table.from_pandas`` makes it, without its index) as parquet, in row
    groups of :data:`ROW_GROUP` rows, one row group at a time (never a second copy of the whole table); ``coded``
    replaces its columns of those names by ``(values, codes)``: each row's value is ``values[code]`` (null for -1),
    taken for one row group at a time (:func:`_pseudonyms`)."""
    schema = table.schema
    for name, (values, _) in coded.items():
        schema = schema.set(schema.get_field_index(name), pya.field(name, values.type))
    with pq.ParquetWriter(target, schema, compression="snappy") as writer:
        for start in range(0, max(table.num_rows, 1), ROW_GROUP):
            part = table.slice(start, ROW_GROUP)
            for name, (values, codes) in coded.items():
                taken = _take(values, codes[start : start + ROW_GROUP])
                part = part.set_column(part.schema.get_field_index(name), name, taken)
            writer.write_table(part, row_group_size=ROW_GROUP)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _analysis_year(tables: dict, given: int | None) -> int | None:
    if given is not None:
        return int(given)
    cls = tables.get("classrooms")
    if cls is None or not len(cls):
        return None
    return int(cls["school_year"].max())


def retire_processed(processed_root: str | os.PathLike, district_id: str, *, reason: str) -> Path | None:
    """Move a district's processed tables aside after a failed ``process``, so they no longer look current.

    ``<root>/<district_id>/`` is renamed (atomically) to ``<root>/.stale-<district_id>/`` with a
    ``STALE.txt`` saying why; it is kept, not deleted (a new successful ``process`` rebuilds the district;
    an earlier stale copy is replaced). :func:`load_district` then refuses the district with the reason.

    Returns
    -------
    Path or None
        The stale folder, or None when there was nothing to move.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "d1").mkdir()
    >>> retire_processed(root, "d1", reason="validation failed").name, (root / "d1").exists()
    ('.stale-d1', False)
    """
    root = Path(processed_root)
    final = root / district_id
    if not final.is_dir():
        return None
    stale = root / f"{STALE_PREFIX}{district_id}"
    if stale.exists():
        trash = root / f".old-{district_id}-{secrets.token_hex(4)}"
        os.replace(stale, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(final, stale)
    (stale / "STALE.txt").write_text(
        f"Not current: {reason}.\nThese tables are from an earlier successful run; "
        f"fix the export and run 'opportunity-research process' again.\n"
    )
    return stale


def process_district(
    raw_path: str | os.PathLike,
    *,
    processed_root: str | os.PathLike | None = None,
    key: str | None = None,
    analysis_year: int | None = None,
) -> Path:
    """Validate one raw district folder and write its typed, pseudonymized parquet tables.

    Parameters
    ----------
    raw_path
        ``data/raw/<district_id>`` (the folder name is the district id). Never modified.
    processed_root
        Output root (default ``data/processed``); tables go to ``<processed_root>/<district_id>/``.
    key
        Pseudonymization key (default: :func:`read_key`).
    analysis_year
        The school year the classroom evidence describes (default: the latest ``classrooms.school_year``
        that has started); recorded in the manifest, where :func:`~opportunity_research.study.measures.analysis_year`
        reads it.

    Returns
    -------
    Path
        The processed district folder.

    Raises
    ------
    ValidationFailed
        If the export breaks the contract; ``.report.format()`` lists every problem. No new table is
        written, and earlier tables of the district are moved out of the way (see :func:`retire_processed`)
        so nothing stale looks current.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     process_district(root / "raw" / "nowhere", processed_root=root / "processed", key="0123456789abcdef")
    ... except ValidationFailed as exc:
    ...     print(exc)
    nowhere: 1 error, 0 warnings in 1 file
    """
    # the id columns are hashed once, for validation and pseudonyms alike; freed pages kept for the next table
    with shared_encodings(), _pages_kept():
        return _process(raw_path, processed_root, key, analysis_year)


@contextlib.contextmanager
def _pages_kept() -> Iterator[None]:
    """Inside this block the memory freed is kept for the next buffers rather than returned to the system at once:
    pyarrow's jemalloc pool (when the package chose it, :func:`~opportunity_research.config.use_arrow_pool`) keeps
    its freed pages :data:`PROCESS_DECAY_MS` in the arenas made meanwhile (jemalloc sets an arena's decay when it
    makes it: its threads' arenas, made as they first allocate), and glibc (numpy's and pandas' arrays) serves
    every array from its heap and trims nothing; both as before when it ends, and the heap's free pages are
    returned (``malloc_trim``).

    ``process`` reads, parses, checks and writes one table after the other, each a few hundred MB at a million
    students: returning each freed page at once made the next table's buffers fault every page in again (4.1
    million page faults, about 30% of its CPU time in the kernel's; 2.4 million with these settings, 3-5 CPU-s
    less of 33-38, the peak 1.40 -> 1.54 GB). The settings are process-wide and change only where memory comes
    from, never a table. Another C library (no ``mallopt``) or pool is left as it is.
    """
    pool = pya.default_memory_pool()
    jemalloc = pool.backend_name == "jemalloc" and not os.environ.get("ARROW_DEFAULT_MEMORY_POOL")
    libc = _glibc()
    if jemalloc:
        pya.jemalloc_set_decay_ms(PROCESS_DECAY_MS)
    for param, value in _GLIBC_KEPT.items() if libc is not None else ():
        libc.mallopt(param, value)
    try:
        yield
    finally:
        if jemalloc:
            pya.jemalloc_set_decay_ms(0)  # the package's setting (config.use_arrow_pool)
            pool.release_unused()
        if libc is not None:
            for param, value in _GLIBC_AFTER.items():
                libc.mallopt(param, value)
            libc.malloc_trim(0)


def _glibc():
    """The C library when it is glibc (``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  (glibc only: another C library has neither)
    except (OSError, AttributeError):
        return None
    return libc


def _process(raw_path, processed_root, key, analysis_year) -> Path:
    raw = Path(raw_path)
    district_id = raw.name
    root = Path(processed_root) if processed_root is not None else config.processed_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{district_id}-", dir=root))
    # memo: the ids pseudonymized so far (see `pseudonymize`), their codes those of the rules across tables
    tables, keys, memo = {}, [key], {"ids": shared_ids()}
    # the manifest's checksums of the inputs, each file hashed in a thread as soon as its table has passed its own
    # checks, while the main thread writes the table and reads the next (hashlib lets go of the GIL): at 1,000,000
    # students 1.3 GB, about 1 CPU-s that the main thread no longer waits for
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="process-sha256")
    digests = {}
    crosswalk = raw / CROSSWALK_FILE
    if crosswalk.is_file():
        digests[CROSSWALK_FILE] = hasher.submit(_sha256, crosswalk)

    def write(name: str, df: pd.DataFrame, file: Path) -> None:
        """Pseudonymize and write one table as soon as it passed its own checks (into the temporary folder,
        kept only if the whole district validates; in the writer thread), so the full tables are never all in
        memory at once."""
        digests[file.name] = hasher.submit(_sha256, file)
        if keys[0] is None:
            keys[0] = read_key()
        pseudonyms = {
            col.name: _pseudonyms(
                df[col.name],
                key=keys[0],
                prefix=_PREFIX[col.name],
                salt=district_id,
                memo=memo,
                domain=col.name,
            )
            for col in TABLES[name].columns.values()
            if col.pseudonymize and col.name in df.columns
        }
        table = pya.Table.from_pandas(df, preserve_index=False)  # here: pandas only in this thread
        if writing:  # one table written at a time
            writing.pop().result()
        writing.append(writer.submit(_write_parquet, table, pseudonyms, tmp / f"{name}.parquet"))
        if not tables:  # the first (largest) table: written before the next is read (see `writer`)
            writing.pop().result()
        tables[name] = len(df)

    # each table but the first is written in a thread while the main thread reads and checks the next (parquet's
    # writer lets go of the GIL): at 1,000,000 students the writing took about 7 CPU-s on the main thread. The first
    # table, the largest file, is written before the next is read: written meanwhile, it held the peak of `process`
    # (1.54 GB) at 2.03 GB; the later tables at 1.60
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="process-write")
    writing = []
    try:
        report = validate_district(raw, analysis_year=analysis_year, keep="across", on_table=write)
        if writing:
            writing.pop().result()
        if not report.ok:
            shutil.rmtree(tmp, ignore_errors=True)
            if check_district_id(district_id) is None:
                retire_processed(
                    root,
                    district_id,
                    reason=f"the latest process of {district_id} failed validation: {report.summary()}",
                )
            raise ValidationFailed(report)
        key = keys[0] if keys[0] is not None else read_key()
        manifest = {
            "district_id": district_id,
            "package_version": __version__,
            "tables": {name: tables[name] for name in report.tables},
            "inputs": {
                name: digests[name].result() if name in digests else _sha256(raw / name)
                for name in sorted(
                    set(report.files.values()) | ({CROSSWALK_FILE} if report.crosswalk.present else set())
                )
            },
            "analysis_year": _analysis_year(report.tables, analysis_year),
            "key_fingerprint": hashlib.sha256(key.encode()).hexdigest()[:12],
            "warnings": len(report.warnings),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        final = root / district_id
        old = None
        if final.exists():
            old = root / f".old-{district_id}-{secrets.token_hex(4)}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        # no table is written into the folder once it is removed
        writer.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        writer.shutdown(wait=True, cancel_futures=True)
        hasher.shutdown(wait=False, cancel_futures=True)
    return final


@dataclass(frozen=True)
class District:
    """The processed tables of one district.

    Attribute access gives each contract table (``d.students``, ``d.assignments``, ...); an optional
    table the district did not provide is ``None``. ``manifest`` holds row counts and input checksums.

    Examples
    --------
    >>> d = District("demo", {"students": pd.DataFrame({"student_id": ["S-1", "S-2"]})})
    >>> d, d.has("students"), d.goals is None
    (District('demo': students=2), True, True)
    """

    district_id: str
    tables: dict[str, pd.DataFrame]
    manifest: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        if name in TABLES:
            return self.tables.get(name)
        raise AttributeError(name)

    def has(self, name: str) -> bool:
        """Whether the district provided table ``name`` with at least one row."""
        t = self.tables.get(name)
        return t is not None and len(t) > 0

    def released(self, names, *, keep: dict | None = None) -> District:
        """This district with the rows of tables ``names`` let go, once an analysis has what it needs of them.

        Each named table becomes a frame of as many rows and no columns (``len`` and :meth:`has` are unchanged,
        so counts of rows stay right), or of only the columns ``keep[name]`` lists, as categories (each row's
        value kept, at a byte or two a row). A table the district lacks stays absent. The tables are not
        copied: when nothing else refers to the old district, their memory is freed. At a million students the
        evidence, survey and assessment tables are most of an analysis' memory; the report after the analysis
        counts their rows and assessment years, and reads only the small tables (schools, classrooms, goals,
        students) in full.

        Examples
        --------
        >>> d = District("demo", {"assessments": pd.DataFrame({"student_id": ["S-1", "S-2", "S-1"],
        ...                                                    "school_year": [2015, 2016, 2016]})})
        >>> r = d.released(["assessments", "attendance"], keep={"assessments": ["school_year"]})
        >>> len(r.assessments), r.has("assessments"), list(r.assessments.columns), r.attendance is None
        (3, True, ['school_year'], True)
        >>> int(r.assessments["school_year"].nunique()), len(d.released(["assessments"]).assessments.columns)
        (2, 0)
        """
        keep = keep or {}
        tables = dict(self.tables)
        for name in names:
            t = tables.get(name)
            if t is None:
                continue
            cols = [c for c in keep.get(name, ()) if c in t.columns]
            stand_in = pd.DataFrame(index=pd.RangeIndex(len(t)))
            for c in cols:
                stand_in[c] = t[c].astype("category").array
            tables[name] = stand_in
        return dataclasses.replace(self, tables=tables)

    def with_tables(self, more: District) -> District:
        """This district with the tables of ``more`` (a later :func:`load_district` of the same district) added.

        The tables keep the contract's order. ``more`` must come from the same processed data (the same inputs
        and row counts in its manifest): a district processed again in between raises ``RuntimeError`` rather
        than mix two versions of its data in one analysis.

        Examples
        --------
        >>> d = load_district("demo_fairview", columns={"students": None})
        >>> d = d.with_tables(load_district("demo_fairview", columns={"schools": None}))
        >>> list(d.tables)
        ['schools', 'students']
        """
        same = ("inputs", "tables")
        if [more.manifest.get(k) for k in same] != [self.manifest.get(k) for k in same]:
            raise RuntimeError(
                f"{self.district_id}: the processed data changed while it was being read; run the analysis again"
            )
        both = {**self.tables, **more.tables}
        return dataclasses.replace(self, tables={name: both[name] for name in TABLES if name in both})

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v):,}" for k, v in self.tables.items())
        return f"District({self.district_id!r}: {counts})"


def load_district(
    district_id: str,
    *,
    processed_root: str | os.PathLike | None = None,
    columns: dict[str, list[str] | None] | None = None,
    skip: dict[str, list[str]] | None = None,
    rows: dict[str, tuple[list[str], Callable[[pd.DataFrame], Any]]] | None = None,
    id_keys: bool = False,
) -> District:
    """Load the processed tables of ``district_id`` (run ``opportunity-research process`` first).

    Parameters
    ----------
    district_id, processed_root
        Which district, and the processed root (default ``data/processed``).
    columns
        Optional ``{table: [column, ...] or None}``: read only these tables, and of each only the named columns
        (None = every column). Parquet is columnar, so unread columns cost neither time nor memory; at a
        million students reading only what an analysis needs matters. A named column the table lacks raises
        ``KeyError`` naming the table and column.
    skip
        Optional ``{table: [column, ...]}``: columns not read (the rest of the table is; a named column the table
        lacks is ignored). :func:`~opportunity_research.study.analysis.unprotected_analysis` skips the ids no
        analysis uses (a response's or work sample's own id), hundreds of MB at a million students.
    rows
        Optional ``{table: (by, select)}``: of that table only the rows where ``select(frame)`` is true, ``frame``
        being its columns ``by`` (a boolean array or Series, one value per row), read column by column
        (:func:`read_rows`): the whole table is never held. The rows keep their order, labelled by their row
        number in the table (all rows selected: the table as read without ``rows``).
    id_keys
        Each table's student ids as int64 keys (:func:`pseudonym_keys`, one-to-one and in the same order as the
        pseudonyms), not text: :func:`~opportunity_research.study.analysis.unprotected_analysis` joins, groups and
        factorizes integers, not 18-byte strings, at a million students. A column whose ids are not all
        pseudonyms (another kind of id) stays text.

    Examples
    --------
    >>> d = load_district("demo_fairview", columns={"students": ["student_id", "grade"]})
    >>> list(d.tables), list(d.students.columns)
    (['students'], ['student_id', 'grade'])
    >>> d = load_district("demo_fairview", columns={"students": None}, skip={"students": ["gender", "nickname"]})
    >>> "gender" in d.students.columns, "school_id" in d.students.columns
    (False, True)
    >>> d = load_district("demo_fairview", columns={"students": ["grade"]}, rows={"students": (["grade"],
    ...                   lambda t: t["grade"] == 12)})
    >>> d.students["grade"].unique().tolist(), bool(d.students.index[0] > 0)
    ([12], True)
    >>> d = load_district("demo_fairview", columns={"students": ["student_id"]}, id_keys=True)
    >>> str(d.students["student_id"].dtype)
    'int64'
    """
    import pyarrow.parquet as pq

    root = Path(processed_root) if processed_root is not None else config.processed_dir()
    folder = root / district_id
    stale = root / f"{STALE_PREFIX}{district_id}" / "STALE.txt"
    if not (folder / "manifest.json").exists() and stale.exists():
        raise FileNotFoundError(
            f"no current processed data for district '{district_id}': "
            + stale.read_text().splitlines()[0].removeprefix("Not current: ")
        )
    if not (folder / "manifest.json").exists():
        from .crosswalk import suggest

        known = (
            sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists()) if root.is_dir() else []
        )
        hint = suggest(str(district_id), known) if known else ""
        raw_exists = (config.raw_dir() / str(district_id)).is_dir()
        listing = (
            f"; processed districts: {', '.join(known)}"
            if known
            else f"; no district is processed yet in {root.name}/"
        )
        todo = (
            f"; run 'opportunity-research process data/raw/{district_id}' first"
            if raw_exists or not known
            else ""
        )
        raise FileNotFoundError(
            f"no processed data for district '{district_id}' in {root.name}/{hint}{listing}{todo}"
        )
    wanted = dict.fromkeys(TABLES) if columns is None else dict(columns)
    unknown = [t for t in wanted if t not in TABLES]
    if unknown:
        raise KeyError(f"load_district: unknown table(s) {unknown}; tables: {list(TABLES)}")
    tables = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        if name not in wanted or not path.exists():
            continue
        cols = wanted[name]
        if cols is None and (skip or {}).get(name):
            cols = [c for c in pq.read_schema(path).names if c not in skip[name]]
        elif cols is not None:
            have = pq.read_schema(path).names
            missing = [c for c in cols if c not in have]
            if missing:
                raise KeyError(
                    f"load_district: table {name!r} of {district_id} has no column(s) {missing}; "
                    f"columns: {have}"
                )
        if name in (rows or {}):
            tables[name] = read_rows(path, *rows[name], columns=cols)
        else:
            tables[name] = pd.read_parquet(path, columns=None if cols is None else list(cols))
        if id_keys and "student_id" in tables[name].columns:
            keys = pseudonym_keys(tables[name]["student_id"])
            if keys is not None:
                tables[name]["student_id"] = keys
    return District(district_id, tables, json.loads((folder / "manifest.json").read_text()))


def read_rows(
    path: str | os.PathLike, by: list[str], select: Callable[[pd.DataFrame], Any], *, columns=None
) -> pd.DataFrame:
    """The rows of a parquet table where ``select(frame)`` is true (``frame``: the table's columns ``by``), of
    ``columns`` (None: every column), read one row group at a time.

    What ``t = pd.read_parquet(path, columns=columns); t[select(t[by])]`` gives (same values, dtypes, order and
    labels: each row's number in the table) when ``select`` looks at each row alone, without ever holding the
    whole table: each row group's selected rows are kept in Arrow (its other columns are not read when it has none,
    nor taken when every row is selected: a table in the order of the selecting columns, such as the assessments
    by school year and window, has mostly such row groups), then converted to pandas once, each column's Arrow
    memory let go as it is converted. Every row selected: the table as ``pd.read_parquet`` reads it; ``by``
    not all in the table, or a table with a stored index: read whole, then selected.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
    >>> pd.DataFrame({"w": ["fall", "spring", "spring"], "x": [1.0, 2.0, 3.0]}).to_parquet(path)
    >>> read_rows(path, ["w"], lambda t: t["w"] == "spring")
            w    x
    1  spring  2.0
    2  spring  3.0
    """

    def mask(t):
        keep = select(t)
        return (
            keep.to_numpy(dtype=bool, na_value=False)
            if isinstance(keep, pd.Series)
            else np.asarray(keep, bool)
        )

    f = pq.ParquetFile(path)
    meta = f.schema_arrow.pandas_metadata or {}
    index_columns = [c for c in meta.get("index_columns", []) if not isinstance(c, dict)]
    names = [c for c in f.schema_arrow.names if c not in index_columns] if columns is None else list(columns)
    if index_columns or not set(by) <= set(f.schema_arrow.names):  # selected after a whole read
        t = pd.read_parquet(path, columns=columns)
        return t[mask(t[list(by)])] if set(by) <= set(t.columns) else t
    parts, at, start = [], [], 0
    for i in range(f.num_row_groups):
        rows = np.flatnonzero(mask(f.read_row_group(i, columns=list(dict.fromkeys(by))).to_pandas()))
        if len(rows):  # a row group with no row selected is not read; one with every row is kept as read
            group = f.read_row_group(i, columns=names)
            parts.append(group if len(rows) == group.num_rows else group.take(rows))
        at.append(rows + start)
        start += f.metadata.row_group(i).num_rows
    at = np.concatenate(at) if at else np.zeros(0, dtype=np.int64)
    if len(at) == start:
        del parts
        return pd.read_parquet(path, columns=columns)
    table = pya.concat_tables(parts) if parts else f.schema_arrow.empty_table().select(names)
    del parts
    out = table.to_pandas(self_destruct=True, split_blocks=True)
    out.index = pd.Index(at.astype(np.int64))
    return out


def _cmd(args) -> int:
    raws = [Path(p) for p in args.raw]
    if args.all:
        raws += sorted(p for p in config.raw_dir().iterdir() if p.is_dir() and not p.name.startswith("."))
    if not raws:
        print("nothing to process: name district folders or pass --all")
        return 2
    failed = 0
    for raw in raws:
        try:
            out = process_district(raw, processed_root=args.processed_dir, analysis_year=args.analysis_year)
        except ValidationFailed as exc:
            failed += 1
            print(exc.report.format(max_rows=args.max_rows))
            root = Path(args.processed_dir) if args.processed_dir else config.processed_dir()
            moved = (root / f"{STALE_PREFIX}{raw.name}").exists()
            print(
                f"{raw.name}: NOT processed (validation failed); no new tables written"
                + (
                    f"; the earlier tables were moved to {root.name}/{STALE_PREFIX}{raw.name}/ and are not used"
                    if moved
                    else ""
                )
            )
        except FileNotFoundError as exc:
            failed += 1
            print(f"{raw.name}: NOT processed: {exc}")
        else:
            m = json.loads((out / "manifest.json").read_text())
            print(
                f"{raw.name}: processed {len(m['tables'])} tables, {sum(m['tables'].values()):,} rows"
                + (f" ({m['warnings']} warnings; run validate to see them)" if m["warnings"] else "")
            )
    return 1 if failed else 0


def register(subparsers) -> None:
    """Add the ``process`` subcommand.

    Examples
    --------
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="opportunity-research").add_subparsers()
    >>> register(sub)
    >>> sub.choices["process"].parse_args(["data/raw/x", "--analysis-year", "2016"]).analysis_year
    2016
    """
    p = subparsers.add_parser(
        "process",
        help="validate and write typed, pseudonymized parquet tables to data/processed/",
        description="Validate each district folder and write its tables as parquet to "
        "data/processed/<district_id>/ with student and teacher ids replaced by keyed pseudonyms. "
        "data/raw is never modified; nothing is written for a district that fails validation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  opportunity-research process data/raw/demo_lakeside\n  opportunity-research process --all",
    )
    p.add_argument("raw", nargs="*", help="raw district folders (data/raw/<district_id>)")
    p.add_argument("--all", action="store_true", help="process every folder in data/raw")
    p.add_argument("--processed-dir", default=None, help="output root (default data/processed)")
    p.add_argument("--max-rows", type=int, default=40, help="problems to print per district on failure")
    p.add_argument(
        "--analysis-year",
        type=int,
        default=None,
        metavar="YEAR",
        help="the school year the classroom evidence describes, named by the calendar year it starts "
        "in (2016 = 2016-17); default: the latest classrooms.school_year. Recorded in the manifest.",
    )
    p.set_defaults(func=_cmd)
