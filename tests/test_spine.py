"""The Loss base as users meet it: subclasses, jit, registration, statistics, partial sums.

References are independent: float64 NumPy formulas, the global batch for sharded runs, the
full batch for accumulated micro-batches.
"""

import dataclasses
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

import jaxloss
from jaxloss._registry import registered

# --- user subclasses ------------------------------------------------------------------------


class Focal(jaxloss.Loss):
    """A user loss with one annotated option and no decorator."""

    gamma: float = 2.0

    def call(self, y_true, y_pred):
        p = jnp.clip(y_pred, 1e-7, 1 - 1e-7)
        return jnp.mean(-y_true * (1 - p) ** self.gamma * jnp.log(p), axis=-1)


class KerasStyle(jaxloss.Loss):
    """The Keras habit: options set as attributes in __init__."""

    def __init__(self, g=1.0, **kwargs):
        super().__init__(**kwargs)
        self.g = g

    def call(self, y_true, y_pred):
        return jnp.mean(self.g * jnp.square(y_pred - y_true), axis=-1)


def test_annotated_field_subclass_round_trips_and_compares_by_value():
    a = Focal(gamma=3.0, reduction="sum")
    assert a == Focal(gamma=3.0, reduction="sum") and hash(a) == hash(Focal(3.0, "sum"))
    assert a != Focal(gamma=2.0, reduction="sum")
    assert Focal.from_config(json.loads(json.dumps(a.get_config()))) == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.gamma = 1.0


def test_keras_style_attributes_take_part_in_equality_hash_config_and_jit():
    a, b = KerasStyle(g=1.0), KerasStyle(g=4.0)
    assert a != b and hash(a) != hash(b)
    assert KerasStyle.from_config(a.get_config()) == a
    y_true, y_pred = jnp.zeros((2, 3)), jnp.array([[1.0, 0.5, 2.0], [0.0, 1.5, 1.0]])
    expected = np.mean(np.square(np.asarray(y_pred, np.float64)), axis=-1).mean()
    # Before: the second call reused the first compilation (1.5 instead of 5.06).
    jitted = jax.jit(lambda loss, t, p: loss(t, p), static_argnums=0)
    np.testing.assert_allclose(jitted(a, y_true, y_pred), expected, rtol=1e-6)
    np.testing.assert_allclose(jitted(b, y_true, y_pred), 4 * expected, rtol=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.g = 3.0


def test_unhashable_attribute_is_refused_at_construction():
    class WithArray(jaxloss.Loss):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.weights = np.ones(3)

        def call(self, y_true, y_pred):
            return jnp.mean(y_pred - y_true, axis=-1)

    with pytest.raises(TypeError, match="WithArray: the attribute `weights` set in `__init__`"):
        WithArray()


def test_keras_positional_order():
    assert jaxloss.BinaryCrossentropy(True) == jaxloss.BinaryCrossentropy(from_logits=True)
    assert jaxloss.Huber(2.0) == jaxloss.Huber(delta=2.0)
    assert jaxloss.Huber(2.0, "sum").reduction == "sum"
    assert jaxloss.MeanSquaredError("sum", "m").name == "m"
    with pytest.raises(TypeError, match="at most"):
        jaxloss.Huber(1.0, "sum", "n", None, 5)


# --- jit transparency -----------------------------------------------------------------------


def test_loss_objects_pass_through_jit_vmap_and_scan_as_ordinary_arguments():
    traces = []

    @jax.jit
    def step(loss, t, p):
        traces.append(loss)
        return loss(t, p)

    t, p = jnp.zeros((4, 3)), jnp.ones((4, 3)) * 3.0
    np.testing.assert_allclose(step(jaxloss.Huber(1.0), t, p), 2.5)
    np.testing.assert_allclose(step(jaxloss.Huber(1.0), t, p), 2.5)
    assert len(traces) == 1  # an equal loss does not retrace
    np.testing.assert_allclose(step(jaxloss.Huber(2.0), t, p), 4.0)
    assert len(traces) == 2  # another option value does
    batched = jax.vmap(lambda loss, t, p: loss(t, p), in_axes=(None, 0, 0))(
        jaxloss.MeanSquaredError(), jnp.zeros((2, 4, 3)), jnp.ones((2, 4, 3))
    )
    np.testing.assert_allclose(batched, [1.0, 1.0])

    def body(loss, xs):
        return loss, loss(xs[0], xs[1])

    xs = (jnp.zeros((3, 2, 2)), 3.0 * jnp.ones((3, 2, 2)))
    _, values = jax.lax.scan(body, jaxloss.MeanAbsoluteError(), xs)
    np.testing.assert_allclose(values, [3.0, 3.0, 3.0])


def test_loss_on_flax_nnx_and_equinox_modules():
    nnx = pytest.importorskip("flax.nnx")
    eqx = pytest.importorskip("equinox")

    class Model(nnx.Module):
        def __init__(self, loss):
            self.w = nnx.Param(jnp.ones((3,)))
            self.loss = loss

    model = Model(jaxloss.Huber(delta=0.5))

    @nnx.jit
    def nnx_loss(model, t):
        return model.loss(t, model.w[None, :])

    np.testing.assert_allclose(nnx_loss(model, jnp.zeros((1, 3))), 0.5 * (1 - 0.25))

    class EqxModel(eqx.Module):
        w: jax.Array
        loss: jaxloss.Loss

    emodel = EqxModel(jnp.ones((3,)), jaxloss.MeanSquaredError())
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: m.loss(jnp.zeros((1, 3)), m.w[None, :])))(
        emodel
    )
    np.testing.assert_allclose(grads.w, 2.0 / 3.0 * np.ones(3), rtol=1e-6)


