"""Parsing and checking a base network's .txt config, statement by statement (the format is
described in config.py).

A config is a file from outside: every number is bounded here, before any device buffer is
sized by it. Feature-map sizes are followed at reference input sizes, so a layer that would
leave no output, an add of maps of different sizes, or feature maps too large for memory
are refused with the line at fault rather than met on the device."""
import re
from pathlib import Path

import numpy as np

from loop.base.classes import ClassEntry
from loop.base.config import (ACTIVATIONS, FORMAT_VERSION, AddLayer, BaseFormatError, BaseSpec,
                              ConvLayer, FcLayer, PoolLayer)
from loop.core.patch import TAPS
from patchloop_kernels.conv import ConvGeometry

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
LAYER_NAME = re.compile(r"[A-Za-z0-9_.]{1,100}")
MAX_LAYERS = 2000
MAX_CHANNELS = 8192
MAX_CLASSES = 100_000
MAX_KERNEL = 15
MAX_STRIDE = 8
MAX_DILATION = 16
MAX_PAD = 64
NOMINAL = (64, 512)  # classify runs the base at nominal x nominal
# The inputs a base runs at lie between 64x64 (the plan's minimum) and 512x512 pixels
# (nominal, the live window's 240x320, a plugin's input); a map is followed at each of these.
REFERENCE_INPUTS = ((64, 64), (97, 131), (240, 320), (512, 512))
MAX_FEATURE_BYTES = 1 << 30  # all feature maps at 512x512 (EfficientNet-Lite0: 137 MiB)


