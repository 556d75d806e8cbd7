"""Whether a plugin read from a file runs on the base network loaded here: the same base (by
its weights' hash), a pixels patch at its input size, and the layer chain the base gives for
the plugin's definition. Each refusal is a PluginError saying what does not fit."""
from __future__ import annotations

from loop.core.patch import PIXELS_INPUT
from loop.store.plugin import Plugin, PluginError


def arch_on_base(plugin: Plugin, base_spec):
    """The plugin's layers placed on a loaded base: the same chain the base gives for its
    definition (a fine-tuned patch must branch where its file says). PluginError if not."""
    from loop.core.patch_arch import patch_arch
    spec, theirs = plugin.spec, plugin.arch
    try:
        mine = patch_arch(spec, base_spec if spec.topology == "head" else None)
    except ValueError as exc:
        raise PluginError(f"does not fit the base loaded ({exc})") from None
    if mine.tuned and theirs.tuned and mine.input_layer != theirs.input_layer:
        raise PluginError(f"its tuned blocks read base layer {theirs.input_layer}, which does "
                          f"not fit the base loaded (there {', '.join(mine.tuned_blocks)} read "
                          f"{mine.input_layer})")
    if (mine.layers, mine.residuals, mine.tuned, mine.tuned_blocks) != \
            (theirs.layers, theirs.residuals, theirs.tuned, theirs.tuned_blocks):
        where = theirs.input_layer if theirs.tuned else spec.tap
        raise PluginError(f"its layers ({theirs.input_channels} input channels at {where}) do "
                          f"not fit the base loaded ({mine.input_channels} there)")
    return mine


def fitted_to_base(plugin: Plugin, base) -> object:
    """The plugin's layers on a loaded base network (`base`: a BaseNetwork, or None for a
    pixels patch without triggers), after every check that it runs there: a head patch
    made on this base (its weights' hash), a pixels patch at its input size, the same layer
    chain. PluginError naming what does not fit (the caller names the file)."""
    spec = plugin.spec
    if spec.topology == "head":
        if base is None:
            raise PluginError("a head patch needs its base network")
        if spec.base_hash != base.hash:
            raise PluginError(f"made on base {spec.base_name} ({spec.base_hash}), not on the "
                              f"one loaded ({base.hash})")
    if spec.topology == "pixels" and plugin.input_hw != PIXELS_INPUT:
        raise PluginError(f"a pixels patch takes {PIXELS_INPUT}, not {plugin.input_hw}")
    return arch_on_base(plugin, base.spec if base is not None else None)
