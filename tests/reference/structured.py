"""Float64 NumPy references for the sequence losses: TFA's reduction rules and brute-force CRFs."""

import itertools

import numpy as np


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _div(num, den):
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den == 0, 0.0, num / np.where(den == 0, 1.0, den))


def np_sequence_loss(
    y_true,
    y_pred,
    weights=None,
    average_across_timesteps=True,
    average_across_batch=True,
    sum_over_timesteps=False,
    sum_over_batch=False,
):
    labels = np.asarray(y_true)
    logp = _log_softmax(y_pred)
    w = np.ones(labels.shape) if weights is None else np.asarray(weights, np.float64)
    w = np.broadcast_to(w.reshape(w.shape + (1,) * (2 - w.ndim)), labels.shape)
    ce = np.zeros(labels.shape)
    for b, t in itertools.product(*map(range, labels.shape)):
        ce[b, t] = -logp[b, t, labels[b, t]] * w[b, t]
    nz = (w != 0).astype(np.float64)
    if average_across_timesteps and average_across_batch:
        return _div(ce.sum(), w.sum())
    if sum_over_timesteps and sum_over_batch:
        return _div(ce.sum(), nz.sum())
    if average_across_timesteps or average_across_batch:
        axis = 0 if average_across_batch else 1
        return _div(ce.sum(axis), w.sum(axis))
    if sum_over_timesteps or sum_over_batch:
        axis = 0 if sum_over_batch else 1
        return _div(ce.sum(axis), nz.sum(axis))
    return ce


def _score(unary, trans, tags):
    s = sum(unary[t, y] for t, y in enumerate(tags))
    return s + sum(trans[a, b] for a, b in itertools.pairwise(tags))


def np_crf_log_likelihood(potentials, tags, transitions, lengths=None):
    """Enumerates every tag sequence of each length: exponential, for tiny sizes only."""
    u = np.asarray(potentials, np.float64)
    tr = np.asarray(transitions, np.float64)
    tags = np.asarray(tags)
    batch, steps, k = u.shape
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths).reshape(batch)
    out = np.zeros(batch)
    for b in range(batch):
        n = int(min(max(lengths[b], 0), steps))
        if n == 0:
            continue
        scores = [_score(u[b], tr, seq) for seq in itertools.product(range(k), repeat=n)]
        m = max(scores)
        log_z = m + np.log(np.sum(np.exp(np.array(scores) - m)))
        out[b] = _score(u[b], tr, tags[b, :n]) - log_z
    return out


def np_crf_decode(potentials, transitions, lengths=None):
    u = np.asarray(potentials, np.float64)
    tr = np.asarray(transitions, np.float64)
    batch, steps, k = u.shape
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths).reshape(batch)
    tags = np.zeros((batch, steps), np.int64)
    best = np.zeros(batch)
    for b in range(batch):
        n = int(min(max(lengths[b], 0), steps))
        if n == 0:
            continue
        seqs = list(itertools.product(range(k), repeat=n))
        scores = [_score(u[b], tr, seq) for seq in seqs]
        i = int(np.argmax(scores))
        tags[b, :n], best[b] = seqs[i], scores[i]
    return tags, best


def np_linear_chain_crf(y_true, y_pred, lengths=None, transitions=None):
    potentials, transitions = y_pred if transitions is None else (y_pred, transitions)
    return -np_crf_log_likelihood(potentials, y_true, transitions, lengths)


REFERENCES = {"sequence_loss": np_sequence_loss, "linear_chain_crf": np_linear_chain_crf}
