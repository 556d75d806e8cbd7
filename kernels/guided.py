"""Launchers for guided.cl: a verdict's per-cell probabilities spread over a frame and
refined by the frame's own edges (a colour-guided filter), all on the device.

The filter runs at a working size of WORK_PER_CELL pixels a cell (the frame's size where
that is smaller): whatever the frame's size, it costs the same, and a large image's buffers
stay bounded. Its result is spread over the frame bilinearly, so an outline is followed to
within a working pixel (4 frame pixels on the demo). On the demo, applying the filter's
coefficients to the frame's own pixels instead (He and Sun's "fast guided filter") scored
no better and took 2-5 ms more (docs/pixel-maps.md)."""
from __future__ import annotations

import math

from .image import FramePreprocess
from .runtime import Device, Launch, Plan, Tensor, enough_groups
from .upsample import prepare_upsample

# Working pixels a cell, and at most this many working pixels: on the demo the map scored
# nearly as well at 2 a cell as at 4 or at the frame's own 8 (docs/pixel-maps.md), at half
# and a fifth of the cost; a pixels patch's 2-pixel cells are refined at their own size.
WORK_PER_CELL = 2
WORK_MOST = 120 * 160
# Regularisation of the guide's colour covariance (colours in [0, 1]): a window whose colours
# vary less than about sqrt(EPSILON) = 0.03 keeps the plain bilinear map. Chosen on the demo
# (docs/pixel-maps.md): 3e-4 scored the same, 3e-3 and 1e-2 a little lower.
EPSILON = 1e-3


def working_size(frame_hw, cells_hw, per_cell: int = WORK_PER_CELL,
                 most: int = WORK_MOST) -> tuple[int, int]:
    """(h, w): `per_cell` pixels a cell (fewer, down to 1, where that would make more than
    `most` pixels), at most the frame's own size."""
    fits = math.isqrt(max(1, most // (cells_hw[0] * cells_hw[1])))
    per_cell = max(1, min(per_cell, fits))
    return (min(frame_hw[0], per_cell * cells_hw[0]), min(frame_hw[1], per_cell * cells_hw[1]))


def guided_radius(cells_hw, work_hw) -> int:
    """The filter's window radius in working pixels: one cell's size, so a window spans the
    cells on either side of an edge."""
    return max(1, round(max(work_hw[0] / cells_hw[0], work_hw[1] / cells_hw[1])))


class GuidedSpread(Plan):
    """out (K, H, W) from cells (K, h, w) or (1, K, h, w) and a uint8 RGB frame (H, W, 3),
    uploaded with `upload` or, given as `frame`, a device tensor another plan fills: the
    cells spread bilinearly to the working size, refined there with the frame as guide,
    spread to the frame. Each pixel's K values are in [0, 1] and sum to 1."""

    def __init__(self, device: Device, cells: Tensor, out: Tensor,
                 epsilon: float = EPSILON, radius: int | None = None,
                 per_cell: int = WORK_PER_CELL, frame: Tensor | None = None):
        super().__init__()
        k, h, w = cells.shape[-3:]
        if len(out.shape) != 3 or out.shape[0] != k or cells.size != k * h * w:
            raise ValueError(f"cannot refine cells {cells.shape} into {out.shape}")
        height, width = out.shape[1:]
        work_h, work_w = working_size((height, width), (h, w), per_cell)
        radius = guided_radius((h, w), (work_h, work_w)) if radius is None else radius
        if radius < 1 or not epsilon > 0:
            raise ValueError(f"radius {radius} and epsilon {epsilon} must be positive")
        planes = 9 + 4 * k
        guide = Tensor.empty(device, (1, 3, work_h, work_w))
        spread = Tensor.empty(device, (k, work_h, work_w))
        products = Tensor.empty(device, (planes, work_h, work_w))
        rows = Tensor.empty(device, (planes, work_h, work_w))
        coefficients = Tensor.empty(device, (4 * k, work_h, work_w))
        refined = Tensor.empty(device, (k, work_h, work_w))
        self.scratch += [guide, spread, products, rows, coefficients, refined]
        self.guide = FramePreprocess(device, (height, width, 3), guide, 0.0, 255.0,
                                     frame=frame)
        self.add(self.guide)
        self.add(prepare_upsample(device, spread, cells))
        # The products' box means: along the rows into `rows`, down the columns back into
        # `products`.
        self.add(Launch.prepare(device, "guided", "guided_product_rows", (work_h, planes),
                                _groups((work_h, planes)),
                                [guide, spread, rows, k, work_h, work_w, radius]))
        self.add(Launch.prepare(device, "guided", "box_mean_columns", (work_w, planes),
                                _groups((work_w, planes)),
                                [rows, products, work_h, work_w, radius]))
        per_category = {"CATEGORIES": k}
        self.add(Launch.prepare(device, "guided", "guided_coefficients", (work_w, work_h),
                                _groups((work_w, work_h)),
                                [products, coefficients, work_h, work_w, float(epsilon)],
                                per_category))
        self.add(box_mean(device, coefficients, rows, 4 * k, work_h, work_w, radius))
        self.add(Launch.prepare(device, "guided", "guided_output", (work_w, work_h),
                                _groups((work_w, work_h)),
                                [coefficients, guide, refined, work_h, work_w], per_category))
        self.add(prepare_upsample(device, out, refined))

    def upload(self, frame, queue) -> None:
        """The frame the next enqueue refines by (H, W, 3) uint8 RGB."""
        self.guide.upload(frame, queue)


def box_mean(device: Device, planes: Tensor, scratch: Tensor, count: int, h: int, w: int,
             radius: int) -> Plan:
    """Each of `count` planes (h, w) replaced by its box mean of `radius` (the window
    clipped to the plane), through `scratch` (at least as large)."""
    return Plan([
        Launch.prepare(device, "guided", "box_mean_rows", (h, count), _groups((h, count)),
                       [planes, scratch, h, w, radius]),
        Launch.prepare(device, "guided", "box_mean_columns", (w, count), _groups((w, count)),
                       [scratch, planes, h, w, radius])])


def _groups(grid) -> tuple[int, ...]:
    """Work-groups along the first dimension, enough of them for every thread: left to
    choose, PoCL put a working-size launch (1,260 work-items) in one group, which one thread
    ran while the other slept (the filter 2.07 against 1.40 ms a verdict, two threads)."""
    return enough_groups(grid, (grid[0],) + (1,) * (len(grid) - 1))
