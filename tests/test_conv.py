"""conv.cl and gemm.cl against their numpy twins, and finite differences of the backward."""
import numpy as np
import pytest

from patchloop_kernels.conv import ConvForward, ConvGeometry
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels.gemm import MatrixView, matmul
from patchloop_kernels.gemm_nt import prepare_gemm_nt
from patchloop_kernels.runtime import Tensor
from reference.conv_ref import conv_backward, conv_forward
from closeness import assert_close
from conv_probe import ConvProbe

# (N, H, W, geometry): odd sizes, batch > 1, depthwise, grouped, dilated, SAME and symmetric
# padding, 1x1 maps, one channel, a kernel larger than its input.
CASES = [
    (2, 7, 9, ConvGeometry(3, 5, 3, 1, 1, 1, 1, "relu")),
    (1, 13, 11, ConvGeometry(4, 6, 3, 2, "same", 1, 1, "relu6")),
    (3, 9, 10, ConvGeometry(6, 6, 5, 2, "same", 1, 6, "relu6")),
    (2, 17, 19, ConvGeometry(5, 5, 3, 1, 1, 1, 5, "none")),
    (2, 8, 12, ConvGeometry(4, 8, 3, 1, 2, 2, 2, "relu")),
    (2, 6, 5, ConvGeometry(7, 9, 1, 1, 0, 1, 1, "relu6")),
    (1, 1, 1, ConvGeometry(1, 1, 1, 1, 0, 1, 1, "none")),
    (2, 1, 1, ConvGeometry(3, 2, 3, 1, 1, 1, 1, "relu")),
    (1, 3, 2, ConvGeometry(1, 3, 5, 1, 2, 1, 1, "none")),
    (2, 15, 20, ConvGeometry(8, 8, 3, 1, 2, 2, 1, "relu")),
    (1, 30, 41, ConvGeometry(5, 5, 5, 1, "same", 1, 5, "relu6")),
    (2, 33, 27, ConvGeometry(3, 3, 3, 2, "same", 1, 3, "relu6")),
    (1, 4, 3, ConvGeometry(2, 2, 5, 2, "same", 1, 2, "none")),
    (1, 12, 16, ConvGeometry(3, 4, 3, 2, "same", 1, 1, "relu6")),
    (4, 5, 7, ConvGeometry(33, 17, 1, 1, 0, 1, 1, "none")),
    (3, 15, 20, ConvGeometry(9, 9, 5, 1, "same", 1, 9, "relu6")),   # fine-tuning's shape
    (2, 11, 13, ConvGeometry(4, 4, 3, 1, 0, 1, 4, "none")),        # depthwise, no padding
    (1, 9, 23, ConvGeometry(3, 3, 5, 2, "same", 1, 3, "relu6")),
    # Implicit GEMMs (conv_implicit.cl): the pixels patch's shape over two weight-gradient
    # chunks, asymmetric SAME padding (k 2 and 4), fewer output channels than a tile's rows.
    (2, 20, 300, ConvGeometry(16, 16, 3, 1, 2, 2, 1, "relu")),
    (1, 6, 9, ConvGeometry(3, 4, 2, 1, "same", 1, 1, "none")),
    (2, 5, 11, ConvGeometry(5, 3, 4, 1, "same", 1, 1, "relu6")),
]


def _random_case(rng, n, h, w, g):
    x = rng.standard_normal((n, g.c_in, h, w)).astype(np.float32)
    weight = (rng.standard_normal(g.weight_shape) * 0.5).astype(np.float32)
    bias = rng.standard_normal(g.c_out).astype(np.float32)
    return x, weight, bias


def _nan_tensor(device, shape):
    # Outputs start as NaN: a kernel that skips an element it owns shows up in the comparison.
    return Tensor.from_numpy(device, np.full(shape, np.nan, np.float32))


