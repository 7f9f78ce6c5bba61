"""Fixed-width text ids hashed as numbers (``validation_schema._packed``): ``dictionary_codes`` and ``IdCodes`` give
exactly what pyarrow's hashing of the text gives, with nulls, chunks, slices, both string types, and the columns
that are not packed (mixed widths, empty text, more than 8 bytes)."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from opportunity_research.intake.validation_schema import IdCodes, _packed, dictionary_codes


def _column(rng, width: int, n: int, kind, nulls: bool, chunks: int):
    pool = [
        "".join(rng.choice(list("AB0é"), size=width)).encode()[:width].decode("utf-8", "ignore")
        for _ in range(9)
    ]
    pool = [p for p in pool if len(p.encode()) == width] or ["x" * width]
    cells = [None if nulls and rng.random() < 0.2 else pool[i] for i in rng.integers(0, len(pool), n)]
    whole = pa.array(["y" * width] * 2 + cells, type=kind).slice(2)  # an offset into the buffers
    cuts = sorted(rng.integers(0, n + 1, chunks - 1).tolist())
    bounds = [0, *cuts, n]
    return pa.chunked_array([whole.slice(a, b - a) for a, b in itertools.pairwise(bounds)], type=kind)


def _plain(arr):
    enc = pc.dictionary_encode(arr.combine_chunks())
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), enc.dictionary


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
@pytest.mark.parametrize("seed", range(6))
def test_dictionary_codes_of_packed_ids_are_those_of_the_text(seed, kind):
    rng = np.random.default_rng(seed)
    for width in (1, 3, 7, 8):
        arr = _column(rng, width, int(rng.integers(1, 60)), kind, nulls=bool(seed % 2), chunks=1 + seed % 3)
        assert _packed(arr) is not None
        codes, uniques = dictionary_codes(arr)
        want_codes, want_uniques = _plain(arr)
        assert codes.tolist() == want_codes.tolist()
        assert uniques.type == kind and uniques.equals(want_uniques)


@pytest.mark.parametrize(
    "cells",
    [["ab", "abc"], ["123456789", "123456789"], ["", "ab"], [], ["ab", None, "ab"]],
)
def test_columns_not_packed_keep_the_text_hash(cells):
    arr = pa.chunked_array([pa.array(cells, pa.large_string())])
    codes, uniques = dictionary_codes(arr)
    want_codes, want_uniques = _plain(arr)
    assert codes.tolist() == want_codes.tolist() and uniques.equals(want_uniques)
    assert (_packed(arr) is None) == (cells != ["ab", None, "ab"])


def test_a_null_slot_holding_bytes_is_not_packed():
    """Arrow lets a null cell keep bytes: then the filled cells' bytes do not follow each other."""
    arr = pa.Array.from_buffers(
        pa.string(),
        3,
        [
            pa.py_buffer(np.packbits([1, 0, 1], bitorder="little")),
            pa.py_buffer(np.array([0, 2, 4, 6], np.int32)),
            pa.py_buffer(b"abzzcd"),
        ],
        null_count=1,
    )
    assert _packed(arr) is None
    assert dictionary_codes(arr)[0].tolist() == [0, -1, 1]


def test_id_codes_look_packed_and_text_ids_up_alike():
    ids = IdCodes()
    first = pa.array(["M0000001", "M0000002", "M0000003"])
    assert ids.codes(first, "s").tolist() == [0, 1, 2]
    assert ids.codes(pa.array(["M0000003", "M0000009", "M0000001"]), "s").tolist() == [2, 3, 0]
    assert ids.codes(pa.array(["M000001", "M0000002"]), "s").tolist() == [4, 1]  # another width: as text
    assert ids.codes(pa.array(["M0000009", "M000001"]), "s").tolist() == [3, 4]
    assert ids.ids("s").to_pylist() == ["M0000001", "M0000002", "M0000003", "M0000009", "M000001"]