# --- registration ---------------------------------------------------------------------------


def test_every_default_name_resolves_and_module_reload_replaces():
    for entry in registered():
        assert jaxloss.get(entry.cls().name) is not None, entry.cls.__name__
    # In a child process: a reload replaces classes that other test modules hold.
    script = (
        "import importlib, jaxloss\n"
        "from jaxloss._registry import registered\n"
        "module = importlib.import_module('jaxloss._regression')\n"
        "before = len(registered())\n"
        "reloaded = importlib.reload(module)\n"
        "assert len(registered()) == before, (len(registered()), before)\n"
        "assert jaxloss.get('Huber') == reloaded.Huber()\n"
        "assert jaxloss.get('huber') is reloaded.huber\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


def test_registry_imports_nothing_from_jaxloss():
    import ast
    import inspect

    import jaxloss._registry as registry

    tree = ast.parse(inspect.getsource(registry))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in imported if m.startswith("jaxloss")]


# --- batch statistics under shard_map --------------------------------------------------------


def _np_dice(t, p):
    t, p = np.float64(t), np.float64(p)
    return 1 - 2 * (t * p).sum() / (t.sum() + p.sum() + 1e-7)


def test_dice_and_tversky_batch_statistics_are_exact_under_shard_map():
    rng = np.random.default_rng(0)
    t = (rng.random((8, 4, 4, 1)) > 0.6).astype(np.float32)
    t[:4] = 0.0  # devices holding only background: the local ratios would differ a lot
    p = rng.random((8, 4, 4, 1)).astype(np.float32)
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    for loss_cls in (jaxloss.Dice, jaxloss.Tversky):
        sharded_loss = loss_cls(axis_name="data")

        def local(t, p, loss=sharded_loss):
            return jax.value_and_grad(lambda q: loss(t, q))(p)

        fn = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(PartitionSpec("data"), PartitionSpec("data")),
            out_specs=(PartitionSpec(), PartitionSpec("data")),
        )
        value, grad = jax.jit(fn)(t, p)
        g_value, g_grad = jax.value_and_grad(lambda q, c=loss_cls: c()(t, q))(p)
        np.testing.assert_allclose(value, g_value, rtol=1e-6)
        np.testing.assert_allclose(grad, g_grad, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(jaxloss.Dice()(t, p), _np_dice(t, p), rtol=1e-6)


def test_batch_statistic_sample_weight_weights_each_samples_sums():
    rng = np.random.default_rng(1)
    t = (rng.random((4, 3)) > 0.5).astype(np.float32)
    p = rng.random((4, 3)).astype(np.float32)
    w = np.array([1.0, 0.0, 2.0, 0.5])
    tw, pw = t * w[:, None], p * w[:, None]
    expected = 1 - 2 * (tw * p).sum() / (tw.sum() + pw.sum() + 1e-7)
    np.testing.assert_allclose(jaxloss.Dice()(t, p, sample_weight=w), expected, rtol=1e-6)


# --- exact gradient accumulation ------------------------------------------------------------


def _micro_batches():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, (4, 6)).astype(np.int32)
    labels[0, 1:] = -1  # uneven valid counts: 1, 6, 0, 3
    labels[2, :] = -1
    labels[3, 3:] = -1
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    return labels, x