@pytest.mark.parametrize("n,h,w,g", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_conv_matches_reference(device, n, h, w, g):
    rng = np.random.default_rng(hash((n, h, w)) % 2**32)
    x, weight, bias = _random_case(rng, n, h, w, g)
    oh, ow = g.output_size(h, w)
    residual = rng.standard_normal((n, g.c_out, oh, ow)).astype(np.float32)
    tx, tw, tb = (Tensor.from_numpy(device, a) for a in (x, weight, bias))
    tr = Tensor.from_numpy(device, residual)
    ty = _nan_tensor(device, (n, g.c_out, oh, ow))
    forward = ConvForward(device, g, tx, tw, tb, ty, residual=tr)
    forward.enqueue(device.queue)
    y_ref, _ = conv_forward(x, weight, bias, g, residual)
    assert_close(ty.numpy(), y_ref, atol=1e-4, rtol=1e-4, what="forward")

    # Backward without the residual (it passes dy through unchanged).
    ty2 = _nan_tensor(device, ty.shape)
    forward = ConvForward(device, g, tx, tw, tb, ty2)
    forward.enqueue(device.queue)
    # Without a residual, depthwise convolutions take their own kernel: check it too.
    assert_close(ty2.numpy(), conv_forward(x, weight, bias, g)[0], atol=1e-4, rtol=1e-4,
                 what="forward without residual")
    dy = rng.standard_normal(ty.shape).astype(np.float32)
    tdy = Tensor.from_numpy(device, dy)
    tdw, tdb, tdx = (_nan_tensor(device, s) for s in (weight.shape, bias.shape, x.shape))
    ConvBackward(device, g, forward, tx, tw, ty2, tdy, tdw, tdb, tdx).enqueue(device.queue)
    y_act = ty2.numpy()
    dx_ref, dw_ref, db_ref = conv_backward(x, weight, y_act, dy, g)
    assert_close(tdx.numpy(), dx_ref, atol=1e-3, rtol=1e-4, what="dx")
    assert_close(tdw.numpy(), dw_ref, atol=1e-3, rtol=1e-4, what="dweight")
    assert_close(tdb.numpy(), db_ref, atol=1e-3, rtol=1e-4, what="dbias")


@pytest.mark.parametrize("g", [ConvGeometry(5, 5, 3, 1, "same", 1, 5, "none"),
                               ConvGeometry(4, 4, 5, 2, "same", 1, 4, "none")])
def test_depthwise_backward_after_a_residual_forward(device, g):
    """With a residual the forward runs the direct kernel and keeps no padded input: the
    backward pads x itself."""
    rng = np.random.default_rng(3)
    n, h, w = 2, 9, 13
    x, weight, bias = _random_case(rng, n, h, w, g)
    oh, ow = g.output_size(h, w)
    residual = rng.standard_normal((n, g.c_out, oh, ow)).astype(np.float32)
    tx, tw, tb, tr = (Tensor.from_numpy(device, a) for a in (x, weight, bias, residual))
    ty = _nan_tensor(device, (n, g.c_out, oh, ow))
    forward = ConvForward(device, g, tx, tw, tb, ty, residual=tr)
    forward.enqueue(device.queue)
    assert forward.padded is None
    dy = rng.standard_normal(ty.shape).astype(np.float32)
    tdw, tdb, tdx = (_nan_tensor(device, s) for s in (weight.shape, bias.shape, x.shape))
    ConvBackward(device, g, forward, tx, tw, ty, Tensor.from_numpy(device, dy), tdw, tdb,
                 tdx).enqueue(device.queue)
    dx_ref, dw_ref, db_ref = conv_backward(x, weight, conv_forward(x, weight, bias, g)[0], dy, g)
    assert_close(tdx.numpy(), dx_ref, atol=1e-3, rtol=1e-4, what="dx")
    assert_close(tdw.numpy(), dw_ref, atol=1e-3, rtol=1e-4, what="dweight")
    assert_close(tdb.numpy(), db_ref, atol=1e-3, rtol=1e-4, what="dbias")


@pytest.mark.parametrize("g", [ConvGeometry(3, 4, 3, 2, "same", 1, 1, "none"),
                               ConvGeometry(4, 4, 3, 1, 2, 2, 4, "none"),
                               ConvGeometry(4, 4, 5, 1, "same", 1, 4, "relu6"),   # depthwise
                               ConvGeometry(3, 3, 3, 2, "same", 1, 3, "none"),
                               ConvGeometry(2, 3, 3, 1, 1, 1, 1, "relu"),
                               ConvGeometry(3, 4, 2, 1, "same", 1, 1, "none"),
                               ConvGeometry(2, 3, 3, 1, 2, 2, 1, "relu")])
def test_conv_backward_finite_differences(device, g):
    """d(sum(r * y))/dparam by central differences of the OpenCL forward, in float64 sums."""
    rng = np.random.default_rng(7)
    n, h, w = 2, 6, 7
    x, weight, bias = _random_case(rng, n, h, w, g)
    oh, ow = g.output_size(h, w)
    r = rng.standard_normal((n, g.c_out, oh, ow))
    probe = ConvProbe(device, g, x, weight, bias, r)
    tx, tw, ty, forward, loss = probe.tx, probe.tw, probe.ty, probe.forward, probe.loss
    loss()
    tdy = Tensor.from_numpy(device, r.astype(np.float32))
    tdw, tdb, tdx = (Tensor.empty(device, s) for s in (weight.shape, bias.shape, x.shape))
    ConvBackward(device, g, forward, tx, tw, ty, tdy, tdw, tdb, tdx).enqueue(device.queue)
    grads = {"x": (x, tx, tdx.numpy()), "weight": (weight, tw, tdw.numpy())}
    eps = 1e-2

    def crosses_kink(name, flat):
        # A ReLU kink inside [-eps, +eps] makes the difference quotient meaningless.
        signs = []
        for step in (-eps, eps):
            args = {"x": x.copy(), "weight": weight.copy()}
            args[name].ravel()[flat] += step
            signs.append(np.sign(conv_forward(args["x"], args["weight"], bias, g)[1]))
        return g.activation != "none" and not np.array_equal(*signs)

    for name, (array, tensor, analytic) in grads.items():
        probes = [f for f in rng.permutation(array.size) if not crosses_kink(name, f)][:6]
        assert len(probes) >= 3
        for flat in probes:
            probe = array.copy().ravel()
            probe[flat] += eps
            tensor.write(probe.reshape(array.shape))
            up = loss()
            probe[flat] -= 2 * eps
            tensor.write(probe.reshape(array.shape))
            down = loss()
            tensor.write(array)
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - analytic.ravel()[flat]) <= 2e-2 + 2e-2 * abs(numeric), \
                f"{name}[{flat}]: finite difference {numeric:.5f}, kernel {analytic.ravel()[flat]:.5f}"


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 5, 3), (33, 17, 9), (64, 300, 112),
                                   (1000, 1, 1280), (17, 31, 1), (9, 16, 40), (37, 97, 300),
                                   (40, 200, 513)])
