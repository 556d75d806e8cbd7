"""Chains of implicit-GEMM convolutions (patch_plans.py: a pixels patch's seven layers),
where each layer writes straight into the next one's padded input and each input gradient,
passed back through the activation before it, straight into that layer's padded gradient
map: which layers chain, the forward and every gradient against the numpy twin, and the
gradients against finite differences of the chained forward. Also a 1x1 convolution that
writes straight into the next depthwise convolution's padded input (fine-tuned blocks)."""
import numpy as np
import pytest

from loop.core.patch_layers import head_layers, parameter_layout, pixels_layers
from loop.core.patch_plans import PatchBackward, PatchForward, chained_layers
from patchloop_kernels.conv import ConvGeometry
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.runtime import Tensor
from reference.conv_ref import conv_backward, conv_forward
from closeness import assert_close

# Dilated and plain 3x3s, every activation, a 5x5 (pads 2 like the dilated 3x3s), widths
# that are not multiples of any register block.
CHAIN = [ConvGeometry(3, 5, 3, 1, 2, 2, activation="relu"),
         ConvGeometry(5, 6, 3, 1, 2, 2, activation="relu6"),
         ConvGeometry(6, 4, 5, 1, 2, 1, activation="relu"),
         ConvGeometry(4, 3, 3, 1, 2, 2)]


def test_which_layers_chain():
    assert chained_layers(pixels_layers(3), [None] * 7, 120, 160) == set(range(6))
    assert chained_layers(CHAIN, [None] * 4, 9, 13) == {0, 1, 2}
    assert chained_layers(head_layers(112, 3), [None] * 3, 15, 20) == set()
    # Padded maps of different sizes (pad 1 against pad 2) and residuals do not chain.
    mixed = [ConvGeometry(3, 4, 3, 1, 1), ConvGeometry(4, 4, 3, 1, 2, 2)]
    assert chained_layers(mixed, [None, None], 9, 13) == set()
    assert chained_layers(CHAIN, [None, None, None, 1], 9, 13) == set()


def _chain(device, layers, rng, n, h, w):
    layout = parameter_layout(device, layers)
    params = {}
    for i, g in enumerate(layers):
        fan_in = g.c_in * g.kernel ** 2
        params[f"w{i}"] = (rng.standard_normal(g.weight_shape) * 1.5 / np.sqrt(fan_in))
        params[f"b{i}"] = rng.standard_normal(g.c_out) * 0.2 + 0.1
    weights = FlatTensors(device, layout, layout.pack(params))
    grads = FlatTensors(device, layout, np.full(layout.size, np.nan, np.float32))
    x = rng.standard_normal((n, layers[0].c_in, h, w)).astype(np.float32)
    forward = PatchForward(device, layers, weights, Tensor.from_numpy(device, x))
    return layout, params, weights, grads, x, forward


def _reference(layers, params, x, dlogits):
    """(logits, {name: gradient}) by the numpy twin, layer by layer."""
    ys, current = [], x
    for i, g in enumerate(layers):
        current = conv_forward(current, params[f"w{i}"], params[f"b{i}"], g)[0]
        ys.append(current)
    grads, dy = {}, dlogits
    inputs = [x] + ys[:-1]
    for i in reversed(range(len(layers))):
        dx, grads[f"w{i}"], grads[f"b{i}"] = conv_backward(inputs[i], params[f"w{i}"], ys[i],
                                                           dy, layers[i])
        dy = dx
    return ys[-1], grads


def _check_against_reference(device, layers, rng, layout, params, weights, grads, x, forward):
    """A random logits gradient through the chain's forward and backward: logits and every
    parameter's gradient as the numpy twin has them."""
    dlogits = rng.standard_normal(forward.logits.shape).astype(np.float32)
    backward = PatchBackward(device, layers, weights, grads, forward,
                             Tensor.from_numpy(device, dlogits))
    forward.enqueue(device.queue)
    backward.enqueue(device.queue)
    logits_ref, grads_ref = _reference(layers, params, x, dlogits)
    assert_close(forward.logits.numpy(), logits_ref, atol=1e-4, rtol=1e-4, what="logits")
    got = layout.unpack(grads.flat.numpy())
    for name, expected in grads_ref.items():
        assert_close(got[name], expected, atol=1e-3, rtol=1e-4, what=name)


