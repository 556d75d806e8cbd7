"""Weight gradients of dense convolutions (1x1 ones on the input, others on im2col's
columns) as one register-blocked GEMM summed over the batch: the narrower operand is
transposed once (weight_gradient.cl), so gemm.cl's GEMM reads both along its float8 columns.

dW (C_out x rows) = sum_n dz[n] (C_out x hw) @ col[n] (rows x hw)^T
  rows <= C_out (an expand):  dW   = sum_n dz[n] @ colT[n],  colT[n] = col[n]^T (hw x rows)
  rows >  C_out (a project):  dW^T = sum_n col[n] @ dzT[n],  then dW^T turned back (small)
Operands narrower than NARROWEST keep gemm_nt (gemm.cl's GEMM vectorizes 16 columns)."""
from __future__ import annotations

from .gemm import MatrixView, prepare_gemm
from .gemm_nt import prepare_gemm_nt
from .runtime import Device, Launch, Plan, Tensor

NARROWEST = 16


def transpose_launch(device: Device, out: Tensor, x: Tensor, batches: int, rows: int,
                     cols: int) -> Launch:
    """out[b] (cols x rows) = x[b] (rows x cols)^T."""
    return Launch.prepare(device, "weight_gradient", "transpose_batched",
                          (-(-cols // 8), batches), None, [out, x, rows, cols])


class WeightGradient(Plan):
    """dweight (c_out x rows) from dz (n, c_out, hw) and col (n, rows, hw), both contiguous."""

    def __init__(self, device: Device, dweight: Tensor, dz: Tensor, col: Tensor, n: int,
                 c_out: int, rows: int, hw: int):
        super().__init__()
        if dweight.size != c_out * rows or dz.size < n * c_out * hw or col.size < n * rows * hw:
            raise ValueError("weight gradient: tensors do not match "
                             f"{n}x{c_out}x{hw} and {n}x{rows}x{hw}")
        if min(rows, c_out) < NARROWEST:
            self.add(prepare_gemm_nt(
                device, MatrixView(dweight, 0, 0, rows), MatrixView(dz, 0, c_out * hw, hw),
                MatrixView(col, 0, rows * hw, hw), c_out, rows, hw, n))
            return
        if rows <= c_out:
            col_t = Tensor.empty(device, (n, hw, rows))
            self.scratch.append(col_t)
            self.add(transpose_launch(device, col_t, col, n, rows, hw))
            self.add(prepare_gemm(
                device, MatrixView(dweight, 0, 0, rows), MatrixView(dz, 0, c_out * hw, hw),
                MatrixView(col_t, 0, hw * rows, rows), c_out, rows, hw, n,
                reduce_batches=True))
            return
        dz_t = Tensor.empty(device, (n, hw, c_out))
        turned = Tensor.empty(device, (rows, c_out))
        self.scratch += [dz_t, turned]
        self.add(transpose_launch(device, dz_t, dz, n, c_out, hw))
        self.add(prepare_gemm(
            device, MatrixView(turned, 0, 0, c_out), MatrixView(col, 0, rows * hw, hw),
            MatrixView(dz_t, 0, hw * c_out, c_out), rows, c_out, hw, n, reduce_batches=True))
        self.add(transpose_launch(device, dweight, turned, 1, rows, c_out))
