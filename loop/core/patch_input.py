"""Where a head patch reads the base: one tap's map as it lies in the base's plan, or a
hypercolumn (the finer tap's map with the coarser one spread over it, stacked) built on
the device after the base has run."""
from __future__ import annotations

from patchloop_kernels.runtime import Tensor
from patchloop_kernels.upsample import prepare_hypercolumn


class PatchInput:
    def __init__(self, device, base_plan, arch):
        fine = base_plan.feature_map(arch.input_layer)
        self.hypercolumn = None
        if arch.side_layer is None:
            self.features = fine
            return
        coarse = base_plan.feature_map(arch.side_layer)
        self.features = Tensor.empty(device, (1, fine.shape[1] + coarse.shape[1]) + fine.shape[2:])
        self.hypercolumn = prepare_hypercolumn(device, self.features, fine, coarse)

    def enqueue(self, queue) -> None:
        """After the base ran: the hypercolumn, if the patch reads one."""
        if self.hypercolumn is not None:
            self.hypercolumn.enqueue(queue)


def deepest_layer(arch) -> str:
    """The base layer a features-only pass must run to."""
    return arch.side_layer or arch.input_layer
