"""`patchloop bench loop --policy NAME|all`: simulated labeling policies (the ways real
people click: streaks of one category, bursts, slow clicks, mistakes undone or left in, ...)
drive a fresh patch each, step by step, on the demo video (loop/demo/policy_run.py).

Reports per policy: held-out balanced accuracy against clicks, clicks to 90% and 95%, false
object regions at the end, the trainer's steps, divergence restores, automatic learning-rate
changes and recoveries, the learning rate at the end, whether the run got stuck (and why),
and its wall time."""
from __future__ import annotations

import json
import math

from loop.base.loading import open_base
from loop.base.network import BaseNetwork
from loop.demo.curves import curve_report
from loop.demo.held_out import HELD_OUT, HeldOutSet
from loop.demo.policies import POLICIES
from loop.demo.policy_run import PolicyRun, run_policy
from loop.demo.scene import DemoScene
from loop.errors import UserError
from loop.faces.bench.loop import demo_core, patch_name
from loop.faces.progress import ProgressBar
from loop.faces.wording import counted
from patchloop_kernels.runtime import Device


def policy_names(choice: str) -> list[str]:
    if choice == "all":
        return list(POLICIES)
    if choice not in POLICIES:
        raise UserError(f"policy {choice!r} is not one of: {', '.join(POLICIES)}, all")
    return [choice]


def run(args) -> int:
    names = policy_names(args.policy)
    device = Device.default()
    base = BaseNetwork(device, open_base(args.base))
    scene = DemoScene(seed=args.seed)
    held_out = None
    results = {}
    progress = ProgressBar("policies", len(names))
    for done, name in enumerate(names):
        progress.update(done, name)
        core = demo_core(base, scene, args.seed, args.batch, args.tap, args.topology)
        held_out = held_out or HeldOutSet(core, scene)  # the base is shared: so are features
        results[name] = policy_report(run_policy(
            core, scene, POLICIES[name](seed=args.seed), args.clicks, step_scale=args.step_scale,
            held_out=held_out, scored_when_shown=args.scored_when_shown))
        core.close()
    progress.done()
    report = {"device": device.describe(), "frame": "240x320", "patch": patch_name(args),
              "trainer_batch": args.batch, "seed": args.seed, "clicks": args.clicks,
              "step_scale": args.step_scale,
              "scored": "when each click shows" if args.scored_when_shown else "after each pause",
              "policies": results}
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


def policy_report(run: PolicyRun) -> dict:
    return {
        "clicks": run.clicks,
        **curve_report(run.accuracy_by_clicks, run.pixel_accuracy_by_clicks),
        "final_false_regions_per_frame": round(run.false_regions_per_frame, 3),
        "final_pixel_recall": run.pixel_recall,
        "training_steps": run.steps,
        "divergence_restores": run.restores,
        "learning_rate_changes": run.rate_changes,
        "stuck_recoveries": run.recoveries,
        # None when no step ran (a NaN would make the report invalid JSON).
        "final_learning_rate": run.learning_rate if math.isfinite(run.learning_rate) else None,
        "wrong_labels_kept": sum(not m.move.truthful and not m.move.take_back
                                 for m in run.labels),
        "stuck": bool(run.stuck), "stuck_reasons": run.stuck,
        "seconds": round(run.seconds, 2),
    }


COLUMNS = (("policy", 17), ("clicks", 6), ("accuracy", 8), ("to 90%", 6), ("to 95%", 6),
           ("per pixel", 9), ("false regions", 13),
           ("steps", 6), ("restores", 8), ("lr changes", 10), ("recoveries", 10),
           ("final lr", 8), ("stuck", 5), ("seconds", 7))


def _table(report) -> str:
    def row(values):
        return "  ".join(f"{str(v):>{w}}" if i else f"{str(v):<{w}}"
                         for i, (v, (_, w)) in enumerate(zip(values, COLUMNS)))

    lines = [f"device: {report['device']}; seed {report['seed']}, "
             f"{counted(report['clicks'], 'click')} per policy, trainer batch "
             f"{report['trainer_batch']}{_pace(report)}; accuracy: balanced, per cell (and "
             "per pixel), on "
             f"{HELD_OUT} held-out frames, after the last click; false regions: object "
             "regions of the per-pixel verdict where there is no such object, per frame",
             row(name for name, _ in COLUMNS)]
    for name, r in report["policies"].items():
        rate = r["final_learning_rate"]
        lines.append(row([name, r["clicks"], f"{r['final_balanced_accuracy']:.3f}",
                          r["clicks_to_90"] or "-", r["clicks_to_95"] or "-",
                          f"{r['final_pixel_balanced_accuracy']:.3f}",
                          f"{r['final_false_regions_per_frame']:g}", r["training_steps"],
                          r["divergence_restores"], r["learning_rate_changes"],
                          r["stuck_recoveries"], "-" if rate is None else f"{rate:.2g}",
                          "yes" if r["stuck"] else "no", f"{r['seconds']:.1f}"]))
    lines += [f"{name} is stuck: {'; '.join(r['stuck_reasons'])}"
              for name, r in report["policies"].items() if r["stuck"]]
    return "\n".join(lines)


def _pace(report) -> str:
    """The steps' scale and when the curve was scored, where not the usual ('' then)."""
    said = []
    if report["step_scale"] != 1.0:
        said.append(f"{report['step_scale']:g}x the steps between clicks")
    if report["scored"] != "after each pause":
        said.append(f"scored {report['scored']}")
    return "".join(f"; {s}" for s in said)
