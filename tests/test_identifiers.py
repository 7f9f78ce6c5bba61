"""The privacy screen's identifiers (disclosure.identifiers): read and prepared with Arrow, exactly as the pandas
and Python set computation they replace (kept here as the reference)."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
import pytest

from opportunity_research.disclosure.identifiers import ID_SOURCES, Identifiers
from opportunity_research.disclosure.privacy import redact, screen_text

TRICKY = [
    "L0000123",
    " L0000123\t",  # the same id once stripped
    "l0000123",  # and once casefolded
    "\x1cS0000456\x1f",  # Python's strip removes \x1c-\x1f too
    "\u00a0T0000789\u2003",  # non-ASCII whitespace around an ASCII id
    "STRASSE-0001",
    "Straße-0001",  # casefolds to strasse-0001: the same id as the one above
    "ÉCOLE-2019-001",
    "ab-123-xy9",
    "2019-001",
    "x9",  # short
    "1234",  # short
    "   ",  # empty once stripped: short
    "----",  # no letter or digit: no key
    "id_000042__",  # the key is the last run of letters and digits
    None,
    math.nan,
]


def _reference(ids, min_length):
    """The screen's lookups as privacy._Matcher built them before (pandas)."""
    ids = pd.Series(pd.unique(pd.Series(list(ids), dtype="str").dropna().str.strip()), dtype="str")
    short = ids.str.len() < min_length
    kept = ids[~short].str.casefold()
    keys = kept.str.extract(r"([0-9a-z]+)[^0-9a-z]*$", expand=False).dropna()
    return frozenset(kept), frozenset(keys), int(short.sum())


@pytest.mark.parametrize("min_length", [1, 5, 9])
def test_lookups_are_the_pandas_computation(min_length):
    assert Identifiers(TRICKY).lookups(min_length) == _reference(TRICKY, min_length)
    # in parts, as Arrow arrays of several types, in another order: the same
    ids = Identifiers(pa.array([s for s in TRICKY[:8] if isinstance(s, str)]))
    ids.add(pa.chunked_array([pa.array(TRICKY[8:15]).dictionary_encode()]))
    ids.add(reversed(TRICKY))
    assert ids.lookups(min_length) == _reference(TRICKY, min_length)


def test_lookups_are_built_once_and_again_after_an_add():
    ids = Identifiers(["S0000001"])
    first = ids.lookups(5)
    assert ids.lookups(5) is first
    ids.add(["S0000002"])
    assert ids.lookups(5)[0] == {"s0000001", "s0000002"}


def _read_reference(*folders):
    """The batch's reading of the ids before (runner_task._read_ids: pandas, a Python set)."""
    ids = set()
    for folder in folders:
        for table, col in ID_SOURCES:
            for f in (folder / f"{table}.csv", folder / f"{table}.parquet"):
                if not f.exists():
                    continue
                try:
                    s = (
                        pd.read_csv(f, usecols=[col], dtype="str")[col]
                        if f.suffix == ".csv"
                        else pd.read_parquet(f, columns=[col])[col]
                    )
                except (OSError, ValueError, KeyError, pd.errors.ParserError, ImportError):
                    continue
                ids.update(s.dropna().astype(str).str.strip())
    return ids


def test_read_finds_what_the_pandas_reading_found(tmp_path):
    raw, processed, broken = tmp_path / "raw", tmp_path / "processed", tmp_path / "broken"
    for d in (raw, processed, broken):
        d.mkdir()
    # a BOM, quoted values, empty and NA values, padded ids, an id that looks like a number
    (raw / "students.csv").write_bytes(
        '\ufeffstudent_id,grade\nL0000123,3\n"L0000124",4\n,5\nNA\t,6\n  L0000125 ,7\n00012345,8\n'.encode()
    )
    (raw / "classrooms.csv").write_text('classroom_id,teacher_id\nC1,T0000001\nC2,"T-0000,002"\n')
    pd.DataFrame({"student_id": ["S-0123456789abcdef", None], "grade": [3, 4]}).to_parquet(
        processed / "students.parquet"
    )
    pd.DataFrame({"teacher_id": pd.Categorical(["T-aaaaaaaaaaaaaaaa"])}).to_parquet(
        processed / "classrooms.parquet"
    )
    (broken / "students.csv").write_text("grade\n3\n")  # no id column: skipped
    (broken / "classrooms.parquet").write_bytes(b"not a parquet file")  # unreadable: skipped
    ids = Identifiers()
    ids.read(raw, processed, broken, tmp_path / "missing")
    want = _read_reference(raw, processed, broken, tmp_path / "missing")
    assert ids.lookups(1) == _reference(want, 1) and ids.lookups(5) == _reference(want, 5)
    assert "l0000125" in ids.lookups(5)[0] and "00012345" in ids.lookups(5)[0]


