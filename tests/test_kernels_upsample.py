"""upsample.cl against its numpy twin on random shapes, both variants (a row a work-item,
a pixel a work-item), every output element written."""
import numpy as np
import pytest

from closeness import assert_close
from patchloop_kernels import upsample
from patchloop_kernels.runtime import Tensor
from patchloop_kernels.upsample import VARIANTS, prepare_upsample, source_cells


class Pick:
    """A stand-in tuning log that always chooses `variant`, and counts its calls."""

    def __init__(self, variant: str):
        self.variant, self.calls = variant, 0

    def choose(self, key, candidates, prepare):
        self.calls += 1
        prepare(self.variant)()   # the stand-in run works too
        return self.variant


def upsample_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """The numpy twin, in float64: bilinear between cell centres, clamped at the edges."""
    c, h, w = x.shape
    sy = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    sx = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = sy.astype(int), sx.astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (sy - y0)[:, None], (sx - x0)[None, :]
    x = x.astype(np.float64)
    top = x[:, y0][:, :, x0] + fx * (x[:, y0][:, :, x1] - x[:, y0][:, :, x0])
    bottom = x[:, y1][:, :, x0] + fx * (x[:, y1][:, :, x1] - x[:, y1][:, :, x0])
    return top + fy * (bottom - top)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", range(8))
def test_upsample_matches_numpy_on_random_shapes(device, monkeypatch, seed, variant):
    monkeypatch.setattr(upsample, "TUNE_MIN_OUTPUTS", 0)
    pick = Pick(variant)
    monkeypatch.setattr(device, "tuning", pick)
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 5)), int(rng.integers(1, 20)), int(rng.integers(1, 20))
    height, width = int(rng.integers(1, 200)), int(rng.integers(1, 200))
    x = rng.random((c, h, w)).astype(np.float32)
    y = Tensor.from_numpy(device, np.full((c, height, width), np.nan, np.float32))
    prepare_upsample(device, y, Tensor.from_numpy(device, x)).enqueue(device.queue)
    out = y.numpy()
    assert pick.calls == 1
    assert np.isfinite(out).all(), "every output element written"
    assert_close(out, upsample_bilinear(x, height, width), atol=1e-5, rtol=1e-5,
                 what=f"{variant}: upsample {(c, h, w)} -> {(height, width)}")


def test_the_variants_give_the_same_bits_and_small_maps_are_not_measured(device, monkeypatch):
    """Both kernels sum in the same order (a tuned choice changes only the speed); a map
    under TUNE_MIN_OUTPUTS takes the default without asking the tuning log."""
    rng = np.random.default_rng(11)
    x = Tensor.from_numpy(device, rng.random((1, 3, 15, 20)).astype(np.float32))
    outs = []
    for variant in VARIANTS:
        monkeypatch.setattr(device, "tuning", Pick(variant))
        y = Tensor.from_numpy(device, np.full((1, 5, 61, 83), np.nan, np.float32))
        prepare_upsample(device, y, x, y_channel=1).enqueue(device.queue)
        outs.append(y.numpy())
    assert np.array_equal(outs[0], outs[1], equal_nan=True)
    assert np.isnan(outs[0][0, 0]).all() and np.isnan(outs[0][0, 4]).all(), "others untouched"
    pick = Pick(VARIANTS[-1])
    monkeypatch.setattr(device, "tuning", pick)
    small = Tensor.empty(device, (3, 60, 80))
    prepare_upsample(device, small, x)
    assert pick.calls == 0 and 3 * 60 * 80 < upsample.TUNE_MIN_OUTPUTS


def test_upsample_keeps_cell_centres_and_refuses_bad_shapes(device):
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    y = Tensor.empty(device, (2, 48, 64))
    prepare_upsample(device, y, Tensor.from_numpy(device, x)).enqueue(device.queue)
    out = y.numpy()
    # 16x16 pixels a cell: pixels (7.5, 7.5)... sit on centres; (8, 8) is 1/32 past it.
    assert abs(out[1, 8, 8] - x[1, 0, 0] - (x[1, 0, 1] - x[1, 0, 0]) / 32
               - (x[1, 1, 0] - x[1, 0, 0]) / 32) < 1e-5
    with pytest.raises(ValueError):
        prepare_upsample(device, Tensor.empty(device, (1, 8, 8)), Tensor.from_numpy(device, x))


def test_upsample_into_later_channels_leaves_the_others(device):
    rng = np.random.default_rng(3)
    x = rng.random((3, 5, 7)).astype(np.float32)
    y = Tensor.from_numpy(device, np.full((1, 5, 10, 14), -7.0, np.float32))
    prepare_upsample(device, y, Tensor.from_numpy(device, x), y_channel=2).enqueue(device.queue)
    out = y.numpy()[0]
    assert (out[:2] == -7.0).all(), "channels before are untouched"
    assert_close(out[2:], upsample_bilinear(x, 10, 14), atol=1e-5, rtol=1e-5, what="into")
    with pytest.raises(ValueError):
        prepare_upsample(device, y, Tensor.from_numpy(device, x), y_channel=3)


def test_hypercolumn_stacks_the_fine_map_and_the_spread_coarse_one(device):
    from patchloop_kernels.upsample import prepare_hypercolumn
    rng = np.random.default_rng(5)
    fine = rng.standard_normal((1, 4, 12, 16)).astype(np.float32)
    coarse = rng.standard_normal((1, 6, 6, 8)).astype(np.float32)
    y = Tensor.from_numpy(device, np.full((1, 10, 12, 16), np.nan, np.float32))
    prepare_hypercolumn(device, y, Tensor.from_numpy(device, fine),
                        Tensor.from_numpy(device, coarse)).enqueue(device.queue)
    out = y.numpy()[0]
    assert np.array_equal(out[:4], fine[0]), "the fine map exactly"
    assert_close(out[4:], upsample_bilinear(coarse[0], 12, 16), atol=1e-5, rtol=1e-5,
                 what="the coarse map spread")
    with pytest.raises(ValueError):
        prepare_hypercolumn(device, Tensor.empty(device, (1, 9, 12, 16)),
                            Tensor.from_numpy(device, fine), Tensor.from_numpy(device, coarse))


def test_source_cells_are_the_exact_samples_clamped():
    """Each pixel's cells and fraction against exact rational arithmetic, for every cell
    count up to 32 and output sizes up to 64 (and the frame sizes the maps use)."""
    from fractions import Fraction
    sizes = list(range(1, 65)) + [240, 320, 640, 1080]
    for n in range(1, 33):
        for size in sizes:
            pairs, fractions = source_cells(n, size)
            assert pairs.dtype == np.int32 and fractions.dtype == np.float32
            for p in range(size):
                sample = Fraction((2 * p + 1) * n - size, 2 * size)
                sample = min(max(sample, Fraction(0)), Fraction(n - 1))
                cell = int(sample) if sample < n - 1 else n - 1
                assert tuple(pairs[p]) == (cell, min(cell + 1, n - 1))
                assert fractions[p] == np.float32(float(sample - cell))
