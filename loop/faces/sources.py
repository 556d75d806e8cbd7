"""Where frames come from: a webcam, a video file (looping), a folder of images, or the
built-in demo scene. Every source gives uint8 RGB frames; `read()` returns None while no
frame is available (a camera that disconnected), and the caller keeps going."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from loop.demo.scene import DemoScene
from loop.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class DemoSource:
    name = "demo scene"

    def __init__(self, seed: int = 0, fps: float = 30.0):
        self.scene = DemoScene(seed=seed)
        self.fps = fps
        self.start = time.monotonic()
        self.last = None

    def read(self):
        """The scene at the current time: the demo moves in real time, like a camera."""
        index = int((time.monotonic() - self.start) * self.fps)
        self.last = self.scene.frame(index)
        return self.last.image

    def last_truth(self):
        """The ground truth of the frame `read` returned last (the demo knows it)."""
        return None if self.last is None else self.last.truth

    def close(self):
        pass


class CameraSource:
    def __init__(self, index: int):
        self.index = index
        self.name = f"camera {index}"
        self.capture = cv2.VideoCapture(index)
        self.lost = False

    def works(self) -> bool:
        return self.capture.isOpened() and self.read() is not None

    def read(self):
        ok, bgr = self.capture.read()
        if not ok or bgr is None:
            self.lost = True
            # A camera that went away: try to open it again, keep the caller running.
            self.capture.release()
            self.capture = cv2.VideoCapture(self.index)
            return None
        self.lost = False
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def close(self):
        self.capture.release()


class VideoSource:
    def __init__(self, path: str):
        if not Path(path).is_file():
            raise UserError(f"{path}: no such video file")
        self.path = path
        self.name = Path(path).name
        self.capture = cv2.VideoCapture(path)
        if not self.capture.isOpened() or self.capture.read()[0] is False:
            raise UserError(f"{path}: not a video OpenCV can read")
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def read(self):
        ok, bgr = self.capture.read()
        if not ok:  # looping
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self.capture.read()
            if not ok:
                return None
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def close(self):
        self.capture.release()


class ImagesSource:
    def __init__(self, folder: str, seconds_per_image: float = 1.0):
        root = Path(folder)
        if not root.is_dir():
            raise UserError(f"{folder}: no such folder")
        self.paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise UserError(f"{folder}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.name = f"{len(self.paths)} images in {root.name}"
        self.seconds = seconds_per_image
        self.start = time.monotonic()
        self._cache: dict[int, np.ndarray | None] = {}

    def read(self):
        i = int((time.monotonic() - self.start) / self.seconds) % len(self.paths)
        if i not in self._cache:
            bgr = cv2.imread(str(self.paths[i]), cv2.IMREAD_COLOR)
            self._cache = {i: None if bgr is None else np.ascontiguousarray(bgr[:, :, ::-1])}
        return self._cache[i]

    def close(self):
        pass


def open_source(camera=None, video=None, images=None, demo=False, seed=0):
    """(source, note): the chosen source, or the demo with a note when no camera works."""
    if video:
        return VideoSource(video), None
    if images:
        return ImagesSource(images), None
    if demo:
        return DemoSource(seed), None
    index = 0 if camera is None else camera
    cam = CameraSource(index)
    if cam.works():
        return cam, None
    cam.close()
    if camera is not None:
        raise UserError(f"camera {camera} gives no frames (try --demo, or another index)")
    return DemoSource(seed), "no camera found: showing the built-in demo scene"
