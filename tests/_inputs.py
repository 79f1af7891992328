"""Example inputs per registry ``inputs`` kind, for the contract test that walks every loss.

Each generator takes a PRNG key and returns ``(y_true, y_pred)`` as float32/int32 arrays with a
batch axis of size ``BATCH`` first. Add a kind when a new loss needs one; the contract test fails
for a registered loss whose kind has no generator here.
"""

import jax
import jax.numpy as jnp

BATCH = 4


def regression(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (BATCH, 5)), jax.random.normal(k2, (BATCH, 5))


def binary(key):
    k1, k2 = jax.random.split(key)
    y_true = jax.random.bernoulli(k1, 0.5, (BATCH, 5)).astype(jnp.float32)
    return y_true, jax.random.uniform(k2, (BATCH, 5), minval=0.05, maxval=0.95)


def categorical(key):
    k1, k2 = jax.random.split(key)
    y_true = jax.nn.one_hot(jax.random.randint(k1, (BATCH,), 0, 6), 6)
    return y_true, jax.nn.softmax(jax.random.normal(k2, (BATCH, 6)))


def sparse_categorical(key):
    k1, k2 = jax.random.split(key)
    y_true = jax.random.randint(k1, (BATCH,), 0, 6)
    return y_true, jax.nn.softmax(jax.random.normal(k2, (BATCH, 6)))


def segmentation(key):
    k1, k2 = jax.random.split(key)
    y_true = jax.random.bernoulli(k1, 0.5, (BATCH, 3, 3, 1)).astype(jnp.float32)
    return y_true, jax.random.uniform(k2, (BATCH, 3, 3, 1))


def metric_learning(key):
    # every label appears twice, so each sample has a positive and a negative pair (Circle loss)
    y_true = jnp.array([0, 0, 1, 1], jnp.int32)[:BATCH]
    emb = jax.random.normal(key, (BATCH, 8))
    return y_true, emb / jnp.linalg.norm(emb, axis=-1, keepdims=True)


def ctc(key):
    # Keras' CTC: y_true int [batch, max_len] padded with 0 (also the blank), y_pred logits
    # [batch, time, classes]; time 8 >= 2 * 3 + 1 keeps every target feasible.
    k1, k2, k3 = jax.random.split(key, 3)
    labels = jax.random.randint(k1, (BATCH, 3), 1, 5)
    lengths = jax.random.randint(k2, (BATCH, 1), 1, 4)
    y_true = jnp.where(jnp.arange(3) < lengths, labels, 0).astype(jnp.int32)
    return y_true, jax.random.normal(k3, (BATCH, 8, 5))


def linear_head(key):
    """Integer labels and the ``(hidden, weight)`` pair whose product would be the logits."""
    k1, k2, k3 = jax.random.split(key, 3)
    labels = jax.random.randint(k1, (BATCH, 3), 0, 7)
    hidden = jax.random.normal(k2, (BATCH, 3, 5))
    return labels, (hidden, 0.5 * jax.random.normal(k3, (5, 7)))


GENERATORS = {
    "linear_head": linear_head,
    "regression": regression,
    "binary": binary,
    "categorical": categorical,
    "sparse_categorical": sparse_categorical,
    "segmentation": segmentation,
    "metric_learning": metric_learning,
    "ctc": ctc,
}


# --- ranking, boxes, sequence labelling, multi-class segmentation ---


def ranking(key):
    # distinct labels per list, so every list has ordered pairs (the pairwise losses mask lists
    # without pairs out of the mean, which a plain NumPy mean would not know)
    k1, k2 = jax.random.split(key)
    labels = jax.vmap(lambda k: jax.random.permutation(k, 5))(jax.random.split(k1, BATCH))
    return labels.astype(jnp.float32), jax.random.normal(k2, (BATCH, 5))


def margin_ranking(key):
    """``y`` in {-1, +1} per pair and the two scores stacked on a last axis of 2."""
    k1, k2 = jax.random.split(key)
    y = jnp.where(jax.random.bernoulli(k1, 0.5, (BATCH, 3)), 1.0, -1.0)
    return y, jax.random.normal(k2, (BATCH, 3, 2))


