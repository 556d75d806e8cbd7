"""Training steps per second of a patch at a given batch, on stored-feature batches as the
online trainer runs them, beside PyTorch's for the same layer chain when torch is importable
(torch is never a dependency: `pip install torch --index-url
https://download.pytorch.org/whl/cpu` installs the CPU build for benchmarking)."""
from __future__ import annotations

import numpy as np

from loop.faces.bench.timing import median_seconds

STEPS = 30


def _random_batch(core, step, rng):
    features = np.maximum(rng.standard_normal(step.features.shape), 0).astype(np.float32)
    labels = rng.integers(-1, core.spec.outputs, step.label_shape).astype(np.int32)
    return features, labels


def _timed(core, step, queue, steps: int):
    """(seconds per step, the batch it ran on)."""
    features, labels = _random_batch(core, step, np.random.default_rng(0))
    weights = np.ones(core.spec.outputs, np.float32)
    seconds = median_seconds(
        lambda: step.run(queue, features, labels, weights, 1e-4, 0.9, 1e-4), steps)
    return seconds, (features, labels, weights)


def train_steps_per_second(core, batch: int = 16, steps: int = STEPS) -> dict:
    """The trainer's own step (on windows around the labels where the patch's input is
    larger than a window) and, where that is not the whole input, the step on whole inputs
    too."""
    step, queue = core.train_step_plan(batch)
    seconds, inputs = _timed(core, step, queue, steps)
    result = {"batch": batch, "feature_shape": list(core.model.feature_shape),
              "step_input_shape": list(step.features.shape[1:]),
              "patchloop_ms_per_step": round(seconds * 1e3, 2),
              "patchloop_steps_per_second": round(1.0 / seconds, 2)}
    if tuple(step.features.shape[1:]) != tuple(core.model.feature_shape):
        whole, whole_queue = core.train_step_plan(batch, whole_input=True)
        result["whole_input_ms_per_step"] = round(_timed(core, whole, whole_queue,
                                                         steps)[0] * 1e3, 2)
    result.update(_pytorch(core, *inputs, steps))
    return result


def _pytorch(core, features, labels, weights, steps: int) -> dict:
    try:
        import torch
    except ImportError:
        return {"pytorch_steps_per_second": None, "pytorch_note": "torch is not importable"}
    net = _torch_chain(torch, core.model.arch.layers, core.model.arch.residuals)
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
    x, y = torch.from_numpy(features), torch.from_numpy(labels).long()
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights), ignore_index=-1)

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    seconds = median_seconds(step, steps)
    return {"pytorch_ms_per_step": round(seconds * 1e3, 2),
            "pytorch_steps_per_second": round(1.0 / seconds, 2),
            "pytorch_version": torch.__version__, "pytorch_threads": torch.get_num_threads()}


def _torch_chain(torch, layers, residuals):
    """The patch's chain in PyTorch: the same convolutions, activations and residual adds
    (SAME padding of stride-1 layers is k//2 on each side, as here)."""
    convs = torch.nn.ModuleList(
        torch.nn.Conv2d(g.c_in, g.c_out, g.kernel, g.stride,
                        g.padding if g.padding != "same" else g.span // 2, g.dilation, g.groups)
        for g in layers)
    acts = {"relu": torch.nn.functional.relu, "relu6": torch.nn.functional.relu6}

    class Chain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = convs

        def forward(self, x):
            outputs = [x]  # outputs[i + 1] is layer i's; residual -1 is the input
            for g, conv, source in zip(layers, self.convs, residuals):
                z = conv(outputs[-1])
                z = acts[g.activation](z) if g.activation in acts else z
                outputs.append(z if source is None else z + outputs[source + 1])
            return outputs[-1]

    return Chain()
