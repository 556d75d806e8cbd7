"""The verdicts' copy of the published weights (PatchWeights.refresh_inference) is enqueued
on the verdict's queue without a wait; the next publish waits for that copy before it
writes, so the copy never takes half-written weights and a verdict never waits for it."""
import threading

import numpy as np
import pyopencl as cl

from loop.core.patch import Category, PatchSpec
from loop.core.patch_arch import patch_arch
from loop.core.patch_weights import PatchWeights

CATEGORIES = (Category("n0", 0, "background"), Category("n1", 1, "a"))


def _in_thread(call) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_a_publish_waits_for_the_verdicts_copy_and_the_copy_does_not_wait(device):
    spec = PatchSpec("p", CATEGORIES, topology="pixels", hidden=4, seed=3)
    model = PatchWeights(device, spec, patch_arch(spec), (20, 24))
    verdicts, trainer = device.new_queue(), device.new_queue()
    model.publish(trainer)                   # a new version for the verdicts to take
    old = model.published.flat.numpy(trainer)
    gate = cl.UserEvent(device.context)      # the verdict queue held until the gate opens
    cl.enqueue_marker(verdicts, wait_for=[gate])
    try:
        refresh = _in_thread(lambda: model.refresh_inference(verdicts))
        refresh.join(timeout=10)
        assert not refresh.is_alive(), "taking the newest weights waited for the device"
        model.training.flat.write(old + 1.0, trainer)
        publish = _in_thread(lambda: model.publish(trainer))
        publish.join(timeout=0.3)
        assert publish.is_alive(), "a publish overwrote the weights the verdicts were copying"
    finally:
        gate.set_status(cl.command_execution_status.COMPLETE)
    publish.join(timeout=10)
    assert not publish.is_alive()
    assert np.array_equal(model.inference.flat.numpy(verdicts), old)
    assert np.array_equal(model.published.flat.numpy(trainer), old + 1.0)
    assert model.refresh_inference(verdicts) == model.version
    verdicts.finish()
    assert np.array_equal(model.inference.flat.numpy(verdicts), old + 1.0)