def boxes(key):
    """Valid ``[y_min, x_min, y_max, x_max]`` boxes that overlap partly."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    low_t = jax.random.uniform(k1, (BATCH, 2), maxval=4.0)
    low_p = low_t + jax.random.uniform(k2, (BATCH, 2), minval=-1.0, maxval=1.0)
    size_t = jax.random.uniform(k3, (BATCH, 2), minval=1.0, maxval=3.0)
    size_p = jax.random.uniform(k4, (BATCH, 2), minval=1.0, maxval=3.0)
    return (
        jnp.concatenate([low_t, low_t + size_t], -1),
        jnp.concatenate([low_p, low_p + size_p], -1),
    )


def sequence_logits(key):
    """Integer targets ``[batch, T]`` and logits ``[batch, T, C]``."""
    k1, k2 = jax.random.split(key)
    return jax.random.randint(k1, (BATCH, 4), 0, 5), jax.random.normal(k2, (BATCH, 4, 5))


def crf(key):
    """Tags ``[batch, T]`` and the ``(potentials, transitions)`` pair of a linear-chain CRF."""
    k1, k2, k3 = jax.random.split(key, 3)
    tags = jax.random.randint(k1, (BATCH, 4), 0, 3)
    return tags, (jax.random.normal(k2, (BATCH, 4, 3)), jax.random.normal(k3, (3, 3)))


def segmentation_multiclass(key):
    """One-hot masks ``[batch, 3, 3, C]`` and class probabilities of the same shape."""
    k1, k2 = jax.random.split(key)
    y_true = jax.nn.one_hot(jax.random.randint(k1, (BATCH, 3, 3), 0, 3), 3)
    return y_true, jax.nn.softmax(jax.random.normal(k2, (BATCH, 3, 3, 3)))


GENERATORS.update(
    {
        "ranking": ranking,
        "margin_ranking": margin_ranking,
        "boxes": boxes,
        "sequence_logits": sequence_logits,
        "crf": crf,
        "segmentation_multiclass": segmentation_multiclass,
    }
)


# --- metric learning on explicit pairs, multi-label embeddings, image-text pairs ---


def triplets(key):
    """``y_true`` ignored (zeros) and the ``(anchor, positive, negative)`` embeddings."""
    k1, k2, k3 = jax.random.split(key, 3)
    anchor = jax.random.normal(k1, (BATCH, 6))
    positive = anchor + 0.5 * jax.random.normal(k2, (BATCH, 6))
    return jnp.zeros((BATCH,)), (anchor, positive, jax.random.normal(k3, (BATCH, 6)))


def embedding_pairs(key):
    """``+1/-1`` pair targets and the ``(x1, x2)`` embeddings."""
    k1, k2, k3 = jax.random.split(key, 3)
    y = jnp.where(jax.random.bernoulli(k1, 0.5, (BATCH,)), 1.0, -1.0)
    return y, (jax.random.normal(k2, (BATCH, 6)), jax.random.normal(k3, (BATCH, 6)))


def signed_distances(key):
    """``+1/-1`` targets and non-negative distances ``[batch, 5]``."""
    k1, k2 = jax.random.split(key)
    y = jnp.where(jax.random.bernoulli(k1, 0.5, (BATCH, 5)), 1.0, -1.0)
    return y, jax.random.uniform(k2, (BATCH, 5), maxval=2.0)


def multilabel_embeddings(key):
    # every sample shares a label with another one and misses one (a positive and a negative)
    y_true = jnp.array([[1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 1]], jnp.int32)[:BATCH]
    return y_true, jax.random.normal(key, (BATCH, 6))


def image_text(key):
    """``y_true`` ignored (zeros) and correlated ``(image, text)`` embeddings."""
    k1, k2 = jax.random.split(key)
    image = jax.random.normal(k1, (BATCH, 6))
    return jnp.zeros((BATCH,)), (image, image + jax.random.normal(k2, (BATCH, 6)))


GENERATORS.update(
    {
        "triplets": triplets,
        "embedding_pairs": embedding_pairs,
        "signed_distances": signed_distances,
        "multilabel_embeddings": multilabel_embeddings,
        "image_text": image_text,
    }
)


def distillation(key):
    """Teacher logits ``y_true`` and student logits ``y_pred``, ``[batch, 3 tokens, 6 classes]``."""
    k1, k2 = jax.random.split(key)
    return 2.0 * jax.random.normal(k1, (BATCH, 3, 6)), 2.0 * jax.random.normal(k2, (BATCH, 3, 6))


GENERATORS["distillation"] = distillation


def preference(key):
    """Reference ``y_true`` and policy ``y_pred`` log-probabilities ``[batch, 2]`` (chosen,
    rejected), negative averages so that ORPO's odds exist."""
    k1, k2 = jax.random.split(key)
    reference = -jax.random.uniform(k1, (BATCH, 2), minval=0.5, maxval=3.0)
    return reference, reference + 0.5 * jax.random.normal(k2, (BATCH, 2))


def kto(key):
    """Desirability ``y_true`` ``[batch]`` and ``(policy, reference, policy_kl, reference_kl)``."""
    y_true = jnp.array([1.0, 0.0, 1.0, 0.0])[:BATCH]
    k2 = key
    return y_true, -jax.random.uniform(k2, (BATCH, 4), minval=1.0, maxval=5.0)


GENERATORS.update({"preference": preference, "kto": kto})


# --- log-probabilities against labels; positive-class index lists (multi-label margin) ---


def sparse_log_probs(key):
    """Integer labels ``[batch]`` and log-probabilities ``[batch, 6]``."""
    k1, k2 = jax.random.split(key)
    log_p = jax.nn.log_softmax(jax.random.normal(k2, (BATCH, 6)))
    return jax.random.randint(k1, (BATCH,), 0, 6), log_p


def multilabel_indices(key):
    """Positive class indices padded with -1, ``[batch, 5]``, and scores ``[batch, 5]``."""
    k1, k2, k3 = jax.random.split(key, 3)
    classes = jax.vmap(lambda k: jax.random.permutation(k, 5))(jax.random.split(k1, BATCH))
    count = jax.random.randint(k2, (BATCH, 1), 1, 4)
    y_true = jnp.where(jnp.arange(5) < count, classes, -1).astype(jnp.int32)
    return y_true, jax.random.normal(k3, (BATCH, 5))


GENERATORS.update({"sparse_log_probs": sparse_log_probs, "multilabel_indices": multilabel_indices})


def rnnt(key):
    """Labels ``[batch, 3]`` padded with 0 (the blank) and joiner logits ``[batch, 4, 4, 5]``."""
    k1, k2, k3 = jax.random.split(key, 3)
    labels = jax.random.randint(k1, (BATCH, 3), 1, 5)
    lengths = jax.random.randint(k2, (BATCH, 1), 1, 4)
    y_true = jnp.where(jnp.arange(3) < lengths, labels, 0).astype(jnp.int32)
    return y_true, jax.random.normal(k3, (BATCH, 4, 4, 5))


GENERATORS["rnnt"] = rnnt
