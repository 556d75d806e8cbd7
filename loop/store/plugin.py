"""`.specialneurons` plugin files: a patch that runs without the trainer.

Layout (little-endian):
    16 bytes   magic  b"SPECIALNEURONS\\x00\\x01"  (the last byte: container version)
    u32        manifest length M (at most 1 MiB)
    M bytes    manifest, UTF-8 JSON (keys below)
    blobs      tensors and the icon, where the manifest says (offsets from the blob area)

Manifest: format ("specialneurons"), version (1), name, description, created (unix s),
tag (time-based hash), categories [[tag, index, name]], triggers [tag], topology ("head" or
"pixels"), tap, base {name, hash} (null for pixels), input {height, width, order ("rgb"),
norm_offset, norm_scale, resize ("bilinear")}, threshold, pooling ("detect" or "mean"),
hidden (the topology's hidden width; plugins written before it have none and are as wide
as every patch of their topology was then: 64 for head, 16 for pixels), dtype ("float32",
"float16" or "int8"), layers [{in, out, kernel, stride, padding, dilation, groups, activation}],
tensors [{name, shape, dtype, offset, size, sha256}] and icon ({offset, size, sha256} of a
PNG, or null).

Version 3 (only for patches on a hypercolumn tap, "stride8+16") changes nothing but the tap:
the patch reads the stride-8 map with the stride-16 map spread over it (bilinear, pixel
centres) and stacked after its channels; older readers refuse it by its version.

Version 2 (only for patches that fine-tune the base) adds fine_tune {input, layers, blocks}:
the base layer whose output the patch reads, how many leading layers are its tuned copies
of the base's blocks (named in `blocks`), and a `residual` in every layer (the index of the
earlier layer whose output is added to this one's, -1 for the input, or null). Weights w<i> are (out, in/groups, k, k); biases b<i> are float32 always;
int8 weights come with a float32 tensor w<i>.scale of one scale per output channel
(weight = int8 * scale).

Reading is strict and bounded: a wrong magic, a manifest that does not parse or lacks a
key, sizes or shapes that disagree with the topology, blobs out of bounds or failing their
hash, a newer version: each a one-line PluginError. No pickle; nothing in the file names a
path. Names are printable text (no control or escape characters), category names cannot be
part of a path, the input is at most 1024 a side and 512x512 pixels in all (the base runs at
that size), and an icon's PNG header says at most 512x512: every allocation is bounded
before it is made."""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

import numpy as np

from loop.core.patch import HYPERCOLUMNS, PatchSpec
from loop.core.patch_arch import PatchArch
from loop.safe_files import write_atomically
from loop.store.records import spec_to_json

MAGIC = b"SPECIALNEURONS\x00\x01"
VERSION = 3          # the newest manifest version written and read
FROZEN_VERSION = 1   # what patches on a frozen base still write, so older readers take them
TUNED_VERSION = 2    # patches that fine-tune the base
HYPERCOLUMN_VERSION = 3  # patches that read a hypercolumn tap (stride8+16)
MAX_MANIFEST = 1 << 20
MAX_FILE = 64 << 20
MAX_ICON = 1 << 20
MAX_ICON_SIDE = 512  # pixels: what the window shows; the decoder allocates what the PNG says
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DTYPES = ("float32", "float16", "int8")


class PluginError(ValueError):
    pass


def check_icon(data: bytes) -> None:
    """An icon is a PNG of at most MAX_ICON bytes and MAX_ICON_SIDE pixels a side, by its
    header: 200 KB of PNG can declare a picture that takes gigabytes to decode. A PNG that
    does not begin with its header is let through: no decoder allocates for one (the window
    says the icon cannot be decoded)."""
    from loop.store.images import ImageHeaderError, image_size
    if not data.startswith(PNG_MAGIC) or len(data) > MAX_ICON:
        raise PluginError(f"the icon must be a PNG of at most {MAX_ICON >> 10} KiB")
    try:
        width, height = image_size(data)
    except ImageHeaderError:
        return
    if not (1 <= width <= MAX_ICON_SIDE and 1 <= height <= MAX_ICON_SIDE):
        raise PluginError(f"the icon is {width}x{height} pixels; at most "
                          f"{MAX_ICON_SIDE}x{MAX_ICON_SIDE} is shown")


