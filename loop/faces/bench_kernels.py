"""`patchloop bench kernels`: median time and GFLOP/s of representative kernels, beside
numpy (BLAS) doing the same operation in the same run."""
from __future__ import annotations

import json

import numpy as np

from loop.faces.timing import median_seconds
from patchloop_kernels.conv import ConvBackward, ConvForward, ConvGeometry
from patchloop_kernels.gemm import MatrixView, prepare_gemm
from patchloop_kernels.runtime import Device, Tensor

# name, batch, height, width, geometry: the shapes the issue names.
CONV_CASES = [
    ("conv3x3 32->32 120x160", 1, 120, 160, ConvGeometry(32, 32, 3, 1, 1, activation="relu")),
    ("depthwise5x5 480ch 30x40", 1, 30, 40, ConvGeometry(480, 480, 5, 1, 2, groups=480,
                                                          activation="relu6")),
    ("conv1x1 112->64 15x20 batch16", 16, 15, 20, ConvGeometry(112, 64, 1, activation="relu")),
]


def _numpy_conv(x, weight, g: ConvGeometry):
    """numpy's best plain route: im2col + matmul (BLAS) for dense, shifted adds for depthwise."""
    n, c, h, w = x.shape
    oh, ow = g.output_size(h, w)
    top, left, bottom, right = g.pads(h, w)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    k = g.kernel
    if g.groups == g.c_in:
        out = np.zeros((n, c, oh, ow), np.float32)
        for kh in range(k):
            for kw in range(k):
                out += xp[:, :, kh:kh + oh, kw:kw + ow] * weight[None, :, 0, kh, kw, None, None]
        return out
    if k == 1:
        return np.matmul(weight.reshape(g.c_out, c), x.reshape(n, c, h * w))
    cols = np.stack([xp[:, :, kh:kh + oh, kw:kw + ow] for kh in range(k) for kw in range(k)], 2)
    return np.matmul(weight.reshape(g.c_out, -1), cols.reshape(n, c * k * k, oh * ow))


def _conv_cases(device: Device, repeats: int, rng):
    results = []
    for name, n, h, w, g in CONV_CASES:
        oh, ow = g.output_size(h, w)
        x = rng.standard_normal((n, g.c_in, h, w)).astype(np.float32)
        weight = rng.standard_normal(g.weight_shape).astype(np.float32) * 0.1
        tx, tw = Tensor.from_numpy(device, x), Tensor.from_numpy(device, weight)
        tb = Tensor.from_numpy(device, np.zeros(g.c_out, np.float32))
        ty = Tensor.empty(device, (n, g.c_out, oh, ow))
        fwd = ConvForward(device, g, tx, tw, tb, ty)
        tdy = Tensor.from_numpy(device, rng.standard_normal(ty.shape).astype(np.float32))
        bwd = ConvBackward(device, g, fwd, tx, tw, ty, tdy, Tensor.empty(device, g.weight_shape),
                           Tensor.empty(device, (g.c_out,)), Tensor.empty(device, x.shape))
        macs = n * g.c_out * oh * ow * (g.c_in // g.groups) * g.kernel ** 2

        def run(plan):
            plan.enqueue(device.queue)
            device.finish()

        t_fwd = median_seconds(lambda: run(fwd), repeats)
        t_bwd = median_seconds(lambda: run(bwd), repeats)
        t_np = median_seconds(lambda: _numpy_conv(x, weight, g), max(3, repeats // 4))
        results.append(_row(name + " forward", 2 * macs, t_fwd, t_np))
        # The backward computes dx and dweight: twice the forward's multiply-adds.
        results.append(_row(name + " backward", 4 * macs, t_bwd, 2 * t_np))
    return results


def _gemm_case(device: Device, repeats: int, rng, size: int = 1024):
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    ta, tb, tc = Tensor.from_numpy(device, a), Tensor.from_numpy(device, b), \
        Tensor.empty(device, (size, size))
    launch = prepare_gemm(device, MatrixView(tc, 0, 0, size), MatrixView(ta, 0, 0, size),
                          MatrixView(tb, 0, 0, size), size, size, size)

    def run():
        launch.enqueue(device.queue)
        device.finish()

    t = median_seconds(run, max(3, repeats // 4))
    t_np = median_seconds(lambda: a @ b, max(3, repeats // 4))
    return _row(f"gemm {size}x{size}x{size}", 2 * size ** 3, t, t_np)


def _row(name, flops, seconds, numpy_seconds):
    return {"case": name, "median_ms": round(seconds * 1e3, 3),
            "gflops": round(flops / seconds / 1e9, 2),
            "numpy_median_ms": round(numpy_seconds * 1e3, 3),
            "numpy_gflops": round(flops / numpy_seconds / 1e9, 2),
            "speed_vs_numpy": round(numpy_seconds / seconds, 3)}


def run(args) -> int:
    device = Device.default()
    rng = np.random.default_rng(0)
    rows = _conv_cases(device, args.repeats, rng) + [_gemm_case(device, args.repeats, rng)]
    report = {"device": device.describe(), "repeats": args.repeats, "results": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"device: {report['device']}")
    print(f"{'case':42s} {'ms':>9s} {'GFLOP/s':>9s} {'numpy ms':>9s} {'numpy GF/s':>10s} {'x numpy':>8s}")
    for r in rows:
        print(f"{r['case']:42s} {r['median_ms']:9.3f} {r['gflops']:9.2f} {r['numpy_median_ms']:9.3f} "
              f"{r['numpy_gflops']:10.2f} {r['speed_vs_numpy']:8.2f}")
    return 0
