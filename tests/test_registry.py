"""get / serialize / deserialize, aliases and the Keras 1/2 names."""

import json

import pytest

import jaxloss


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("mse", "mean_squared_error"),
        ("MSE", "mean_squared_error"),
        ("Mse", "mean_squared_error"),
        ("mae", "mean_absolute_error"),
        ("MAPE", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
        ("logcosh", "log_cosh"),
        ("cosine_proximity", "cosine_similarity"),
        ("huber_loss", "huber"),
        ("mean_squared_error", "mean_squared_error"),
        ("squared_hinge", "squared_hinge"),
    ],
)
def test_string_identifiers_and_aliases_give_the_function(identifier, expected):
    assert jaxloss.get(identifier) is getattr(jaxloss, expected)


def test_class_name_gives_an_instance_with_defaults():
    assert jaxloss.get("Huber") == jaxloss.Huber()
    assert jaxloss.get("huber") is jaxloss.huber
    assert jaxloss.get("MeanSquaredError") == jaxloss.MeanSquaredError()


def test_old_keras_names_are_attributes():
    assert jaxloss.logcosh is jaxloss.log_cosh
    assert jaxloss.mse is jaxloss.MSE is jaxloss.mean_squared_error
    assert jaxloss.cosine_proximity is jaxloss.cosine_similarity
    assert jaxloss.huber_loss is jaxloss.huber


def test_get_passes_callables_and_none_through():
    loss = jaxloss.Huber(delta=2.0)
    assert jaxloss.get(loss) is loss
    assert jaxloss.get(None) is None
    assert jaxloss.get(len) is len
    with pytest.raises(TypeError, match="a loss identifier must be None, a loss name"):
        jaxloss.get(3)


def test_unknown_identifier_suggests_close_names():
    with pytest.raises(
        ValueError, match=r"Unknown loss identifier 'mean_sqared_error'.*mean_squared"
    ):
        jaxloss.get("mean_sqared_error")
    with pytest.raises(ValueError, match=r"Did you mean .*Huber"):
        jaxloss.get("Hubre")


def test_serialize_deserialize_round_trip_through_json():
    loss = jaxloss.Huber(delta=0.3, reduction="sum", name="h")
    config = json.loads(json.dumps(jaxloss.serialize(loss)))
    assert config["class_name"] == "Huber"
    assert jaxloss.deserialize(config) == loss
    assert jaxloss.get(config) == loss
    assert jaxloss.serialize(jaxloss.mean_absolute_error) == "mean_absolute_error"
    assert jaxloss.deserialize("mean_absolute_error") is jaxloss.mean_absolute_error
    keras3_function_form = {"class_name": "function", "config": "mse"}
    assert jaxloss.deserialize(keras3_function_form) is jaxloss.mean_squared_error


def test_user_losses_resolve_through_custom_objects():
    class MyLoss(jaxloss.Loss):
        def call(self, y_true, y_pred):
            return (y_pred - y_true).sum(-1)

    config = jaxloss.serialize(MyLoss(reduction="sum"))
    assert jaxloss.deserialize(config, custom_objects={"MyLoss": MyLoss}) == MyLoss(reduction="sum")
    with pytest.raises(ValueError, match="Unknown loss identifier 'MyLoss'"):
        jaxloss.deserialize(config)


def test_serialize_refuses_unregistered_functions():
    with pytest.raises(ValueError, match="not a jaxloss Loss or a registered loss function"):
        jaxloss.serialize(lambda y_true, y_pred: y_pred)


def test_register_refuses_duplicate_names():
    from jaxloss._registry import register

    with pytest.raises(ValueError, match="already registered"):
        register(jaxloss.mean_squared_error, jaxloss.Huber)
    with pytest.raises(ValueError, match="already registered"):
        register(jaxloss.huber, jaxloss.MeanSquaredError)
