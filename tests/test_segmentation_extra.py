"""Smoothed binary Dice and generalized Dice: optax parity, float64 references, shard_map."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss._segmentation import binary_dice_loss, dice_loss, multiclass_generalized_dice_loss
from tests._batch_statistics import assert_sharded_equals_global
from tests.reference.segmentation_extra import np_binary_dice, np_generalized_dice


def _masks(seed, shape=(4, 5, 5, 3)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[-1], shape[:-1])
    labels[..., 0, 0] = 0
    onehot = np.eye(shape[-1], dtype=np.float32)[labels]
    logits = rng.normal(size=shape).astype(np.float32) * 2
    return onehot, logits


DICE_CASES = {
    "default": {},
    "tversky_weights": {"alpha": 0.3, "beta": 0.7, "class_weights": np.array([0.2, 1.0, 2.0])},
    "sum_no_background": {"reduction": "sum", "ignore_background": True, "smooth": 0.5},
    "none": {"reduction": "none"},
    "probabilities": {"apply_softmax": False},
    "axis": {"axis": (1,)},
}


@pytest.mark.parametrize("case", list(DICE_CASES))
def test_dice_loss_matches_optax(case):
    targets, logits = _masks(0)
    kwargs = dict(DICE_CASES[case])
    preds = logits
    if case == "probabilities":
        preds = np.asarray(jax.nn.softmax(logits, -1))
    expected = optax.losses.dice_loss(jnp.asarray(preds), jnp.asarray(targets), **kwargs)
    np.testing.assert_allclose(dice_loss(preds, targets, **kwargs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 6), (3, 4, 4), (3, 4, 4, 1)], ids=["flat", "hw", "hw1"])
def test_binary_dice_loss_matches_optax_and_the_per_image_keras_face(shape):
    rng = np.random.default_rng(1)
    targets = (rng.random(shape) < 0.4).astype(np.float32)
    logits = rng.normal(size=shape).astype(np.float32)
    expected = optax.losses.binary_dice_loss(jnp.asarray(logits), jnp.asarray(targets))
    np.testing.assert_allclose(binary_dice_loss(logits, targets), expected, rtol=1e-5, atol=1e-6)
    per_image = tuple(range(1, len(shape)))
    got = jaxloss.binary_dice(targets, logits, from_logits=True, axis=per_image)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ignore_background", [False, True], ids=["all", "no_background"])
@pytest.mark.parametrize("classes", [1, 3], ids=["sigmoid", "softmax"])
def test_generalized_dice_matches_optax_and_reference(ignore_background, classes):
    targets, logits = _masks(2, (4, 5, 5, classes))
    if classes == 1:
        targets = (np.random.default_rng(3).random(targets.shape) < 0.5).astype(np.float32)
    kwargs = {"ignore_background": ignore_background}
    expected = optax.losses.multiclass_generalized_dice_loss(
        jnp.asarray(logits), jnp.asarray(targets), **kwargs
    )
    got = multiclass_generalized_dice_loss(logits, targets, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    keras_face = jaxloss.generalized_dice(targets, logits, from_logits=True, **kwargs)
    np.testing.assert_allclose(keras_face, expected, rtol=1e-5, atol=1e-6)
    ref = np_generalized_dice(targets, logits, from_logits=True, **kwargs)
    np.testing.assert_allclose(keras_face, ref, rtol=1e-5, atol=1e-6)


def test_binary_dice_reference_smoothing_and_empty_masks():
    rng = np.random.default_rng(4)
    t = (rng.random((3, 4, 4)) < 0.3).astype(np.float32)
    p = rng.random((3, 4, 4)).astype(np.float32)
    for smooth, axis in [(1.0, None), (0.0, None), (0.25, (1, 2)), (2.0, 2)]:
        got = jaxloss.binary_dice(t, p, smooth=smooth, axis=axis)
        np.testing.assert_allclose(got, np_binary_dice(t, p, smooth, axis=axis), rtol=1e-5)
    empty = np.zeros((2, 3))
    for smooth in (0.0, 1.0):
        value, grad = jax.value_and_grad(lambda q, s=smooth: jaxloss.binary_dice(empty, q, s))(
            jnp.zeros((2, 3))
        )
        assert float(value) == 0.0 and np.all(np.isfinite(grad))


def test_sample_weight_weighs_images_in_the_batch_statistics():
    targets, probs = _masks(5, (4, 3, 3, 3))
    probs = np.asarray(jax.nn.softmax(probs, -1))
    sw = np.array([1.0, 0.0, 2.0, 0.5], np.float32)
    got = jaxloss.GeneralizedDice()(targets, probs, sample_weight=sw)
    np.testing.assert_allclose(
        got, np_generalized_dice(targets, probs, sample_weight=sw), rtol=1e-5
    )
    t2 = targets[..., :1]
    p2 = probs[..., :1]
    got = jaxloss.BinaryDice(smooth=0.5)(t2, p2, sample_weight=sw)
    w = sw[:, None, None, None]
    i, ps, ts = (w * t2 * p2).sum(), (w * p2).sum(), (w * t2).sum()
    np.testing.assert_allclose(got, 1 - (i + 0.5) / ((ps + ts) / 2 + 0.5), rtol=1e-5)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_generalized_dice_under_shard_map_equals_global_batch(weighted):
    targets, logits = _masks(6, (16, 4, 4, 3))
    # uneven class frequencies per shard, so per-device weights differ from the global ones
    targets[:8] = np.eye(3, dtype=np.float32)[np.zeros((8, 4, 4), int)]
    sw = np.linspace(0.5, 2.0, 16).astype(np.float32) if weighted else None

    def make(**kw):
        return jaxloss.GeneralizedDice(from_logits=True, **kw)

    assert_sharded_equals_global(make, jnp.asarray(targets), jnp.asarray(logits), sw)


def test_binary_dice_under_shard_map_equals_global_batch():
    rng = np.random.default_rng(7)
    t = jnp.asarray(rng.random((16, 4, 4, 1)) < np.linspace(0.05, 0.9, 16)[:, None, None, None])
    p = jnp.asarray(rng.random((16, 4, 4, 1)), jnp.float32)

    def make(**kw):
        return jaxloss.BinaryDice(smooth=0.1, **kw)

    assert_sharded_equals_global(make, t.astype(jnp.float32), p)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="dice_loss: `predictions` and `targets` must have"):
        dice_loss(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="dice_loss: `reduction` must be"):
        dice_loss(np.zeros((2, 3)), np.zeros((2, 3)), reduction="avg")
    with pytest.raises(ValueError, match="generalized_dice: `y_true` must be one-hot"):
        jaxloss.generalized_dice(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="generalized_dice: `smooth` must be a float >= 0"):
        jaxloss.generalized_dice(np.zeros((2, 3)), np.zeros((2, 3)), smooth=-1.0)
    with pytest.raises(ValueError, match="GeneralizedDice: `smooth` must be a float >= 0"):
        jaxloss.GeneralizedDice(smooth=-1.0)
    with pytest.raises(TypeError, match="BinaryDice: `from_logits` must be True or False"):
        jaxloss.BinaryDice(from_logits="yes")
    with pytest.raises(ValueError, match="binary_dice: `axis` must name axes"):
        jaxloss.binary_dice(np.zeros((2, 3)), np.zeros((2, 3)), axis=2)
