"""`patchloop bench kernels`: median time and GFLOP/s of representative kernels, beside
numpy (BLAS) doing the same operation in the same run. With --tune, every kernel variant
choice these cases and the base's forwards make is measured again (tuning.py), and the
report shows what was chosen per shape and what it gained, per shape and per frame."""
from __future__ import annotations

import json
import statistics
import time

import numpy as np

from loop.faces.bench.timing import median_seconds
from patchloop_kernels.conv import ConvForward, ConvGeometry
from patchloop_kernels.conv_backward import ConvBackward
from patchloop_kernels.gemm import MatrixView, prepare_gemm
from patchloop_kernels.runtime import Device, Tensor

# name, batch, height, width, geometry: the shapes the issue names.
CONV_CASES = [
    ("conv3x3 32->32 120x160", 1, 120, 160, ConvGeometry(32, 32, 3, 1, 1, activation="relu")),
    ("depthwise5x5 480ch 30x40", 1, 30, 40, ConvGeometry(480, 480, 5, 1, 2, groups=480,
                                                          activation="relu6")),
    ("conv1x1 112->64 15x20 batch16", 16, 15, 20, ConvGeometry(112, 64, 1, activation="relu")),
    ("conv3x3 dil2 16->16 120x160 batch16 (pixels)", 16, 120, 160,
     ConvGeometry(16, 16, 3, 1, 2, 2, activation="relu")),
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
    d = g.dilation
    cols = np.stack([xp[:, :, kh * d:kh * d + oh, kw * d:kw * d + ow]
                     for kh in range(k) for kw in range(k)], 2)
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


def tuning_report(device: Device, base_path, repeats: int) -> dict:
    """What tuning chose for each shape met in this process (measured again: the caller set
    `remeasure`), and the base's forward per frame with default variants against tuned ones,
    in the same run."""
    from loop.base.loading import open_base
    from loop.base.network import BaseNetwork
    from loop.faces.bench.base import SIZES

    network = BaseNetwork(device, open_base(base_path))
    frames = []
    for h, w in SIZES:
        tuned = network.plan(h, w)
        with device.tuning.defaults():
            plain = network.plan(h, w)
        frame = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
        times = _alternating_medians({"default": plain, "tuned": tuned}, frame, device,
                                     repeats)
        frames.append({"size": f"{h}x{w}", "default_ms": round(times["default"] * 1e3, 3),
                       "tuned_ms": round(times["tuned"] * 1e3, 3),
                       "gain": round(times["default"] / times["tuned"], 3)})
    shapes = []
    for key in device.tuning.seen:
        entry = device.tuning.entry(key)
        if entry is None:
            continue
        shapes.append({"shape": key, "default": entry["times"][0][0], "chosen": entry["choice"],
                       "default_ms": entry["default_ms"], "chosen_ms": entry["best_ms"],
                       "gain": round(entry["default_ms"] / max(entry["best_ms"], 1e-9), 3)})
    return {"log": str(device.tuning.path), "base_forward": frames, "shapes": shapes}


def _alternating_medians(plans: dict, frame, device: Device, repeats: int) -> dict:
    """Median seconds per frame of each plan, the plans taking turns frame by frame, so a
    change of load on the machine meets them alike."""
    times: dict = {name: [] for name in plans}
    for _ in range(repeats + 1):  # the first round warms up
        for name, plan in plans.items():
            start = time.perf_counter()
            plan.run(frame, device.queue)
            plan.read_probabilities(device.queue)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def _variant_text(variant) -> str:
    """A variant in a few characters: register block (rows x columns) and options."""
    if isinstance(variant, str):  # gemm_nt: "summed" or "parts"
        return variant
    if isinstance(variant, dict):
        return (f"{variant['rows']}x{8 * variant['vectors']}"
                f"{' packed' if variant['packed'] else ''}{' tall' if variant['tall'] else ''}")
    if len(variant) == 2:  # an implicit convolution's weight-gradient block: rows x columns
        return f"{variant[0]}x{variant[1]} block"
    if len(variant) == 4:  # gemm_specialized: rows, float8 vectors, packed B, tall groups
        rows, vectors, packed, tall = variant
        return f"{rows}x{8 * vectors}{' packed' if packed else ''}{' tall' if tall else ''}"
    rows, vectors, tall = variant
    return f"{rows}x{8 * vectors}{' tall' if tall else ''}"


def _print_tuning(tuning: dict) -> None:
    print(f"tuning log: {tuning['log']}")
    print(f"{'shape':78s} {'default':>16s} {'ms':>8s} {'chosen':>16s} {'ms':>8s} {'gain':>6s}")
    for r in tuning["shapes"]:
        print(f"{r['shape']:78s} {_variant_text(r['default']):>16s} {r['default_ms']:8.3f} "
              f"{_variant_text(r['chosen']):>16s} {r['chosen_ms']:8.3f} {r['gain']:5.2f}x")
    for r in tuning["base_forward"]:
        print(f"base forward {r['size']}: {r['default_ms']:.2f} ms per frame with default "
              f"variants, {r['tuned_ms']:.2f} ms tuned ({r['gain']:.2f}x)")


def run(args) -> int:
    device = Device.default()
    tune = getattr(args, "tune", False)
    if tune:
        device.tuning.enabled = True
        device.tuning.remeasure = True
    rng = np.random.default_rng(0)
    rows = _conv_cases(device, args.repeats, rng) + [_gemm_case(device, args.repeats, rng)]
    report = {"device": device.describe(), "repeats": args.repeats, "results": rows}
    if tune:
        report["tuning"] = tuning_report(device, getattr(args, "base", None), args.repeats)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"device: {report['device']}")
    print(f"{'case':50s} {'ms':>9s} {'GFLOP/s':>9s} {'numpy ms':>9s} {'numpy GF/s':>10s} {'x numpy':>8s}")
    for r in rows:
        print(f"{r['case']:50s} {r['median_ms']:9.3f} {r['gflops']:9.2f} {r['numpy_median_ms']:9.3f} "
              f"{r['numpy_gflops']:10.2f} {r['speed_vs_numpy']:8.2f}")
    if tune:
        _print_tuning(report["tuning"])
    return 0
