"""Sharded batches: every reduction equals the single-device value on the global batch.

Each case is a tiny linear model ``y_pred = x @ W`` over a global batch of 32 samples split over 8
CPU devices (``tests/conftest.py``), with *uneven* per-device valid counts and weight sums (one
device has no valid sample, one has all-zero weights), so that a mean of per-device means would be
wrong. Values and gradients (w.r.t. the predictions and w.r.t. the replicated parameter ``W``) are
compared with an independent float64 NumPy formula for the global batch, under:

* ``jax.shard_map`` with ``axis_name`` on the loss: the gradient taken *inside* the map is already
  the global gradient (shard_map's replication tracking transposes ``psum`` correctly);
* ``jax.pmap`` with ``axis_name`` on the loss: per-device gradients follow pmap's convention (the
  objective is the sum of the per-device outputs), so the global gradient is
  ``lax.pmean(grads, axis_name)`` -- the usual data-parallel recipe, now exact for uneven counts;
* plain ``jax.jit`` on arrays sharded over a ``Mesh`` with ``NamedSharding``, no ``axis_name``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxloss

N_DEV = 8
PER_DEV = 4
BATCH = N_DEV * PER_DEV
FEATURES = 3
OUTPUTS = 5
SEQ = 3  # tokens per sample for the sequence (ignore_class) cases
IGNORE = -1

# Valid samples per device: uneven, with an empty device and a full one.
VALID_PER_DEVICE = (0, 1, 4, 2, 3, 4, 1, 2)

REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "mean")

pytestmark = pytest.mark.skipif(
    jax.device_count() < N_DEV, reason="needs 8 devices (tests/conftest.py sets XLA_FLAGS)"
)

needs_scce = pytest.mark.skipif(
    not hasattr(jaxloss, "SparseCategoricalCrossentropy"),
    reason="SparseCategoricalCrossentropy has not landed yet",
)


class MissingTargetMeanSquaredError(jaxloss.Loss):
    """MSE that skips samples whose target is NaN (a "missing label"), via the ``mask`` hook."""

    def call(self, y_true, y_pred):
        return jnp.mean(jnp.square(jnp.nan_to_num(y_true) - y_pred), axis=-1)

    def mask(self, y_true, y_pred, values):
        return ~jnp.isnan(y_true[..., 0])


# --------------------------------------------------------------------------------------------
# Data: a global batch whose validity and weights are deliberately uneven across devices.
# --------------------------------------------------------------------------------------------


def _sample_valid() -> np.ndarray:
    valid = np.zeros((N_DEV, PER_DEV), bool)
    for d, count in enumerate(VALID_PER_DEVICE):
        valid[d, [1, 3, 0, 2][:count]] = True
    return valid.reshape(BATCH)


def _weights(rng: np.random.Generator) -> np.ndarray:
    w = rng.uniform(0.1, 2.0, BATCH).astype(np.float32)
    w[3 * PER_DEV : 4 * PER_DEV] = 0.0  # device 3: every weight zero
    return w


def _regression_case(rng, *, masked: bool, weighted: bool):
    x = rng.normal(size=(BATCH, FEATURES)).astype(np.float32)
    target = rng.normal(size=(BATCH, OUTPUTS)).astype(np.float32)
    valid = _sample_valid() if masked else np.ones(BATCH, bool)
    if masked:
        target[~valid] = np.nan
    batch = {"y_true": target}
    if weighted:
        batch["sample_weight"] = _weights(rng)
    return x, batch, valid


def _token_case(rng, *, weighted: bool):
    """Sequence labels ``[batch, SEQ]`` with ``IGNORE`` padding: uneven valid tokens per device."""
    x = rng.normal(size=(BATCH, SEQ, FEATURES)).astype(np.float32)
    labels = rng.integers(0, OUTPUTS, size=(BATCH, SEQ)).astype(np.int32)
    token_valid = np.zeros((BATCH, SEQ), bool)
    sample_valid = _sample_valid()
    for i in range(BATCH):  # a valid sample keeps 1..SEQ tokens; an invalid one keeps none
        if sample_valid[i]:
            token_valid[i, : 1 + i % SEQ] = True
    labels[~token_valid] = IGNORE
    batch = {"y_true": labels}
    if weighted:
        batch["sample_weight"] = _weights(rng)  # [batch]: scales every token of a sample
    return x, batch, token_valid


def _params(rng) -> np.ndarray:
    return (0.5 * rng.normal(size=(FEATURES, OUTPUTS))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Independent float64 NumPy references for the global batch.
# --------------------------------------------------------------------------------------------


def _np_mse_terms(target, z):
    err = z - np.nan_to_num(target)
    return np.mean(err**2, axis=-1), 2.0 * err / z.shape[-1]


def _np_sparse_ce_terms(labels, z):
    z = z - z.max(axis=-1, keepdims=True)
    log_softmax = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    safe = np.where(labels == IGNORE, 0, labels)
    onehot = np.eye(z.shape[-1])[safe]
    per = -np.sum(onehot * log_softmax, axis=-1)
    return per, np.exp(log_softmax) - onehot


def reference(terms, x, W, batch, valid, reduction, *, masked):
    """``(value, d value / d y_pred, d value / d W)`` in float64 for the whole global batch."""
    x, W = x.astype(np.float64), W.astype(np.float64)
    z = x @ W
    per, dper_dz = terms(batch["y_true"], z)
    weight = batch.get("sample_weight")
    n = per.shape[0]
    weight = np.ones(n) if weight is None else weight.astype(np.float64)
    weight = weight.reshape((n,) + (1,) * (per.ndim - 1))
    coef = np.broadcast_to(weight, per.shape) * valid
    total = np.sum(coef * per)
    if reduction == "none":
        return coef * per, None, None
    if reduction == "sum":
        divisor = 1.0
    elif reduction == "mean_with_sample_weight" and "sample_weight" in batch:
        divisor = coef.sum()
    elif masked:
        divisor = valid.sum()
    else:
        divisor = per.size
    if divisor == 0:
        return 0.0, np.zeros_like(z), np.zeros_like(W)
    dz = coef[..., None] * dper_dz / divisor
    dW = x.reshape(-1, x.shape[-1]).T @ dz.reshape(-1, dz.shape[-1])
    return total / divisor, dz, dW


# --------------------------------------------------------------------------------------------
# Cases: (name, loss factory, data factory, NumPy terms, masked?)
# --------------------------------------------------------------------------------------------


def _mse(**kw):
    return jaxloss.MeanSquaredError(**kw)


def _missing(**kw):
    return MissingTargetMeanSquaredError(**kw)


def _scce(**kw):
    return jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE, **kw)


def _reg(masked, weighted):
    return lambda rng: _regression_case(rng, masked=masked, weighted=weighted)


def _tok(weighted):
    return lambda rng: _token_case(rng, weighted=weighted)


CASES = {
    "mse": (_mse, _reg(False, False), _np_mse_terms, False),
    "mse_weighted": (_mse, _reg(False, True), _np_mse_terms, False),
    "masked_mse": (_missing, _reg(True, False), _np_mse_terms, True),
    "masked_mse_weighted": (_missing, _reg(True, True), _np_mse_terms, True),
    "sparse_ce_ignore_class": (_scce, _tok(False), _np_sparse_ce_terms, True),
    "sparse_ce_ignore_class_weighted": (_scce, _tok(True), _np_sparse_ce_terms, True),
}


def _case_params():
    return [
        pytest.param(name, id=name, marks=[needs_scce] if name.startswith("sparse_ce") else [])
        for name in CASES
        if name != "masked_mse"  # a mask without weights: sparse_ce_ignore_class covers it
    ]


def _setup(name, reduction, seed=0):
    make_loss, make_data, terms, masked = CASES[name]
    rng = np.random.default_rng(seed)
    x, batch, valid = make_data(rng)
    W = _params(rng)
    expected = reference(terms, x, W, batch, valid, reduction, masked=masked)
    return make_loss, x, W, batch, expected


def _setup_all(name, seed=0):
    """Like ``_setup``, with the expected ``(value, d_pred, d_W)`` for every reduction."""
    make_loss, x, W, batch, _ = _setup(name, REDUCTIONS[0], seed)
    _, make_data, terms, masked = CASES[name]
    _, _, valid = make_data(np.random.default_rng(seed))
    expected = {r: reference(terms, x, W, batch, valid, r, masked=masked) for r in REDUCTIONS}
    return make_loss, x, W, batch, expected


def _objective(loss):
    def objective(W, x, batch):
        return loss(batch["y_true"], x @ W, sample_weight=batch.get("sample_weight"))

    return objective


def _mesh(shape=(N_DEV,), names=("data",)) -> Mesh:
    return Mesh(np.array(jax.devices()[:N_DEV]).reshape(shape), names)


def _close(actual, expected, what):
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), expected, rtol=2e-5, atol=2e-6, err_msg=what
    )


# --------------------------------------------------------------------------------------------
# The fixture really is uneven: a mean of per-device means is not the global mean.
# --------------------------------------------------------------------------------------------


def test_fixture_per_device_means_differ_from_the_global_mean():
    _, x, W, batch, (expected, _, _) = _setup("masked_mse", "sum_over_batch_size")
    local = []
    for s in np.split(np.arange(BATCH), N_DEV):
        shard = {"y_true": batch["y_true"][s]}
        valid = ~np.isnan(shard["y_true"][:, 0])
        value, _, _ = reference(
            _np_mse_terms, x[s], W, shard, valid, "sum_over_batch_size", masked=True
        )
        local.append(value)
    assert sorted({int(c) for c in VALID_PER_DEVICE}) == [0, 1, 2, 3, 4]
    assert abs(np.mean(local) - expected) > 0.05 * abs(expected)


# --------------------------------------------------------------------------------------------
# shard_map
# --------------------------------------------------------------------------------------------


# Each test compiles one program per case that evaluates every reduction: compilation, not
# execution, is what costs time here.


@pytest.mark.parametrize("name", _case_params())
def test_shard_map_value_and_gradients_equal_global_batch_reference_for_every_reduction(name):
    make_loss, x, W, batch, expected = _setup_all(name)

    def step(W, x, batch):  # the data-parallel train step: gradient taken inside the map
        return {
            r: jax.value_and_grad(_objective(make_loss(reduction=r, axis_name="data")))(W, x, batch)
            for r in REDUCTIONS
        }

    def loss_of_predictions(y_pred, batch, reduction):
        loss = make_loss(reduction=reduction, axis_name="data")
        return loss(batch["y_true"], y_pred, sample_weight=batch.get("sample_weight"))

    train_step = jax.shard_map(
        step, mesh=_mesh(), in_specs=(P(), P("data"), P("data")), out_specs=P()
    )

    @jax.jit
    def run(W, x, batch):
        by_prediction = {}
        for r in REDUCTIONS:  # the gradient w.r.t. the sharded predictions, taken outside
            mapped = jax.shard_map(
                lambda p, b, r=r: loss_of_predictions(p, b, r),
                mesh=_mesh(),
                in_specs=P("data"),
                out_specs=P(),
            )
            by_prediction[r] = jax.value_and_grad(mapped)(x @ W, batch)
        return train_step(W, x, batch), by_prediction

    inside, outside = run(W, x, batch)
    for r, (value, d_pred, d_W) in expected.items():
        _close(inside[r][0], value, f"{r}: value")
        _close(inside[r][1], d_W, f"{r}: gradient w.r.t. the replicated parameter")
        _close(outside[r][0], value, f"{r}: value (loss of predictions)")
        _close(outside[r][1], d_pred, f"{r}: gradient w.r.t. the sharded predictions")


@pytest.mark.parametrize("name", _case_params())
def test_pmap_value_and_pmean_gradient_equal_global_batch_reference_for_every_reduction(name):
    make_loss, x, W, batch, expected = _setup_all(name)

    def step(W, x, batch):
        out = {}
        for r in REDUCTIONS:
            objective = _objective(make_loss(reduction=r, axis_name="data"))
            value, grad = jax.value_and_grad(objective)(W, x, batch)
            out[r] = (value, lax.pmean(grad, "data"))
        return out

    def per_device(a):
        return a.reshape((N_DEV, PER_DEV, *a.shape[1:]))

    got = jax.pmap(step, axis_name="data", in_axes=(None, 0, 0))(
        W, per_device(x), jax.tree.map(per_device, batch)
    )
    for r, (value, _, d_W) in expected.items():
        for d in range(N_DEV):  # every device holds the global value and the global gradient
            _close(got[r][0][d], value, f"{r}: value on device {d}")
            _close(got[r][1][d], d_W, f"{r}: pmean gradient on device {d}")


def test_shard_map_without_replication_checks_needs_pmean_like_pmap():
    # With check_vma=False shard_map no longer knows W is replicated: as under pmap, each device's
    # gradient is n_devices x its own share, and lax.pmean(grads) is the global gradient. (With
    # the default check_vma=True the pmean is a no-op, so the same recipe is right for both.)
    make_loss, x, W, batch, (value, _, d_W) = _setup("masked_mse_weighted", "sum_over_batch_size")
    objective = _objective(make_loss(axis_name="data"))

    def step(W, x, batch, reduce):
        value, grad = jax.value_and_grad(objective)(W, x, batch)
        return value, lax.pmean(grad, "data") if reduce else grad[None]

    @jax.jit
    def run(W, x, batch):
        specs = dict(mesh=_mesh(), in_specs=(P(), P("data"), P("data")), check_vma=False)
        unreduced = jax.shard_map(
            lambda *a: step(*a, reduce=False), out_specs=(P(), P("data")), **specs
        )
        reduced = jax.shard_map(lambda *a: step(*a, reduce=True), out_specs=(P(), P()), **specs)
        return unreduced(W, x, batch), reduced(W, x, batch)

    (_, per_device), (got_value, got_dW) = run(W, x, batch)
    _close(got_value, value, "value")
    _close(got_dW, d_W, "pmean gradient")
    _close(per_device.mean(axis=0), d_W, "mean of per-device gradients")
    assert not np.allclose(per_device[0], d_W)


@pytest.mark.parametrize("name", _case_params())
def test_jit_on_mesh_sharded_batch_equals_global_batch_reference_for_every_reduction(name):
    make_loss, x, W, batch, expected = _setup_all(name)
    data = NamedSharding(_mesh(), P("data"))
    x_sharded = jax.device_put(x, data)
    batch_sharded = jax.device_put(batch, data)
    assert x_sharded.sharding.spec == P("data")
    assert len(x_sharded.addressable_shards) == N_DEV

    @jax.jit
    def run(W, x_sharded, batch_sharded, x, batch):  # one compilation for both layouts
        out = {}
        for r in REDUCTIONS:
            vg = jax.value_and_grad(_objective(make_loss(reduction=r)))  # no axis_name
            out[r] = (vg(W, x_sharded, batch_sharded), vg(W, x, batch))
        return out

    got = run(W, x_sharded, batch_sharded, x, batch)  # x, batch: host arrays, not sharded
    for r, (value, _, d_W) in expected.items():
        (sharded_value, sharded_dW), (plain_value, plain_dW) = got[r]
        _close(sharded_value, value, f"{r}: value")
        _close(sharded_dW, d_W, f"{r}: gradient w.r.t. the parameter")
        _close(sharded_value, np.asarray(plain_value, np.float64), f"{r}: vs unsharded value")
        _close(sharded_dW, np.asarray(plain_dW, np.float64), f"{r}: vs unsharded gradient")


# --------------------------------------------------------------------------------------------
# Unreduced losses, tuple axis names, and the empty-mask edge case.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "mse_weighted",
        "masked_mse_weighted",
        pytest.param("sparse_ce_ignore_class_weighted", marks=needs_scce),
    ],
)
def test_shard_map_unreduced_losses_are_the_global_per_sample_losses(name):
    make_loss, x, W, batch, (per_sample, _, _) = _setup(name, "none")
    loss = make_loss(reduction="none", axis_name="data")
    mapped = jax.shard_map(
        lambda y_pred, batch: loss(batch["y_true"], y_pred, batch.get("sample_weight")),
        mesh=_mesh(),
        in_specs=P("data"),
        out_specs=P("data"),
    )
    _close(jax.jit(mapped)(x @ W, batch), per_sample, "per-sample losses")


@pytest.mark.parametrize(
    ("name", "reduction"),
    [
        ("masked_mse_weighted", "sum_over_batch_size"),
        ("masked_mse_weighted", "mean_with_sample_weight"),
        pytest.param("sparse_ce_ignore_class", "sum_over_batch_size", marks=needs_scce),
    ],
)
def test_shard_map_over_a_2d_mesh_with_a_tuple_axis_name_reduces_over_both_axes(name, reduction):
    make_loss, x, W, batch, (value, _, d_W) = _setup(name, reduction)
    objective = _objective(make_loss(reduction=reduction, axis_name=("replica", "data")))
    mesh = _mesh((2, 4), ("replica", "data"))
    both = P(("replica", "data"))
    step = jax.shard_map(
        jax.value_and_grad(objective),
        mesh=mesh,
        in_specs=(P(), both, both),
        out_specs=(P(), P()),
    )
    got_value, got_dW = jax.jit(step)(W, x, batch)
    _close(got_value, value, "value")
    _close(got_dW, d_W, "gradient")


def test_shard_map_with_the_axis_over_only_one_of_two_mesh_axes_is_not_global():
    # Reducing over "data" alone on a (replica, data) mesh sums only within a replica row: the
    # value on each row is that row's mean. This documents why the tuple axis_name is needed.
    make_loss, x, W, batch, (value, _, _) = _setup("masked_mse", "sum_over_batch_size")
    objective = _objective(make_loss(axis_name="data"))
    mesh = _mesh((2, 4), ("replica", "data"))
    both = P(("replica", "data"))
    per_row = jax.shard_map(
        lambda *a: objective(*a).reshape(1),
        mesh=mesh,
        in_specs=(P(), both, both),
        out_specs=P("replica"),
    )
    rows = np.asarray(jax.jit(per_row)(W, x, batch))
    half = BATCH // 2
    for r in range(2):
        s = slice(r * half, (r + 1) * half)
        row_batch = {"y_true": batch["y_true"][s]}
        row_valid = ~np.isnan(row_batch["y_true"][:, 0])
        row_value, _, _ = reference(
            _np_mse_terms, x[s], W, row_batch, row_valid, "sum_over_batch_size", masked=True
        )
        _close(rows[r], row_value, f"row {r}")
    assert not np.allclose(rows, value)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_shard_map_with_every_sample_masked_gives_zero_loss_and_zero_gradient(reduction):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, FEATURES)).astype(np.float32)
    batch = {
        "y_true": np.full((BATCH, OUTPUTS), np.nan, np.float32),
        "sample_weight": _weights(rng),
    }
    objective = _objective(MissingTargetMeanSquaredError(reduction=reduction, axis_name="data"))
    step = jax.shard_map(
        jax.value_and_grad(objective),
        mesh=_mesh(),
        in_specs=(P(), P("data"), P("data")),
        out_specs=(P(), P()),
    )
    value, grad = jax.jit(step)(_params(rng), x, batch)
    assert float(value) == 0.0
    assert np.all(np.asarray(grad) == 0.0)
