"""fit_study_models: what its models of every eligible student share (classroom means, counts, the columns
constant within classrooms, made once for all the resources) gives each model the numbers it has alone."""

import numpy as np
import pandas as pd

from opportunity_research.study.growth import STUDY_RESOURCES, fit_study_models


def _frame(n=1200, rooms=60, seed=5):
    rng = np.random.default_rng(seed)
    room = np.repeat(np.arange(rooms), n // rooms)
    frame = pd.DataFrame(
        {
            "school_id": room // 6,
            "classroom_id": room,
            "subject": "math",
            "grade": 4 + (room % 3),
            "fall_z": rng.normal(size=n),
            "low_income": rng.integers(0, 2, n),
            "english_learner": rng.integers(0, 2, n),
            "disability": rng.integers(0, 2, n),
        }
    )
    frame["started_behind"] = (frame["fall_z"] < -0.5).astype(int)
    for r in STUDY_RESOURCES:
        frame[r] = rng.uniform(0, 1, rooms)[room]
    frame.loc[room % 5 == 0, "engaged"] = np.nan  # its classrooms' students are left out of two models
    frame["spring_z"] = (
        0.7 * frame["fall_z"]
        + 0.3 * frame["grade_appropriate"]
        + rng.normal(0, 0.3, rooms)[room]
        + rng.normal(0, 0.6, n)
    )
    return frame


def test_each_model_as_fitted_alone():
    frame = _frame()
    together = fit_study_models(frame, subject="math").effects
    assert set(together.loc[together["n_excluded"] > 0, "model"]) == {"engaged", "all_four"}
    for r in STUDY_RESOURCES:
        alone = fit_study_models(frame, subject="math", resources=[r]).effects
        mine = together[together["model"] == r].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone, check_exact=True)