@pytest.mark.parametrize("n,h,w", [(2, 9, 13), (1, 17, 6), (3, 4, 21)])
def test_chain_matches_reference(device, n, h, w):
    rng = np.random.default_rng(n * 100 + h)
    layout, params, weights, grads, x, forward = _chain(device, CHAIN, rng, n, h, w)
    assert forward.chained == {0, 1, 2}
    _check_against_reference(device, CHAIN, rng, layout, params, weights, grads, x, forward)


def test_chain_gradients_match_finite_differences(device):
    """d(sum(r * logits))/dparam by central differences of the chained OpenCL forward, in
    float64 sums; probes whose step moves a unit across an activation's kink are skipped."""
    rng = np.random.default_rng(3)
    n, h, w = 1, 5, 6  # few units, so that few probes move one across a kink
    layout, params, weights, grads, x, forward = _chain(device, CHAIN, rng, n, h, w)
    r = rng.standard_normal(forward.logits.shape)
    backward = PatchBackward(device, CHAIN, weights, grads, forward,
                             Tensor.from_numpy(device, r.astype(np.float32)))
    forward.enqueue(device.queue)
    backward.enqueue(device.queue)
    analytic = layout.unpack(grads.flat.numpy())
    start, eps = weights.flat.numpy(), 1e-3

    def kinks(p):  # every layer's pre-activation signs (and ReLU6's upper kink)
        current, marks = x, []
        for i, g in enumerate(CHAIN):
            current, z = conv_forward(current, p[f"w{i}"], p[f"b{i}"], g)
            marks.append(np.sign(z))
            marks.append(np.sign(z - 6))
        return marks

    for name in layout.shapes:
        checked = 0
        for flat in rng.permutation(int(np.prod(layout.shapes[name])))[:8]:
            values, marks = [], []
            for step in (eps, -eps):
                probe = {k: v.copy() for k, v in params.items()}
                probe[name].ravel()[flat] += step
                marks.append(kinks(probe))
                weights.flat.write(layout.pack(probe))
                forward.enqueue(device.queue)
                values.append(float((forward.logits.numpy().astype(np.float64) * r).sum()))
            weights.flat.write(start)
            if any(not np.array_equal(a, b) for a, b in zip(*marks)):
                continue
            numeric = (values[0] - values[1]) / (2 * eps)
            kernel = analytic[name].ravel()[flat]
            assert abs(numeric - kernel) <= 2e-2 + 2e-2 * abs(numeric), \
                f"{name}[{flat}]: finite difference {numeric:.5f}, kernel {kernel:.5f}"
            checked += 1
        assert checked >= 2, f"{name}: too few probes away from kinks"


# A fine-tuned block's shape: the expand writes straight into the depthwise's padded input.
BLOCK = [ConvGeometry(6, 12, 1, activation="relu6"),
         ConvGeometry(12, 12, 5, 1, "same", groups=12, activation="relu6"),
         ConvGeometry(12, 10, 1, activation="relu"),
         ConvGeometry(10, 10, 3, 2, "same", groups=10),
         ConvGeometry(10, 3, 1)]


def test_expand_into_depthwise_padding_matches_reference(device):
    rng = np.random.default_rng(8)
    layout, params, weights, grads, x, forward = _chain(device, BLOCK, rng, 2, 7, 9)
    assert forward.layer_plans[1].padded is forward.activations[0]
    assert forward.layer_plans[3].padded is forward.activations[2]
    _check_against_reference(device, BLOCK, rng, layout, params, weights, grads, x, forward)
