"""The Gaussian basis is bounded before it is built (a step of 1e-7 Å used to build 8e7 centres in a
Python loop: minutes and gigabytes before any check could run), and its centres are unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.nn.functional import MAX_GAUSSIAN_CENTRES, _gaussian_centres, gaussian_expansion


@pytest.mark.parametrize("dmin, dmax, step", [(0.0, 8.0, 0.2), (0.7, 6.1, 0.13), (0.5, 8.0, 0.0371), (0.0, 8.0, 1e-4)])
def test_centres_are_cgcnns_bit_for_bit(dmin, dmax, step):
    n = int(round((dmax - dmin) / step)) + 1
    reference = np.array([dmin + k * step for k in range(n)])  # the loop the vectorised form replaced
    assert np.array_equal(_gaussian_centres(dmin, dmax, step), reference)


def test_a_basis_beyond_the_limit_is_refused_before_it_is_built():
    step = 8.0 / (2 * MAX_GAUSSIAN_CENTRES)
    with pytest.raises(ValueError, match=r"2e\+07 centres \(limit 1e\+07\).*--set step=0.2"):
        gaussian_expansion(np.zeros(1), dmin=0.0, dmax=8.0, step=step)
    assert gaussian_expansion(np.zeros(1), dmin=0.0, dmax=8.0, step=8.0 / (MAX_GAUSSIAN_CENTRES - 1)).shape == (1, MAX_GAUSSIAN_CENTRES)
