"""Reading `.specialneurons` files strictly (the format is described in plugin.py). Every
failure is a one-line PluginError that names the file; nothing is trusted before checked."""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np

from loop.core.patch import TAPS, TOPOLOGIES, Category, PatchSpec
from loop.store.plugin import (DTYPES, MAGIC, MAX_FILE, MAX_ICON, MAX_MANIFEST, PNG_MAGIC,
                               VERSION, Plugin, PluginError, _layer_dict, expected_layers)

NUMPY = {"float32": "<f4", "float16": "<f2", "int8": "i1"}
MAX_TAP_CHANNELS = 4096
MAX_CATEGORIES = 1000
MAX_INPUT_SIDE = 4096


def _need(condition, message):
    if not condition:
        raise PluginError(message)


def _get(manifest: dict, key: str, kind):
    _need(key in manifest, f"the manifest lacks {key!r}")
    value = manifest[key]
    _need(isinstance(value, kind) and not (kind is int and isinstance(value, bool)),
          f"manifest {key!r} has the wrong type")
    return value


def read_plugin(path) -> Plugin:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            raise PluginError(f"larger than {MAX_FILE >> 20} MiB")
        data = path.read_bytes()
        return _parse(data)
    except PluginError as exc:
        raise PluginError(f"{path}: {exc}") from None
    except OSError as exc:
        raise PluginError(f"{path}: cannot be read ({exc.strerror})") from None


