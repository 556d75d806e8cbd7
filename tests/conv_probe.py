"""One convolution on the device with a fixed random readout r: loss() = sum(r * y) in
float64, the quantity the finite-difference checks of its gradients differentiate."""
import numpy as np

from patchloop_kernels.conv import ConvForward
from patchloop_kernels.runtime import Tensor


class ConvProbe:
    def __init__(self, device, g, x, weight, bias, r):
        self.device, self.r = device, r
        self.tx, self.tw, self.tb = (Tensor.from_numpy(device, a) for a in (x, weight, bias))
        self.ty = Tensor.empty(device, r.shape)
        self.forward = ConvForward(device, g, self.tx, self.tw, self.tb, self.ty)

    def loss(self) -> float:
        self.forward.enqueue(self.device.queue)
        return float((self.ty.numpy().astype(np.float64) * self.r).sum())
