"""Feature extraction for `train`: the feature store beside the sessions, keyed by what the
features depend on, filled shard by shard (on this machine, or on a Dask cluster through
train_cluster) and resumed where an earlier run stopped: committed shards are never
computed again."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from loop.core.folder_training import ExtractionPlan, FolderTraining, extract_shard
from loop.errors import UserError
from loop.store.data_folder import read_image_bytes
from loop.store.feature_store import FeatureStore
from loop.store.images import folder_image, load_folder_image
from loop.safe_files import check_plain_name


@dataclass
class Extraction:
    """What a run of extraction did: shards found committed, shards computed, base passes
    per second over the computed ones."""

    shards: int
    reused: int
    computed: int
    images_per_second: float


def store_path(session_dir: Path, data_dir) -> Path:
    """One store per data folder in a sessions folder: its name, and a digest of where it
    is (two folders of the same name do not share one)."""
    where = os.path.abspath(data_dir)
    try:
        name = check_plain_name(os.path.basename(where) or "folder", "folder name")
    except ValueError:
        name = "folder"
    digest = hashlib.sha256(os.fsencode(where)).hexdigest()[:12]
    return Path(session_dir) / f"{name}-{digest}.features.h5"


def store_key(core, plan: ExtractionPlan) -> dict:
    """Everything the stored features depend on: base, tap, fine-tune cut, input size,
    tilt-shift settings, and each image (path, category, size, modification time: an image
    changed or added makes a new store)."""
    images = hashlib.sha256()
    for n, (path, category) in enumerate(plan.items):
        info = os.lstat(path)
        images.update(os.fsencode(str(path)) + b"\0" + json.dumps(
            [category, n < len(plan.train_items), info.st_size, info.st_mtime_ns]).encode())
    settings = plan.augment
    return {"base_hash": core.base.hash, "tap": core.spec.tap,
            "input_layer": core.model.arch.input_layer, "fine_tune": core.spec.fine_tune,
            "base_input": list(core.base_input), "copies": settings.copies,
            "ranges": [settings.ranges.tilt_degrees, settings.ranges.shift,
                       settings.ranges.colour_shift, settings.ranges.gain],
            "flips": settings.flips, "seed": settings.seed, "shard_items": plan.shard_items,
            "images": images.hexdigest()}


def open_store(path: Path, core, plan: ExtractionPlan) -> FeatureStore:
    shards = [plan.shard_rows(s) for s in range(plan.shard_count)]
    return FeatureStore.open(path, store_key(core, plan), core.spec.tap,
                             core.model.feature_shape, plan.row_table(), shards)


def shard_files(plan: ExtractionPlan, shard: int) -> list:
    """The bytes of a shard's images (None for one that cannot be read: it is skipped)."""
    files = []
    for item in plan.shard_images(shard):
        try:
            files.append(read_image_bytes(plan.items[item][0]))
        except UserError:
            files.append(None)
    return files


def shard_images(plan: ExtractionPlan, shard: int, size, files: list) -> list:
    """A shard's image files' bytes decoded at the base's input size (None: unreadable)."""
    return [folder_image(data, f"image {item}", size)
            for item, data in zip(plan.shard_images(shard), files)]


def local_shards(core, plan: ExtractionPlan):
    """The shards computed here, one after the other, on the core's base."""
    def results(pending):
        for shard in pending:
            yield extract_shard(core, plan, shard, shard_images(plan, shard, core.base_input,
                                                                 shard_files(plan, shard)))
    return results


def fill_store(store: FeatureStore, plan: ExtractionPlan, results, progress=None) -> Extraction:
    """Every pending shard computed by `results(pending)` (in any order) and committed;
    `progress(done, total)` counts base passes, those of committed shards included."""
    pending = store.pending_shards()
    total = plan.total_rows
    done = total - sum(len(plan.shard_rows(s)) for s in pending)
    if progress:
        progress(done, total)
    start, computed, passes = time.perf_counter(), 0, 0
    for result in results(pending):
        store.write_shard(result.shard, result.features, result.readable)
        computed += 1
        passes += len(result.readable)
        done += len(result.readable)
        if progress:
            progress(done, total)
    seconds = time.perf_counter() - start
    return Extraction(plan.shard_count, plan.shard_count - len(pending), computed,
                      passes / seconds if seconds > 0 and passes else 0.0)


def build_job(core, plan: ExtractionPlan, path: Path, results=None, progress=None
              ) -> tuple[FolderTraining, Extraction, FeatureStore]:
    """The store at path filled (locally unless `results` says otherwise), and the
    training job streaming from it."""
    store = open_store(path, core, plan)
    try:
        done = fill_store(store, plan, results or local_shards(core, plan), progress)
    except BaseException:
        store.close()
        raise
    return FolderTraining(core, plan, store, load_folder_image), done, store
