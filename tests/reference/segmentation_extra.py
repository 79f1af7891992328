"""Float64 NumPy references for smoothed binary Dice and generalized Dice (loops over classes)."""

import numpy as np


def _dice(i, p, t, smooth, alpha=0.5, beta=0.5):
    den = i + alpha * (p - i) + beta * (t - i) + smooth
    return 0.0 if den == 0 else 1.0 - (i + smooth) / den


def np_binary_dice(y_true, y_pred, smooth=1.0, from_logits=False, axis=None):
    p = np.asarray(y_pred, np.float64)
    t = np.broadcast_to(np.asarray(y_true, np.float64), p.shape)
    if from_logits:
        p = 1 / (1 + np.exp(-p))
    if axis is None:
        return np.float64(_dice((p * t).sum(), p.sum(), t.sum(), smooth))
    i, ps, ts = (np.sum(x, axis=axis) for x in (p * t, p, t))
    return np.vectorize(lambda a, b, c: _dice(a, b, c, smooth))(i, ps, ts).astype(np.float64)


def np_generalized_dice(
    y_true, y_pred, smooth=1.0, from_logits=False, ignore_background=False, sample_weight=None
):
    p = np.asarray(y_pred, np.float64)
    t = np.asarray(y_true, np.float64)
    k = p.shape[-1]
    if from_logits:
        if k == 1:
            p = 1 / (1 + np.exp(-p))
        else:
            e = np.exp(p - p.max(-1, keepdims=True))
            p = e / e.sum(-1, keepdims=True)
    batch = p.shape[0]
    p2, t2 = p.reshape(batch, -1, k), t.reshape(batch, -1, k)
    sw = np.ones(batch) if sample_weight is None else np.asarray(sample_weight, np.float64)
    freq = t2.sum((0, 1))
    w = 1 / (freq**2 + 1e-7)
    w = w / w.sum() * k
    first = 1 if ignore_background and k > 1 else 0
    total = 0.0
    for b in range(batch):
        for cls in range(first, k):
            pc, tc = p2[b, :, cls], t2[b, :, cls]
            total += sw[b] * w[cls] * _dice((pc * tc).sum(), pc.sum(), tc.sum(), smooth)
    count = sw.sum() * (k - first)
    return np.float64(total / count if count else 0.0)


REFERENCES = {"binary_dice": np_binary_dice, "generalized_dice": np_generalized_dice}
