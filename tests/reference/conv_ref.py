"""numpy twins of kernels/conv.cl and kernels/gemm.cl: plain, slow, obviously right."""
import numpy as np


def activate(z, act):
    if act == "relu":
        return np.maximum(z, 0)
    if act == "relu6":
        return np.clip(z, 0, 6)
    return z


def activation_grad(y, dy, act):
    if act == "relu":
        return dy * (y > 0)
    if act == "relu6":
        return dy * ((y > 0) & (y < 6))
    return dy


def _taps(x, g, oh, ow):
    """x padded and cut into taps: (N, C_in, K, K, OH, OW)."""
    n, c, h, w = x.shape
    top, left, bottom, right = g.pads(h, w)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    k, s, d = g.kernel, g.stride, g.dilation
    taps = np.empty((n, c, k, k, oh, ow), x.dtype)
    for kh in range(k):
        for kw in range(k):
            taps[:, :, kh, kw] = xp[:, :, kh * d: kh * d + (oh - 1) * s + 1: s,
                                          kw * d: kw * d + (ow - 1) * s + 1: s]
    return taps


def conv_forward(x, weight, bias, g, residual=None):
    """Returns (y, z): the output after and before the activation."""
    n, c, h, w = x.shape
    oh, ow = g.output_size(h, w)
    taps = _taps(x.astype(np.float64), g, oh, ow)
    cin_g, cout_g = g.c_in // g.groups, g.c_out // g.groups
    z = np.empty((n, g.c_out, oh, ow))
    for grp in range(g.groups):
        t = taps[:, grp * cin_g:(grp + 1) * cin_g]
        wg = weight[grp * cout_g:(grp + 1) * cout_g].astype(np.float64)
        z[:, grp * cout_g:(grp + 1) * cout_g] = np.einsum("nckluv,ockl->nouv", t, wg)
    z += bias[None, :, None, None]
    y = activate(z, g.activation)
    if residual is not None:
        y = y + residual
    return y, z


def conv_backward(x, weight, y_act, dy, g):
    """Gradients (dx, dweight, dbias) given dy at the activation output; y_act is act(z)."""
    n, c, h, w = x.shape
    oh, ow = g.output_size(h, w)
    dz = activation_grad(y_act, dy, g.activation).astype(np.float64)
    taps = _taps(x.astype(np.float64), g, oh, ow)
    cin_g, cout_g = g.c_in // g.groups, g.c_out // g.groups
    dweight = np.empty(weight.shape)
    dtaps = np.zeros(taps.shape)
    for grp in range(g.groups):
        sl_in, sl_out = slice(grp * cin_g, (grp + 1) * cin_g), slice(grp * cout_g, (grp + 1) * cout_g)
        dweight[sl_out] = np.einsum("nouv,nckluv->ockl", dz[:, sl_out], taps[:, sl_in])
        dtaps[:, sl_in] = np.einsum("nouv,ockl->nckluv", dz[:, sl_out],
                                    weight[sl_out].astype(np.float64))
    top, left, bottom, right = g.pads(h, w)
    dxp = np.zeros((n, c, h + top + bottom, w + left + right))
    k, s, d = g.kernel, g.stride, g.dilation
    for kh in range(k):
        for kw in range(k):
            dxp[:, :, kh * d: kh * d + (oh - 1) * s + 1: s,
                      kw * d: kw * d + (ow - 1) * s + 1: s] += dtaps[:, :, kh, kw]
    dx = dxp[:, :, top:top + h, left:left + w]
    return dx, dweight, dz.sum(axis=(0, 2, 3))
