"""lp_blocks.block_entries reads a block's rows, sums and entries from the CSC arrays: the same as slicing the
block's columns out of the sparse matrix (rows touched, their sums of the block's counts to the bit, entries)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from opportunity_research.disclosure import lp_blocks


def _sliced(a_cols, sub, x):
    cols_sub = a_cols[:, sub]
    touch = np.unique(cols_sub.indices)
    sums = (cols_sub @ x[sub])[touch]
    pos = np.repeat(np.arange(cols_sub.shape[1]), np.diff(cols_sub.indptr))
    keep = cols_sub.data != 0
    return touch, sums, (np.searchsorted(touch, cols_sub.indices[keep]), pos[keep], cols_sub.data[keep])


@pytest.mark.parametrize("seed", range(3))
def test_block_entries_as_the_sliced_columns(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    a = sparse.random(300, 120, density=0.04, random_state=seed, format="csr")
    a.data = np.round(a.data * 4 - 2) + rng.normal(size=len(a.data)) * (rng.random(len(a.data)) < 0.3)
    a_cols = a.tocsc()  # some entries stored as explicit zeros
    x = rng.normal(size=120) * 1e3
    for _ in range(40):
        sub = np.sort(rng.choice(120, size=int(rng.integers(0, 15)), replace=False))
        want = _sliced(a_cols, sub, x)
        monkeypatch.setattr(sparse.csc_matrix, "__getitem__", None)  # no slicing of the matrix
        got = lp_blocks.block_entries(a_cols, sub, x)
        monkeypatch.undo()
        for g, w in zip(got[:2] + got[2], want[:2] + want[2]):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)  # to the bit
