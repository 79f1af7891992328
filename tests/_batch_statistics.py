"""Shared check for batch-statistic losses: shard_map over 8 host devices == the global batch."""

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

N_DEV = 8


def assert_sharded_equals_global(make_loss, y_true, y_pred, sample_weight=None, **inputs):
    """Value and gradient of ``make_loss(axis_name="data")`` under shard_map equal the global ones.

    Also checks that the per-device ratios averaged (the loss without ``axis_name``) differ, so
    the comparison can fail.
    """
    mesh = Mesh(np.array(jax.devices()[:N_DEV]), ("data",))
    extra = () if sample_weight is None else (sample_weight,)

    def global_loss(p):
        return make_loss()(y_true, p, sample_weight=sample_weight, **inputs)

    def shard_loss(loss):
        def local(t, p, *w):
            return loss(t, p, sample_weight=w[0] if w else None, **inputs)

        return jax.shard_map(local, mesh=mesh, in_specs=P("data"), out_specs=P())

    value, grad = jax.jit(jax.value_and_grad(global_loss))(y_pred)
    mapped = shard_loss(make_loss(axis_name="data"))
    s_value, s_grad = jax.jit(jax.value_and_grad(mapped, argnums=1))(y_true, y_pred, *extra)
    np.testing.assert_allclose(s_value, value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s_grad, grad, rtol=1e-4, atol=1e-6)

    naive = jax.shard_map(
        lambda t, p, *w: jax.lax.pmean(
            make_loss()(t, p, sample_weight=w[0] if w else None, **inputs), "data"
        ),
        mesh=mesh,
        in_specs=P("data"),
        out_specs=P(),
    )
    assert abs(float(jax.jit(naive)(y_true, y_pred, *extra)) - float(value)) > 1e-4
