"""`patchloop bench train`: throughput of folder training on a folder made from the demo
scene (crops: background, ball, box): images per second for feature extraction (base
forward included, into a feature store) and for training (streamed from it), and the
held-out accuracy reached, on the frozen base and, in the same run, fine-tuning the base's
last blocks (--fine-tune). With --images N: extraction on N generated images in this
process and on 1 and 2 local Dask workers, and the peak memory (bench_train_cluster)."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.core.folder_training import AugmentSettings, ExtractionPlan
from loop.core.patch import Category, PatchSpec
from loop.core.settings import default_settings
from loop.core.tuned_blocks import blocks_below
from loop.demo.scene import HELD_OUT_START, DemoScene
from loop.errors import UserError
from loop.faces.train_extract import build_job
from loop.store.data_folder import scan_folder
from patchloop_kernels.runtime import Device

IMAGES = 48
CROP = 96
STEPS = 30


def demo_folder(root: Path, first: int, images: int = IMAGES) -> None:
    """`images` crops of demo frames from frame `first` on, a third each: background only,
    the ball, the box (the objects share colours with distractors, so colour alone fails)."""
    root.mkdir(parents=True)
    scene = DemoScene(seed=3)
    rng = np.random.default_rng(first)
    (root / "map_clsloc.txt").write_text("n1 0 background\nn2 1 ball\nn3 2 box\n")
    wanted = images // 3
    made = [0, 0, 0]
    index = first
    while min(made) < wanted:
        frame = scene.frame(index)
        index += 11
        for category in (0, 1, 2):
            crop = _crop(frame, category, rng)
            if crop is not None and made[category] < wanted:
                name = f"n{category + 1}_{index}.png"
                cv2.imwrite(str(root / name), crop[:, :, ::-1])
                made[category] += 1


def _crop(frame, category: int, rng) -> np.ndarray | None:
    """A CROP-pixel square around the object (mostly in view), or one with no object."""
    h, w = frame.truth.shape
    if category == 0:
        y, x = int(rng.integers(0, h - CROP)), int(rng.integers(0, w - CROP))
        return frame.image[y:y + CROP, x:x + CROP] if not frame.truth[y:y + CROP, x:x + CROP].any() \
            else None
    ys, xs = np.nonzero(frame.truth == category)
    if len(xs) < 300:
        return None
    y = int(np.clip(ys.mean() - CROP / 2, 0, h - CROP))
    x = int(np.clip(xs.mean() - CROP / 2, 0, w - CROP))
    return frame.image[y:y + CROP, x:x + CROP]


def _measure(base, root: Path, fine_tune: int) -> dict:
    """Feature extraction over the training and held-out images, STEPS training steps, and
    the held-out accuracy they reach."""
    folder, held = scan_folder(root / "train"), scan_folder(root / "held")
    spec = PatchSpec("bench", tuple(Category(c.tag, i, c.name)
                                    for i, c in enumerate(folder.categories)),
                     pooling="mean", base_name=base.spec.name, base_hash=base.hash,
                     fine_tune=fine_tune)
    # Folder training has no clicks for the steps between them to settle after (its figures
    # were measured at one rate).
    core = LoopCore(spec, base=base, settings=default_settings(fine_tune, consolidation_steps=0))
    plan = ExtractionPlan(tuple(folder.images), tuple(held.images), AugmentSettings())
    start = time.perf_counter()
    job, _, store = build_job(core, plan, root / f"features-{fine_tune}.h5")
    extract_s = time.perf_counter() - start
    job.step()  # warm-up: first launches compile
    start = time.perf_counter()
    for _ in range(STEPS):
        job.step()
    train_s = time.perf_counter() - start
    batch = core.trainer.settings.batch_size
    result = {"fine_tune_blocks": list(core.model.arch.tuned_blocks),
              "feature_images_per_second": round(2 * IMAGES / extract_s, 2),
              "training_images_per_second": round(STEPS * batch / train_s, 2),
              "training_steps_per_second": round(STEPS / train_s, 2),
              "held_out_accuracy": round(job.held_out_accuracy(), 4),
              "trained_parameters": core.model.layout.dense_size, "batch": batch}
    store.close()
    core.close()
    return result


def run(args) -> int:
    if getattr(args, "images", None) is not None:
        from loop.faces.bench import train_cluster as bench_train_cluster
        return bench_train_cluster.run(args)
    device = Device.default()
    base = BaseNetwork(device, open_base(args.base))
    available = len(blocks_below(base.spec, "stride16"))
    if not 0 <= args.fine_tune <= available:
        raise UserError(f"--fine-tune {args.fine_tune}: the base has {available} blocks up to "
                        f"its stride16 tap; choose 0 to {available}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        demo_folder(root / "train", 0)
        demo_folder(root / "held", HELD_OUT_START)
        frozen = _measure(base, root, 0)
        tuned = _measure(base, root, args.fine_tune) if args.fine_tune else None
    report = {"device": device.describe(), "images": IMAGES, "held_out_images": IMAGES,
              "frame": "240x320", "steps": STEPS, **frozen}
    if tuned is not None:
        report["fine_tuned"] = tuned
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name, r in (("frozen base", frozen), (f"fine-tune {args.fine_tune}", tuned)):
        if r is not None:
            print(f"{name}: feature extraction {r['feature_images_per_second']} images/s; "
                  f"training {r['training_images_per_second']} images/s "
                  f"({r['training_steps_per_second']} steps/s at batch {r['batch']}); held-out "
                  f"accuracy after {STEPS} steps {r['held_out_accuracy']:.3f}")
    return 0
