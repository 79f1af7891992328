"""Ranking losses: float64 references with padding masks, optax parity, masked lists, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss._ranking import ranking_softmax_loss
from tests.reference.ranking import REFERENCES

LIST_LOSSES = {
    "ranking_softmax": {},
    "list_mle": {},
    "pairwise_hinge": {"margin": 0.7},
    "pairwise_logistic": {},
}


def _lists(seed, shape=(3, 4, 6)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, shape).astype(np.float32)
    scores = rng.normal(size=shape).astype(np.float32) * 3
    where = rng.random(shape) < 0.7
    where[0, 0] = False  # one list fully masked
    where[0, 1] = [True] + [False] * (shape[-1] - 1)  # one list with a single valid item
    return labels, scores, where


@pytest.mark.parametrize("name", list(LIST_LOSSES))
@pytest.mark.parametrize("masked", [False, True], ids=["no_where", "where"])
def test_matches_float64_reference(name, masked):
    labels, scores, where = _lists(0)
    where = where if masked else None
    fn = getattr(jaxloss, name)
    got = fn(labels, scores, where=where, **LIST_LOSSES[name])
    expected = REFERENCES[name](labels, scores, where=where, **LIST_LOSSES[name])
    assert got.shape == labels.shape[:-1]
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(LIST_LOSSES))
def test_masked_items_are_ignored_even_when_nan_and_fully_masked_lists_give_zero(name):
    labels, scores, where = _lists(1)
    poisoned = np.where(where, scores, np.nan).astype(np.float32)
    bad_labels = np.where(where, labels, np.nan).astype(np.float32)
    fn = getattr(jaxloss, name)
    options = LIST_LOSSES[name]

    def total(s):
        return jnp.sum(fn(bad_labels, s, where=where, **options))

    value, grad = jax.value_and_grad(total)(jnp.asarray(poisoned))
    clean = fn(labels, scores, where=where, **options)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, jnp.sum(clean), rtol=1e-5)
    assert float(fn(labels, scores, where=where, **options)[0, 0]) == 0.0
    np.testing.assert_array_equal(grad[0, 0], 0.0)
    np.testing.assert_array_equal(np.where(where, 0.0, grad), 0.0)


def test_class_mean_leaves_out_lists_without_valid_items_or_pairs():
    labels, scores, where = _lists(2)
    ref_soft = REFERENCES["ranking_softmax"](labels, scores, where=where)
    has_item = where.any(-1)
    got = jaxloss.RankingSoftmax()(labels, scores, where=where)
    np.testing.assert_allclose(got, ref_soft[has_item].mean(), rtol=1e-5)
    got = jaxloss.ListMLE()(labels, scores, where=where)
    ref = REFERENCES["list_mle"](labels, scores, where=where)
    np.testing.assert_allclose(got, ref[has_item].mean(), rtol=1e-5)
    # a list with only equal labels has no pair: out of the pairwise means
    labels[1, 2] = 1.0
    ref = REFERENCES["pairwise_logistic"](labels, scores, where=where)
    valid = labels[..., :, None] > labels[..., None, :]
    valid &= where[..., :, None] & where[..., None, :]
    has_pair = valid.any((-2, -1))
    assert not has_pair[1, 2] and not has_pair[0, 0]
    got = jaxloss.PairwiseLogistic()(labels, scores, where=where)
    np.testing.assert_allclose(got, ref[has_pair].mean(), rtol=1e-5)
    got = jaxloss.PairwiseHinge(reduction="sum")(labels, scores, where=where)
    np.testing.assert_allclose(
        got, REFERENCES["pairwise_hinge"](labels, scores, where=where).sum(), rtol=1e-5
    )


def test_ties_in_list_mle_keep_list_order():
    # labels tie between items 0 and 2: the stable order is (0, 2, 1)
    got = jaxloss.list_mle([[1.0, 0.0, 1.0]], [[0.0, 2.0, 1.0]])
    s = np.array([0.0, 1.0, 2.0])  # scores in the order 0, 2, 1
    expected = -sum(s[k] - np.log(np.exp(s[k:]).sum()) for k in range(3))
    np.testing.assert_allclose(got, [expected], rtol=1e-6)


@pytest.mark.parametrize(
    "case",
    ["plain", "where", "weights", "sum", "none", "all_masked"],
)
def test_ranking_softmax_loss_matches_optax(case):
    labels, scores, where = _lists(3, (5, 7))
    kwargs = {}
    if case in ("where", "none", "sum"):
        kwargs["where"] = where
    if case == "weights":
        kwargs["weights"] = np.random.default_rng(4).random((5, 7)).astype(np.float32)
    if case == "sum":
        kwargs["reduce_fn"] = jnp.sum
    if case == "none":
        kwargs["reduce_fn"] = None
    if case == "all_masked":
        kwargs["where"] = np.zeros((5, 7), bool)
    expected = optax.losses.ranking_softmax_loss(jnp.asarray(scores), jnp.asarray(labels), **kwargs)
    got = ranking_softmax_loss(scores, labels, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    grad = jax.grad(lambda s: jnp.sum(ranking_softmax_loss(s, labels, **kwargs)))(scores)
    assert np.all(np.isfinite(grad))


def test_margin_ranking_matches_torch_formula_and_reference():
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=(2, 6, 3)).astype(np.float32)
    y = np.where(rng.random((6, 3)) < 0.5, -1.0, 1.0).astype(np.float32)
    stacked = np.stack([x1, x2], -1)
    got = jaxloss.margin_ranking(y, stacked, margin=0.3)
    np.testing.assert_allclose(got, np.maximum(0, -y * (x1 - x2) + 0.3), rtol=1e-6)
    np.testing.assert_allclose(got, REFERENCES["margin_ranking"](y, stacked, 0.3), rtol=1e-6)
    mean = jaxloss.MarginRanking(margin=0.3)(y, stacked)
    np.testing.assert_allclose(mean, np.maximum(0, -y * (x1 - x2) + 0.3).mean(), rtol=1e-6)
    np.testing.assert_allclose(jaxloss.margin_ranking(y[..., None], stacked, 0.3), got)


def test_bad_inputs_raise_with_the_loss_name():
    with pytest.raises(TypeError, match="ranking_softmax: `where` must be a boolean array"):
        jaxloss.ranking_softmax([[1.0, 0.0]], [[0.0, 1.0]], where=[[1, 0]])
    with pytest.raises(ValueError, match="list_mle: `where` must broadcast"):
        jaxloss.list_mle([[1.0, 0.0]], [[0.0, 1.0]], where=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="pairwise_hinge: `margin` must be a float >= 0"):
        jaxloss.pairwise_hinge([[1.0, 0.0]], [[0.0, 1.0]], margin=-1.0)
    with pytest.raises(ValueError, match="PairwiseHinge: `margin` must be a float >= 0"):
        jaxloss.PairwiseHinge(margin=-1.0)
    with pytest.raises(ValueError, match="margin_ranking: `y_pred` must stack the two scores"):
        jaxloss.margin_ranking([1.0], [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="margin_ranking: `y_true` must have shape"):
        jaxloss.margin_ranking([1.0, 1.0, 1.0], [[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(TypeError, match="MarginRanking: `margin` must be a finite float"):
        jaxloss.MarginRanking(margin="1")
