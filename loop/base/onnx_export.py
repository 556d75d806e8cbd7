"""The base network as an ONNX graph (the `onnx` package's helper API), for running the same
weights in onnxruntime as a peer in benchmarks. Padding is made explicit for one input size,
because TensorFlow's SAME padding depends on it."""
from __future__ import annotations

import numpy as np

from loop.base.config import AddLayer, BaseSpec, ConvLayer, FcLayer, PoolLayer
from loop.base.network import geometry


class GraphParts:
    """Nodes and initializers being gathered for one ONNX graph."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name, array):
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def conv(self, out, source, weight, bias, g, pads, activation):
        from onnx import helper
        self.nodes.append(helper.make_node(
            "Conv", [source, self.const(out + ".w", weight), self.const(out + ".b", bias)],
            [out + ".conv" if activation != "none" else out], kernel_shape=[g.kernel] * 2,
            strides=[g.stride] * 2, dilations=[g.dilation] * 2, group=g.groups, pads=pads))
        if activation == "relu6":
            self.nodes.append(helper.make_node(
                "Clip", [out + ".conv", self.const(out + ".lo", np.array(0.0)),
                         self.const(out + ".hi", np.array(6.0))], [out]))
        elif activation == "relu":
            self.nodes.append(helper.make_node("Relu", [out + ".conv"], [out]))
        return out


def base_graph(parts: GraphParts, spec: BaseSpec, height: int, width: int, stop_at=None):
    """The base's layers on the graph input "input" (NCHW, normalised), up to and including
    `stop_at` (a layer name) or all of them; returns the name of the last output."""
    from onnx import helper
    shapes = {"input": (height, width)}
    names = {"input": "input"}
    for layer in spec.layers:
        if isinstance(layer, ConvLayer):
            g = geometry(layer)
            h, w = shapes[layer.input]
            top, left, bottom, right = g.pads(h, w)
            weight, bias = spec.params(layer)
            names[layer.name] = parts.conv(layer.name, names[layer.input], weight, bias, g,
                                           [top, left, bottom, right], layer.act)
            shapes[layer.name] = g.output_size(h, w)
        elif isinstance(layer, AddLayer):
            parts.nodes.append(helper.make_node("Add", [names[i] for i in layer.inputs], [layer.name]))
            shapes[layer.name] = shapes[layer.inputs[0]]
            names[layer.name] = layer.name
        elif isinstance(layer, PoolLayer):
            parts.nodes.append(helper.make_node("GlobalAveragePool", [names[layer.input]],
                                                [layer.name + ".4d"]))
            parts.nodes.append(helper.make_node("Flatten", [layer.name + ".4d"], [layer.name]))
            names[layer.name] = layer.name
        elif isinstance(layer, FcLayer):
            weight, bias = spec.params(layer)
            parts.nodes.append(helper.make_node(
                "Gemm", [names[layer.input], parts.const(layer.name + ".w", weight),
                         parts.const(layer.name + ".b", bias)], [layer.name], transB=1))
            names[layer.name] = layer.name
        if layer.name == stop_at:
            break
    return names[stop_at or spec.layers[-1].name]


def to_onnx(spec: BaseSpec, height: int, width: int):
    import onnx
    from onnx import TensorProto, helper

    parts = GraphParts()
    last = base_graph(parts, spec, height, width)
    parts.nodes.append(helper.make_node("Softmax", [last], ["probabilities"], axis=1))
    graph = helper.make_graph(
        parts.nodes, spec.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(spec.classes)])],
        parts.inits)
    model = onnx_model(graph)
    onnx.checker.check_model(model)
    return model


# The format the files are written in, not the onnx package's newest: a model stamped with a
# newer IR version than a runtime knows is refused whole (onnx 1.23 writes IR 14, which
# onnxruntime 1.30 refused). IR 7 is the version of opset 13, whose operators the graphs use.
OPSET = 13
IR_VERSION = 7


def onnx_model(graph):
    """The model of `graph`, stamped with OPSET and IR_VERSION."""
    from onnx import helper
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION)
