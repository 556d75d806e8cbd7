"""The base's forward-only kernels against their numpy twins: gemm_specialized (every
variant, plain, residual and padded outputs, fixed weights), depthwise_band_forward,
depthwise_small_forward, depthwise_narrow_forward, depthwise_rows_forward and
depthwise_stride2_forward, and expand_depthwise_forward. Outputs start as NaN, so an element a kernel skips shows up; a
padded map's border must stay untouched."""
import numpy as np
import pytest

from closeness import assert_close
from patchloop_kernels import gemm
from patchloop_kernels.conv import ConvGeometry, PaddedMap
from patchloop_kernels.depthwise_bands import DepthwiseBandForward
from patchloop_kernels.expand_depthwise import ExpandDepthwiseForward
from patchloop_kernels.gemm import MatrixView, prepare_gemm, specialized_variants
from patchloop_kernels.runtime import Tensor
from reference.conv_ref import activate, conv_forward


class Pick:
    """A stand-in tuning log that always chooses candidate `index` (the last if fewer)."""

    def __init__(self, index: int):
        self.index = index

    def choose(self, key, candidates, prepare):
        return candidates[min(self.index, len(candidates) - 1)]


def _nan(device, shape):
    return Tensor.from_numpy(device, np.full(shape, np.nan, np.float32))


# Every block, the wide-register ones too, whatever registers the test device has.
BLOCKS = len(specialized_variants(64, None, True))
VARIANTS = range(len(specialized_variants(64, None, True, wide_registers=True)))
# N % 16 of 1, 2, 4 (the last tile's columns summed one by one, in 8, 4, 2 interleaved
# sums over k) with K past and short of a whole round of them.
SHAPES = [(37, 97, 30, 1), (13, 49, 9, 2), (6, 8, 5, 1), (25, 300, 64, 1), (11, 18, 7, 1),
          (20, 36, 13, 1)]
# The wide blocks (no column tail: they slide their last tile) on the shapes that end a block
# short in rows (37, 13 and 6 rows against 8 and 12) and columns (97, 49: 1 and 17 past a
# 32-column tile; 8: under one, packed), over a batch of two: each case is a compile on a
# cold cache, and the suite has ten minutes on two cores.
CASES = [(i,) + shape for i in range(BLOCKS) for shape in SHAPES] + [
    (i,) + shape for i in range(BLOCKS, len(VARIANTS)) for shape in SHAPES[:3]]


