"""Benchmark: intake (``validate`` and ``process``) of one synthetic district at 100,000 and 1,000,000 students.

For each size, one district (``synthesize --districts 1 --students N``) is written once into a temporary folder
(or read from ``--raw-root``, a folder holding ``<N>/demo_metro/``, or ``demo_metro/`` for one size), then each
stage runs in its own fresh process so its figures are its own:

* ``validate``: :func:`~opportunity_research.intake.validation.validate_district` as the ``validate`` command
  runs it (read, parse, every rule; ``keep="across"``);
* ``process``: :func:`~opportunity_research.intake.dataset.process_district` (validation again, pseudonyms,
  parquet), the command a district's report run starts with.

Printed per stage: wall seconds, CPU seconds (user + system of the process and its threads: steadier than the
wall clock on a shared machine), the system's part of them and the page faults behind most of it, peak resident
memory (max RSS), rows; then the 1M / 100k ratios, and the ratios to the figures measured before intake ran on
columns (pandera on pandas frames; see ``OLD``). The machine's load (``os.getloadavg``) is printed with each figure:
on a shared 2-core machine the wall clock stretches with the load.

    .venv/bin/python benchmarks/bench_intake.py                      # 100,000 and 1,000,000 students
    .venv/bin/python benchmarks/bench_intake.py --students 100000
    .venv/bin/python benchmarks/bench_intake.py --raw-root /work/tmp/districts   # reuse synthesized districts
    .venv/bin/python benchmarks/bench_intake.py --students 1000000 --raw-root /work/big/p1000k/raw  # its demo_metro/

Target (issue 21): validate + process of 1M students within 30 s and well under 2 GB peak, so that intake is a
small part of the 120 s / 2 GB end-to-end budget.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Figures before this change (main at 98dec60, pandera's pandas backend), wall seconds and peak MB, printed when
#: ``--baseline`` is not given (or cannot run): measured on 98dec60 in the session of this change with
#: ``/usr/bin/time -v`` at load 7: 100k validate 5.5 s, process 10.4 s and 1,065 MB; 1M process 145 s and
#: 6,860 MB; 1M validate+process 464 s and 6.8 GB as issue 21 quotes it.
OLD = {
    100_000: {"validate": (5.5, None), "process": (10.4, 1_065.0)},
    1_000_000: {"validate+process": (464.0, 6_800.0), "process": (145.0, 6_860.0)},
}


def _stage(stage: str, raw: Path, out: Path, src: str | None, queue) -> None:
    if src is not None:  # the baseline: the package as it was at --baseline
        sys.path.insert(0, src)
    from opportunity_research.intake.dataset import process_district
    from opportunity_research.intake.validation import validate_district

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t, load = time.perf_counter(), os.getloadavg()[0]
    if stage == "validate":
        # as the validate command runs it (only the columns the rules across tables read are kept)
        report = validate_district(raw, keep="across") if src is None else validate_district(raw)
        assert report.ok, report.format(max_rows=10)
        rows = report.n_rows
    else:
        final = process_district(raw, processed_root=out, key="bench-key-012345")
        rows = sum(len(p.read_bytes()) for p in final.glob("*.parquet"))  # bytes of parquet written
    wall = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime  # the stage's own, not the imports'
    sys_s, faults = (
        ru.ru_stime - ru0.ru_stime,
        ru.ru_minflt - ru0.ru_minflt,
    )  # the kernel's share, page faults
    queue.put((wall, cpu, ru.ru_maxrss / 1024, rows, (load + os.getloadavg()[0]) / 2, sys_s, faults))


def _synthesize(folder: Path, students: int, queue) -> None:
    from opportunity_research.synth.districts import synthesize_district

    queue.put(synthesize_district(folder, students=students, seed=1))


def _spawn(target, *args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def _checkout(ref: str, folder: Path) -> str | None:
    """The package at git ``ref`` unpacked into ``folder`` (None, saying why, when that cannot run here)."""
    project = Path(__file__).resolve().parents[1]
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(project), "archive", ref, "opportunity_research"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    try:
        import pandera  # noqa: F401  (the baseline's validation needs it; it is no longer a dependency)
    except ImportError:
        print(
            f"baseline {ref}: needs pandera (pip install pandera) to run; the OLD figures are printed instead"
        )
        return None
    return str(folder)


def _reused(raw_root: Path | None, students: int, sizes: int) -> Path | None:
    """The district of ``students`` in ``raw_root``: ``<root>/<students>/demo_metro``, or ``<root>/demo_metro`` when
    one size is benchmarked (e.g. ``/work/big/p1000k/raw``); None: none there, one is synthesized."""
    if raw_root is None:
        return None
    for raw in [raw_root / str(students) / "demo_metro"] + ([raw_root / "demo_metro"] if sizes == 1 else []):
        if raw.is_dir():
            return raw
    return None


def run(students: int, raw_root: Path | None, baseline: str | None = None, sizes: int = 2) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        raw = _reused(raw_root, students, sizes)
        if raw is None:
            raw = _spawn(_synthesize, tmp / "raw", students)
        src = _checkout(baseline, tmp / "baseline") if baseline else None
        out = {
            stage: _spawn(_stage, stage, raw, tmp / "processed", None) for stage in ("validate", "process")
        }
        if src is not None:
            for stage in ("validate", "process"):
                out["old " + stage] = _spawn(_stage, stage, raw, tmp / "processed-old", src)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument(
        "--raw-root",
        type=Path,
        default=None,
        help="folder with <students>/demo_metro/ to reuse (or demo_metro/ itself with one --students)",
    )
    ap.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="also run both stages with the package at git REF (e.g. 98dec60, before intake ran on columns)",
    )
    args = ap.parse_args()
    results = {}
    print(
        f"{'students':>10} {'stage':<9} {'wall s':>7} {'CPU s':>7} {'sys s':>6} {'faults':>8} {'peak MB':>8} "
        f"{'load':>5}  rows / bytes"
    )
    for n in args.students:
        results[n] = run(n, args.raw_root, args.baseline, len(args.students))
        for stage, (wall, cpu, mb, rows, load, sys_s, faults) in results[n].items():
            print(
                f"{n:>10,} {stage:<12} {wall:>7.1f} {cpu:>7.1f} {sys_s:>6.1f} {faults:>8,} {mb:>8.0f} {load:>5.1f}"
                f"  {rows:,}"
            )
        v, p = results[n]["validate"], results[n]["process"]
        print(
            f"{n:>10,} {'both':<12} {v[0] + p[0]:>7.1f} {v[1] + p[1]:>7.1f} {max(v[2], p[2]):>8.0f}"
            "  (validate + process, peak of the two)"
        )
        if "old validate" in results[n]:
            for stage in ("validate", "process"):
                o, m = results[n]["old " + stage], results[n][stage]
                print(
                    f"{'':>10} {stage} vs {args.baseline} in this run: {o[0] / m[0]:.1f}x less wall time, "
                    f"{o[1] / m[1]:.1f}x less CPU, {o[2] / m[2]:.1f}x less peak memory"
                )
            continue
        old = OLD.get(n, {})
        for stage, (secs, mb) in old.items():
            now = (v[0] + p[0], max(v[2], p[2])) if stage == "validate+process" else results[n][stage][::2]
            print(
                f"{'':>10} vs old {stage}: {secs:.0f} s -> {now[0]:.1f} s ({secs / now[0]:.1f}x faster)"
                + (f", {mb:,.0f} MB -> {now[1]:,.0f} MB ({mb / now[1]:.1f}x less)" if mb else "")
            )
    if len(args.students) > 1:
        a, b = args.students[0], args.students[-1]
        for stage in ("validate", "process"):
            r = results[b][stage][0] / results[a][stage][0]
            c = results[b][stage][1] / results[a][stage][1]
            print(
                f"{stage}: {b:,} vs {a:,} students: {r:.1f}x the wall time, {c:.1f}x the CPU, for {b / a:.0f}x"
            )


if __name__ == "__main__":
    main()
