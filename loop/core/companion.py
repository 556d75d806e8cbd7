"""Several patches over one base pass per frame: the companion view that runs plugins.

A patch runs when one of its trigger tags is among the base's top classes or among the
categories that patches evaluated before it found; patches run in the order those
dependencies give, and a cycle is refused with the names in it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loop.core.frame_pipeline import BASE_INPUT
from loop.core.patch import PIXELS_INPUT
from loop.core.patch_input import PatchInput
from loop.core.patch_weights import PatchWeights
from loop.core.verdict import base_top, frame_verdict
from patchloop_kernels.image import FramePreprocess
from patchloop_kernels.runtime import Tensor

MAX_PATCHES = 32       # patches run together: each holds its weights and buffers
KEPT_FRAME_SIZES = 2   # plans kept for the frame sizes seen last (images differ in size)


class PatchSetError(ValueError):
    """Patches that cannot run together: too many of them, or a trigger cycle."""


class TriggerCycleError(PatchSetError):
    pass


@dataclass(frozen=True)
class PatchResult:
    name: str
    triggered: bool
    category: str
    confidence: float
    fired: bool
    fired_tag: str | None
    because: str | None   # the tag that triggered it (a base synset or a patch's category)
    probabilities: np.ndarray | None = None  # float32 (K, h, w) per cell, when it ran


def evaluation_order(specs: list) -> list[int]:
    """Indices of `specs` so that every patch comes after the patches whose categories
    trigger it. A cycle raises TriggerCycleError naming the patches in it, each once. An
    explicit stack, not recursion: a chain of any length is ordered."""
    provides = [{c.tag for c in s.categories[1:]} for s in specs]
    needs = [[j for j in range(len(specs)) if j != i and set(s.triggers) & provides[j]]
             for i, s in enumerate(specs)]
    order, state = [], [0] * len(specs)   # 0 new, 1 on the path, 2 done
    for start in range(len(specs)):
        if state[start]:
            continue
        path, pending = [start], [iter(needs[start])]
        state[start] = 1
        while path:
            j = next(pending[-1], None)
            if j is None:
                state[path[-1]] = 2
                order.append(path.pop())
                pending.pop()
            elif state[j] == 1:
                cycle = path[path.index(j):] + [j]
                raise TriggerCycleError("patches trigger each other in a cycle: "
                                        + " -> ".join(specs[k].name for k in cycle))
            elif state[j] == 0:
                state[j] = 1
                path.append(j)
                pending.append(iter(needs[j]))
    return order


class Companion:
    """Runs loaded patches (spec, weights, PatchArch on this base) on frames over one base
    pass; a fine-tuned patch reads the base where its tuned blocks branch off."""

    def __init__(self, device, base, patches: list):
        self.device, self.base = device, base
        self.queue = device.queue
        self._base_plans: dict = {}   # frame shape -> base plan, kept when patches change
        self.base_runs = 0
        self.set_patches(patches)

    def set_patches(self, patches: list) -> None:
        """Load another set of (spec, weights, arch) without restarting the base. Too many
        patches or a cycle raise PatchSetError and leave the current patches as they were."""
        specs = [p[0] for p in patches]
        if len(specs) > MAX_PATCHES:
            raise PatchSetError(f"{len(specs)} patches: at most {MAX_PATCHES} run together")
        order = evaluation_order(specs)
        self.specs, self.order, self.models = specs, order, list(patches)
        self._plans: dict = {}

    def _plan(self, shape):
        if shape in self._plans:
            return self._plans[shape]
        for plans in (self._plans, self._base_plans):
            while len(plans) >= KEPT_FRAME_SIZES:
                plans.pop(next(iter(plans)))
        if shape not in self._base_plans:
            self._base_plans[shape] = self.base.plan(*BASE_INPUT, shape)
        base_plan = self._base_plans[shape]
        runs = []
        for spec, weights, arch in self.models:
            if spec.topology == "head":
                prep = PatchInput(self.device, base_plan, arch)
                features = prep.features
                size = features.shape[2:]
            else:
                features = Tensor.empty(self.device, (1, 3) + PIXELS_INPUT)
                prep = FramePreprocess(self.device, shape, features, 127.0, 128.0)
                size = PIXELS_INPUT
            model = PatchWeights(self.device, spec, arch, size, weights)
            runs.append((model.inference_plan(features), prep))
        self._plans[shape] = (base_plan, runs)
        return self._plans[shape]

    def run(self, frame: np.ndarray):
        """(base_top, [PatchResult in load order], chain [(from, to)])."""
        base_plan, runs = self._plan(frame.shape)
        base_plan.run(frame, self.queue)
        self.base_runs += 1
        best = list(base_top(base_plan.read_probabilities(self.queue), self.base.classes))
        present = {tag: f"base:{name}" for tag, name, _ in best}
        results: list = [None] * len(self.specs)
        chain = []
        for i in self.order:
            spec = self.specs[i]
            inference, prep = runs[i]
            because = next((t for t in spec.triggers if t in present), None)
            triggered = not spec.triggers or because is not None
            if not triggered:
                results[i] = PatchResult(spec.name, False, spec.categories[0].name, 1.0, False,
                                         None, None)
                continue
            if isinstance(prep, FramePreprocess):
                prep.upload(frame, self.queue)
            if prep is not None:
                prep.enqueue(self.queue)
            inference.enqueue(self.queue)
            probabilities = inference.read(self.queue)
            category, confidence = frame_verdict(probabilities, spec.threshold, spec.pooling)
            fired = category != 0
            tag = spec.categories[category].tag if fired else None
            results[i] = PatchResult(spec.name, True, spec.categories[category].name,
                                     confidence, fired, tag, because, probabilities)
            if because is not None:
                chain.append((present[because], spec.name))
            if fired:
                present.setdefault(tag, f"{spec.name}:{spec.categories[category].name}")
        return best, results, chain
