"""Every registered loss inside ``jax.shard_map`` (default settings) over 8 host devices.

The class handle with ``axis_name`` on a batch split over the devices must give the value and the
gradient of the same class on the global batch. Per-sample losses and batch statistics (the
``statistics`` hook) get this from the base class. Losses whose per-sample values depend on the
other samples of the batch (in-batch pairs and mining) need the global batch's embeddings and are
listed below with the reason; a new loss of that kind fails here until it is listed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from jaxloss import Loss
from jaxloss._registry import registered
from tests._inputs import BATCH, GENERATORS

ENTRIES = {entry.name: entry for entry in registered()}
DEVICES = 8

# Losses whose per-sample value needs the rest of the global batch. Each is sharded by passing the
# gathered batch as reference inputs, or by its own cross-device path, tested in its family file.
NEEDS_GLOBAL_BATCH = {
    "circle": "pairs within the batch: pass all-gathered ref_labels/ref_embeddings",
    "triplet_hard": "in-batch mining over the global batch",
    "triplet_semihard": "in-batch mining over the global batch",
    "contrastive": "pairs within the batch",
    "lifted_struct": "pairs within the batch",
    "npairs": "pairs within the batch",
    "npairs_multilabel": "pairs within the batch",
    "ntxent": "pairs within the batch",
    "clip_loss": "the [B, B] similarity matrix: own axis_name path (all-gather / ring)",
    "siglip_loss": "the [B, B] similarity matrix: own axis_name path (all-gather / ring)",
    "weighted_kappa": "a batch statistic computed by its own hook",
    "kto": "the reference point is a KL estimate over the whole batch: own axis_name path",
}


def _inputs(entry):
    halves = [GENERATORS[entry.inputs](jax.random.PRNGKey(seed)) for seed in range(2)]

    def cat(a, b):
        a, b = jnp.asarray(a), jnp.asarray(b)
        return jnp.concatenate([a, b]) if a.ndim and a.shape[0] == BATCH else a

    y_true = cat(halves[0][0], halves[1][0])
    y_pred = jax.tree.map(cat, halves[0][1], halves[1][1])
    return y_true, y_pred, halves[0]


def _spec(x):
    return PartitionSpec("data") if x.ndim and x.shape[0] == 2 * BATCH else PartitionSpec()


@pytest.mark.parametrize("name", list(ENTRIES))
def test_sharded_equals_global_batch(name):
    entry = ENTRIES[name]
    y_true, y_pred, first_half = _inputs(entry)
    if name in NEEDS_GLOBAL_BATCH:
        pytest.skip(NEEDS_GLOBAL_BATCH[name])
    mesh = Mesh(np.array(jax.devices()[:DEVICES]), ("data",))
    sharded, whole = entry.cls(axis_name="data"), entry.cls()
    pred_spec = jax.tree.map(_spec, y_pred)

    def local(t, p):
        return jax.value_and_grad(lambda q: sharded(t, q))(p)

    fn = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(_spec(y_true), pred_spec),
        out_specs=(PartitionSpec(), pred_spec),
    )

    # one program per loss: the sharded run, the global batch, and the per-sample probe
    def everything(y_true, y_pred, first_half):
        return {
            "sharded": fn(y_true, y_pred),
            "global": jax.value_and_grad(lambda q: whole(y_true, q))(y_pred),
            "full": entry.function(y_true, y_pred),
            "half": entry.function(*first_half),
        }

    out = jax.tree.map(np.asarray, jax.jit(everything)(y_true, y_pred, first_half))
    full = out["full"]
    per_sample = full.ndim > 0 and np.allclose(full[:BATCH], out["half"], rtol=1e-5, atol=1e-6)
    if not per_sample and entry.cls.statistics is Loss.statistics:
        pytest.fail(
            f"{name}: its per-sample values depend on the rest of the batch; give it a "
            "statistics hook or a cross-device path, and list it in NEEDS_GLOBAL_BATCH"
        )
    (value, grad), (g_value, g_grad) = out["sharded"], out["global"]
    np.testing.assert_allclose(value, g_value, rtol=2e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(grad), jax.tree.leaves(g_grad), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)


def _ctc_inputs():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(8, 10, 5)), jnp.float32)
    labels = jnp.asarray(rng.integers(1, 5, (8, 3)), jnp.int32)
    return logits, labels


def _rnnt_inputs():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(8, 4, 3, 5)), jnp.float32)
    labels = jnp.asarray(rng.integers(1, 5, (8, 2)), jnp.int32)
    return logits, labels


KERNELS = {
    "ctc_loss": (_ctc_inputs, lambda x, y: jax_ops().ctc_loss(x, y)),
    "ctc_loss_jvp": (_ctc_inputs, lambda x, y: jax_ops().ctc_loss_jvp(x, y)),
    "ctc_loss_grad": (
        _ctc_inputs,
        lambda x, y: jax.grad(lambda q: jax_ops().ctc_loss(q, y).sum())(x),
    ),
    "ctc_align": (_ctc_inputs, lambda x, y: jax.tree.leaves(jax_ops().ctc_align(x, y))[0]),
    "ctc_greedy_decode": (_ctc_inputs, lambda x, y: jax_ops().ctc_greedy_decode(x)[0]),
    "ctc_beam_search_decode": (
        _ctc_inputs,
        lambda x, y: jax_ops().ctc_beam_search_decode(x, beam_width=3)[0],
    ),
    "rnnt_loss_grad": (
        _rnnt_inputs,
        lambda x, y: jax.grad(lambda q: jax_ops().rnnt_loss(q, y).sum())(x),
    ),
    "sparse_softmax_cross_entropy_grad": (
        _ctc_inputs,
        lambda x, y: jax.grad(
            lambda q: jax_ops().sparse_softmax_cross_entropy(q, y[:, :1].repeat(10, 1)).sum()
        )(x),
    ),
}


def jax_ops():
    import jaxloss

    return jaxloss.ops


@pytest.mark.parametrize("name", list(KERNELS))
def test_batch_kernels_run_inside_shard_map_with_default_checks(name):
    make, fn = KERNELS[name]
    x, y = make()
    mesh = Mesh(np.array(jax.devices()[:DEVICES]), ("data",))
    spec = PartitionSpec("data")
    sharded_fn = jax.shard_map(fn, mesh=mesh, in_specs=(spec, spec), out_specs=spec)
    sharded, whole = jax.jit(lambda x, y: (sharded_fn(x, y), fn(x, y)))(x, y)
    np.testing.assert_allclose(
        np.asarray(sharded, np.float64), np.asarray(whole, np.float64), rtol=1e-5, atol=1e-6
    )
