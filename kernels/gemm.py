"""Launchers for gemm.cl: the register-blocked matrix product behind every dense layer."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import gemm_specialized
from .runtime import Device, Launch, Plan, Tensor, enough_groups
from .tuning import TUNE_MIN_WORK

# The default register block: 4 rows x 16 columns (8 float8 sums). Over the base's 39 GEMM
# shapes (PoCL, AVX2) it was the best single choice; the former default 8x16 (and 8x24 on
# long K: 16 and 24 sums, past AVX2's 16 vector registers) took 1.5-2x the best variant's
# time on average, in one run on a loaded machine.
# Shapes worth it are tuned (see gemm_variants).
TILE_M, TILE_VECTORS = 4, 2
TILE_N = 8 * TILE_VECTORS
# Work-items of one group run as a loop in one PoCL thread; a group of 16 row tiles over one
# column panel of B keeps that panel in cache (docs/opencl-on-the-cpu.md: 28-59 vs 100-122 GFLOP/s).
GROUP_ROWS = 16
NT_ROWS, NT_COLS = 2, 4  # gemm_nt_forward's NT_M and NT_N
GEMV_ROWS = 8  # gemv_forward's
GROUP_WORK = 1 << 17  # multiply-adds a work-group should hold (see group_shape)
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


def check_fits(view: MatrixView, batches: int, rows: int, cols: int, what: str) -> None:
    last = (view.offset + (batches - 1) * view.batch_stride + (rows - 1) * view.row_stride
            + (cols - 1) * view.col_stride)
    # The buffer's room, not the shape's: a map whose planes lie apart (a depthwise output
    # with its planes spaced to whole float8s for the GEMM reading it) has more.
    room = view.tensor.buffer.size // view.tensor.dtype.itemsize
    if view.offset < 0 or last >= room:
        raise ValueError(f"gemm: {what} ({batches}x{rows}x{cols}) does not fit its tensor "
                         f"of {room} elements")


def prepare_gemm(device: Device, c: MatrixView, a: MatrixView, b: MatrixView,
                 m: int, n: int, k: int, batches: int = 1, *, reduce_batches: bool = False,
                 bias: Tensor | None = None, residual: Tensor | None = None,
                 residual_offset: int = 0, accumulate: bool = False,
                 activation: str = "none", pack_b: bool | None = None,
                 c_padding: tuple[int, int, int, int] | None = None,
                 a_fixed: bool = False) -> Plan:
    """C = act(accumulate*C + A@B + bias) + residual, for `batches` matrices (or their sum).

    pack_b: copy B into contiguous column panels first (see pack_panels in gemm.cl). By
    default B is packed when it is at least one panel wide and enough row tiles reuse it.
    c_padding: (width, padded width, top, left): C's rows are maps of that width stored
    inside zero borders (a depthwise convolution's padded input); C.row_stride is a padded
    map's size. Its border is the caller's to zero, once.
    a_fixed: A's contents never change once the plan is built (a frozen layer's weights), so
    gemm_specialized may copy them once into row tiles."""
    if b.col_stride != 1 or c.col_stride != 1:
        raise ValueError("gemm: B and C must be contiguous along their columns")
    check_fits(a, batches, m, k, "A")
    check_fits(b, batches, k, n, "B")
    if c_padding is None:
        check_fits(c, 1 if reduce_batches else batches, m, n, "C")
    elif residual is not None or reduce_batches or n < TILE_N:
        raise ValueError("gemm: a padded C takes no residual, no batch sum, and a wide B")
    if bias is not None and bias.size < m:
        raise ValueError(f"gemm: bias has {bias.size} elements, needs {m}")
    if (n == 1 and batches == 1 and b.row_stride == 1 and a.col_stride == 1 and c.row_stride == 1
            and residual is None and not accumulate and c_padding is None):
        return _gemv(device, c, a, b, m, k, bias, activation_code(activation))
    k_total = k * (batches if reduce_batches else 1)
    packed = pack_b
    if packed is None:
        packed = (n >= TILE_N and m >= PACK_MIN_ROWS) or c_padding is not None
    call = _GemmCall(c, a, b, m, n, k, batches, reduce_batches, bias, residual,
                     residual_offset, accumulate, activation_code(activation), c_padding,
                     a_fixed)
    if gemm_specialized.fits(call):
        candidates = specialized_variants(n, pack_b, a_fixed, device.wide_registers)
    else:
        default = {"rows": TILE_M, "vectors": TILE_VECTORS, "packed": packed, "tall": False}
        candidates = gemm_variants(default, fixed_packing=pack_b is not None or
                                   c_padding is not None)
    variant = candidates[0]
    if worth_tuning(m * n * k_total * (1 if reduce_batches else batches)):
        variant = device.tuning.choose(call.key(), candidates, _runner(device, call))
    return call.plan(device, variant)


def _gemv(device: Device, c: MatrixView, a: MatrixView, b: MatrixView, m: int, k: int,
          bias: Tensor | None, act: int) -> Plan:
    """A matrix times one contiguous vector (gemv_forward): a layer on one sample."""
    rows = -(-m // GEMV_ROWS)
    launch = Launch.prepare(
        device, "gemv", "gemv_forward", (rows,), enough_groups((rows,), (min(rows, 64),)),
        [c.tensor, c.offset, a.tensor, a.offset, a.row_stride,
         b.tensor, b.offset, bias if bias is not None else a.tensor, bias is not None, m, k,
         act])
    return Plan([launch])


def worth_tuning(multiply_adds: int) -> bool:
    return multiply_adds >= TUNE_MIN_WORK


# The variants timed: (rows, float8 vectors, tall work-groups), each with B packed and not.
# A first search over 20 on the base's 39 shapes chose 4x16 or 8x8 on 33 of them (4x32,
# 8x16, 8x24 on the other 6); in a second, 6x16 (12 sums, the classic AVX2 block) beat 4x16
# by up to 8% on the compute-bound shapes. Each variant costs compile time at the first
# tuning (PoCL compiles a kernel again for every work-group shape): the list stays short.
VARIANTS = [(4, 2, False), (4, 2, True), (6, 2, False), (6, 2, True), (8, 1, False)]


# gemm_specialized's variants (rows, float8 vectors, packed B, tall work-groups), the default
# first. Over the base's 23 1x1 shapes at 240x320 (PoCL, AVX2, one loaded run) 6x16 took
# 7.4 ms in all, 5x16 7.5, 8x8 9.7, 4x24 13.1 and 3x32 15.7 (spilled: 12 sums plus 4 loads
# pass AVX2's 16 registers); against 11.9 ms for gemm_forward's default.
SPECIALIZED_VARIANTS = [(6, 2, False, False), (6, 2, True, False), (6, 2, False, True),
                        (4, 2, False, False), (8, 1, False, False)]
# Larger blocks, timed too on a device with 32 vector registers (wide_registers: PoCL on an
# AVX-512 CPU), where 16-24 sums fit beside their loads. Over the base's 46 1x1 shapes at
# 240x320 and 224x224 (Ice Lake, 2 cores, one tuning run with these and 4 more: 16x8, 8x32
# and packed or tall forms, never chosen) they won 39: 8x16 on 12, 6x32 on 9, 4x32 on 7,
# 12x16 on 6; the 240x320 GEMMs took 7.6 ms in all against 9.6 with the blocks above.
WIDE_REGISTER_VARIANTS = [(8, 2, False, False), (8, 2, False, True), (6, 4, False, False),
                          (4, 4, False, False), (12, 2, False, True)]


def specialized_variants(n: int, pack_b: bool | None = None, a_fixed: bool = False,
                         wide_registers: bool = False) -> list[dict]:
    """gemm_specialized's candidates for a call of n columns: B packed or not as pack_b says
    (either when None); unpacked ones need a whole tile of columns. Fixed weights are
    packed into row tiles in every one. wide_registers adds WIDE_REGISTER_VARIANTS."""
    out = []
    blocks = SPECIALIZED_VARIANTS + (WIDE_REGISTER_VARIANTS if wide_registers else [])
    for rows, vectors, packed, tall in blocks:
        packed = packed if pack_b is None else pack_b
        variant = {"rows": rows, "vectors": vectors, "packed": packed or n < 8 * vectors,
                   "tall": tall, "specialized": True, "packed_a": a_fixed}
        if variant not in out:
            out.append(variant)
    return out


def gemm_variants(default: dict, fixed_packing: bool = False) -> list[dict]:
    """The default, then VARIANTS. Work-groups are "wide" (group_shape) or "tall" (one
    panel, up to GROUP_ROWS row tiles: they share it in cache)."""
    out = [default]
    for rows, vectors, tall in VARIANTS:
        for packed in ((default["packed"],) if fixed_packing else (True, False)):
            variant = {"rows": rows, "vectors": vectors, "packed": packed, "tall": tall}
            if variant not in out:
                out.append(variant)
    return out


@dataclass(frozen=True)
class _GemmCall:
    """One GEMM's operands and options, so it can be built in any variant, on its own
    tensors or on scratch copies of them (to time a variant without touching the data)."""

    c: MatrixView
    a: MatrixView
    b: MatrixView
    m: int
    n: int
    k: int
    batches: int
    reduce_batches: bool
    bias: Tensor | None
    residual: Tensor | None
    residual_offset: int
    accumulate: bool
    act: int
    c_padding: tuple | None
    a_fixed: bool = False

    def key(self) -> str:
        a = self.a
        return (f"gemm m={self.m} n={self.n} k={self.k} batches={self.batches}"
                f"{' summed' if self.reduce_batches else ''} a_strides={a.row_stride},"
                f"{a.col_stride} b_ld={self.b.row_stride}"
                f"{' padded' if self.c_padding else ''}"
                f"{' residual' if self.residual is not None else ''}"
                f"{' fixed_a' if self.a_fixed else ''}")

    def plan(self, device: Device, variant: dict) -> Plan:
        rows, vectors, packed = variant["rows"], variant["vectors"], variant["packed"]
        tile_n = 8 * vectors
        defines = {"TM": rows, "NV": vectors}
        m, n, k, batches = self.m, self.n, self.k, self.batches
        panels = -(-n // tile_n)
        grid = (panels, -(-m // rows), 1 if self.reduce_batches else batches)
        if variant["tall"]:
            local = (1, min(grid[1], GROUP_ROWS), 1)
        else:
            local = group_shape(panels, grid[1], k * (batches if self.reduce_batches else 1),
                                tile_n, rows)
        if variant.get("specialized"):
            return gemm_specialized.plan(device, self, variant, local)
        c, a, b = self.c, self.a, self.b
        tail = [self.bias if self.bias is not None else c.tensor, self.bias is not None,
                self.residual if self.residual is not None else c.tensor, self.residual_offset,
                self.residual is not None, m, n, k, batches, self.reduce_batches,
                self.accumulate, self.act]
        tail += list(self.c_padding) if self.c_padding is not None else [0, 0, 0, 0]
        head = [c.tensor, c.offset, c.batch_stride, c.row_stride,
                a.tensor, a.offset, a.batch_stride, a.row_stride, a.col_stride]
        plan = Plan()
        if not packed:
            plan.add(Launch.prepare(device, "gemm", "gemm_forward", grid, local,
                                    head + [b.tensor, b.offset, b.batch_stride, b.row_stride]
                                    + tail, defines))
            return plan
        pack = Tensor.empty(device, (batches, panels, k, tile_n))
        plan.scratch.append(pack)
        plan.add(Launch.prepare(device, "gemm", "pack_panels", (k, batches), None,
                                [pack, b.tensor, b.offset, b.batch_stride, b.row_stride, k, n],
                                defines))
        plan.add(Launch.prepare(device, "gemm", "gemm_packed_forward", grid, local,
                                head + [pack] + tail, defines))
        return plan

    def on_scratch(self, device: Device) -> "_GemmCall":
        """The same call on zero-filled tensors of the same sizes."""
        copies: dict[int, Tensor] = {}

        def twin(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            if id(t) not in copies:
                copies[id(t)] = Tensor.from_numpy(device, np.zeros(t.size, t.dtype))
            return copies[id(t)]

        views = [replace(v, tensor=twin(v.tensor)) for v in (self.c, self.a, self.b)]
        return replace(self, c=views[0], a=views[1], b=views[2], bias=twin(self.bias),
                       residual=twin(self.residual))


def _runner(device: Device, call: _GemmCall):
    """variant -> a function that runs it once on scratch copies of the operands and waits."""
    scratch, queue = call.on_scratch(device), device.new_queue()

    def prepare(variant: dict):
        plan = scratch.plan(device, variant)

        def run():
            plan.enqueue(queue)
            queue.finish()
        return run
    return prepare


def group_shape(panels: int, row_tiles: int, k: int, tile_n: int = TILE_N,
                tile_m: int = TILE_M) -> tuple[int, int, int]:
    """Work-group shape (panels, row tiles, 1). PoCL pays a few microseconds per work-group,
    so a group should hold about GROUP_WORK multiply-adds: with a short K (the 1x1
    convolutions of the first stages) it spans many panels; rows stay within GROUP_ROWS so
    the tiles of a group share their panels of B in cache."""
    rows = min(row_tiles, 4)
    items = max(1, GROUP_WORK // (k * tile_m * tile_n))
    cols = max(1, min(panels, items // rows, 64))
    if cols == 1:
        rows = min(row_tiles, GROUP_ROWS)
    return cols, rows, 1


def matmul(device: Device, a_np, b_np, queue=None):
    """C = A @ B for two host matrices, on the device: a convenience for tests and benchmarks."""
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
