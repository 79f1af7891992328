"""Fused linear + cross-entropy: values and every gradient equal the unfused computation.

References, both independent of the kernel under test:

* a float64 NumPy formula (loss and its analytic gradients, written here);
* ``hidden @ weight (+ bias)`` fed to :func:`jaxloss.ops.sparse_softmax_cross_entropy` and
  differentiated by JAX (the unfused composition the fused kernel replaces).

Plus: memory (no ``[tokens, vocab]`` intermediate anywhere in the gradient program), bf16, ignored
tokens, smoothing, z-loss, vocabularies that are not a multiple of the block, edge inputs, jit /
vmap, forward mode through the ``_jvp`` twin, validation, and the ``LinearCrossEntropy`` class.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jaxloss
from jaxloss import LinearCrossEntropy, linear_crossentropy, ops
from tests.reference import np_reduce

N, D, V = 13, 8, 37  # V prime: never a multiple of the block
IGNORE = -100

OPTION_SETS = [
    {},
    {"ignore_index": IGNORE},
    {"label_smoothing": 0.2},
    {"z_loss": 1e-2},
    {"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3},
]
# (options, block_size, with_bias): every option set, blocks of 1, odd sizes, exactly V, > V.
FORMULA_CASES = [
    ({}, None, False),
    ({}, 1, True),
    ({}, 64, True),
    ({}, V, False),
    ({"ignore_index": IGNORE}, 5, True),
    ({"label_smoothing": 0.2}, 5, False),
    ({"label_smoothing": 0.2}, 16, True),
    ({"z_loss": 1e-2}, 5, True),
    ({"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3}, 1, False),
    ({"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3}, 16, True),
]


def _inputs(seed=0, n=N, d=D, v=V, ignore_frac=0.3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(n, d)).astype(dtype)
    weight = (rng.normal(size=(d, v)) / np.sqrt(d)).astype(dtype)
    bias = (0.5 * rng.normal(size=(v,))).astype(dtype)
    labels = rng.integers(0, v, size=(n,)).astype(np.int32)
    labels[rng.random(size=n) < ignore_frac] = IGNORE
    labels[0] = 0
    labels[1] = v - 1  # the last column lives in the remainder block
    return hidden, weight, bias, labels


def _ignore_frac(options):
    return 0.3 if "ignore_index" in options else 0.0


def _np_loss_and_grads(
    hidden,
    weight,
    bias,
    labels,
    g,
    ignore_index=None,
    label_smoothing=0.0,
    z_loss=0.0,
    block_size=None,
):
    """float64 loss and (d_hidden, d_weight, d_bias) for the cotangent ``g``, from the formulas."""
    del block_size
    h, w = np.float64(hidden), np.float64(weight)
    z = h @ w + (0.0 if bias is None else np.float64(bias))
    n, v = z.shape
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    ls = label_smoothing
    ignored = np.zeros(n, bool) if ignore_index is None else labels == ignore_index
    safe = np.where(ignored, 0, labels)
    onehot = np.eye(v)[safe]
    loss = (1 - ls) * (lse - z[np.arange(n), safe]) + ls * (lse - z.mean(axis=1))
    loss = loss + z_loss * lse**2
    loss = np.where(ignored, 0.0, loss)
    p = np.exp(z - lse[:, None])
    dz = (1 + 2 * z_loss * lse)[:, None] * p - (1 - ls) * onehot - ls / v
    dz = np.where(ignored[:, None], 0.0, dz) * np.float64(g)[:, None]
    return loss, (dz @ w.T, h.T @ dz, dz.sum(axis=0))


def _vjp(fn, hidden, weight, bias, labels, g, **kw):
    """Loss and the gradients w.r.t. (hidden, weight[, bias]) for cotangent ``g`` (jitted)."""

    @jax.jit
    def go(hidden, weight, bias, labels, g):
        if bias is None:
            out, pull = jax.vjp(lambda h, w: fn(h, w, labels, **kw), hidden, weight)
        else:
            out, pull = jax.vjp(
                lambda h, w, b: fn(h, w, labels, bias=b, **kw), hidden, weight, bias
            )
        return out, pull(g.astype(out.dtype))

    return go(hidden, weight, bias, labels, jnp.asarray(g))


def _unfused(hidden, weight, labels, *, bias=None, block_size=None, jvp=False, **kw):
    del block_size
    logits = hidden @ weight
    if bias is not None:
        logits = logits + bias
    kernel = ops.sparse_softmax_cross_entropy_jvp if jvp else ops.sparse_softmax_cross_entropy
    return kernel(logits, labels, **kw)


# --------------------------------------------------------------------------------------------
# equality with the references


@pytest.mark.parametrize(("options", "block_size", "with_bias"), FORMULA_CASES)
def test_matches_float64_numpy_formula(options, block_size, with_bias):
    hidden, weight, bias, labels = _inputs(seed=1, ignore_frac=_ignore_frac(options))
    bias = bias if with_bias else None
    g = np.random.default_rng(2).uniform(0.5, 2.0, size=N).astype(np.float32)
    ref_loss, ref_grads = _np_loss_and_grads(hidden, weight, bias, labels, g, **options)
    loss, grads = _vjp(
        ops.linear_cross_entropy, hidden, weight, bias, labels, g, block_size=block_size, **options
    )
    assert loss.shape == (N,) and loss.dtype == jnp.float32
    np.testing.assert_allclose(loss, ref_loss, rtol=2e-6, atol=2e-6)
    for got, want in zip(grads, ref_grads, strict=False):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("options", "block_size", "with_bias"),
    [(o, b, w) for i, o in enumerate(OPTION_SETS) for b, w in [((3, False), (16, True))[i % 2]]]
    + [(OPTION_SETS[-1], 3, True)],
)
def test_matches_unfused_matmul_plus_sparse_cross_entropy(options, block_size, with_bias):
    hidden, weight, bias, labels = _inputs(seed=3, ignore_frac=_ignore_frac(options))
    bias = bias if with_bias else None
    g = np.random.default_rng(4).normal(size=N).astype(np.float32)
    loss, grads = _vjp(
        ops.linear_cross_entropy, hidden, weight, bias, labels, g, block_size=block_size, **options
    )
    ref_loss, ref_grads = _vjp(_unfused, hidden, weight, bias, labels, g, **options)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, atol=1e-6)
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_float64_operands_compute_in_float64_and_pass_check_grads():
    with jax.enable_x64(True):
        hidden, weight, bias, labels = _inputs(seed=5, n=5, d=4, v=11, dtype=np.float64)
        kw = {"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-2, "block_size": 4}
        loss = ops.linear_cross_entropy(hidden, weight, labels, bias=bias, **kw)
        assert loss.dtype == jnp.float64
        ref, _ = _np_loss_and_grads(hidden, weight, bias, labels, np.ones(5), **kw)
        np.testing.assert_allclose(loss, ref, rtol=1e-12)

        def f(h, w, b):
            return ops.linear_cross_entropy(h, w, labels, bias=b, **kw)

        check_grads(jax.jit(f), (hidden, weight, bias), order=1, modes=("rev",))


def test_leading_token_axes():
    hidden, weight, bias, labels = _inputs(seed=6, n=12)
    h3, y3 = hidden.reshape(3, 4, D), labels.reshape(3, 4)
    f = jax.jit(
        lambda h, y: ops.linear_cross_entropy(
            h, weight, y, bias=bias, ignore_index=IGNORE, block_size=8
        )
    )
    loss3, loss = f(h3, y3), f(hidden, labels)
    assert loss3.shape == (3, 4)
    np.testing.assert_allclose(loss3.reshape(-1), loss, rtol=1e-6)
    d3 = jax.jit(jax.grad(lambda h: f(h, y3).sum()))(h3)
    assert d3.shape == h3.shape


def test_bfloat16_operands_accumulate_in_float32():
    hidden, weight, bias, labels = _inputs(seed=7, n=32, d=64, v=300)
    hb, wb, bb = (jnp.asarray(x, jnp.bfloat16) for x in (hidden, weight, bias))
    kw = {"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-3, "block_size": 64}
    g = np.ones(32, np.float32)
    loss, grads = _vjp(ops.linear_cross_entropy, hb, wb, bb, labels, g, **kw)
    assert loss.dtype == jnp.float32
    assert [x.dtype for x in grads] == [jnp.bfloat16] * 3
    # Against the float64 formula on the bf16-rounded operands: float32 accumulation keeps the
    # loss accurate to float32; the gradients are rounded once, to bfloat16.
    f32 = [np.asarray(x, np.float32) for x in (hb, wb, bb)]
    ref_loss, ref_grads = _np_loss_and_grads(*f32, labels, g, **kw)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        scale = np.abs(want).max()
        np.testing.assert_allclose(np.float32(got), want, rtol=2e-2, atol=2e-2 * scale)


def test_mixed_operand_dtypes_return_each_gradient_in_its_dtype():
    hidden, weight, bias, labels = _inputs(seed=30, ignore_frac=0.0)
    hb = jnp.asarray(hidden, jnp.bfloat16)
    loss, (dh, dw, db) = _vjp(
        ops.linear_cross_entropy, hb, weight, bias, labels, np.ones(N), block_size=8
    )
    assert (dh.dtype, dw.dtype, db.dtype) == (jnp.bfloat16, jnp.float32, jnp.float32)
    ref_loss, (_, rdw, _) = _vjp(
        _unfused, jnp.asarray(hb, jnp.float32), weight, bias, labels, np.ones(N)
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dw, rdw, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# memory: no [tokens, vocab] array anywhere


def _shapes_in_jaxpr(jaxpr):
    shapes = set()
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            shapes.add(tuple(getattr(var.aval, "shape", ())))
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else ():
            shapes |= _shapes_in_jaxpr(sub)
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", None)
            if inner is not None:
                shapes |= _shapes_in_jaxpr(getattr(inner, "jaxpr", inner))
            if isinstance(param, (tuple, list)):
                for item in param:
                    inner = getattr(item, "jaxpr", None)
                    if inner is not None:
                        shapes |= _shapes_in_jaxpr(getattr(inner, "jaxpr", inner))
    return shapes


@pytest.mark.parametrize("strategy", ["recompute", "in_forward"])
def test_gradient_program_never_holds_tokens_by_vocab(strategy):
    n, d, v, block, chunk = 64, 16, 1000, 128, 16
    hidden, weight, bias, labels = _inputs(seed=8, n=n, d=d, v=v)

    def step(h, w, b):
        return ops.linear_cross_entropy(
            h,
            w,
            labels,
            bias=b,
            ignore_index=IGNORE,
            label_smoothing=0.1,
            z_loss=1e-4,
            block_size=block,
            strategy=strategy,
            token_block_size=chunk,
        ).mean()

    jaxpr = jax.make_jaxpr(jax.value_and_grad(step, argnums=(0, 1, 2)))(hidden, weight, bias)
    shapes = _shapes_in_jaxpr(jaxpr.jaxpr)
    if strategy == "recompute":
        assert (n, block) in shapes  # the blocks are there ...
    else:
        assert (chunk, v) in shapes  # one chunk of tokens against the whole vocabulary ...
    assert (n, v) not in shapes and (v, n) not in shapes  # ... the full logits are not


def test_default_chunks(monkeypatch):
    # The defaults depend on JAX's default backend: the CPU's first, whatever this machine has.
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert ops.default_block_size(65536) == 2048
    assert ops.default_block_size(65536, "in_forward") == 4096  # with the default 512-token chunk
    assert ops.default_block_size(65536, "in_forward", 256) == 4096
    assert ops.default_block_size(65536, "in_forward", 128) == 512  # small chunks, small blocks
    assert ops.default_block_size(1000, "in_forward") == 1000
    assert ops.default_token_block_size(65536) == 512  # a 128 MiB float32 chunk of logits
    assert ops.default_token_block_size(65536, 2048) == 512
    assert ops.default_token_block_size(65536, 2000) == 500  # 4 equal chunks, not 3 + 464
    assert ops.default_token_block_size(65536, 100) == 100
    assert ops.default_token_block_size(1 << 24, 1000) == 16  # never below 16 tokens
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert ops.default_block_size(65536) == 4096  # on a GPU the blocks' loop is the cost
    assert ops.default_block_size(3000) == 3000
    assert ops.default_block_size(65536, "in_forward", 128) == 512


def test_compiled_temp_memory_is_a_fraction_of_the_unfused():
    n, d, v = 256, 32, 8192
    hidden, weight, _, labels = _inputs(seed=9, n=n, d=d, v=v, ignore_frac=0.0)

    def temp(fn):
        grad = jax.jit(jax.value_and_grad(lambda h, w: fn(h, w, labels).mean(), argnums=(0, 1)))
        return grad.lower(hidden, weight).compile().memory_analysis().temp_size_in_bytes

    unfused = temp(_unfused)
    assert unfused >= n * v * 4  # at least one [tokens, vocab] float32 buffer
    for options in ({"strategy": "recompute"}, {"strategy": "in_forward", "token_block_size": 32}):
        fused = temp(functools.partial(ops.linear_cross_entropy, block_size=512, **options))
        assert fused * 6 <= unfused, (options, fused, unfused)


# --------------------------------------------------------------------------------------------
# edge inputs


def test_all_tokens_ignored_gives_zero_loss_and_zero_gradients():
    hidden, weight, bias, _ = _inputs(seed=10)
    labels = np.full((N,), IGNORE, np.int32)
    loss, grads = _vjp(
        ops.linear_cross_entropy,
        hidden,
        weight,
        bias,
        labels,
        np.ones(N),
        ignore_index=IGNORE,
        block_size=8,
    )
    assert np.all(np.asarray(loss) == 0)
    for grad in grads:
        assert np.all(np.asarray(grad) == 0)


def test_ignored_token_with_non_finite_hidden_gets_exact_zero_gradient():
    hidden, weight, _, labels = _inputs(seed=11)
    labels[2] = IGNORE
    hidden[2] = np.inf
    loss, (dh, _) = _vjp(
        ops.linear_cross_entropy,
        hidden,
        weight,
        None,
        labels,
        np.ones(N),
        ignore_index=IGNORE,
        block_size=8,
    )
    assert float(loss[2]) == 0.0
    assert np.all(np.asarray(dh[2]) == 0)
    others = np.arange(N) != 2
    assert np.all(np.isfinite(np.asarray(loss)[others]))
    assert np.all(np.isfinite(np.asarray(dh)[others]))


def test_huge_logits_stay_finite_and_exact():
    hidden, weight, _, labels = _inputs(seed=12, ignore_frac=0.0)
    hidden = hidden * 1e4 / np.abs(hidden @ weight).max()  # logits up to +-1e4
    g = np.ones(N, np.float32)
    loss, grads = _vjp(ops.linear_cross_entropy, hidden, weight, None, labels, g, block_size=8)
    ref_loss, ref_grads = _np_loss_and_grads(hidden, weight, None, labels, g)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-2)
    for got, want in zip(grads, ref_grads, strict=False):
        assert np.all(np.isfinite(np.asarray(got)))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())


@pytest.mark.parametrize("fn", ["fused", "jvp_twin"])
def test_masked_vocabulary_columns_with_minus_inf_bias(fn):
    hidden, weight, bias, labels = _inputs(seed=29, ignore_frac=0.3)
    bias = bias.copy()
    bias[:5] = -np.inf  # a whole block of -inf logits ...
    bias[[11, 23]] = -np.inf  # ... and scattered ones
    labels = np.where(np.isin(labels, [0, 1, 2, 3, 4, 11, 23]), 7, labels).astype(np.int32)
    kw = {"ignore_index": IGNORE, "z_loss": 1e-3, "block_size": 5}
    kernel = ops.linear_cross_entropy if fn == "fused" else ops.linear_cross_entropy_jvp
    g = np.ones(N, np.float32)
    loss, grads = _vjp(kernel, hidden, weight, bias, labels, g, **kw)
    ref_loss, ref_grads = _vjp(_unfused, hidden, weight, bias, labels, g, **kw)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, atol=1e-6)
    for got, want in zip(grads, ref_grads, strict=True):
        assert np.all(np.isfinite(np.asarray(got)))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_zero_inputs_give_log_vocab():
    loss = ops.linear_cross_entropy(jnp.zeros((3, D)), jnp.zeros((D, V)), jnp.array([0, 5, 36]))
    np.testing.assert_allclose(loss, np.full(3, np.log(V)), rtol=1e-6)


def test_out_of_range_label_is_nan_and_leaves_other_tokens_alone():
    hidden, weight, _, labels = _inputs(seed=13, ignore_frac=0.0)
    bad = labels.copy()
    bad[4] = V  # out of range, not ignored
    f = jax.jit(lambda h, y: ops.linear_cross_entropy(h, weight, y, block_size=8))
    loss, good = np.asarray(f(hidden, bad)), np.asarray(f(hidden, labels))
    assert np.isnan(loss[4])
    others = np.arange(N) != 4
    np.testing.assert_array_equal(loss[others], good[others])
    ref = np.asarray(jax.jit(_unfused)(hidden, weight, bad))
    assert np.isnan(ref[4])  # same convention as the cross-entropy kernel
    dh = jax.jit(jax.grad(lambda h: f(h, bad).sum()))(hidden)
    assert np.all(np.isnan(np.asarray(dh[4])))
    assert np.all(np.isfinite(np.asarray(dh)[others]))


def test_block_size_larger_than_vocab_and_vocab_of_one():
    hidden, weight, _, labels = _inputs(seed=14, ignore_frac=0.0)
    a = ops.linear_cross_entropy(hidden, weight, labels, block_size=10_000)
    b = ops.linear_cross_entropy(hidden, weight, labels, block_size=V)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    one = ops.linear_cross_entropy(hidden, weight[:, :1], np.zeros(N, np.int32))
    np.testing.assert_allclose(one, np.zeros(N), atol=1e-6)


def test_default_block_size():
    assert ops.default_block_size(10) == 10
    assert 1024 <= ops.default_block_size(65536) <= 16384


# --------------------------------------------------------------------------------------------
# transforms


def test_jit_equals_eager_and_vmap_equals_loop():
    hidden, weight, bias, labels = _inputs(seed=15)
    kw = {"bias": bias, "ignore_index": IGNORE, "z_loss": 1e-3, "block_size": 8}

    def f(h, w, y):
        return ops.linear_cross_entropy(h, w, y, **kw)

    np.testing.assert_allclose(
        jax.jit(f)(hidden, weight, labels), f(hidden, weight, labels), rtol=1e-6
    )
    h2, _, _, y2 = _inputs(seed=16)
    hs, ys = jnp.stack([hidden, h2]), jnp.stack([labels, y2])
    jf = jax.jit(f)
    batched = jax.jit(jax.vmap(f, in_axes=(0, None, 0)))(hs, weight, ys)
    looped = jnp.stack([jf(hidden, weight, labels), jf(h2, weight, y2)])
    np.testing.assert_allclose(batched, looped, rtol=1e-6)

    def total(w, h, y):
        return f(h, w, y).sum()

    dw = jax.jit(jax.vmap(jax.grad(total), in_axes=(None, 0, 0)))(weight, hs, ys)
    np.testing.assert_allclose(
        dw[1], jax.jit(jax.grad(total))(weight, h2, y2), rtol=1e-5, atol=1e-7
    )


def test_jvp_twin_matches_values_and_supports_forward_mode():
    hidden, weight, bias, labels = _inputs(seed=17)
    kw = {"ignore_index": IGNORE, "label_smoothing": 0.1, "z_loss": 1e-2, "block_size": 8}

    def twin(h, w, b):
        return ops.linear_cross_entropy_jvp(h, w, labels, bias=b, **kw)

    def ref(h, w, b):
        return _unfused(h, w, labels, bias=b, jvp=True, **kw)

    primals = (hidden, weight, bias)
    np.testing.assert_allclose(jax.jit(twin)(*primals), jax.jit(ref)(*primals), rtol=1e-6)
    rng = np.random.default_rng(18)
    tangents = tuple(rng.normal(size=x.shape).astype(np.float32) for x in primals)
    _, t_twin = jax.jit(lambda *t: jax.jvp(twin, primals, t))(*tangents)
    _, t_ref = jax.jit(lambda *t: jax.jvp(ref, primals, t))(*tangents)
    np.testing.assert_allclose(t_twin, t_ref, rtol=1e-5, atol=1e-5)
    # Reverse mode through the twin equals the fused custom_vjp.
    g_twin = jax.jit(jax.grad(lambda w: twin(hidden, w, bias).sum()))(weight)
    g_fused = jax.jit(
        jax.grad(lambda w: ops.linear_cross_entropy(hidden, w, labels, bias=bias, **kw).sum())
    )(weight)
    np.testing.assert_allclose(g_twin, g_fused, rtol=1e-5, atol=1e-6)
    # Hessian with respect to one token's hidden state.
    hess = jax.jit(
        jax.hessian(
            lambda h: ops.linear_cross_entropy_jvp(h, weight, labels[:2], bias=bias, **kw).sum()
        )
    )(hidden[:2])
    assert hess.shape == (2, D, 2, D) and np.all(np.isfinite(np.asarray(hess)))


def test_fused_kernel_refuses_forward_mode_with_a_clear_error():
    hidden, weight, _, labels = _inputs(seed=19)
    with pytest.raises(TypeError):
        jax.jvp(lambda h: ops.linear_cross_entropy(h, weight, labels), (hidden,), (hidden,))


# --------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": np.zeros(N, np.float32)}, TypeError, "labels"),
        ({"labels": np.zeros(N + 1, np.int32)}, ValueError, "labels"),
        ({"weight": np.zeros((D + 1, V), np.float32)}, ValueError, "weight"),
        ({"weight": np.zeros((D, V), np.int32)}, TypeError, "weight"),
        ({"bias": np.zeros(V + 1, np.float32)}, ValueError, "bias"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ({"z_loss": -1.0}, ValueError, "z_loss"),
        ({"block_size": 0}, ValueError, "block_size"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, error, match):
    hidden, weight, _, labels = _inputs(seed=20)
    args = {"hidden": hidden, "weight": weight, "labels": labels, **kwargs}
    with pytest.raises(error, match=match):
        ops.linear_cross_entropy(args.pop("hidden"), args.pop("weight"), args.pop("labels"), **args)


def test_traced_option_is_refused():
    hidden, weight, _, labels = _inputs(seed=21)
    with pytest.raises(TypeError, match="z_loss"):
        jax.jit(lambda z: ops.linear_cross_entropy(hidden, weight, labels, z_loss=z))(0.1)


# --------------------------------------------------------------------------------------------
# the class handle


@pytest.mark.parametrize(
    "reduction", ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None]
)
@pytest.mark.parametrize("with_weight", [False, True])
def test_class_reductions_match_numpy(reduction, with_weight):
    hidden, weight, bias, labels = _inputs(seed=22)
    sw = np.linspace(0.0, 2.0, N).astype(np.float32) if with_weight else None
    loss = LinearCrossEntropy(ignore_class=IGNORE, label_smoothing=0.1, reduction=reduction)
    got = jax.jit(loss)(labels, (hidden, weight, bias), sample_weight=sw)
    values, _ = _np_loss_and_grads(
        hidden, weight, bias, labels, np.ones(N), ignore_index=IGNORE, label_smoothing=0.1
    )
    want = np_reduce(values, sw, mask=labels != IGNORE, reduction=reduction)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_class_mean_divides_by_valid_tokens_and_gradient_matches_numpy():
    hidden, weight, _, labels = _inputs(seed=23)
    valid = labels != IGNORE
    loss = LinearCrossEntropy(ignore_class=IGNORE, z_loss=1e-3, block_size=8)
    val, (dh, dw) = jax.value_and_grad(lambda h, w: loss(labels, (h, w)), argnums=(0, 1))(
        hidden, weight
    )
    g = np.full(N, 1.0 / valid.sum())
    ref, (rdh, rdw, _) = _np_loss_and_grads(
        hidden, weight, None, labels, g, ignore_index=IGNORE, z_loss=1e-3
    )
    np.testing.assert_allclose(val, ref.sum() / valid.sum(), rtol=1e-6)
    np.testing.assert_allclose(dh, rdh, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dw, rdw, rtol=1e-5, atol=1e-7)


def test_class_is_a_frozen_hashable_config_round_tripping_loss():
    loss = LinearCrossEntropy(
        ignore_class=-1, label_smoothing=0.1, z_loss=1e-4, block_size=256, reduction="sum"
    )
    assert loss.name == "linear_cross_entropy"
    assert hash(loss) == hash(LinearCrossEntropy.from_config(loss.get_config()))
    assert LinearCrossEntropy.from_config(loss.get_config()) == loss
    assert set(loss.get_config()) >= {
        "ignore_class",
        "label_smoothing",
        "z_loss",
        "block_size",
        "reduction",
        "name",
        "dtype",
        "axis_name",
    }
    with pytest.raises(AttributeError):
        loss.z_loss = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"label_smoothing": 2.0}, ValueError, "label_smoothing"),
        ({"z_loss": -0.1}, ValueError, "z_loss"),
        ({"block_size": 0}, ValueError, "block_size"),
        ({"ignore_class": "pad"}, TypeError, "ignore_class"),  # a wrong type, not a bad value
        ({"reduction": "avg"}, ValueError, "reduction"),
    ],
    ids=["label-smoothing", "z-loss", "block-size", "ignore-class", "reduction"],
)
def test_class_validates_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        LinearCrossEntropy(**kwargs)


def test_class_refuses_an_array_prediction():
    hidden, weight, _, labels = _inputs(seed=24)
    with pytest.raises(TypeError, match="y_pred"):
        LinearCrossEntropy()(labels, hidden @ weight)


def test_class_dtype_none_keeps_bf16_operands_and_returns_grads_in_their_dtype():
    hidden, weight, _, labels = _inputs(seed=25)
    hb, wb = jnp.asarray(hidden, jnp.bfloat16), jnp.asarray(weight, jnp.bfloat16)
    loss = LinearCrossEntropy(ignore_class=IGNORE)
    val, dw = jax.value_and_grad(lambda w: loss(labels, (hb, w)))(wb)
    assert val.dtype == jnp.float32 and dw.dtype == jnp.bfloat16
    bf = LinearCrossEntropy(ignore_class=IGNORE, dtype="mixed_bfloat16")
    assert bf(labels, (hidden, weight)).dtype == jnp.bfloat16


def test_function_handle_and_top_level_exports():
    hidden, weight, bias, labels = _inputs(seed=26)
    per_token = linear_crossentropy(labels, (hidden, weight, bias), ignore_class=IGNORE)
    np.testing.assert_allclose(
        per_token,
        ops.linear_cross_entropy(hidden, weight, labels, bias=bias, ignore_index=IGNORE),
        rtol=1e-6,
    )
    assert jaxloss.LinearCrossEntropy is LinearCrossEntropy
    assert jaxloss.linear_crossentropy is linear_crossentropy


def test_class_under_shard_map_equals_global_batch():
    devices = jax.devices()
    if len(devices) < 2:
        pytest.skip("needs several (host) devices")
    n_dev = 2
    mesh = Mesh(np.array(devices[:n_dev]), ("data",))
    hidden, weight, _, labels = _inputs(seed=27, n=8 * n_dev)
    local = LinearCrossEntropy(ignore_class=IGNORE, axis_name="data", block_size=8)
    glob = LinearCrossEntropy(ignore_class=IGNORE, block_size=8)

    def sharded(h, w, y):
        return local(y, (h, w))

    fn = jax.jit(
        jax.shard_map(sharded, mesh=mesh, in_specs=(P("data"), P(), P("data")), out_specs=P())
    )
    np.testing.assert_allclose(
        fn(hidden, weight, labels), glob(labels, (hidden, weight)), rtol=1e-6
    )


def test_gradient_under_shard_map_equals_global_batch():
    devices = jax.devices()
    if len(devices) < 2:
        pytest.skip("needs several (host) devices")
    mesh = Mesh(np.array(devices[:2]), ("data",))
    hidden, weight, bias, labels = _inputs(seed=28, n=16)
    local = LinearCrossEntropy(ignore_class=IGNORE, axis_name="data", block_size=8)
    glob = LinearCrossEntropy(ignore_class=IGNORE, block_size=8)

    def step(h, w, b, y):
        return jax.grad(lambda w, b: local(y, (h, w, b)), argnums=(0, 1))(w, b)

    fn = jax.jit(
        jax.shard_map(
            step, mesh=mesh, in_specs=(P("data"), P(), P(), P("data")), out_specs=(P(), P())
        )
    )
    dw, db = fn(hidden, weight, bias, labels)
    rdw, rdb = jax.jit(jax.grad(lambda w, b: glob(labels, (hidden, w, b)), argnums=(0, 1)))(
        weight, bias
    )
    np.testing.assert_allclose(dw, rdw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------
# head features: layouts, soft cap, smoothing styles, token weights, auxiliary outputs, strategies


def np_head(hidden, weight, bias, labels, g, g_lse=None, g_lp=None, **kw):
    """float64 reference of the unfused head with every option, and its vjp.

    Returns ``(loss, aux, grads)``: ``aux = (lse, argmax, correct, label_logprob)`` and ``grads =
    (d_hidden, d_weight, d_bias, d_token_weights)`` for the cotangents ``g`` (loss), ``g_lse`` and
    ``g_lp`` (the auxiliary lse and label log-probability).
    """
    layout = kw.get("weight_layout", "hv")
    ignore, ls = kw.get("ignore_index"), kw.get("label_smoothing", 0.0)
    style, zl = kw.get("label_smoothing_style", "uniform"), kw.get("z_loss", 0.0)
    cap, tw = kw.get("logit_soft_cap"), kw.get("token_weights")
    h = np.float64(hidden).reshape(-1, np.shape(hidden)[-1])
    w = np.float64(weight) if layout == "hv" else np.float64(weight).T
    y = np.asarray(labels).reshape(-1)
    zr = h @ w + (0.0 if bias is None else np.float64(bias))
    zc = zr if cap is None else cap * np.tanh(zr / cap)
    n, v = zc.shape
    m = zc.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(zc - m).sum(axis=1, keepdims=True)))[:, 0]
    logp = zc - lse[:, None]
    p = np.exp(logp)
    ignored = np.zeros(n, bool) if ignore is None else y == ignore
    onehot = np.eye(v)[np.where(ignored, 0, y)]
    if style == "uniform":
        t = (1 - ls) * onehot + ls / v
    else:
        t = (1 - ls) * onehot + ls / (v - 1) * (1 - onehot)
    entropy = (
        0.0
        if style == "uniform"
        else -(np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0)).sum(1)
    )
    unweighted = -(t * logp).sum(1) - entropy + zl * lse**2
    twf = np.ones(n) if tw is None else np.float64(tw).reshape(-1)
    loss = np.where(ignored, 0.0, unweighted * twf)
    lp = np.where(ignored, 0.0, (onehot * logp).sum(1))
    argmax = zc.argmax(axis=1)
    aux = (lse, argmax, ~ignored & (argmax == y), lp)
    g = np.float64(g).reshape(-1)
    dzc = (g * twf)[:, None] * ((1 + 2 * zl * lse)[:, None] * p - t)
    if g_lse is not None:
        dzc = dzc + np.float64(g_lse).reshape(-1)[:, None] * p
    if g_lp is not None:
        dzc = dzc + np.float64(g_lp).reshape(-1)[:, None] * (onehot - p)
    dzc = np.where(ignored[:, None], 0.0, dzc)
    dzr = dzc if cap is None else dzc * (1 - (zc / cap) ** 2)
    dw = h.T @ dzr if layout == "hv" else dzr.T @ h
    dtw = np.where(ignored, 0.0, g * unweighted)
    shape = np.shape(labels)
    grads = ((dzr @ w.T).reshape(np.shape(hidden)), dw, dzr.sum(0), dtw.reshape(shape))
    return loss.reshape(shape), tuple(a.reshape(shape) for a in aux), grads


FEATURE_CASES = {
    "vh-layout": {"weight_layout": "vh", "block_size": 5},
    "soft-cap-bias": {"logit_soft_cap": 1.5, "bias": True, "block_size": 16},
    "others-smoothing-ignore": {
        "label_smoothing": 0.2,
        "label_smoothing_style": "others",
        "ignore_index": IGNORE,
        "block_size": 5,
    },
    "token-weights-zloss-ignore": {"token_weights": True, "z_loss": 1e-2, "ignore_index": IGNORE},
    "aux-gradients-cap-vh": {
        "return_aux": True,
        "logit_soft_cap": 3.0,
        "ignore_index": IGNORE,
        "weight_layout": "vh",
        "block_size": 8,
    },
    "in-forward-everything": {
        "strategy": "in_forward",
        "token_weights": True,
        "label_smoothing": 0.1,
        "z_loss": 1e-3,
        "logit_soft_cap": 2.0,
        "bias": True,
        "ignore_index": IGNORE,
        "token_block_size": 5,
    },
    "in-forward-vh-aux": {"strategy": "in_forward", "weight_layout": "vh", "return_aux": True},
    "in-forward-shared-cotangent": {
        "strategy": "in_forward",
        "shared_cotangent": True,
        "token_weights": True,
        "label_smoothing": 0.1,
        "label_smoothing_style": "others",
        "z_loss": 1e-3,
        "logit_soft_cap": 2.0,
        "bias": True,
        "ignore_index": IGNORE,
        "weight_layout": "vh",
        "return_aux": True,
        "token_block_size": 4,
        "block_size": 8,
    },
    "jvp-twin-everything": {
        "jvp": True,
        "return_aux": True,
        "weight_layout": "vh",
        "logit_soft_cap": 2.0,
        "label_smoothing": 0.1,
        "label_smoothing_style": "others",
        "token_weights": True,
        "bias": True,
        "ignore_index": IGNORE,
        "block_size": 7,
    },
}


@pytest.mark.parametrize("case", list(FEATURE_CASES))
def test_head_features_match_float64_unfused_head(case):
    options = dict(FEATURE_CASES[case])
    use_bias, use_tw = options.pop("bias", False), options.pop("token_weights", False)
    # A cotangent shared by every token and none on the auxiliary outputs: in_forward's fast path.
    shared = options.pop("shared_cotangent", False)
    fn = ops.linear_cross_entropy_jvp if options.pop("jvp", False) else ops.linear_cross_entropy
    aux = options.get("return_aux", False)
    hidden, weight, bias, labels = _inputs(seed=40, ignore_frac=_ignore_frac(options))
    hidden = 2.0 * hidden  # logits of a few units, so that a soft cap of 1.5-3 matters
    if options.get("weight_layout") == "vh":
        weight = np.ascontiguousarray(weight.T)
    rng = np.random.default_rng(41)
    tw = rng.uniform(0.0, 2.0, size=N).astype(np.float32)
    g = rng.uniform(0.5, 1.5, N).astype(np.float32)
    g_lse, g_lp = rng.normal(size=(2, N)).astype(np.float32)
    if shared:
        g, g_lse, g_lp = np.full(N, 0.5, np.float32), 0.0 * g_lse, 0.0 * g_lp

    @jax.jit
    def go(h, w, b, t):
        def f(h, w, b, t):
            out = fn(
                h,
                w,
                labels,
                bias=b if use_bias else None,
                token_weights=t if use_tw else None,
                **options,
            )
            loss, a = out if aux else (out, None)
            total = jnp.sum(loss * g)
            if aux:
                total = total + jnp.sum(a.lse * g_lse) + jnp.sum(a.label_logprob * g_lp)
            return total, (loss, a)

        return jax.value_and_grad(f, argnums=(0, 1, 2, 3), has_aux=True)(h, w, b, t)

    (_, (loss, a)), grads = go(hidden, weight, bias, tw)
    ref_kw = {k: v for k, v in options.items() if k in _NP_HEAD_OPTIONS}
    if use_tw:
        ref_kw["token_weights"] = tw
    rloss, raux, rgrads = np_head(
        hidden,
        weight,
        bias if use_bias else None,
        labels,
        g,
        g_lse if aux else None,
        g_lp if aux else None,
        **ref_kw,
    )
    tol = {"rtol": 2e-5, "atol": 2e-6}
    np.testing.assert_allclose(loss, rloss, **tol)
    if aux:
        np.testing.assert_allclose(a.lse, raux[0], **tol)
        np.testing.assert_array_equal(a.argmax, raux[1])
        np.testing.assert_array_equal(a.correct, raux[2])
        np.testing.assert_allclose(a.label_logprob, raux[3], **tol)
    names = ("hidden", "weight", "bias", "token_weights")
    used = (True, True, use_bias, use_tw)
    for name, got, want, on in zip(names, grads, rgrads, used, strict=True):
        np.testing.assert_allclose(got, want if on else 0.0, **tol, err_msg=name)


_NP_HEAD_OPTIONS = (
    "weight_layout",
    "ignore_index",
    "label_smoothing",
    "label_smoothing_style",
    "z_loss",
    "logit_soft_cap",
)


@pytest.mark.parametrize("block_size", [None, 8], ids=["one-block", "ragged-blocks"])
def test_in_forward_is_exact_for_every_cotangent(block_size):
    """Its forward's gradients serve a cotangent shared by every contributing token; any other
    cotangent (per-token weights applied outside, the auxiliary outputs) takes the recomputing
    backward. One compiled program, both kinds of cotangent, float64 reference for each."""
    hidden, weight, bias, labels = _inputs(seed=42, ignore_frac=0.3)
    ref_kw = {"ignore_index": IGNORE, "z_loss": 1e-3}
    kw = {**ref_kw, "return_aux": True, "block_size": block_size}

    @jax.jit
    def grads(g, g_lse):
        def f(h, w, b):
            loss, aux = ops.linear_cross_entropy(h, w, labels, bias=b, strategy="in_forward", **kw)
            return jnp.sum(loss * g) + jnp.sum(aux.lse * g_lse)

        return jax.grad(f, argnums=(0, 1, 2))(hidden, weight, bias)

    rng = np.random.default_rng(43)
    zeros = np.zeros(N, np.float32)
    cases = {
        "shared": (np.where(labels == IGNORE, 7.0, 0.25).astype(np.float32), zeros),
        "per-token": (np.linspace(0.5, 1.5, N).astype(np.float32), zeros),
        "aux": (np.full(N, 0.25, np.float32), rng.normal(size=N).astype(np.float32)),
    }
    for name, (g, g_lse) in cases.items():
        got = grads(jnp.asarray(g), jnp.asarray(g_lse))
        _, _, want = np_head(hidden, weight, bias, labels, g, g_lse, None, **ref_kw)
        for x, y, arg in zip(got, want, ("hidden", "weight", "bias"), strict=False):
            np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6, err_msg=f"{name} d_{arg}")


def test_uniform_smoothing_matches_optax_and_others_has_zero_minimum():
    optax = pytest.importorskip("optax")
    hidden, weight, bias, labels = _inputs(seed=43, ignore_frac=0.0)
    loss = ops.linear_cross_entropy(hidden, weight, labels, bias=bias, label_smoothing=0.3)
    logits = hidden @ weight + bias
    target = optax.smooth_labels(jax.nn.one_hot(labels, V), 0.3)
    np.testing.assert_allclose(loss, optax.softmax_cross_entropy(logits, target), rtol=2e-5)
    # "others": a prediction equal to the smoothed target has zero loss (a KL divergence).
    t = np.full((3, 5), 0.2 / 4)
    t[np.arange(3), [0, 3, 4]] = 0.8
    kl = ops.linear_cross_entropy(
        jnp.asarray(np.log(t), jnp.float32),
        jnp.eye(5),
        jnp.array([0, 3, 4]),
        label_smoothing=0.2,
        label_smoothing_style="others",
    )
    np.testing.assert_allclose(kl, 0.0, atol=2e-6)


def test_causal_lm_shift_matches_numpy():
    rng = np.random.default_rng(44)
    tokens = rng.integers(0, 50, size=(3, 6)).astype(np.int32)
    valid = np.ones((3, 6), bool)
    valid[1, 4:] = False
    valid[2, 1:] = False
    want = np.full((3, 6), IGNORE)
    want[:, :-1] = tokens[:, 1:]
    want[:, :-1][~valid[:, 1:]] = IGNORE
    got = ops.causal_lm_shift(tokens, valid=valid, ignore_index=IGNORE)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        ops.causal_lm_shift(tokens.T, axis=0, ignore_index=-1)[:-1], tokens.T[1:]
    )
    with pytest.raises(TypeError, match="causal_lm_shift: `tokens` must hold integer"):
        ops.causal_lm_shift(np.ones((2, 3)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight_layout": "dv"}, ValueError, "`weight_layout` must be 'hv' or 'vh'"),
        ({"label_smoothing_style": "t5"}, ValueError, "`label_smoothing_style` must be"),
        ({"strategy": "fast"}, ValueError, "`strategy` must be 'recompute' or 'in_forward'"),
        ({"logit_soft_cap": 0.0}, ValueError, "`logit_soft_cap` must be None or > 0"),
        ({"token_weights": np.ones(3)}, ValueError, "`token_weights` must have the shape"),
        ({"return_aux": 1}, TypeError, "`return_aux` must be True or False"),
        ({"token_block_size": 0}, ValueError, "`token_block_size` must be None or an int >= 1"),
        ({"weight_layout": "vh"}, ValueError, "the D axis of `weight` \\[V, D\\]"),
    ],
    ids=["layout", "style", "strategy", "cap", "token-weights", "aux", "token-block", "vh-shape"],
)
def test_new_options_are_checked(kwargs, error, match):
    hidden, weight, _, labels = _inputs(seed=45)
    with pytest.raises(error, match=match):
        ops.linear_cross_entropy(hidden, weight, labels, **kwargs)


@pytest.mark.parametrize("variant", ["recompute", "in_forward", "jvp_twin"])
def test_ignored_token_with_nan_hidden_state_leaves_every_gradient_finite(variant):
    """Ignored means ignored: a NaN hidden row of an ignored token reaches no gradient."""
    from jaxloss import ops

    rng = np.random.default_rng(11)
    hidden = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32).at[1].set(jnp.nan)
    weight = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    labels = jnp.array([1, -100, 4, 0])

    def loss(h, w):
        if variant == "jvp_twin":
            return ops.linear_cross_entropy_jvp(h, w, labels, ignore_index=-100).sum()
        return ops.linear_cross_entropy(h, w, labels, ignore_index=-100, strategy=variant).sum()

    value, (g_hidden, g_weight) = jax.value_and_grad(loss, argnums=(0, 1))(hidden, weight)
    keep = np.array([0, 2, 3])
    logits = np.asarray(hidden, np.float64)[keep] @ np.asarray(weight, np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(value, -logp[np.arange(3), [1, 4, 0]].sum(), rtol=1e-5)
    assert np.all(np.isfinite(g_weight)) and np.all(np.asarray(g_hidden)[1] == 0)
    assert np.all(np.isfinite(np.asarray(g_hidden)[keep]))
