"""Benchmark: generate, validate and process the synthetic districts at scale (issue: --students 1000000).

Each stage runs in its own process so its peak memory (max RSS) is its own. Prints seconds, peak memory,
rows, and throughput; `--quick` runs 40,000 students only.

    .venv/bin/python benchmarks/bench_pipeline.py                # 40,000 and 1,000,000 students
    .venv/bin/python benchmarks/bench_pipeline.py --quick
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path


def _stage(name, root, students, queue):
    from opportunity_research.intake.dataset import process_district
    from opportunity_research.intake.validation import validate_district
    from opportunity_research.synth.districts import synthesize

    t = time.perf_counter()
    rows = 0
    if name == "synthesize":
        synthesize(root / "raw", seed=1, students=students)
        rows = sum(p.read_bytes().count(b"\n") - 1 for p in (root / "raw").rglob("*.csv"))
    elif name == "validate":
        for d in sorted((root / "raw").iterdir()):
            report = validate_district(d)
            assert report.ok, report.format(max_rows=10)
            rows += sum(len(t) for t in report.tables.values())
    else:
        for d in sorted((root / "raw").iterdir()):
            process_district(d, processed_root=root / "processed", key="bench-key-012345")
    queue.put((time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rows))


def run(students: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    out = {}
    try:
        for name in ("synthesize", "validate", "process"):
            q = mp.get_context("spawn").Queue()
            p = mp.get_context("spawn").Process(target=_stage, args=(name, root, students, q))
            p.start()
            secs, peak_mb, rows = q.get()
            p.join()
            out[name] = (secs, peak_mb, rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="40,000 students only")
    ap.add_argument("--students", type=int, nargs="*", default=None)
    args = ap.parse_args()
    sizes = args.students or ([40_000] if args.quick else [40_000, 1_000_000])
    results = {}
    print(f"{'students':>10} {'stage':<11} {'seconds':>8} {'peak MB':>8} {'rows':>12}")
    for n in sizes:
        results[n] = run(n)
        for stage, (secs, mb, rows) in results[n].items():
            print(f"{n:>10,} {stage:<11} {secs:>8.1f} {mb:>8.0f} {rows:>12,}")
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        for stage in ("synthesize", "validate", "process"):
            r = results[b][stage][0] / results[a][stage][0]
            print(f"{stage}: {b:,} vs {a:,} students took {r:.1f}x the time for {b / a:.0f}x the students")


if __name__ == "__main__":
    main()
