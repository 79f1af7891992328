"""jaxloss.ops cross-entropy kernels against float64 NumPy formulas.

Values and gradients, check_grads on the custom VJPs (and forward mode on the ``_jvp`` twins), edge
inputs, bf16, and compiled memory.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxloss import ops

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------------------------
# float64 references written from the definitions


def np_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_lse(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis)


def np_sparse(x, y, axis=-1, ls=0.0, z=0.0, cw=None, ignore=None):
    """Loss and d(sum loss)/dx for integer labels, float64."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    y = np.asarray(y)
    k = x.shape[-1]
    logp = np_log_softmax(x)
    lse = np_lse(x)
    onehot = np.eye(k)[np.clip(y, 0, k - 1)]
    target = (1 - ls) * onehot + ls / k
    loss = -(target * logp).sum(-1) + z * lse**2
    grad = np.exp(logp) * (1 + 2 * z * lse)[..., None] - target
    w = np.ones_like(loss) if cw is None else np.asarray(cw, np.float64)[np.clip(y, 0, k - 1)]
    loss, grad = loss * w, grad * w[..., None]
    if ignore is not None:
        loss = np.where(y == ignore, 0.0, loss)
        grad = np.where((y == ignore)[..., None], 0.0, grad)
    return loss, np.moveaxis(grad, -1, axis)


def np_dense(x, t, ls=0.0, z=0.0):
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    k = x.shape[-1]
    t = (1 - ls) * t + ls / k
    lse = np_lse(x)
    loss = -(np.where(t != 0, t * np_log_softmax(x), 0.0)).sum(-1) + z * lse**2
    grad = (t.sum(-1) + 2 * z * lse)[..., None] * np.exp(np_log_softmax(x)) - t
    return loss, grad


def np_sigmoid(x, y, pw=None, ls=0.0):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    y = y * (1 - ls) + 0.5 * ls
    pw = 1.0 if pw is None else np.asarray(pw, np.float64)
    log_sig = -np.logaddexp(0.0, -x)
    log_one_minus = -np.logaddexp(0.0, x)
    loss = -(pw * y * log_sig + (1 - y) * log_one_minus)
    sig = np.exp(log_sig)
    grad = (1 - y) * sig - pw * y * (1 - sig)
    return loss, grad


def _logits(shape, scale=3.0):
    return jnp.asarray(RNG.normal(size=shape) * scale, jnp.float32)


# ----------------------------------------------------------------------------------------------
# sparse


SPARSE_OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-3},
    {"ignore_index": -100},
    {"ignore_index": 0},
    {"class_weight": [0.5, 1.0, 2.0, 0.0, 1.5, 1.0, 3.0]},
    {
        "label_smoothing": 0.2,
        "z_loss": 0.01,
        "ignore_index": -1,
        "class_weight": [1, 2, 3, 4, 5, 6, 7],
    },
]


