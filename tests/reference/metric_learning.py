"""Float64 NumPy references for the metric-learning losses: explicit loops over anchors and pairs.

Written from the papers' and the TFA/PyTorch/optax documented definitions; each returns one loss
per anchor (per triplet, per pair) as the function handles do, with TFA's fallbacks for anchors
without a positive or a negative.
"""

import numpy as np


def _dist(x, y, metric):
    x, y = np.float64(x), np.float64(y)
    if callable(metric):
        return np.asarray(metric(x, y), np.float64)
    if metric == "angular":
        xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
        yn = y / np.linalg.norm(y, axis=-1, keepdims=True)
        return np.maximum(1.0 - xn @ yn.T, 0.0)
    diff = x[:, None, :] - y[None, :, :]
    sq = (diff**2).sum(-1)
    return sq if metric == "squared-L2" else np.sqrt(sq)


def _refs(labels, emb, ref_labels, ref_embeddings):
    labels, emb = np.asarray(labels), np.float64(emb)
    ref_labels = labels if ref_labels is None else np.asarray(ref_labels)
    ref_embeddings = emb if ref_embeddings is None else np.float64(ref_embeddings)
    return labels, emb, ref_labels, ref_embeddings


def _pairs(labels, emb, ref_labels, ref_embeddings, metric, remove_diagonal):
    labels, emb, ref_labels, ref_emb = _refs(labels, emb, ref_labels, ref_embeddings)
    d = _dist(emb, ref_emb, metric)
    n, r = d.shape
    pos = [
        [j for j in range(r) if labels[i] == ref_labels[j] and not (remove_diagonal and i == j)]
        for i in range(n)
    ]
    neg = [[j for j in range(r) if labels[i] != ref_labels[j]] for i in range(n)]
    return d, pos, neg


def np_triplet_hard(
    labels,
    emb,
    ref_labels=None,
    ref_embeddings=None,
    margin=1.0,
    soft=False,
    distance_metric="L2",
    remove_diagonal=True,
):
    d, pos, neg = _pairs(labels, emb, ref_labels, ref_embeddings, distance_metric, remove_diagonal)
    out = []
    for i in range(len(d)):
        hp = max(d[i, j] for j in pos[i]) if pos[i] else d[i].min()
        hn = min(d[i, j] for j in neg[i]) if neg[i] else d[i].max()
        out.append(np.log1p(np.exp(hp - hn)) if soft else max(hp - hn + margin, 0.0))
    return np.array(out)


def np_triplet_semihard(
    labels,
    emb,
    ref_labels=None,
    ref_embeddings=None,
    margin=1.0,
    distance_metric="L2",
    remove_diagonal=True,
):
    d, pos, neg = _pairs(labels, emb, ref_labels, ref_embeddings, distance_metric, remove_diagonal)
    out = []
    for i in range(len(d)):
        terms = []
        for p in pos[i]:
            farther = [d[i, k] for k in neg[i] if d[i, k] > d[i, p]]
            if farther:
                n_dist = min(farther)
            elif neg[i]:
                n_dist = max(d[i, k] for k in neg[i])
            else:
                n_dist = d[i].min()
            terms.append(max(margin + d[i, p] - n_dist, 0.0))
        out.append(np.mean(terms) if terms else 0.0)
    return np.array(out)


def np_triplet_semihard_tfa(labels, emb, margin=1.0):
    """TFA's scalar: the mean over all positive pairs of the batch (no per-anchor mean)."""
    d, pos, neg = _pairs(labels, emb, None, None, "L2", True)
    terms = []
    for i in range(len(d)):
        for p in pos[i]:
            farther = [d[i, k] for k in neg[i] if d[i, k] > d[i, p]]
            n_dist = min(farther) if farther else (max(d[i, k] for k in neg[i]) if neg[i] else 0)
            terms.append(max(margin + d[i, p] - n_dist, 0.0))
    return np.mean(terms)