@pytest.mark.parametrize("index,m,n,k,batches", CASES)
@pytest.mark.parametrize("fixed", [False, True])
def test_every_specialized_variant_matches_numpy(device, monkeypatch, index, m, n, k,
                                                 batches, fixed):
    """Plain outputs with a residual, and ReLU6 ones, on fixed weights or not."""
    monkeypatch.setattr(gemm, "TUNE_MIN_WORK", 0)
    monkeypatch.setattr(device, "tuning", Pick(index))
    monkeypatch.setattr(device, "wide_registers", True)
    rng = np.random.default_rng(index + 7 * m)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((batches, k, n)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    residual = rng.standard_normal((batches, m, n)).astype(np.float32)
    ta, tb, tbias, tres = (Tensor.from_numpy(device, v) for v in (a, b, bias, residual))
    z = np.einsum("mk,bkn->bmn", a.astype(np.float64), b) + bias[None, :, None]
    for act, res in (("none", tres), ("relu6", None)):
        tc = _nan(device, (batches, m, n))
        prepare_gemm(device, MatrixView(tc, 0, m * n, n), MatrixView(ta, 0, 0, k),
                     MatrixView(tb, 0, k * n, n), m, n, k, batches, bias=tbias, residual=res,
                     activation=act, a_fixed=fixed).enqueue(device.queue)
        expected = activate(z, act) + (residual if res is not None else 0)
        assert_close(tc.numpy(), expected, what=f"variant {index}, {act}")


def test_fixed_weights_with_a_large_b_share_its_panels(device, monkeypatch):
    """A fixed-weight GEMM whose B passes SHARED_PANEL_BYTES: every row tile in one
    work-group (gemm_specialized._sharing_panels), every output element written."""
    from patchloop_kernels import gemm_specialized
    monkeypatch.setattr(device, "tuning", Pick(0))
    rng = np.random.default_rng(3)
    m, k, n = 13, 33, 8003
    assert 4 * k * n > gemm_specialized.SHARED_PANEL_BYTES
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    tc = _nan(device, (m, n))
    plan = prepare_gemm(device, MatrixView(tc, 0, 0, n),
                        MatrixView(Tensor.from_numpy(device, a), 0, 0, k),
                        MatrixView(Tensor.from_numpy(device, b), 0, 0, n), m, n, k,
                        bias=Tensor.from_numpy(device, bias), activation="relu6",
                        a_fixed=True)
    launch = plan.launches[-1]
    assert launch.local_size[1] == launch.global_size[1], "row tiles split across groups"
    plan.enqueue(device.queue)
    assert_close(tc.numpy(), activate(a.astype(np.float64) @ b + bias[:, None], "relu6"),
                 what="large B, fixed weights")


MAPS = [(9, 13, 5, 2), (7, 7, 3, 1), (15, 20, 3, 1), (4, 12, 5, 1)]


# The wide blocks on a stride-2 map and a 7x7 one (a row boundary inside every tile).
@pytest.mark.parametrize("index,h,w,kernel,stride", [
    (i,) + m for i in range(BLOCKS) for m in MAPS] + [
    (i,) + m for i in range(BLOCKS, len(VARIANTS)) for m in MAPS[:2]])
def test_specialized_writes_inside_a_padded_map(device, monkeypatch, index, h, w, kernel,
                                                stride):
    """An expand writing straight into its depthwise reader's padded input: every inside
    element written, the border left as it was."""
    monkeypatch.setattr(gemm, "TUNE_MIN_WORK", 0)
    monkeypatch.setattr(device, "tuning", Pick(index))
    monkeypatch.setattr(device, "wide_registers", True)
    rng = np.random.default_rng(index + h)
    m, k = 11, 6
    dw = ConvGeometry(m, m, kernel, stride, "same" if stride == 2 else kernel // 2, groups=m)
    top, left, hp, wp = PaddedMap.layout(dw, h, w)
    a = rng.standard_normal((m, k)).astype(np.float32)
    x = rng.standard_normal((k, h * w)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    out = _nan(device, (m * hp * wp,))
    prepare_gemm(device, MatrixView(out, 0, m * hp * wp, hp * wp),
                 MatrixView(Tensor.from_numpy(device, a), 0, 0, k),
                 MatrixView(Tensor.from_numpy(device, x), 0, k * h * w, h * w), m, h * w, k,
                 bias=Tensor.from_numpy(device, bias), activation="relu6",
                 c_padding=(w, wp, top, left), a_fixed=True).enqueue(device.queue)
    got = out.numpy().reshape(m, hp, wp)
    inside = got[:, top:top + h, left:left + w]
    expected = activate(a.astype(np.float64) @ x + bias[:, None], "relu6").reshape(m, h, w)
    assert_close(inside, expected, what=f"variant {index}, inside")
    border = np.ones((hp, wp), bool)
    border[top:top + h, left:left + w] = False
    assert np.isnan(got[:, border]).all(), "a border element was written"


def _padded_input(device, g, x):
    """x (1, C, H, W) in a zero-bordered PaddedMap tensor, as a producer leaves it."""
    _, c, h, w = x.shape
    top, left, hp, wp = PaddedMap.layout(g, h, w)
    tensor = PaddedMap.tensor(device, g, 1, h, w, zeroed=True)
    flat = np.zeros(tensor.size, np.float32)
    flat[:c * hp * wp].reshape(c, hp, wp)[:, top:top + h, left:left + w] = x[0]
    tensor.write(flat)
    return tensor


def _depthwise_case(rng, c, h, w, kernel, stride):
    """A random depthwise convolution (ReLU6, the base's padding) and its numpy result:
    (geometry, x, weight, bias, expected)."""
    g = ConvGeometry(c, c, kernel, stride, "same" if stride == 2 else kernel // 2, groups=c,
                     activation="relu6")
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    weight = rng.standard_normal(g.weight_shape).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    expected, _ = conv_forward(x, weight, bias, g)
    return g, x, weight, bias, expected


@pytest.mark.parametrize("c,h,w,kernel,stride", [
    (5, 9, 13, 3, 1), (4, 15, 20, 5, 1), (3, 7, 7, 5, 1), (6, 14, 14, 5, 2), (2, 17, 31, 3, 2),
    (3, 5, 6, 3, 1), (4, 30, 41, 5, 2),
    # depthwise_narrow_forward's (rows of 4 to 8, stride 1): odd and even widths, a kernel
    # wider than the map, two rows only
    (5, 7, 7, 3, 1), (4, 8, 4, 5, 1), (6, 9, 6, 7, 1), (2, 5, 5, 9, 1), (3, 2, 8, 3, 1),
    # depthwise_rows_forward's (rows of 8 to 40, stride 1): 1 to 5 float8s a row, rows
    # ending 1 to 7 lanes into their last float8, bands that overrun the map
    (3, 14, 14, 5, 1), (2, 6, 8, 3, 1), (2, 11, 9, 7, 1), (3, 8, 10, 5, 1), (2, 28, 28, 5, 1),
    (2, 5, 33, 5, 1), (2, 30, 40, 3, 1),
    # and wider rows of whole 16-float segments, on a plain input
    (2, 24, 48, 3, 1), (3, 12, 112, 5, 1),
    # depthwise_stride2_forward's (rows of 8 to 32): the SAME padding's odd pixel on either
    # side, output rows narrower than a float8 (a whole plane a work-item) and wider
    (3, 14, 14, 5, 2), (2, 31, 32, 5, 2), (3, 28, 28, 3, 2), (2, 15, 20, 5, 2),
    (2, 9, 8, 3, 2), (2, 17, 25, 7, 2)])
@pytest.mark.parametrize("blocks", [1, 64])
def test_depthwise_bands_match_reference(device, c, h, w, kernel, stride, blocks):
    """Bands of one row or of many, from a plain input (padded in private memory on small
    maps, by a padding pass on larger ones) or a padded one."""
    rng = np.random.default_rng(c * h + w)
    g, x, weight, bias, expected = _depthwise_case(rng, c, h, w, kernel, stride)
    tw, tb = Tensor.from_numpy(device, weight), Tensor.from_numpy(device, bias)
    y = _nan(device, expected.shape)
    DepthwiseBandForward(device, g, Tensor.from_numpy(device, x), tw, tb, y,
                         blocks=blocks).enqueue(device.queue)
    assert_close(y.numpy(), expected, what="plain input")
    y = _nan(device, expected.shape)
    DepthwiseBandForward(device, g, _padded_input(device, g, x), tw, tb, y,
                         x_padded=(1, c, h, w), blocks=blocks).enqueue(device.queue)
    assert_close(y.numpy(), expected, what="padded input")


@pytest.mark.parametrize("c,h,w,kernel,stride", [(3, 7, 7, 5, 1), (2, 14, 14, 3, 1),
                                                 (2, 15, 20, 5, 1), (3, 14, 14, 5, 2)])
def test_depthwise_output_planes_spaced_apart(device, c, h, w, kernel, stride):
    """The register kernels' output planes spaced to whole float8s (for the 1x1 GEMM reading
    them): every plane's map is written where it belongs."""
    rng = np.random.default_rng(h + w)
    g, x, weight, bias, expected = _depthwise_case(rng, c, h, w, kernel, stride)
    oh, ow = expected.shape[2:]
    plane = -(-oh * ow // 8) * 8
    flat = _nan(device, (c * plane,))
    y = Tensor(device, (1, c, oh, ow), buffer=flat.buffer)
    tx, tw, tb = (Tensor.from_numpy(device, v) for v in (x, weight, bias))
    DepthwiseBandForward(device, g, tx, tw, tb, y, y_plane=plane).enqueue(device.queue)
    got = flat.numpy().reshape(c, plane)[:, :oh * ow].reshape(expected.shape)
    assert_close(got, expected, what=f"planes {plane} apart")


@pytest.mark.parametrize("c_in,c_exp,h,w,kernel", [
    (16, 96, 24, 32, 3), (5, 13, 17, 19, 5), (3, 8, 16, 16, 3), (7, 12, 21, 40, 5)])
def test_expand_depthwise_matches_the_two_apart(device, c_in, c_exp, h, w, kernel):
    """Odd and even sizes (the SAME padding's odd pixel on either side), channel counts that
    fill no whole group, bands past the last row."""
    rng = np.random.default_rng(c_exp * h)
    expand = ConvGeometry(c_in, c_exp, 1, activation="relu6")
    dw = ConvGeometry(c_exp, c_exp, kernel, 2, "same", groups=c_exp, activation="relu6")
    x = rng.standard_normal((1, c_in, h, w)).astype(np.float32)
    w1 = (rng.standard_normal(expand.weight_shape) * 0.7).astype(np.float32)
    b1 = rng.standard_normal(c_exp).astype(np.float32)
    w2 = rng.standard_normal(dw.weight_shape).astype(np.float32)
    b2 = rng.standard_normal(c_exp).astype(np.float32)
    mid, _ = conv_forward(x, w1, b1, expand)
    expected, _ = conv_forward(mid.astype(np.float32), w2, b2, dw)
    y = _nan(device, expected.shape)
    ExpandDepthwiseForward(device, expand, dw, *(Tensor.from_numpy(device, v)
                                                 for v in (x, w1, b1, w2, b2)),
                           y).enqueue(device.queue)
    assert_close(y.numpy(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("c,h,w,kernel", [(3, 24, 32, 3), (2, 17, 21, 3), (4, 19, 40, 5),
                                          (1, 16, 16, 3)])
def test_im2col_stride2_matches_the_taps(device, c, h, w, kernel):
    """The stem's columns: every tap of every output position, zero outside the map (SAME
    padding puts the odd pixel at the bottom/right, or on both sides at odd sizes)."""
    from patchloop_kernels.im2col_stride2 import im2col_stride2
    from reference.conv_ref import _taps
    g = ConvGeometry(c, 8, kernel, 2, "same")
    x = np.random.default_rng(h * w).standard_normal((1, c, h, w)).astype(np.float32)
    oh, ow = g.output_size(h, w)
    col = _nan(device, (c * kernel * kernel, oh * ow))
    im2col_stride2(device, g, Tensor.from_numpy(device, x), col).enqueue(device.queue)
    expected = _taps(x, g, oh, ow)[0].reshape(c * kernel * kernel, oh * ow)
    assert_close(col.numpy(), expected, atol=0, rtol=0)
