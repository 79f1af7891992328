"""Sequence loss (TFA's reductions) and the linear-chain CRF against brute-force enumeration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from tests._batch_statistics import assert_sharded_equals_global
from tests.reference.structured import (
    np_crf_decode,
    np_crf_log_likelihood,
    np_linear_chain_crf,
    np_sequence_loss,
)

FLAGS = ("average_across_timesteps", "average_across_batch", "sum_over_timesteps", "sum_over_batch")
MODES = [
    dict(zip(FLAGS, bits, strict=True))
    for bits in itertools.product([False, True], repeat=4)
    if not (bits[0] and bits[2]) and not (bits[1] and bits[3])
]


def _tokens(seed, batch=4, steps=5, classes=6):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, classes, (batch, steps))
    logits = rng.normal(size=(batch, steps, classes)).astype(np.float32) * 2
    weights = (rng.random((batch, steps)) < 0.7).astype(np.float32) * rng.uniform(
        0.5, 2, (batch, steps)
    )
    weights[0] = 0.0  # a sequence with no weight at all
    return targets, logits, weights.astype(np.float32)


def _mode_id(mode):
    return (
        "-".join(k.split("_")[0][:3] + "_" + k.split("_")[-1][:4] for k, v in mode.items() if v)
        or "none"
    )


@pytest.mark.parametrize("mode", MODES, ids=[_mode_id(m) for m in MODES])
def test_sequence_loss_matches_tfa_reduction_rules(mode):
    targets, logits, weights = _tokens(0)
    got = jaxloss.sequence_loss(targets, logits, weights, **mode)
    expected = np_sequence_loss(targets, logits, weights, **mode)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_sequence_loss_class_reduces_per_timestep_and_per_sample_modes():
    targets, logits, weights = _tokens(1)
    per_step = {"average_across_timesteps": False, "average_across_batch": True}
    ref = np_sequence_loss(targets, logits, weights, **per_step)
    np.testing.assert_allclose(
        jaxloss.SequenceLoss(**per_step)(targets, logits, weights=weights), ref.mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        jaxloss.SequenceLoss(**per_step, reduction="none")(targets, logits, weights=weights),
        ref,
        rtol=1e-5,
    )
    per_sample = {"average_across_timesteps": True, "average_across_batch": False}
    sw = np.array([1.0, 2.0, 0.0, 1.0], np.float32)
    ref = np_sequence_loss(targets, logits, weights, **per_sample)
    got = jaxloss.SequenceLoss(**per_sample)(targets, logits, sample_weight=sw, weights=weights)
    np.testing.assert_allclose(got, (ref * sw).mean(), rtol=1e-5)
    # TFA's class: sample_weight are the token weights, sums over both axes
    tfa = {
        "average_across_timesteps": False,
        "average_across_batch": False,
        "sum_over_timesteps": True,
        "sum_over_batch": True,
    }
    got = jaxloss.SequenceLoss(**tfa)(targets, logits, sample_weight=weights)
    np.testing.assert_allclose(got, np_sequence_loss(targets, logits, weights, **tfa), rtol=1e-5)


def test_sequence_loss_under_shard_map_equals_global_batch():
    targets, logits, weights = _tokens(2, batch=16, steps=3, classes=4)
    weights[:8] *= 0.1  # per-device weight sums differ

    def make(**kw):
        return jaxloss.SequenceLoss(**kw)

    assert_sharded_equals_global(make, jnp.asarray(targets), jnp.asarray(logits), weights)


def test_sequence_loss_errors():
    targets, logits, weights = _tokens(3)
    with pytest.raises(
        ValueError, match="sequence_loss: `average_across_batch` and `sum_over_batch` must not"
    ):
        jaxloss.sequence_loss(targets, logits, sum_over_batch=True)
    with pytest.raises(
        ValueError, match="SequenceLoss: `average_across_timesteps` and `sum_over_timesteps`"
    ):
        jaxloss.SequenceLoss(sum_over_timesteps=True)
    with pytest.raises(TypeError, match="sequence_loss: `y_true` must hold integer"):
        jaxloss.sequence_loss(targets.astype(np.float32), logits)
    with pytest.raises(
        ValueError, match=r"sequence_loss: `y_pred` must be logits of shape \[batch, T, C\]"
    ):
        jaxloss.sequence_loss(targets, logits[0])
    with pytest.raises(ValueError, match="sequence_loss: `weights` must broadcast"):
        jaxloss.sequence_loss(targets, logits, weights[:, :2])
    with pytest.raises(
        TypeError, match="sequence_loss: `average_across_batch` must be True or False"
    ):
        jaxloss.sequence_loss(targets, logits, average_across_batch="yes")


def _crf_inputs(seed, batch=4, steps=4, tags=3):
    rng = np.random.default_rng(seed)
    potentials = rng.normal(size=(batch, steps, tags)).astype(np.float32)
    transitions = rng.normal(size=(tags, tags)).astype(np.float32)
    labels = rng.integers(0, tags, (batch, steps))
    lengths = np.array([steps, 2, 0, 1][:batch])
    return labels, potentials, transitions, lengths


def test_crf_log_likelihood_and_loss_match_brute_force_enumeration():
    labels, potentials, transitions, lengths = _crf_inputs(0)
    got = jaxloss.crf_log_likelihood(potentials, labels, transitions, lengths)
    expected = np_crf_log_likelihood(potentials, labels, transitions, lengths)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert float(got[2]) == 0.0  # an empty sequence
    loss = jaxloss.linear_chain_crf(labels, (potentials, transitions), lengths=lengths)
    np.testing.assert_allclose(loss, -expected, rtol=1e-5, atol=1e-5)
    by_keyword = jaxloss.LinearChainCRF(reduction="none")(
        labels, potentials, lengths=lengths, transitions=transitions
    )
    np.testing.assert_allclose(by_keyword, -expected, rtol=1e-5, atol=1e-5)
    full = jaxloss.linear_chain_crf(labels, (potentials, transitions))
    np.testing.assert_allclose(
        full, np_linear_chain_crf(labels, (potentials, transitions)), rtol=1e-5, atol=1e-5
    )


def test_crf_probabilities_of_all_sequences_sum_to_one():
    _, potentials, transitions, _ = _crf_inputs(1, batch=1, steps=3)
    seqs = np.array(list(itertools.product(range(3), repeat=3)))
    ll = jax.vmap(lambda s: jaxloss.crf_log_likelihood(potentials, s[None], transitions)[0])(seqs)
    np.testing.assert_allclose(np.exp(np.asarray(ll, np.float64)).sum(), 1.0, rtol=1e-5)


def test_crf_gradients_are_marginals_and_reach_the_transitions():
    labels, potentials, transitions, lengths = _crf_inputs(2)
    g_pot, g_trans = jax.grad(
        lambda p, t: jnp.sum(jaxloss.linear_chain_crf(labels, (p, t), lengths=lengths)),
        argnums=(0, 1),
    )(jnp.asarray(potentials), jnp.asarray(transitions))
    # d(-ll)/d(potentials[b, t, y]) = P(y_t = y) - [label_t = y]: rows sum to 0 inside each length,
    # and padded steps get no gradient
    steps = np.arange(potentials.shape[1])[None, :] < lengths[:, None]
    np.testing.assert_allclose(np.asarray(g_pot).sum(-1), 0.0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(g_pot)[~steps], 0.0)
    assert np.abs(np.asarray(g_trans)).sum() > 0
    # finite-difference check of one transition entry in float64 NumPy
    eps = 1e-3
    bumped = transitions.astype(np.float64).copy()
    bumped[1, 2] += eps
    fd = (
        -(
            np_crf_log_likelihood(potentials, labels, bumped, lengths).sum()
            - np_crf_log_likelihood(potentials, labels, transitions, lengths).sum()
        )
        / eps
    )
    np.testing.assert_allclose(g_trans[1, 2], fd, rtol=1e-2, atol=1e-3)


def test_crf_decode_matches_brute_force_argmax():
    for seed in range(3):
        _, potentials, transitions, lengths = _crf_inputs(10 + seed, steps=5)
        tags, score = jax.jit(jaxloss.crf_decode)(potentials, transitions, lengths)
        exp_tags, exp_score = np_crf_decode(potentials, transitions, lengths)
        np.testing.assert_array_equal(tags, exp_tags)
        np.testing.assert_allclose(score, exp_score, rtol=1e-5, atol=1e-5)
        assert tags.dtype == jnp.int32


def test_crf_errors():
    labels, potentials, transitions, lengths = _crf_inputs(4)
    with pytest.raises(
        ValueError, match=r"crf_log_likelihood: `transitions` must have shape \(3, 3\)"
    ):
        jaxloss.crf_log_likelihood(potentials, labels, transitions[:2], lengths)
    with pytest.raises(ValueError, match="linear_chain_crf: `transitions` must be given"):
        jaxloss.linear_chain_crf(labels, potentials)
    with pytest.raises(
        ValueError, match="linear_chain_crf: `y_pred` must be `potentials` or the tuple"
    ):
        jaxloss.linear_chain_crf(labels, (potentials, transitions), transitions=transitions)
    with pytest.raises(TypeError, match="crf_decode: `lengths` must hold integer"):
        jaxloss.crf_decode(potentials, transitions, lengths.astype(np.float32))
    with pytest.raises(ValueError, match=r"crf_decode: `lengths` must have shape \(4,\)"):
        jaxloss.crf_decode(potentials, transitions, lengths[:2])
