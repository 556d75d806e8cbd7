"""The seed format of a base network: `<name>.txt` (the layers, readable text),
`<name>.data` (all weights, little-endian float32, batch norm folded into the convs) and
`map_clsloc.txt` (the output classes) in one folder.

The .txt holds one statement a line, `op key=value ...`; `#` starts a comment line:

    base version=1
    input channels=3 norm_offset=127 norm_scale=128 order=rgb nominal=224
    conv name=stem input=input out=32 in=3 k=3 stride=2 pad=same dil=1 groups=1 act=relu6 weights=0
    add name=b2.add inputs=b2.project,b1.project
    pool name=pool input=head
    fc name=fc input=pool in=1280 out=1000 weights=3350000
    tap name=stride16 layer=b10.add

`weights` is a float32 element offset into the .data file. A conv's weights have shape
(out, in/groups, k, k) and are followed at once by `out` bias values; an fc's have shape
(out, in), then `out` biases. `pad=same` is TensorFlow SAME padding (output ceil(n/stride),
the odd pixel at the bottom/right); an integer pads that many pixels on every side. `pool`
is a global average. A `tap` names a layer whose output later stages may read.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loop.base.classes import ClassEntry, read_map_clsloc, write_map_clsloc
from loop.errors import UserError

FORMAT_VERSION = 1
MAX_TXT_BYTES = 1 << 20
MAX_DATA_BYTES = 1 << 30
ACTIVATIONS = ("relu6", "none")


class BaseFormatError(UserError, ValueError):
    """A base network's files are damaged or inconsistent; the message names file and line."""


class _Weighted:
    """A layer whose weights, then `cout` biases, sit at weight_offset in the flat block."""

    @property
    def bias_count(self) -> int:
        return self.cout

    @property
    def weight_end(self) -> int:
        return self.weight_offset + self.weight_count + self.cout


@dataclass(frozen=True)
class ConvLayer(_Weighted):
    name: str
    input: str
    cin: int
    cout: int
    k: int
    stride: int
    pad: str | int  # "same" or symmetric pixels
    dilation: int
    groups: int
    act: str
    weight_offset: int

    @property
    def weight_count(self) -> int:
        return self.cout * (self.cin // self.groups) * self.k * self.k


@dataclass(frozen=True)
class AddLayer:
    name: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class PoolLayer:
    name: str
    input: str


@dataclass(frozen=True)
class FcLayer(_Weighted):
    name: str
    input: str
    cin: int
    cout: int
    weight_offset: int

    @property
    def weight_count(self) -> int:
        return self.cout * self.cin


@dataclass(eq=False)
class BaseSpec:
    name: str
    input_channels: int
    norm_offset: float
    norm_scale: float
    layers: list
    taps: dict[str, str]
    weights: np.ndarray  # flat float32
    classes: list[ClassEntry]
    path: Path | None = None
    nominal_size: int = 224
    layer_by_name: dict = field(init=False, repr=False)

    def __post_init__(self):
        self.layer_by_name = {layer.name: layer for layer in self.layers}

    def params(self, layer) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) views into the flat weights: conv (out, in/groups, k, k), fc (out, in)."""
        middle = layer.weight_offset + layer.weight_count
        w, b = self.weights[layer.weight_offset:middle], self.weights[middle:layer.weight_end]
        if isinstance(layer, ConvLayer):
            return w.reshape(layer.cout, layer.cin // layer.groups, layer.k, layer.k), b
        return w.reshape(layer.cout, layer.cin), b


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


def _line(layer) -> str:
    if isinstance(layer, ConvLayer):
        return (f"conv name={layer.name} input={layer.input} out={layer.cout} in={layer.cin} "
                f"k={layer.k} stride={layer.stride} pad={layer.pad} dil={layer.dilation} "
                f"groups={layer.groups} act={layer.act} weights={layer.weight_offset}")
    if isinstance(layer, AddLayer):
        return f"add name={layer.name} inputs={','.join(layer.inputs)}"
    if isinstance(layer, PoolLayer):
        return f"pool name={layer.name} input={layer.input}"
    return (f"fc name={layer.name} input={layer.input} in={layer.cin} out={layer.cout} "
            f"weights={layer.weight_offset}")


def save_base(spec: BaseSpec, directory, name: str) -> Path:
    """Writes <name>.txt, <name>.data and map_clsloc.txt into directory; returns the .txt."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"# patchloop base network {name}: one layer a line, weights = float32 offset "
             f"into {name}.data",
             f"base version={FORMAT_VERSION}",
             f"input channels={spec.input_channels} norm_offset={spec.norm_offset:.9g} "
             f"norm_scale={spec.norm_scale:.9g} order=rgb nominal={spec.nominal_size}"]
    lines += [_line(layer) for layer in spec.layers]
    lines += [f"tap name={tap} layer={layer}" for tap, layer in spec.taps.items()]
    txt_path = directory / f"{name}.txt"
    txt_path.write_text("\n".join(lines) + "\n", "utf-8")
    np.asarray(spec.weights, dtype="<f4").tofile(directory / f"{name}.data")
    write_map_clsloc(directory / "map_clsloc.txt", spec.classes)
    return txt_path


def load_base(txt_path) -> BaseSpec:
    """Reads and checks a base network; raises BaseFormatError naming file and line."""
    txt_path = Path(txt_path)
    data_path = txt_path.with_suffix(".data")
    for path, cap in ((txt_path, MAX_TXT_BYTES), (data_path, MAX_DATA_BYTES)):
        if not path.is_file():
            raise BaseFormatError(f"{path}: missing (a base network needs .txt, .data and "
                                  "map_clsloc.txt side by side)")
        if path.stat().st_size > cap or path.stat().st_size % 4 and path == data_path:
            raise BaseFormatError(f"{path}: {path.stat().st_size} bytes, over the "
                                  f"{cap >> 20} MiB cap or not whole float32 values")
    weights = np.fromfile(data_path, dtype="<f4").astype(np.float32, copy=False)
    try:
        classes = read_map_clsloc(txt_path.parent / "map_clsloc.txt")
    except (OSError, ValueError) as e:
        raise BaseFormatError(str(e)) from None
    parser = _Parser(txt_path, weights.size)
    for number, text in enumerate(txt_path.read_text("utf-8").splitlines(), start=1):
        if text.strip() and not text.lstrip().startswith("#"):
            parser.where = f"{txt_path}:{number}"
            parser.statement(*text.split())
    parser.where = str(txt_path)
    return parser.finish(weights, classes)


class _Parser:
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
        used = max((layer.weight_end for layer in self.layers if isinstance(layer, _Weighted)),
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