@dataclass
class Plugin:
    spec: PatchSpec
    arch: PatchArch              # its layers; input_layer is known only for fine-tuned ones
    input_hw: tuple[int, int]
    weights: dict                # name -> float32 array (dequantised)
    icon: bytes | None
    manifest: dict


def _layer_dict(g, residual="absent") -> dict:
    out = {"in": g.c_in, "out": g.c_out, "kernel": g.kernel, "stride": g.stride,
           "padding": g.padding, "dilation": g.dilation, "groups": g.groups,
           "activation": g.activation}
    if residual != "absent":
        out["residual"] = residual
    return out


def _encode(name: str, array: np.ndarray, dtype: str):
    """[(tensor name, bytes, dtype, shape)] for one weight or bias."""
    if name.startswith("b") or dtype == "float32":
        return [(name, np.ascontiguousarray(array, "<f4").tobytes(), "float32", array.shape)]
    if dtype == "float16":
        return [(name, np.ascontiguousarray(array, "<f2").tobytes(), "float16", array.shape)]
    flat = array.reshape(array.shape[0], -1)
    scale = np.maximum(np.abs(flat).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8).reshape(array.shape)
    return [(name, q.tobytes(), "int8", array.shape),
            (name + ".scale", scale.astype("<f4").tobytes(), "float32", scale.shape)]



def manifest_version(spec: PatchSpec, arch: PatchArch) -> int:
    """The oldest manifest version that holds this patch, so older readers take what they
    can read."""
    if spec.topology == "head" and spec.tap in HYPERCOLUMNS:
        return HYPERCOLUMN_VERSION
    return TUNED_VERSION if arch.tuned else FROZEN_VERSION

def write_plugin(path, spec: PatchSpec, arch: PatchArch, input_hw, weights: dict,
                 tag: str, created: float, dtype: str = "float32", icon: bytes | None = None,
                 base_norm=(127.0, 128.0), replace: bool = True) -> None:
    """Writes through a temporary file in the target's folder (safe_files.write_atomically):
    a crash or a full disk leaves the old file or none, never half of one. An existing file
    is replaced only with `replace` (FileExistsError otherwise)."""
    if dtype not in DTYPES:
        raise PluginError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if icon is not None:
        check_icon(icon)
    layers = arch.layers
    blobs, tensors, at = [], [], 0
    for i in range(len(layers)):
        for name in (f"w{i}", f"b{i}"):
            for tname, data, tdtype, shape in _encode(name, weights[name], dtype):
                tensors.append({"name": tname, "shape": list(shape), "dtype": tdtype,
                                "offset": at, "size": len(data),
                                "sha256": hashlib.sha256(data).hexdigest()})
                blobs.append(data)
                at += len(data)
    icon_entry = None
    if icon is not None:
        icon_entry = {"offset": at, "size": len(icon), "sha256": hashlib.sha256(icon).hexdigest()}
        blobs.append(icon)
    if arch.tuned:
        layer_dicts = [_layer_dict(g, r) for g, r in zip(layers, arch.residuals)]
    else:
        layer_dicts = [_layer_dict(g) for g in layers]
    fields = spec_to_json(spec)   # the one encoding of a patch definition
    manifest = {
        "format": "specialneurons", "version": manifest_version(spec, arch),
        "name": fields["name"], "description": fields["description"], "created": created,
        "tag": tag, "categories": fields["categories"], "triggers": fields["triggers"],
        "topology": fields["topology"], "tap": fields["tap"],
        "base": {"name": fields["base_name"], "hash": fields["base_hash"]}
        if spec.topology == "head" else None,
        "input": {"height": int(input_hw[0]), "width": int(input_hw[1]), "order": "rgb",
                  "norm_offset": base_norm[0], "norm_scale": base_norm[1], "resize": "bilinear"},
        "threshold": fields["threshold"], "pooling": fields["pooling"], "loss": fields["loss"],
        "hidden": fields["hidden"], "dtype": dtype,
        "layers": layer_dicts, "tensors": tensors, "icon": icon_entry}
    if arch.tuned:
        manifest["fine_tune"] = {"input": arch.input_layer, "layers": arch.tuned,
                                 "blocks": list(arch.tuned_blocks)}
    head = json.dumps(manifest, indent=1).encode()

    def write(f):
        f.write(MAGIC + struct.pack("<I", len(head)) + head)
        for blob in blobs:
            f.write(blob)

    write_atomically(path, write, replace=replace)
