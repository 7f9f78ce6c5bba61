"""Benchmark: a statewide batch serially and on a Dask LocalCluster, against the papermill + nbconvert floor.

In one run, on fresh synthetic districts in a temporary project:

* floor     -- a one-cell notebook through papermill (same kernel settings as the runner) and nbconvert's HTML
               exporter: the fixed cost of any report (kernel start, execution, export), median of 3;
* serial    -- ``run_batch(jobs=1)``: validate + process + notebook + HTML + privacy screen, district after
               district in this process;
* cluster   -- ``run_batch(jobs=2)``: the same districts as tasks of a ``LocalCluster`` with 2 worker processes.

Prints seconds, throughput (districts per minute), the ratios serial / cluster and serial-per-district / floor,
the per-district times against district size (a least-squares line: fixed seconds + seconds per 1,000
students, the figures for sizing a cluster; see the README) and the peak memory of one kernel or worker process.

    .venv/bin/python benchmarks/bench_batch.py                   # a state of 200 districts (synthesize --districts)
    .venv/bin/python benchmarks/bench_batch.py --districts 20    # a smaller state
    .venv/bin/python benchmarks/bench_batch.py --demo            # the five demo districts (4,000 students)
    .venv/bin/python benchmarks/bench_batch.py --quick           # two demo districts, no cross-district report
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]


def floor_once(folder: Path) -> float:
    """Seconds for a one-cell notebook through papermill and nbconvert (HTML), as the runner calls them."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    src, out = folder / "floor.ipynb", folder / "floor.out.ipynb"
    nbformat.write(nb, src)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as kdir:
        cfg = Config()
        cfg.KernelManager.transport = "ipc"
        cfg.KernelManager.ip = os.path.join(kdir, "kernel")
        papermill.execute_notebook(
            str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(folder), config=cfg
        )
    html, _ = HTMLExporter(template_name="basic", exclude_input=True).from_notebook_node(
        nbformat.read(out, as_version=4)
    )
    (folder / "floor.html").write_text(html)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--districts", type=int, default=200, help="districts in the synthetic state (default 200)"
    )
    ap.add_argument("--demo", action="store_true", help="the five demo districts instead of a state")
    ap.add_argument("--quick", action="store_true", help="two demo districts, no cross-district report")
    ap.add_argument("--jobs", type=int, default=2, help="LocalCluster workers (default 2)")
    ap.add_argument(
        "--notebook", default=None, help="district notebook (default notebooks/district_report.ipynb)"
    )
    ap.add_argument("--no-cross", action="store_true", help="skip the cross-district report")
    args = ap.parse_args()

    from opportunity_research.batch.runner import run_batch
    from opportunity_research.synth.districts import synthesize
    from opportunity_research.synth.statewide import synthesize_state

    notebook = Path(args.notebook) if args.notebook else PROJECT / "notebooks" / "district_report.ipynb"
    cross = None if args.quick or args.no_cross else PROJECT / "notebooks" / "cross_district.ipynb"
    root = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    raw = root / "data" / "raw"
    try:
        if args.demo or args.quick:
            synthesize(raw)
            what = "the demo districts"
        else:
            synthesize_state(raw, districts=args.districts)
            what = f"a synthetic state of {args.districts} districts"
        districts = sorted(p.name for p in raw.iterdir() if p.is_dir())
        if args.quick:
            districts = districts[:2]
        students = {d: json.loads((raw / d / "truth.json").read_text())["n_students"] for d in districts}
        load0 = os.getloadavg()[0]
        floors = [floor_once(root) for _ in range(3)]
        floor = statistics.median(floors)
        kw = {"notebook": notebook, "cross_notebook": cross, "root": root, "key": "bench-key-012345"}
        t = time.perf_counter()
        serial = run_batch(districts, jobs=1, reports_dir=root / "reports_serial", **kw)
        t_serial = time.perf_counter() - t
        t = time.perf_counter()
        par = run_batch(districts, jobs=args.jobs, reports_dir=root / "reports_cluster", **kw)
        t_par = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB, the largest single process

    n = len(districts)
    sizes = np.array([students[d] for d in districts], dtype=float)
    secs = np.array([r.seconds for r in serial.districts])
    print(
        f"{what}: {n} districts, {int(sizes.sum()):,} students (median {int(np.median(sizes)):,}, largest "
        f"{int(sizes.max()):,}); notebook {notebook.name}"
        + ("" if cross is None else "; cross-district report included")
        + f"; {os.cpu_count()} CPUs"
    )
    print(f"{'run':<28}{'seconds':>10}{'districts/min':>16}")
    print(
        f"{'floor (1-cell notebook)':<28}{floor:>10.2f}{60 / floor:>16.1f}   (runs: "
        f"{', '.join(f'{x:.2f}' for x in floors)})"
    )
    print(f"{'serial (jobs 1)':<28}{t_serial:>10.1f}{60 * n / t_serial:>16.2f}")
    print(f"{f'LocalCluster ({args.jobs} workers)':<28}{t_par:>10.1f}{60 * n / t_par:>16.2f}")
    print(f"ratio serial / LocalCluster:      {t_serial / t_par:.2f}")
    # why the ratio is what it is: per-task slowdown on the cluster (shared CPUs) and the critical path
    busy_serial = secs.sum()
    busy_par = sum(r.seconds for r in par.districts)
    tail = serial.cross.seconds if serial.cross is not None else 0.0
    bound = t_serial / (max(busy_serial / args.jobs, secs.max()) + tail + (t_serial - busy_serial - tail))
    print(
        f"  district seconds summed: serial {busy_serial:.1f}, cluster {busy_par:.1f} (each task "
        f"{busy_par / busy_serial:.2f}x as long on the cluster); best ratio this load balance allows, with the "
        f"cross-district report as a serial tail: {bound:.2f}"
    )
    print(
        f"  load average (1 min) before / after: {load0:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"ratio serial per district / floor: {t_serial / n / floor:.2f}")
    if n >= 2 and np.ptp(sizes) > 0:
        slope, fixed = np.polyfit(sizes / 1000, secs, 1)
        print(
            f"per district (serial): median {np.median(secs):.1f} s, 90th percentile {np.percentile(secs, 90):.1f} s, "
            f"max {secs.max():.1f} s; least squares: {fixed:.1f} s + {slope:.1f} s per 1,000 students"
        )
    if serial.cross is not None:
        print(
            f"cross-district report: serial {serial.cross.seconds:.1f} s, cluster "
            f"{par.cross.seconds if par.cross else float('nan'):.1f} s"
        )
    print(f"peak memory of one kernel or worker process: {peak:.0f} MiB")
    failed = sorted({r.district_id for r in serial.districts + par.districts if r.status != "ok"})
    if failed:
        print(
            f"note: {len(failed)} district(s) failed ({', '.join(failed[:10])}); failed districts take less "
            "time than complete ones, so the throughput above is optimistic",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
