"""Work-group shapes fitted to the device: the launch sites choose groups for PoCL (4096
work-items and more), which a GPU refuses (NVIDIA's OpenCL takes 1024 at most, fewer for a
kernel with many registers) with INVALID_WORK_GROUP_SIZE at the first verdict."""
import numpy as np
import pyopencl as cl

from patchloop_kernels.runtime import Launch, Tensor, fit_work_group
from patchloop_kernels.upsample import prepare_upsample, source_cells

GPU_LIKE = (1024, 1024, 64)


def test_a_group_too_large_is_cut_along_its_largest_side_to_a_divisor():
    assert fit_work_group((28, 51), 1024, GPU_LIKE) == (28, 17)   # the pad pass's 1428
    assert fit_work_group((1, 2000, 1), 1024, GPU_LIKE) == (1, 1000, 1)
    assert fit_work_group((4, 4, 200), 256, GPU_LIKE) == (4, 4, 10)
    assert fit_work_group((64, 4, 1), 4096, (4096, 4096, 4096)) == (64, 4, 1)  # fits: kept
    assert fit_work_group((61, 8), 256, GPU_LIKE) == (1, 8)   # a prime side: 1 divides it


def test_fitted_groups_keep_every_limit_and_add_no_padding_on_random_shapes():
    rng = np.random.default_rng(0)
    for _ in range(500):
        dims = int(rng.integers(1, 4))
        local = tuple(int(s) for s in rng.integers(1, 5000, dims))
        limit = int(rng.choice([1, 64, 256, 1024, 4096]))
        per_dimension = tuple(int(s) for s in rng.choice([1, 64, 1024, 4096], dims))
        fitted = fit_work_group(local, limit, per_dimension)
        assert len(fitted) == dims
        assert np.prod(fitted) <= limit
        assert all(1 <= f <= m for f, m in zip(fitted, per_dimension))
        # Each side divides the side asked for: a global size in whole asked groups is in
        # whole fitted groups too, so the launch pads no work-item it did not before.
        assert all(s % f == 0 for f, s in zip(fitted, local))


def test_a_launch_asking_for_more_than_any_device_takes_runs_and_computes_the_same(device):
    rng = np.random.default_rng(3)
    x = Tensor.from_numpy(device, rng.random((3, 5, 7)).astype(np.float32))
    expected = Tensor.from_numpy(device, np.full((3, 37, 41), np.nan, np.float32))
    prepare_upsample(device, expected, x).enqueue(device.queue)

    y = Tensor.from_numpy(device, np.full((3, 37, 41), np.nan, np.float32))
    tables = [Tensor.from_numpy(device, a) for a in (*source_cells(5, 37), *source_cells(7, 41))]
    launch = Launch.prepare(device, "upsample", "upsample_bilinear", (41, 37, 3),
                            (1 << 15, 8, 1), [y, 0, x, *tables, 5, 7, 37, 41])
    limit = launch.kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE,
                                              device.device)
    assert np.prod(launch.local_size) <= limit
    assert all(g % s == 0 for g, s in zip(launch.global_size, launch.local_size))
    launch.enqueue(device.queue)
    assert np.array_equal(y.numpy(), expected.numpy())
