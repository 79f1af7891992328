"""Float64 references for the Keras-family losses, written from Keras 3's documented formulas.

Each ``np_<loss>(y_true, y_pred, **options)`` returns the per-sample values of the function handle
with the same options (Keras' defaults when none are given). ``EPSILON`` is Keras'
``backend.epsilon()``, which Keras uses for clipping probabilities and guarding divisions.
"""

import numpy as np

EPSILON = 1e-7


def _f64(*arrays):
    return tuple(np.asarray(a, np.float64) for a in arrays)


def _logsumexp(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _log_softmax(x, axis=-1):
    return x - np.expand_dims(_logsumexp(x, axis), axis)


# --- regression ------------------------------------------------------------------------------


def np_mse(t, p):
    t, p = _f64(t, p)
    return np.mean((t - p) ** 2, axis=-1)


def np_mae(t, p):
    t, p = _f64(t, p)
    return np.mean(np.abs(t - p), axis=-1)


def np_mape(t, p):
    t, p = _f64(t, p)
    return 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPSILON), axis=-1)


def np_msle(t, p):
    t, p = _f64(t, p)
    return np.mean(
        (np.log(np.maximum(p, EPSILON) + 1) - np.log(np.maximum(t, EPSILON) + 1)) ** 2, -1
    )


def np_cosine(t, p, axis=-1):
    t, p = _f64(t, p)
    nt = np.sqrt(np.maximum((t * t).sum(axis, keepdims=True), 1e-12))
    npred = np.sqrt(np.maximum((p * p).sum(axis, keepdims=True), 1e-12))
    return -np.sum(t / nt * p / npred, axis=axis)


def np_huber(t, p, delta=1.0):
    t, p = _f64(t, p)
    x = np.abs(p - t)
    return np.mean(np.where(x <= delta, 0.5 * x**2, delta * x - 0.5 * delta**2), axis=-1)


def np_log_cosh(t, p):
    t, p = _f64(t, p)
    x = p - t
    # log(cosh x) = log((e^x + e^-x) / 2), through logaddexp so that it stays finite.
    return np.mean(np.logaddexp(x, -x) - np.log(2.0), axis=-1)


# --- segmentation ----------------------------------------------------------------------------


def np_dice(t, p, axis=None):
    t, p = _f64(t, p)
    return 1 - 2 * (t * p).sum(axis) / (t.sum(axis) + p.sum(axis) + EPSILON)


def np_tversky(t, p, alpha=0.5, beta=0.5, axis=None):
    # Keras 3 multiplies the missed-target mass by alpha and the spurious mass by beta.
    t, p = _f64(t, p)
    tp = (t * p).sum(axis)
    missed = (t * (1 - p)).sum(axis)
    spurious = ((1 - t) * p).sum(axis)
    return 1 - tp / (tp + alpha * missed + beta * spurious + EPSILON)


# --- hinge -----------------------------------------------------------------------------------


def _signed(t):
    # Keras turns {0, 1} labels into {-1, +1} only when every label of the input is 0 or 1.
    t = np.asarray(t, np.float64)
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def np_hinge(t, p):
    return np.mean(np.maximum(1 - _signed(t) * np.float64(p), 0), axis=-1)


def np_squared_hinge(t, p):
    return np.mean(np.maximum(1 - _signed(t) * np.float64(p), 0) ** 2, axis=-1)


def np_categorical_hinge(t, p):
    t, p = _f64(t, p)
    pos = (t * p).sum(-1)
    neg = ((1 - t) * p).max(-1)
    return np.maximum(neg - pos + 1, 0)


# --- probabilistic ---------------------------------------------------------------------------


def _clip(p):
    return np.clip(p, EPSILON, 1 - EPSILON)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_binary_crossentropy(t, p, from_logits=False, label_smoothing=0.0, axis=-1):
    t, p = _f64(t, p)
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # -log sigmoid(x) = log(1 + e^-x), -log(1 - sigmoid(x)) = log(1 + e^x)
        elementwise = t * np.logaddexp(0, -p) + (1 - t) * np.logaddexp(0, p)
    else:
        p = _clip(p)
        elementwise = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return elementwise.mean(axis)


def np_binary_focal_crossentropy(
    t,
    p,
    apply_class_balancing=False,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    axis=-1,
):
    t, p = _f64(t, p)
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = _sigmoid(p)
    q = _clip(p)
    bce = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    p_t = t * p + (1 - t) * (1 - p)
    focal = (1 - p_t) ** gamma * bce
    if apply_class_balancing:
        focal = (t * alpha + (1 - t) * (1 - alpha)) * focal
    return focal.mean(axis)


