"""A plugin as an ONNX model (the `onnx` package's helper API), for other runtimes. The
preprocessing is inside the graph: the input is the uint8 RGB frame at the plugin's input
size, cast, transposed to NCHW and normalised as the trainer does; the one step a caller
must do first (resize to that size, bilinear) is written into the model's metadata. A head
patch's model also outputs the base's class probabilities, so triggers can be checked."""
from __future__ import annotations

import json

import numpy as np

from loop.base.onnx_export import GraphParts, base_graph, onnx_model
from loop.core.receptive_field import map_size
from loop.store.plugin import Plugin
from loop.store.plugin_fit import arch_on_base


def plugin_to_onnx(plugin: Plugin, base_spec=None):
    import onnx
    from onnx import TensorProto, helper

    spec = plugin.spec
    height, width = plugin.input_hw
    norm = plugin.manifest["input"]
    parts = GraphParts()
    parts.nodes += [
        helper.make_node("Cast", ["frame"], ["frame.f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["frame.f"], ["frame.nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Sub", ["frame.nchw", parts.const("norm.offset", np.array(norm["norm_offset"]))],
                         ["frame.centred"]),
        helper.make_node("Div", ["frame.centred", parts.const("norm.scale", np.array(norm["norm_scale"]))],
                         ["input"])]
    outputs = []
    if spec.topology == "head":
        if base_spec is None:
            raise ValueError("a head patch's ONNX model needs its base network")
        last = base_graph(parts, base_spec, height, width)
        parts.nodes.append(helper.make_node("Softmax", [last], ["base_probabilities"], axis=1))
        outputs.append(helper.make_tensor_value_info("base_probabilities", TensorProto.FLOAT,
                                                     [1, len(base_spec.classes)]))
        arch = arch_on_base(plugin, base_spec)
        source = arch.input_layer
        h, w = map_size(base_spec, source, height, width)
        if arch.side_layer is not None:  # a hypercolumn: the coarser map spread, stacked
            source = _hypercolumn(parts, arch, base_spec, h, w)
    else:
        arch, source = plugin.arch, "input"
        h, w = height, width
    outputs_by_index = {-1: source}
    for i, (g, residual) in enumerate(zip(arch.layers, arch.residuals)):
        top, left, bottom, right = g.pads(h, w)  # SAME padding depends on the map's size
        name = f"patch{i}" if residual is None else f"patch{i}.main"
        source = parts.conv(name, source, plugin.weights[f"w{i}"], plugin.weights[f"b{i}"], g,
                            [top, left, bottom, right], g.activation)
        if residual is not None:
            parts.nodes.append(helper.make_node("Add", [source, outputs_by_index[residual]],
                                                [f"patch{i}"]))
            source = f"patch{i}"
        outputs_by_index[i] = source
        h, w = g.output_size(h, w)
    if spec.loss == "squared_error":
        # One score in [-1, 1]: p = clip((s + 1) / 2, 0, 1), probabilities [1 - p, p].
        parts.nodes += [
            helper.make_node("Add", [source, parts.const("score.one", np.array(1.0))], ["score.up"]),
            helper.make_node("Div", ["score.up", parts.const("score.two", np.array(2.0))], ["score.half"]),
            helper.make_node("Clip", ["score.half", parts.const("score.lo", np.array(0.0)),
                                      parts.const("score.hi", np.array(1.0))], ["score.p"]),
            helper.make_node("Sub", ["score.one", "score.p"], ["score.q"]),
            helper.make_node("Concat", ["score.q", "score.p"], ["probabilities"], axis=1)]
    else:
        parts.nodes.append(helper.make_node("Softmax", [source], ["probabilities"], axis=1))
    outputs.insert(0, helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                    [1, spec.outputs, "cells_h", "cells_w"]))
    graph = helper.make_graph(
        parts.nodes, spec.name,
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, [1, height, width, 3])],
        outputs, parts.inits)
    model = onnx_model(graph)
    meta = {"patchloop.input": f"uint8 RGB frame (1, {height}, {width}, 3); resize frames of "
                               f"other sizes to {width}x{height} first (bilinear, pixel centres "
                               f"at +0.5, as OpenCV's INTER_LINEAR)",
            "patchloop.categories": json.dumps([[c.tag, c.index, c.name] for c in spec.categories]),
            "patchloop.triggers": json.dumps(list(spec.triggers)),
            "patchloop.threshold": str(spec.threshold),
            "patchloop.verdict": "probabilities (1, K, h, w) per cell; the frame's category is "
                                 "the best non-background cell over the threshold"}
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def _hypercolumn(parts, arch, base_spec, h: int, w: int) -> str:
    """The coarser map resized to the finer one's size (linear, pixel centres: what the
    trainer's upsample kernel does) and concatenated after its channels."""
    from onnx import helper, numpy_helper
    from loop.base.network import tap_channels
    coarse_tap = next(t for t, layer in base_spec.taps.items() if layer == arch.side_layer)
    sizes = np.array([1, tap_channels(base_spec, coarse_tap), h, w], np.int64)
    parts.inits.append(numpy_helper.from_array(sizes, "hypercolumn.sizes"))
    parts.nodes += [
        helper.make_node("Resize", [arch.side_layer, "", "", "hypercolumn.sizes"],
                         ["hypercolumn.coarse"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Concat", [arch.input_layer, "hypercolumn.coarse"], ["hypercolumn"],
                         axis=1)]
    return "hypercolumn"
