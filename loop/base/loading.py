"""Finding and opening a base network for a command: --base PATH.txt, or the default
EfficientNet-Lite0, converted into the per-user cache on first use."""
from __future__ import annotations

import os
from pathlib import Path

from loop.base.config import BaseSpec, load_base
from loop.base.convert import ensure_default_base
from loop.errors import UserError
from loop.safe_files import shown


def open_base(path: str | None = None) -> BaseSpec:
    if path is None:
        return load_base(ensure_default_base())
    txt = Path(path)
    if txt.suffix != ".txt":
        raise UserError(f"{shown(path)}: a base network is given by its .txt config "
                        "(with the .data and map_clsloc.txt beside it)")
    if not os.path.lexists(txt):
        raise UserError(f"{shown(path)}: no such base network config")
    return load_base(txt)  # refuses what is not a regular file, without opening it for long