def np_contrastive(
    labels,
    emb,
    ref_labels=None,
    ref_embeddings=None,
    margin=1.0,
    distance_metric="L2",
    remove_diagonal=True,
):
    d, pos, neg = _pairs(labels, emb, ref_labels, ref_embeddings, distance_metric, remove_diagonal)
    out = []
    for i in range(len(d)):
        terms = [d[i, j] ** 2 for j in pos[i]]
        terms += [max(margin - d[i, j], 0.0) ** 2 for j in neg[i]]
        out.append(np.mean(terms) if terms else 0.0)
    return np.array(out)


def np_lifted_struct(
    labels,
    emb,
    ref_labels=None,
    ref_embeddings=None,
    margin=1.0,
    distance_metric="L2",
    remove_diagonal=True,
):
    d, pos, neg = _pairs(labels, emb, ref_labels, ref_embeddings, distance_metric, remove_diagonal)
    _, _, rl, re = _refs(labels, emb, ref_labels, ref_embeddings)
    d_rr, _, neg_rr = _pairs(rl, re, None, None, distance_metric, False)
    out = []
    for i in range(len(d)):
        terms = []
        for j in pos[i]:
            s = sum(np.exp(margin - d[i, k]) for k in neg[i])
            s += sum(np.exp(margin - d_rr[j, k]) for k in neg_rr[j])
            big_j = (np.log(s) if s > 0 else -np.inf) + d[i, j]
            terms.append(0.5 * max(big_j, 0.0) ** 2)
        out.append(np.mean(terms) if terms else 0.0)
    return np.array(out)


def np_lifted_struct_tfa(labels, emb, margin=1.0):
    """TFA's scalar: 1/(2|P|) sum over ordered positive pairs of max(J, 0)^2."""
    d, pos, neg = _pairs(labels, emb, None, None, "L2", True)
    terms = []
    for i in range(len(d)):
        for j in pos[i]:
            s = sum(np.exp(margin - d[i, k]) for k in neg[i])
            s += sum(np.exp(margin - d[j, k]) for k in neg[j])
            terms.append(max(np.log(s) + d[i, j], 0.0) ** 2)
    return np.sum(terms) / (2 * len(terms))


def _softmax_ce(scores, target):
    m = scores.max()
    lse = m + np.log(np.exp(scores - m).sum())
    return lse - (target * scores).sum()


def np_npairs(labels, emb, ref_labels=None, ref_embeddings=None, remove_diagonal=True):
    labels, emb, rl, re = _refs(labels, emb, ref_labels, ref_embeddings)
    s = emb @ re.T
    out = []
    for i in range(len(s)):
        cols = [
            j for j in range(s.shape[1]) if not (remove_diagonal and i == j and labels[i] == rl[j])
        ]
        t = np.array([float(labels[i] == rl[j]) for j in cols])
        out.append(_softmax_ce(s[i, cols], t / t.sum()) if t.sum() else 0.0)
    return np.array(out)


def np_npairs_tfa(labels, similarity):
    """TFA's ``npairs_loss(y_true, y_pred)``: mean softmax CE of the similarity rows."""
    labels, s = np.asarray(labels), np.float64(similarity)
    t = (labels[:, None] == labels[None, :]).astype(np.float64)
    return np.mean([_softmax_ce(s[i], t[i] / t[i].sum()) for i in range(len(s))])


def np_npairs_multilabel(labels, emb, ref_labels=None, ref_embeddings=None, remove_diagonal=True):
    labels, emb, rl, re = _refs(labels, emb, ref_labels, ref_embeddings)
    s = emb @ re.T
    out = []
    for i in range(len(s)):
        cols = [
            j
            for j in range(s.shape[1])
            if not (remove_diagonal and i == j and np.dot(labels[i], rl[j]) > 0)
        ]
        t = np.array([float(np.dot(labels[i], rl[j])) for j in cols])
        out.append(_softmax_ce(s[i, cols], t / t.sum()) if t.sum() else 0.0)
    return np.array(out)


def _cos(x, y, eps):
    nx = max(np.linalg.norm(x), eps)
    ny = max(np.linalg.norm(y), eps)
    return float(np.dot(x, y) / (nx * ny))


