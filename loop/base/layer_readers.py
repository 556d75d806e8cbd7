"""Which layer of the base reads which: what the forward (network.py) may fuse or lay out
for its reader. A block's output always stays a plain map: taps and fine-tuned patches
read it."""
from __future__ import annotations

from typing import Callable

from loop.base.config import BaseSpec, ConvLayer
from patchloop_kernels.conv import ConvGeometry


def geometry(layer: ConvLayer) -> ConvGeometry:
    return ConvGeometry(layer.cin, layer.cout, layer.k, layer.stride, layer.pad, layer.dilation,
                        layer.groups, layer.act)


def block_of(layer_name: str) -> str:
    """The base block a layer belongs to: the prefix of its name (`b9.expand` -> `b9`)."""
    return layer_name.split(".", 1)[0]


def sole_readers(spec: BaseSpec, kind: Callable[[ConvGeometry], bool]) -> dict:
    """layer name -> the conv that is its only reader, where that conv is of `kind` (its
    geometry says so) and in the same block, and the layer is no tap: an expand and its
    depthwise conv, a depthwise conv and its 1x1 project."""
    readers: dict[str, list] = {}
    for layer in spec.layers:
        for source in getattr(layer, "inputs", None) or [getattr(layer, "input", None)]:
            readers.setdefault(source, []).append(layer)
    taps = set(spec.taps.values())
    return {name: found[0] for name, found in readers.items()
            if len(found) == 1 and name not in taps and isinstance(found[0], ConvLayer)
            and kind(geometry(found[0])) and block_of(found[0].name) == block_of(name)}
