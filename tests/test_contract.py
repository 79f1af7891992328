"""The contract every registered loss must meet; a loss added later is checked automatically.

For each registry entry: the function returns per-sample losses; the class with every reduction
agrees with a NumPy reduction of them; jit equals eager; vmap equals a loop; gradients are finite;
the config round-trips; the registry resolves its names; bad options and weights raise.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss._registry import registered
from tests._inputs import GENERATORS
from tests._reference import np_reduce

ENTRIES = {entry.cls.__name__: entry for entry in registered()}
REDUCTIONS = ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None]


def _inputs(entry, seed=0):
    if entry.inputs not in GENERATORS:
        pytest.fail(f"{entry.cls.__name__}: no input generator for kind {entry.inputs!r}")
    return GENERATORS[entry.inputs](jax.random.PRNGKey(seed))


def test_registry_is_not_empty_and_every_kind_has_a_generator():
    assert len(ENTRIES) >= 12
    assert {e.inputs for e in registered()} <= set(GENERATORS)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_function_returns_per_sample_losses_and_class_reduces_them(name):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    values = np.asarray(entry.function(y_true, y_pred), np.float64)
    assert values.ndim < jax.tree.leaves(y_pred)[0].ndim
    assert np.all(np.isfinite(values))
    unreduced = entry.cls(reduction="none")(y_true, y_pred)
    np.testing.assert_allclose(unreduced, values, rtol=1e-5, atol=1e-6)
    weight = None
    if values.ndim >= 1:
        weight = np.linspace(0.0, 2.0, values.shape[0])
    for reduction in REDUCTIONS:
        got = jax.jit(entry.cls(reduction=reduction))(y_true, y_pred, sample_weight=weight)
        expected = np_reduce(values, weight, reduction=reduction)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        if reduction not in ("none", None):
            assert got.shape == () and got.dtype == jnp.float32


@pytest.mark.parametrize("name", list(ENTRIES))
def test_jit_equals_eager_and_vmap_equals_loop(name):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    loss = entry.cls()
    np.testing.assert_allclose(jax.jit(loss)(y_true, y_pred), loss(y_true, y_pred), rtol=1e-5)
    fn = entry.function
    np.testing.assert_allclose(jax.jit(fn)(y_true, y_pred), fn(y_true, y_pred), rtol=1e-5)
    y_true2, y_pred2 = _inputs(entry, seed=1)
    stacked_true = jnp.stack([y_true, y_true2])
    stacked_pred = jax.tree.map(lambda a, b: jnp.stack([a, b]), y_pred, y_pred2)
    batched = jax.vmap(loss)(stacked_true, stacked_pred)
    looped = jnp.stack([loss(y_true, y_pred), loss(y_true2, y_pred2)])
    np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_gradients_are_finite(name):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    grads = jax.jit(jax.grad(lambda p: entry.cls()(y_true, p)))(y_pred)
    for grad, pred in zip(jax.tree.leaves(grads), jax.tree.leaves(y_pred), strict=True):
        assert grad.shape == pred.shape
        assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", list(ENTRIES))
def test_config_and_registry_round_trip(name):
    entry = ENTRIES[name]
    loss = entry.cls(reduction="sum", name="custom_name", dtype="bfloat16")
    assert hash(loss) == hash(entry.cls.from_config(loss.get_config()))
    assert entry.cls.from_config(loss.get_config()) == loss
    assert jaxloss.deserialize(jaxloss.serialize(loss)) == loss
    assert jaxloss.get(name) == entry.cls()
    assert jaxloss.get(entry.function.__name__) is entry.function
    for alias in entry.aliases:
        assert jaxloss.get(alias) is entry.function
        assert jaxloss.get(alias.upper()) is entry.function
    assert getattr(jaxloss, name) is entry.cls
    assert getattr(jaxloss, entry.function.__name__) is entry.function
    assert name in jaxloss.__all__ and entry.function.__name__ in jaxloss.__all__


@pytest.mark.parametrize("name", list(ENTRIES))
def test_bad_reduction_and_bad_sample_weight_raise(name):
    entry = ENTRIES[name]
    with pytest.raises(ValueError, match=f"{name}: `reduction` must be one of"):
        entry.cls(reduction="average")
    y_true, y_pred = _inputs(entry)
    values_shape = np.shape(entry.function(y_true, y_pred))
    if values_shape:
        bad = np.ones((values_shape[0] + 3,))
        with pytest.raises(ValueError, match="sample_weight"):
            entry.cls()(y_true, y_pred, sample_weight=bad)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_function_and_class_are_documented_with_examples(name):
    entry = ENTRIES[name]
    for obj in (entry.function, entry.cls):
        assert obj.__doc__ and ">>>" in obj.__doc__, f"{obj.__name__} needs a doctest example"
