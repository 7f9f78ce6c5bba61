"""Benchmark: the nested growth model (students in classrooms in schools) at 40,000, 200,000 and 1,000,000 students.

Fits the study's all-four-resources model (``spring_z ~ fall_z + started_behind + 4 resources + 4 interactions
+ 3 covariates``, school and classroom random intercepts, REML) with :func:`fit_growth_model` on simulated
data and prints fit time, peak memory of the fit (tracemalloc, a second run) and the ratios to lme4 and to
statsmodels' default nested fit (figures quoted in issue 4, measured on a comparable model elsewhere).

With ``--lme4`` the same data and model are fitted by R's lme4 *in the same run* (``lmer(..., REML = TRUE)``,
default control; only the ``lmer`` call is timed, via ``system.time``), and the benchmark prints the measured
time ratio and the largest differences in fixed effects, standard errors, variance components and
log-likelihood. Install R and lme4 from Debian's packages::

    sudo apt-get install r-base-core r-cran-lme4

Run: ``.venv/bin/python benchmarks/bench_models.py`` (``--quick``: 5,000 and 20,000 students, seconds;
``--lme4 --students 1000000``: the issue's comparison at a million students).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from opportunity_research.stats.models import fit_growth_model

RESOURCES = ("grade_appropriate", "strong_instruction", "engaged", "high_expectations")
#: Seconds quoted in the issue for the same scales: lme4 and statsmodels MixedLM (default nested fit).
LME4_SECONDS = {40_000: 1.1, 200_000: 5.0, 1_000_000: 38.0}
STATSMODELS_SECONDS = {40_000: 2.6, 200_000: 15.0, 1_000_000: 67.0}


def simulate(
    n_students: int, *, seed: int = 0, class_size: int = 25, classes_per_school: int = 20
) -> pd.DataFrame:
    """Nested data: schools > classrooms (ids restart in every school) > students, with planted effects."""
    rng = np.random.default_rng(seed)
    n_class = max(2, n_students // class_size)
    n_school = max(2, n_class // classes_per_school)
    cls = rng.integers(0, n_class, n_students)
    school_of_class = rng.integers(0, n_school, n_class)
    school = school_of_class[cls]
    access = rng.beta(2, 3, (n_class, 4))[cls]
    fall = rng.normal(size=n_students)
    behind = (fall + rng.normal(0, 0.3, n_students) < -0.3).astype(float)
    cov = (rng.random((n_students, 3)) < [0.5, 0.15, 0.12]).astype(float)
    y = (
        0.7 * fall
        - 0.05 * behind
        + access @ [0.2, 0.15, 0.12, 0.08]
        + (access * behind[:, None]) @ [0.15, 0.1, 0.06, 0.05]
        + cov @ [-0.04, -0.03, -0.05]
        + rng.normal(0, 0.14, n_school)[school]
        + rng.normal(0, 0.17, n_class)[cls]
        + rng.normal(0, 0.63, n_students)
    )
    df = pd.DataFrame(
        {
            "school_id": school,
            "classroom_id": cls - cls.min(),
            "fall_z": fall,
            "spring_z": y,
            "started_behind": behind,
            "low_income": cov[:, 0],
            "english_learner": cov[:, 1],
            "disability": cov[:, 2],
        }
    )
    for j, r in enumerate(RESOURCES):
        df[r] = access[:, j]
    # classroom numbers restart within each school, as in many district exports
    df["classroom_id"] = df.groupby("school_id")["classroom_id"].rank(method="dense").astype(int)
    return df


FORMULA = (
    "spring_z ~ fall_z + started_behind + "
    + " + ".join(f"{r} + {r}:started_behind" for r in RESOURCES)
    + " + low_income + english_learner + disability"
)


LME4_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
df <- read.csv(args[1])
df$school_id <- factor(df$school_id)
df$classroom_id <- factor(df$classroom_id)
form <- as.formula(paste(args[2], "+ (1 | school_id) + (1 | school_id:classroom_id)"))
st <- system.time(fit <- lmer(form, data = df, REML = TRUE))
secs <- st[["elapsed"]]
cpu <- st[["user.self"]] + st[["sys.self"]]
vc <- as.data.frame(VarCorr(fit))
out <- list(seconds = secs, cpu_seconds = cpu, fixef = as.list(fixef(fit)), se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
            varcomp = setNames(as.list(vc$vcov), vc$grp), logLik = as.numeric(logLik(fit)),
            version = as.character(packageVersion("lme4")))
cat(paste0("{", paste(sprintf("\"%s\": %s", names(out), sapply(out, function(v) {
  if (is.list(v)) paste0("{", paste(sprintf("\"%s\": %.17g", names(v), unlist(v)), collapse = ", "), "}")
  else if (is.character(v)) sprintf("\"%s\"", v) else sprintf("%.17g", v)})), collapse = ", "), "}"))
"""


