"""Margin and Fenchel-Young losses: options, edge cases and identities beyond the contract test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from tests.reference import margin as ref


def _rng(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize(
    "fn, options",
    [
        (jaxloss.multiclass_hinge, {"margin": 0.5}),
        (jaxloss.multi_margin, {"p": 2, "margin": 0.7, "class_weight": (1.0, 2.0, 0.5, 1.5)}),
    ],
    ids=["multiclass_hinge", "multi_margin"],
)
def test_class_index_losses_match_reference_on_spatial_inputs(fn, options):
    rng = _rng(0)
    scores = rng.normal(size=(3, 2, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(3, 2))
    expected = getattr(ref, f"np_{fn.__name__}")(labels, scores, **options)
    np.testing.assert_allclose(fn(labels, scores, **options), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn(labels[..., None], scores, **options), expected, rtol=1e-5)


def test_multiclass_perceptron_is_margin_zero():
    rng = _rng(1)
    scores = rng.normal(size=(5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=5)
    expected = scores.max(-1) - scores[np.arange(5), labels]
    np.testing.assert_allclose(jaxloss.multiclass_hinge(labels, scores, margin=0.0), expected)


def test_multilabel_margin_edge_rows():
    scores = np.array([[0.1, 0.2, 0.4, 0.8]] * 4, np.float32)
    targets = np.array(
        [
            [-1, 0, 1, 2],  # no positive class: 0
            [0, 1, 2, 3],  # every class positive: 0
            [3, 3, -1, 0],  # a class listed twice counts twice
            [0, 9, -1, -1],  # out-of-range index before the first -1: NaN
        ]
    )
    got = np.asarray(jaxloss.multilabel_margin(targets, scores))
    assert got[0] == 0.0 and got[1] == 0.0 and np.isnan(got[3])
    np.testing.assert_allclose(got[2], ref.np_multilabel_margin(targets[2:3], scores[2:3])[0])
    np.testing.assert_allclose(got[2], 2 * ref.np_multilabel_margin([[3, -1, 0, 0]], scores[:1])[0])


def test_out_of_range_label_is_nan_only_in_its_row_and_gradient():
    scores = jnp.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
    labels = jnp.array([3, 1])
    for fn in (jaxloss.multiclass_hinge, jaxloss.multi_margin):
        values = fn(labels, scores)
        assert np.isnan(values[0]) and np.isfinite(values[1])
        grad = jax.grad(lambda s, fn=fn: fn(labels, s)[1])(scores)
        assert np.all(np.isfinite(grad))


def test_signed_losses_read_zero_one_targets_as_minus_one_one():
    scores = np.array([[0.5, -1.5, 2.0]], np.float32)
    for fn in (jaxloss.perceptron, jaxloss.soft_margin, jaxloss.binary_sparsemax_loss):
        np.testing.assert_allclose(fn([[1.0, 0.0, 1.0]], scores), fn([[1.0, -1.0, 1.0]], scores))


def test_soft_margin_is_finite_for_huge_scores():
    values = jaxloss.soft_margin([[1.0, -1.0]], [[-1e4, 1e4]])
    np.testing.assert_allclose(values, [1e4])
    grad = jax.grad(lambda s: jaxloss.soft_margin([[1.0, -1.0]], s).sum())(jnp.array([[-1e4, 1e4]]))
    np.testing.assert_allclose(grad, [[-0.5, 0.5]])


def test_sparsemax_gradient_is_sparsemax_minus_target():
    rng = _rng(2)
    scores = rng.normal(size=(4, 6)).astype(np.float32)
    targets = rng.dirichlet(np.ones(6), size=4).astype(np.float32)
    grad = jax.grad(lambda s: jaxloss.sparsemax_loss(targets, s).sum())(jnp.asarray(scores))
    expected = np.stack([ref.np_sparsemax(np.float64(s)) for s in scores]) - targets
    np.testing.assert_allclose(grad, expected, atol=1e-5)
    assert np.all(np.asarray(jaxloss.sparsemax_loss(targets, scores)) >= -1e-6)


def test_fenchel_young_regularisers():
    rng = _rng(3)
    scores = rng.normal(size=(4, 5)).astype(np.float32)
    targets = rng.dirichlet(np.ones(5), size=4).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.fenchel_young_loss(targets, scores, "gini"),
        jaxloss.sparsemax_loss(targets, scores),
    )
    shannon = jaxloss.fenchel_young_loss(targets, scores)
    np.testing.assert_allclose(shannon, ref.np_fenchel_young_loss(targets, scores), rtol=1e-5)
    # Shannon: cross-entropy minus the target's entropy, so 0 when softmax(scores) == targets.
    at_target = jaxloss.fenchel_young_loss(targets, np.log(targets))
    np.testing.assert_allclose(at_target, np.zeros(4), atol=1e-5)
    with pytest.raises(ValueError, match="regularizer"):
        jaxloss.fenchel_young_loss(targets, scores, "tsallis")
    with pytest.raises(ValueError, match="regularizer"):
        jaxloss.FenchelYoungLoss(regularizer="tsallis")
    with pytest.raises(TypeError, match="regularizer"):
        jaxloss.FenchelYoungLoss(regularizer=jax.nn.logsumexp)


def test_poly1_reduces_to_cross_entropy_and_masks():
    rng = _rng(4)
    logits = rng.normal(size=(3, 5)).astype(np.float32)
    targets = rng.dirichlet(np.ones(5), size=3).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.poly1_crossentropy(targets, logits, epsilon=0.0),
        jaxloss.categorical_crossentropy(targets, logits, from_logits=True),
        rtol=1e-5,
    )
    where = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    got = jaxloss.poly1_crossentropy(targets, logits, epsilon=1.5, where=where)
    np.testing.assert_allclose(
        got, ref.np_poly1_crossentropy(targets, logits, epsilon=1.5, where=where), rtol=1e-5
    )
    grad = jax.grad(lambda z: jaxloss.poly1_crossentropy(targets, z, where=where).sum())(logits)
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0)
    moved = jaxloss.poly1_crossentropy(targets.T, logits.T, axis=0)
    np.testing.assert_allclose(moved, jaxloss.poly1_crossentropy(targets, logits), rtol=1e-6)


@pytest.mark.parametrize(
    "fn, cls, option, bad, error",
    [
        (jaxloss.multiclass_hinge, jaxloss.MulticlassHinge, "margin", float("inf"), ValueError),
        (jaxloss.multi_margin, jaxloss.MultiMargin, "p", 3, ValueError),
        (jaxloss.multi_margin, jaxloss.MultiMargin, "p", 1.0, TypeError),
        (jaxloss.multi_margin, jaxloss.MultiMargin, "class_weight", (1.0, -1.0, 1.0), ValueError),
        (jaxloss.poly1_crossentropy, jaxloss.Poly1Crossentropy, "epsilon", "2", TypeError),
    ],
    ids=["margin-inf", "p-3", "p-float", "negative-weight", "epsilon-str"],
)
def test_bad_options_raise_the_same_error_from_function_and_class(fn, cls, option, bad, error):
    y_true, y_pred = np.array([0, 1]), np.zeros((2, 3), np.float32)
    if fn is jaxloss.poly1_crossentropy:
        y_true = np.eye(3, dtype=np.float32)[:2]
    with pytest.raises(error, match=f"`{option}` must be"):
        fn(y_true, y_pred, **{option: bad})
    with pytest.raises(error, match=f"`{option}` must be"):
        cls(**{option: bad})


def test_wrong_label_shapes_and_dtypes_are_refused():
    with pytest.raises(ValueError, match="y_true"):
        jaxloss.multiclass_hinge(np.zeros((2, 2), int), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="integer"):
        jaxloss.multi_margin(np.zeros(2), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one value per class"):
        jaxloss.multi_margin(np.zeros(2, int), np.zeros((2, 3)), class_weight=(1.0, 2.0))
    with pytest.raises(ValueError, match="shape"):
        jaxloss.multilabel_margin(np.zeros((2, 2), int), np.zeros((2, 3)))
