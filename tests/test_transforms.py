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


class MissingTargetMeanSquaredError(jaxloss.Loss):
    """MSE that skips samples whose target is NaN, via the ``mask`` hook."""

    def call(self, y_true, y_pred):
        return jnp.mean(jnp.square(jnp.nan_to_num(y_true) - y_pred), axis=-1)

    def mask(self, y_true, y_pred, values):
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


def _needs(name):
    return pytest.mark.skipif(not hasattr(jaxloss, name), reason=f"{name} has not landed yet")


CASES = {
    "mse": (lambda **kw: jaxloss.MeanSquaredError(**kw), _regression, []),
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
}


MASKED = ("masked_mse", "sparse_ce_ignore_class")


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


def _flat(actual, expected):
    """``(path, (actual leaf, expected leaf))`` pairs of two pytrees of the same structure."""
    paths = jax.tree_util.tree_leaves_with_path(expected)
    return [
        (jax.tree_util.keystr(path), (got, want))
        for (path, want), got in zip(paths, jax.tree.leaves(actual), strict=True)
    ]


def _everything(loss):
    """Value with and without weights, grad, and value_and_grad: one function, one compilation."""
    objective = _grad_objective(loss)

    def everything(y_true, y_pred, weight):
        value_and_grad = jax.value_and_grad(objective)(y_pred, y_true, weight)
        return {
            "value": loss(y_true, y_pred, weight),
            "value_unweighted": loss(y_true, y_pred),
            "grad": jax.grad(objective)(y_pred, y_true, weight),
            "value_and_grad": value_and_grad,
        }

    return everything


@pytest.mark.parametrize(("name", "_"), _params(["all"]))
def test_jit_equals_eager_for_value_grad_and_value_and_grad_under_every_reduction(name, _):
    y_true, y_pred, weight = _batch(name)
    per_reduction = {r: _everything(_loss(name, reduction=r)) for r in REDUCTIONS}

    @jax.jit
    def jitted(y_true, y_pred, weight):  # one program for every reduction
        return {r: fn(y_true, y_pred, weight) for r, fn in per_reduction.items()}

    got = jitted(y_true, y_pred, weight)
    # Eagerly (op by op), every reduction's values, and the gradients of two of them: an eager
    # backward pass compiles every primitive on its own, which is slow, and the reductions only
    # differ in the last few operations.
    for r in REDUCTIONS:
        loss = _loss(name, reduction=r)
        _close(got[r]["value"], loss(y_true, y_pred, weight), f"{r}: value")
        _close(got[r]["value_unweighted"], loss(y_true, y_pred), f"{r}: unweighted value")
    for r in ("sum_over_batch_size", "none"):
        eager = per_reduction[r](y_true, y_pred, weight)
        for key, (actual, expected) in _flat(got[r], eager):
            _close(actual, expected, f"{r}: {key}")
    for r, out in got.items():
        _close(jnp.sum(out["value"]), out["value_and_grad"][0], f"{r}: value_and_grad value")
        _close(out["grad"], out["value_and_grad"][1], f"{r}: value_and_grad gradient")
        assert np.all(np.isfinite(np.asarray(out["grad"]))), r


@pytest.mark.parametrize(("name", "reduction"), _params(["sum_over_batch_size", "none"]))
def test_vmap_over_an_extra_leading_axis_equals_a_loop(name, reduction):
    groups = 3
    y_true, y_pred, weight = _batch(name, lead=(groups,))
    everything = _everything(_loss(name, reduction=reduction))
    single = jax.jit(everything)
    looped = [single(y_true[g], y_pred[g], weight[g]) for g in range(groups)]
    mapped = jax.jit(jax.vmap(everything))(y_true, y_pred, weight)
    for g in range(groups):
        for key in ("value", "value_unweighted", "grad"):
            _close(mapped[key][g], looped[g][key], f"{key}, group {g}")


@pytest.mark.parametrize(("name", "reduction"), _params(["sum_over_batch_size"]))
def test_vmap_with_unbatched_labels_and_weights_broadcasts_them(name, reduction):
    y_true, y_pred, weight = _batch(name)
    loss = _loss(name, reduction=reduction)
    stacked = np.stack([y_pred, 0.5 * y_pred])

    @jax.jit
    def both(y_true, stacked, weight):
        mapped = jax.vmap(loss, in_axes=(None, 0, None))(y_true, stacked, weight)
        return mapped, jnp.stack([loss(y_true, p, weight) for p in stacked])

    mapped, looped = both(y_true, stacked, weight)
    _close(mapped, looped)


@pytest.mark.parametrize(("name", "reduction"), _params(["sum_over_batch_size"]))
def test_checkpoint_around_the_loss_keeps_values_and_gradients(name, reduction):
    y_true, y_pred, weight = _batch(name)
    objective = _grad_objective(_loss(name, reduction=reduction))
    policies = {"default": None, "nothing_saveable": jax.checkpoint_policies.nothing_saveable}

    @jax.jit
    def all_variants(y_pred, y_true, weight):
        out = {"plain": jax.value_and_grad(objective)(y_pred, y_true, weight)}
        for key, policy in policies.items():
            remat = jax.checkpoint(objective, policy=policy)
            out[key] = jax.value_and_grad(remat)(y_pred, y_true, weight)
        return out

    out = all_variants(y_pred, y_true, weight)
    for key in policies:
        _close(out[key][0], out["plain"][0], f"value, policy {key}")
        _close(out[key][1], out["plain"][1], f"gradient, policy {key}")


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


@pytest.mark.parametrize(
    ("name", "_"),
    [p for p in _params(["sum_over_batch_size"]) if p.values[0] not in MASKED],
)
def test_scan_accumulated_mean_gradient_equals_full_batch_gradient(name, _):
    # Equal-size micro-batches of an unmasked mean: the mean of micro-batch gradients is exact.
    # (Masked losses accumulate sums and valid counts instead: see the next test.)
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

    y_true, y_pred, _ = _batch("mse")
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