def test_the_screen_and_redaction_take_identifiers_or_strings():
    text = "student l0000123 and STRASSE-0001 and 2019-001"
    for ids in (TRICKY, Identifiers(TRICKY)):
        assert redact(text, ids=ids) == "student [id] and [id] and [id]"
        assert len(screen_text(text, student_ids=ids)) == 1


def test_string_set_answers_as_a_frozenset():
    """StringSet (the lookups' compact sets): the same membership, length, iteration and isdisjoint as a frozenset
    of the same strings, for strings of every byte length, non-ASCII ones, a NUL byte and the empty string."""
    import random

    from opportunity_research.disclosure.identifiers import StringSet

    rng = random.Random(7)
    alphabet = "abcxyz0189-_.é\x00ß"
    words = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)}
    words |= {"", "ab\x00", "ab", "a\x00b", "école", "strasse"}
    want = frozenset(words)
    got = StringSet(pa.array(sorted(words) + sorted(words)[:50]))  # repeats count once
    assert got == want and len(got) == len(want) and sorted(got) == sorted(want)
    probes = [
        *words,
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 13))) for _ in range(3000)),
    ]
    assert [p in got for p in probes] == [p in want for p in probes]
    assert 5 not in got and None not in got
    for k in (1, 3, 20, 200):  # the vectorized lookup (16 strings or more) and the one by one
        for _ in range(50):
            sample = [rng.choice(probes) for _ in range(k)]
            assert got.isdisjoint(sample) == want.isdisjoint(sample)
    assert StringSet([]) == frozenset() and not StringSet([]) and StringSet([]).isdisjoint(["a"] * 20)


def test_string_set_finds_the_words_of_a_text_as_its_lookups_do():
    """StringSet.holds_word (the screen's first look at a text) answers as looking up each of the text's words
    (longest runs of ASCII letters and digits), lowercased: words of each length, at the text's start and end, next
    to non-ASCII letters, upper case, across lines; and a set of strings of one length or of none."""
    import random
    import re

    from opportunity_research.disclosure.identifiers import StringSet

    rng = random.Random(11)
    alphabet = "abXY019-_. \n,éß\u4e2d\ud800"
    texts = [
        "",
        "-",
        "é",
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(400)),
    ]
    words = sorted({w.lower() for t in texts for w in re.findall("[0-9A-Za-z]+", t)})
    for members in (
        words[::7],
        words[::3][:40],
        [w for w in words if len(w) == 2],
        ["ab"],
        [],
        ["é-1", "ab\x00"],
    ):
        got = StringSet(members)
        for t in texts:
            assert got.holds_word(t) == (
                not got.isdisjoint({w.lower() for w in re.findall("[0-9A-Za-z]+", t)})
            ), (
                members[:3],
                t,
            )
    assert StringSet(["ab"]).holds_word("éAB") and not StringSet(["ab"]).holds_word("xab ab0")
    assert StringSet(["ab"]).holds_word("éAB\n") and not StringSet(["é"]).holds_word("é")


def test_lookups_hold_no_python_string_per_id():
    """The screen's lookups of 200,000 ids take a few MB (a frozenset of the ids and one of their keys took 36 MB:
    377 MB at 1,000,000 students)."""
    import gc
    import tracemalloc

    ids = Identifiers(pa.array([f"S{i:09d}" for i in range(100_000)] + [f"{i:016x}" for i in range(100_000)]))
    gc.collect()
    tracemalloc.start()
    try:
        found, keys, _ = ids.lookups(5)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(found) == 200_000 and "s000012345" in found and f"{77:016x}" in keys
    assert held < 8 * 2**20, held
