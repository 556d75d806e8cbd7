"""`patchloop bench train-step`: one patch's training step (upload, forward, loss, backward,
clip, SGD) at a given batch, median over --repeats steps, beside PyTorch CPU on the same
layer chain and batch when torch is importable (install its CPU build for benchmarking with
`pip install torch --index-url https://download.pytorch.org/whl/cpu`; it is never a
dependency)."""
from __future__ import annotations

import json

from loop.core.engine import LoopCore
from loop.core.patch import Category, PatchSpec
from loop.errors import UserError
from loop.faces.bench.train_speed import train_steps_per_second
from patchloop_kernels.runtime import Device

CATEGORIES = ("background", "ball", "box")


def _core(args, device: Device) -> LoopCore:
    topology = getattr(args, "topology", "head")
    fine_tune = getattr(args, "fine_tune", None) or 0
    if topology == "pixels" and fine_tune:
        raise UserError(f"--fine-tune {fine_tune}: a pixels patch has no base to fine-tune; "
                        "use --topology head")
    categories = tuple(Category(f"n{i + 1}", i, name) for i, name in enumerate(CATEGORIES))
    base = None
    if topology == "head":
        from loop.base.loading import open_base
        from loop.base.network import BaseNetwork
        base = BaseNetwork(device, open_base(args.base))
    spec = PatchSpec("bench", categories, topology=topology, fine_tune=fine_tune,
                     base_name=base.spec.name if base else "",
                     base_hash=base.hash if base else "")
    try:
        return LoopCore(spec, base=base)
    except ValueError as exc:
        raise UserError(f"--fine-tune {fine_tune}: {exc}") from exc


def run(args) -> int:
    device = Device.default()
    if args.batch < 1:
        raise UserError(f"--batch {args.batch}: a training step needs a batch of 1 or more")
    core = _core(args, device)
    try:
        speed = train_steps_per_second(core, args.batch, max(3, args.repeats))
    finally:
        core.close()
    report = {"device": device.describe(), "topology": core.spec.topology,
              "fine_tune_blocks": list(core.model.arch.tuned_blocks),
              "trained_parameters": core.model.layout.dense_size, "steps": max(3, args.repeats),
              **speed}
    torch_sps = speed.get("pytorch_steps_per_second")
    report["speed_vs_pytorch"] = (round(speed["patchloop_steps_per_second"] / torch_sps, 3)
                                  if torch_sps else None)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    shape = "x".join(map(str, report["feature_shape"]))
    tuned = ", ".join(report["fine_tune_blocks"]) or "none"
    print(f"device: {report['device']}")
    print(f"{report['topology']} patch on {shape} inputs, batch {report['batch']}, "
          f"fine-tuned blocks: {tuned}")
    window = ""
    if "whole_input_ms_per_step" in report:
        window = (f" on {'x'.join(map(str, report['step_input_shape']))} windows around the "
                  f"labels (whole inputs: {report['whole_input_ms_per_step']:.1f} ms)")
    print(f"patchloop: {report['patchloop_ms_per_step']:.1f} ms per step{window} "
          f"({report['patchloop_steps_per_second']:.2f} steps/s, median of {report['steps']})")
    if torch_sps:
        print(f"PyTorch {report['pytorch_version']} ({report['pytorch_threads']} threads): "
              f"{report['pytorch_ms_per_step']:.1f} ms per step ({torch_sps:.2f} steps/s); "
              f"patchloop is {report['speed_vs_pytorch']:.2f}x its speed")
    else:
        print(f"PyTorch: {report['pytorch_note']} (pip install torch --index-url "
              "https://download.pytorch.org/whl/cpu)")
    return 0
