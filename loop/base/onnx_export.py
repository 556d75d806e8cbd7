"""The base network as an ONNX graph (the `onnx` package's helper API), for running the same
weights in onnxruntime as a peer in benchmarks. Padding is made explicit for one input size,
because TensorFlow's SAME padding depends on it."""
from __future__ import annotations

import numpy as np

from loop.base.config import AddLayer, BaseSpec, ConvLayer, FcLayer, PoolLayer
from loop.base.network import geometry


def to_onnx(spec: BaseSpec, height: int, width: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    shapes = {"input": (height, width)}
    names = {"input": "input"}

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    for layer in spec.layers:
        if isinstance(layer, ConvLayer):
            g = geometry(layer)
            h, w = shapes[layer.input]
            top, left, bottom, right = g.pads(h, w)
            weight, bias = spec.params(layer)
            out = layer.name
            nodes.append(helper.make_node(
                "Conv", [names[layer.input], const(out + ".w", weight), const(out + ".b", bias)],
                [out + ".conv" if layer.act != "none" else out], kernel_shape=[g.kernel] * 2,
                strides=[g.stride] * 2, dilations=[g.dilation] * 2, group=g.groups,
                pads=[top, left, bottom, right]))
            if layer.act == "relu6":
                nodes.append(helper.make_node("Clip", [out + ".conv", const(out + ".lo", np.array(0.0)),
                                                       const(out + ".hi", np.array(6.0))], [out]))
            elif layer.act == "relu":
                nodes.append(helper.make_node("Relu", [out + ".conv"], [out]))
            shapes[out] = g.output_size(h, w)
            names[out] = out
        elif isinstance(layer, AddLayer):
            nodes.append(helper.make_node("Add", [names[i] for i in layer.inputs], [layer.name]))
            shapes[layer.name] = shapes[layer.inputs[0]]
            names[layer.name] = layer.name
        elif isinstance(layer, PoolLayer):
            nodes.append(helper.make_node("GlobalAveragePool", [names[layer.input]], [layer.name + ".4d"]))
            nodes.append(helper.make_node("Flatten", [layer.name + ".4d"], [layer.name]))
            names[layer.name] = layer.name
        elif isinstance(layer, FcLayer):
            weight, bias = spec.params(layer)
            nodes.append(helper.make_node("Gemm", [names[layer.input], const(layer.name + ".w", weight),
                                                   const(layer.name + ".b", bias)],
                                          [layer.name], transB=1))
            names[layer.name] = layer.name
    last = spec.layers[-1].name
    nodes.append(helper.make_node("Softmax", [names[last]], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes, spec.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(spec.classes)])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model
