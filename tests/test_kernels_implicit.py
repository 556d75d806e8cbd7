"""conv_implicit.cl (dense stride-1 convolutions that keep their size, as implicit GEMMs)
against the numpy twin in reference/conv_ref.py, on random shapes."""
import numpy as np
import pytest

from patchloop_kernels.conv import ConvForward, ConvGeometry
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels import conv_implicit, conv_implicit_weight
from patchloop_kernels.conv_implicit import fits
from patchloop_kernels.runtime import Tensor
from reference.conv_ref import conv_backward, conv_forward
from closeness import assert_close


def _nan(device, shape):
    return Tensor.from_numpy(device, np.full(shape, np.nan, np.float32))


def _draw(rng):
    """A random geometry that takes the implicit path, and a map size and batch for it."""
    g = ConvGeometry(int(rng.integers(1, 21)), int(rng.integers(1, 21)),
                     int(rng.choice([2, 3, 4, 5])), 1, "same", int(rng.integers(1, 3)),
                     activation=str(rng.choice(["none", "relu", "relu6"])))
    return g, int(rng.integers(1, 4)), int(rng.integers(1, 31)), int(rng.integers(1, 41))


@pytest.mark.parametrize("seed", range(8))
def test_random_shapes_match_reference(device, seed):
    rng = np.random.default_rng(seed)
    g, n, h, w = _draw(rng)
    assert fits(g, h, w)
    x = rng.standard_normal((n, g.c_in, h, w)).astype(np.float32)
    weight = (rng.standard_normal(g.weight_shape) * 0.5).astype(np.float32)
    bias = rng.standard_normal(g.c_out).astype(np.float32)
    residual = rng.standard_normal((n, g.c_out, h, w)).astype(np.float32)
    tx, tw, tb, tr = (Tensor.from_numpy(device, a) for a in (x, weight, bias, residual))
    ty = _nan(device, (n, g.c_out, h, w))
    ConvForward(device, g, tx, tw, tb, ty, tr).enqueue(device.queue)
    assert_close(ty.numpy(), conv_forward(x, weight, bias, g, residual)[0], atol=1e-4,
                 rtol=1e-4, what=f"forward {g} on {n}x{h}x{w}")

    ty2 = _nan(device, ty.shape)
    forward = ConvForward(device, g, tx, tw, tb, ty2)
    assert forward.implicit is not None
    forward.enqueue(device.queue)
    dy = rng.standard_normal(ty.shape).astype(np.float32)
    tdw, tdb, tdx = (_nan(device, s) for s in (weight.shape, bias.shape, x.shape))
    ConvBackward(device, g, forward, tx, tw, ty2, Tensor.from_numpy(device, dy), tdw, tdb,
                 tdx).enqueue(device.queue)
    dx_ref, dw_ref, db_ref = conv_backward(x, weight, ty2.numpy(), dy, g)
    assert_close(tdx.numpy(), dx_ref, atol=1e-3, rtol=1e-4, what="dx")
    assert_close(tdw.numpy(), dw_ref, atol=1e-3, rtol=1e-4, what="dweight")
    assert_close(tdb.numpy(), db_ref, atol=1e-3, rtol=1e-4, what="dbias")


def test_writes_the_inside_of_a_padded_map(device):
    """y_padded: the output lands inside a larger map (a depthwise convolution's padded
    input); the border is left as it was."""
    rng = np.random.default_rng(11)
    g = ConvGeometry(4, 6, 3, 1, 1, activation="relu6")
    n, h, w, top, left, hp, wp = 2, 9, 17, 2, 1, 13, 20
    x = rng.standard_normal((n, 4, h, w)).astype(np.float32)
    weight = rng.standard_normal(g.weight_shape).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    y = Tensor.from_numpy(device, np.zeros((n, 6, hp, wp), np.float32))
    ConvForward(device, g, *(Tensor.from_numpy(device, a) for a in (x, weight, bias)), y,
                y_padded=(top, left, hp, wp)).enqueue(device.queue)
    out = y.numpy()
    assert_close(out[:, :, top:top + h, left:left + w], conv_forward(x, weight, bias, g)[0])
    out[:, :, top:top + h, left:left + w] = 0
    assert not out.any(), "the border was written"


def test_which_convolutions_take_the_implicit_path():
    assert fits(ConvGeometry(16, 16, 3, 1, 2, 2), 120, 160)
    assert fits(ConvGeometry(3, 4, 2, 1, "same"), 5, 5)
    assert not fits(ConvGeometry(3, 32, 3, 2, "same"), 224, 224)   # stride 2 (the stem)
    assert not fits(ConvGeometry(8, 8, 1), 10, 10)                 # 1x1: a plain GEMM
    assert not fits(ConvGeometry(8, 8, 3, 1, 0), 10, 10)           # shrinks the map
    assert not fits(ConvGeometry(8, 8, 3, 1, 1, groups=8), 10, 10)  # depthwise


class _Pick:
    """A stand-in tuning log that always chooses candidate `index` (the last if fewer)."""

    def __init__(self, index: int):
        self.index = index

    def choose(self, key, candidates, prepare):
        prepare(candidates[min(self.index, len(candidates) - 1)])  # the runner builds too
        return candidates[min(self.index, len(candidates) - 1)]


@pytest.mark.parametrize("index", range(max(len(conv_implicit.VARIANTS),
                                            len(conv_implicit_weight.WEIGHT_BLOCKS))))
def test_every_tuned_block_matches_reference(device, monkeypatch, index):
    """Each forward/input-gradient register block and each weight-gradient block, on a shape
    whose sizes are not multiples of any block (odd channels, taps, positions), the weight
    gradient summed over many chunks."""
    monkeypatch.setattr(conv_implicit, "TUNE_MIN_WORK", 0)
    monkeypatch.setattr(conv_implicit_weight, "TUNE_MIN_WORK", 0)
    # Chunks of 60 positions: several per sample, each with a tail that is no whole float8.
    monkeypatch.setattr(conv_implicit_weight, "WEIGHT_CHUNK", 60)
    monkeypatch.setattr(device, "tuning", _Pick(index))
    rng = np.random.default_rng(100 + index)
    g = ConvGeometry(5, 7, 3, 1, 2, 2, activation="relu")
    n, h, w = 2, 11, 19
    x = rng.standard_normal((n, 5, h, w)).astype(np.float32)
    weight = (rng.standard_normal(g.weight_shape) * 0.5).astype(np.float32)
    bias = rng.standard_normal(7).astype(np.float32)
    tx, tw, tb = (Tensor.from_numpy(device, a) for a in (x, weight, bias))
    ty = _nan(device, (n, 7, h, w))
    forward = ConvForward(device, g, tx, tw, tb, ty)
    forward.enqueue(device.queue)
    assert_close(ty.numpy(), conv_forward(x, weight, bias, g)[0], what=f"forward {index}")
    dy = rng.standard_normal(ty.shape).astype(np.float32)
    tdw, tdb, tdx = (_nan(device, s) for s in (weight.shape, bias.shape, x.shape))
    ConvBackward(device, g, forward, tx, tw, ty, Tensor.from_numpy(device, dy), tdw, tdb,
                 tdx).enqueue(device.queue)
    dx_ref, dw_ref, _ = conv_backward(x, weight, ty.numpy(), dy, g)
    assert_close(tdx.numpy(), dx_ref, atol=1e-3, rtol=1e-4, what=f"dx {index}")
    assert_close(tdw.numpy(), dw_ref, atol=1e-3, rtol=1e-4, what=f"dweight {index}")
