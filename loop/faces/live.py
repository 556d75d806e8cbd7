"""`patchloop live`: opens the source, builds the core, runs the window."""
from __future__ import annotations

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.core.engine import LoopCore
from loop.core.patch import PatchSpec, categories_from_names
from loop.demo.scene import CATEGORIES
from loop.errors import UserError
from loop.faces.sources import DemoSource, open_source
from patchloop_kernels.runtime import Device


def build_core(args, source) -> LoopCore:
    if args.categories:
        names = [n.strip() for n in args.categories.split(",") if n.strip()]
    elif isinstance(source, DemoSource):
        names = [name for _, name in CATEGORIES]
    else:
        names = ["background", "object"]
    try:
        spec = PatchSpec(args.name, categories_from_names(names), topology=args.topology,
                         tap=args.tap)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    device = Device.default()
    base = BaseNetwork(device, open_base(args.base)) if args.topology == "head" else None
    if base is not None:
        spec = PatchSpec(spec.name, spec.categories, topology=spec.topology, tap=spec.tap,
                         base_name=base.spec.name, base_hash=base.hash)
    return LoopCore(spec, base=base, device=device)


def run(args, max_frames: int | None = None) -> int:
    source, note = open_source(args.camera, args.video, args.images, args.demo)
    core = build_core(args, source)
    from loop.faces.live_app import LiveApp  # pygame only when a window is wanted
    app = LiveApp(core, source, note)
    try:
        app.run(max_frames)
    finally:
        source.close()
    return 0