def test_gemm_matches_numpy(device, m, n, k):
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    assert_close(matmul(device, a, b), a.astype(np.float64) @ b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("m,n,k,batches", [(1, 1, 1, 1), (3, 5, 7, 2), (9, 13, 17, 3),
                                           (64, 576, 300, 2), (33, 7, 8, 1), (2, 4, 16, 5)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_nt_matches_numpy(device, m, n, k, batches, accumulate):
    """C = [C +] sum over batches of A[b] @ B[b]^T: the weight gradients' product."""
    rng = np.random.default_rng(m * 7 + n * 3 + k)
    a = rng.standard_normal((batches, m, k)).astype(np.float32)
    b = rng.standard_normal((batches, n, k)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    ta, tb = Tensor.from_numpy(device, a), Tensor.from_numpy(device, b)
    tc = Tensor.from_numpy(device, c0 if accumulate else np.full((m, n), np.nan, np.float32))
    prepare_gemm_nt(device, MatrixView(tc, 0, 0, n), MatrixView(ta, 0, m * k, k),
                    MatrixView(tb, 0, n * k, k), m, n, k, batches, accumulate).enqueue(device.queue)
    expected = np.einsum("bmk,bnk->mn", a.astype(np.float64), b) + (c0 if accumulate else 0)
    assert_close(tc.numpy(), expected, atol=1e-4, rtol=1e-4, what="gemm_nt")


def test_same_padding_matches_tensorflow_rule():
    g = ConvGeometry(3, 3, 3, 2, "same")
    assert g.pads(224, 224) == (0, 0, 1, 1)
    assert ConvGeometry(3, 3, 5, 2, "same").pads(224, 224) == (1, 1, 2, 2)
    assert g.output_size(225, 31) == (113, 16)


def test_bad_shapes_are_refused(device):
    g = ConvGeometry(3, 4, 3, 1, 1)
    x = Tensor.empty(device, (1, 2, 5, 5))
    with pytest.raises(ValueError, match="input channels"):
        ConvForward(device, g, x, Tensor.empty(device, g.weight_shape),
                    Tensor.empty(device, (4,)), Tensor.empty(device, (1, 4, 5, 5)))
    with pytest.raises(ValueError, match="groups"):
        ConvGeometry(3, 4, 3, groups=2)


@pytest.mark.parametrize("h,w", [(9, 13), (16, 24), (7, 5)])
def test_dense_conv_writes_a_depthwise_input_in_place(device, h, w):
    """expand (1x1) -> depthwise, the expand writing straight into the padded map the
    depthwise reads, gives what the two give apart."""
    from patchloop_kernels.conv import PaddedMap
    rng = np.random.default_rng(h * w)
    expand = ConvGeometry(5, 12, 1, activation="relu6")
    dw = ConvGeometry(12, 12, 5, 2, "same", groups=12, activation="relu6")
    x, w1, b1 = _random_case(rng, 1, h, w, expand)
    _, w2, b2 = _random_case(rng, 1, h, w, dw)
    tx, tw1, tb1, tw2, tb2 = (Tensor.from_numpy(device, a) for a in (x, w1, b1, w2, b2))
    oh, ow = dw.output_size(h, w)
    padded = PaddedMap.tensor(device, dw, 1, h, w, zeroed=True)
    y = _nan_tensor(device, (1, 12, oh, ow))
    ConvForward(device, expand, tx, tw1, tb1, padded,
                y_padded=PaddedMap.layout(dw, h, w)).enqueue(device.queue)
    ConvForward(device, dw, padded, tw2, tb2, y, x_padded=(1, 12, h, w)).enqueue(device.queue)
    mid, _ = conv_forward(x, w1, b1, expand)
    expected, _ = conv_forward(mid.astype(np.float32), w2, b2, dw)
    assert_close(y.numpy(), expected, atol=1e-4, rtol=1e-4)
