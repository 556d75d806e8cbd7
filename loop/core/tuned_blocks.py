"""Fine-tuning (training the base's last blocks, not only a new head): the last blocks of the base below a
patch's tap become trainable layers of the patch itself. The base stays frozen and shared
(the trigger check and other patches still see the original); the patch reads the base
where those blocks begin and carries its own tuned copies of them.

A block is the base's unit named by the prefix of its layers' names (`b9.expand`,
`b9.depthwise`, `b9.project`, `b9.add` form block `b9`). Inside the tuned blocks the layers
run as a chain; an add becomes a residual on the conv it follows: the output of that conv
plus an earlier output of the chain (or the chain's input)."""
from __future__ import annotations

from dataclasses import dataclass, field

from loop.base.config import AddLayer, BaseSpec, ConvLayer
from loop.base.network import block_of, geometry
from patchloop_kernels.conv import ConvGeometry


@dataclass(frozen=True)
class TunedBlocks:
    input_layer: str                        # the base layer whose output the blocks read
    blocks: tuple[str, ...]                 # block names, first first
    layers: tuple[ConvGeometry, ...]
    residuals: tuple[int | None, ...]       # per layer: the chain output added to its own
                                            # (-1: the chain's input), or None
    weights: dict = field(compare=False, repr=False)  # w<i>, b<i>: the base's, to start from


def blocks_below(spec: BaseSpec, tap: str) -> list[str]:
    """The base's blocks up to and including the tap's, last first."""
    end = _tap_index(spec, tap)
    order: list[str] = []
    for layer in reversed(spec.layers[:end + 1]):
        if not order or order[-1] != block_of(layer.name):
            order.append(block_of(layer.name))
    return order


def _tap_index(spec: BaseSpec, tap: str) -> int:
    if tap not in spec.taps:
        raise ValueError(f"the base has no tap {tap!r} (it has {', '.join(spec.taps)})")
    target = spec.taps[tap]
    return next(i for i, layer in enumerate(spec.layers) if layer.name == target)


def tuned_blocks(spec: BaseSpec, tap: str, count: int) -> TunedBlocks:
    """The last `count` blocks feeding `tap`, as a chain the patch trains."""
    available = blocks_below(spec, tap)
    if not 1 <= count <= len(available):
        raise ValueError(f"fine-tune {count}: the base has {len(available)} blocks up to its "
                         f"{tap} tap ({available[-1]} .. {available[0]}); choose 1 to "
                         f"{len(available)}")
    chosen = set(available[:count])
    end = _tap_index(spec, tap)
    layers = [layer for layer in spec.layers[:end + 1] if block_of(layer.name) in chosen]
    first = layers[0]
    if not isinstance(first, ConvLayer):
        raise ValueError(f"fine-tune {count}: block {block_of(first.name)} does not start "
                         "with a convolution")
    where = {first.input: -1}  # base layer name -> index of the chain output it is
    geometries, residuals, weights = [], [], {}
    for layer in layers:
        if isinstance(layer, ConvLayer):
            if layer.input != _last_name(where):
                raise ValueError(f"fine-tune {count}: {layer.name} reads {layer.input}, not "
                                 "the layer before it; these blocks are not a chain")
            i = len(geometries)
            geometries.append(geometry(layer))
            residuals.append(None)
            w, b = spec.params(layer)
            weights[f"w{i}"], weights[f"b{i}"] = w.copy(), b.copy()
            where[layer.name] = i
        elif isinstance(layer, AddLayer):
            main, other = layer.inputs
            if main != _last_name(where) or other not in where or not geometries:
                raise ValueError(f"fine-tune {count}: {layer.name} adds {other}, which lies "
                                 "outside the tuned blocks")
            residuals[-1] = where[other]
            where[layer.name] = where.pop(main)
        else:
            raise ValueError(f"fine-tune {count}: {layer.name} is neither a convolution nor "
                             "an add")
    return TunedBlocks(first.input, tuple(available[:count][::-1]), tuple(geometries),
                       tuple(residuals), weights)


def _last_name(where: dict) -> str:
    """The base name of the chain's newest output."""
    return max(where, key=where.get)
