"""Launchers for gemm.cl: the register-blocked matrix product behind every dense layer."""
from __future__ import annotations

from dataclasses import dataclass

from .runtime import Device, Launch, Plan, Tensor

TILE_M, TILE_VECTORS = 8, 2
TILE_N = 8 * TILE_VECTORS
LONG_K, LONG_K_VECTORS = 256, 3
# Work-items of one group run as a loop in one PoCL thread; a group of 16 row tiles over one
# column panel of B keeps that panel in cache (POCL_NOTES.md: 28-59 vs 100-122 GFLOP/s).
GROUP_ROWS = 16
NT_ROWS, NT_COLS = 2, 4  # gemm_nt_forward's NT_M and NT_N
GROUP_WORK = 1 << 17  # multiply-adds a work-group should hold (see _group_shape)
# Packing B costs one pass over it; it pays once this many rows of C reuse each panel.
PACK_MIN_ROWS = 32

ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 2}


@dataclass(frozen=True)
class MatrixView:
    """Where a batch of matrices sits in a tensor: element (r, c) of batch b is at
    offset + b*batch_stride + r*row_stride + c*col_stride."""

    tensor: Tensor
    offset: int
    batch_stride: int
    row_stride: int
    col_stride: int = 1


def activation_code(name: str) -> int:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]


def _check_fits(view: MatrixView, batches: int, rows: int, cols: int, what: str) -> None:
    last = (view.offset + (batches - 1) * view.batch_stride + (rows - 1) * view.row_stride
            + (cols - 1) * view.col_stride)
    if view.offset < 0 or last >= view.tensor.size:
        raise ValueError(f"gemm: {what} ({batches}x{rows}x{cols}) does not fit its tensor "
                         f"of {view.tensor.size} elements")


