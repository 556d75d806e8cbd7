"""Where frames come from: a webcam, a video file (looping), a folder of images, or the
built-in demo scene. Every source gives uint8 RGB frames; `read()` returns None while no
frame is available (a camera that disconnected), and the caller keeps going."""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from loop.demo.scene import DemoScene
from loop.errors import UserError
from loop.faces.wording import listed
from loop.store.images import read_rgb
from loop.safe_files import open_input, shown

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MAX_VIDEO_BYTES = 64 << 30
MAX_FRAME_SIDE = 4096  # pixels: larger frames are refused (the session stores frames)
# Camera indices tried, in order, without --camera: a webcam can take two (its second node
# gives metadata, not frames), so a second camera is often 2.
CAMERA_INDICES = (0, 1, 2)


class DemoSource:
    name = "demo scene"

    def __init__(self, seed: int = 0, fps: float = 30.0, like_a_camera: bool = False):
        """like_a_camera: a read waits for the scene's next frame, as a camera's does (the
        verdicts then wait between frames); otherwise it returns the scene at once, and a
        device faster than `fps` judges some frames twice."""
        self.scene = DemoScene(seed=seed)
        self.fps = fps
        self.like_a_camera = like_a_camera
        self.start = time.monotonic()
        self.last = None
        self._index = -1

    def read(self):
        """The scene at the current time: the demo moves in real time, like a camera."""
        index = self._frame_index()
        while self.like_a_camera and index == self._index:
            time.sleep(max(0.0, (index + 1) / self.fps - (time.monotonic() - self.start)))
            index = self._frame_index()
        self._index = index
        self.last = self.scene.frame(index)
        return self.last.image

    def _frame_index(self) -> int:
        return int((time.monotonic() - self.start) * self.fps)

    def last_truth(self):
        """The ground truth of the frame `read` returned last (the demo knows it)."""
        return None if self.last is None else self.last.truth

    def close(self):
        pass


def demo_source(seed: int, camera_fps: float | None = None) -> DemoSource:
    """The demo read as fast as it is judged, or (camera_fps) like a camera at that rate."""
    if camera_fps is None:
        return DemoSource(seed=seed)
    return DemoSource(seed=seed, fps=camera_fps, like_a_camera=True)


