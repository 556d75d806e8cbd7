"""Shared fixtures: one OpenCL device for the whole run, tolerant comparisons that explain."""
import os

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(scope="session")
def device():
    from patchloop_kernels.runtime import Device
    return Device.default()


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


@pytest.fixture(scope="session")
def base_spec(tmp_path_factory):
    """The shipped EfficientNet-Lite0, converted once per test run into a temporary folder."""
    from loop.base.config import load_base
    from loop.base.convert import convert_efficientnet_lite0
    return load_base(convert_efficientnet_lite0(tmp_path_factory.mktemp("base")))


@pytest.fixture(scope="session")
def base_network(device, base_spec):
    from loop.base.network import BaseNetwork
    return BaseNetwork(device, base_spec)
