"""Reading `.specialneurons` files strictly (the format is described in plugin.py). Every
failure is a one-line PluginError that names the file; nothing is trusted before checked."""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct

import numpy as np

from loop.core.patch import (HYPERCOLUMNS, MAX_FINE_TUNE, PATCH_TAPS, TOPOLOGIES, Category,
                             PatchSpec)
from loop.core.patch_arch import arch_from_layers
from loop.errors import UserError
from loop.store.records import SessionFormatError, spec_from_json
from loop.store.plugin import (DTYPES, MAGIC, MAX_FILE, MAX_MANIFEST, VERSION, Plugin,
                               PluginError, check_icon)
from loop.safe_files import read_input, shown
from patchloop_kernels.conv import ConvGeometry

NUMPY = {"float32": "<f4", "float16": "<f2", "int8": "i1"}
MAX_TAP_CHANNELS = 4096
MAX_CATEGORIES = 1000
# The input a head patch's base runs at: 240x320 as exported; 512x512 costs ~400 MB in
# `eval`, 4096x4096 12 GB. The base's plan needs 64 a side.
MIN_INPUT_SIDE = 64
MAX_INPUT_SIDE = 1024
MAX_INPUT_PIXELS = 512 * 512
MAX_NAME = 200
MAX_DESCRIPTION = 4000
MAX_LAYERS = 128
MAX_KERNEL = 15
MAX_STRIDE = 4
LAYER_NAME = re.compile(r"[A-Za-z0-9_.]{1,200}")  # used whole (fullmatch)
PLUGIN_TAG = re.compile(r"[A-Za-z0-9_.-]{1,64}")
BASE_HASH = re.compile(r"[0-9a-f]{1,64}")
LAYER_KEYS = {"in", "out", "kernel", "stride", "padding", "dilation", "groups", "activation"}


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
    """A plugin from a regular file of at most MAX_FILE bytes, checked field by field;
    a one-line PluginError naming the file otherwise."""
    where = shown(os.fsdecode(path))
    try:
        data = read_input(path, MAX_FILE, "plugin")
    except UserError as exc:  # names the file already
        raise PluginError(str(exc)) from None
    try:
        return _parse(data)
    except PluginError as exc:
        raise PluginError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, OverflowError, IndexError, RecursionError) as exc:
        # A backstop: every check above should have caught a malformed file first.
        raise PluginError(f"{where}: malformed ({exc.__class__.__name__})") from None


