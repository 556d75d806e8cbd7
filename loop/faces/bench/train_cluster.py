"""`patchloop bench train --images N`: feature extraction of N generated images (demo
crops: background, ball, box) into the feature store, in this process and on a local Dask
cluster of 1 and of 2 worker processes, in images per second (base passes, the workers'
start and base building included); and the peak resident memory of this process while it
extracts N images and trains an epoch streamed from the store."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.core.folder_training import AugmentSettings, ExtractionPlan
from loop.core.patch import Category, PatchSpec
from loop.errors import UserError
from loop.faces.bench.train import demo_folder
from loop.faces.train_cluster import ClusterShards, local_cluster
from loop.faces.train_extract import build_job, fill_store, open_store
from loop.store.data_folder import held_out_split, scan_folder
from patchloop_kernels.runtime import Device

MIN_IMAGES, MAX_IMAGES = 48, 200_000


def _memory_kb(field: str) -> int | None:
    """A line of /proc/self/status in kB (VmRSS: now, VmHWM: the peak), None off Linux."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def _restart_peak() -> bool:
    """The peak resident memory counted again from now (Linux's clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _in_process(core, plan: ExtractionPlan, path: Path) -> dict:
    """Extraction here and an epoch of training from the store, with the peak memory."""
    before, restarted = _memory_kb("VmRSS"), _restart_peak()
    start = time.perf_counter()
    job, done, store = build_job(core, plan, path)
    seconds = time.perf_counter() - start
    for _ in range(job.steps_per_epoch()):
        job.step()
    accuracy = job.held_out_accuracy()
    peak = _memory_kb("VmHWM") if restarted else None
    store.close()
    return {"images_per_second": round(plan.total_rows / seconds, 2),
            "held_out_accuracy_after_an_epoch": round(accuracy, 4),
            "peak_resident_mb": round(peak / 1024) if peak else None,
            "grown_mb": round((peak - before) / 1024, 1) if peak and before else None}


def _on_workers(core, plan: ExtractionPlan, path: Path, base_path, workers: int) -> float:
    from distributed import Client
    start = time.perf_counter()
    with local_cluster(workers) as cluster, Client(cluster) as client:
        store = open_store(path, core, plan)
        fill_store(store, plan, ClusterShards(client, base_path, core, plan))
        store.close()
    return round(plan.total_rows / (time.perf_counter() - start), 2)


def run(args) -> int:
    images = args.images
    if not MIN_IMAGES <= images <= MAX_IMAGES:
        raise UserError(f"--images {images}: choose {MIN_IMAGES} to {MAX_IMAGES}")
    device = Device.default()
    base = BaseNetwork(device, open_base(args.base))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        demo_folder(root / "data", 0, images)
        folder = scan_folder(root / "data")
        spec = PatchSpec("bench", tuple(Category(c.tag, i, c.name)
                                        for i, c in enumerate(folder.categories)),
                         pooling="mean", base_name=base.spec.name, base_hash=base.hash)
        core = LoopCore(spec, base=base)
        plan = ExtractionPlan(*map(tuple, held_out_split(folder.images, 0.1, 0)),
                              AugmentSettings())
        report = {"device": device.describe(), "images": len(folder.images),
                  "feature_store_mb": round(plan.total_rows * 4 * _row_floats(core) / 2 ** 20),
                  "in_process": _in_process(core, plan, root / "here.h5")}
        for workers in (1, 2):
            report[f"workers_{workers}_images_per_second"] = _on_workers(
                core, plan, root / f"workers-{workers}.h5", args.base, workers)
        core.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    here = report["in_process"]
    print(f"{report['images']} images ({report['feature_store_mb']} MB of features): "
          f"extraction {here['images_per_second']} images/s in this process, "
          f"{report['workers_1_images_per_second']} images/s on 1 local worker, "
          f"{report['workers_2_images_per_second']} images/s on 2; peak resident memory "
          f"{here['peak_resident_mb']} MB while extracting and training an epoch (grown by "
          f"{here['grown_mb']} MB); held-out accuracy after an epoch "
          f"{here['held_out_accuracy_after_an_epoch']:.3f}")
    return 0


def _row_floats(core) -> int:
    c, h, w = core.model.feature_shape
    return c * h * w
