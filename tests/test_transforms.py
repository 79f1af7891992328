"""Transforms: jit, vmap, grad, value_and_grad, checkpoint and scan agree; jit caches loss objects.

Every class handle is a frozen dataclass, so it can be closed over or passed as a static argument
to ``jax.jit`` and repeated calls reuse one compilation. The numbers under each transform must be
the ones eager evaluation gives, for plain, weighted and masked losses, and gradient accumulation
over micro-batches with ``lax.scan`` must reproduce the full-batch gradient.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxloss

BATCH = 12
FEATURES = 4
CLASSES = 5
SEQ = 3
IGNORE = -1
REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MissingTargetMeanSquaredError(jaxloss.Loss):
    """MSE that skips samples whose target is NaN, via the ``mask`` hook."""

    def call(self, y_true, y_pred):
        return jnp.mean(jnp.square(jnp.nan_to_num(y_true) - y_pred), axis=-1)

    def mask(self, y_true, y_pred):
        return ~jnp.isnan(y_true[..., 0])


# --------------------------------------------------------------------------------------------
# Cases: a loss factory and a batch generator ``rng -> (y_true, y_pred, sample_weight)``.
# --------------------------------------------------------------------------------------------


def _regression(rng, lead=()):
    y_true = rng.normal(size=(*lead, BATCH, CLASSES)).astype(np.float32)
    y_pred = rng.normal(size=(*lead, BATCH, CLASSES)).astype(np.float32)
    return y_true, y_pred


def _missing_targets(rng, lead=()):
    y_true, y_pred = _regression(rng, lead)
    drop = rng.random(size=(*lead, BATCH)) < 0.4
    y_true[drop] = np.nan
    return y_true, y_pred


def _sparse_tokens(rng, lead=()):
    labels = rng.integers(0, CLASSES, size=(*lead, BATCH, SEQ)).astype(np.int32)
    labels[rng.random(size=labels.shape) < 0.3] = IGNORE
    logits = (3 * rng.normal(size=(*lead, BATCH, SEQ, CLASSES))).astype(np.float32)
    return labels, logits


def _categorical(rng, lead=()):
    labels = rng.integers(0, CLASSES, size=(*lead, BATCH))
    logits = (3 * rng.normal(size=(*lead, BATCH, CLASSES))).astype(np.float32)
    return np.eye(CLASSES, dtype=np.float32)[labels], logits


def _binary(rng, lead=()):
    y_true = (rng.random(size=(*lead, BATCH, CLASSES)) < 0.5).astype(np.float32)
    logits = (3 * rng.normal(size=(*lead, BATCH, CLASSES))).astype(np.float32)
    return y_true, logits


def _needs(name):
    return pytest.mark.skipif(not hasattr(jaxloss, name), reason=f"{name} has not landed yet")


CASES = {
    "mse": (lambda **kw: jaxloss.MeanSquaredError(**kw), _regression, []),
    "huber": (lambda **kw: jaxloss.Huber(delta=0.7, **kw), _regression, []),
    "masked_mse": (lambda **kw: MissingTargetMeanSquaredError(**kw), _missing_targets, []),
    "sparse_ce_ignore_class": (
        lambda **kw: jaxloss.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=IGNORE, **kw
        ),
        _sparse_tokens,
        [_needs("SparseCategoricalCrossentropy")],
    ),
    "categorical_ce": (
        lambda **kw: jaxloss.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, **kw),
        _categorical,
        [_needs("CategoricalCrossentropy")],
    ),
    "binary_ce": (
        lambda **kw: jaxloss.BinaryCrossentropy(from_logits=True, **kw),
        _binary,
        [_needs("BinaryCrossentropy")],
    ),
}


def _params(reductions=REDUCTIONS):
    out = []
    for name, (_, _, marks) in CASES.items():
        for reduction in reductions:
            out.append(pytest.param(name, reduction, id=f"{name}-{reduction}", marks=marks))
    return out


def _batch(name, seed=0, lead=()):
    rng = np.random.default_rng(seed)
    y_true, y_pred = CASES[name][1](rng, lead)
    weight = rng.uniform(0.0, 2.0, size=(*lead, BATCH)).astype(np.float32)
    return y_true, y_pred, weight


def _loss(name, **kw):
    return CASES[name][0](**kw)


def _close(actual, expected, what="", rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol, atol, err_msg=what)


def _grad_objective(loss):
    """A scalar objective of the predictions for every reduction (``"none"`` is summed)."""

    def objective(y_pred, y_true, weight):
        return jnp.sum(loss(y_true, y_pred, sample_weight=weight))

    return objective


# --------------------------------------------------------------------------------------------
# jit, vmap, grad, value_and_grad, checkpoint
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "reduction"), _params())
def test_jit_equals_eager_for_value_grad_and_value_and_grad(name, reduction):
    y_true, y_pred, weight = _batch(name)
    loss = _loss(name, reduction=reduction)
    _close(jax.jit(loss)(y_true, y_pred, weight), loss(y_true, y_pred, weight), "value")
    _close(jax.jit(loss)(y_true, y_pred), loss(y_true, y_pred), "value, no weights")
    objective = _grad_objective(loss)
    eager_value = objective(y_pred, y_true, weight)
    eager_grad = jax.grad(objective)(y_pred, y_true, weight)
    _close(jax.jit(jax.grad(objective))(y_pred, y_true, weight), eager_grad, "jit(grad)")
    value, grad = jax.jit(jax.value_and_grad(objective))(y_pred, y_true, weight)
    _close(value, eager_value, "value_and_grad value")
    _close(grad, eager_grad, "value_and_grad gradient")
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize(("name", "reduction"), _params())
def test_vmap_over_an_extra_leading_axis_equals_a_loop(name, reduction):
    groups = 3
    y_true, y_pred, weight = _batch(name, lead=(groups,))
    loss = _loss(name, reduction=reduction)
    looped = [loss(y_true[g], y_pred[g], weight[g]) for g in range(groups)]
    _close(jax.vmap(loss)(y_true, y_pred, weight), np.stack(looped), "value")
    _close(jax.jit(jax.vmap(loss))(y_true, y_pred, weight), np.stack(looped), "jit(vmap) value")

    objective = _grad_objective(loss)
    grads = jax.vmap(jax.grad(objective))(y_pred, y_true, weight)
    for g in range(groups):
        _close(grads[g], jax.grad(objective)(y_pred[g], y_true[g], weight[g]), f"grad group {g}")


@pytest.mark.parametrize(("name", "reduction"), _params(["sum_over_batch_size"]))
def test_vmap_with_unbatched_labels_and_weights_broadcasts_them(name, reduction):
    y_true, y_pred, weight = _batch(name)
    loss = _loss(name, reduction=reduction)
    stacked = np.stack([y_pred, 0.5 * y_pred])
    got = jax.vmap(loss, in_axes=(None, 0, None))(y_true, stacked, weight)
    _close(got, [loss(y_true, y_pred, weight), loss(y_true, 0.5 * y_pred, weight)])


@pytest.mark.parametrize(("name", "reduction"), _params(["sum_over_batch_size", "none"]))
def test_checkpoint_around_the_loss_keeps_values_and_gradients(name, reduction):
    y_true, y_pred, weight = _batch(name)
    objective = _grad_objective(_loss(name, reduction=reduction))
    remat = jax.checkpoint(objective)
    _close(remat(y_pred, y_true, weight), objective(y_pred, y_true, weight), "value")
    for policy in (None, jax.checkpoint_policies.nothing_saveable):
        remat = jax.checkpoint(objective, policy=policy)
        _close(
            jax.jit(jax.grad(remat))(y_pred, y_true, weight),
            jax.jit(jax.grad(objective))(y_pred, y_true, weight),
            f"gradient with policy {policy}",
        )


# --------------------------------------------------------------------------------------------
# Gradient accumulation with lax.scan over micro-batches
# --------------------------------------------------------------------------------------------


def _linear_model_batch(name, seed=0):
    """Features ``x`` and a weight matrix ``W`` whose predictions ``x @ W`` feed the loss."""
    y_true, y_pred, weight = _batch(name, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(*y_pred.shape[:-1], FEATURES)).astype(np.float32)
    W = (0.5 * rng.normal(size=(FEATURES, y_pred.shape[-1]))).astype(np.float32)
    return x, W, y_true, weight


def _micro(a, n):
    return a.reshape((n, a.shape[0] // n, *a.shape[1:]))


@pytest.mark.parametrize(("name", "_"), _params(["sum_over_batch_size"]))
def test_scan_accumulated_mean_gradient_equals_full_batch_gradient(name, _):
    # Equal-size micro-batches of an unmasked mean: the mean of micro-batch gradients is exact.
    if name in ("masked_mse", "sparse_ce_ignore_class"):
        pytest.skip("masked losses accumulate sums and counts: see the next test")
    x, W, y_true, weight = _linear_model_batch(name)
    loss = _loss(name)

    def objective(W, x, y_true, weight):
        return loss(y_true, x @ W, sample_weight=weight)

    n = 3

    def accumulate(carry, micro):
        value, grad = jax.value_and_grad(objective)(W, *micro)
        return jax.tree.map(jnp.add, carry, (value, grad)), None

    zero = (jnp.zeros(()), jnp.zeros_like(W))
    micro = (_micro(x, n), _micro(y_true, n), _micro(weight, n))
    (value, grad), _ = jax.jit(lambda: lax.scan(accumulate, zero, micro))()
    full_value, full_grad = jax.value_and_grad(objective)(W, x, y_true, weight)
    _close(value / n, full_value, "accumulated value")
    _close(grad / n, full_grad, "accumulated gradient")


@pytest.mark.parametrize(
    "name",
    [
        "masked_mse",
        pytest.param("sparse_ce_ignore_class", marks=_needs("SparseCategoricalCrossentropy")),
    ],
)
def test_scan_accumulation_of_sums_over_the_global_valid_count_equals_full_batch_mean(name):
    # Masked micro-batches hold different valid counts, so a mean of micro-batch means is wrong.
    # Accumulate reduction="sum" values and the valid count, divide once at the end.
    x, W, y_true, _ = _linear_model_batch(name)
    summed = _loss(name, reduction="sum")
    per_sample = _loss(name, reduction="none")
    valid = ~np.isnan(y_true[..., 0]) if name == "masked_mse" else y_true != IGNORE

    def micro_sum(W, x, y_true):
        return summed(y_true, x @ W)

    n = 4

    def accumulate(carry, micro):
        value, grad = jax.value_and_grad(micro_sum)(W, *micro)
        return jax.tree.map(jnp.add, carry, (value, grad)), None

    zero = (jnp.zeros(()), jnp.zeros_like(W))
    (total, grad_total), _ = jax.jit(
        lambda: lax.scan(accumulate, zero, (_micro(x, n), _micro(y_true, n)))
    )()
    count = valid.sum()
    full = _loss(name)
    full_value, full_grad = jax.value_and_grad(lambda W: full(y_true, x @ W))(W)
    _close(total / count, full_value, "accumulated value")
    _close(grad_total / count, full_grad, "accumulated gradient")
    _close(jnp.sum(per_sample(y_true, x @ W)), total, "sum == sum of per-sample losses")
    micro_counts = _micro(valid, n).reshape(n, -1).sum(axis=1)
    assert len(set(micro_counts.tolist())) > 1, "fixture should have uneven valid counts"


# --------------------------------------------------------------------------------------------
# Loss objects and the jit cache
# --------------------------------------------------------------------------------------------


def test_loss_as_static_argument_compiles_once_and_equal_configs_share_the_cache():
    traces = []

    @jax.jit(static_argnums=0)
    def step(loss, y_true, y_pred):
        traces.append(loss)
        return loss(y_true, y_pred)

    y_true, y_pred, _ = _batch("huber")
    first = jaxloss.Huber(delta=0.5)
    for _ in range(3):
        step(first, y_true, y_pred)
    step(jaxloss.Huber(delta=0.5), y_true, y_pred + 1.0)  # a new but equal object
    assert len(traces) == 1
    if hasattr(step, "_cache_size"):
        assert step._cache_size() == 1

    step(jaxloss.Huber(delta=2.0), y_true, y_pred)  # a different option is a new program
    step(dataclasses.replace(first, reduction="sum"), y_true, y_pred)
    assert len(traces) == 3
    _close(step(first, y_true, y_pred), first(y_true, y_pred))


def test_loss_closed_over_in_a_jitted_train_step_compiles_once():
    traces = []
    loss = MissingTargetMeanSquaredError(reduction="sum_over_batch_size")
    x, W, y_true, _ = map(jnp.asarray, _linear_model_batch("masked_mse"))

    @jax.jit
    def train_step(W, x, y_true):
        traces.append(None)
        value, grad = jax.value_and_grad(lambda W: loss(y_true, x @ W))(W)
        return W - 0.1 * grad, value

    values = []
    for _ in range(5):
        W, value = train_step(W, x, y_true)
        values.append(float(value))
    assert len(traces) == 1
    if hasattr(train_step, "_cache_size"):
        assert train_step._cache_size() == 1
    assert values[-1] < values[0]


@pytest.mark.parametrize(("name", "reduction"), _params(["sum_over_batch_size"]))
def test_loss_objects_are_hashable_and_equal_by_value(name, reduction):
    a, b = _loss(name, reduction=reduction), _loss(name, reduction=reduction)
    assert a == b and hash(a) == hash(b)
    assert a != _loss(name, reduction="sum")
