"""Training steps per second of a patch at a given batch, on stored-feature batches as the
online trainer runs them, beside PyTorch's for the same head when torch is importable."""
from __future__ import annotations

import numpy as np

from loop.faces.timing import median_seconds

STEPS = 30


def _random_batch(core, batch, rng):
    c, h, w = core.model.feature_shape
    features = np.maximum(rng.standard_normal((batch, c, h, w)), 0).astype(np.float32)
    labels = rng.integers(-1, core.spec.outputs, (batch, h, w)).astype(np.int32)
    return features, labels


def train_steps_per_second(core, batch: int = 16) -> dict:
    rng = np.random.default_rng(0)
    features, labels = _random_batch(core, batch, rng)
    weights = np.ones(core.spec.outputs, np.float32)
    step = core.model.make_train_step(batch)
    queue = core.model.device.new_queue()
    seconds = median_seconds(
        lambda: step.run(queue, features, labels, weights, 1e-4, 0.9, 1e-4), STEPS)
    result = {"batch": batch, "feature_shape": list(core.model.feature_shape),
              "patchloop_steps_per_second": round(1.0 / seconds, 2)}
    result.update(_pytorch(core, features, labels, weights))
    return result


def _pytorch(core, features, labels, weights) -> dict:
    try:
        import torch
    except ImportError:
        return {"pytorch_steps_per_second": None, "pytorch_note": "torch is not importable"}
    layers = []
    for g in core.model.layers:
        layers.append(torch.nn.Conv2d(g.c_in, g.c_out, g.kernel, g.stride,
                                      g.padding if g.padding != "same" else g.kernel // 2,
                                      g.dilation, g.groups))
        if g.activation == "relu":
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
    x, y = torch.from_numpy(features), torch.from_numpy(labels).long()
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights), ignore_index=-1)

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    return {"pytorch_steps_per_second": round(1.0 / median_seconds(step, STEPS), 2),
            "pytorch_version": torch.__version__, "pytorch_threads": torch.get_num_threads()}
