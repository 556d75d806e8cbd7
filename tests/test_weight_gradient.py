"""weight_gradient.cl/.py (dense weight gradients as a GEMM summed over the batch) against
numpy, on random shapes on both sides of the narrow cut-off, and a finite-difference check of
a wide layer's weight gradient through ConvBackward."""
import numpy as np
import pytest

from patchloop_kernels.conv import ConvGeometry
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels.runtime import Tensor
from patchloop_kernels.weight_gradient import WeightGradient, transpose_launch
from closeness import assert_close
from conv_probe import ConvProbe


def _nan(device, shape):
    return Tensor.from_numpy(device, np.full(shape, np.nan, np.float32))


@pytest.mark.parametrize("batches,rows,cols", [(1, 1, 1), (3, 5, 8), (2, 17, 13), (4, 33, 300)])
def test_transpose_matches_numpy(device, batches, rows, cols):
    x = np.random.default_rng(rows).standard_normal((batches, rows, cols)).astype(np.float32)
    out = _nan(device, (batches, cols, rows))
    transpose_launch(device, out, Tensor.from_numpy(device, x), batches, rows, cols
                     ).enqueue(device.queue)
    assert_close(out.numpy(), x.transpose(0, 2, 1), atol=0, rtol=0, what="transpose")


@pytest.mark.parametrize("seed", range(6))
def test_weight_gradient_matches_numpy(device, seed):
    rng = np.random.default_rng(seed)
    n, hw = int(rng.integers(1, 5)), int(rng.integers(1, 70))
    c_out, rows = (int(v) for v in rng.choice([3, 15, 16, 24, 41, 70], 2))
    dz = rng.standard_normal((n, c_out, hw)).astype(np.float32)
    col = rng.standard_normal((n, rows, hw)).astype(np.float32)
    dw = _nan(device, (c_out, rows))
    WeightGradient(device, dw, Tensor.from_numpy(device, dz), Tensor.from_numpy(device, col),
                   n, c_out, rows, hw).enqueue(device.queue)
    expected = np.einsum("bmk,bnk->mn", dz.astype(np.float64), col)
    assert_close(dw.numpy(), expected, atol=1e-4, rtol=1e-4, what=f"dW {c_out}x{rows}")


# Linear layers: the activation's part of the gradient is conv.cl's, checked in test_conv.
@pytest.mark.parametrize("g", [ConvGeometry(20, 36, 1), ConvGeometry(36, 18, 1),
                               ConvGeometry(16, 24, 3, 2, "same")])
def test_wide_weight_gradient_finite_differences(device, g):
    """d(sum(r * y))/dweight by central differences of the OpenCL forward (float64 sums)."""
    rng = np.random.default_rng(11)
    n, h, w = 2, 5, 6
    x = rng.standard_normal((n, g.c_in, h, w)).astype(np.float32)
    weight = (rng.standard_normal(g.weight_shape) * 0.3).astype(np.float32)
    bias = rng.standard_normal(g.c_out).astype(np.float32)
    oh, ow = g.output_size(h, w)
    r = rng.standard_normal((n, g.c_out, oh, ow))
    probe = ConvProbe(device, g, x, weight, bias, r)
    tx, tw, ty, forward, loss = probe.tx, probe.tw, probe.ty, probe.forward, probe.loss
    loss()
    tdw = _nan(device, weight.shape)
    ConvBackward(device, g, forward, tx, tw, ty, Tensor.from_numpy(device, r.astype(np.float32)),
                 tdw, _nan(device, bias.shape)).enqueue(device.queue)
    analytic, eps = tdw.numpy().ravel(), 1e-2
    for flat in rng.permutation(weight.size)[:12]:
        values = []
        for step in (eps, -eps):
            probe = weight.copy().ravel()
            probe[flat] += step
            tw.write(probe.reshape(weight.shape))
            values.append(loss())
        tw.write(weight)
        numeric = (values[0] - values[1]) / (2 * eps)
        assert abs(numeric - analytic[flat]) <= 2e-2 + 2e-2 * abs(numeric), \
            f"weight[{flat}]: finite difference {numeric:.5f}, kernel {analytic[flat]:.5f}"
