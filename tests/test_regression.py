"""Regression and hinge families against float64 NumPy formulas and against Keras 3."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxloss
from tests.reference import keras_losses as ref

RNG = np.random.default_rng(1)

# (jaxloss function, jaxloss class, keras class, numpy reference, options, input kind)
CASES = {
    "mse": (
        jaxloss.mean_squared_error,
        jaxloss.MeanSquaredError,
        "MeanSquaredError",
        ref.np_mse,
        {},
    ),
    "mae": (
        jaxloss.mean_absolute_error,
        jaxloss.MeanAbsoluteError,
        "MeanAbsoluteError",
        ref.np_mae,
        {},
    ),
    "mape": (
        jaxloss.mean_absolute_percentage_error,
        jaxloss.MeanAbsolutePercentageError,
        "MeanAbsolutePercentageError",
        ref.np_mape,
        {},
    ),
    "msle": (
        jaxloss.mean_squared_logarithmic_error,
        jaxloss.MeanSquaredLogarithmicError,
        "MeanSquaredLogarithmicError",
        ref.np_msle,
        {},
    ),
    "cosine": (
        jaxloss.cosine_similarity,
        jaxloss.CosineSimilarity,
        "CosineSimilarity",
        ref.np_cosine,
        {},
    ),
    "cosine_axis0": (
        jaxloss.cosine_similarity,
        jaxloss.CosineSimilarity,
        "CosineSimilarity",
        ref.np_cosine,
        {"axis": 0},
    ),
    "huber": (jaxloss.huber, jaxloss.Huber, "Huber", ref.np_huber, {}),
    "huber_delta": (jaxloss.huber, jaxloss.Huber, "Huber", ref.np_huber, {"delta": 0.3}),
    "log_cosh": (jaxloss.log_cosh, jaxloss.LogCosh, "LogCosh", ref.np_log_cosh, {}),
    "hinge": (jaxloss.hinge, jaxloss.Hinge, "Hinge", ref.np_hinge, {}),
    "squared_hinge": (
        jaxloss.squared_hinge,
        jaxloss.SquaredHinge,
        "SquaredHinge",
        ref.np_squared_hinge,
        {},
    ),
    "categorical_hinge": (
        jaxloss.categorical_hinge,
        jaxloss.CategoricalHinge,
        "CategoricalHinge",
        ref.np_categorical_hinge,
        {},
    ),
}
SEGMENTATION = {
    "dice": (jaxloss.dice, jaxloss.Dice, "Dice", ref.np_dice, {"axis": (1, 2, 3)}),
    "dice_all": (jaxloss.dice, jaxloss.Dice, "Dice", ref.np_dice, {}),
    "tversky": (
        jaxloss.tversky,
        jaxloss.Tversky,
        "Tversky",
        ref.np_tversky,
        {"alpha": 0.2, "beta": 0.8, "axis": (1, 2, 3)},
    ),
    "tversky_all": (jaxloss.tversky, jaxloss.Tversky, "Tversky", ref.np_tversky, {"alpha": 0.7}),
}
REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none"]


def _inputs(name, shape=(4, 5)):
    if name in ("hinge", "squared_hinge"):
        return RNG.integers(0, 2, shape).astype(np.float32), RNG.normal(size=shape).astype(
            np.float32
        )
    if name == "categorical_hinge":
        y_true = np.eye(shape[-1], dtype=np.float32)[RNG.integers(0, shape[-1], shape[:-1])]
        return y_true, RNG.normal(size=shape).astype(np.float32)
    if name in ("mape", "msle"):
        return (
            RNG.uniform(0.5, 3, shape).astype(np.float32),
            RNG.uniform(0, 3, shape).astype(np.float32),
        )
    return RNG.normal(size=shape).astype(np.float32), RNG.normal(size=shape).astype(np.float32)


def _segmentation_inputs():
    y_true = RNG.integers(0, 2, (3, 4, 4, 1)).astype(np.float32)
    return y_true, RNG.uniform(0, 1, (3, 4, 4, 1)).astype(np.float32)


def _keras_class(keras_name, options):
    kwargs = dict(options)
    if keras_name in ("Dice", "Tversky") and "axis" not in kwargs:
        kwargs["axis"] = None
    return getattr(keras.losses, keras_name), kwargs


@pytest.mark.parametrize("name", list(CASES))
def test_function_matches_float64_numpy_formula(name):
    fn, _, _, np_fn, options = CASES[name]
    y_true, y_pred = _inputs(name, (3, 4, 5))
    np.testing.assert_allclose(
        fn(y_true, y_pred, **options), np_fn(y_true, y_pred, **options), rtol=2e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", list(SEGMENTATION))
def test_segmentation_function_matches_float64_numpy_formula(name):
    fn, _, _, np_fn, options = SEGMENTATION[name]
    y_true, y_pred = _segmentation_inputs()
    np.testing.assert_allclose(
        fn(y_true, y_pred, **options), np_fn(y_true, y_pred, **options), rtol=2e-5, atol=1e-6
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(CASES))
def test_class_matches_keras_for_every_reduction_and_weight_form(name, reduction):
    _, cls, keras_name, _, options = CASES[name]
    keras_cls, keras_kwargs = _keras_class(keras_name, options)
    y_true, y_pred = _inputs(name)
    n = y_true.shape[1] if options.get("axis") == 0 else y_true.shape[0]
    for sw in (None, 0.5, RNG.uniform(0, 2, (n,)).astype(np.float32), np.zeros(n, np.float32)):
        ours = cls(reduction=reduction, **options)(y_true, y_pred, sample_weight=sw)
        theirs = keras_cls(reduction=reduction, **keras_kwargs)(y_true, y_pred, sample_weight=sw)
        if reduction == "mean_with_sample_weight" and sw is not None and np.ndim(sw) == 0:
            # Documented departure: Keras divides by the scalar itself rather than by the weights
            # as broadcast over the n per-sample losses, so its value is n times jaxloss'.
            np.testing.assert_allclose(ours, np.asarray(theirs) / n, rtol=2e-5)
            continue
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mse", "huber", "log_cosh", "hinge"])
def test_timestep_weights_match_keras(name):
    _, cls, keras_name, _, _ = CASES[name]
    y_true, y_pred = _inputs(name, (3, 4, 5))
    sw = RNG.uniform(0, 1, (3, 4)).astype(np.float32)
    for reduction in REDUCTIONS:
        ours = cls(reduction=reduction)(y_true, y_pred, sample_weight=sw)
        theirs = getattr(keras.losses, keras_name)(reduction=reduction)(y_true, y_pred, sw)
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(SEGMENTATION))
def test_segmentation_class_matches_keras(name, reduction):
    _, cls, keras_name, _, options = SEGMENTATION[name]
    keras_cls, keras_kwargs = _keras_class(keras_name, options)
    y_true, y_pred = _segmentation_inputs()
    sw = np.array([1.0, 0.0, 2.0], np.float32) if "axis" in options else None
    ours = cls(reduction=reduction, **options)(y_true, y_pred, sample_weight=sw)
    theirs = keras_cls(reduction=reduction, **keras_kwargs)(y_true, y_pred, sample_weight=sw)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=2e-5, atol=1e-6)


def test_tversky_alpha_weights_missed_targets_as_keras_does():
    y_true = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)
    y_pred = np.array([[0.4, 0.0, 0.0, 0.9]], np.float32)
    theirs = keras.losses.Tversky(alpha=0.3, beta=0.7, axis=1, reduction=None)(y_true, y_pred)
    ours = jaxloss.tversky(y_true, y_pred, alpha=0.3, beta=0.7, axis=1)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)
    np.testing.assert_allclose(ours, 1 - 0.4 / (0.4 + 0.3 * 1.6 + 0.7 * 0.9), rtol=1e-6)


def _finite_grads(fn, y_true, y_pred):
    grads = jax.jit(jax.grad(lambda p: jnp.sum(fn(y_true, p))))(jnp.asarray(y_pred, jnp.float32))
    assert np.all(np.isfinite(grads)), grads
    return grads


def test_edge_inputs_give_finite_values_and_gradients():
    zeros = np.zeros((2, 3), np.float32)
    ones = np.ones((2, 3), np.float32)
    # Cosine of zero vectors: 0, not NaN.
    np.testing.assert_array_equal(jaxloss.cosine_similarity(zeros, ones), [0.0, 0.0])
    _finite_grads(jaxloss.cosine_similarity, ones, zeros)
    _finite_grads(jaxloss.cosine_similarity, zeros, zeros)
    # MAPE with y_true == 0.
    assert np.all(np.isfinite(jaxloss.mean_absolute_percentage_error(zeros, ones)))
    _finite_grads(jaxloss.mean_absolute_percentage_error, zeros, ones)
    # MSLE with negative inputs.
    _finite_grads(jaxloss.mean_squared_logarithmic_error, -ones, -2 * ones)
    # Log-cosh with huge errors: exact and finite.
    huge = np.array([[1e4, -1e4, 3e4]], np.float32)
    np.testing.assert_allclose(
        jaxloss.log_cosh(np.zeros_like(huge), huge), ref.np_log_cosh(0.0, huge), rtol=1e-6
    )
    grads = _finite_grads(jaxloss.log_cosh, np.zeros_like(huge), huge)
    np.testing.assert_allclose(grads, np.sign(huge) / 3, rtol=1e-6)
    # Huber with huge errors: gradient bounded by delta / d.
    grads = _finite_grads(lambda t, p: jaxloss.huber(t, p, delta=0.5), np.zeros_like(huge), huge)
    np.testing.assert_allclose(grads, 0.5 * np.sign(huge) / 3, rtol=1e-6)
    # Dice and Tversky on empty masks.
    assert np.isfinite(float(jaxloss.dice(zeros, zeros)))
    _finite_grads(jaxloss.dice, zeros, zeros)
    _finite_grads(jaxloss.tversky, zeros, zeros)


@pytest.mark.parametrize("fn", [f for f, *_ in CASES.values()])
def test_vmap_equals_a_python_loop(fn):
    y_true, y_pred = _inputs("mse", (3, 4, 5))
    if fn in (jaxloss.mean_absolute_percentage_error, jaxloss.mean_squared_logarithmic_error):
        y_true, y_pred = np.abs(y_true), np.abs(y_pred)
    batched = jax.vmap(fn)(y_true, y_pred)
    looped = np.stack([fn(t, p) for t, p in zip(y_true, y_pred, strict=True)])
    np.testing.assert_allclose(batched, looped, rtol=1e-6)


def test_mismatched_shapes_raise_naming_the_loss_and_both_shapes():
    with pytest.raises(ValueError, match=r"mean_squared_error: .*y_true \(2, 3\).*y_pred \(2, 4\)"):
        jaxloss.mean_squared_error(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"huber: .*\(3, 3\)"):
        jaxloss.Huber()(np.zeros((3, 3)), np.zeros((3,)))


def test_keras_rank_rule_lines_up_batch_with_batch_by_one():
    y_true = np.array([1.0, 2.0, 3.0], np.float32)
    y_pred = np.array([[1.5], [2.0], [2.0]], np.float32)
    np.testing.assert_allclose(jaxloss.mean_squared_error(y_true, y_pred), [0.25, 0.0, 1.0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: jaxloss.Huber(delta=0.0), r"Huber: `delta` must be a float > 0; got 0.0"),
        (lambda: jaxloss.Huber(delta=-1.0), r"`delta` must be a float > 0"),
        (lambda: jaxloss.Tversky(alpha=-0.1), r"Tversky: `alpha` must be a float >= 0"),
        (lambda: jaxloss.Tversky(beta=-2), r"`beta` must be a float >= 0"),
        (lambda: jaxloss.Dice(axis="x"), r"Dice: `axis` must be None, an int or a non-empty tuple"),
        (lambda: jaxloss.CosineSimilarity(axis=1.5), r"CosineSimilarity: `axis` must be an int"),
        (lambda: jaxloss.huber([1.0], [2.0], delta=0), r"huber: `delta` must be a float > 0"),
        (
            lambda: jaxloss.cosine_similarity(np.ones((2, 3)), np.ones((2, 3)), axis=2),
            "out of range",
        ),
    ],
)
def test_bad_options_raise_naming_loss_option_and_value(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
