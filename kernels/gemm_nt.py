"""Launchers for gemm.cl's transposed GEMM (weight gradients: both operands contiguous along
the summed dimension), tuned per shape between one work-item summing every batch and
per-batch partial sums that sum_parts adds up."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .gemm import (GROUP_ROWS, NT_COLS, NT_ROWS, TILE_M, TILE_VECTORS, MatrixView, check_fits,
                   worth_tuning)
from .runtime import Device, Launch, Plan, Tensor


def prepare_gemm_nt(device: Device, c: MatrixView, a: MatrixView, b: MatrixView,
                    m: int, n: int, k: int, batches: int = 1, accumulate: bool = False) -> Plan:
    """C (m x n) = sum over batches of A[b] (m x k) @ B[b] (n x k)^T; A and B rows contiguous
    along k (their row_stride is the leading dimension), C contiguous along n. Two variants,
    tuned per shape: one work-item sums every batch (the default), or each batch's tiles
    share a work-group and write partial sums that sum_parts adds up."""
    if a.col_stride != 1 or b.col_stride != 1 or c.col_stride != 1:
        raise ValueError("gemm_nt: A and B must be contiguous along k, C along its columns")
    check_fits(a, batches, m, k, "A")
    check_fits(b, batches, n, k, "B")
    check_fits(c, 1, m, n, "C")
    args = (c, a, b, m, n, k, batches, accumulate)
    variant = "summed"
    if batches > 1 and c.row_stride == n and worth_tuning(m * n * k * batches):
        key = f"gemm_nt m={m} n={n} k={k} batches={batches} lda={a.row_stride} ldb={b.row_stride}"
        variant = device.tuning.choose(key, ["summed", "parts"], _nt_runner(device, args))
    return _gemm_nt_plan(device, variant, *args)


def _gemm_nt_plan(device, variant, c, a, b, m, n, k, batches, accumulate) -> Plan:
    tiles = (-(-n // NT_COLS), -(-m // NT_ROWS))
    tail = [m, n, k, batches]
    plan = Plan()
    build = {"TM": TILE_M, "NV": TILE_VECTORS}
    a_args = [a.tensor, a.offset, a.batch_stride, a.row_stride]
    b_args = [b.tensor, b.offset, b.batch_stride, b.row_stride]
    if variant == "summed":
        plan.add(Launch.prepare(device, "gemm", "gemm_nt_forward", tiles,
                                (1, min(GROUP_ROWS, tiles[1])),
                                [c.tensor, c.offset, c.row_stride] + a_args + b_args + tail
                                + [accumulate, 0], build))
        return plan
    parts = Tensor.empty(device, (batches, m, n))
    plan.scratch.append(parts)
    # A group spans the tiles of one batch (within 256 work-items, for GPUs too).
    cols = min(tiles[0], 32)
    plan.add(Launch.prepare(device, "gemm", "gemm_nt_forward", tiles + (batches,),
                            (cols, min(tiles[1], max(1, 256 // cols)), 1),
                            [parts, 0, n] + a_args + b_args + tail + [0, m * n], build))
    plan.add(sum_parts(device, c.tensor, c.offset, parts, m * n, batches, accumulate))
    return plan


def _nt_runner(device: Device, args):
    """variant -> a function that runs it once on zero-filled copies of the operands."""
    c, a, b = args[:3]
    copies = [replace(v, tensor=Tensor.from_numpy(device, np.zeros(v.tensor.size, np.float32)))
              for v in (c, a, b)]
    queue = device.new_queue()

    def prepare(variant):
        plan = _gemm_nt_plan(device, variant, *copies, *args[3:])

        def run():
            plan.enqueue(queue)
            queue.finish()
        return run
    return prepare


def sum_parts(device: Device, out: Tensor, out_offset: int, parts: Tensor, count: int,
              how_many: int, accumulate: bool) -> Launch:
    """out[offset + i] (+)= sum over the `how_many` parts (each `count` floats) of `parts`."""
    return Launch.prepare(device, "gemm", "sum_parts", (count,), (min(count, 64),),
                          [out, out_offset, parts, count, how_many, accumulate],
                          {"TM": TILE_M, "NV": TILE_VECTORS})
