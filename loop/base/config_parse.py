"""Parsing and checking a base network's .txt config, statement by statement (the format is
described in config.py)."""
from pathlib import Path

import numpy as np

from loop.base.classes import ClassEntry
from loop.base.config import (ACTIVATIONS, FORMAT_VERSION, AddLayer, BaseFormatError, BaseSpec,
                              ConvLayer, FcLayer, PoolLayer)

_KEYS = {
    "base": ("version",),
    "input": ("channels", "norm_offset", "norm_scale", "order", "nominal"),
    "conv": ("name", "input", "out", "in", "k", "stride", "pad", "dil", "groups", "act",
             "weights"),
    "add": ("name", "inputs"),
    "pool": ("name", "input"),
    "fc": ("name", "input", "in", "out", "weights"),
    "tap": ("name", "layer"),
}


class Parser:
    """Checks each statement against the layers before it: inputs exist, channel counts
    and strides agree, weights lie inside the .data file."""

    def __init__(self, path: Path, weight_count: int):
        self.path, self.weight_count, self.where = path, weight_count, str(path)
        self.header, self.layers, self.taps = {}, [], {}
        self.shape = {}  # layer name -> (channels, total stride, spatial: bool)

    def fail(self, message: str):
        raise BaseFormatError(f"{self.where}: {message}")

    def statement(self, op: str, *pairs: str):
        if op not in _KEYS:
            self.fail(f"unknown statement {op!r:.40} (expected one of {', '.join(_KEYS)})")
        args = dict(pair.partition("=")[::2] for pair in pairs)
        if (len(args) != len(pairs) or set(args) != set(_KEYS[op])
                or not all(pair.count("=") == 1 and pair[-1] != "=" for pair in pairs)):
            self.fail(f"{op} takes each of {', '.join(_KEYS[op])} once as key=value, "
                      f"got {' '.join(pairs)!r:.80}")
        if op in ("base", "input"):
            return self.header_line(op, args)
        if "input" not in self.header:
            self.fail("layers must come after the 'base' and 'input' lines")
        if op == "tap":
            self.source(args["layer"])
            if args["name"] in self.taps:
                self.fail(f"tap {args['name']} is defined twice")
            self.taps[args["name"]] = args["layer"]
        elif args["name"] in self.shape:
            self.fail(f"layer name {args['name']} is already taken")
        else:
            getattr(self, op)(args)

    def integer(self, args, key, low=0) -> int:
        value = args[key]
        if not value.isascii() or not value.isdigit() or int(value) < low:
            self.fail(f"{key}={value!r:.40} is not a whole number >= {low}")
        return int(value)

    def real(self, args, key) -> float:
        try:
            value = float(args[key])
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or (key == "norm_scale" and value == 0):
            self.fail(f"{key}={args[key]!r:.40} is not a finite number (nonzero for a scale)")
        return value

    def header_line(self, op, args):
        if op in self.header or (op == "input" and "base" not in self.header):
            self.fail(f"'{op}' must appear once, in the order 'base' then 'input'")
        if args.get("version", str(FORMAT_VERSION)) != str(FORMAT_VERSION):
            self.fail(f"format version {args['version']!r:.20}; this patchloop reads "
                      f"version {FORMAT_VERSION}")
        if op == "input":
            if args["order"] != "rgb":
                self.fail(f"order={args['order']!r:.20}; only rgb is supported")
            args = {"channels": self.integer(args, "channels", 1),
                    "norm_offset": self.real(args, "norm_offset"),
                    "norm_scale": self.real(args, "norm_scale"),
                    "nominal": self.integer(args, "nominal", 1)}
            self.shape["input"] = (args["channels"], 1, True)
        self.header[op] = args

    def source(self, name: str):
        if name not in self.shape:
            self.fail(f"input {name!r:.60} is not a layer defined above")
        return self.shape[name]

    def weighted(self, layer):
        if layer.weight_end > self.weight_count:
            self.fail(f"weights {layer.weight_offset}..{layer.weight_end} lie past the end of "
                      f"{self.path.with_suffix('.data').name} ({self.weight_count} values): "
                      "the .data file is truncated or belongs to another base")
        return layer

    def conv(self, args):
        channels, stride, spatial = self.source(args["input"])
        pad = args["pad"] if args["pad"] == "same" else self.integer(args, "pad")
        layer = ConvLayer(args["name"], args["input"], *(self.integer(args, key, 1) for key in (
            "in", "out", "k", "stride")), pad, self.integer(args, "dil", 1),
            self.integer(args, "groups", 1), args["act"], self.integer(args, "weights"))
        if not spatial or layer.cin != channels:
            self.fail(f"conv in={layer.cin} but {layer.input} gives {channels} channels"
                      + ("" if spatial else " without a spatial map"))
        if layer.cin % layer.groups or layer.cout % layer.groups:
            self.fail(f"groups={layer.groups} does not divide in={layer.cin} and out={layer.cout}")
        if layer.act not in ACTIVATIONS:
            self.fail(f"act={layer.act!r:.20} (expected {' or '.join(ACTIVATIONS)})")
        self.add_layer(self.weighted(layer), (layer.cout, stride * layer.stride, True))

    def add(self, args):
        inputs = tuple(args["inputs"].split(","))
        shapes = {self.source(name) for name in inputs}
        if len(inputs) < 2 or len(shapes) != 1:
            self.fail(f"add needs two or more inputs of equal (channels, stride, spatial); "
                      f"got {', '.join(f'{n}={self.shape[n][:2]}' for n in inputs)}")
        self.add_layer(AddLayer(args["name"], inputs), shapes.pop())

    def pool(self, args):
        channels, stride, spatial = self.source(args["input"])
        if not spatial:
            self.fail(f"pool input {args['input']} is not a spatial map")
        self.add_layer(PoolLayer(args["name"], args["input"]), (channels, stride, False))

    def fc(self, args):
        channels, stride, spatial = self.source(args["input"])
        cin, cout = self.integer(args, "in", 1), self.integer(args, "out", 1)
        if spatial or cin != channels:
            self.fail(f"fc in={cin} needs a pooled input of {cin} channels; {args['input']} "
                      f"gives {channels}{' spatial' if spatial else ''}")
        layer = FcLayer(args["name"], args["input"], cin, cout, self.integer(args, "weights"))
        self.add_layer(self.weighted(layer), (cout, stride, False))

    def add_layer(self, layer, shape):
        self.layers.append(layer)
        self.shape[layer.name] = shape

    def finish(self, weights: np.ndarray, classes: list[ClassEntry]) -> BaseSpec:
        if "input" not in self.header or not self.layers:
            self.fail("no 'base', 'input' or layer lines")
        used = max((layer.weight_end for layer in self.layers if isinstance(layer, (ConvLayer, FcLayer))),
                   default=0)
        if used != weights.size:
            self.fail(f"the layers use {used} weights but {self.path.with_suffix('.data').name} "
                      f"holds {weights.size}")
        outputs = self.shape[self.layers[-1].name][0]
        if outputs != len(classes):
            self.fail(f"the last layer has {outputs} outputs but map_clsloc.txt lists "
                      f"{len(classes)} classes")
        head = self.header["input"]
        return BaseSpec(self.path.stem, head["channels"], head["norm_offset"],
                        head["norm_scale"], self.layers, self.taps, weights, classes,
                        self.path, head["nominal"])