def _parse(data: bytes) -> Plugin:
    _need(data.startswith(MAGIC[:-1]), "not a .specialneurons file")
    _need(len(data) >= len(MAGIC) + 4, "cut short")
    _need(data[len(MAGIC) - 1] <= MAGIC[-1], f"container version {data[len(MAGIC) - 1]} is "
          f"newer than this Patchloop reads ({MAGIC[-1]})")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    _need(0 < length <= MAX_MANIFEST, f"manifest length {length} is out of bounds")
    start = len(MAGIC) + 4
    _need(start + length <= len(data), "the manifest is cut short")
    try:
        manifest = json.loads(data[start:start + length].decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, or a number too long
        raise PluginError(f"the manifest is not valid JSON ({exc.__class__.__name__})") from None
    _need(isinstance(manifest, dict), "the manifest is not an object")
    _need(manifest.get("format") == "specialneurons", "the manifest is not a specialneurons one")
    version = _get(manifest, "version", int)
    _need(version <= VERSION, f"format version {version} is newer than this Patchloop reads "
          f"({VERSION}); update Patchloop")
    _need(version >= 1, f"format version {version} is unknown")
    blobs = data[start + length:]
    spec, input_hw = _spec(manifest, version)
    arch = _arch(manifest, spec)
    weights = _tensors(manifest, arch.layers, blobs)
    icon = _icon(manifest, blobs)
    return Plugin(spec, arch, input_hw, weights, icon, manifest)


def _text(manifest: dict, key: str, limit: int, lines: bool = False) -> str:
    """A name or description to be shown: printable (newlines too, where `lines`), so it can
    never move the cursor or recolour a terminal."""
    value = _get(manifest, key, str)
    plain = value.replace("\n", "").replace("\t", "") if lines else value
    _need(len(value) <= limit and plain.isprintable() and (lines or value),
          f"manifest {key!r} is empty, over {limit} characters or holds control characters")
    return value


def _categories(manifest: dict) -> tuple[Category, ...]:
    categories = _get(manifest, "categories", list)
    _need(2 <= len(categories) <= MAX_CATEGORIES, "between 2 and 1000 categories are needed")
    _need(all(isinstance(c, list) and len(c) == 3 and isinstance(c[0], str)
              and type(c[1]) is int and isinstance(c[2], str) for c in categories),
          "each category must be [tag, index, name]")
    try:
        return tuple(Category(t, i, n) for t, i, n in categories)
    except ValueError as exc:
        raise PluginError(f"a category is not valid ({exc})") from None


def _base(manifest: dict, topology: str) -> tuple[str, str]:
    base = manifest.get("base")
    _need(base is not None or topology != "head", "a head patch must name its base")
    if base is None:
        return "", ""
    _need(isinstance(base, dict) and isinstance(base.get("name"), str)
          and isinstance(base.get("hash"), str), "base must be {name, hash} or null")
    _need(0 < len(base["name"]) <= MAX_NAME and base["name"].isprintable()
          and BASE_HASH.fullmatch(base["hash"]) is not None,
          "base name or hash holds characters a base's do not")
    return base["name"], base["hash"]


def _input(manifest: dict) -> tuple[int, int]:
    inp = _get(manifest, "input", dict)
    height, width = inp.get("height"), inp.get("width")
    _need(type(height) is int and type(width) is int
          and MIN_INPUT_SIDE <= min(height, width) and max(height, width) <= MAX_INPUT_SIDE
          and height * width <= MAX_INPUT_PIXELS,
          f"input height/width out of bounds ({MIN_INPUT_SIDE} to {MAX_INPUT_SIDE} each, at "
          f"most {MAX_INPUT_PIXELS} pixels)")
    offset, scale = inp.get("norm_offset"), inp.get("norm_scale")
    _need(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (offset, scale))
          and 0 <= offset <= 255 and 0 < scale <= 1e4, "input norm_offset/norm_scale invalid")
    _need(inp.get("order") == "rgb" and inp.get("resize") == "bilinear",
          "input order must be rgb and resize bilinear")
    return height, width


def _spec(manifest: dict, version: int):
    cats = _categories(manifest)
    triggers = _get(manifest, "triggers", list)
    _need(len(triggers) <= MAX_CATEGORIES and all(isinstance(t, str) for t in triggers),
          "triggers must be a list of tags")
    topology, tap = _get(manifest, "topology", str), _get(manifest, "tap", str)
    _need(topology in TOPOLOGIES and tap in PATCH_TAPS,
          f"topology {topology!r:.40} / tap {tap!r:.40} unknown")
    _need(PLUGIN_TAG.fullmatch(_get(manifest, "tag", str)) is not None,
          "manifest 'tag' holds characters a snapshot tag does not")
    name = _text(manifest, "name", MAX_NAME)
    description = _text(manifest, "description", MAX_DESCRIPTION, lines=True) \
        if "description" in manifest else ""
    base_name, base_hash = _base(manifest, topology)
    threshold = manifest.get("threshold")
    _need(isinstance(threshold, (int, float)) and not isinstance(threshold, bool),
          "threshold must be a number")
    fine_tune = manifest.get("fine_tune")
    _need((fine_tune is not None) == (version == 2), "a version 2 manifest has fine_tune, "
          "versions 1 and 3 have none")
    _need((tap in HYPERCOLUMNS) == (version == 3), "a version 3 manifest reads a hypercolumn "
          "tap, versions 1 and 2 one tap")
    blocks = 0
    if fine_tune is not None:
        _need(isinstance(fine_tune, dict) and isinstance(fine_tune.get("blocks"), list)
              and 1 <= len(fine_tune["blocks"]) <= MAX_FINE_TUNE
              and all(_is_layer_name(b) for b in fine_tune["blocks"]),
              "fine_tune must name between 1 and 32 tuned blocks")
        blocks = len(fine_tune["blocks"])
    fields = {"name": name, "categories": [[c.tag, c.index, c.name] for c in cats],
              "triggers": triggers, "topology": topology, "tap": tap,
              "threshold": float(threshold), "seed": 0, "description": description,
              "base_name": base_name, "base_hash": base_hash,
              "pooling": str(manifest.get("pooling", "detect")),
              "loss": str(manifest.get("loss", "cross_entropy")), "fine_tune": blocks}
    if "hidden" in manifest:   # plugins written before hidden widths were written have none
        fields["hidden"] = manifest["hidden"]
    try:
        spec = spec_from_json(fields)   # the one way a patch definition is built from JSON
    except (SessionFormatError, OverflowError) as exc:
        raise PluginError(f"the {exc}") from None
    return spec, _input(manifest)


