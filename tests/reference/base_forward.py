"""numpy twin of the base network's forward pass, straight from a BaseSpec: the yardstick
for the OpenCL forward and the check that the weights' conversion is right.

Feature maps are (C, H, W) float32 inside; taps come out as (1, C, H, W).
"""
import cv2
import numpy as np

from loop.base.config import AddLayer, ConvLayer, FcLayer, PoolLayer


def preprocess(spec, image_rgb, size=None):
    """uint8 (H, W, 3) RGB -> (3, H, W) float32, (p - norm_offset) / norm_scale.
    size: int (square) or (height, width); resized bilinearly as cv2.INTER_LINEAR does."""
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != spec.input_channels:
        raise ValueError(f"expected uint8 (H, W, {spec.input_channels}), got {image.dtype} "
                         f"{image.shape}")
    if size is not None:
        height, width = (size, size) if np.isscalar(size) else size
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    x = (image.astype(np.float32) - np.float32(spec.norm_offset)) / np.float32(spec.norm_scale)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def conv_pads(layer, h, w):
    """(top, bottom, left, right): TensorFlow SAME puts the odd pixel bottom/right."""
    if layer.pad != "same":
        return (layer.pad,) * 4
    pads = []
    for n in (h, w):
        out = -(-n // layer.stride)
        total = max((out - 1) * layer.stride + (layer.k - 1) * layer.dilation + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def conv(spec, layer, x):
    weight, bias = spec.params(layer)
    cin, h, w = x.shape
    top, bottom, left, right = conv_pads(layer, h, w)
    k, s, d = layer.k, layer.stride, layer.dilation
    oh = (h + top + bottom - (k - 1) * d - 1) // s + 1
    ow = (w + left + right - (k - 1) * d - 1) // s + 1
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right))) if top + bottom + left + right else x
    taps = [xp[:, i * d:i * d + (oh - 1) * s + 1:s, j * d:j * d + (ow - 1) * s + 1:s]
            for i in range(k) for j in range(k)]
    if layer.groups == 1:
        # im2col: (cin*k*k, oh*ow) rows ordered like the weight's (in, kh, kw)
        cols = np.stack(taps, axis=1).reshape(cin * k * k, oh * ow)
        y = (weight.reshape(layer.cout, -1) @ cols).reshape(layer.cout, oh, ow)
    elif layer.groups == cin == layer.cout:
        # depthwise: one kxk filter per channel, summed tap by tap
        y = np.zeros((cin, oh, ow), np.float32)
        for t, tap in enumerate(taps):
            y += weight[:, 0].reshape(cin, k * k)[:, t, None, None] * tap
    else:
        raise NotImplementedError(f"{layer.name}: grouped conv with groups={layer.groups}")
    y += bias[:, None, None]
    return np.clip(y, 0, 6) if layer.act == "relu6" else y


def forward_all(spec, x):
    """Every layer's output by name, starting from the preprocessed (3, H, W) input."""
    out = {"input": x}
    for layer in spec.layers:
        if isinstance(layer, ConvLayer):
            out[layer.name] = conv(spec, layer, out[layer.input])
        elif isinstance(layer, AddLayer):
            out[layer.name] = sum(out[name] for name in layer.inputs)
        elif isinstance(layer, PoolLayer):
            out[layer.name] = out[layer.input].mean(axis=(1, 2))
        elif isinstance(layer, FcLayer):
            weight, bias = spec.params(layer)
            out[layer.name] = weight @ out[layer.input] + bias
    return out


def reference_forward(spec, image_rgb, size=None):
    """Logits (classes,) float32 for one uint8 RGB image."""
    outputs = forward_all(spec, preprocess(spec, image_rgb, size))
    return outputs[spec.layers[-1].name].astype(np.float32)


def reference_taps(spec, image_rgb, size=None):
    """tap name -> (1, C, H, W) float32 feature map."""
    outputs = forward_all(spec, preprocess(spec, image_rgb, size))
    return {tap: outputs[layer][None].astype(np.float32) for tap, layer in spec.taps.items()}
