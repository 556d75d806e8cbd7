"""A patch's whole layer chain and where it reads its input: the topology's layers, led,
when the patch fine-tunes the base, by its own copies of the base's last blocks.

One place answers "which layers, which residuals, which base output" for the trainer, the
verdicts, the exporter and the plugin reader, so they cannot disagree."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from loop.core.patch import HYPERCOLUMNS, PatchSpec
from loop.core.patch_layers import check_chain, initial_parameters, patch_layers
from patchloop_kernels.conv import ConvGeometry


@dataclass(frozen=True)
class PatchArch:
    layers: tuple[ConvGeometry, ...]
    residuals: tuple[int | None, ...]   # per layer: the output added to its own (-1: input)
    input_layer: str | None             # the base layer the patch reads; None: the frame
    tuned: int = 0                      # leading layers that are fine-tuned base layers
    tuned_blocks: tuple[str, ...] = ()  # their blocks' names in the base
    tuned_weights: dict = field(default_factory=dict, compare=False, repr=False)
    side_layer: str | None = None       # a hypercolumn's coarser base layer, spread over
                                        # input_layer's map and stacked after its channels

    @property
    def input_channels(self) -> int:
        return self.layers[0].c_in

    @property
    def head(self) -> tuple[ConvGeometry, ...]:
        return self.layers[self.tuned:]

    def initial_parameters(self, seed: int) -> dict[str, np.ndarray]:
        """The tuned layers start as the base's; the topology's layers as a new patch's
        (the same as without fine-tuning, for the same seed)."""
        params = {k: v.copy() for k, v in self.tuned_weights.items()}
        for name, array in initial_parameters(list(self.head), seed).items():
            params[f"{name[0]}{int(name[1:]) + self.tuned}"] = array
        return params


def patch_arch(spec: PatchSpec, base_spec=None) -> PatchArch:
    """The chain of a patch on a base (the base is needed for head patches)."""
    if spec.topology == "pixels":
        layers = tuple(patch_layers(spec, 3))
        return PatchArch(layers, (None,) * len(layers), None)
    if base_spec is None:
        raise ValueError("a head patch's layers depend on its base network")
    if spec.tap in HYPERCOLUMNS:
        from loop.base.network import tap_channels
        fine, coarse = HYPERCOLUMNS[spec.tap]
        layers = tuple(patch_layers(spec, tap_channels(base_spec, fine)
                                    + tap_channels(base_spec, coarse)))
        return PatchArch(layers, (None,) * len(layers), base_spec.taps[fine],
                         side_layer=base_spec.taps[coarse])
    if spec.fine_tune == 0:
        from loop.base.network import tap_channels
        layers = tuple(patch_layers(spec, tap_channels(base_spec, spec.tap)))
        return PatchArch(layers, (None,) * len(layers), base_spec.taps[spec.tap])
    from loop.core.tuned_blocks import tuned_blocks
    tuned = tuned_blocks(base_spec, spec.tap, spec.fine_tune)
    head = tuple(patch_layers(spec, tuned.layers[-1].c_out))
    arch = PatchArch(tuned.layers + head, tuned.residuals + (None,) * len(head),
                     tuned.input_layer, len(tuned.layers), tuned.blocks, tuned.weights)
    check_chain(arch.layers, arch.residuals)
    return arch


def arch_from_layers(spec: PatchSpec, layers, residuals, input_layer, tuned: int,
                     blocks=()) -> PatchArch:
    """A chain read from a file, checked: the tuned part is a well-formed chain and the rest
    is the spec's topology on what the tuned part gives."""
    layers, residuals = tuple(layers), tuple(residuals)
    if len(residuals) != len(layers) or not 0 <= tuned < len(layers):
        raise ValueError("the layers and their residuals do not match")
    if any(r is not None for r in residuals[tuned:]):
        raise ValueError("only fine-tuned base layers take residuals")
    channels = layers[tuned - 1].c_out if tuned else layers[0].c_in
    if layers[tuned:] != tuple(patch_layers(spec, channels)):
        raise ValueError(f"the layers do not match the {spec.topology} topology")
    if (spec.fine_tune > 0) != (tuned > 0) or (tuned and spec.topology != "head"):
        raise ValueError("fine-tuned layers and the patch definition disagree")
    check_chain(layers, residuals)
    return PatchArch(layers, residuals, input_layer, tuned, tuple(blocks))
