"""The weights' running average (optim.cl average_step) against its numpy twin, on random
lengths, and the patch model's use of it: verdicts and snapshots read the average."""
import numpy as np
import pytest

from conftest import assert_close
from patchloop_kernels.optim import WeightAverage
from patchloop_kernels.runtime import Tensor


def average_step(average: np.ndarray, weights: np.ndarray, rate: float) -> np.ndarray:
    """The numpy twin, in float64."""
    return average + rate * (weights - average)


@pytest.mark.parametrize("seed", range(6))
def test_average_step_matches_numpy_on_random_lengths(device, seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 70_000))
    average = rng.standard_normal(size).astype(np.float32)
    t_average = Tensor.from_numpy(device, average)
    expected = average.astype(np.float64)
    plan = None
    for rate in (0.3, 0.05, 1.0, 0.7):
        weights = rng.standard_normal(size).astype(np.float32)
        t_weights = Tensor.from_numpy(device, weights)
        plan = WeightAverage(device, t_average, t_weights)
        plan.enqueue(device.queue, rate)
        expected = average_step(expected, weights, rate)
    assert_close(t_average.numpy(), expected, atol=1e-6, rtol=1e-5, what="average")
    with pytest.raises(ValueError):
        plan.enqueue(device.queue, 0.0)
    with pytest.raises(ValueError):
        WeightAverage(device, t_average, Tensor.from_numpy(device, np.zeros(size + 1, np.float32)))


def test_average_writes_every_element(device):
    """A NaN-prefilled average with rate 1 becomes the weights everywhere."""
    size = 16 * 37 + 5
    t_average = Tensor.from_numpy(device, np.full(size, np.nan, np.float32))
    weights = np.arange(size, dtype=np.float32)
    WeightAverage(device, t_average, Tensor.from_numpy(device, weights)).enqueue(device.queue, 1.0)
    assert np.array_equal(t_average.numpy(), weights)


def test_verdicts_and_snapshots_read_the_average(base_network):
    from loop.core.patch_model import AVERAGE_RATE
    from test_plugin import trained_core
    core = trained_core(base_network)
    model = core.model
    before = model.state(core.queue)["weights"].astype(np.float64)
    assert core.trainer.step()
    raw = model.published.flat.numpy(core.queue)
    after = model.state(core.queue)["weights"]
    assert_close(after, before + AVERAGE_RATE * (raw - before), atol=1e-5, rtol=1e-4,
                 what="the average after one step")
    assert not np.allclose(after, raw), "one step moves the average only part of the way"
    model.refresh_inference(core.queue)
    assert np.array_equal(model.inference.flat.numpy(core.queue), after)
