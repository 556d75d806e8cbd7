"""The weight gradient of conv_implicit.cl's convolutions: partial sums per chunk of
positions (conv_implicit_backward_weight), added up by gemm.cl's sum_parts; the register
block is tuned per shape."""
from __future__ import annotations

import numpy as np

from .gemm_nt import sum_parts
from .runtime import Device, Launch, Plan, Tensor
from .tuning import TUNE_MIN_WORK

# Positions per partial weight gradient: a chunk of both operands (16 channels x 4096
# floats each, 512 KB: half of a core's L2 here) stays in cache while every tile of its
# work-group reads it. 4096 ran the pixels patch's layers 5-15% faster than 2048 (half the
# partial sums to add up) in runs on a loaded machine.
WEIGHT_CHUNK = 4096
# The register blocks (rows of dz, taps), the default first: gemm_nt's 2 x 4, and 4 x 3
# (12 sums fed by 7 loads), 0-14% faster on the pixels patch's layers in runs on a loaded
# machine.
WEIGHT_BLOCKS = [(2, 4), (4, 3)]


def implicit_weight_gradient(device: Device, g, inputs, koff: Tensor, grad, dweight: Tensor,
                             n: int) -> Plan:
    """dweight (C_out, C_in, K, K) from the forward's padded input planes `inputs` (with its
    tap offsets `koff`) and dz in the padded planes `grad` of the same padded width."""
    c_out, taps, length = g.c_out, g.c_in * g.kernel ** 2, inputs.h * grad.wp
    chunks = -(-length // WEIGHT_CHUNK)
    plan = Plan()
    parts = Tensor.empty(device, (n * chunks, c_out, taps))
    plan.scratch.append(parts)
    args = [parts, grad.tensor, grad.top * grad.wp + grad.left, grad.batch_stride(n),
            grad.hp * grad.wp, inputs.tensor, inputs.batch_stride(n), koff, c_out, taps,
            length, WEIGHT_CHUNK, chunks]
    block = list(WEIGHT_BLOCKS[0])
    if c_out * taps * length * n >= TUNE_MIN_WORK:
        key = f"conv_implicit_weight m={c_out} r={taps} positions={length} batch={n}"
        block = device.tuning.choose(key, [list(b) for b in WEIGHT_BLOCKS],
                                     _runner(device, args))
    plan.add(_launch(device, block, args))
    plan.add(sum_parts(device, dweight, 0, parts, dweight.size, n * chunks, False))
    return plan


def _launch(device: Device, block, args) -> Launch:
    rows, taps_per_item = block
    c_out, taps, chunk_count = args[8], args[9], args[0].shape[0]
    tiles = (-(-taps // taps_per_item), -(-c_out // rows), chunk_count)
    # A group spans the tiles of one chunk (within 256 work-items, for GPUs too).
    local = (min(tiles[0], 32), min(tiles[1], max(1, 256 // min(tiles[0], 32))), 1)
    return Launch.prepare(device, "conv_implicit", "conv_implicit_backward_weight", tiles,
                          local, args, {"WM": rows, "WN": taps_per_item})


def _runner(device: Device, args):
    """block -> a function that runs it once on zero-filled copies of its tensors."""
    copies = [Tensor.from_numpy(device, np.zeros(a.shape, np.float32))
              if isinstance(a, Tensor) and a.dtype == np.float32 else a for a in args]
    queue = device.new_queue()

    def prepare(block):
        launch = _launch(device, block, copies)

        def run():
            launch.enqueue(queue)
            queue.finish()
        return run
    return prepare
