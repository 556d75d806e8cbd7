"""`patchloop classify IMAGE...`: the base network's top-K classes for each image."""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.errors import UserError
from loop.store.images import read_rgb
from loop.safe_files import shown
from patchloop_kernels.runtime import Device

# Photographs are centre-cropped to this fraction of their short side, as ImageNet
# evaluation does, then resized to the base's nominal input.
CENTRE_CROP = 0.875
# Forward plans kept for image sizes seen last: photographs of many sizes would otherwise
# keep one plan (about 30 MB of device memory, more for large images) per size.
KEPT_PLANS = 2


def centre_crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = max(1, int(min(h, w) * CENTRE_CROP))
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])


def _probability(p) -> float | None:
    """Rounded; None (JSON null) where the base gave NaN or Inf, which JSON cannot hold."""
    p = float(p)
    return round(p, 5) if math.isfinite(p) else None


def _shown_probability(p) -> str:
    return "n/a" if p is None else f"{p:.3f}"


def run(args) -> int:
    if args.top < 1:
        raise UserError(f"--top {args.top}: must be at least 1")
    spec = open_base(args.base)
    present = _present(args.images)
    if not present:
        return 2  # nothing to classify: no device is set up, no network built
    device = Device.default()
    network = BaseNetwork(device, spec)
    plans = {}
    results, failed = [], len(args.images) - len(present)
    for path in present:
        try:
            image = centre_crop(read_rgb(path))
        except UserError as exc:
            print(f"patchloop: {exc}", file=sys.stderr)
            failed += 1
            continue
        probs = _probabilities(network, device.queue, plans, image, spec.nominal_size)
        top = np.argsort(probs)[::-1][:args.top]
        results.append({"image": path, "top": [
            {"tag": spec.classes[i].tag, "index": int(i), "name": spec.classes[i].name,
             "probability": _probability(probs[i])} for i in top]})
    if args.json:
        print(json.dumps(results, indent=2, allow_nan=False))
    else:
        for r in results:
            best = ", ".join(f"{t['name']} {_shown_probability(t['probability'])}"
                             for t in r["top"])
            print(f"{shown(r['image'])}: {best}")
    return 2 if failed else 0


def _present(paths) -> list:
    """The paths that exist; each missing one named on stderr."""
    present = []
    for path in paths:
        if os.path.lexists(path):
            present.append(path)
        else:
            print(f"patchloop: {shown(path)}: no such file", file=sys.stderr)
    return present


def _probabilities(network, queue, plans: dict, image: np.ndarray, size: int) -> np.ndarray:
    """The base's class probabilities for one image resized to `size`, through a plan kept
    per image shape."""
    if image.shape not in plans:
        if len(plans) >= KEPT_PLANS:  # each holds the base's maps and a frame buffer
            plans.pop(next(iter(plans)))
        plans[image.shape] = network.plan(size, size, image.shape)
    plan = plans[image.shape]
    plan.run(image, queue)
    return plan.read_probabilities(queue)
