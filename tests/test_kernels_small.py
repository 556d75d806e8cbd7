"""pool, softmax, losses, SGD, the non-finite check and frame preprocessing against numpy."""
import cv2
import numpy as np
import pytest

from closeness import assert_close
from patchloop_kernels.image import FramePreprocess
from patchloop_kernels.loss import MaskedSquaredError, WeightedCrossEntropy
from patchloop_kernels.optim import GradientClip, NonfiniteCount, RunningAverage, SgdStep
from patchloop_kernels.pool import prepare_global_avg_pool, prepare_global_avg_pool_backward
from patchloop_kernels.runtime import Tensor
from patchloop_kernels.softmax import prepare_softmax
from reference import small_ref

SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (3, 4, 1, 9), (1, 1000, 1, 1), (4, 2, 15, 20)]


def nan_tensor(device, shape, dtype=np.float32):
    return Tensor.from_numpy(device, np.full(shape, np.nan, dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_global_avg_pool(device, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = nan_tensor(device, shape[:2])
    prepare_global_avg_pool(device, y, Tensor.from_numpy(device, x)).enqueue(device.queue)
    assert_close(y.numpy(), small_ref.global_avg_pool(x), atol=1e-5)
    dy = np.random.default_rng(2).standard_normal(shape[:2]).astype(np.float32)
    dx = nan_tensor(device, shape)
    prepare_global_avg_pool_backward(device, dx, Tensor.from_numpy(device, dy)).enqueue(device.queue)
    expected = np.broadcast_to(dy[:, :, None, None] / (shape[2] * shape[3]), shape)
    assert_close(dx.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax(device, shape):
    x = (np.random.default_rng(3).standard_normal(shape) * 10).astype(np.float32)
    y = nan_tensor(device, shape)
    prepare_softmax(device, y, Tensor.from_numpy(device, x)).enqueue(device.queue)
    assert_close(y.numpy(), small_ref.softmax(x), atol=1e-6, rtol=1e-5)


def _labels(rng, n, c, h, w, mode):
    if mode == "none":
        return np.full((n, h, w), -1, np.int32)
    if mode == "one-class":
        labels = np.full((n, h, w), -1, np.int32)
        labels[rng.random((n, h, w)) < 0.4] = c - 1
        return labels
    return rng.integers(-1, c, (n, h, w)).astype(np.int32)


@pytest.mark.parametrize("shape,mode", [((2, 3, 5, 7), "mixed"), ((1, 2, 1, 1), "mixed"),
                                        ((3, 4, 6, 5), "none"), ((2, 3, 4, 4), "one-class"),
                                        ((16, 3, 15, 20), "mixed"), ((3, 5, 7, 9), "offsets"),
                                        ((2, 3, 4, 8), "offsets")])
def test_weighted_cross_entropy(device, shape, mode):
    rng = np.random.default_rng(4)
    n, c, h, w = shape
    logits = rng.standard_normal(shape).astype(np.float32) * 3
    labels = _labels(rng, n, c, h, w, "mixed" if mode == "offsets" else mode)
    weights = rng.uniform(0.2, 3, c).astype(np.float32)
    offsets = rng.uniform(-3, 1, c).astype(np.float32) if mode == "offsets" else None
    t_logits = Tensor.from_numpy(device, logits)
    loss = WeightedCrossEntropy(device, t_logits, Tensor.from_numpy(device, labels),
                                Tensor.from_numpy(device, weights),
                                None if offsets is None else Tensor.from_numpy(device, offsets))
    loss.dlogits.write(np.full(shape, np.nan, np.float32))
    loss.enqueue(device.queue)
    ref_loss, ref_grad = small_ref.weighted_cross_entropy(logits, labels, weights, offsets)
    assert_close(loss.loss.numpy()[0], ref_loss, atol=1e-5, rtol=1e-4, what="loss")
    assert_close(loss.dlogits.numpy(), ref_grad, atol=1e-6, rtol=1e-4, what="gradient")
    unlabeled = np.broadcast_to((labels < 0)[:, None], shape)
    assert (loss.dlogits.numpy()[unlabeled] == 0).all()


@pytest.mark.parametrize("offsets", [None, [0.0, -1.1, -0.4]])
def test_weighted_cross_entropy_finite_differences(device, offsets):
    rng = np.random.default_rng(5)
    shape = (2, 3, 3, 4)
    logits = rng.standard_normal(shape).astype(np.float32)
    labels = _labels(rng, 2, 3, 3, 4, "mixed")
    t_logits = Tensor.from_numpy(device, logits)
    loss = WeightedCrossEntropy(device, t_logits, Tensor.from_numpy(device, labels),
                                Tensor.from_numpy(device, np.array([0.5, 1.0, 2.0], np.float32)),
                                None if offsets is None
                                else Tensor.from_numpy(device, np.array(offsets, np.float32)))
    loss.enqueue(device.queue)
    analytic = loss.dlogits.numpy()
    eps = 1e-2
    for flat in rng.choice(logits.size, 10, replace=False):
        values = []
        for step in (eps, -eps):
            probe = logits.copy()
            probe.ravel()[flat] += step
            t_logits.write(probe)
            loss.enqueue(device.queue)
            values.append(float(loss.loss.numpy()[0]))
        numeric = (values[0] - values[1]) / (2 * eps)
        assert abs(numeric - analytic.ravel()[flat]) < 1e-3 + 1e-2 * abs(numeric)


@pytest.mark.parametrize("shape,labeled", [((2, 1, 5, 7), True), ((1, 1, 1, 1), True),
                                           ((3, 1, 4, 4), False)])
def test_masked_squared_error(device, shape, labeled):
    rng = np.random.default_rng(6)
    pred = rng.standard_normal(shape).astype(np.float32)
    targets = (rng.choice([-1, 0, 1], (shape[0],) + shape[2:]) if labeled
               else np.zeros((shape[0],) + shape[2:])).astype(np.float32)
    if labeled:
        targets.ravel()[0] = 1.0  # at least one labeled cell
    t_pred = Tensor.from_numpy(device, pred)
    loss = MaskedSquaredError(device, t_pred, Tensor.from_numpy(device, targets))
    loss.enqueue(device.queue)
    ref_loss, ref_grad = small_ref.masked_squared_error(pred, targets)
    assert_close(loss.loss.numpy()[0], ref_loss, atol=1e-5, rtol=1e-5)
    assert_close(loss.dlogits.numpy(), ref_grad, atol=1e-6, rtol=1e-5)
    if labeled:  # finite differences at a labeled cell
        flat = int(np.flatnonzero(targets.ravel())[0])
        probe = pred.copy()
        values = []
        for step in (1e-2, -1e-2):
            probe.ravel()[flat] = pred.ravel()[flat] + step
            t_pred.write(probe)
            loss.enqueue(device.queue)
            values.append(float(loss.loss.numpy()[0]))
        assert abs((values[0] - values[1]) / 2e-2 - ref_grad.ravel()[flat]) < 1e-3


def test_global_avg_pool_backward_finite_differences(device):
    """d(sum(r * pool(x)))/dx by differences against the backward kernel."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    r = rng.standard_normal((2, 3)).astype(np.float32)
    tx, ty = Tensor.from_numpy(device, x), Tensor.empty(device, (2, 3))
    forward = prepare_global_avg_pool(device, ty, tx)
    dx = Tensor.empty(device, x.shape)
    prepare_global_avg_pool_backward(device, dx, Tensor.from_numpy(device, r)).enqueue(device.queue)
    for flat in rng.choice(x.size, 5, replace=False):
        values = []
        for step in (1e-2, -1e-2):
            probe = x.copy()
            probe.ravel()[flat] += step
            tx.write(probe)
            forward.enqueue(device.queue)
            values.append(float((ty.numpy() * r).sum()))
        assert abs((values[0] - values[1]) / 2e-2 - dx.numpy().ravel()[flat]) < 1e-3


@pytest.mark.parametrize("size", [1, 15, 16, 17, 1000, 44003])
def test_sgd_steps(device, size):
    rng = np.random.default_rng(size)
    w, g = rng.standard_normal(size).astype(np.float32), rng.standard_normal(size).astype(np.float32)
    v = np.zeros(size, np.float32)
    tw, tg, tv = (Tensor.from_numpy(device, a) for a in (w, g, v))
    step = SgdStep(device, tw, tg, tv)
    for lr, momentum, decay in [(0.1, 0.9, 1e-4), (0.05, 0.5, 0.0), (0.2, 0.0, 1e-2)]:
        step.enqueue(device.queue, lr, momentum, decay)
        w, v = small_ref.sgd_step(w.astype(np.float64), v, g, lr, momentum, decay)
    assert_close(tw.numpy(), w, atol=1e-5, rtol=1e-5, what="weights")
    assert_close(tv.numpy(), v, atol=1e-5, rtol=1e-5, what="velocity")


@pytest.mark.parametrize("seed", range(6))
def test_running_average_of_weights(device, seed):
    """Random lengths (around the work-item's 16) and rates; rate 1 copies every element."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 50000)) if seed > 1 else 15 + seed * 2
    average = rng.standard_normal(size).astype(np.float32)
    ta = Tensor.from_numpy(device, average)
    expected = average.astype(np.float64)
    tw = Tensor.from_numpy(device, np.zeros(size, np.float32))
    mix = RunningAverage(device, ta, tw)
    for rate in rng.uniform(0.01, 0.5, 4):
        weights = rng.standard_normal(size).astype(np.float32)
        tw.write(weights, device.queue)
        mix.enqueue(device.queue, rate)
        expected = small_ref.running_average(expected, weights.astype(np.float64), rate)
    assert_close(ta.numpy(), expected, atol=1e-5, rtol=1e-5, what="running average")
    weights = rng.standard_normal(size).astype(np.float32)
    tw.write(weights, device.queue)
    mix.enqueue(device.queue, 1.0)
    assert np.array_equal(ta.numpy(), weights), "rate 1 writes every element"


@pytest.mark.parametrize("seed", range(8))
def test_gradient_clip_scales_the_sgd_step(device, seed):
    """Random lengths (around the first pass's chunk too) and norms on both sides of the
    limit: the factor and the norm match numpy, and SGD applies the factor to g only."""
    rng = np.random.default_rng(seed)
    size = int(rng.choice([1, 1023, 1024, 1025, int(rng.integers(2, 70000))]))
    g = (rng.standard_normal(size) * rng.choice([1e-3, 1.0, 30.0])).astype(np.float32)
    w = rng.standard_normal(size).astype(np.float32)
    v = rng.standard_normal(size).astype(np.float32)
    max_norm = float(rng.uniform(0.1, 20.0))
    tw, tg, tv = (Tensor.from_numpy(device, a) for a in (w, g, v))
    clip = GradientClip(device, tg, max_norm)
    step = SgdStep(device, tw, tg, tv, clip.factor)
    clip.enqueue(device.queue)
    step.enqueue(device.queue, 0.05, 0.9, 1e-3)
    factor, norm = small_ref.clip_factor(g, max_norm)
    assert_close(clip.factor.numpy(), [factor, norm], atol=1e-6, rtol=1e-5, what="factor, norm")
    w_ref, v_ref = small_ref.sgd_step(w.astype(np.float64), v.astype(np.float64), g, 0.05, 0.9,
                                      1e-3, factor)
    assert_close(tw.numpy(), w_ref, atol=1e-5, rtol=1e-5, what="weights")
    assert_close(tv.numpy(), v_ref, atol=1e-5, rtol=1e-5, what="velocity")


def test_gradient_clip_leaves_a_nonfinite_gradient_to_the_check(device):
    g = np.ones(3000, np.float32)
    g[2999] = np.nan
    clip = GradientClip(device, Tensor.from_numpy(device, g), 1.0)
    clip.enqueue(device.queue)
    factor, norm = clip.factor.numpy()
    assert factor == 1.0 and np.isnan(norm)


@pytest.mark.parametrize("size", [1, 255, 256, 257, 5000])
def test_nonfinite_count_finds_tail_nan_and_inf(device, size):
    a = np.zeros(size, np.float32)
    b = np.ones(size + 3, np.float32)
    ta, tb = Tensor.from_numpy(device, a), Tensor.from_numpy(device, b)
    check = NonfiniteCount(device, ta, tb)
    check.enqueue(device.queue)
    assert check.count.numpy()[0] == 0
    a[-1] = np.nan
    b[-1] = np.inf
    ta.write(a)
    tb.write(b)
    check.enqueue(device.queue)
    assert check.count.numpy()[0] == 2


@pytest.mark.parametrize("frame_hw,out_hw,bgr", [((240, 320), (240, 320), False),
                                                 ((480, 640), (240, 320), False),
                                                 ((97, 131), (224, 224), True),
                                                 ((64, 64), (120, 160), False),
                                                 ((1, 1), (3, 5), False)])
def test_frame_preprocess(device, frame_hw, out_hw, bgr):
    rng = np.random.default_rng(8)
    frame = rng.integers(0, 256, frame_hw + (3,), dtype=np.uint8)
    out = nan_tensor(device, (2, 3) + out_hw)
    prep = FramePreprocess(device, frame.shape, out, 127.0, 128.0, batch_index=1, bgr=bgr)
    prep.upload(frame, device.queue)
    prep.enqueue(device.queue)
    got = out.numpy()
    assert np.isnan(got[0]).all(), "batch slot 0 must be left alone"
    assert_close(got[1], small_ref.frame_preprocess(frame, *out_hw, bgr=bgr), atol=1e-4)


def test_numpy_bilinear_matches_opencv():
    rng = np.random.default_rng(9)
    image = rng.random((37, 53, 3)).astype(np.float32)
    for size in [(20, 30), (74, 106), (37, 53), (100, 17)]:
        ours = small_ref.bilinear_resize(image, *size)
        theirs = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        assert_close(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_a_part_of_a_tensor_reads_as_its_slice(device, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 9, 4))
    values = rng.standard_normal(shape).astype(np.float32)
    tensor = Tensor.from_numpy(device, values)
    index = int(rng.integers(0, shape[0]))
    one = tensor.read_part_into(np.empty(shape[1:], np.float32), index * values[0].size)
    assert np.array_equal(one, values[index])
    with pytest.raises(ValueError, match="cannot read"):
        tensor.read_part_into(np.empty(shape[1:], np.float32), values.size - values[0].size + 1)
    with pytest.raises(ValueError, match="cannot read"):
        tensor.read_part_into(np.empty(shape[1:], np.int32), 0)


@pytest.mark.parametrize("seed", range(4))
def test_reads_enqueued_without_waiting_arrive_after_one_wait(device, seed):
    rng = np.random.default_rng(seed)
    tensors, outs, copies = [], [], []
    for _ in range(3):
        shape = tuple(int(v) for v in rng.integers(1, 40, 3))
        values = rng.standard_normal(shape).astype(np.float32)
        tensors.append((Tensor.from_numpy(device, values), values))
        outs.append(np.full(values.size, np.nan, np.float32))
        copies.append(tensors[-1][0].read_later(outs[-1], device.queue))
    copies[-1].wait()   # an in-order queue: the last copy's end is all three's
    for (_, values), out in zip(tensors, outs):
        assert np.array_equal(out, values.ravel())
    tensor, values = tensors[0]
    for wrong in (np.empty(values.size + 1, np.float32), np.empty(values.size, np.int32),
                  np.empty((values.size, 2), np.float32)[:, 0]):
        with pytest.raises(ValueError, match="cannot read"):
            tensor.read_later(wrong, device.queue)
