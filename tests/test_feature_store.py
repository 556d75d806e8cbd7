"""The feature store: reused while its key matches, rebuilt when not (or damaged), never
through a planted link; an extraction killed midway (kill -9 of a real `train`) goes on
where it stopped with identical features, computing no committed shard again and keeping no
torn one; training streams from it with memory bounded."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from loop.cli import main
from loop.errors import UserError
from loop.store.feature_store import FeatureStore
from test_folder_training import folder_core, make_folder
from child_env import child_env



def _plan(folder, copies=1, seed=0):
    from loop.core.folder_training import AugmentSettings, ExtractionPlan
    return ExtractionPlan(tuple(folder.images[:-2]), tuple(folder.images[-2:]),
                          AugmentSettings(copies, seed=seed), shard_items=2)


def _all_rows(store):
    return store.read_rows(np.arange(len(store.readable)))


def test_the_store_is_reused_when_its_key_matches_and_rebuilt_when_not(device, base_spec,
                                                                       tmp_path):
    from loop.faces.train_extract import fill_store, local_shards, open_store
    from loop.store.data_folder import scan_folder
    make_folder(tmp_path / "data", per_category=2)
    folder = scan_folder(tmp_path / "data")
    core = folder_core(device, base_spec, folder)
    plan, path = _plan(folder), tmp_path / "f.h5"
    store = open_store(path, core, plan)
    done = fill_store(store, plan, local_shards(core, plan))
    assert (done.shards, done.reused, done.computed) == (3, 0, 3)
    first, commits = _all_rows(store), store.commit.copy()
    assert store.readable.all() and np.isfinite(first).all() and (commits > 0).all()
    assert not np.array_equal(first[0], first[1]), "a tilt-shift copy has features of its own"
    store.close()

    store = open_store(path, core, plan)
    again = fill_store(store, plan, local_shards(core, plan))
    assert (again.reused, again.computed) == (3, 0), "nothing computed again"
    assert np.array_equal(store.commit, commits) and np.array_equal(_all_rows(store), first)
    store.close()

    other = _plan(folder, seed=5)  # other tilt-shift copies: other features
    store = open_store(path, core, other)
    assert store.pending_shards() == [0, 1, 2], "rebuilt for the new key"
    fill_store(store, other, local_shards(core, other))
    rows = _all_rows(store)
    assert np.array_equal(rows[0], first[0]) and not np.array_equal(rows[1], first[1])
    store.close()

    path.write_bytes(b"\x89HDF\r\n not a store at all")  # damaged: replaced
    store = open_store(path, core, plan)
    assert store.pending_shards() == [0, 1, 2]
    store.close()
    path.unlink()
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone's file")
    os.symlink(victim, path)
    with pytest.raises(UserError, match="not a regular file"):
        open_store(path, core, plan)
    assert victim.read_bytes() == b"someone's file"


def _wait_for_a_commit(sessions: Path, child, shards: int) -> np.ndarray:
    """The store's commit record once the child has committed a shard (polled)."""
    while child.poll() is None:
        found = list(sessions.glob("*.features.h5"))
        if found:
            store = FeatureStore.read(found[0], "stride16")
            commit = store.commit
            store.close()
            if (commit > 0).any():
                return commit
        time.sleep(0.005)
    raise AssertionError(f"train ended ({child.returncode}) before a shard was committed")