def lme4_fit(df: pd.DataFrame) -> dict | None:
    """Fit FORMULA with R's lme4 on ``df`` (same rows); None when Rscript or lme4 is missing."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        df.to_csv(path, index=False)
        (Path(tmp) / "fit.R").write_text(LME4_SCRIPT)
        run = subprocess.run(
            ["Rscript", str(Path(tmp) / "fit.R"), str(path), FORMULA],
            check=False,
            capture_output=True,
            text=True,
        )
    if run.returncode != 0:
        print(
            f"lme4 not run: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}"
        )
        return None
    return json.loads(run.stdout)


def compare_lme4(fit, ref: dict) -> dict:
    """Largest absolute differences between this engine's fit and lme4's."""
    coefs = fit.coefficients.set_index("term")
    coefs.index = [":".join(sorted(t.split(":"))) for t in coefs.index]
    key = {("Intercept" if k == "(Intercept)" else ":".join(sorted(k.split(":")))): k for k in ref["fixef"]}
    d_beta = max(abs(coefs.loc[t, "estimate"] - ref["fixef"][k]) for t, k in key.items())
    d_se = max(abs(coefs.loc[t, "std_error"] / ref["se"][k] - 1) for t, k in key.items())
    vc = fit.variance_components.set_index("component")["variance"]
    names = {"school_id": "school_id", "school_id:classroom_id": "classroom_id", "Residual": "residual"}
    d_vc = max(abs(vc[ours] / ref["varcomp"][theirs] - 1) for theirs, ours in names.items())
    return {
        "fixef_abs": d_beta,
        "se_rel": d_se,
        "varcomp_rel": d_vc,
        "loglik": fit.log_likelihood - ref["logLik"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (finishes in seconds)")
    ap.add_argument(
        "--students", type=int, nargs="*", default=None, help="sizes to run (default 40k, 200k, 1M)"
    )
    ap.add_argument(
        "--lme4", action="store_true", help="also fit each size with R's lme4 in this run and compare"
    )
    args = ap.parse_args(argv)
    sizes = args.students or ((5_000, 20_000) if args.quick else (40_000, 200_000, 1_000_000))
    print(f"model: {FORMULA}\n       + (1 | school_id) + (1 | school_id:classroom_id), REML")
    print(
        f"{'students':>10} {'classes':>8} {'schools':>8} {'fit s':>8} {'peak MiB':>9} {'vs lme4':>8} "
        f"{'vs sm':>8} {'converged':>9}"
    )
    for n in sizes:
        df = simulate(n, seed=n)
        t0, c0 = time.perf_counter(), time.process_time()
        fit = fit_growth_model(df, formula=FORMULA, groups=("school_id", "classroom_id"))
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        tracemalloc.start()
        fit_growth_model(df, formula=FORMULA, groups=("school_id", "classroom_id"))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        ng = fit.n_groups
        lme4 = f"{secs / LME4_SECONDS[n]:.2f}x" if n in LME4_SECONDS else "-"
        smr = f"{secs / STATSMODELS_SECONDS[n]:.2f}x" if n in STATSMODELS_SECONDS else "-"
        print(
            f"{n:>10,} {ng['classroom_id']:>8,} {ng['school_id']:>8,} {secs:>8.2f} {peak / 2**20:>9.0f} {lme4:>8} "
            f"{smr:>8} {fit.converged!s:>9}"
        )
        if args.lme4:
            ref = lme4_fit(df)
            if ref is None:
                print(
                    "           lme4: not available (install: sudo apt-get install r-base-core r-cran-lme4)"
                )
                continue
            c = compare_lme4(fit, ref)
            print(
                f"           lme4 {ref['version']} measured in this run: {ref['seconds']:.2f} s wall, {ref['cpu_seconds']:.2f} s "
                f"CPU; this engine / lme4 = {secs / ref['seconds']:.3f} (wall), {cpu / ref['cpu_seconds']:.3f} (CPU: "
                f"{cpu:.2f} s)"
            )
            print(
                f"           max |diff| fixed effects {c['fixef_abs']:.1e}, SE rel "
                f"{c['se_rel']:.1e}, variance rel {c['varcomp_rel']:.1e}; logLik ours - lme4 {c['loglik']:+.2e}"
            )
    print(
        "ratios: this engine's fit time / the quoted lme4 (1.1, 5, 38 s) and statsmodels (2.6, 15, 67 s) times; "
        "< 1 is faster"
        + ("; the 'lme4 measured in this run' lines are the same-data comparison" if args.lme4 else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