def _parse(data: bytes) -> Plugin:
    _need(data.startswith(MAGIC[:-1]), "not a .specialneurons file")
    _need(len(data) >= len(MAGIC) + 4, "cut short")
    _need(data[len(MAGIC) - 1] <= VERSION, f"container version {data[len(MAGIC) - 1]} is newer "
          f"than this Patchloop reads ({VERSION})")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    _need(0 < length <= MAX_MANIFEST, f"manifest length {length} is out of bounds")
    start = len(MAGIC) + 4
    _need(start + length <= len(data), "the manifest is cut short")
    try:
        manifest = json.loads(data[start:start + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PluginError(f"the manifest is not valid JSON ({exc.__class__.__name__})") from None
    _need(isinstance(manifest, dict), "the manifest is not an object")
    _need(manifest.get("format") == "specialneurons", "the manifest is not a specialneurons one")
    version = _get(manifest, "version", int)
    _need(version <= VERSION, f"format version {version} is newer than this Patchloop reads "
          f"({VERSION}); update Patchloop")
    blobs = data[start + length:]
    spec, channels, input_hw = _spec(manifest)
    weights = _tensors(manifest, spec, channels, blobs)
    icon = _icon(manifest, blobs)
    return Plugin(spec, channels, input_hw, weights, icon, manifest)


def _spec(manifest: dict):
    categories = _get(manifest, "categories", list)
    _need(2 <= len(categories) <= MAX_CATEGORIES, "between 2 and 1000 categories are needed")
    triggers = _get(manifest, "triggers", list)
    _need(len(triggers) <= MAX_CATEGORIES and all(isinstance(t, str) for t in triggers),
          "triggers must be a list of tags")
    topology, tap = _get(manifest, "topology", str), _get(manifest, "tap", str)
    _need(topology in TOPOLOGIES and tap in TAPS, f"topology {topology!r} / tap {tap!r} unknown")
    base = manifest.get("base")
    if topology == "head":
        _need(isinstance(base, dict) and isinstance(base.get("name"), str)
              and isinstance(base.get("hash"), str), "a head patch must name its base")
    inp = _get(manifest, "input", dict)
    height, width = inp.get("height"), inp.get("width")
    _need(isinstance(height, int) and isinstance(width, int)
          and 16 <= height <= MAX_INPUT_SIDE and 16 <= width <= MAX_INPUT_SIDE,
          "input height/width out of bounds")
    threshold = manifest.get("threshold")
    _need(isinstance(threshold, (int, float)) and not isinstance(threshold, bool),
          "threshold must be a number")
    try:
        cats = tuple(Category(str(t), int(i), str(n)) for t, i, n in categories)
        spec = PatchSpec(str(_get(manifest, "name", str)), cats, tuple(triggers), topology, tap,
                         float(threshold), 0, str(manifest.get("description", "")),
                         base["name"] if base else "", base["hash"] if base else "",
                         str(manifest.get("pooling", "detect")),
                         str(manifest.get("loss", "cross_entropy")))
    except (TypeError, ValueError) as exc:
        raise PluginError(f"the patch definition is not valid ({exc})") from None
    layers = _get(manifest, "layers", list)
    _need(layers and isinstance(layers[0], dict), "layers must be a list of objects")
    channels = layers[0].get("in")
    _need(isinstance(channels, int) and 1 <= channels <= MAX_TAP_CHANNELS,
          "the first layer's input channels are out of bounds")
    expected = [_layer_dict(g) for g in expected_layers(spec, channels)]
    _need(layers == expected, f"the layers do not match the {topology} topology")
    return spec, channels, (height, width)


def _blob(entry: dict, blobs: bytes, what: str) -> bytes:
    offset, size = entry.get("offset"), entry.get("size")
    _need(isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
          and offset + size <= len(blobs), f"{what} lies outside the file")
    data = blobs[offset:offset + size]
    _need(hashlib.sha256(data).hexdigest() == entry.get("sha256"), f"{what} fails its hash")
    return data


def _tensors(manifest: dict, spec: PatchSpec, channels: int, blobs: bytes) -> dict:
    dtype = _get(manifest, "dtype", str)
    _need(dtype in DTYPES, f"dtype {dtype!r} is unknown")
    layers = expected_layers(spec, channels)
    wanted = {}
    for i, g in enumerate(layers):
        w_dtype = dtype
        wanted[f"w{i}"] = (g.weight_shape, w_dtype)
        wanted[f"b{i}"] = ((g.c_out,), "float32")
        if dtype == "int8":
            wanted[f"w{i}.scale"] = ((g.c_out,), "float32")
    entries = _get(manifest, "tensors", list)
    _need(all(isinstance(e, dict) for e in entries), "tensors must be objects")
    names = [e.get("name") for e in entries]
    _need(sorted(map(str, names)) == sorted(wanted), "the tensors do not match the topology")
    raw = {}
    for entry in entries:
        shape, tdtype = wanted[entry["name"]]
        _need(entry.get("shape") == list(shape) and entry.get("dtype") == tdtype,
              f"tensor {entry['name']} has the wrong shape or type")
        data = _blob(entry, blobs, f"tensor {entry['name']}")
        count = int(np.prod(shape))
        _need(len(data) == count * np.dtype(NUMPY[tdtype]).itemsize,
              f"tensor {entry['name']} has {len(data)} bytes for shape {list(shape)}")
        raw[entry["name"]] = np.frombuffer(data, NUMPY[tdtype]).reshape(shape)
    weights = {}
    for i in range(len(layers)):
        w = raw[f"w{i}"].astype(np.float32)
        if dtype == "int8":
            w = w * raw[f"w{i}.scale"].reshape(-1, *([1] * (w.ndim - 1)))
        _need(np.isfinite(w).all() and np.isfinite(raw[f"b{i}"]).all(),
              f"layer {i} holds NaN or Inf")
        weights[f"w{i}"] = w.astype(np.float32)
        weights[f"b{i}"] = raw[f"b{i}"].astype(np.float32)
    return weights


def _icon(manifest: dict, blobs: bytes) -> bytes | None:
    entry = manifest.get("icon")
    if entry is None:
        return None
    _need(isinstance(entry, dict), "icon must be an object or null")
    data = _blob(entry, blobs, "the icon")
    _need(data.startswith(PNG_MAGIC) and len(data) <= MAX_ICON, "the icon is not a small PNG")
    return data
