"""jaxloss losses inside Keras 3 (JAX backend): compile, fit, sample weights, save and load."""

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover
    pytest.skip("Keras runs on another backend", allow_module_level=True)

import jaxloss  # noqa: E402
import jaxloss.keras  # noqa: E402


def _model(out, activation=None, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(out, activation=activation)])
    return model


def _fit(loss, x, y, sample_weight=None, out=3):
    model = _model(out)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    history = model.fit(x, y, sample_weight=sample_weight, epochs=3, batch_size=8, verbose=0)
    return model, np.asarray(history.history["loss"])


CASES = {
    "mse": (lambda: jaxloss.MeanSquaredError(), lambda: keras.losses.MeanSquaredError(), "real"),
    "huber": (lambda: jaxloss.Huber(0.5), lambda: keras.losses.Huber(0.5), "real"),
    "sparse_ce": (
        lambda: jaxloss.SparseCategoricalCrossentropy(from_logits=True),
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "int",
    ),
    "cce": (
        lambda: jaxloss.CategoricalCrossentropy(from_logits=True),
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
        "onehot",
    ),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("case", list(CASES))
def test_fit_gives_the_keras_loss_curve(case, weighted):
    ours, theirs, kind = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 32)
    y = {
        "real": rng.normal(size=(32, 3)).astype(np.float32),
        "int": labels,
        "onehot": np.eye(3, dtype=np.float32)[labels],
    }[kind]
    sw = rng.random(32).astype(np.float32) if weighted else None
    _, ours_curve = _fit(jaxloss.keras.KerasLoss(ours()), x, y, sw)
    _, keras_curve = _fit(theirs(), x, y, sw)
    np.testing.assert_allclose(ours_curve, keras_curve, rtol=2e-5)


def test_save_and_load_without_custom_objects(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    loss = jaxloss.keras.KerasLoss(
        jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2)
    )
    model, _ = _fit(loss, x, y)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.loss.jaxloss == loss.jaxloss
    before = model.evaluate(x, y, verbose=0)
    after = loaded.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(after, before, rtol=1e-6)
    # ignore_class masks its tokens out of the mean, as in Keras.
    logits = np.asarray(model.predict(x, verbose=0), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = y != 2
    expected = -logp[np.arange(16), y][valid].mean()
    np.testing.assert_allclose(before, expected, rtol=1e-5)


def test_function_handles_and_names_are_accepted():
    assert jaxloss.keras.KerasLoss("mse").jaxloss == jaxloss.LossFunctionWrapper(
        jaxloss.mean_squared_error
    )
    assert jaxloss.keras.KerasLoss("Huber").jaxloss == jaxloss.Huber()
    with pytest.raises(TypeError, match="KerasLoss: `loss` must be"):
        jaxloss.keras.KerasLoss(3)