@pytest.mark.parametrize("options", SPARSE_OPTIONS)
@pytest.mark.parametrize("axis", [-1, 1])
def test_sparse_value_and_gradient_match_float64_formula(options, axis):
    x = _logits((6, 7, 3)) if axis == 1 else _logits((6, 7))
    y = RNG.integers(0, 7, size=(6, 3) if axis == 1 else (6,))
    ignore = options.get("ignore_index")
    if ignore is not None:
        y[1] = ignore
    kw = dict(options)
    if "class_weight" in kw:
        kw["class_weight"] = jnp.asarray(kw["class_weight"], jnp.float32)
    _, grad = jax.jit(
        jax.value_and_grad(
            lambda z: ops.sparse_softmax_cross_entropy(z, jnp.asarray(y), axis=axis, **kw).sum()
        )
    )(x)
    per = jax.jit(lambda z: ops.sparse_softmax_cross_entropy(z, jnp.asarray(y), axis=axis, **kw))(x)
    exp_loss, exp_grad = np_sparse(
        x,
        y,
        axis=axis,
        ls=options.get("label_smoothing", 0.0),
        z=options.get("z_loss", 0.0),
        cw=options.get("class_weight"),
        ignore=ignore,
    )
    np.testing.assert_allclose(per, exp_loss, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(grad, exp_grad, rtol=2e-5, atol=2e-6)
    assert per.dtype == jnp.float32 and grad.dtype == jnp.float32


def test_sparse_matches_optax_and_the_jvp_twin():
    optax = pytest.importorskip("optax")
    x, y = _logits((9, 13)), jnp.asarray(RNG.integers(0, 13, size=9))
    np.testing.assert_allclose(
        ops.sparse_softmax_cross_entropy(x, y),
        optax.softmax_cross_entropy_with_integer_labels(x, y),
        rtol=1e-6,
        atol=1e-6,
    )
    for kw in ({}, {"label_smoothing": 0.3, "z_loss": 0.1, "ignore_index": 3}):
        f = lambda z, kw=kw: ops.sparse_softmax_cross_entropy(z, y, **kw).sum()
        g = lambda z, kw=kw: ops.sparse_softmax_cross_entropy_jvp(z, y, **kw).sum()
        np.testing.assert_allclose(f(x), g(x), rtol=1e-6)
        np.testing.assert_allclose(jax.grad(f)(x), jax.grad(g)(x), rtol=1e-6, atol=1e-7)


def test_check_grads_on_every_kernel():
    with jax.enable_x64(True):
        x = jnp.asarray(RNG.normal(size=(4, 5)), jnp.float64)
        y = jnp.asarray([0, 4, 2, 1])
        cw = jnp.asarray([0.5, 1.0, 2.0, 1.5, 0.7])
        t = jax.nn.softmax(jnp.asarray(RNG.normal(size=(4, 5))))
        yb = jnp.asarray(RNG.uniform(size=(4, 5)))
        pw = jnp.linspace(0.5, 2.0, 5)
        sparse = lambda x, cw: ops.sparse_softmax_cross_entropy(
            x, y, label_smoothing=0.1, z_loss=0.01, class_weight=cw, ignore_index=2
        )
        dense = lambda x, t: ops.softmax_cross_entropy(x, t, label_smoothing=0.1, z_loss=0.01)
        sigm = lambda x, yb, pw: ops.sigmoid_binary_cross_entropy(
            x, yb, pos_weight=pw, label_smoothing=0.1
        )
        for f, args in ((sparse, (x, cw)), (dense, (x, t)), (sigm, (x, yb, pw))):
            # custom_vjp: reverse mode, first and second order (reverse-over-reverse)
            check_grads(jax.jit(f), args, order=2, modes=["rev"])
        sparse_j = lambda x, cw: ops.sparse_softmax_cross_entropy_jvp(
            x, y, label_smoothing=0.1, z_loss=0.01, class_weight=cw, ignore_index=2
        )
        dense_j = lambda x, t: ops.softmax_cross_entropy_jvp(x, t, label_smoothing=0.1, z_loss=0.01)
        sigm_j = lambda x, yb, pw: ops.sigmoid_binary_cross_entropy_jvp(
            x, yb, pos_weight=pw, label_smoothing=0.1
        )
        for f, args in ((sparse_j, (x, cw)), (dense_j, (x, t)), (sigm_j, (x, yb, pw))):
            check_grads(jax.jit(f), args, order=2, modes=["fwd", "rev"])


def test_forward_mode_needs_the_jvp_twin_and_hvp_matches_plain_autodiff():
    x, y = _logits((3, 6)), jnp.asarray([1, 5, 0])
    v = _logits((3, 6), 1.0)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda z: ops.sparse_softmax_cross_entropy(z, y), (x,), (v,))

    def plain(z):  # an independent formula, differentiated by JAX
        logp = jax.nn.log_softmax(z, axis=-1)
        t = 0.9 * jax.nn.one_hot(y, 6) + 0.1 / 6
        return jnp.sum(-(t * logp).sum(-1) + 0.01 * jax.nn.logsumexp(z, -1) ** 2)

    def ours(z):
        return ops.sparse_softmax_cross_entropy_jvp(z, y, label_smoothing=0.1, z_loss=0.01).sum()

    # compiled, not op by op: the same derivatives at a fraction of the test's time
    hvp_of = lambda f: jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
    hessian_of = lambda f: jax.jit(jax.hessian(f))
    np.testing.assert_allclose(hvp_of(ours)(x, v), hvp_of(plain)(x, v), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hessian_of(ours)(x), hessian_of(plain)(x), rtol=1e-5, atol=1e-6)
    t = jax.nn.softmax(_logits((3, 6)))
    dense = lambda z: ops.softmax_cross_entropy_jvp(z, t).sum()
    dense_plain = lambda z: -(t * jax.nn.log_softmax(z)).sum()
    np.testing.assert_allclose(hvp_of(dense)(x, v), hvp_of(dense_plain)(x, v), rtol=1e-5, atol=1e-6)


