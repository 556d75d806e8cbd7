"""The pictures the windows lay over a frame, as plain images (numpy in, numpy out): the
verdict in translucent category colours, a heat map of one category, the patch's
uncertainty, and the user's own labels. Drawing them on screen is the view's job.

The frame stays in colour: each category tints only where the patch says it is, in
proportion to its probability, and background is left nearly clear, so the picture under
the verdict can still be seen."""
from __future__ import annotations

import cv2
import numpy as np

from loop.core.labels import ERASE, WholeFrameLabel

# The classic colours: background blue, the (first) positive category red; then a palette.
PALETTE = [(40, 80, 255), (255, 40, 40), (40, 220, 60), (255, 200, 0), (200, 60, 255),
           (0, 220, 220), (255, 120, 0), (140, 90, 40), (255, 255, 255)]
VIEWS = ("verdict", "heat map", "uncertainty")
CATEGORY_ALPHA = 0.55     # the tint of a category the patch is sure of
BACKGROUND_ALPHA = 0.08   # background is only hinted at
LABEL_ALPHA = 0.45


def category_colours(k: int) -> np.ndarray:
    return np.array([PALETTE[i % len(PALETTE)] for i in range(k)], np.float32)


def spread(maps: np.ndarray, size, smooth: bool) -> np.ndarray:
    """Per-cell maps (K, h, w) spread over `size` (w, h) pixels as (H, W, K): bilinear
    between cell centres when `smooth`, else the cells' blocks."""
    return np.stack(spread_planes(maps, size, smooth), axis=-1)


def spread_planes(maps: np.ndarray, size, smooth: bool) -> list[np.ndarray]:
    """`spread`, one (H, W) plane per map."""
    interpolation = cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST
    return [cv2.resize(np.ascontiguousarray(m, np.float32), size, interpolation=interpolation)
            for m in maps]


def frame_at(frame: np.ndarray, size) -> np.ndarray:
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)


def verdict_image(frame: np.ndarray, probabilities: np.ndarray, size,
                  smooth: bool = True, pixels: np.ndarray | None = None) -> np.ndarray:
    """The frame in colour with each category's translucent colour where it is. Smooth:
    the verdict's own per-pixel map (`pixels`, spread on the device) when it has one."""
    # Blended at the frame's own size when the window shows it larger (the verdict has no
    # finer detail), then enlarged once; plane by plane (a sum and a product over the last
    # axis of an (H, W, K) stack were half the time). At 519x389 from 320x240: 9-14 -> 3 ms.
    size, frame_size = tuple(size), (frame.shape[1], frame.shape[0])
    work = size if size[0] * size[1] <= frame_size[0] * frame_size[1] else frame_size
    picture = frame_at(frame, work)
    k = probabilities.shape[0]
    strength = np.full(k, CATEGORY_ALPHA, np.float32)
    strength[0] = BACKGROUND_ALPHA
    maps = pixels if smooth and pixels is not None else probabilities
    alphas = [plane * s for plane, s in zip(spread_planes(maps, work, smooth), strength)]
    out = picture * (1.0 - sum(alphas))[..., None]
    for alpha, colour in zip(alphas, category_colours(k)):
        out += alpha[..., None] * colour
    image = np.clip(out, 0, 255, out=out).astype(np.uint8)
    return image if work == size else cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def heat_image(frame: np.ndarray, values: np.ndarray, size, smooth: bool = True,
               colour_map: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A map of values in [0, 1] per cell (h, w) as colours over the frame."""
    plane = spread(values[None], size, smooth)[..., 0]
    heat = cv2.applyColorMap((np.clip(plane, 0, 1) * 255).astype(np.uint8), colour_map)
    picture = frame_at(frame, size)
    out = 0.4 * picture + 0.6 * heat[:, :, ::-1].astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def legend_colours(steps: int, colour_map: int = cv2.COLORMAP_JET) -> np.ndarray:
    """(steps, 3) RGB colours of a heat map's legend, from 0 to 1."""
    ramp = np.linspace(0, 255, steps).astype(np.uint8)[:, None]
    return cv2.applyColorMap(ramp, colour_map)[:, 0, ::-1]


def most_uncertain_cell(uncertainty: np.ndarray) -> tuple[int, int]:
    """(row, column) of the cell at the centre of the most uncertain 3x3 cells: a region,
    not a single stray cell, is where a click helps most."""
    region = cv2.blur(uncertainty.astype(np.float32), (3, 3), borderType=cv2.BORDER_REFLECT)
    row, column = np.unravel_index(int(region.argmax()), region.shape)
    return int(row), int(column)


def label_map_at(labels: list, frame_hw, size) -> np.ndarray:
    """int16 (H, W) at display size: the category each pixel was labeled, -1 where none;
    later labels over earlier ones, erase discs clearing."""
    width, height = size
    scale = width / frame_hw[1]
    out = np.full((height, width), -1, np.int16)
    for label in labels:
        value = -1 if label.category == ERASE else label.category
        if isinstance(label, WholeFrameLabel):
            out[:] = value
        else:
            centre = (int(round(label.x * scale)), int(round(label.y * scale)))
            cv2.circle(out, centre, max(1, int(round(label.radius * scale))), int(value), -1)
    return out


def with_labels(image: np.ndarray, label_map: np.ndarray, k: int) -> np.ndarray:
    """The labels filled in their category's colour, translucent, with a light edge so they
    read as the user's marks and not as the verdict."""
    labeled = label_map >= 0
    if not labeled.any():
        return image
    colours = category_colours(k)
    out = image.astype(np.float32)
    fill = colours[np.clip(label_map, 0, k - 1)]
    out[labeled] = (1 - LABEL_ALPHA) * out[labeled] + LABEL_ALPHA * fill[labeled]
    edge = cv2.morphologyEx(labeled.astype(np.uint8), cv2.MORPH_GRADIENT,
                            np.ones((3, 3), np.uint8)) > 0
    out[edge] = (245, 245, 245)
    return out.astype(np.uint8)
