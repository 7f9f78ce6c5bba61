"""The publish gate (disclosure.joint.audit_report_folder) reads only the columns its audit reads, with the same
decision, messages and intervals as from every column; the runner's gate and screen threads give their freed memory
back (batch.kernel_isolation.return_memory)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from opportunity_research.disclosure import joint
from opportunity_research.disclosure.audit import audit_published

try:  # tests/ as a package or as a plain folder on sys.path
    from .test_disclosure import DEMO_REPORTS
except ImportError:  # pragma: no cover
    from test_disclosure import DEMO_REPORTS


def _tables_read_whole(folder):
    """The gate's tables read with every column (as before), split as the gate splits them."""
    tables = {}
    for p in sorted((folder / "tables").glob("*.csv")):
        spec = joint.PUBLISHED[p.stem].spec
        if spec is None or not p.read_text(encoding="utf-8").strip():
            continue
        df = pd.read_csv(p, keep_default_na=True, dtype={"level": "str", "group": "str", "school_id": "str"})
        df["suppressed"] = df["suppressed"].astype("str").str.lower().isin(["true", "1", "1.0"])
        tables.update(joint._split_unbounded(p.stem, df, spec))
    return tables


def _with_extra_columns(src, dst):
    """A copy of a report folder whose every table has a long free-text column and a column of numbers more."""
    shutil.copytree(src / "tables", dst / "tables")
    shutil.copy(src / "findings.json", dst / "findings.json")
    for p in (dst / "tables").glob("*.csv"):
        if not p.read_text(encoding="utf-8").strip():
            continue
        df = pd.read_csv(p, dtype="str", keep_default_na=False)
        df.insert(0, "extra_text", "a long label " * 20)
        df["n_extra"] = np.arange(len(df)) % 7  # small numbers in a column no spec names
        df.to_csv(p, index=False)
    return dst


@pytest.mark.skipif(not DEMO_REPORTS, reason="no demo reports (make reports)")
def test_gate_reads_only_the_audited_columns_with_the_same_audit(tmp_path, monkeypatch):
    folder = DEMO_REPORTS[0]
    year = json.loads((folder / "findings.json").read_text())["analysis_year"]
    whole = audit_published(_tables_read_whole(folder), min_n=10, year=year)
    # the gate's own reading: each table's audited columns only
    seen, calls = [], []
    real = pd.read_csv

    def spy(path, *a, **k):
        df = real(path, *a, **k)
        if joint.PUBLISHED[path.stem].spec is not None:  # a table the audit reads
            calls.append(k.get("usecols"))
            seen.append(set(df.columns))
        return df

    monkeypatch.setattr(joint.pd, "read_csv", spy)
    got = {}
    monkeypatch.setattr(
        joint, "audit_published", lambda tables, **k: got.setdefault("r", audit_published(tables, **k))
    )
    assert joint.audit_report_folder(folder, min_n=10) == []
    assert calls and all(c is not None for c in calls)
    assert not any({"ci_lower", "ci_upper", "label", "suppression_reason"} & cols for cols in seen)
    pd.testing.assert_frame_equal(got["r"].intervals, whole.intervals, check_exact=True)
    assert got["r"].failures == whole.failures and got["r"].cells == whole.cells


@pytest.mark.skipif(not DEMO_REPORTS, reason="no demo reports (make reports)")
def test_gate_decision_and_messages_do_not_depend_on_other_columns(tmp_path):
    folder = DEMO_REPORTS[0]
    extra = _with_extra_columns(folder, tmp_path / "extra")
    assert joint.audit_report_folder(extra, min_n=10) == joint.audit_report_folder(folder, min_n=10) == []
    # a leaky table: the same cells named, whatever else the files hold
    g = pd.read_csv(folder / "tables" / "gaps.csv", dtype={"level": "str"})
    g["suppressed"] = False
    for d in (folder, extra):
        leaky = tmp_path / f"leaky-{d.name}"
        shutil.copytree(d, leaky)
        out = g if d is folder else g.assign(extra_text="x", n_extra=3)
        out.to_csv(leaky / "tables" / "gaps.csv", index=False)
    plain = joint.audit_report_folder(tmp_path / f"leaky-{folder.name}", min_n=10)
    assert plain == joint.audit_report_folder(tmp_path / "leaky-extra", min_n=10)


def test_return_memory_gives_freed_pages_back():
    """What a thread allocated and freed is returned to the system (glibc keeps a thread's arena otherwise)."""
    import sys
    import threading

    psutil = pytest.importorskip("psutil")
    if not sys.platform.startswith("linux"):
        pytest.skip("malloc_trim is glibc's")
    from opportunity_research.batch.kernel_isolation import return_memory

    kept = []

    def churn():
        # 100 MB of 1 KB blocks (above pymalloc's, below mmap's sizes), one in 64 kept: the freed ones lie between
        # kept ones, where the allocator cannot shrink its heap from the top
        junk = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]
        kept.extend(junk[::64])
        del junk

    t = threading.Thread(target=churn)
    t.start()
    t.join()
    before = psutil.Process().memory_info().rss
    return_memory()
    assert psutil.Process().memory_info().rss < before - 40 * 2**20
    assert len(kept) == 1563
