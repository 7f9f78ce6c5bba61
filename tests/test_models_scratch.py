"""fit_growth_model with a scratch dict kept over several fits (Profile's working array reused): the same fits."""

import numpy as np
import pandas as pd

from opportunity_research.stats.models import fit_growth_model


def test_fits_with_a_kept_working_array_are_the_fits_without():
    rng = np.random.default_rng(8)
    n = 2400
    room = np.repeat(np.arange(120), 20)
    df = pd.DataFrame({"school": room // 10, "room": room, "x": rng.normal(size=n), "z": rng.normal(size=n)})
    df["y"] = (
        0.5 * df["x"]
        + rng.normal(0, 0.5, 120)[room]
        + rng.normal(0, 0.4, 12)[room // 10]
        + rng.normal(size=n)
    )
    scratch: dict = {}
    # a smaller model, a larger one (a larger array made), a smaller one again (the larger array's start)
    for formula, rows in (("y ~ x", n // 2), ("y ~ x + z + x:z", n), ("y ~ z", n)):
        part = df.iloc[:rows]
        kept = fit_growth_model(part, formula=formula, groups=("school", "room"), _scratch=scratch)
        fresh = fit_growth_model(part, formula=formula, groups=("school", "room"))
        pd.testing.assert_frame_equal(kept.coefficients, fresh.coefficients, check_exact=True)
        assert kept.theta == fresh.theta and kept.deviance == fresh.deviance
    assert scratch["array"].size >= n * 6
