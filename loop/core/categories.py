"""Categories added or renamed while a patch trains. A rename changes a name only. An added
category is a new output: the last layer gains a row (the trained rows kept, the new one
starting quiet so that the verdict does not change until the new category is taught), and
the optimizer's momentum for it starts at zero. Labels keep their category numbers, so
nothing labeled changes meaning."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from loop.core.patch import MAX_CATEGORY_NAME, Category, PatchSpec, plain_category_name
from loop.core.patch_arch import patch_arch
from loop.core.patch_layers import parameter_layout
from loop.core.patch_weights import PatchWeights

MAX_CATEGORIES = 32
QUIET_MARGIN = 2.0   # a new output's bias starts this far below the lowest trained bias


def renamed(spec: PatchSpec, index: int, name: str) -> PatchSpec:
    check_name(spec, name, index)
    if not 0 <= index < spec.outputs:
        raise ValueError(f"the patch has no category {index + 1}")
    categories = list(spec.categories)
    categories[index] = Category(categories[index].tag, index, name)
    return replace(spec, categories=tuple(categories))


def with_category(spec: PatchSpec, name: str) -> PatchSpec:
    """The spec with a new last category; its tag follows the largest tag in use."""
    if spec.loss == "squared_error":
        raise ValueError("a squared-error patch has exactly two categories")
    if spec.outputs >= MAX_CATEGORIES:
        raise ValueError(f"a patch has at most {MAX_CATEGORIES} categories")
    check_name(spec, name)
    tag = f"n{max(int(c.tag[1:]) for c in spec.categories) + 1}"
    return replace(spec, categories=spec.categories + (Category(tag, spec.outputs, name),))


def with_names(spec: PatchSpec, names: list) -> PatchSpec:
    """The spec a session's saved category names give: the same first categories (renamed
    as saved), then the ones added, in order. Anything else is refused (ValueError)."""
    if not isinstance(names, list) or not spec.outputs <= len(names) <= MAX_CATEGORIES:
        raise ValueError("the saved category names do not fit the patch")
    for index, name in enumerate(names[:spec.outputs]):
        if not isinstance(name, str):
            raise ValueError("a saved category name is not text")
        if name != spec.categories[index].name:
            spec = renamed(spec, index, name)
    for name in names[spec.outputs:]:
        if not isinstance(name, str):
            raise ValueError("a saved category name is not text")
        spec = with_category(spec, name)
    return spec


def check_name(spec: PatchSpec, name: str, index: int | None = None) -> None:
    if not plain_category_name(name):
        raise ValueError(f"category name {name!r:.60} must be 1 to {MAX_CATEGORY_NAME} "
                         "printable characters without spaces, '/' or '\\'")
    if any(c.name == name and c.index != index for c in spec.categories):
        raise ValueError(f"there is a category {name!r} already")


def grown(arrays: dict, last: int, outputs: int) -> dict:
    """Per-layer arrays (w0, b0, ...) with the last layer grown to `outputs` rows: trained
    rows kept, new weights zero and new biases QUIET_MARGIN below the lowest trained one."""
    weight, bias = arrays[f"w{last}"], arrays[f"b{last}"]
    extra = outputs - bias.size
    if extra < 0:
        raise ValueError(f"the last layer has {bias.size} outputs, more than {outputs}")
    out = dict(arrays)
    out[f"w{last}"] = np.concatenate(
        [weight, np.zeros((extra,) + weight.shape[1:], np.float32)]).astype(np.float32)
    quiet = float(bias.min()) - QUIET_MARGIN if bias.size else 0.0
    out[f"b{last}"] = np.concatenate([bias, np.full(extra, quiet, np.float32)]).astype(np.float32)
    return out


def grown_momentum(arrays: dict, last: int, outputs: int) -> dict:
    """The optimizer's velocity grown like the weights, zero for the new rows."""
    out = dict(arrays)
    for name in (f"w{last}", f"b{last}"):
        old = arrays[name]
        pad = np.zeros((outputs - old.shape[0],) + old.shape[1:], np.float32)
        out[name] = np.concatenate([old, pad]).astype(np.float32)
    return out


def grown_dense(model, base, weights: np.ndarray, velocity):
    """Dense weights (and momentum) saved before the newest categories were added, grown to
    fit `model` (which has them all); ValueError when they are no earlier state of it."""
    spec = model.spec
    for outputs in range(2, spec.outputs):
        fewer = replace(spec, categories=spec.categories[:outputs])
        layout = parameter_layout(model.device, list(patch_arch(
            fewer, base.spec if base is not None else None).layers))
        if layout.dense_size != weights.size:
            continue
        last = len(model.layers) - 1
        moments = np.zeros_like(weights) if velocity is None else velocity
        arrays = layout.unpack(layout.from_dense(weights))
        speeds = layout.unpack(layout.from_dense(moments))
        mine = model.layout
        return (mine.dense(mine.pack(grown(arrays, last, spec.outputs))),
                mine.dense(mine.pack(grown_momentum(speeds, last, spec.outputs))))
    raise ValueError(f"the saved weights ({weights.size}) do not fit this patch "
                     f"({model.layout.dense_size})")


def grown_model(old, spec, base, queue):
    """A PatchWeights for `spec` (more outputs than `old`'s) holding `old`'s weights and
    momentum, the new outputs' rows quiet (grown, grown_momentum)."""
    state = old.state(queue)
    weights, velocity = (old.layout.unpack(state[k]) for k in ("weights", "velocity"))
    arch = patch_arch(spec, base.spec if base is not None else None)
    last = len(arch.layers) - 1
    weights = grown(weights, last, spec.outputs)
    model = PatchWeights(old.device, spec, arch, old.feature_shape[1:], weights)
    model.load_state({"weights": model.layout.pack(weights),
                      "velocity": model.layout.pack(grown_momentum(velocity, last,
                                                                   spec.outputs))}, queue)
    return model
