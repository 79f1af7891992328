"""Float64 NumPy references for the log-space likelihoods and the robust regression losses.

Written from the textbook densities (Gaussian, Poisson with Stirling's series) and definitions.
"""

import math

import numpy as np


def _f64(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


def np_negative_log_likelihood(y_true, y_pred, axis=-1, ignore_class=None, class_weight=None):
    log_p = np.moveaxis(np.asarray(y_pred, np.float64), axis, -1)
    y = np.asarray(y_true).astype(np.int64)
    if y.ndim == log_p.ndim:
        y = np.squeeze(np.moveaxis(y, axis, -1), -1)
    k = log_p.shape[-1]
    w = np.ones(k) if class_weight is None else np.asarray(class_weight, np.float64)
    flat_y, flat_p = y.reshape(-1), log_p.reshape(-1, k)
    out = np.empty(len(flat_y))
    for r, label in enumerate(flat_y):
        if ignore_class is not None and label == ignore_class:
            out[r] = 0.0
        elif 0 <= label < k:
            out[r] = -w[label] * flat_p[r, label]
        else:
            out[r] = np.nan
    return out.reshape(y.shape)


def np_gaussian_nll(y_true, y_pred, var=None, full=False, eps=1e-6):
    t, mu = _f64(y_true, y_pred)
    v = np.ones_like(mu) if var is None else np.asarray(var, np.float64)
    if v.shape == mu.shape[:-1] and v.shape != mu.shape:
        v = v[..., None]
    v = np.maximum(v, eps)
    # -log N(t; mu, v) = 0.5 log(2 pi v) + (t - mu)^2 / (2 v)
    nll = 0.5 * np.log(v) + (t - mu) ** 2 / (2 * v)
    if full:
        nll = nll + 0.5 * math.log(2 * math.pi)
    return np.mean(nll, axis=-1)


def np_poisson_nll(y_true, y_pred, log_input=True, full=False, eps=1e-8):
    t, x = _f64(y_true, y_pred)
    rate_term = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        safe = np.where(t > 1, t, 2.0)
        stirling = safe * np.log(safe) - safe + 0.5 * np.log(2 * math.pi * safe)
        rate_term = rate_term + np.where(t > 1, stirling, 0.0)
    return np.mean(rate_term, axis=-1)


def _xlogx(t):
    return np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)


def _masked_sum(x, axis, where):
    if where is not None:
        x = np.where(np.broadcast_to(np.asarray(where, bool), x.shape), x, 0.0)
    return np.sum(x, axis=axis)


def np_log_kl_divergence(y_true, y_pred, log_target=False, axis=-1, where=None):
    t, log_p = _f64(y_true, y_pred)
    pointwise = np.exp(t) * (t - log_p) if log_target else _xlogx(t) - t * log_p
    return _masked_sum(pointwise, axis, where)


def np_generalized_kl_divergence(y_true, y_pred, axis=-1, where=None):
    t, log_p = _f64(y_true, y_pred)
    return _masked_sum(_xlogx(t) - t * log_p + np.exp(log_p) - t, axis, where)


def np_smooth_l1(y_true, y_pred, beta=1.0):
    t, p = _f64(y_true, y_pred)
    e = np.abs(t - p)
    if beta == 0:
        return np.mean(e, axis=-1)
    return np.mean(np.where(e < beta, 0.5 * e**2 / beta, e - 0.5 * beta), axis=-1)


def np_pinball_loss(y_true, y_pred, tau=0.5):
    t, p = _f64(y_true, y_pred)
    e = t - p
    return np.mean(np.where(e >= 0, tau * e, (tau - 1) * e), axis=-1)


def np_cosine_distance(y_true, y_pred, axis=-1, epsilon=1e-12, where=None):
    a, b = _f64(y_true, y_pred)
    if where is not None:
        mask = np.broadcast_to(np.asarray(where, bool), b.shape)
        a, b = np.where(mask, a, 0.0), np.where(mask, b, 0.0)
    na = np.sqrt(np.maximum(np.sum(a * a, axis=axis, keepdims=True), epsilon))
    nb = np.sqrt(np.maximum(np.sum(b * b, axis=axis, keepdims=True), epsilon))
    return 1.0 - np.sum((a / na) * (b / nb), axis=axis)


REFERENCES = {
    "negative_log_likelihood": np_negative_log_likelihood,
    "gaussian_nll": np_gaussian_nll,
    "poisson_nll": np_poisson_nll,
    "log_kl_divergence": np_log_kl_divergence,
    "generalized_kl_divergence": np_generalized_kl_divergence,
    "smooth_l1": np_smooth_l1,
    "pinball_loss": np_pinball_loss,
    "cosine_distance": np_cosine_distance,
}
