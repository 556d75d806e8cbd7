"""guided.cl (a verdict spread over the frame and refined by its edges) against its numpy
twin on random shapes, every output element written; and what it is for: the map's
boundary moves onto the frame's own edge."""
import numpy as np
import pytest

from closeness import assert_close
from patchloop_kernels.guided import GuidedSpread, guided_radius, working_size
from patchloop_kernels.runtime import Tensor
from test_kernels_upsample import upsample_bilinear


def box_mean(planes: np.ndarray, radius: int) -> np.ndarray:
    """Each plane's mean over the (2r+1)^2 window clipped to the plane, in float64."""
    def along(x, axis):
        n = x.shape[axis]
        padded = np.concatenate([np.zeros_like(np.take(x, [0], axis)),
                                 np.cumsum(x, axis)], axis)
        hi = np.minimum(np.arange(n) + radius, n - 1) + 1
        lo = np.maximum(np.arange(n) - radius, 0)
        shape = [1] * x.ndim
        shape[axis] = n
        return (np.take(padded, hi, axis) - np.take(padded, lo, axis)) / (hi - lo).reshape(shape)
    return along(along(planes.astype(np.float64), 1), 2)


def guided_twin(cells: np.ndarray, frame: np.ndarray, work_hw, radius: int,
                epsilon: float) -> np.ndarray:
    """The numpy twin of GuidedSpread, in float64."""
    k = cells.shape[0]
    height, width = frame.shape[:2]
    colour = frame.astype(np.float64).transpose(2, 0, 1) / 255.0          # (3, H, W)
    guide = upsample_bilinear(colour, *work_hw)                           # (3, h, w)
    p = upsample_bilinear(cells, *work_hw)                                # (K, h, w)
    mean_i, mean_p = box_mean(guide, radius), box_mean(p, radius)
    sigma = np.empty((3, 3) + tuple(work_hw))
    for a in range(3):
        for b in range(3):
            sigma[a, b] = box_mean(guide[a:a + 1] * guide[b:b + 1], radius)[0] \
                - mean_i[a] * mean_i[b] + (epsilon if a == b else 0.0)
    sigma = sigma.transpose(2, 3, 0, 1)                                   # (h, w, 3, 3)
    a_planes, b_planes = [], []
    for c in range(k):
        cov = box_mean(guide * p[c], radius) - mean_i * mean_p[c]        # (3, h, w)
        a = np.linalg.solve(sigma, cov.transpose(1, 2, 0)[..., None])[..., 0]
        a = a.transpose(2, 0, 1)
        a_planes.append(a)
        b_planes.append(mean_p[c] - (a * mean_i).sum(axis=0))
    a_mean = box_mean(np.concatenate(a_planes), radius).reshape(k, 3, *work_hw)
    b_mean = box_mean(np.stack(b_planes), radius)
    q = np.clip((a_mean * guide[None]).sum(axis=1) + b_mean, 0.0, 1.0)
    return upsample_bilinear(q / q.sum(axis=0, keepdims=True), height, width)


def run_kernel(device, cells, frame, **options) -> np.ndarray:
    k = cells.shape[0]
    out = Tensor.from_numpy(device, np.full((k,) + frame.shape[:2], np.nan, np.float32))
    plan = GuidedSpread(device, Tensor.from_numpy(device, cells), out, **options)
    plan.upload(frame, device.queue)
    plan.enqueue(device.queue)
    return out.numpy()


def random_frame(rng, height, width) -> np.ndarray:
    """Flat blocks of colour with noise on them: edges, flat windows and texture."""
    blocks = rng.integers(0, 256, (rng.integers(1, 5), rng.integers(1, 5), 3))
    ys = np.arange(height) * blocks.shape[0] // height
    xs = np.arange(width) * blocks.shape[1] // width
    frame = blocks[ys[:, None], xs[None, :]] + rng.normal(0, rng.choice([0, 4, 30]),
                                                          (height, width, 3))
    return np.clip(frame, 0, 255).astype(np.uint8)


def random_cells(rng, k, h, w) -> np.ndarray:
    logits = rng.normal(0, 3, (k, h, w))
    e = np.exp(logits - logits.max(axis=0))
    return (e / e.sum(axis=0)).astype(np.float32)


@pytest.mark.parametrize("seed", range(10))
def test_guided_spread_matches_numpy_on_random_shapes(device, seed):
    rng = np.random.default_rng(seed)
    k, h, w = int(rng.integers(1, 5)), int(rng.integers(1, 12)), int(rng.integers(1, 12))
    height, width = int(rng.integers(1, 90)), int(rng.integers(1, 90))
    # Some frames are larger than the working size, so the coefficients are spread too.
    per_cell = int(rng.integers(1, 6))
    work_hw = working_size((height, width), (h, w), per_cell)
    radius = int(rng.integers(1, 9))
    epsilon = float(rng.choice([1e-3, 1e-2, 0.1]))
    cells, frame = random_cells(rng, k, h, w), random_frame(rng, height, width)
    out = run_kernel(device, cells, frame, epsilon=epsilon, radius=radius,
                     per_cell=per_cell)
    assert np.isfinite(out).all(), "every output element written"
    assert (out >= 0).all() and (out <= 1).all()
    assert_close(out.sum(axis=0), np.ones((height, width)), atol=1e-5, rtol=0,
                 what="a distribution per pixel")
    assert_close(out, guided_twin(cells, frame, work_hw, radius, epsilon), atol=1e-4,
                 rtol=0, what=f"guided {(k, h, w)} -> {(height, width)} via {work_hw}, "
                              f"r {radius}, eps {epsilon}")


def test_the_boundary_moves_onto_the_frames_edge(device):
    # A red object on the left 36 columns, grey background; the cells (8 pixels wide) say
    # object for the first 5 columns of cells, so the bilinear map crosses 0.5 at pixel 40.
    # The filter works at 4 pixels a cell (2 frame pixels each) here: the refined map's
    # boundary is within one frame pixel of the edge.
    height, width, edge = 48, 96, 36
    frame = np.full((height, width, 3), 128, np.uint8)
    frame[:, :edge] = (200, 30, 30)
    cells = np.zeros((2, 6, 12), np.float32)
    cells[1, :, :5] = 1.0
    cells[0] = 1.0 - cells[1]
    plain = upsample_bilinear(cells, height, width).argmax(axis=0)
    refined = run_kernel(device, cells, frame, per_cell=4).argmax(axis=0)
    assert (plain[:, :edge] == 1).all() and (plain[:, edge:40] == 1).all(), \
        "the plain map runs past the edge"
    assert (refined[:, :edge - 1] == 1).all() and (refined[:, edge + 1:] == 0).all(), \
        "the refined map stops at it"


def test_radius_is_a_cell_and_bad_shapes_are_refused(device):
    assert working_size((240, 320), (30, 40)) == working_size((480, 640), (30, 40)) == (60, 80)
    assert working_size((240, 320), (30, 40), 4) == (120, 160)
    assert working_size((240, 320), (120, 160)) == (120, 160), "a pixels patch: its cells"
    assert working_size((20, 30), (15, 20)) == (20, 30), "never over the frame's size"
    assert guided_radius((30, 40), (60, 80)) == 2
    cells = Tensor.empty(device, (3, 4, 5))
    with pytest.raises(ValueError):
        GuidedSpread(device, cells, Tensor.empty(device, (2, 8, 10)))
    with pytest.raises(ValueError):
        GuidedSpread(device, cells, Tensor.empty(device, (3, 8, 10)), epsilon=0.0)