def _model(w, x):
    return x @ w


def test_partial_sums_accumulate_to_the_full_batch_through_scan():
    labels, x = _micro_batches()
    w = jnp.asarray(np.random.default_rng(3).normal(size=(3, 5)), jnp.float32)
    loss = jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)

    def micro(w, batch):
        sums = loss.partial(batch[0], _model(w, batch[1]))
        return sums.total, sums

    def accumulate(carry, batch):
        grads, sums = jax.grad(micro, has_aux=True)(w, batch)
        return jax.tree.map(jnp.add, carry, (grads, sums)), None

    zero = (jnp.zeros_like(w), loss.partial(labels[0], _model(w, x[0])))
    zero = jax.tree.map(jnp.zeros_like, zero)
    (grads, sums), _ = jax.lax.scan(accumulate, zero, (labels, x))
    full_value, full_grads = jax.value_and_grad(
        lambda w: loss(labels.reshape(-1), _model(w, x.reshape(-1, 3)))
    )(w)
    np.testing.assert_allclose(sums.value, full_value, rtol=1e-6)
    np.testing.assert_allclose(grads / sums.count, full_grads, rtol=1e-5, atol=1e-7)
    # Averaging the micro-batch means is not the full-batch loss here.
    means = [float(loss(labels[i], _model(w, x[i]))) for i in range(4)]
    assert abs(np.mean(means) - float(full_value)) > 1e-2


def test_partial_sums_with_optax_microbatch_sum_accumulation():
    optax = pytest.importorskip("optax")
    labels, x = _micro_batches()
    w = jnp.asarray(np.random.default_rng(4).normal(size=(3, 5)), jnp.float32)
    loss = jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)

    def per_micro(w, labels, x):
        sums = loss.partial(labels, _model(w, x))
        grads = jax.grad(lambda w: loss.partial(labels, _model(w, x)).total)(w)
        return grads, sums.total, sums.count

    fn = optax.microbatching.microbatch(
        per_micro,
        argnums=(1, 2),
        microbatch_size=6,
        accumulator=optax.microbatching.AccumulationType.SUM,
    )
    grads, total, count = fn(w, labels.reshape(-1), x.reshape(-1, 3))
    full_value, full_grads = jax.value_and_grad(
        lambda w: loss(labels.reshape(-1), _model(w, x.reshape(-1, 3)))
    )(w)
    np.testing.assert_allclose(total / count, full_value, rtol=1e-6)
    np.testing.assert_allclose(grads / count, full_grads, rtol=1e-5, atol=1e-7)


def test_partial_sums_add_and_guard():
    loss = jaxloss.MeanSquaredError()
    a = loss.partial(jnp.zeros((2, 2)), jnp.ones((2, 2)))
    b = loss.partial(jnp.zeros((1, 2)), 3 * jnp.ones((1, 2)))
    np.testing.assert_allclose((a + b).value, (2 * 1 + 9) / 3)
    with pytest.raises(TypeError, match="same loss"):
        _ = a + jaxloss.MeanAbsoluteError().partial(jnp.zeros((1, 2)), jnp.ones((1, 2)))
    with pytest.raises(ValueError, match="partial sums"):
        jaxloss.MeanSquaredError(reduction="none").partial(jnp.zeros((1, 2)), jnp.ones((1, 2)))
    empty = jaxloss.SparseCategoricalCrossentropy(ignore_class=-1).partial(
        jnp.array([-1, -1]), jnp.full((2, 3), 1 / 3)
    )
    assert float(empty.value) == 0.0


# --- LossFunctionWrapper --------------------------------------------------------------------


def scaled_l1(y_true, y_pred, scale=1.0):
    return scale * jnp.sum(jnp.abs(y_pred - y_true), axis=-1)


def test_loss_function_wrapper_json_round_trip():
    loss = jaxloss.LossFunctionWrapper(scaled_l1, scale=[0.5], reduction="sum", axis_name="d")
    text = json.dumps(jaxloss.serialize(loss))
    back = jaxloss.deserialize(json.loads(text), custom_objects={"scaled_l1": scaled_l1})
    assert back == loss
    registered_fn = jaxloss.LossFunctionWrapper(jaxloss.huber, delta=2.0)
    back = jaxloss.deserialize(json.loads(json.dumps(jaxloss.serialize(registered_fn))))
    assert back == registered_fn
