"""A deterministic demo video with a ground-truth label map per frame: the live window's
source when no camera is found, and the ground the benchmarks stand on.

Two object kinds (a shaded ball and a striped box) move along smooth paths over a textured
background that drifts and changes; lighting ramps and a soft shadow passes; distractor
blobs share the objects' colours, so colour alone does not tell them apart. Frame `i` is a
pure function of (seed, i).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CATEGORIES = (("n0", "background"), ("n1", "ball"), ("n2", "box"))
HELD_OUT_START = 10_000_000


@dataclass(frozen=True)
class DemoFrame:
    index: int
    image: np.ndarray   # uint8 RGB (H, W, 3)
    truth: np.ndarray   # int32 (H, W): index into CATEGORIES


class DemoScene:
    categories = CATEGORIES

    def __init__(self, width: int = 320, height: int = 240, seed: int = 0):
        self.width, self.height, self.seed = width, height, seed
        rng = np.random.default_rng(seed)
        # Two background textures twice the frame size: the view drifts across them.
        self._textures = [self._texture(rng, height * 2, width * 2) for _ in range(2)]
        self._phases = rng.uniform(0, 2 * np.pi, 16)
        self._distractors = [(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(10, 22),
                              rng.integers(0, 2)) for _ in range(5)]

    @staticmethod
    def _texture(rng, h, w) -> np.ndarray:
        coarse = rng.uniform(40, 200, (h // 24 + 2, w // 24 + 2, 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        fine = rng.normal(0, 12, (h, w, 1)).astype(np.float32)
        stripes = 18 * np.sin(np.arange(w, dtype=np.float32)[None, :, None] / rng.uniform(5, 11))
        return np.clip(smooth + fine + stripes * (rng.uniform() > 0.5), 0, 255).astype(np.float32)

    def _path(self, t: float, k: int, speed: float) -> tuple[float, float]:
        p = self._phases
        x = 0.5 + 0.42 * np.sin(speed * t * 0.9 + p[k]) * np.cos(speed * t * 0.23 + p[k + 1])
        y = 0.5 + 0.40 * np.sin(speed * t * 0.7 + p[k + 2])
        return x * self.width, y * self.height

    def frame(self, index: int) -> DemoFrame:
        h, w = self.height, self.width
        t = index / 30.0  # thirty frames a second of scene time
        p = self._phases
        # Background: a drifting crop of a texture; which texture changes every ~20 s.
        tex = self._textures[int(t // 20 + p[3]) % 2]
        ox = int((np.sin(t * 0.11 + p[4]) * 0.5 + 0.5) * (tex.shape[1] - w))
        oy = int((np.sin(t * 0.07 + p[5]) * 0.5 + 0.5) * (tex.shape[0] - h))
        image = tex[oy:oy + h, ox:ox + w].copy()
        truth = np.zeros((h, w), np.int32)
        for i, (fx, fy, r, kind) in enumerate(self._distractors):
            cx = int((fx + 0.05 * np.sin(t * 0.3 + i)) * w)
            cy = int(fy * h)
            colour = (200, 60, 50) if kind == 0 else (60, 120, 200)
            # Distractors: flat, unshaded, ring-shaped or thin: the colour of an object
            # without its shape.
            cv2.circle(image, (cx, cy), int(r), colour, 3)
        self._draw_ball(image, truth, t)
        self._draw_box(image, truth, t)
        # Lighting: brightness and contrast ramp, a soft shadow sweeping across.
        gain = 0.8 + 0.3 * np.sin(t * 0.5 + p[6])
        xs = np.arange(w, dtype=np.float32)
        shadow_x = (np.sin(t * 0.31 + p[7]) * 0.6 + 0.5) * w
        shadow = 1.0 - 0.35 * np.exp(-((xs - shadow_x) / (0.18 * w)) ** 2)
        # (In place where the arithmetic allows: the same values, 5.6 -> 3.6 ms a frame, which
        # the live loop's verdicts share two cores with.)
        image = image * (gain * shadow)[None, :, None]
        noise = np.random.default_rng((self.seed, index)).normal(0, 4, (h, w, 1))
        image += noise.astype(np.float32)
        image = np.clip(image, 0, 255, out=image).astype(np.uint8)
        return DemoFrame(index, np.ascontiguousarray(image), truth)

    def _visible(self, t: float, k: int) -> bool:
        # Each object is away about a quarter of the time; both are in view at the start,
        # so a user meets every category within the first seconds.
        return np.sin(t * (0.21 + 0.05 * k) + np.pi / 2) > -0.7

    def _draw_ball(self, image, truth, t) -> None:
        if not self._visible(t, 0):
            return
        cx, cy = self._path(t, 9, 0.8)
        r = 14 + 12 * (0.5 + 0.5 * np.sin(t * 0.4 + self._phases[10]))
        cx, cy, ri = int(cx), int(cy), int(r)
        mask = np.zeros(truth.shape, np.uint8)
        cv2.circle(mask, (cx, cy), ri, 1, -1)
        inside = mask.astype(bool)
        ys, xs = np.nonzero(inside)
        # Shading: lit from the top left, a highlight, darker at the rim.
        d = np.sqrt(((xs - cx + r * 0.35) ** 2 + (ys - cy + r * 0.35) ** 2)) / (1.6 * r)
        shade = np.clip(1.15 - d, 0.35, 1.15)[:, None]
        image[ys, xs] = np.array([205, 55, 45], np.float32) * shade + 40 * (d < 0.18)[:, None]
        truth[inside] = 1

    def _draw_box(self, image, truth, t) -> None:
        if not self._visible(t, 1):
            return
        cx, cy = self._path(t, 11, 0.6)
        half = 12 + 10 * (0.5 + 0.5 * np.sin(t * 0.33 + self._phases[12]))
        angle = np.degrees(t * 0.5 + self._phases[13])
        corners = cv2.boxPoints(((cx, cy), (2 * half, 2 * half), angle)).astype(np.int32)
        mask = np.zeros(truth.shape, np.uint8)
        cv2.fillConvexPoly(mask, corners, 1)
        inside = mask.astype(bool)
        ys, xs = np.nonzero(inside)
        stripes = ((xs + ys) // 5) % 2
        colour = np.where(stripes[:, None] == 1, np.array([40, 110, 210], np.float32),
                          np.array([230, 220, 90], np.float32))
        image[ys, xs] = colour
        cv2.polylines(image, [corners], True, (20, 20, 20), 2)
        truth[inside] = 2

    def stream(self, start: int = 0):
        index = start
        while True:
            yield self.frame(index)
            index += 1

    def held_out(self, count: int) -> list[DemoFrame]:
        """Frames far from the live stream (spread over scene time), for evaluation."""
        return [self.frame(HELD_OUT_START + 97 * i) for i in range(count)]
