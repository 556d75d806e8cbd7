"""Launcher for gemm_specialized.cl: a layer's forward GEMM with its epilogue (activation,
residual, padded output) and operand layouts (packed B, fixed weights packed into row tiles)
fixed at build time. gemm.py's prepare_gemm takes it for every call it fits (see `fits`);
the general gemm_forward stays for the rest (sums over a batch, accumulation, strided A)."""
from __future__ import annotations

import weakref

import numpy as np

from .runtime import Device, Launch, Plan, Tensor, enough_groups


def fits(call) -> bool:
    """Whether a _GemmCall (gemm.py) is one this kernel computes: weights A row-major and
    shared by every sample, B and C contiguous along their columns (checked by prepare_gemm),
    C written (not summed over the batch, not accumulated), at least one float8 of columns."""
    a = call.a
    return (not call.reduce_batches and not call.accumulate and a.col_stride == 1
            and a.row_stride == call.k and (a.batch_stride == 0 or call.batches == 1)
            and a.offset == 0 and call.n >= 8)


def plan(device: Device, call, variant: dict, local: tuple[int, int, int]) -> Plan:
    """The call in one variant (rows, vectors, packed, packed_a: the weights repacked now
    into row tiles, for a call whose A is fixed); `local` is its work-group shape.
    Unpacked, the columns must span at least one tile (the last tile slides left)."""
    rows, vectors, packed = variant["rows"], variant["vectors"], variant["packed"]
    tile_n = 8 * vectors
    m, n, k, batches = call.m, call.n, call.k, call.batches
    if not packed and n < tile_n:
        raise ValueError(f"gemm_specialized: {n} columns are fewer than a tile of {tile_n}")
    tiles = -(-n // tile_n)
    row_tiles = -(-m // rows)
    if variant.get("packed_a") and not variant["tall"]:
        local = _sharing_panels(local, tiles, row_tiles, batches, 4 * k * n)
    else:
        local = enough_groups((tiles, row_tiles, batches), local)
    c, b = call.c, call.b
    result = Plan()
    if packed:
        operand = Tensor.empty(device, (batches, tiles, k, tile_n))
        result.scratch.append(operand)
        result.add(Launch.prepare(device, "gemm", "pack_panels", (k, batches), None,
                                  [operand, b.tensor, b.offset, b.batch_stride, b.row_stride,
                                   k, n], {"TM": rows, "NV": vectors}))
        b_offset = 0
    else:
        operand, b_offset = b.tensor, b.offset
    bias = call.bias
    if bias is None:
        bias = Tensor.from_numpy(device, np.zeros(m, np.float32))
        result.scratch.append(bias)
    # The last tile's few columns summed one by one (gemm_specialized.cl's NTAIL): weights
    # packed into tiles of at most 8 rows, at most 8 columns left over.
    tail = n % tile_n if variant.get("packed_a") and rows <= 8 and n % tile_n <= 8 else 0
    defines = {"TM": rows, "NV": vectors, "NTAIL": tail, "ACT": call.act,
               "RESIDUAL": int(call.residual is not None),
               "PADDED": int(call.c_padding is not None), "PACKED": int(packed),
               "PACKED_A": int(bool(variant.get("packed_a")))}
    weights = call.a.tensor
    if variant.get("packed_a"):
        weights = _packed_weights(device, call.a.tensor, m, k, defines)
        result.scratch.append(weights)
    residual = call.residual if call.residual is not None else c.tensor
    ow, wp, top, left = call.c_padding if call.c_padding is not None else (0, 0, 0, 0)
    result.add(Launch.prepare(
        device, "gemm_specialized", "gemm_specialized_forward",
        (tiles, row_tiles, batches), local,
        [c.tensor, c.offset, c.batch_stride, c.row_stride, weights, operand, b_offset,
         b.batch_stride, b.row_stride, bias, residual, call.residual_offset, m, n, k,
         ow, wp, top, left], defines))
    return result


# B past this many bytes (a core's L2: 1 MB on the project's machines) comes from L3 or
# memory for each group of row tiles that reads it.
SHARED_PANEL_BYTES = 1 << 20
ALL_ROWS_MAX = 8  # row tiles a group may span to read each panel of B once


def _sharing_panels(local, tiles: int, row_tiles: int, batches: int, b_bytes: int):
    """The work-group shape of a GEMM on fixed weights (the base's): every row tile in one
    group where B is large and the row tiles few (the stem and the first stages' short-K
    1x1s: 1.2-2.4 MB of B for 16-32 rows of C), and, to reach MIN_GROUPS, fewer columns a
    group rather than fewer rows. enough_groups halved the rows first, and each half read B
    from L3 again (16x32x12544 and the stem at 112x112: 7-12% slower, each alone)."""
    cols, rows, per_batch = local
    if b_bytes > SHARED_PANEL_BYTES and row_tiles <= ALL_ROWS_MAX:
        rows = row_tiles
    per_batch, rows, cols = enough_groups((batches, row_tiles, tiles), (per_batch, rows, cols))
    return cols, rows, per_batch


# Fixed weights packed into row tiles, per weight tensor (and shape, tile rows): every plan
# of the base (one per frame size) shares them. The entries go with their tensor.
_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _packed_weights(device: Device, a: Tensor, m: int, k: int, defines: dict) -> Tensor:
    """A (m x k, row-major, fixed from now on) copied into row tiles of TM rows, once (built
    with the GEMM's own defines: the same program)."""
    rows = defines["TM"]
    known = _PACKED.setdefault(a, {})
    if (m, k, rows) in known:
        return known[(m, k, rows)]
    tiles = -(-m // rows)
    # 8 floats of slack: the NTAIL path reads a float8 at each k of a tile of TM <= 8 rows.
    packed = Tensor.empty(device, (tiles * k * rows + 8,))
    queue = device.new_queue()
    Launch.prepare(device, "gemm_specialized", "pack_weight_tiles", (k, tiles), None,
                   [packed, a, m, k], defines).enqueue(queue)
    queue.finish()
    known[(m, k, rows)] = packed
    return packed

