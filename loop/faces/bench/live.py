"""`patchloop bench live`: the live window's arrangement without the window, on the demo
video: verdicts in their thread, the trainer in its own, taking turns on the device. A fresh
patch gets labels of every category on a few frames (from the demo's truth), then the
verdicts per second are measured with the trainer stopped and while it trains, with the
trainer's steps per second (the pixels topology's goal: 5 steps/s with 15 verdicts/s)."""
from __future__ import annotations

import json
import time

import numpy as np

from loop.core.engine import LoopCore
from loop.core.patch import PatchSpec, categories_from_names, live_tap
from loop.core.settings import default_settings
from loop.core.verdict_worker import VerdictWorker
from loop.demo.annotator import click_inside, regions
from loop.demo.policies import label_click
from loop.demo.scene import CATEGORIES
from loop.faces.bench.machine_share import MachineShare, machine_line
from loop.faces.sources import demo_source
from patchloop_kernels.runtime import Device

LABELED_FRAMES = 16   # a full batch from the first step: no new plans while it is measured
WARM_UP_S = 5.0      # the first steps build their plans (and tune): not counted


def _core(args, device: Device) -> LoopCore:
    base = None
    if args.topology == "head":
        from loop.base.loading import open_base
        from loop.base.network import BaseNetwork
        base = BaseNetwork(device, open_base(args.base))
    spec = PatchSpec("bench", categories_from_names([n for _, n in CATEGORIES]),
                     topology=args.topology, tap=args.tap or live_tap(args.topology),
                     base_name=base.spec.name if base else "",
                     base_hash=base.hash if base else "")
    return LoopCore(spec, base=base, device=device,
                    settings=default_settings(topology=args.topology, batch_size=16))


def _label_frames(core: LoopCore, worker: VerdictWorker) -> None:
    """One disc inside the largest region of each category, on LABELED_FRAMES frames."""
    labeled, seen = 0, None
    while labeled < LABELED_FRAMES:
        time.sleep(0.05)
        latest = worker.latest_with_truth()
        if latest is None or latest[1].frame_id == seen:
            continue
        _, verdict, truth = latest
        seen = verdict.frame_id
        for region in regions(np.ones(truth.shape, bool), truth):
            click = click_inside(region, 12)
            if not label_click(core, verdict.frame_id, click):
                break
        labeled += 1


def _rates(core: LoopCore, worker: VerdictWorker, seconds: float) -> dict:
    verdicts, steps, start = worker.verdicts, core.trainer.status.steps, time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - start
    made = worker.verdicts - verdicts
    times = worker.verdict_times[-made:] if made else [0.0]
    return {"verdicts_per_second": round(made / elapsed, 2),
            "steps_per_second": round((core.trainer.status.steps - steps) / elapsed, 2),
            "verdict_median_ms": round(float(np.median(times)) * 1e3, 1)}


def run(args) -> int:
    device = Device.default()
    core = _core(args, device)
    worker = VerdictWorker(core, demo_source(args.seed, args.camera_fps))
    worker.start()
    try:
        _label_frames(core, worker)
        machine = MachineShare()
        idle = _rates(core, worker, min(5.0, args.seconds))
        core.start()
        time.sleep(WARM_UP_S)
        training = _rates(core, worker, args.seconds)
        share = machine.report()
    finally:
        worker.stop()
        core.close()
    report = {"device": device.describe(), "frame": "240x320", "topology": args.topology,
              "tap": core.spec.tap if args.topology == "head" else None,
              "trainer_batch": 16, "camera_fps": args.camera_fps, "idle": idle,
              "training": training, "machine": share}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        camera = f", a camera at {args.camera_fps:g} frames/s" if args.camera_fps else ""
        print(f"device: {report['device']}\n{args.topology} patch, batch 16{camera}: "
              f"{training['verdicts_per_second']} verdicts/s and "
              f"{training['steps_per_second']} steps/s while training "
              f"({idle['verdicts_per_second']} verdicts/s when not)")
        for line in machine_line(share):
            print(line)
    return 0
