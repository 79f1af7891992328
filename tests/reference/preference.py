"""Float64 NumPy references for the preference losses, written from each paper's formula.

Pairs: ``y_true`` reference and ``y_pred`` policy log-probabilities ``[..., 2]`` (chosen,
rejected). KTO: ``y_true`` desirability, ``y_pred`` ``(policy, reference, policy_kl, ref_kl)``.
"""

import numpy as np


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def _margin(y_true, y_pred):
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return r[..., 0] - r[..., 1]


def np_dpo(y_true, y_pred, beta=0.1, label_smoothing=0.0):
    """Rafailov et al. (2023), eq. 7; label smoothing as in conservative DPO."""
    z = beta * _margin(y_true, y_pred)
    return -(1 - label_smoothing) * _log_sigmoid(z) - label_smoothing * _log_sigmoid(-z)


def np_robust_dpo(y_true, y_pred, beta=0.1, label_smoothing=0.1):
    """Chowdhury et al. (2024), eq. 9: the unbiased loss under label-flip rate eps."""
    z, e = beta * _margin(y_true, y_pred), label_smoothing
    return ((1 - e) * -_log_sigmoid(z) - e * -_log_sigmoid(-z)) / (1 - 2 * e)


def np_ipo(y_true, y_pred, beta=0.1):
    """Azar et al. (2024), eq. 17 with tau = beta."""
    return (_margin(y_true, y_pred) - 1 / (2 * beta)) ** 2


def np_slic_hinge(y_true, y_pred, beta=0.1):
    return np.maximum(0.0, 1 - beta * _margin(y_true, y_pred))


def _average(y_pred, lengths):
    y_pred = np.asarray(y_pred, np.float64)
    return y_pred if lengths is None else y_pred / np.maximum(np.asarray(lengths, np.float64), 1)


def np_simpo(y_true, y_pred, beta=2.0, gamma=0.5, lengths=None):
    """Meng et al. (2024), eq. 6."""
    a = _average(y_pred, lengths)
    return -_log_sigmoid(beta * (a[..., 0] - a[..., 1]) - gamma)


def np_orpo(y_true, y_pred, beta=0.1, lengths=None, nll_average="tokens"):
    """Hong et al. (2024), eqs. 6-8: NLL of the chosen plus lambda times the odds-ratio loss.

    ``"tokens"``: the NLL is the batch's chosen-token mean (the paper's code and TRL), spread over
    the pairs so that their mean is ``sum(-S_c) / sum(L_c)``.
    """
    pol = np.asarray(y_pred, np.float64)
    length = np.ones_like(pol) if lengths is None else np.maximum(np.asarray(lengths), 1.0)
    length = np.broadcast_to(length, pol.shape)
    a = pol / length
    p = np.exp(a)
    odds = p / (1 - p)
    log_or = np.log(odds[..., 0]) - np.log(odds[..., 1])
    nll = -pol[..., 0] / length[..., 0].mean() if nll_average == "tokens" else -a[..., 0]
    return nll - beta * _log_sigmoid(log_or)


def np_kto(y_true, y_pred, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0):
    """Ethayarajh et al. (2024), eq. 8, with the batch KL estimate z0 >= 0 of their section 4."""
    x = np.asarray(y_pred, np.float64)
    r = x[..., 0] - x[..., 1]
    z0 = max(0.0, float(np.mean(x[..., 2] - x[..., 3])))
    sig = lambda v: 1 / (1 + np.exp(-v))
    desirable = np.asarray(y_true) > 0.5
    return np.where(
        desirable,
        desirable_weight * (1 - sig(beta * (r - z0))),
        undesirable_weight * (1 - sig(beta * (z0 - r))),
    )


def np_sequence_log_probs(logits, labels, mask=None, average=False):
    logits = np.asarray(logits, np.float64)
    m = logits.max(-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
    labels = np.asarray(labels)
    valid = np.ones(labels.shape, bool) if mask is None else np.asarray(mask)
    picked = np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    total = np.where(valid, picked, 0.0).sum(-1)
    return total / np.maximum(valid.sum(-1), 1) if average else total


REFERENCES = {
    "dpo": np_dpo,
    "robust_dpo": np_robust_dpo,
    "ipo": np_ipo,
    "slic_hinge": np_slic_hinge,
    "simpo": np_simpo,
    "orpo": np_orpo,
    "kto": np_kto,
}
