"""The value axes of the charts (the PNGs and the training window's graphs): every range
of values gets numbers, and the values sit on the axis."""
import math

import numpy as np
import pytest

from loop.faces.plot import value_axis


@pytest.mark.parametrize("seed", range(300))
def test_every_range_gets_at_least_two_round_ticks_around_its_values(seed):
    rng = np.random.default_rng(seed)
    log = bool(seed % 2)
    lo = 10 ** rng.uniform(-6, 3) if log else rng.uniform(-50, 50)
    values = [lo, lo * 10 ** rng.uniform(0, 2.5) if log else lo + 10 ** rng.uniform(-6, 3)]
    if seed % 7 == 0:
        values = [values[0], values[0]]   # one value: a flat curve
    axis = value_axis(values, log=log)
    assert len(axis.ticks) >= 2, (values, axis)
    assert all(-1e-9 <= f <= 1 + 1e-9 for f in axis.fraction(values)), (values, axis)
    assert all(-1e-9 <= f <= 1 + 1e-9 for f in axis.fraction(axis.ticks)), (values, axis)
    if log:
        for t in axis.ticks:
            mantissa = t / 10 ** math.floor(math.log10(t) + 1e-12)
            assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-6, t


def test_a_narrow_log_range_reaches_out_to_the_round_values_around_it():
    """Losses from 1.56 to 1.99 held no 1-2-5 value: the loss graph showed no number."""
    axis = value_axis([1.56, 1.83, 1.99], log=True)
    assert axis.ticks == (1.0, 2.0)
    assert 10 ** axis.lo == pytest.approx(1.0) and 10 ** axis.hi == pytest.approx(2.0)
