"""Float64 NumPy references for the margin and Fenchel-Young losses, from their definitions.

The sparsemax reference finds the projection onto the simplex by bisection on the threshold (not
the sort-based closed form the library uses), and the margin references loop over classes.
"""

import numpy as np


def _f64(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


def _signed(t):
    return 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t


def np_perceptron(y_true, y_pred):
    t, s = _f64(y_true, y_pred)
    return np.mean(np.maximum(-_signed(t) * s, 0.0), axis=-1)


def np_soft_margin(y_true, y_pred):
    t, s = _f64(y_true, y_pred)
    return np.mean(np.log1p(np.exp(-_signed(t) * s)), axis=-1)


def _sparse_plus(x):
    return np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4))


def np_binary_sparsemax_loss(y_true, y_pred):
    t, s = _f64(y_true, y_pred)
    return np.mean(_sparse_plus(-_signed(t) * s), axis=-1)


def _rows(y_true, y_pred):
    s = np.asarray(y_pred, np.float64)
    y = np.asarray(y_true).astype(np.int64)
    if y.ndim == s.ndim:
        y = y[..., 0]
    return y.reshape(-1), s.reshape(-1, s.shape[-1]), s.shape[:-1]


def np_multiclass_hinge(y_true, y_pred, margin=1.0):
    y, s, shape = _rows(y_true, y_pred)
    out = np.empty(len(s))
    for r in range(len(s)):
        others = [margin + s[r, i] - s[r, y[r]] for i in range(s.shape[1]) if i != y[r]]
        out[r] = max(0.0, max(others))
    return out.reshape(shape)


def np_multi_margin(y_true, y_pred, p=1, margin=1.0, class_weight=None):
    y, s, shape = _rows(y_true, y_pred)
    k = s.shape[1]
    w = np.ones(k) if class_weight is None else np.asarray(class_weight, np.float64)
    out = np.zeros(len(s))
    for r in range(len(s)):
        for i in range(k):
            if i != y[r]:
                out[r] += w[y[r]] * max(0.0, margin - s[r, y[r]] + s[r, i]) ** p / k
    return out.reshape(shape)


def np_multilabel_soft_margin(y_true, y_pred, class_weight=None):
    t, s = _f64(y_true, y_pred)
    w = 1.0 if class_weight is None else np.asarray(class_weight, np.float64)
    log_sig = -np.logaddexp(0.0, -s)
    log_one_minus = -np.logaddexp(0.0, s)
    return np.mean(-w * (t * log_sig + (1 - t) * log_one_minus), axis=-1)


def np_multilabel_margin(y_true, y_pred):
    s = np.asarray(y_pred, np.float64)
    y = np.asarray(y_true).astype(np.int64)
    k = s.shape[-1]
    s2, y2 = s.reshape(-1, k), y.reshape(-1, k)
    out = np.zeros(len(s2))
    for r in range(len(s2)):
        listed = []
        for v in y2[r]:
            if v == -1:
                break
            listed.append(v)
        positive = set(listed)
        for j in listed:
            for i in range(k):
                if i not in positive:
                    out[r] += max(0.0, 1.0 - (s2[r, j] - s2[r, i])) / k
    return out.reshape(s.shape[:-1])


def np_sparsemax(s):
    """Projection onto the simplex: tau with sum(max(s - tau, 0)) = 1, found by bisection."""
    lo, hi = s.min() - 1.0, s.max()
    for _ in range(200):
        tau = 0.5 * (lo + hi)
        if np.maximum(s - tau, 0).sum() > 1:
            lo = tau
        else:
            hi = tau
    return np.maximum(s - 0.5 * (lo + hi), 0)


def np_sparsemax_loss(y_true, y_pred):
    t, s = _f64(y_true, y_pred)
    t = np.broadcast_to(t, s.shape)
    k = s.shape[-1]
    t2, s2 = t.reshape(-1, k), s.reshape(-1, k)
    out = np.empty(len(s2))
    for r in range(len(s2)):
        p = np_sparsemax(s2[r])
        # Omega*(s) = <p, s> - Omega(p), Omega(q) = (||q||^2 - 1) / 2.
        out[r] = (p @ s2[r] - 0.5 * (p @ p - 1)) + 0.5 * (t2[r] @ t2[r] - 1) - t2[r] @ s2[r]
    return out.reshape(s.shape[:-1])


def np_fenchel_young_loss(y_true, y_pred, regularizer="shannon"):
    if regularizer == "gini":
        return np_sparsemax_loss(y_true, y_pred)
    t, s = _f64(y_true, y_pred)
    m = s.max(axis=-1, keepdims=True)
    lse = (np.log(np.exp(s - m).sum(axis=-1, keepdims=True)) + m)[..., 0]
    neg_entropy = np.sum(np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0), axis=-1)
    return lse + neg_entropy - np.sum(t * s, axis=-1)


def np_poly1_crossentropy(y_true, y_pred, epsilon=2.0, axis=-1, where=None):
    t, s = _f64(y_true, y_pred)
    t = np.broadcast_to(t, s.shape)
    w = np.ones(s.shape, bool) if where is None else np.broadcast_to(where, s.shape)
    t, s, w = np.moveaxis(t, axis, -1), np.moveaxis(s, axis, -1), np.moveaxis(w, axis, -1)
    shape = s.shape[:-1]
    t, s, w = t.reshape(-1, s.shape[-1]), s.reshape(-1, s.shape[-1]), w.reshape(-1, s.shape[-1])
    out = np.zeros(len(s))
    for r in range(len(s)):
        if not w[r].any():
            continue
        z, y = s[r][w[r]], t[r][w[r]]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        out[r] = -np.sum(y * np.log(p)) + epsilon * np.sum(y * (1 - p))
    return out.reshape(shape)


REFERENCES = {
    "perceptron": np_perceptron,
    "soft_margin": np_soft_margin,
    "binary_sparsemax_loss": np_binary_sparsemax_loss,
    "multiclass_hinge": np_multiclass_hinge,
    "multi_margin": np_multi_margin,
    "multilabel_soft_margin": np_multilabel_soft_margin,
    "multilabel_margin": np_multilabel_margin,
    "sparsemax_loss": np_sparsemax_loss,
    "fenchel_young_loss": np_fenchel_young_loss,
    "poly1_crossentropy": np_poly1_crossentropy,
}