def test_extraction_killed_midway_resumes_with_identical_features(base_spec, tmp_path,
                                                                  capsys):
    make_folder(tmp_path / "data", per_category=14)  # 42 images: 3 shards of 16
    argv = ["train", str(tmp_path / "data"), "--headless", "--no-augment", "--epochs", "1",
            "--base", str(base_spec.path)]
    sessions = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-m", "loop"] + argv + ["--session", str(sessions / "s.h5")],
        env=child_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        _wait_for_a_commit(sessions, child, 3)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    path = next(sessions.glob("*.features.h5"))
    store = FeatureStore.read(path, "stride16")  # what the kill left (it may have committed
    kept = store.commit.copy()                   # another shard since the first was seen)
    store.close()
    assert 0 < (kept > 0).sum() < 3, f"killed midway: {kept}"
    with h5py.File(path, "r+") as f:  # what a kill in the middle of a shard's write leaves
        torn = f["shards"][int(np.flatnonzero(kept == 0)[0])]
        f["features/stride16"][torn[0]:torn[1]] = np.nan

    assert main(argv + ["--session", str(sessions / "s.h5")]) == 0
    out = capsys.readouterr().out
    assert f"features: {(kept > 0).sum()} of 3 shards were in" in out
    assert main(argv + ["--session", str(tmp_path / "whole" / "s.h5")]) == 0
    resumed = FeatureStore.read(path, "stride16")
    whole = FeatureStore.read(next((tmp_path / "whole").glob("*.features.h5")), "stride16")
    assert (resumed.commit > 0).all()
    assert np.array_equal(resumed.commit[kept > 0], kept[kept > 0]), \
        "committed shards are not computed again"
    assert np.array_equal(resumed.readable, whole.readable)
    assert np.array_equal(_all_rows(resumed), _all_rows(whole)), "identical features"
    resumed.close()
    whole.close()


MEMORY_CHILD = """
import sys
import numpy as np
from pathlib import Path
from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.core.folder_training import AugmentSettings, ExtractionPlan, FolderTraining
from loop.store.images import load_folder_image
from loop.core.patch import Category, PatchSpec
from loop.faces.train import finish_training
from loop.faces.train_extract import fill_store, local_shards, open_store
from loop.store.data_folder import held_out_split, scan_folder
from patchloop_kernels.runtime import Device

data, base_path, out = sys.argv[1:4]
folder = scan_folder(data)
base = BaseNetwork(Device.default(), open_base(base_path))
spec = PatchSpec("m", tuple(Category(c.tag, i, c.name) for i, c in enumerate(folder.categories)),
                 pooling="mean", base_name=base.spec.name, base_hash=base.hash)
core = LoopCore(spec, base=base)


def run(images, name, pool_bytes):  # extraction, two epochs from the store, the session
    plan = ExtractionPlan(*map(tuple, held_out_split(images, 0.1, 0)), AugmentSettings())
    store = open_store(Path(out) / f"{name}.h5", core, plan)
    fill_store(store, plan, local_shards(core, plan))
    job = FolderTraining(core, plan, store, load_folder_image, pool_bytes=pool_bytes)
    largest = 0
    for _ in range(2 * job.steps_per_epoch()):
        job.step()
        largest = max(largest, len(core.frames))
    finish_training(Path(out) / f"{name}-session.h5", core, job, 2, False, [])
    return plan, job, largest


def status(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith(field + ":"))


run(folder.images[::12], "small", 4 << 20)  # kernels built, plans made: what any run holds
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # the peak (VmHWM) starts again from here
    f.write("5")
plan, job, largest = run(folder.images, "large", 4 << 20)
after = status("VmHWM")
print(before, after, largest, job.pool_rows, plan.total_rows)
"""


def test_training_streams_from_the_store_with_memory_bounded(base_spec, tmp_path):
    """240 images whose features (31 MB) and pictures (53 MB) a run held in memory before:
    now the peak resident memory grows by a fraction of that, the pool stays within its
    bytes, and the session is written frame by frame."""
    make_folder(tmp_path / "data", per_category=80)
    child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(tmp_path / "data"),
                            str(base_spec.path), str(tmp_path)],
                           env=child_env(), capture_output=True,
                           text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    before, after, largest, pool_rows, rows = map(int, child.stdout.split())
    feature_mb = rows * 112 * 15 * 20 * 4 / 2 ** 20
    held_before_mb = feature_mb + rows * 240 * 320 * 3 / 2 ** 20  # and every picture
    grown_mb = (after - before) / 1024
    print(f"\npeak resident memory {after / 1024:.0f} MB, grown by {grown_mb:.1f} MB while "
          f"{rows} images' features ({feature_mb:.0f} MB) were extracted and trained on")
    assert largest <= pool_rows == (4 << 20) // (112 * 15 * 20 * 4)
    assert grown_mb < held_before_mb / 3, (grown_mb, held_before_mb)
