"""Float64 reference of the RNN-T loss: the transducer lattice in log space, from its definition."""

import numpy as np


def _log_softmax(x):
    x = np.float64(x)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def np_rnnt(y_true, y_pred, blank=0):
    """alpha[t, u]: log-probability of emitting the first u labels within the first t frames."""
    y_true, logp = np.asarray(y_true), _log_softmax(y_pred)
    out = []
    for labels, lp in zip(y_true, logp, strict=True):
        labels = labels[labels != blank]
        frames, u_max = lp.shape[0], len(labels)
        alpha = np.full((frames, u_max + 1), -np.inf)
        alpha[0, 0] = 0.0
        for t in range(frames):
            for u in range(u_max + 1):
                if t == 0 and u == 0:
                    continue
                terms = []
                if t > 0:
                    terms.append(alpha[t - 1, u] + lp[t - 1, u, blank])
                if u > 0:
                    terms.append(alpha[t, u - 1] + lp[t, u - 1, labels[u - 1]])
                alpha[t, u] = np.logaddexp.reduce(terms)
        out.append(-(alpha[frames - 1, u_max] + lp[frames - 1, u_max, blank]))
    return np.array(out)


REFERENCES = {"rnnt": np_rnnt}
