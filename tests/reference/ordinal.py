"""Float64 NumPy reference for weighted kappa, from Cohen's definition with soft predictions."""

import numpy as np


def np_weighted_kappa(y_true, y_pred, weightage="quadratic", epsilon=1e-6, sample_weight=None):
    p = np.asarray(y_pred, np.float64)
    k = p.shape[-1]
    t = np.asarray(y_true)
    if t.ndim == p.ndim - 1:
        t = np.eye(k)[t]
    t, p = t.astype(np.float64).reshape(-1, k), p.reshape(-1, k)
    w = np.ones(len(p)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    power = 1 if weightage == "linear" else 2
    grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(np.float64) ** power
    observed = 0.0
    for b in range(len(p)):
        level = float(t[b] @ np.arange(k))
        observed += w[b] * sum(abs(level - j) ** power * p[b, j] for j in range(k))
    hist_true = (w[:, None] * t).sum(0)
    hist_pred = (w[:, None] * p).sum(0)
    chance = hist_true @ grid @ hist_pred / w.sum() if w.sum() else 0.0
    ratio = observed / chance if chance else 0.0
    return np.float64(np.log(ratio + epsilon))


REFERENCES = {"weighted_kappa": np_weighted_kappa}
