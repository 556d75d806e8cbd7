"""standardize.cl against its numpy twins, on random shapes: the per-channel affine, and the
fold of a first layer trained on standardised inputs (and its inverse)."""
import numpy as np
import pytest

from closeness import assert_close
from patchloop_kernels.runtime import Tensor
from patchloop_kernels.standardize import ChannelAffine, FoldStandardization
from reference import small_ref


@pytest.mark.parametrize("seed", range(12))
def test_channel_affine_matches_numpy(device, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in (rng.integers(1, 5), rng.integers(1, 160),
                                   rng.integers(1, 17), rng.integers(1, 23)))
    x = (rng.standard_normal(shape) * 5 + 3).astype(np.float32)
    scale = rng.uniform(0.05, 3, shape[1]).astype(np.float32)
    shift = rng.standard_normal(shape[1]).astype(np.float32)
    t = Tensor.from_numpy(device, x)
    ChannelAffine(device, t, Tensor.from_numpy(device, scale),
                  Tensor.from_numpy(device, shift)).enqueue(device.queue)
    assert_close(t.numpy(), small_ref.channel_affine(x, scale, shift), atol=1e-5, rtol=1e-5,
                 what=f"affine {shape}")


@pytest.mark.parametrize("seed", range(12))
def test_fold_and_unfold_match_numpy_at_any_offsets(device, seed):
    """Weights and bias anywhere in two flat buffers; every element of the written spans is
    written (they start as NaN), nothing outside them is touched, and unfold undoes fold."""
    rng = np.random.default_rng(seed)
    outputs, inputs = int(rng.integers(1, 70)), int(rng.integers(1, 200))
    w = rng.standard_normal((outputs, inputs)).astype(np.float32)
    b = rng.standard_normal(outputs).astype(np.float32)
    scale = rng.uniform(0.05, 3, inputs).astype(np.float32)
    shift = rng.standard_normal(inputs).astype(np.float32)
    src_at = (int(rng.integers(0, 40)), 0)
    src_at = (src_at[0], src_at[0] + w.size + int(rng.integers(0, 9)))
    src = np.full(src_at[1] + outputs + 5, np.nan, np.float32)
    src[src_at[0]:src_at[0] + w.size] = w.ravel()
    src[src_at[1]:src_at[1] + outputs] = b
    gap, lead = int(rng.integers(0, 9)), int(rng.integers(0, 30))
    if rng.random() < 0.5:   # bias before the weights
        out_at = (lead + outputs + gap, lead)
    else:
        out_at = (lead, lead + w.size + gap)
    out_size = max(out_at[0] + w.size, out_at[1] + outputs) + 3
    t_scale, t_shift = Tensor.from_numpy(device, scale), Tensor.from_numpy(device, shift)
    t_src = Tensor.from_numpy(device, src)
    for unfold, twin in ((False, small_ref.fold_standardization),
                         (True, small_ref.unfold_standardization)):
        t_out = Tensor.from_numpy(device, np.full(out_size, 7.0, np.float32))
        FoldStandardization(device, t_out, out_at, t_src, src_at, t_scale, t_shift, outputs,
                            unfold).enqueue(device.queue)
        got = t_out.numpy()
        want_w, want_b = twin(w.astype(np.float64), b.astype(np.float64), scale, shift)
        assert_close(got[out_at[0]:out_at[0] + w.size].reshape(w.shape), want_w, atol=1e-4,
                     rtol=1e-4, what="weights")
        assert_close(got[out_at[1]:out_at[1] + outputs], want_b, atol=1e-4, rtol=1e-4,
                     what="bias")
        untouched = np.ones(out_size, bool)
        untouched[out_at[0]:out_at[0] + w.size] = False
        untouched[out_at[1]:out_at[1] + outputs] = False
        assert np.all(got[untouched] == 7.0)
    # The round trip: fold, then unfold, gives the weights back.
    folded = Tensor.from_numpy(device, np.zeros(w.size + outputs, np.float32))
    back = Tensor.from_numpy(device, np.zeros(w.size + outputs, np.float32))
    FoldStandardization(device, folded, (0, w.size), t_src, src_at, t_scale, t_shift,
                        outputs).enqueue(device.queue)
    FoldStandardization(device, back, (0, w.size), folded, (0, w.size), t_scale, t_shift,
                        outputs, unfold=True).enqueue(device.queue)
    assert_close(back.numpy()[:w.size].reshape(w.shape), w, atol=1e-4, rtol=1e-4, what="w")
    assert_close(back.numpy()[w.size:], b, atol=1e-3, rtol=1e-4, what="b")


def test_fold_refuses_spans_outside_the_buffers_and_one_buffer_for_both(device):
    scale = Tensor.from_numpy(device, np.ones(3, np.float32))
    shift = Tensor.from_numpy(device, np.zeros(3, np.float32))
    flat = Tensor.from_numpy(device, np.zeros(20, np.float32))
    other = Tensor.from_numpy(device, np.zeros(20, np.float32))
    with pytest.raises(ValueError):
        FoldStandardization(device, other, (0, 15), flat, (10, 0), scale, shift, 4)
    with pytest.raises(ValueError):
        FoldStandardization(device, flat, (0, 12), flat, (0, 12), scale, shift, 4)
    with pytest.raises(ValueError):
        ChannelAffine(device, Tensor.from_numpy(device, np.zeros((1, 4, 2, 2), np.float32)),
                      scale, shift)