def prepare_gemm(device: Device, c: MatrixView, a: MatrixView, b: MatrixView,
                 m: int, n: int, k: int, batches: int = 1, *, reduce_batches: bool = False,
                 bias: Tensor | None = None, residual: Tensor | None = None,
                 residual_offset: int = 0, accumulate: bool = False,
                 activation: str = "none", pack_b: bool | None = None,
                 c_padding: tuple[int, int, int, int] | None = None) -> Plan:
    """C = act(accumulate*C + A@B + bias) + residual, for `batches` matrices (or their sum).

    pack_b: copy B into contiguous column panels first (see pack_panels in gemm.cl). By
    default B is packed when it is at least one panel wide and enough row tiles reuse it.
    c_padding: (width, padded width, top, left): C's rows are maps of that width stored
    inside zero borders (a depthwise convolution's padded input); C.row_stride is a padded
    map's size. Its border is the caller's to zero, once."""
    if b.col_stride != 1 or c.col_stride != 1:
        raise ValueError("gemm: B and C must be contiguous along their columns")
    _check_fits(a, batches, m, k, "A")
    _check_fits(b, batches, k, n, "B")
    if c_padding is None:
        _check_fits(c, 1 if reduce_batches else batches, m, n, "C")
    elif residual is not None or reduce_batches or n < 8 * tile_vectors(k, n):
        raise ValueError("gemm: a padded C takes no residual, no batch sum, and a wide B")
    if bias is not None and bias.size < m:
        raise ValueError(f"gemm: bias has {bias.size} elements, needs {m}")
    vectors = tile_vectors(k * (batches if reduce_batches else 1), n)
    tile_n = 8 * vectors
    if pack_b is None:
        pack_b = (n >= tile_n and m >= PACK_MIN_ROWS) or c_padding is not None
    defines = {"TM": TILE_M, "NV": vectors}
    panels = -(-n // tile_n)
    grid = (panels, -(-m // TILE_M), 1 if reduce_batches else batches)
    local = _group_shape(panels, grid[1], k * (batches if reduce_batches else 1), tile_n)
    tail = [bias if bias is not None else c.tensor, bias is not None,
            residual if residual is not None else c.tensor, residual_offset, residual is not None,
            m, n, k, batches, reduce_batches, accumulate, activation_code(activation)]
    tail += list(c_padding) if c_padding is not None else [0, 0, 0, 0]
    head = [c.tensor, c.offset, c.batch_stride, c.row_stride,
            a.tensor, a.offset, a.batch_stride, a.row_stride, a.col_stride]
    plan = Plan()
    if not pack_b:
        plan.add(Launch.prepare(device, "gemm", "gemm_forward", grid, local,
                                head + [b.tensor, b.offset, b.batch_stride, b.row_stride] + tail,
                                defines))
        return plan
    packed = Tensor.empty(device, (batches, panels, k, tile_n))
    plan.scratch.append(packed)
    plan.add(Launch.prepare(device, "gemm", "pack_panels", (k, batches), None,
                            [packed, b.tensor, b.offset, b.batch_stride, b.row_stride, k, n],
                            defines))
    plan.add(Launch.prepare(device, "gemm", "gemm_packed_forward", grid, local,
                            head + [packed] + tail, defines))
    return plan


def tile_vectors(k: int, n: int) -> int:
    """float8 vectors per tile row: 8x24 tiles do more work per load and win on long K
    loops; 8x16 wins on the short ones (and on narrow matrices, where 24 wastes columns)."""
    return LONG_K_VECTORS if k >= LONG_K and n >= 64 else TILE_VECTORS


def _group_shape(panels: int, row_tiles: int, k: int, tile_n: int = TILE_N) -> tuple[int, int, int]:
    """Work-group shape (panels, row tiles, 1). PoCL pays a few microseconds per work-group,
    so a group should hold about GROUP_WORK multiply-adds: with a short K (the 1x1
    convolutions of the first stages) it spans many panels; rows stay within GROUP_ROWS so
    the tiles of a group share their panels of B in cache."""
    rows = min(row_tiles, 4)
    items = max(1, GROUP_WORK // (k * TILE_M * tile_n))
    cols = max(1, min(panels, items // rows, 64))
    if cols == 1:
        rows = min(row_tiles, GROUP_ROWS)
    return cols, rows, 1


def prepare_gemm_nt(device: Device, c: MatrixView, a: MatrixView, b: MatrixView,
                    m: int, n: int, k: int, batches: int = 1, accumulate: bool = False) -> Launch:
    """C (m x n) = sum over batches of A[b] (m x k) @ B[b] (n x k)^T; A and B rows contiguous
    along k (their row_stride is the leading dimension), C contiguous along n."""
    if a.col_stride != 1 or b.col_stride != 1 or c.col_stride != 1:
        raise ValueError("gemm_nt: A and B must be contiguous along k, C along its columns")
    _check_fits(a, batches, m, k, "A")
    _check_fits(b, batches, n, k, "B")
    _check_fits(c, 1, m, n, "C")
    grid = (-(-n // NT_COLS), -(-m // NT_ROWS))
    return Launch.prepare(device, "gemm", "gemm_nt_forward", grid, (1, min(GROUP_ROWS, grid[1])),
                          [c.tensor, c.offset, c.row_stride,
                           a.tensor, a.offset, a.batch_stride, a.row_stride,
                           b.tensor, b.offset, b.batch_stride, b.row_stride,
                           m, n, k, batches, accumulate],
                          {"TM": TILE_M, "NV": TILE_VECTORS})


def matmul(device: Device, a_np, b_np, queue=None):
    """C = A @ B for two host matrices, on the device: a convenience for tests and benchmarks."""
    import numpy as np
    a_np = np.ascontiguousarray(a_np, np.float32)
    b_np = np.ascontiguousarray(b_np, np.float32)
    (m, k), (k2, n) = a_np.shape, b_np.shape
    if k != k2:
        raise ValueError(f"matmul: inner sizes differ ({a_np.shape} @ {b_np.shape})")
    a, b = Tensor.from_numpy(device, a_np), Tensor.from_numpy(device, b_np)
    c = Tensor.empty(device, (m, n))
    launch = prepare_gemm(device, MatrixView(c, 0, 0, n), MatrixView(a, 0, 0, k),
                          MatrixView(b, 0, 0, n), m, n, k)
    launch.enqueue(queue or device.queue)
    return c.numpy(queue)
