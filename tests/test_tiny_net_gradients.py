"""End to end on the OpenCL path: a tiny net's loss gradient against finite differences.
conv 3x3 + ReLU -> depthwise 3x3 + ReLU6 -> 1x1 conv -> global average pool -> weighted
cross-entropy."""
import numpy as np

from patchloop_kernels.conv import ConvForward, ConvGeometry
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels.loss import WeightedCrossEntropy
from patchloop_kernels.pool import prepare_global_avg_pool, prepare_global_avg_pool_backward
from patchloop_kernels.runtime import Plan, Tensor

LAYERS = [ConvGeometry(3, 4, 3, 1, 1, activation="relu"),
          ConvGeometry(4, 4, 3, 2, "same", groups=4, activation="relu6"),
          ConvGeometry(4, 3, 1)]


def test_tiny_net_gradient_matches_finite_differences(device):
    rng = np.random.default_rng(11)
    n, h, w = 2, 9, 8
    x = Tensor.from_numpy(device, rng.standard_normal((n, 3, h, w)).astype(np.float32))
    weights = [Tensor.from_numpy(device, (rng.standard_normal(g.weight_shape) * 0.6)
                                 .astype(np.float32)) for g in LAYERS]
    biases = [Tensor.from_numpy(device, (rng.standard_normal(g.c_out) * 0.1 + 0.3)
                                .astype(np.float32)) for g in LAYERS]
    forward, outs, current = Plan(), [], x
    layer_plans = []
    for g, wt, bt in zip(LAYERS, weights, biases):
        oh, ow = g.output_size(*current.shape[2:])
        out = Tensor.empty(device, (n, g.c_out, oh, ow))
        plan = ConvForward(device, g, current, wt, bt, out)
        forward.add(plan)
        layer_plans.append(plan)
        outs.append(out)
        current = out
    pooled = Tensor.empty(device, (n, 3, 1, 1))
    forward.add(prepare_global_avg_pool(device, pooled, current))
    labels = Tensor.from_numpy(device, np.array([[[2]], [[0]]], np.int32))
    loss = WeightedCrossEntropy(device, pooled, labels,
                                Tensor.from_numpy(device, np.array([1.0, 0.5, 2.0], np.float32)))
    forward.add(loss)

    backward = Plan()
    d_last = Tensor.empty(device, current.shape)
    backward.add(prepare_global_avg_pool_backward(device, d_last, loss.dlogits))
    grads_w = [Tensor.empty(device, g.weight_shape) for g in LAYERS]
    grads_b = [Tensor.empty(device, (g.c_out,)) for g in LAYERS]
    upstream = d_last
    inputs = [x] + outs[:-1]
    for i in reversed(range(len(LAYERS))):
        dx = Tensor.empty(device, inputs[i].shape) if i else None
        backward.add(ConvBackward(device, LAYERS[i], layer_plans[i], inputs[i], weights[i],
                                  outs[i], upstream, grads_w[i], grads_b[i], dx))
        upstream = dx

    forward.enqueue(device.queue)
    backward.enqueue(device.queue)
    analytic = [(gw.numpy(), gb.numpy()) for gw, gb in zip(grads_w, grads_b)]

    def loss_at():
        forward.enqueue(device.queue)
        return float(loss.loss.numpy()[0])

    eps = 3e-3
    for i in range(len(LAYERS)):
        for tensor, grad in ((weights[i], analytic[i][0]), (biases[i], analytic[i][1])):
            base = tensor.numpy()
            for flat in rng.choice(base.size, min(4, base.size), replace=False):
                values = []
                for step in (eps, -eps):
                    probe = base.copy()
                    probe.ravel()[flat] += step
                    tensor.write(probe)
                    values.append(loss_at())
                tensor.write(base)
                numeric = (values[0] - values[1]) / (2 * eps)
                assert abs(numeric - grad.ravel()[flat]) <= 2e-3 + 3e-2 * abs(numeric), \
                    f"layer {i} element {flat}: numeric {numeric:.5f}, kernel {grad.ravel()[flat]:.5f}"
