"""Shared fixtures: one OpenCL device for the whole run, the base network converted once."""
import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(scope="session")
def device():
    from patchloop_kernels.runtime import Device
    return Device.default()


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
