"""Float64 NumPy references for the ranking losses, written from their definitions (loops)."""

import itertools

import numpy as np


def _rows(y_true, y_pred, where):
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    t = np.broadcast_to(t, p.shape)
    w = (
        np.ones(p.shape, bool)
        if where is None
        else np.broadcast_to(np.asarray(where, bool), p.shape)
    )
    n = p.shape[-1]
    return t.reshape(-1, n), p.reshape(-1, n), w.reshape(-1, n), p.shape[:-1]


def np_ranking_softmax(y_true, y_pred, where=None):
    t, p, w, shape = _rows(y_true, y_pred, where)
    out = np.zeros(len(p))
    for r in range(len(p)):
        s, y = p[r][w[r]], t[r][w[r]]
        if s.size:
            lse = np.log(np.sum(np.exp(s - s.max()))) + s.max()
            out[r] = -np.sum(y * (s - lse))
    return out.reshape(shape)


def np_list_mle(y_true, y_pred, where=None):
    t, p, w, shape = _rows(y_true, y_pred, where)
    out = np.zeros(len(p))
    for r in range(len(p)):
        idx = [i for i in range(p.shape[1]) if w[r, i]]
        idx.sort(key=lambda i: -t[r, i])  # Python's sort is stable
        s = p[r, idx]
        out[r] = -sum(s[k] - np.log(np.sum(np.exp(s[k:]))) for k in range(len(s)))
    return out.reshape(shape)


def _np_pairwise(y_true, y_pred, where, phi):
    t, p, w, shape = _rows(y_true, y_pred, where)
    out = np.zeros(len(p))
    for r in range(len(p)):
        terms = [
            phi(p[r, i] - p[r, j])
            for i, j in itertools.permutations(range(p.shape[1]), 2)
            if w[r, i] and w[r, j] and t[r, i] > t[r, j]
        ]
        out[r] = np.mean(terms) if terms else 0.0
    return out.reshape(shape)


def np_pairwise_hinge(y_true, y_pred, margin=1.0, where=None):
    return _np_pairwise(y_true, y_pred, where, lambda d: max(0.0, margin - d))


def np_pairwise_logistic(y_true, y_pred, where=None):
    return _np_pairwise(y_true, y_pred, where, lambda d: np.log1p(np.exp(-d)))


def np_margin_ranking(y_true, y_pred, margin=0.0):
    p = np.asarray(y_pred, np.float64)
    y = np.asarray(y_true, np.float64).reshape(p.shape[:-1])
    return np.maximum(0.0, -y * (p[..., 0] - p[..., 1]) + margin)


REFERENCES = {
    "ranking_softmax": np_ranking_softmax,
    "list_mle": np_list_mle,
    "pairwise_hinge": np_pairwise_hinge,
    "pairwise_logistic": np_pairwise_logistic,
    "margin_ranking": np_margin_ranking,
}
