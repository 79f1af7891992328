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
