"""Benchmark: the demo batch run serially and with --jobs 2, against the bare papermill + nbconvert floor.

In one run, on fresh synthetic demo districts in a temporary project:

* floor   -- a one-cell notebook through papermill (same kernel settings as the runner) and nbconvert's
             HTML exporter: the fixed cost of any report (kernel start, execution, export), median of 3;
* serial  -- ``run_batch(jobs=1)``: validate + process + notebook + HTML + privacy screen per district;
* jobs 2  -- ``run_batch(jobs=2)`` on the same districts.

Prints the seconds and the ratios serial-per-district / floor and serial / jobs-2. Until
``notebooks/district_report.ipynb`` exists the small test notebook stands in (``--notebook`` picks one).

    .venv/bin/python benchmarks/bench_batch.py                # five demo districts (4,000 students)
    .venv/bin/python benchmarks/bench_batch.py --quick        # two small districts, no cross-district report
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def floor_once(folder: Path) -> float:
    """Seconds for a one-cell notebook through papermill and nbconvert (HTML), as the runner calls them."""
    import os

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
        papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(folder),
                                   config=cfg)
    html, _ = HTMLExporter(template_name="basic", exclude_input=True).from_notebook_node(
        nbformat.read(out, as_version=4))
    (folder / "floor.html").write_text(html)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two small districts and no cross-district report")
    ap.add_argument("--notebook", default=None, help="district notebook (default: notebooks/district_report.ipynb "
                    "if it exists, else tests/notebooks/tiny_report.ipynb)")
    ap.add_argument("--students", type=int, default=None, help="students over the five demo districts "
                    "(default 4000; 1500 with --quick)")
    args = ap.parse_args()

    from opportunity_research.runner import run_batch
    from opportunity_research.synth import synthesize

    real = PROJECT / "notebooks" / "district_report.ipynb"
    notebook = Path(args.notebook) if args.notebook else (real if real.exists() else
                                                          PROJECT / "tests" / "notebooks" / "tiny_report.ipynb")
    cross = PROJECT / "notebooks" / "cross_district.ipynb"
    students = args.students or (1500 if args.quick else 4000)
    root = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        synthesize(root / "data" / "raw", students=students)
        districts = sorted(p.name for p in (root / "data" / "raw").iterdir() if p.is_dir())
        if args.quick:
            districts = districts[:2]
        floors = [floor_once(root) for _ in range(3)]
        floor = statistics.median(floors)
        kw = {"notebook": notebook, "cross_notebook": None if args.quick or not cross.exists() else cross,
              "root": root, "key": "bench-key-012345"}
        t = time.perf_counter()
        serial = run_batch(districts, jobs=1, reports_dir=root / "reports_serial", **kw)
        t_serial = time.perf_counter() - t
        t = time.perf_counter()
        par = run_batch(districts, jobs=2, reports_dir=root / "reports_jobs2", **kw)
        t_par = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)

    n = len(districts)
    print(f"notebook: {notebook.relative_to(PROJECT) if notebook.is_relative_to(PROJECT) else notebook}; "
          f"{n} districts, {students:,} students over the five demo districts"
          + ("" if kw["cross_notebook"] is None else "; cross-district report included"))
    print(f"{'run':<22}{'seconds':>10}")
    print(f"{'floor (1 notebook)':<22}{floor:>10.2f}   (runs: {', '.join(f'{x:.2f}' for x in floors)})")
    print(f"{'serial (jobs 1)':<22}{t_serial:>10.2f}")
    print(f"{'parallel (jobs 2)':<22}{t_par:>10.2f}")
    for label, res in (("serial", serial), ("jobs 2", par)):
        print(f"  {label:<8}" + "  ".join(f"{r.district_id} {r.status} {r.seconds:.1f}s" for r in res.districts)
              + ("" if res.cross is None else f"  cross {res.cross.status} {res.cross.seconds:.1f}s"))
    print(f"ratio serial per district / floor: {t_serial / n / floor:.2f}")
    print(f"ratio serial / jobs 2:             {t_serial / t_par:.2f}")
    failed = [r.district_id for r in serial.districts + par.districts if r.status != "ok"]
    if failed:
        print(f"note: failed districts ({', '.join(sorted(set(failed)))}) take less time than complete ones; "
              "see their reasons with 'opportunity-research run'")


if __name__ == "__main__":
    main()
