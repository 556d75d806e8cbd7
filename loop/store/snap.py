"""Snapping a frame into a training-data folder (map_clsloc.txt layout), so that
`patchloop train` can use it at once. The folder's map is created or extended by appending;
existing lines are never rewritten, so existing indices never change."""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from loop.store.data_folder import scan_folder


def snap_frame(folder, image: np.ndarray, tag: str, name: str) -> Path:
    """Writes `<tag>_<time>.png` under `folder/<name>/`; returns its path."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    map_path = root / "map_clsloc.txt"
    scanned = scan_folder(root) if map_path.is_file() else None
    known = scanned.categories + scanned.triggers if scanned else []
    if not any(c.tag == tag for c in known):
        index = max((c.index for c in known), default=-1) + 1
        prefix = "" if not map_path.is_file() or map_path.read_bytes().endswith(b"\n") \
            or map_path.stat().st_size == 0 else "\n"
        with open(map_path, "a") as f:
            f.write(f"{prefix}{tag} {index} {name}\n")
            f.flush()
            os.fsync(f.fileno())
    target = root / name
    target.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    path = target / f"{tag}_{stamp}.png"
    n = 1
    while path.exists():
        path = target / f"{tag}_{stamp}-{n}.png"
        n += 1
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise OSError(f"could not write {path}")
    return path


def default_snap_category(spec, said: int) -> int:
    """The category the patch did not say: for two categories the other one; otherwise
    background when it said something, else the first non-background category."""
    if spec.outputs == 2:
        return 1 - said
    return 0 if said != 0 else 1

