"""Finding and opening a base network for a command: --base PATH.txt, or the default
EfficientNet-Lite0, converted into the per-user cache on first use."""
from __future__ import annotations

from pathlib import Path

from loop.base.config import BaseSpec, load_base
from loop.base.convert import ensure_default_base
from loop.errors import UserError


def open_base(path: str | None = None) -> BaseSpec:
    if path is None:
        return load_base(ensure_default_base())
    txt = Path(path)
    if txt.suffix != ".txt":
        raise UserError(f"{path}: a base network is given by its .txt config "
                        "(with the .data and map_clsloc.txt beside it)")
    if not txt.is_file():
        raise UserError(f"{path}: no such base network config")
    return load_base(txt)
