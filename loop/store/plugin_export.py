"""A patch's weights (dense, as a snapshot holds them) written as a `.specialneurons` plugin:
staged in a private folder beside the target, then moved over it as one file, so a kill or a
full disk leaves the old file or the new one, never half of one."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from loop.core.frame_pipeline import BASE_INPUT
from loop.core.patch import PIXELS_INPUT
from loop.core.patch_arch import patch_arch
from loop.core.patch_layers import layer_shapes
from loop.safe_files import write_atomically
from loop.store.plugin import write_plugin
from patchloop_kernels.flat import split_dense


def export_snapshot(spec, dense_weights, out: Path, tag: str, base_spec=None,
                    dtype: str = "float32", icon: bytes | None = None,
                    replace_existing: bool = False) -> Path:
    """Writes the plugin atomically; `base_spec` is needed for head patches (the tap's
    channels, and the blocks a fine-tuned patch carries). FileExistsError when `out` is
    there and not `replace_existing`."""
    if spec.topology == "head":
        input_hw, norm = BASE_INPUT, (base_spec.norm_offset, base_spec.norm_scale)
    else:
        input_hw, norm = PIXELS_INPUT, (127.0, 128.0)
    arch = patch_arch(spec, base_spec)
    weights = split_dense(layer_shapes(list(arch.layers)), dense_weights)
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    private = tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".dir", dir=folder)
    try:  # the plugin is written in a folder of our own, then moved over as one file
        staged = Path(private) / "plugin"
        write_plugin(staged, spec, arch, input_hw, weights, tag, time.time(), dtype, icon, norm)
        with open(staged, "rb") as source:
            write_atomically(out, lambda f: shutil.copyfileobj(source, f),
                             replace=replace_existing)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return out
