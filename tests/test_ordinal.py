"""Weighted kappa: float64 reference, TFA's documented value, sample weights, shard_map."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from tests._batch_statistics import assert_sharded_equals_global
from tests.reference.ordinal import np_weighted_kappa


def _ratings(seed, n=16, k=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n).astype(np.float32)
    return labels, probs


@pytest.mark.parametrize("weightage", ["linear", "quadratic"])
def test_matches_float64_reference_for_one_hot_and_integer_labels(weightage):
    labels, probs = _ratings(0)
    onehot = np.eye(5, dtype=np.float32)[labels]
    expected = np_weighted_kappa(labels, probs, weightage=weightage)
    got = jaxloss.weighted_kappa(onehot, probs, weightage=weightage)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(jaxloss.weighted_kappa(labels, probs, weightage=weightage), got)
    loss = jaxloss.WeightedKappa(weightage=weightage, epsilon=0.0)
    np.testing.assert_allclose(
        loss(onehot, probs),
        np_weighted_kappa(labels, probs, weightage=weightage, epsilon=0.0),
        rtol=1e-5,
    )


def test_tfa_documented_example():
    y_true = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    y_pred = np.array(
        [[0.1, 0.2, 0.6, 0.1], [0.1, 0.5, 0.3, 0.1], [0.8, 0.05, 0.05, 0.1], [0.01, 0.09, 0.1, 0.8]]
    )
    np.testing.assert_allclose(jaxloss.WeightedKappa()(y_true, y_pred), -1.1611925, rtol=1e-6)


def test_perfect_and_chance_predictions():
    labels = np.array([0, 1, 2, 3, 1, 2])
    perfect = np.eye(4, dtype=np.float32)[labels]
    assert float(jaxloss.weighted_kappa(labels, perfect, epsilon=1e-6)) == pytest.approx(
        np.log(1e-6), rel=1e-4
    )
    # predictions independent of the labels: observed == chance, ratio 1, loss ~ 0
    uniform = np.full((6, 4), 0.25, np.float32)
    assert abs(float(jaxloss.weighted_kappa(labels, uniform))) < 1e-5
    # all targets and predictions on one level: the chance term is 0 -> log(epsilon), no NaN
    same = np.zeros(3, int)
    value, grad = jax.value_and_grad(lambda p: jaxloss.weighted_kappa(same, p))(
        jnp.asarray(np.eye(3, dtype=np.float32)[same])
    )
    assert float(value) == pytest.approx(np.log(1e-6), rel=1e-4) and np.all(np.isfinite(grad))


def test_sample_weight_weighs_each_sample_in_every_sum():
    labels, probs = _ratings(1, n=8)
    sw = np.array([1.0, 0.0, 2.0, 0.5, 1.0, 3.0, 0.0, 1.0], np.float32)
    got = jaxloss.WeightedKappa()(labels, probs, sample_weight=sw)
    np.testing.assert_allclose(got, np_weighted_kappa(labels, probs, sample_weight=sw), rtol=1e-5)
    kept = sw > 0
    unit = np.where(kept, 1.0, 0.0).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.WeightedKappa()(labels, probs, sample_weight=unit),
        jaxloss.weighted_kappa(labels[kept], probs[kept]),
        rtol=1e-5,
    )


@pytest.mark.parametrize("weightage", ["linear", "quadratic"])
def test_shard_map_equals_global_batch(weightage):
    labels, logits = _ratings(2, n=16)
    labels[:8] = 0  # uneven label histograms per device
    probs = jnp.asarray(logits)

    def make(**kw):
        return jaxloss.WeightedKappa(weightage=weightage, **kw)

    sw = np.linspace(0.2, 2.0, 16).astype(np.float32) if weightage == "linear" else None
    assert_sharded_equals_global(make, jnp.asarray(labels), probs, sw)


def test_bad_options_and_shapes_raise():
    labels, probs = _ratings(3, n=4)
    with pytest.raises(ValueError, match="weighted_kappa: `weightage` must be 'linear' or"):
        jaxloss.weighted_kappa(labels, probs, weightage="cubic")
    with pytest.raises(ValueError, match="WeightedKappa: `weightage` must be 'linear' or"):
        jaxloss.WeightedKappa(weightage="cubic")
    with pytest.raises(TypeError, match="WeightedKappa: `epsilon` must be a float >= 0"):
        jaxloss.WeightedKappa(epsilon="small")
    with pytest.raises(TypeError, match="weighted_kappa: `y_true` must hold integer class"):
        jaxloss.weighted_kappa(labels.astype(np.float32), probs)
    with pytest.raises(ValueError, match="weighted_kappa: `y_true` must be one-hot"):
        jaxloss.weighted_kappa(np.zeros((4, 3)), probs)
