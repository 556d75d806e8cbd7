"""The base network's file format: `<name>.txt` (the layers, readable text),
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
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loop.base.classes import ClassEntry, read_map_clsloc, write_map_clsloc
from loop.errors import UserError
from loop.safe_files import open_input, read_input, shown

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
    """Reads and checks a base network; raises BaseFormatError naming file and line. Each
    file must be a regular file under its cap (a FIFO or a link to a device is refused, not
    read), and is read once."""
    from loop.base.config_parse import Parser  # the checks live beside, in their own file
    txt_path = Path(txt_path)
    data_path = txt_path.with_suffix(".data")
    text = _read(txt_path, MAX_TXT_BYTES, "base network config")
    weights = _read_weights(data_path)
    try:
        classes = read_map_clsloc(txt_path.parent / "map_clsloc.txt")
    except (UserError, ValueError) as exc:
        raise BaseFormatError(str(exc)) from None
    parser = Parser(txt_path, weights.size)
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise BaseFormatError(f"{shown(str(txt_path))}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            parser.where = f"{shown(str(txt_path))}:{number}"
            parser.statement(*line.split())
    parser.where = shown(str(txt_path))
    spec = parser.finish(weights, classes)
    from loop.base.network import _fused_residuals  # how the device runs an add
    try:
        _fused_residuals(spec)
    except ValueError as exc:
        raise BaseFormatError(str(exc)) from None
    return spec


def _read(path: Path, cap: int, what: str) -> bytes:
    _exists(path)
    try:
        return read_input(path, cap, what)
    except UserError as exc:
        raise BaseFormatError(str(exc)) from None


def _open(path: Path, cap: int, what: str):
    _exists(path)
    try:
        return open_input(path, cap, what)
    except UserError as exc:
        raise BaseFormatError(str(exc)) from None


def _exists(path: Path) -> None:
    if not os.path.lexists(path):
        raise BaseFormatError(f"{shown(str(path))}: missing (a base network needs .txt, .data "
                              "and map_clsloc.txt side by side)")


def _read_weights(path: Path) -> np.ndarray:
    """The flat float32 weights, read straight into their array, every one finite: a NaN or
    an Inf in a base makes every probability NaN."""
    with _open(path, MAX_DATA_BYTES, "base network's weights") as f:
        size = os.fstat(f.fileno()).st_size
        if size % 4:
            raise BaseFormatError(f"{shown(str(path))}: {size} bytes is not whole float32 "
                                  "values")
        weights = np.empty(size // 4, "<f4")
        if f.readinto(memoryview(weights).cast("B")) != size:
            raise BaseFormatError(f"{shown(str(path))}: changed while it was read")
    if not np.isfinite(weights).all():
        raise BaseFormatError(f"{shown(str(path))}: holds NaN or infinite weights")
    return weights.astype(np.float32, copy=False)