class Parser:
    """Checks each statement against the layers before it: inputs exist, channel counts,
    strides and map sizes agree, weights lie inside the .data file."""

    def __init__(self, path: Path, weight_count: int):
        self.path, self.weight_count, self.where = path, weight_count, str(path)
        self.header, self.layers, self.taps = {}, [], {}
        self.shape = {}  # layer name -> (channels, total stride, spatial: bool)
        self.sizes = {}  # spatial layer name -> its (h, w) at each of REFERENCE_INPUTS
        self.feature_bytes = 0  # at the largest reference input

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
            return self.tap(args)
        if not LAYER_NAME.fullmatch(args["name"]) or args["name"] in self.shape:
            self.fail(f"layer name {args['name']!r:.40} is taken or not letters, digits, "
                      "'_' and '.'")
        if len(self.layers) >= MAX_LAYERS:
            self.fail(f"more than {MAX_LAYERS} layers")
        getattr(self, op)(args)

    def integer(self, args, key, low=0, high=MAX_CHANNELS) -> int:
        value = args[key]
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            self.fail(f"{key}={value!r:.40} is not a whole number from {low} to {high}")
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
            if args["order"] != "rgb" or args["channels"] != "3":
                self.fail(f"order={args['order']!r:.20} channels={args['channels']!r:.20}; "
                          "frames are RGB: order=rgb channels=3")
            args = {"channels": 3, "norm_offset": self.real(args, "norm_offset"),
                    "norm_scale": self.real(args, "norm_scale"),
                    "nominal": self.integer(args, "nominal", *NOMINAL)}
            self.shape["input"] = (3, 1, True)
            self.sizes["input"] = REFERENCE_INPUTS
            self.feature_bytes = 3 * 4 * REFERENCE_INPUTS[-1][0] * REFERENCE_INPUTS[-1][1]
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
        pad = args["pad"] if args["pad"] == "same" else self.integer(args, "pad", 0, MAX_PAD)
        layer = ConvLayer(args["name"], args["input"], self.integer(args, "in", 1),
                          self.integer(args, "out", 1), self.integer(args, "k", 1, MAX_KERNEL),
                          self.integer(args, "stride", 1, MAX_STRIDE), pad,
                          self.integer(args, "dil", 1, MAX_DILATION),
                          self.integer(args, "groups", 1), args["act"],
                          self.integer(args, "weights", 0, self.weight_count))
        if not spatial or layer.cin != channels:
            self.fail(f"conv in={layer.cin} but {layer.input} gives {channels} channels"
                      + ("" if spatial else " without a spatial map"))
        if layer.cin % layer.groups or layer.cout % layer.groups:
            self.fail(f"groups={layer.groups} does not divide in={layer.cin} and out={layer.cout}")
        if layer.act not in ACTIVATIONS:
            self.fail(f"act={layer.act!r:.20} (expected {' or '.join(ACTIVATIONS)})")
        g = ConvGeometry(layer.cin, layer.cout, layer.k, layer.stride, layer.pad,
                         layer.dilation, layer.groups, layer.act)
        sizes = []
        for (h, w), reference in zip(self.sizes[layer.input], REFERENCE_INPUTS):
            try:
                sizes.append(g.output_size(h, w))
            except ValueError:
                self.fail(f"conv {layer.name} leaves no output on a {reference[1]}x"
                          f"{reference[0]} input (its map there is {w}x{h})")
        self.sizes[layer.name] = tuple(sizes)
        self.add_layer(self.weighted(layer), (layer.cout, stride * layer.stride, True))

    def add(self, args):
        inputs = tuple(args["inputs"].split(","))
        shapes = {self.source(name) for name in inputs}
        sizes = {self.sizes.get(name) for name in inputs}
        if len(inputs) < 2 or len(shapes) != 1 or len(sizes) != 1:
            self.fail(f"add needs two or more inputs of equal (channels, stride, spatial) and "
                      f"map sizes; got {', '.join(f'{n}={self.shape[n][:2]}' for n in inputs)}")
        shape = shapes.pop()
        if shape[2]:
            self.sizes[args["name"]] = sizes.pop()
        self.add_layer(AddLayer(args["name"], inputs), shape)

    def pool(self, args):
        channels, stride, spatial = self.source(args["input"])
        if not spatial:
            self.fail(f"pool input {args['input']} is not a spatial map")
        self.add_layer(PoolLayer(args["name"], args["input"]), (channels, stride, False))

    def fc(self, args):
        channels, stride, spatial = self.source(args["input"])
        cin = self.integer(args, "in", 1)
        cout = self.integer(args, "out", 1, MAX_CLASSES)
        if spatial or cin != channels:
            self.fail(f"fc in={cin} needs a pooled input of {cin} channels; {args['input']} "
                      f"gives {channels}{' spatial' if spatial else ''}")
        layer = FcLayer(args["name"], args["input"], cin, cout,
                        self.integer(args, "weights", 0, self.weight_count))
        self.add_layer(self.weighted(layer), (cout, stride, False))

    def tap(self, args):
        name, layer = args["name"], args["layer"]
        channels, stride, spatial = self.source(layer)
        if name not in TAPS or name in self.taps:
            self.fail(f"tap {name!r:.40} is defined twice or is not one of {', '.join(TAPS)}")
        if not spatial or f"stride{stride}" != name:
            self.fail(f"tap {name} names {layer}, a {'map' if spatial else 'vector'} of "
                      f"stride {stride}: a tap is a feature map of the stride it names")
        self.taps[name] = layer

    def add_layer(self, layer, shape):
        self.layers.append(layer)
        self.shape[layer.name] = shape
        h, w = self.sizes[layer.name][-1] if layer.name in self.sizes else (1, 1)
        if not isinstance(layer, AddLayer):  # an add is fused into its conv: no map of its own
            self.feature_bytes += 4 * shape[0] * h * w
        if self.feature_bytes > MAX_FEATURE_BYTES:
            self.fail(f"the feature maps up to {layer.name} take "
                      f"{self.feature_bytes >> 20} MiB at {REFERENCE_INPUTS[-1][1]}x"
                      f"{REFERENCE_INPUTS[-1][0]}, over the {MAX_FEATURE_BYTES >> 20} MiB limit")

    def finish(self, weights: np.ndarray, classes: list[ClassEntry]) -> BaseSpec:
        if "input" not in self.header or not self.layers:
            self.fail("no 'base', 'input' or layer lines")
        missing = [tap for tap in TAPS if tap not in self.taps]
        if missing:
            self.fail(f"no tap {', '.join(missing)}: patches read the base at every one of "
                      f"{', '.join(TAPS)}")
        used = max((layer.weight_end for layer in self.layers if isinstance(layer, (ConvLayer, FcLayer))),
                   default=0)
        if used != weights.size:
            self.fail(f"the layers use {used} weights but {self.path.with_suffix('.data').name} "
                      f"holds {weights.size}")
        outputs, _, spatial = self.shape[self.layers[-1].name]
        if spatial or outputs != len(classes):
            self.fail(f"the last layer has {outputs} outputs{' per pixel' if spatial else ''} "
                      f"but map_clsloc.txt lists {len(classes)} classes")
        head = self.header["input"]
        return BaseSpec(self.path.stem, head["channels"], head["norm_offset"],
                        head["norm_scale"], self.layers, self.taps, weights, classes,
                        self.path, head["nominal"])
