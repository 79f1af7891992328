"""Vocab-parallel kernels: the class axis split over the ``model`` axis of a 2 x 4 mesh.

Inside ``jax.shard_map`` (``check_vma=True``, the default) with the batch over ``data`` and the
vocabulary over ``model``, the value and every gradient must equal float64 NumPy formulas of the
whole, unsharded computation. The ``out_specs`` also check that the loss comes back replicated
over ``model`` (``check_vma`` refuses the program otherwise). Under plain ``jax.jit`` with the
vocabulary sharded by ``NamedSharding`` (GSPMD), the compiled program must not all-gather a
``[tokens, vocab]`` array.

Each option set is compiled once and shared by its checks.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxloss import ops
from tests.test_linear_cross_entropy import np_head

N, D, V = 16, 8, 24  # 8 tokens per data shard, 6 classes per model shard
IGNORE = -100
TOL = {"rtol": 2e-5, "atol": 2e-6}


@pytest.fixture(scope="module")
def mesh():
    if len(jax.devices()) < 8:
        pytest.skip("needs 8 (host) devices")
    return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


def _data(seed, ignore=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, V, size=N).astype(np.int32)
    labels[:4] = [0, 5, 6, V - 1]  # the edges of the model shards
    if ignore:
        labels[rng.random(N) < 0.3] = IGNORE
        labels[:4] = [0, 5, 6, V - 1]
    g = rng.uniform(0.5, 1.5, size=N).astype(np.float32)
    return rng, labels, g


def np_sparse_ce(z, y, g, ignore=None, ls=0.0, style="uniform", zl=0.0, cw=None):
    """float64 loss, d(sum g * loss)/dz and d/d class_weight for integer labels."""
    z = np.float64(z)
    n, v = z.shape
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    logp = z - lse[:, None]
    ignored = np.zeros(n, bool) if ignore is None else y == ignore
    onehot = np.eye(v)[np.where(ignored, 0, y)]
    if style == "uniform":
        t = (1 - ls) * onehot + ls / v
        entropy = 0.0
    else:
        t = (1 - ls) * onehot + ls / (v - 1) * (1 - onehot)
        entropy = -(t * np.log(t)).sum(1)
    unweighted = -(t * logp).sum(1) - entropy + zl * lse**2
    w = np.ones(n) if cw is None else np.float64(cw)[np.where(ignored, 0, y)]
    loss = np.where(ignored, 0.0, w * unweighted)
    dz = (g * w)[:, None] * ((1 + 2 * zl * lse)[:, None] * np.exp(logp) - t)
    dz = np.where(ignored[:, None], 0.0, dz)
    dcw = np.zeros(v)
    np.add.at(dcw, np.where(ignored, 0, y), np.where(ignored, 0.0, g * unweighted))
    return loss, dz, dcw


# ----------------------------------------------------------------------------------------------
# sparse_softmax_cross_entropy

SPARSE_CASES = {
    "plain": {},
    "ignore-smoothing-zloss": {"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3},
    "others-smoothing-class-weight": {
        "label_smoothing": 0.2,
        "label_smoothing_style": "others",
        "class_weight": True,
    },
}


@functools.cache
def _sparse_program(mesh, case):
    options = dict(SPARSE_CASES[case])
    use_cw = options.pop("class_weight", False)

    def local(z, y, g, cw):
        def f(z, cw):
            loss = ops.sparse_softmax_cross_entropy(
                z, y, vocab_axis_name="model", class_weight=cw if use_cw else None, **options
            )
            return jnp.sum(loss * g), loss

        (_, loss), (dz, dcw) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(z, cw)
        return loss, dz, dcw

    specs = (P("data", "model"), P("data"), P("data"), P("model"))
    out = (P("data"), P("data", "model"), P("model"))
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=out)), options, use_cw


@pytest.mark.parametrize("case", list(SPARSE_CASES))
def test_sparse_value_and_gradients_equal_the_whole_vocabulary(mesh, case):
    fn, options, use_cw = _sparse_program(mesh, case)
    rng, labels, g = _data(1, ignore="ignore_index" in options)
    z = (2.0 * rng.normal(size=(N, V))).astype(np.float32)
    cw = rng.uniform(0.5, 2.0, size=V).astype(np.float32)
    loss, dz, dcw = fn(z, labels, g, cw)
    kw = {
        "ignore": options.get("ignore_index"),
        "ls": options.get("label_smoothing", 0.0),
        "style": options.get("label_smoothing_style", "uniform"),
        "zl": options.get("z_loss", 0.0),
    }
    rloss, rdz, rdcw = np_sparse_ce(z, labels, g, cw=cw if use_cw else None, **kw)
    np.testing.assert_allclose(loss, rloss, **TOL)
    np.testing.assert_allclose(dz, rdz, **TOL)
    np.testing.assert_allclose(dcw, rdcw if use_cw else 0.0, **TOL)


def test_sparse_out_of_range_label_is_nan_on_every_model_shard(mesh):
    fn, _, _ = _sparse_program(mesh, "plain")
    rng, labels, g = _data(2)
    labels[3] = V  # one past the whole vocabulary: no shard owns it
    z = rng.normal(size=(N, V)).astype(np.float32)
    loss, dz, _ = fn(z, labels, g, np.ones(V, np.float32))
    assert np.isnan(loss[3]) and np.isnan(dz[3]).all()
    keep = np.arange(N) != 3
    rloss, rdz, _ = np_sparse_ce(z[keep], labels[keep], g[keep])
    np.testing.assert_allclose(np.asarray(loss)[keep], rloss, **TOL)
    np.testing.assert_allclose(np.asarray(dz)[keep], rdz, **TOL)


# ----------------------------------------------------------------------------------------------
# softmax_cross_entropy

DENSE_CASES = {"plain": {}, "smoothing-zloss": {"label_smoothing": 0.1, "z_loss": 1e-3}}


@functools.cache
def _dense_program(mesh, case):
    options = DENSE_CASES[case]

    def local(z, t, g):
        def f(z, t):
            loss = ops.softmax_cross_entropy(z, t, vocab_axis_name="model", **options)
            return jnp.sum(loss * g), loss

        (_, loss), grads = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(z, t)
        return loss, *grads

    specs = (P("data", "model"), P("data", "model"), P("data"))
    out = (P("data"), P("data", "model"), P("data", "model"))
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=out)), options


@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_dense_value_and_gradients_equal_the_whole_vocabulary(mesh, case):
    fn, options = _dense_program(mesh, case)
    rng, _, g = _data(3)
    z = (2.0 * rng.normal(size=(N, V))).astype(np.float32)
    t = rng.dirichlet(np.ones(V), size=N).astype(np.float32)
    t[0, :7] = 0.0  # zero targets across a shard boundary
    loss, dz, dt = fn(z, t, g)
    ls, zl = options.get("label_smoothing", 0.0), options.get("z_loss", 0.0)
    x = np.float64(z)
    lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
    logp = x - lse[:, None]
    ts = (1 - ls) * np.float64(t) + ls / V
    rloss = -(ts * logp).sum(1) + zl * lse**2
    rdz = g[:, None] * ((ts.sum(1) + 2 * zl * lse)[:, None] * np.exp(logp) - ts)
    rdt = -g[:, None] * (1 - ls) * logp
    np.testing.assert_allclose(loss, rloss, **TOL)
    np.testing.assert_allclose(dz, rdz, **TOL)
    np.testing.assert_allclose(dt, rdt, **TOL)


# ----------------------------------------------------------------------------------------------
# linear_cross_entropy

LINEAR_CASES = {
    "bias-blocks": {"bias": True, "block_size": 4},
    "ignore-smoothing-zloss-cap-token-weights": {
        "ignore_index": IGNORE,
        "label_smoothing": 0.1,
        "z_loss": 1e-3,
        "logit_soft_cap": 2.0,
        "token_weights": True,
        "block_size": 4,
    },
    "vh-others-aux-gradients": {
        "weight_layout": "vh",
        "label_smoothing": 0.2,
        "label_smoothing_style": "others",
        "return_aux": True,
        "bias": True,
    },
    "in-forward": {
        "strategy": "in_forward",
        "shared_cotangent": True,
        "ignore_index": IGNORE,
        "z_loss": 1e-3,
        "bias": True,
        "token_block_size": 3,
    },
    "in-forward-per-token-cotangents": {
        "strategy": "in_forward",
        "ignore_index": IGNORE,
        "return_aux": True,
        "weight_layout": "vh",
        "bias": True,
        "block_size": 4,  # 6 classes per shard: the last block overlaps the one before
    },
}


@functools.cache
def _linear_program(mesh, case):
    options = dict(LINEAR_CASES[case])
    use_bias, use_tw = options.pop("bias", False), options.pop("token_weights", False)
    options.pop("shared_cotangent", None)
    aux = options.get("return_aux", False)
    vh = options.get("weight_layout") == "vh"

    def local(h, w, b, y, tw, g, g_lse, g_lp):
        def f(h, w, b, tw):
            out = ops.linear_cross_entropy(
                h,
                w,
                y,
                bias=b if use_bias else None,
                token_weights=tw if use_tw else None,
                vocab_axis_name="model",
                **options,
            )
            loss, a = out if aux else (out, None)
            total = jnp.sum(loss * g)
            if aux:
                total = total + jnp.sum(a.lse * g_lse) + jnp.sum(a.label_logprob * g_lp)
                a = (a.lse, a.argmax, a.correct, a.label_logprob)
            else:
                a = (loss, loss, loss, loss)
            return total, (loss, a)

        (_, (loss, a)), grads = jax.value_and_grad(f, argnums=(0, 1, 2, 3), has_aux=True)(
            h, w, b, tw
        )
        return loss, a, grads

    w_spec = P("model", None) if vh else P(None, "model")
    data = P("data")
    specs = (data, w_spec, P("model"), data, data, data, data, data)
    out = (data, (data,) * 4, (data, w_spec, P("model"), data))
    fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=out))
    return fn, options, use_bias, use_tw


@pytest.mark.parametrize("case", list(LINEAR_CASES))
def test_linear_value_aux_and_gradients_equal_the_whole_vocabulary(mesh, case):
    fn, options, use_bias, use_tw = _linear_program(mesh, case)
    rng, labels, g = _data(4, ignore="ignore_index" in options)
    if LINEAR_CASES[case].get("shared_cotangent"):
        g = np.full(N, 0.25, np.float32)  # a mean: in_forward's fast path
    vh = options.get("weight_layout") == "vh"
    hidden = rng.normal(size=(N, D)).astype(np.float32)
    weight = rng.normal(size=(V, D) if vh else (D, V)).astype(np.float32)
    bias = (0.5 * rng.normal(size=V)).astype(np.float32)
    tw = rng.uniform(0.0, 2.0, size=N).astype(np.float32)
    g_lse, g_lp = rng.normal(size=(2, N)).astype(np.float32)
    loss, aux, grads = fn(hidden, weight, bias, labels, tw, g, g_lse, g_lp)

    ref_kw = {k: v for k, v in options.items() if k not in ("block_size", "token_block_size")}
    ref_kw.pop("strategy", None)
    ref_kw.pop("return_aux", None)
    if use_tw:
        ref_kw["token_weights"] = tw
    with_aux = options.get("return_aux", False)
    rloss, raux, rgrads = np_head(
        hidden,
        weight,
        bias if use_bias else None,
        labels,
        g,
        g_lse if with_aux else None,
        g_lp if with_aux else None,
        **ref_kw,
    )
    np.testing.assert_allclose(loss, rloss, **TOL)
    if with_aux:
        np.testing.assert_allclose(aux[0], raux[0], **TOL)
        np.testing.assert_array_equal(aux[1], raux[1])
        np.testing.assert_array_equal(aux[2], raux[2])
        np.testing.assert_allclose(aux[3], raux[3], **TOL)
    names = ("hidden", "weight", "bias", "token_weights")
    for name, got, want, used in zip(
        names, grads, rgrads, (True, True, use_bias, use_tw), strict=True
    ):
        np.testing.assert_allclose(got, want if used else 0.0, **TOL, err_msg=name)


def test_linear_outside_shard_map_names_the_unbound_axis():
    with pytest.raises(ValueError, match="`vocab_axis_name` must name a mesh axis"):
        ops.linear_cross_entropy(
            jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.zeros(2, jnp.int32), vocab_axis_name="model"
        )


# ----------------------------------------------------------------------------------------------
# GSPMD: plain jit with the vocabulary sharded by NamedSharding


def _all_gather_shapes(hlo: str) -> list[tuple[int, ...]]:
    shapes = []
    for line in hlo.splitlines():
        match = re.search(r"= \w+\[([\d,]*)\][^=]*? all-gather\(", line)
        if match:
            shapes.append(tuple(int(d) for d in match.group(1).split(",") if d))
    return shapes


def test_gspmd_never_all_gathers_tokens_by_vocab(mesh):
    n, v = 64, 512
    rng = np.random.default_rng(5)
    y = jax.device_put(rng.integers(0, v, size=n).astype(np.int32), NamedSharding(mesh, P("data")))
    zs = NamedSharding(mesh, P("data", "model"))
    z = jax.device_put(rng.normal(size=(n, v)).astype(np.float32), zs)
    t = jax.device_put(rng.dirichlet(np.ones(v), size=n).astype(np.float32), zs)
    h = jax.device_put(rng.normal(size=(n, D)).astype(np.float32), NamedSharding(mesh, P("data")))
    w = jax.device_put(
        rng.normal(size=(D, v)).astype(np.float32), NamedSharding(mesh, P(None, "model"))
    )
    programs = {
        "sparse": (
            lambda z: ops.sparse_softmax_cross_entropy(
                z, y, ignore_index=IGNORE, label_smoothing=0.1, z_loss=1e-3
            ).mean(),
            (z,),
        ),
        "dense": (lambda z: ops.softmax_cross_entropy(z, t, label_smoothing=0.1).mean(), (z,)),
        "linear": (lambda h, w: ops.linear_cross_entropy(h, w, y, block_size=128).mean(), (h, w)),
        "linear_in_forward": (
            lambda h, w: ops.linear_cross_entropy(
                h, w, y, block_size=128, strategy="in_forward", token_block_size=16
            ).mean(),
            (h, w),
        ),
    }
    for name, (f, args) in programs.items():
        grad = jax.value_and_grad(f, argnums=tuple(range(len(args))))
        hlo = jax.jit(grad).lower(*args).compile().as_text()
        shapes = _all_gather_shapes(hlo)
        big = [s for s in shapes if len(s) == 2 and s[0] * s[1] >= n * v // 8 and n in s]
        assert not big, (name, shapes)
        if not name.startswith("linear"):
            assert not shapes, (name, shapes)


def test_class_handle_on_a_data_by_model_mesh_equals_one_device():
    """``LinearCrossEntropy(axis_name="data", vocab_axis_name="model")``: exact token mean."""
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    import jaxloss

    rng = np.random.default_rng(7)
    hidden = jnp.asarray(rng.normal(size=(8, 3, 5)), jnp.float32)
    weight = jnp.asarray(0.5 * rng.normal(size=(5, 16)), jnp.float32)
    labels = rng.integers(0, 16, (8, 3)).astype(np.int32)
    labels[:4, 1:] = -100  # uneven valid counts across the data shards
    labels = jnp.asarray(labels)
    options = dict(ignore_class=-100, z_loss=1e-3, label_smoothing=0.1)
    sharded = jaxloss.LinearCrossEntropy(axis_name="data", vocab_axis_name="model", **options)
    whole = jaxloss.LinearCrossEntropy(**options)
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))

    def local(y, h, w):
        return jax.value_and_grad(lambda h, w: sharded(y, (h, w)), argnums=(0, 1))(h, w)

    fn = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P("data"), P("data"), P(None, "model")),
        out_specs=(P(), (P("data"), P(None, "model"))),
    )
    value, (g_hidden, g_weight) = jax.jit(fn)(labels, hidden, weight)
    g_value, (w_hidden, w_weight) = jax.value_and_grad(
        lambda h, w: whole(labels, (h, w)), argnums=(0, 1)
    )(hidden, weight)
    np.testing.assert_allclose(value, g_value, rtol=1e-5)
    np.testing.assert_allclose(g_hidden, w_hidden, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g_weight, w_weight, rtol=1e-4, atol=1e-6)
