"""numpy twins of pool.cl, softmax.cl, loss.cl, optim.cl and image.cl."""
import numpy as np


def global_avg_pool(x):
    return x.astype(np.float64).mean(axis=(2, 3))


def softmax(x):
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def weighted_cross_entropy(logits, labels, class_weights, offsets=None):
    """(loss, dlogits) with -1 = unlabeled; mean weighted by w[y] over labeled cells, of the
    logits shifted by `offsets` per category (none: zeros)."""
    if offsets is not None:
        logits = logits.astype(np.float64) + np.asarray(offsets, np.float64)[None, :, None, None]
    p = softmax(logits)
    n, c, h, w = logits.shape
    loss_sum, weight_sum = 0.0, 0.0
    grad = np.zeros(logits.shape)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                y = labels[b, i, j]
                if y < 0:
                    continue
                wy = class_weights[y]
                loss_sum += -wy * np.log(p[b, y, i, j])
                weight_sum += wy
                grad[b, :, i, j] = wy * p[b, :, i, j]
                grad[b, y, i, j] -= wy
    if weight_sum == 0:
        return 0.0, np.zeros(logits.shape)
    return loss_sum / weight_sum, grad / weight_sum


def masked_squared_error(pred, targets):
    m = np.abs(targets.astype(np.float64))
    d = pred.reshape(targets.shape).astype(np.float64) - targets
    total = m.sum()
    if total == 0:
        return 0.0, np.zeros(pred.shape)
    return float((d * d * m).sum() / total), (2 * d * m / total).reshape(pred.shape)


def sgd_step(w, v, g, lr, momentum, decay, scale=1.0):
    v = momentum * v + scale * g + decay * w
    return w - lr * v, v


def clip_factor(g, max_norm):
    """(factor, norm): the factor that brings the gradient's L2 norm down to max_norm."""
    norm = float(np.sqrt(np.sum(np.asarray(g, np.float64) ** 2)))
    return (max_norm / norm if np.isfinite(norm) and norm > max_norm else 1.0), norm


def bilinear_resize(image, height, width):
    """OpenCV INTER_LINEAR's convention in float: centres at +0.5, edges clamped."""
    def axis(out, size):
        s = (np.arange(out) + 0.5) * (size / out) - 0.5
        lo = np.floor(s).astype(int)
        f = s - lo
        f[lo < 0] = 0
        lo[lo < 0] = 0
        top = lo >= size - 1
        lo[top], f[top] = size - 1, 0
        return lo, np.minimum(lo + 1, size - 1), f

    y0, y1, fy = axis(height, image.shape[0])
    x0, x1, fx = axis(width, image.shape[1])
    img = image.astype(np.float64)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def frame_preprocess(frame, height, width, offset=127.0, scale=128.0, bgr=False):
    img = frame[..., ::-1] if bgr else frame
    return ((bilinear_resize(img, height, width) - offset) / scale).transpose(2, 0, 1)


def running_average(average, weights, rate):
    """The running average of weights after one more step (Polyak/EMA)."""
    return (1 - rate) * average + rate * weights


def channel_affine(x, scale, shift):
    """Per-channel standardisation of an (N, C, ...) map: x * scale[c] + shift[c]."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * scale.reshape(shape) + shift.reshape(shape)


def fold_standardization(w, b, scale, shift):
    """A 1x1 convolution [outputs, inputs] on standardised inputs as one on raw inputs."""
    return w * scale[None, :], b + w @ shift


def unfold_standardization(w, b, scale, shift):
    """The inverse of fold_standardization."""
    v = w / scale[None, :]
    return v, b - v @ shift