def test_ignored_rows_are_exact_zeros_even_with_nonfinite_logits():
    x = _logits((4, 5)).at[1].set(jnp.nan).at[2, 0].set(jnp.inf)
    y = jnp.asarray([0, -100, -100, 3])
    for fn in (ops.sparse_softmax_cross_entropy, ops.sparse_softmax_cross_entropy_jvp):
        loss, grad = jax.value_and_grad(
            lambda z, fn=fn: fn(z, y, ignore_index=-100, label_smoothing=0.1).sum()
        )(x)
        assert np.isfinite(loss)
        assert np.all(grad[1:3] == 0) and np.all(np.isfinite(grad))


def test_all_rows_ignored_gives_zero_loss_and_zero_gradient():
    x, y = _logits((3, 4)), jnp.full((3,), -1)
    loss, grad = jax.value_and_grad(
        lambda z: ops.sparse_softmax_cross_entropy(z, y, ignore_index=-1).sum()
    )(x)
    assert loss == 0 and np.all(grad == 0)


def test_out_of_range_label_poisons_only_its_own_row():
    x, y = _logits((4, 5)), jnp.asarray([0, 7, -3, 4])
    loss = ops.sparse_softmax_cross_entropy(x, y)
    grad = jax.grad(lambda z: ops.sparse_softmax_cross_entropy(z, y).sum())(x)
    assert np.isnan(loss[1]) and np.isnan(loss[2])
    assert np.all(np.isnan(grad[1])) and np.all(np.isnan(grad[2]))
    good, _ = np_sparse(x[jnp.asarray([0, 3])], np.asarray([0, 4]))
    np.testing.assert_allclose(loss[jnp.asarray([0, 3])], good, rtol=1e-5)
    assert np.all(np.isfinite(grad[jnp.asarray([0, 3])]))


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_give_finite_values_and_gradients(scale):
    x = jnp.asarray([[scale, 0.0, -scale], [0.0, scale, 1.0]], jnp.float32)
    y = jnp.asarray([2, 1])
    for fn in (ops.sparse_softmax_cross_entropy, ops.sparse_softmax_cross_entropy_jvp):
        loss, grad = jax.value_and_grad(lambda z, fn=fn: fn(z, y, label_smoothing=0.1).sum())(x)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
    t = jax.nn.one_hot(y, 3)
    loss, grad = jax.value_and_grad(lambda z: ops.softmax_cross_entropy(z, t).sum())(x)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    yb = jnp.asarray([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss, grad = jax.value_and_grad(lambda z: ops.sigmoid_binary_cross_entropy(z, yb).sum())(x)
    np.testing.assert_allclose(loss, np_sigmoid(x, yb)[0].sum(), rtol=1e-6)
    assert np.all(np.isfinite(grad))


# ----------------------------------------------------------------------------------------------
# dense and sigmoid


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"z_loss": 0.01}])
def test_dense_value_and_gradient_match_float64_formula(options):
    x = _logits((5, 6))
    t = jax.nn.softmax(_logits((5, 6)))
    t = t.at[0].set(jnp.asarray([0, 0, 1.0, 0, 0, 0]))
    t = t.at[1].multiply(0.5)  # targets that do not sum to 1: the gradient is still exact
    _, grad = jax.value_and_grad(lambda z: ops.softmax_cross_entropy(z, t, **options).sum())(x)
    exp_loss, exp_grad = np_dense(
        x, t, ls=options.get("label_smoothing", 0.0), z=options.get("z_loss", 0.0)
    )
    np.testing.assert_allclose(ops.softmax_cross_entropy(x, t, **options), exp_loss, rtol=2e-5)
    np.testing.assert_allclose(grad, exp_grad, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    "row",
    [
        [0.0, 5.0, -3.0, 1.0],  # one-pass path
        [0.0, 200.0, -3.0, 1.0],  # exp overflows: max-shift fallback
        [-95.0, -90.0, -99.0, -92.0],  # the sum underflows: fallback
        [-np.inf, 2.0, -3.0, 1.0],  # zero target on a masked logit: 0 * -inf, fallback
    ],
)
def test_dense_one_pass_and_its_fallback_agree_with_the_formula(row):
    x = jnp.asarray([row, [1.0, 2.0, 3.0, 4.0]], jnp.float32)
    t = jnp.asarray([[0.0, 0.5, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]])
    f = lambda z: ops.softmax_cross_entropy(z, t, z_loss=1e-3)
    loss, grad = jax.value_and_grad(lambda z: f(z).sum())(x)
    finite = np.where(np.isfinite(row), row, -1e30)  # the reference's stand-in for -inf
    xr = np.asarray([finite, [1.0, 2.0, 3.0, 4.0]])
    exp_loss, exp_grad = np_dense(xr, np.asarray(t, np.float64), z=1e-3)
    np.testing.assert_allclose(f(x), exp_loss, rtol=1e-6)
    np.testing.assert_allclose(loss, exp_loss.sum(), rtol=1e-6)
    # logits near -90 carry float32's ulp of 90 (7.6e-6) into exp(x - lse)
    np.testing.assert_allclose(grad, exp_grad, rtol=3e-5, atol=1e-7)


