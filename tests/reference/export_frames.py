"""Write the model frames that tests/reference/lme4_identified.R fits with lme4.

Run from the project root with the package installed: ``python tests/reference/export_frames.py`` then
``Rscript tests/reference/lme4_identified.R``. Writes ``tests/reference/frames/*.csv.gz``:

* three small simulated designs with a variance component the design cannot identify
  (``unid_grade_school``: every grade taught in its own school while grade is a fixed effect;
  ``unid_one_school``: a single school; ``unid_same_partition``: one classroom per school);
* the growth frame of each demo district and subject (synthetic students; no identifiers kept), so the
  study models can be compared with lme4's fit of the identified model.

The frames are committed, so the tests do not depend on the demo generator staying byte-identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "frames"


def designs(seed: int = 20081) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    # every grade in one school (Hillcrest-like): 3 schools x 1 grade, 6 classrooms each, 15 students
    grade = np.repeat([6, 7, 8], 6 * 15)
    school = np.repeat(["A", "B", "C"], 6 * 15)
    cls = np.repeat(np.arange(18), 15)
    x = rng.normal(size=len(cls))
    y = 0.5 * x + 0.2 * (grade - 7) + rng.normal(0, 0.4, 18)[cls] + rng.normal(size=len(cls))
    out["unid_grade_school"] = pd.DataFrame(
        {"school": school, "classroom": cls % 6, "grade": grade, "x": x, "y": y}
    )
    # a single school
    cls = np.repeat(np.arange(12), 20)
    x = rng.normal(size=len(cls))
    y = 1 + 0.3 * x + rng.normal(0, 0.5, 12)[cls] + rng.normal(size=len(cls))
    out["unid_one_school"] = pd.DataFrame({"school": "only", "classroom": cls, "grade": 5, "x": x, "y": y})
    # one classroom per school: the two levels are the same partition
    cls = np.repeat(np.arange(25), 12)
    x = rng.normal(size=len(cls))
    y = 1 + 0.3 * x + rng.normal(0, 0.6, 25)[cls] + rng.normal(size=len(cls))
    out["unid_same_partition"] = pd.DataFrame({"school": cls, "classroom": 1, "grade": 5, "x": x, "y": y})
    return out


def main() -> None:
    sys.path.insert(0, str(HERE.parent.parent))
    from opportunity_research import config
    from opportunity_research.study.growth import STUDY_COVARIATES, fit_study_models
    from opportunity_research.study.measures import growth_frame
    from tests import demo

    OUT.mkdir(exist_ok=True)
    specs = []
    for name, df in designs().items():
        df.to_csv(OUT / f"{name}.csv.gz", index=False)
        formula = "y ~ x + C(grade)" if name == "unid_grade_school" else "y ~ x"
        specs.append(
            {
                "id": name,
                "frame": f"{name}.csv.gz",
                "formula": formula,
                "complete": ["y", "x", "grade"],
                "groups": ["school", "classroom"],
            }
        )
    for did in config.DEMO_DISTRICTS:
        for subject in ("ela", "math"):
            f = growth_frame(demo.district(did), subject=subject).drop(columns=["student_id"])
            f.to_csv(OUT / f"{did}_{subject}.csv.gz", index=False, float_format="%.17g")
            f = pd.read_csv(OUT / f"{did}_{subject}.csv.gz")  # fit exactly what R will read
            sm = fit_study_models(f, subject=subject)
            for (_, model), fit in sm.models.items():
                rs = [
                    r
                    for r in ("grade_appropriate", "strong_instruction", "engaged", "high_expectations")
                    if r in fit.formula.split(" ~ ")[1].split(" + ")
                ]
                specs.append(
                    {
                        "id": f"{did}_{subject}_{model}",
                        "frame": f"{did}_{subject}.csv.gz",
                        "formula": fit.formula,
                        "complete": [
                            "spring_z",
                            "fall_z",
                            "started_behind",
                            "grade",
                            "school_id",
                            "classroom_id",
                            *STUDY_COVARIATES,
                            *rs,
                        ],
                        "groups": ["school_id", "classroom_id"],
                    }
                )
    (HERE / "specs.json").write_text(json.dumps(specs, indent=1) + "\n")


if __name__ == "__main__":
    main()
