"""`patchloop bench train`: throughput of folder training on a folder made from the demo
scene (images with and without the ball): images per second for feature extraction (base
forward included) and for training."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import cv2

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.core.folder_training import FolderTraining
from loop.core.patch import Category, PatchSpec
from loop.demo.scene import DemoScene
from loop.store.data_folder import scan_folder
from patchloop_kernels.runtime import Device

IMAGES = 48
STEPS = 30


def _demo_folder(root: Path) -> None:
    scene = DemoScene(seed=3)
    (root / "map_clsloc.txt").write_text("n1 0 no_ball\nn2 1 ball\n")
    made = {0: 0, 1: 0}
    index = 0
    while min(made.values()) < IMAGES // 2:
        frame = scene.frame(index)
        index += 7
        category = int((frame.truth == 1).sum() > 300)
        if made[category] < IMAGES // 2:
            cv2.imwrite(str(root / f"n{category + 1}_{index}.png"), frame.image[:, :, ::-1])
            made[category] += 1


def run(args) -> int:
    device = Device.default()
    base = BaseNetwork(device, open_base(args.base))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _demo_folder(root)
        folder = scan_folder(root)
        spec = PatchSpec("bench", tuple(Category(c.tag, i, c.name)
                                        for i, c in enumerate(folder.categories)),
                         pooling="mean", base_name=base.spec.name, base_hash=base.hash)
        core = LoopCore(spec, base=base)
        job = FolderTraining(core, folder.images, [])
        start = time.perf_counter()
        job.extract(augment_copies=False)
        extract_s = time.perf_counter() - start
        core.trainer.step()  # warm-up: first launches compile
        start = time.perf_counter()
        for _ in range(STEPS):
            core.trainer.step()
        train_s = time.perf_counter() - start
        batch = core.trainer.settings.batch_size
        core.close()
    report = {"device": device.describe(), "images": IMAGES, "frame": "240x320",
              "feature_images_per_second": round(IMAGES / extract_s, 2),
              "training_images_per_second": round(STEPS * batch / train_s, 2),
              "training_steps_per_second": round(STEPS / train_s, 2), "batch": batch}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"feature extraction {report['feature_images_per_second']} images/s; training "
              f"{report['training_images_per_second']} images/s "
              f"({report['training_steps_per_second']} steps/s at batch {batch})")
    return 0
