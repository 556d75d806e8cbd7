"""`patchloop base convert`: the shipped EfficientNet-Lite0 into the base network's file format."""
from pathlib import Path

from loop.base.convert import convert_efficientnet_lite0, ensure_default_base
from loop.safe_files import shown


def run(args) -> int:
    txt = convert_efficientnet_lite0(Path(args.out)) if args.out else ensure_default_base()
    print(f"base network: {shown(str(txt))} (with {shown(txt.with_suffix('.data').name)} and "
          "map_clsloc.txt beside it)")
    return 0
