"""`patchloop bench base`: the base network's forward per frame (batch 1, steady state) at
224x224 and 240x320, with and without the classifier (pool + FC + softmax, which runs only
when the classes are read), time by layer kind, onnxruntime on the same weights in the same
run, and the first frame's time from process start (programs cached).

Beside the wall-clock ratio, the CPU time per frame of both (onnxruntime with its threads
told not to spin): on a machine other processes load, onnxruntime's spinning threads make
its frame time balloon (25-46 ms against 5-10), while CPU time stays comparable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.faces.bench.machine_share import MachineShare, machine_line
from loop.faces.bench.timing import median_seconds
from patchloop_kernels.runtime import Device

SIZES = [(224, 224), (240, 320)]

FIRST_FRAME_SCRIPT = """
import time, numpy as np
start = time.perf_counter()
from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from patchloop_kernels.runtime import Device
device = Device.default()
plan = BaseNetwork(device, open_base({base!r})).plan(240, 320)
plan.run(np.zeros((240, 320, 3), np.uint8), device.queue)
plan.read_probabilities(device.queue)
print(time.perf_counter() - start)
"""


def _by_kind(plan, queue, repeats) -> dict[str, float]:
    kinds: dict[str, float] = {}
    for kind, layer in [("other", plan.preprocess)] + plan.layer_kinds:
        def one(layer=layer):
            layer.enqueue(queue)
            queue.finish()
        kinds[kind] = kinds.get(kind, 0.0) + median_seconds(one, max(3, repeats // 4)) * 1e3
    return {k: round(v, 3) for k, v in kinds.items()}


def _cpu_ms(call, repeats: int) -> float:
    """CPU time of this process (all its threads) per call, median of five batches."""
    call()
    batch = max(1, repeats // 5)
    per_call = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(batch):
            call()
        per_call.append((time.process_time() - start) / batch)
    return round(float(np.median(per_call)) * 1e3, 3)


def _onnxruntime_ms(spec, h, w, repeats):
    """(wall ms, CPU ms without spinning) per frame, or (None, None, why)."""
    try:
        import onnxruntime as ort
        from loop.base.onnx_export import to_onnx
    except ImportError:
        return None, None, "onnxruntime/onnx not installed (pip install 'patchloop[bench]')"
    model = to_onnx(spec, h, w).SerializeToString()
    x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
    sessions = []
    for spinning in ("1", "0"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        sessions.append(ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]))
    wall = median_seconds(lambda: sessions[0].run(None, {"input": x}), repeats) * 1e3
    return wall, _cpu_ms(lambda: sessions[1].run(None, {"input": x}), repeats), None


def _first_frame_seconds(base_path) -> float:
    script = FIRST_FRAME_SCRIPT.format(base=base_path)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    return round(total, 3), round(float(out.stdout.strip()), 3)


def run(args) -> int:
    spec = open_base(args.base)
    device = Device.default()
    network = BaseNetwork(device, spec)
    machine = MachineShare()
    rows = []
    for h, w in SIZES:
        plan = network.plan(h, w)
        frame = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)

        def frame_once():
            plan.run(frame, device.queue)
            plan.read_probabilities(device.queue)

        def features_once():
            plan.run(frame, device.queue)
            device.finish()

        ours = median_seconds(frame_once, args.repeats) * 1e3
        features = median_seconds(features_once, args.repeats) * 1e3
        ours_cpu = _cpu_ms(frame_once, args.repeats)
        peer, peer_cpu, why = _onnxruntime_ms(spec, h, w, args.repeats)
        row = {"size": f"{h}x{w}", "median_ms": round(ours, 3),
               "without_classifier_median_ms": round(features, 3),
               "by_kind_ms": _by_kind(plan, device.queue, args.repeats),
               "onnxruntime_median_ms": None if peer is None else round(peer, 3),
               "ratio_to_onnxruntime": None if peer is None else round(ours / peer, 3),
               "cpu_ms_per_frame": ours_cpu,
               "onnxruntime_cpu_ms_per_frame": peer_cpu,
               "cpu_ratio_to_onnxruntime": None if peer is None else round(ours_cpu / peer_cpu, 3)}
        if why:
            row["onnxruntime_note"] = why
        rows.append(row)
    share = machine.report()   # before the first-frame child process, another process
    process_s, in_process_s = _first_frame_seconds(str(spec.path) if spec.path else None)
    report = {"device": device.describe(), "base": spec.name, "repeats": args.repeats,
              "results": rows, "first_frame_from_process_start_s": process_s,
              "first_frame_after_interpreter_start_s": in_process_s, "machine": share}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"device: {report['device']}  base: {spec.name}  (median of {args.repeats} frames)")
    for r in rows:
        peer = r["onnxruntime_median_ms"]
        versus = (f"onnxruntime {peer:.2f} ms, {r['ratio_to_onnxruntime']:.2f}x its time"
                  if peer is not None else f"onnxruntime: {r['onnxruntime_note']}")
        kinds = ", ".join(f"{kind} {ms:.2f} ms" for kind, ms in r["by_kind_ms"].items())
        print(f"{r['size']:>8s}: {r['median_ms']:.2f} ms per frame ({versus}); "
              f"{r['without_classifier_median_ms']:.2f} ms without the classifier")
        print(f"{'':10s}by layer kind, each timed alone: {kinds}")
        if peer is not None:
            print(f"{'':10s}CPU time per frame: {r['cpu_ms_per_frame']:.2f} ms, onnxruntime "
                  f"(not spinning) {r['onnxruntime_cpu_ms_per_frame']:.2f} ms, "
                  f"{r['cpu_ratio_to_onnxruntime']:.2f}x")
    print(f"first frame from process start: {process_s:.2f} s "
          f"({in_process_s:.2f} s after the interpreter started)")
    for line in machine_line(share):
        print(line)
    return 0