def test_dense_positive_target_on_masked_logit_is_infinite():
    x = jnp.asarray([[-jnp.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    t = jnp.asarray([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    loss = ops.softmax_cross_entropy(x, t)
    assert loss[0] == np.inf and np.isfinite(loss[1])


def test_dense_masked_logits_and_class_axis():
    x = _logits((3, 4)).at[:, 0].set(-jnp.inf)
    t = jnp.asarray([[0, 1.0, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0, 1.0]])
    _, grad = jax.value_and_grad(lambda z: ops.softmax_cross_entropy(z, t).sum())(x)
    assert np.all(np.isfinite(ops.softmax_cross_entropy(x, t))) and np.all(np.isfinite(grad))
    x2 = _logits((2, 4, 3))
    t2 = jax.nn.softmax(_logits((2, 4, 3)), axis=1)
    np.testing.assert_allclose(
        ops.softmax_cross_entropy(x2, t2, axis=1),
        ops.softmax_cross_entropy(jnp.moveaxis(x2, 1, -1), jnp.moveaxis(t2, 1, -1)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("pw", [None, 2.0, [0.5, 1.0, 3.0]])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_sigmoid_value_and_gradient_match_float64_formula(pw, ls):
    x = _logits((4, 3))
    y = jnp.asarray(RNG.integers(0, 2, size=(4, 3)), jnp.float32)
    pwa = None if pw is None else jnp.asarray(pw, jnp.float32)
    f = lambda z: ops.sigmoid_binary_cross_entropy(z, y, pos_weight=pwa, label_smoothing=ls)
    exp_loss, exp_grad = np_sigmoid(x, y, pw, ls)
    np.testing.assert_allclose(f(x), exp_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda z: f(z).sum())(x), exp_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ops.sigmoid_binary_cross_entropy_jvp(x, y, pos_weight=pwa, label_smoothing=ls),
        f(x),
        rtol=1e-6,
    )


# ----------------------------------------------------------------------------------------------
# low precision, transforms, memory


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_logits_float32_loss_and_input_dtype_gradient(dtype):
    x = _logits((64, 300)).astype(dtype)
    y = jnp.asarray(RNG.integers(0, 300, size=64))
    _, grad = jax.value_and_grad(lambda z: ops.sparse_softmax_cross_entropy(z, y).mean())(x)
    per = ops.sparse_softmax_cross_entropy(x, y)
    assert per.dtype == jnp.float32 and grad.dtype == dtype
    exp_loss, exp_grad = np_sparse(np.asarray(x.astype(jnp.float32)), np.asarray(y))
    np.testing.assert_allclose(per, exp_loss, rtol=1e-5, atol=1e-5)  # float32-accurate
    np.testing.assert_allclose(grad.astype(jnp.float32), exp_grad / 64, rtol=2e-2, atol=1e-4)
    # the label's gradient entry p - 1 is rounded once, not twice
    y_hot = exp_grad[np.arange(64), np.asarray(y)] / 64
    np.testing.assert_allclose(
        np.asarray(grad.astype(jnp.float32))[np.arange(64), np.asarray(y)], y_hot, rtol=1e-2
    )
    optax = pytest.importorskip("optax")
    theirs = optax.softmax_cross_entropy_with_integer_labels(x, y).astype(jnp.float32)
    assert np.abs(per - exp_loss).max() < np.abs(theirs - exp_loss).max()


def test_jit_equals_eager_and_vmap_equals_loop():
    x, y = _logits((3, 4, 5)), jnp.asarray(RNG.integers(0, 5, size=(3, 4)))
    f = lambda z, y: ops.sparse_softmax_cross_entropy(z, y, label_smoothing=0.1)
    np.testing.assert_allclose(jax.jit(f)(x, y), f(x, y), rtol=1e-6)
    np.testing.assert_allclose(
        jax.vmap(f)(x, y), jnp.stack([f(x[i], y[i]) for i in range(3)]), rtol=1e-6
    )
    g = jax.vmap(jax.grad(lambda z, y: f(z, y).sum()))(x, y)
    np.testing.assert_allclose(
        g,
        jnp.stack([jax.grad(lambda z, t: f(z, t).sum())(x[i], y[i]) for i in range(3)]),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-4, "ignore_index": -100}]
)
@pytest.mark.parametrize(
    "fn", [ops.sparse_softmax_cross_entropy, ops.sparse_softmax_cross_entropy_jvp]
)
def test_compiled_gradient_keeps_no_logits_sized_temporary(options, fn):
    """No one-hot, no saved softmax: temp memory stays far below one [N, K] float32 array."""
    n, k = 256, 4096
    x = jnp.zeros((n, k), jnp.float32)
    y = jnp.zeros((n,), jnp.int32)
    f = jax.value_and_grad(lambda z: fn(z, y, **options).mean())
    analysis = jax.jit(f).lower(x).compile().memory_analysis()
    if analysis is None:
        pytest.skip("backend reports no memory analysis")
    assert analysis.temp_size_in_bytes < n * k * 4 // 8


def test_bad_arguments_raise_at_trace_time():
    x = _logits((2, 3))
    with pytest.raises(TypeError, match="`labels` must hold integer"):
        ops.sparse_softmax_cross_entropy(x, jnp.asarray([0.0, 1.0]))
    with pytest.raises(ValueError, match="`labels` must have the shape"):
        ops.sparse_softmax_cross_entropy(x, jnp.asarray([0, 1, 2]))
    with pytest.raises(ValueError, match="`label_smoothing` must be in"):
        ops.sparse_softmax_cross_entropy(x, jnp.asarray([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="`z_loss` must be >="):
        ops.sparse_softmax_cross_entropy(x, jnp.asarray([0, 1]), z_loss=-1.0)
    with pytest.raises(ValueError, match="`class_weight` must have shape"):
        ops.sparse_softmax_cross_entropy(x, jnp.asarray([0, 1]), class_weight=jnp.ones(4))
    with pytest.raises(ValueError, match="`axis`=2 is out of range"):
        ops.sparse_softmax_cross_entropy(x, jnp.asarray([0, 1]), axis=2)
    with pytest.raises(TypeError, match="static option"):
        jax.jit(
            lambda s: ops.sparse_softmax_cross_entropy(x, jnp.asarray([0, 1]), label_smoothing=s)
        )(0.1)
    with pytest.raises(ValueError, match="`targets` must have the shape"):
        ops.softmax_cross_entropy(x, jnp.ones((2, 4)))
    with pytest.raises(TypeError, match="`logits` must be a floating"):
        ops.softmax_cross_entropy(jnp.ones((2, 3), jnp.int32), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="`pos_weight`"):
        ops.sigmoid_binary_cross_entropy(x, jnp.ones((2, 3)), pos_weight=jnp.ones(4))


@pytest.mark.parametrize(
    "row",
    [
        [0.0, 5.0, -3.0],  # one-pass path
        [70.0, 75.0, -60.0],  # one-pass path, large but safe logits
        [0.0, 200.0, -3.0],  # exp overflows: max-shift fallback
        [-95.0, -90.0, -99.0],  # the sum underflows: fallback
        [-100.0, 20.0, 0.0],  # exp(-label logit) overflows: fallback
    ],
)
def test_one_pass_logsumexp_and_its_fallback_agree_with_the_formula(row):
    y = jnp.asarray([0, 2])
    x = jnp.asarray([row, [1.0, 2.0, 3.0]], jnp.float32)
    loss, grad = jax.value_and_grad(
        lambda z: ops.sparse_softmax_cross_entropy(z, y, z_loss=1e-3).sum()
    )(x)
    exp_loss, exp_grad = np_sparse(np.asarray(x, np.float64), np.asarray(y), z=1e-3)
    np.testing.assert_allclose(loss, exp_loss.sum(), rtol=1e-6)
    np.testing.assert_allclose(grad, exp_grad, rtol=1e-5, atol=1e-7)


def test_confident_small_loss_keeps_float32_accuracy_at_large_logits():
    # Label logits near 30, about 12 above the rest: losses of 1e-5..1e-3. Taken as
    # log(sum exp) - logit they would carry the rounding of a number near 30 (ulp 1.9e-6); the
    # kernel keeps float32's resolution of 1 + r (1.2e-7) and is never negative.
    k = 1000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, k)).astype(np.float32)
    y = rng.integers(0, k, size=64)
    x[np.arange(64), y] = rng.uniform(28.0, 32.0, size=64).astype(np.float32)
    x[np.arange(64), (y + 1) % k] = rng.uniform(14.0, 22.0, size=64).astype(np.float32)
    loss = np.asarray(ops.sparse_softmax_cross_entropy(jnp.asarray(x), jnp.asarray(y)))
    expected, _ = np_sparse(x.astype(np.float64), y)
    assert np.all(loss >= 0.0)
    np.testing.assert_allclose(loss, expected, rtol=0, atol=2.5e-7)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_bfloat16_logits_get_no_float32_copy(label_smoothing):
    n, k = 256, 4096
    x = jnp.zeros((n, k), jnp.bfloat16)
    y = jnp.zeros((n,), jnp.int32)
    f = jax.value_and_grad(
        lambda z: ops.sparse_softmax_cross_entropy(
            z, y, z_loss=1e-4, label_smoothing=label_smoothing
        ).mean()
    )
    analysis = jax.jit(f).lower(x).compile().memory_analysis()
    if analysis is None:
        pytest.skip("backend reports no memory analysis")
    assert analysis.temp_size_in_bytes < n * k * 2 // 8


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.1, "ignore_index": 3},
        {"z_loss": 1e-4, "class_weight": np.linspace(0.5, 2.0, 2048, dtype=np.float32)},
    ],
    ids=["plain", "smoothing_ignore", "zloss_class_weight"],
)
def test_gradient_is_written_in_place_over_logits_from_a_layer(options):
    # A training step: the logits come from a matmul and die in the loss's backward. The
    # gradient then fits in the logits' own buffer, so the step needs one [N, V] temporary
    # (autodiff of a plain log-softmax needs two).
    n, d, k = 512, 32, 2048
    hidden, weight = jnp.ones((n, d)), jnp.ones((d, k))
    y = jnp.zeros((n,), jnp.int32)

    def step(w, h):
        return ops.sparse_softmax_cross_entropy(h @ w, y, **options).mean()

    f = jax.value_and_grad(step, argnums=(0, 1))
    analysis = jax.jit(f).lower(weight, hidden).compile().memory_analysis()
    if analysis is None:
        pytest.skip("backend reports no memory analysis")
    if jax.default_backend() != "cpu":
        # XLA:GPU's temp memory also holds what its GEMM choice for the layer needs: on an H200,
        # 32 MiB more for this step at HIGHEST matmul precision, and (default precision, d=256)
        # for optax's step alike. The one-buffer bound is XLA:CPU's buffer assignment.
        pytest.skip("the one-buffer bound is checked on the CPU")
    one_buffer = n * k * 4
    assert one_buffer <= analysis.temp_size_in_bytes < 1.25 * one_buffer


@pytest.mark.parametrize("fn", ["vjp", "jvp_twin"])
def test_sparse_others_smoothing_is_a_kl_divergence_to_the_smoothed_target(fn):
    """``"others"`` smoothing (T5X): 1 - ls on the label, ls / (K - 1) elsewhere, minimum 0."""
    rng = np.random.default_rng(60)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    y = np.array([0, 4, 2, -1, 3, 1])
    cw = rng.uniform(0.5, 2.0, size=5).astype(np.float32)
    ls = 0.3
    kernel = {
        "vjp": ops.sparse_softmax_cross_entropy,
        "jvp_twin": ops.sparse_softmax_cross_entropy_jvp,
    }[fn]
    opts = {"label_smoothing": ls, "label_smoothing_style": "others", "ignore_index": -1}
    per_row = kernel(x, y, class_weight=cw, **opts)
    onehot = np.eye(5)[np.clip(y, 0, 4)]
    t = (1 - ls) * onehot + ls / 4 * (1 - onehot)
    logp = np_log_softmax(x)
    w = np.where(y == -1, 0.0, np.float64(cw)[np.clip(y, 0, 4)])
    want = w * (t * (np.log(t) - logp)).sum(-1)
    np.testing.assert_allclose(per_row, want, rtol=1e-5, atol=1e-6)
    want_grad = w[:, None] * (np.exp(logp) - t)
    grad = jax.grad(lambda z: kernel(z, y, class_weight=cw, **opts).sum())(x)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6)
    at_target = kernel(jnp.asarray(np.log(t), jnp.float32), y, **opts)
    np.testing.assert_allclose(at_target, 0.0, atol=2e-6)
