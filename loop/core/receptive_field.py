"""How much of the frame one output cell sees: the receptive-field rectangle the window
draws at the mouse."""
from __future__ import annotations

from patchloop_kernels.conv import ConvGeometry


def receptive_field(convs: list[ConvGeometry]) -> tuple[int, int]:
    """(size, jump) in input pixels of a chain of convolutions, first layer first."""
    size, jump = 1, 1
    for g in convs:
        size += (g.kernel - 1) * g.dilation * jump
        jump *= g.stride
    return size, jump


def map_size(spec, layer_name: str, height: int, width: int) -> tuple[int, int]:
    """(h, w) of a base layer's output for an input of height x width."""
    for g in base_path_to(spec, layer_name):
        height, width = g.output_size(height, width)
    return height, width


def base_path_to(spec, layer_name: str) -> list[ConvGeometry]:
    """The convolutions on the main path from the base's input to `layer_name`, in order
    (residual branches add no extent beyond the main path's)."""
    from loop.base.network import geometry
    from loop.base.config import ConvLayer
    chain = []
    name = layer_name
    while name != "input":
        layer = spec.layer_by_name[name]
        if isinstance(layer, ConvLayer):
            chain.append(geometry(layer))
            name = layer.input
        else:
            name = layer.inputs[0] if hasattr(layer, "inputs") else layer.input
    return list(reversed(chain))


def patch_cell_field(base, arch, topology: str) -> tuple[int, int]:
    """(size, jump) of one patch cell at the input it reads (the base's input for a head,
    the resized frame for a pixels patch). A hypercolumn cell sees what its coarser map
    sees: the larger field."""
    if topology == "head":
        from loop.core.patch_input import deepest_layer
        return receptive_field(base_path_to(base.spec, deepest_layer(arch)) + list(arch.layers))
    return receptive_field(list(arch.layers))
