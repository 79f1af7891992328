"""Float64 NumPy references for the distillation losses, from GKD's definition (Agarwal et al.).

``JSD_beta(P, Q) = beta KL(P || M) + (1 - beta) KL(Q || M)`` with ``M = beta P + (1 - beta) Q``;
``beta = 0`` is ``KL(P || Q)`` and ``beta = 1`` is ``KL(Q || P)`` (P the teacher, Q the student).
"""

import numpy as np


def np_softmax(x):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def np_kl(a, b):
    """``sum a log(a / b)`` over the last axis, ``0 log 0 = 0``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, a * (np.log(a) - np.log(b)), 0.0)
    return terms.sum(axis=-1)


def np_jsd(p, q, beta):
    """Teacher ``p``, student ``q`` (probabilities over the last axis)."""
    if beta == 0:
        return np_kl(p, q)
    if beta == 1:
        return np_kl(q, p)
    m = beta * p + (1 - beta) * q
    return beta * np_kl(p, m) + (1 - beta) * np_kl(q, m)


def np_topk_distributions(student, indices, values, temperature, tail):
    """``(p, q)`` over the top ``k`` classes plus one bucket for the rest of the vocabulary."""
    q_full = np_softmax(np.asarray(student, np.float64) / temperature)
    q_k = np.take_along_axis(q_full, np.asarray(indices), axis=-1)
    q = np.concatenate([q_k, 1.0 - q_k.sum(-1, keepdims=True)], -1)
    values = np.asarray(values, np.float64)
    if tail == "renormalize":
        p_k = np_softmax(values / temperature)
        p = np.concatenate([p_k, np.zeros((*p_k.shape[:-1], 1))], -1)
    else:
        rest = np.maximum(1.0 - np.exp(values).sum(-1, keepdims=True), 0.0)
        with np.errstate(divide="ignore"):
            logp = np.concatenate([values, np.log(rest)], -1)
        p = np_softmax(logp / temperature)
    return p, q


def np_knowledge_distillation(
    y_true,
    y_pred,
    beta=0.0,
    temperature=1.0,
    scale_by_temperature_squared=False,
    tail="renormalize",
    ignore_index=None,
    teacher_indices=None,
    labels=None,
    where=None,
):
    if teacher_indices is None:
        p = np_softmax(np.asarray(y_true, np.float64) / temperature)
        q = np_softmax(np.asarray(y_pred, np.float64) / temperature)
    else:
        p, q = np_topk_distributions(y_pred, teacher_indices, y_true, temperature, tail)
    out = np_jsd(p, q, beta) * (temperature**2 if scale_by_temperature_squared else 1.0)
    valid = np.ones(out.shape, bool)
    if where is not None:
        valid &= np.asarray(where)
    if ignore_index is not None and labels is not None:
        valid &= np.asarray(labels) != ignore_index
    return np.where(valid, out, 0.0)


REFERENCES = {"knowledge_distillation": np_knowledge_distillation}
