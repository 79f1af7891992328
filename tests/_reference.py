"""Independent float64 NumPy references shared by the tests (never the library's own code)."""

import numpy as np


def np_reduce(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """Keras 3 reduction semantics in float64, written from the documented rules.

    A lower-rank ``sample_weight`` scales whole samples (aligned on the leading axes).
    """
    values = np.asarray(values, np.float64)
    weight = np.ones_like(values)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, np.float64)
        if sw.ndim == values.ndim + 1 and sw.shape[-1] == 1:
            sw = sw[..., 0]
        sw = sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim))
        weight = weight * sw
    valid = np.ones(values.shape, bool) if mask is None else np.broadcast_to(mask, values.shape)
    weighted = np.where(valid, values * weight, 0.0)
    if reduction in (None, "none"):
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = np.where(valid, weight, 0.0).sum()
    else:
        divisor = valid.sum()
    return 0.0 if divisor == 0 else total / divisor


# Per-sample regression formulas in float64, from their textbook definitions.
def np_mse(t, p):
    return np.mean((np.float64(t) - p) ** 2, axis=-1)


def np_mae(t, p):
    return np.mean(np.abs(np.float64(t) - p), axis=-1)


def np_mape(t, p):
    t = np.float64(t)
    return 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), 1e-7), axis=-1)


def np_msle(t, p):
    t, p = np.float64(t), np.float64(p)
    return np.mean((np.log(np.maximum(p, 1e-7) + 1) - np.log(np.maximum(t, 1e-7) + 1)) ** 2, -1)


def np_cosine(t, p, axis=-1):
    t, p = np.float64(t), np.float64(p)
    nt = np.sqrt(np.maximum((t * t).sum(axis, keepdims=True), 1e-12))
    npred = np.sqrt(np.maximum((p * p).sum(axis, keepdims=True), 1e-12))
    return -np.sum(t / nt * p / npred, axis=axis)


def np_huber(t, p, delta=1.0):
    x = np.abs(np.float64(p) - t)
    return np.mean(np.where(x <= delta, 0.5 * x**2, delta * x - 0.5 * delta**2), axis=-1)


def np_log_cosh(t, p):
    x = np.float64(p) - t
    # log(cosh x) = log((e^x + e^-x)/2), evaluated with logaddexp to stay finite.
    return np.mean(np.logaddexp(x, -x) - np.log(2.0), axis=-1)


def np_dice(t, p, axis=None):
    t, p = np.float64(t), np.float64(p)
    return 1 - 2 * (t * p).sum(axis) / (t.sum(axis) + p.sum(axis) + 1e-7)


def np_tversky(t, p, alpha=0.5, beta=0.5, axis=None):
    t, p = np.float64(t), np.float64(p)
    tp = (t * p).sum(axis)
    missed = (t * (1 - p)).sum(axis)
    spurious = ((1 - t) * p).sum(axis)
    return 1 - tp / (tp + alpha * missed + beta * spurious + 1e-7)


def _signed(t):
    t = np.float64(t)
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def np_hinge(t, p):
    return np.mean(np.maximum(1 - _signed(t) * p, 0), axis=-1)


def np_squared_hinge(t, p):
    return np.mean(np.maximum(1 - _signed(t) * p, 0) ** 2, axis=-1)


def np_categorical_hinge(t, p):
    t, p = np.float64(t), np.float64(p)
    pos = (t * p).sum(-1)
    neg = ((1 - t) * p).max(-1)
    return np.maximum(neg - pos + 1, 0)
