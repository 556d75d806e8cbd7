"""Run by the kill -9 tests: a fork server. It imports the store once (forking is cheaper
than starting Python each time), then for each line
`MODE PATH SEED [SOURCES...]` on stdin forks a worker, prints "pid N", and after the worker
ends (finished or killed by the test) prints "exit". Workers print "ack N" once label N is
durable (mode labels) or "done" when their whole write is (modes train, merge, export).

    labels  PATH SEED        writes labels as fast as it can, consolidating now and then
    train   PATH SEED        a whole trained session at once (what `train` saves)
    merge   OUT SEED A B     `merge A B -o OUT`
    export  OUT SEED SESSION `export SESSION -o OUT` (a pixels patch: no base needed)
"""
import os
import sys
import traceback

import numpy as np

from loop.core.labels import LabelDisc, WholeFrameLabel
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.patch_arch import patch_arch
from loop.core.settings import TrainerSettings
from loop.store.plugin_export import export_snapshot
from loop.store.merge import merge_files
from loop.core.snapshot import Snapshot
from loop.store.records import LabelRecord, SessionState
from loop.store.session import SessionStore
from loop.store.session_loader import load_session

SPEC = PatchSpec("kill", categories_from_names(["bg", "thing"]), topology="pixels")
WEIGHTS = sum(int(np.prod(g.weight_shape)) + g.c_out for g in patch_arch(SPEC).layers)


def labels(path: str, seed: int) -> None:
    store = SessionStore.create(path, SPEC, TrainerSettings())
    print("ready", flush=True)
    for n in range(100000):
        frame_id = n // 3
        image = np.full((24, 32, 3), (frame_id + seed) % 256, np.uint8)
        store.add_label(frame_id, image, LabelDisc(float(n), 1.0, 2.0, n % 2), when=float(n))
        print(f"ack {n}", flush=True)
        if n % 11 == 10:
            store.consolidate()


def trained_state(seed: int, frames: int = 40) -> SessionState:
    """What `train` saves: frames, a whole-frame label each, a snapshot, the loss log."""
    rng = np.random.default_rng(seed)
    state = SessionState(SPEC, TrainerSettings(), 1.0)
    for frame_id in range(frames):
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        state.add_frame(frame_id, 96, 128, image)
        state.labels.append(LabelRecord.of(frame_id, WholeFrameLabel(frame_id % 2), 2.0))
    weights = rng.standard_normal(WEIGHTS).astype(np.float32)
    state.snapshots["20260101-000000-0000abcd"] = Snapshot(
        "20260101-000000-0000abcd", 3.0, SPEC, weights, weights * 0, state.settings,
        np.zeros(2, np.int64), 0)
    state.loss_log = [(i, 1.0 / (i + 1)) for i in range(100)]
    return state


def work(mode: str, path: str, seed: int, sources: list[str]) -> None:
    if mode == "labels":
        labels(path, seed)
    elif mode == "train":
        SessionStore.write_new(path, trained_state(seed))
    elif mode == "merge":
        merge_files(sources[0], sources[1], path)
    elif mode == "export":
        state = load_session(sources[0], frames=False).state
        snapshot = state.latest_snapshot()
        export_snapshot(state.spec, snapshot.weights, path, snapshot.tag)
    print("done", flush=True)


def serve() -> None:
    for line in sys.stdin:
        mode, path, seed, *sources = line.split()
        sys.stdout.flush()
        go_read, go_write = os.pipe()  # the worker waits until its pid is out: lines stay in order
        pid = os.fork()
        if pid == 0:
            os.read(go_read, 1)
            try:
                work(mode, path, int(seed), sources)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                os._exit(0)
        print(f"pid {pid}", flush=True)
        os.write(go_write, b"g")
        os.close(go_read)
        os.close(go_write)
        os.waitpid(pid, 0)
        print("exit", flush=True)


if __name__ == "__main__":
    serve()