def np_ntxent(labels, emb, ref_labels=None, ref_embeddings=None, temperature=0.07):
    labels, emb, rl, re = _refs(labels, emb, ref_labels, ref_embeddings)
    eps = np.finfo(np.float32).eps
    out = []
    for i in range(len(emb)):
        s = np.array([_cos(emb[i], re[j], eps) / temperature for j in range(len(re))])
        negs = [j for j in range(len(re)) if labels[i] != rl[j]]
        terms = []
        for j in range(len(re)):
            if j != i and labels[i] == rl[j]:
                denom = np.exp(s[j]) + sum(np.exp(s[k]) for k in negs)
                terms.append(-np.log(np.exp(s[j]) / denom))
        out.append(np.mean(terms) if terms else 0.0)
    return np.array(out)


def np_ntxent_optax(labels, emb, temperature=0.07):
    """optax's scalar: the mean over every ordered positive pair."""
    per_anchor, counts = np_ntxent(labels, emb, temperature=temperature), []
    labels = np.asarray(labels)
    counts = np.array([(labels == labels[i]).sum() - 1 for i in range(len(labels))])
    return (per_anchor * counts).sum() / counts.sum()


def _lse(x):
    if len(x) == 0:
        return -np.inf
    m = max(x)
    return m + np.log(sum(np.exp(v - m) for v in x))


def np_circle(
    labels, emb, ref_labels=None, ref_embeddings=None, remove_diagonal=True, gamma=80.0, margin=0.4
):
    labels, emb, rl, re = _refs(labels, emb, ref_labels, ref_embeddings)
    d = np.maximum(1.0 - emb @ re.T, 0.0)
    out = []
    for i in range(len(d)):
        pos = [
            j for j in range(d.shape[1]) if labels[i] == rl[j] and not (remove_diagonal and i == j)
        ]
        neg = [j for j in range(d.shape[1]) if labels[i] != rl[j]]
        lp = _lse([-gamma * max(margin + d[i, j], 0) * (margin - d[i, j]) for j in pos])
        ln = _lse([gamma * max(1 + margin - d[i, j], 0) * (1 - margin - d[i, j]) for j in neg])
        out.append(np.logaddexp(0.0, lp + ln))
    return np.array(out)


def _pnorm(x, p):
    return np.abs(x).max() if p == np.inf else (np.abs(x) ** p).sum() ** (1.0 / p)


def np_triplet_margin(
    _, triplets, margin=1.0, p=2.0, eps=1e-6, swap=False, soft=False, distance_metric=None
):
    a, pos, neg = (np.float64(t) for t in triplets)
    out = []
    for i in range(len(a)):
        if distance_metric is None:
            dist = lambda x, y: _pnorm(x - y + eps, p)
        else:
            dist = lambda x, y: _dist(x[None], y[None], distance_metric)[0, 0]
        dp, dn = dist(a[i], pos[i]), dist(a[i], neg[i])
        if swap:
            dn = min(dn, dist(pos[i], neg[i]))
        out.append(np.log1p(np.exp(dp - dn)) if soft else max(dp - dn + margin, 0.0))
    return np.array(out)


def np_cosine_embedding(target, pair, margin=0.0):
    x1, x2 = (np.float64(t) for t in pair)
    out = []
    for i in range(len(x1)):
        cos = x1[i] @ x2[i] / np.sqrt((x1[i] @ x1[i] + 1e-12) * (x2[i] @ x2[i] + 1e-12))
        out.append(1 - cos if target[i] == 1 else (max(cos - margin, 0) if target[i] == -1 else 0))
    return np.array(out)


def np_hinge_embedding(target, x, margin=1.0):
    t, x = np.float64(target), np.float64(x)
    element = np.where(t != -1, x, 0.0) + np.where(t != 1, np.maximum(margin - x, 0.0), 0.0)
    return element.mean(-1)


REFERENCES = {
    "triplet_hard": np_triplet_hard,
    "triplet_semihard": np_triplet_semihard,
    "contrastive": np_contrastive,
    "lifted_struct": np_lifted_struct,
    "npairs": np_npairs,
    "npairs_multilabel": np_npairs_multilabel,
    "ntxent": np_ntxent,
    "circle": np_circle,
    "triplet_margin": np_triplet_margin,
    "cosine_embedding": np_cosine_embedding,
    "hinge_embedding": np_hinge_embedding,
}
