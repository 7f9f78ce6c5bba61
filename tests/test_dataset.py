"""Processing: pseudonyms, typed parquet, atomic output, raw data untouched; the loader."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from opportunity_research.intake import dataset
from opportunity_research.intake.validation import ValidationFailed

from .demo import TEST_KEY, demo_root, district


def _tree_hash(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


@pytest.fixture()
def raw_copy(tmp_path):
    src = demo_root() / "raw" / "demo_pinebrook"
    dst = tmp_path / "raw" / "demo_pinebrook"
    shutil.copytree(src, dst, copy_function=shutil.copyfile)  # writable copies of the shared, read-only data
    return dst


def test_processed_tables_are_typed_and_pseudonymized(raw_copy, tmp_path):
    before = _tree_hash(raw_copy)
    out = dataset.process_district(raw_copy, processed_root=tmp_path / "processed", key=TEST_KEY)
    assert _tree_hash(raw_copy) == before  # data/raw is never modified
    d = dataset.load_district("demo_pinebrook", processed_root=tmp_path / "processed")
    raw_students = pd.read_csv(raw_copy / "students.csv", dtype=str)
    assert d.students["student_id"].str.fullmatch(r"S-[0-9a-f]{16}").all()
    assert not set(raw_students["student_id"]) & set(d.students["student_id"])
    assert d.classrooms["teacher_id"].str.fullmatch(r"T-[0-9a-f]{16}").all()
    # the same student keeps one pseudonym across tables
    assert set(d.enrollments["student_id"]) <= set(d.students["student_id"])
    assert d.students["low_income"].dtype == "int8" and d.students["grade"].dtype == "int64"
    assert d.climate_surveys is None and not d.has("climate_surveys")  # optional table absent
    assert (
        d.manifest["inputs"]["students.csv"]
        == hashlib.sha256((raw_copy / "students.csv").read_bytes()).hexdigest()
    )
    assert not list(out.parent.glob(".tmp-*"))  # no temporary folder left behind


def test_same_key_same_pseudonyms_other_key_other_pseudonyms(raw_copy, tmp_path):
    a = dataset.process_district(raw_copy, processed_root=tmp_path / "a", key=TEST_KEY)
    b = dataset.process_district(raw_copy, processed_root=tmp_path / "b", key=TEST_KEY)
    c = dataset.process_district(raw_copy, processed_root=tmp_path / "c", key="another-key-0123")
    sa, sb, sc = (pd.read_parquet(p / "students.parquet")["student_id"] for p in (a, b, c))
    assert sa.equals(sb) and not set(sa) & set(sc)


def test_pseudonyms_are_the_ones_earlier_versions_wrote():
    """Issue 21 hashes each distinct id once; the pseudonyms must not change (values from main at 98dec60)."""
    ids = pd.Series(["1001", "x", None, "1001", "\u00fc"], dtype="str")
    p = dataset.pseudonymize(ids, key="0123456789abcdef", prefix="S-", salt="d")
    assert p.tolist()[:2] == ["S-b7004e61054ba4b8", "S-8bb25d284fd59317"]
    assert p[0] == p[3] and pd.isna(p[2]) and p[4] == "S-6b939029c0744e21"
    assert dataset.pseudonymize(ids.astype(object), key="0123456789abcdef", prefix="S-", salt="d").equals(p)


def test_processed_tables_are_written_in_row_groups(raw_copy, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(dataset, "ROW_GROUP", 100)
    out = dataset.process_district(raw_copy, processed_root=tmp_path / "processed", key=TEST_KEY)
    meta = pq.ParquetFile(out / "enrollments.parquet").metadata
    assert meta.num_row_groups == -(-meta.num_rows // 100) and meta.num_row_groups > 1
    assert {meta.row_group(i).num_rows for i in range(meta.num_row_groups - 1)} == {100}
    d = dataset.load_district("demo_pinebrook", processed_root=tmp_path / "processed")
    assert len(d.enrollments) == meta.num_rows and d.enrollments["student_id"].dtype == "str"


def test_invalid_district_writes_nothing(raw_copy, tmp_path):
    (raw_copy / "students.csv").write_text("student_id,grade\n1,3\n")
    before = _tree_hash(raw_copy)
    with pytest.raises(ValidationFailed) as exc:
        dataset.process_district(raw_copy, processed_root=tmp_path / "processed", key=TEST_KEY)
    assert "students.csv" in exc.value.report.format()
    assert _tree_hash(raw_copy) == before
    assert not (tmp_path / "processed" / "demo_pinebrook").exists()
    assert not list((tmp_path / "processed").glob("*")) if (tmp_path / "processed").exists() else True


def test_loader_names_the_missing_district(tmp_path):
    with pytest.raises(FileNotFoundError, match="opportunity-research process"):
        dataset.load_district("nowhere", processed_root=tmp_path)


def test_key_file_is_created_once_and_reused(tmp_path):
    k = tmp_path / "k" / "pseudonym.key"
    first = dataset.read_key(k)
    assert len(first) == 16 and dataset.read_key(k) == first
    assert (k.stat().st_mode & 0o777) == 0o600


def test_demo_loads():
    d = district("demo_lakeside")
    assert len(d.students) == 1500 and "demo_lakeside" in repr(d)


@pytest.mark.parametrize("env, advice", [(None, "False"), ("0", "False"), ("1", "True")])
def test_the_package_turns_numpys_huge_page_advice_off_unless_numpy_is_told_otherwise(env, advice):
    """numpy's huge-page advice made the 1,000,000-student analysis wait on memory compaction for half its time;
    the package turns it off when it is imported (config.use_small_pages), before any large array, and leaves
    numpy's own setting (NUMPY_MADVISE_HUGEPAGE) alone."""
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    code = (
        "import numpy as np; on = np._core.multiarray._get_madvise_hugepage(); import opportunity_research; "
        "print(on, np._core.multiarray._get_madvise_hugepage())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    before, after = out.stdout.split()
    assert after == advice
    assert env is not None or before == "True" or not sys.platform.startswith("linux")  # numpy's default: on


@pytest.mark.parametrize("env, pool", [(None, "jemalloc"), ("system", "system"), ("mimalloc", "mimalloc")])
def test_the_package_reads_tables_with_jemalloc_unless_arrow_is_told_otherwise(env, pool):
    """pyarrow's default pool (mimalloc) spends more time returning pages than reading a large district; the
    package switches to jemalloc when it is imported (config.ARROW_POOL), and leaves pyarrow's own setting
    (ARROW_DEFAULT_MEMORY_POOL) alone."""
    import os
    import subprocess
    import sys

    pa = pytest.importorskip("pyarrow")
    try:
        getattr(pa, f"{pool}_memory_pool")()
    except NotImplementedError:
        pytest.skip(f"this pyarrow has no {pool} pool")
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env:
        environ["ARROW_DEFAULT_MEMORY_POOL"] = env
    code = "import opportunity_research, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == pool


def test_pseudonyms_kept_across_tables_are_the_same_and_hashed_once(monkeypatch):
    key, calls = "0123456789abcdef", []
    tables = [
        pd.Series(["b", "a", None, "b"]),
        pd.Series(["c", "a", "a"]),
        pd.Series(["a", "c"], dtype=object),
    ]
    expected = [dataset.pseudonymize(t, key=key, prefix="S-", salt="d") for t in tables]
    hashed = dataset._hashed
    monkeypatch.setattr(dataset, "_hashed", lambda u, **kw: calls.append(u.to_pylist()) or hashed(u, **kw))
    memo = {}
    got = [dataset.pseudonymize(t, key=key, prefix="S-", salt="d", memo=memo) for t in tables]
    for g, e in zip(got, expected, strict=True):
        pd.testing.assert_series_equal(g, e)
    assert calls == [["b", "a"], ["c"]]  # each id hashed once; the third table's ids are all known
    # another salt (district) or prefix hashes again
    other = dataset.pseudonymize(tables[0], key=key, prefix="S-", salt="e", memo=memo)
    assert not other.dropna().isin(expected[0]).any() and calls[-1] == ["b", "a"]
