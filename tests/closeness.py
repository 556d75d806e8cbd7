"""Comparing a kernel's result with its numpy twin: tolerant, and explaining a mismatch."""
import numpy as np


def assert_close(actual, expected, atol=1e-4, rtol=1e-4, what="result"):
    """|actual - expected| <= atol + rtol*|expected| everywhere; prints the first mismatches."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    bad = ~(np.abs(actual - expected) <= atol + rtol * np.abs(expected))
    if bad.any():
        idx = np.argwhere(bad)[:5]
        lines = [f"  at {tuple(i)}: got {actual[tuple(i)]:.6g}, expected {expected[tuple(i)]:.6g}"
                 for i in idx]
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements differ\n" + "\n".join(lines))