def _log_probs(p, from_logits, axis):
    if from_logits:
        return _log_softmax(p, axis)
    return np.log(_clip(p / p.sum(axis, keepdims=True)))


def np_categorical_crossentropy(t, p, from_logits=False, label_smoothing=0.0, axis=-1):
    t, p = _f64(t, p)
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[axis]
    return -(t * _log_probs(p, from_logits, axis)).sum(axis)


def np_categorical_focal_crossentropy(
    t, p, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1
):
    t, p = _f64(t, p)
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[axis]
    q = np.exp(_log_probs(p, from_logits, axis))
    return (alpha * (1 - q) ** gamma * -t * np.log(q)).sum(axis)


def _pick(p, labels):
    labels = np.asarray(labels).astype(np.int64)
    if labels.ndim == p.ndim:
        labels = labels[..., 0]
    return np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]


def np_sparse_categorical_crossentropy(t, p, from_logits=False):
    (p,) = _f64(p)
    return -_pick(_log_probs(p, from_logits, -1), t)


def np_categorical_generalized_cross_entropy(t, p, q=0.5):
    (p,) = _f64(p)
    return (1 - _pick(p, t) ** q) / q


def np_poisson(t, p):
    t, p = _f64(t, p)
    return np.mean(p - t * np.log(p + EPSILON), axis=-1)


def np_kl_divergence(t, p):
    t, p = _f64(t, p)
    t, p = np.clip(t, EPSILON, 1), np.clip(p, EPSILON, 1)
    return np.sum(t * np.log(t / p), axis=-1)


# --- sequences and language-model heads ------------------------------------------------------


def _ctc_one(log_probs, label):
    """-log P(label | frames) by the CTC forward (alpha) recursion in log space; blank is 0."""
    extended = [0]
    for symbol in label:
        extended += [int(symbol), 0]
    frames, states = log_probs.shape[0], len(extended)
    alpha = np.full(states, -np.inf)
    alpha[0] = log_probs[0, 0]
    if states > 1:
        alpha[1] = log_probs[0, extended[1]]
    for t in range(1, frames):
        new = np.full(states, -np.inf)
        for s in range(states):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            # skipping a blank is allowed between two different labels only
            if s >= 2 and extended[s] != 0 and extended[s] != extended[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + log_probs[t, extended[s]]
        alpha = new
    return -np.logaddexp.reduce(alpha[-2:] if states > 1 else alpha)


def np_ctc(y_true, y_pred):
    """Keras' conventions: ``y_pred`` logits ``[batch, time, classes]``, blank 0, labels padded
    with 0 (each row's label is its non-zero entries), every frame used."""
    log_probs = _log_softmax(np.asarray(y_pred, np.float64), -1)
    labels = np.asarray(y_true)
    return np.array(
        [_ctc_one(lp, row[row != 0]) for lp, row in zip(log_probs, labels, strict=True)]
    )


def np_linear_crossentropy(y_true, y_pred):
    """Sparse softmax cross-entropy of the logits ``hidden @ weight (+ bias)``, per token."""
    hidden, weight, *bias = (np.asarray(x, np.float64) for x in y_pred)
    logits = hidden @ weight + (bias[0] if bias else 0.0)
    return -_pick(_log_softmax(logits, -1), y_true)


REFERENCES = {
    "mean_squared_error": np_mse,
    "mean_absolute_error": np_mae,
    "mean_absolute_percentage_error": np_mape,
    "mean_squared_logarithmic_error": np_msle,
    "cosine_similarity": np_cosine,
    "huber": np_huber,
    "log_cosh": np_log_cosh,
    "dice": np_dice,
    "tversky": np_tversky,
    "hinge": np_hinge,
    "squared_hinge": np_squared_hinge,
    "categorical_hinge": np_categorical_hinge,
    "binary_crossentropy": np_binary_crossentropy,
    "binary_focal_crossentropy": np_binary_focal_crossentropy,
    "categorical_crossentropy": np_categorical_crossentropy,
    "categorical_focal_crossentropy": np_categorical_focal_crossentropy,
    "sparse_categorical_crossentropy": np_sparse_categorical_crossentropy,
    "categorical_generalized_cross_entropy": np_categorical_generalized_cross_entropy,
    "poisson": np_poisson,
    "kl_divergence": np_kl_divergence,
    "ctc": np_ctc,
    "linear_crossentropy": np_linear_crossentropy,
}
