"""The Loss base class: frozen dataclasses, user subclasses, dtype policy, config, jit caching."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss


class MeanSquaredError(jaxloss.Loss):
    """The seed example: a user subclass that only overrides `call`."""

    def call(self, y_true, y_pred):
        return jnp.mean(jnp.square(y_pred - y_true), axis=-1)


Y_TRUE = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]], np.float32)
Y_PRED = np.array([[1.0, 1.0], [1.0, 0.0], [0.5, 0.0]], np.float32)


def test_user_subclass_gets_reductions_and_sample_weights():
    per_sample = np.mean((Y_PRED.astype(np.float64) - Y_TRUE) ** 2, axis=-1)
    sw = np.array([0.2, 0.0, 3.0])
    assert MeanSquaredError().name == "mean_squared_error"
    np.testing.assert_allclose(MeanSquaredError()(Y_TRUE, Y_PRED), per_sample.mean(), rtol=1e-6)
    np.testing.assert_allclose(
        MeanSquaredError(reduction="sum")(Y_TRUE, Y_PRED, sw), (per_sample * sw).sum(), rtol=1e-6
    )
    np.testing.assert_allclose(
        MeanSquaredError(reduction="none")(Y_TRUE, Y_PRED, sw), per_sample * sw, rtol=1e-6
    )
    np.testing.assert_allclose(
        MeanSquaredError(reduction="mean_with_sample_weight")(Y_TRUE, Y_PRED, sw),
        (per_sample * sw).sum() / sw.sum(),
        rtol=1e-6,
    )


def test_user_subclass_with_options_and_mask():
    class ScaledAbs(jaxloss.Loss):
        scale: float = 1.0

        def call(self, y_true, y_pred):
            return self.scale * jnp.abs(y_pred - y_true)

        def mask(self, y_true, y_pred, values):
            return y_true >= 0

    y_true = np.array([1.0, -1.0, 2.0, -1.0])
    y_pred = np.array([0.0, 5.0, 0.0, 7.0])
    loss = ScaledAbs(scale=2.0)
    np.testing.assert_allclose(loss(y_true, y_pred), (2.0 * 1 + 2.0 * 2) / 2, rtol=1e-6)
    assert loss.get_config()["scale"] == 2.0
    assert ScaledAbs.from_config(loss.get_config()) == loss


def test_loss_without_call_raises_not_implemented():
    with pytest.raises(NotImplementedError, match="call"):
        jaxloss.Loss()(Y_TRUE, Y_PRED)


def test_losses_are_frozen_hashable_and_equal_by_value():
    a, b = jaxloss.Huber(delta=2.0), jaxloss.Huber(delta=2.0)
    assert a == b and hash(a) == hash(b)
    assert a != jaxloss.Huber(delta=3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.delta = 5.0
    assert jaxloss.Huber(2.0) == jaxloss.Huber(delta=2.0)  # Keras' positional order
    with pytest.raises(TypeError, match="multiple values"):
        jaxloss.Huber(2.0, delta=1.0)


def test_default_names_follow_keras():
    assert jaxloss.Huber().name == "huber_loss"
    assert jaxloss.MeanSquaredLogarithmicError().name == "mean_squared_logarithmic_error"
    assert jaxloss.LogCosh().name == "log_cosh"
    assert jaxloss.CategoricalHinge().name == "categorical_hinge"
    assert jaxloss.Huber(name="robust").name == "robust"


def test_loss_as_static_argument_compiles_once():
    traces = []

    def step(loss, y_true, y_pred):
        traces.append(1)
        return loss(y_true, y_pred)

    jitted = jax.jit(step, static_argnums=0)
    for _ in range(3):
        jitted(jaxloss.Huber(delta=0.5), Y_TRUE, Y_PRED)
    assert len(traces) == 1
    jitted(jaxloss.Huber(delta=0.7), Y_TRUE, Y_PRED)
    assert len(traces) == 2


def test_default_dtype_upcasts_bfloat16_and_returns_gradient_in_input_dtype():
    y_true = jnp.asarray(Y_TRUE, jnp.bfloat16)
    y_pred = jnp.asarray(Y_PRED, jnp.bfloat16) + jnp.bfloat16(1e-2)
    loss = jaxloss.MeanSquaredError()
    value, grad = jax.value_and_grad(lambda p: loss(y_true, p))(y_pred)
    assert value.dtype == jnp.float32
    assert grad.dtype == jnp.bfloat16
    expected = np.mean((np.float64(y_pred.astype(jnp.float32)) - np.float64(Y_TRUE)) ** 2)
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "compute"),
    [("bfloat16", jnp.bfloat16), ("mixed_bfloat16", jnp.bfloat16), ("float16", jnp.float16)],
)
def test_dtype_and_keras_policy_names_set_the_compute_dtype(dtype, compute):
    loss = jaxloss.MeanAbsoluteError(dtype=dtype)
    assert loss.compute_dtype == compute
    assert loss(Y_TRUE, Y_PRED).dtype == compute
    assert jaxloss.MeanAbsoluteError(dtype=jnp.bfloat16).dtype == "bfloat16"


def test_integer_labels_stay_integers_under_a_float_dtype():
    seen = {}

    class Probe(jaxloss.Loss):
        def call(self, y_true, y_pred):
            seen["dtype"] = y_true.dtype
            return jnp.sum(y_pred, axis=-1)

    Probe(dtype="bfloat16")(np.array([1, 2], np.int32), np.ones((2, 3)))
    assert seen["dtype"] == jnp.int32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reduction": "average"}, "`reduction` must be one of"),
        ({"dtype": "int32"}, "`dtype` must be None, a floating dtype"),
        ({"axis_name": 3}, "`axis_name` must be None"),
        ({"name": 3}, "`name` must be a string"),
    ],
)
def test_bad_base_options_raise_naming_the_option(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        jaxloss.MeanSquaredError(**kwargs)


def test_get_config_round_trips_every_argument():
    loss = jaxloss.Tversky(
        alpha=0.2, beta=0.8, axis=[1, 2], reduction="sum", name="t", dtype="bfloat16",
        axis_name=["data", "model"],
    )  # fmt: skip
    config = loss.get_config()
    assert config == {
        "name": "t",
        "reduction": "sum",
        "dtype": "bfloat16",
        "axis_name": ("data", "model"),
        "alpha": 0.2,
        "beta": 0.8,
        "axis": (1, 2),
    }
    assert jaxloss.Tversky.from_config(config) == loss
    assert jaxloss.Huber.from_config(jaxloss.Huber(delta=3.0).get_config()).delta == 3.0


def test_loss_function_wrapper_forwards_kwargs_and_round_trips():
    def scaled_l1(y_true, y_pred, scale=1.0):
        return scale * jnp.sum(jnp.abs(y_pred - y_true), axis=-1)

    loss = jaxloss.LossFunctionWrapper(scaled_l1, scale=0.5, reduction="sum")
    assert loss.name == "scaled_l1"
    expected = 0.5 * np.abs(Y_PRED.astype(np.float64) - Y_TRUE).sum()
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED), expected, rtol=1e-6)
    assert hash(loss) == hash(jaxloss.LossFunctionWrapper(scaled_l1, scale=0.5, reduction="sum"))
    custom = {"scaled_l1": scaled_l1}
    assert jaxloss.LossFunctionWrapper.from_config(loss.get_config(), custom) == loss
    text = json.dumps(jaxloss.serialize(loss))
    assert jaxloss.deserialize(json.loads(text), custom_objects=custom) == loss
    with pytest.raises(ValueError, match="Unknown loss identifier 'scaled_l1'"):
        jaxloss.deserialize(json.loads(text))

    by_name = jaxloss.LossFunctionWrapper("mse", reduction="none")
    assert by_name.fn is jaxloss.mean_squared_error
    assert by_name.get_config()["fn"] == "mean_squared_error"
    with pytest.raises(TypeError, match="`fn` must be callable"):
        jaxloss.LossFunctionWrapper(3)
