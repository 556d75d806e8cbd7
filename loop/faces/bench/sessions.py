"""`patchloop bench sessions [--json]`: what a growing session costs. For generated
sessions of 100, 1,000 and 5,000 labeled frames (240x320, camera-like: gradients and
noise), a fresh process opens the session for writing (as `live --session` resumes it),
adds 10 frames with a label each and a snapshot, and closes it (the changes are appended to
the file): the seconds to open and to close, that process's peak resident memory, and the
file's size."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (100, 1000, 5000)
NEW_FRAMES = 10
FRAME_HW = (240, 320)


def camera_frame(index: int, _cache={}) -> np.ndarray:
    """A frame that compresses like a camera's: smooth gradients with sensor noise (both
    made once; each frame shifts them)."""
    if not _cache:
        h, w = FRAME_HW
        ys, xs = np.mgrid[0:h, 0:2 * w]
        _cache["base"] = np.stack([xs % 256, (ys * 2) % 256, (xs + ys) % 256], -1) \
            .astype(np.uint8)
        _cache["noise"] = np.random.default_rng(0).integers(0, 12, (h + 64, w, 3), np.uint8)
    h, w = FRAME_HW
    shift = index % w
    noise = _cache["noise"][index % 64:index % 64 + h]
    return _cache["base"][:, shift:shift + w] + noise


def generate(path: Path, frames: int) -> None:
    """A session of `frames` frames, a label each and one snapshot, written frame by frame."""
    from loop.core.labels import LabelDisc
    from loop.store.records import LabelRecord, SessionState
    from loop.store.session import SessionStore
    state = SessionState(_spec(), _settings(), time.time())
    for i in range(frames):
        state.add_frame(i, *FRAME_HW)
        state.labels.append(LabelRecord.of(i, LabelDisc(160, 120, 20, i % 2), float(i)))
    state.snapshots[_snapshot().tag] = _stored(_snapshot())
    SessionStore.write_new(path, state, ((i, camera_frame(i)) for i in range(frames)),
                           holder="patchloop bench")


def measure_open_close(path: str) -> dict:
    """Run in a fresh process: open for writing, add NEW_FRAMES labeled frames and a
    snapshot, close; the times and this process's peak resident memory."""
    from loop.core.labels import LabelDisc
    from loop.store.session import SessionStore
    start = time.perf_counter()
    store = SessionStore.open(path, holder="patchloop bench")
    opened = time.perf_counter() - start
    first = max(store.state.frame_shapes) + 1
    for i in range(first, first + NEW_FRAMES):
        store.add_label(i, camera_frame(i), LabelDisc(160, 120, 20, 1), when=float(i))
    store.save_snapshot(_snapshot())
    start = time.perf_counter()
    store.close()
    closed = time.perf_counter() - start
    return {"open_seconds": round(opened, 3), "close_seconds": round(closed, 3),
            "peak_rss_mb": round(_peak_resident() / 2**20, 1)}


def _peak_resident() -> int:
    """This process's peak resident bytes. VmHWM where there is /proc: ru_maxrss would also
    count the parent's memory at the fork before this process's exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def measure(frames: int, folder: Path) -> dict:
    path = folder / f"bench-{frames}.h5"
    generate(path, frames)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    child = subprocess.run(
        [sys.executable, "-c", "import json, sys; from loop.faces.bench.sessions import "
         "measure_open_close as m; print(json.dumps(m(sys.argv[1])))", str(path)],
        capture_output=True, text=True, env=env, check=True)
    result = {"frames": frames, **json.loads(child.stdout)}
    result["file_mb"] = round(path.stat().st_size / 2**20, 1)
    return result


def run(args, sizes=SIZES) -> int:
    with tempfile.TemporaryDirectory(prefix="patchloop-bench-") as folder:
        rows = [measure(n, Path(folder)) for n in sizes]
    report = {"frame": f"{FRAME_HW[1]}x{FRAME_HW[0]} RGB", "added_on_reopen": NEW_FRAMES,
              "sessions": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for r in rows:
        print(f"{r['frames']:>6} frames: open {r['open_seconds']:.3f} s, close "
              f"{r['close_seconds']:.3f} s (+{NEW_FRAMES} frames and a snapshot), peak "
              f"{r['peak_rss_mb']:.0f} MB resident, file {r['file_mb']:.1f} MB")
    return 0


def _spec():
    from loop.core.patch import PatchSpec, categories_from_names
    return PatchSpec("bench", categories_from_names(["background", "object"]),
                     topology="pixels")


def _settings():
    from loop.core.settings import default_settings
    return default_settings(topology="pixels")


def _snapshot():
    from loop.core.patch_arch import patch_arch
    from loop.core.snapshot import Snapshot
    size = sum(int(np.prod(g.weight_shape)) + g.c_out for g in patch_arch(_spec()).layers)
    weights = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    return Snapshot(f"20260101-000000-{int(time.time() * 1e6) % 10**8:08d}", time.time(),
                    _spec(), weights, np.zeros_like(weights), _settings(), np.array([1, 1]),
                    10)


def _stored(snapshot):
    from loop.store.records import stored_snapshot
    return stored_snapshot(snapshot)