@contextmanager
def _opencv_silent():
    """OpenCV logs WARN and ERROR lines for each camera index it cannot open, one per backend
    it tried; the user gets one line of ours instead, saying what came of it."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _open_camera(index: int):
    with _opencv_silent():
        return cv2.VideoCapture(index)


class ReleasedAfterRead:
    """A source whose `close()` may come while another thread is inside its `read()` (the
    verdicts' frame reader; a camera's read can block for seconds once unplugged). Releasing
    a capture under a read can crash OpenCV, so the release then waits for the read to end
    and is made by the reader; a closed source is never read or opened again."""

    def __init__(self):
        self._guard = threading.Lock()
        self._reading = False
        self.closed = False

    def read(self):
        """The next frame (RGB), or None: closed (before or during the read), or none came."""
        with self._guard:
            if self.closed:
                return None
            self._reading = True
        try:
            ok, bgr = self._grab()
        finally:
            with self._guard:
                self._reading = False
                closed = self.closed
                if closed:   # closed during the read: released here, now
                    self._release()
        return None if closed else self._frame(ok, bgr)

    def _grab(self):
        """(ok, BGR image) from the capture, inside the read."""
        raise NotImplementedError

    def _frame(self, ok: bool, bgr):
        """The RGB frame of a grab, or None; after the read, the source still open."""
        raise NotImplementedError

    def close(self) -> None:
        with self._guard:
            if self.closed:
                return
            self.closed = True
            if self._reading:
                return   # the read releases when it returns
            self._release()

    def _release(self) -> None:
        raise NotImplementedError


class CameraSource(ReleasedAfterRead):
    def __init__(self, index: int):
        super().__init__()
        self.index = index
        self.name = f"camera {index}"
        self.capture = _open_camera(index)
        self.lost = False

    def works(self) -> bool:
        with _opencv_silent():
            return self.capture.isOpened() and self.read() is not None

    def _grab(self):
        return self.capture.read()

    def _frame(self, ok: bool, bgr):
        if not ok or bgr is None:
            self.lost = True
            # A camera that went away: try to open it again, keep the caller running.
            with self._guard:
                if not self.closed:
                    self.capture.release()
                    self.capture = _open_camera(self.index)
            return None
        self.lost = False
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def _release(self) -> None:
        self.capture.release()


class VideoSource(ReleasedAfterRead):
    """A video file, looping. OpenCV is given the file already opened here, by descriptor
    (a name that is not UTF-8 crashes it, a FIFO hangs it), and frames over the size limit
    are refused before the first is decoded."""

    def __init__(self, path: str):
        super().__init__()
        if not os.path.lexists(path):
            raise UserError(f"{shown(path)}: no such video file")
        self.file = open_input(path, MAX_VIDEO_BYTES, "video")
        self.path = path
        self.name = shown(os.path.basename(path))
        self.capture = cv2.VideoCapture(_opened_name(self.file, path))
        try:
            self._check(path)
        except BaseException:
            self.close()
            raise
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def _check(self, path: str) -> None:
        if not self.capture.isOpened():
            raise UserError(f"{shown(path)}: not a video OpenCV can read")
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if not 0 < width <= MAX_FRAME_SIDE or not 0 < height <= MAX_FRAME_SIDE:
            raise UserError(f"{shown(path)}: frames of {width}x{height}; at most "
                            f"{MAX_FRAME_SIDE}x{MAX_FRAME_SIDE} are read")
        if self.capture.read()[0] is False:
            raise UserError(f"{shown(path)}: not a video OpenCV can read")

    def _grab(self):
        ok, bgr = self.capture.read()
        if not ok:  # looping
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self.capture.read()
        return ok, bgr

    def _frame(self, ok: bool, bgr):
        if not ok or bgr is None:
            return None
        if max(bgr.shape[:2]) > MAX_FRAME_SIDE:  # a stream that changes size midway
            return None
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def _release(self) -> None:
        self.capture.release()
        self.file.close()


def _opened_name(file, path: str) -> str:
    """A name OpenCV can open for a file opened here: its descriptor's, where the system
    has them, so that what OpenCV reads is what was checked."""
    by_descriptor = f"/proc/self/fd/{file.fileno()}"
    return by_descriptor if os.path.exists(by_descriptor) else os.fsdecode(path)


class ImagesSource:
    def __init__(self, folder: str, seconds_per_image: float = 1.0):
        root = Path(folder)
        if not root.is_dir():
            raise UserError(f"{shown(folder)}: no such folder")
        self.paths = sorted(p for p in root.rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise UserError(f"{shown(folder)}: holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.name = f"{len(self.paths)} images in {shown(root.name)}"
        self.seconds = seconds_per_image
        self.start = time.monotonic()
        self._cache: dict[int, np.ndarray | None] = {}
        self.unreadable: dict[Path, str] = {}   # path -> why (each reported once)

    def image(self, i: int):
        """The i-th image, or None when it cannot be read (the reason kept in unreadable)."""
        try:
            return read_rgb(self.paths[i])
        except UserError as exc:
            self.unreadable[self.paths[i]] = str(exc)
            return None

    def read(self):
        i = int((time.monotonic() - self.start) / self.seconds) % len(self.paths)
        if i not in self._cache:
            self._cache = {i: self.image(i)}
        return self._cache[i]

    def close(self):
        pass


def open_source(camera=None, video=None, images=None, demo=False, seed=0):
    """(source, note): the chosen source; without one, the first camera that gives a frame,
    else the demo scene, with a note for the window and one line on stderr saying why."""
    if video:
        return VideoSource(video), None
    if images:
        return ImagesSource(images), None
    if demo:
        return DemoSource(seed), None
    if camera is not None:
        cam = first_camera([camera])
        if cam is None:
            raise UserError(f"camera {camera} gives no frames (try another index, or --demo)")
        return cam, None
    cam = first_camera(CAMERA_INDICES)
    if cam is not None:
        return cam, None
    print(f"patchloop: no camera answered (tried indices {listed(CAMERA_INDICES)}): showing "
          "the built-in demo scene. For another source, pass --camera N, --video FILE or "
          "--images FOLDER.", file=sys.stderr)
    return DemoSource(seed), "no camera found: showing the built-in demo scene"


def first_camera(indices) -> CameraSource | None:
    """The first of these camera indices that gives a frame, or None."""
    for index in indices:
        cam = CameraSource(index)
        if cam.works():
            return cam
        cam.close()
    return None