def _is_layer_name(value) -> bool:
    """A base layer or block name: letters, digits, '_' and '.', nothing a message could
    be forged with."""
    return isinstance(value, str) and LAYER_NAME.fullmatch(value) is not None


def _int(entry: dict, key: str, low: int, high: int) -> int:
    value = entry.get(key)
    _need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
          f"layer {key} {value!r} is out of bounds")
    return value


def _layer(entry) -> tuple[ConvGeometry, int | None]:
    _need(isinstance(entry, dict), "layers must be a list of objects")
    _need(set(entry) in (LAYER_KEYS, LAYER_KEYS | {"residual"}), "a layer has unknown keys")
    padding = entry.get("padding")
    if padding != "same":
        padding = _int(entry, "padding", 0, MAX_KERNEL)
    residual = entry.get("residual")
    if residual is not None:
        residual = _int(entry, "residual", -1, MAX_LAYERS)
    try:
        g = ConvGeometry(_int(entry, "in", 1, MAX_TAP_CHANNELS),
                         _int(entry, "out", 1, MAX_TAP_CHANNELS),
                         _int(entry, "kernel", 1, MAX_KERNEL), _int(entry, "stride", 1, MAX_STRIDE),
                         padding, _int(entry, "dilation", 1, MAX_STRIDE),
                         _int(entry, "groups", 1, MAX_TAP_CHANNELS), str(entry.get("activation")))
    except ValueError as exc:
        raise PluginError(f"a layer is not valid ({exc})") from None
    return g, residual


def _arch(manifest: dict, spec: PatchSpec):
    entries = _get(manifest, "layers", list)
    _need(1 <= len(entries) <= MAX_LAYERS, "the number of layers is out of bounds")
    parsed = [_layer(e) for e in entries]
    fine_tune = manifest.get("fine_tune") or {}
    tuned, input_layer = fine_tune.get("layers", 0), fine_tune.get("input")
    if fine_tune:
        _need(isinstance(tuned, int) and not isinstance(tuned, bool)
              and 1 <= tuned < len(entries), "fine_tune layers is out of bounds")
        _need(_is_layer_name(input_layer), "fine_tune input must name a base layer")
        _need(all("residual" in e for e in entries), "every layer of a fine-tuned patch "
              "states its residual")
    try:
        return arch_from_layers(spec, [g for g, _ in parsed], [r for _, r in parsed],
                                input_layer, tuned, fine_tune.get("blocks", ()))
    except ValueError as exc:
        raise PluginError(str(exc)) from None


def _blob(entry: dict, blobs: bytes, what: str) -> bytes:
    offset, size = entry.get("offset"), entry.get("size")
    _need(isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
          and offset + size <= len(blobs), f"{what} lies outside the file")
    data = blobs[offset:offset + size]
    _need(hashlib.sha256(data).hexdigest() == entry.get("sha256"), f"{what} fails its hash")
    return data


def _tensors(manifest: dict, layers, blobs: bytes) -> dict:
    dtype = _get(manifest, "dtype", str)
    _need(dtype in DTYPES, f"dtype {dtype!r:.40} is unknown")
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
    check_icon(data)
    return data
