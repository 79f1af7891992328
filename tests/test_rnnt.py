"""RNN-T loss: ``jaxloss.ops.rnnt_loss`` / ``rnnt_loss_autodiff`` against float64 references.

References written here, independent of the library: a brute-force sum over every path of the
``T x (U+1)`` lattice (tiny sizes), a textbook float64 NumPy forward DP, and central finite
differences of that DP for the gradient.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jaxloss
from jaxloss.ops import rnnt as rnnt_module
from jaxloss.ops import rnnt_loss, rnnt_loss_autodiff
from tests._recursions import assert_unrolled_matches_reference

# ------------------------------------------------------------------------------------------------
# float64 references
# ------------------------------------------------------------------------------------------------


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def dp_nll(logp, target, blank):
    """-log P(target) by the forward DP over the lattice; logp: [T, U+1, V] for this row."""
    time, n = logp.shape[0], len(target)
    if time == 0:
        return np.inf
    alpha = np.full((time, n + 1), -np.inf)
    alpha[0, 0] = 0.0
    for t in range(time):
        for u in range(n + 1):
            if t == 0 and u == 0:
                continue
            acc = -np.inf
            if t > 0:
                acc = np.logaddexp(acc, alpha[t - 1, u] + logp[t - 1, u, blank])
            if u > 0:
                acc = np.logaddexp(acc, alpha[t, u - 1] + logp[t, u - 1, target[u - 1]])
            alpha[t, u] = acc
    return -(alpha[time - 1, n] + logp[time - 1, n, blank])


def brute_force_nll(logp, target, blank):
    """-log of the summed probability of every path: T blanks and U labels, the last a blank."""
    time, n = logp.shape[0], len(target)
    total = -np.inf
    for emit_at in itertools.combinations(range(time - 1 + n), n):
        t = u = 0
        score = 0.0
        for step in range(time - 1 + n):
            if step in emit_at:
                score += logp[t, u, target[u]]
                u += 1
            else:
                score += logp[t, u, blank]
                t += 1
        total = np.logaddexp(total, score + logp[t, u, blank])
    return -total


def ref_losses(logits, labels, logit_lengths, label_lengths, blank=0):
    logp = np_log_softmax(logits)
    return np.array(
        [
            dp_nll(logp[b, : logit_lengths[b]], list(labels[b, : label_lengths[b]]), blank)
            for b in range(len(labels))
        ]
    )


def ref_grad(logits, labels, logit_lengths, label_lengths, blank=0, eps=1e-5):
    """Central differences of each row's float64 DP loss w.r.t. its logits."""
    logits = np.asarray(logits, np.float64)
    grad = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        b = idx[0]
        plus, minus = logits[b].copy(), logits[b].copy()
        plus[idx[1:]] += eps
        minus[idx[1:]] -= eps
        target = list(labels[b, : label_lengths[b]])
        n_t = logit_lengths[b]
        f_plus = dp_nll(np_log_softmax(plus)[:n_t], target, blank)
        f_minus = dp_nll(np_log_softmax(minus)[:n_t], target, blank)
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def random_case(seed, batch=3, time=4, max_len=2, vocab=4, blank=0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(batch, time, max_len + 1, vocab)) * 2).astype(np.float32)
    non_blank = [c for c in range(vocab) if c != blank]
    labels = rng.choice(non_blank, size=(batch, max_len)).astype(np.int32)
    logit_lengths = np.array([time, time - 1, 2][:batch], np.int32)
    label_lengths = np.array([max_len, 1, 0][:batch], np.int32)
    return logits, labels, logit_lengths, label_lengths


def loss_and_grad(fn, logits, labels, **kw):
    return jax.value_and_grad(lambda x: fn(x, labels, **kw).sum())(jnp.asarray(logits))


# ------------------------------------------------------------------------------------------------
# Values and gradients
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [0, -1], ids=["blank_first", "blank_last"])
def test_matches_brute_force_and_dp(blank):
    logits, labels, logit_lengths, label_lengths = random_case(0, blank=blank % 4)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths, blank_id=blank)
    got = rnnt_loss(logits, labels, **kw)
    logp = np_log_softmax(logits)
    brute = [
        brute_force_nll(logp[b, : logit_lengths[b]], labels[b, : label_lengths[b]], blank % 4)
        for b in range(3)
    ]
    np.testing.assert_allclose(got, brute, rtol=1e-5)
    dp = ref_losses(logits, labels, logit_lengths, label_lengths, blank % 4)
    np.testing.assert_allclose(dp, brute, rtol=1e-12)
    np.testing.assert_allclose(rnnt_loss_autodiff(logits, labels, **kw), brute, rtol=1e-5)


@pytest.mark.parametrize("fn", [rnnt_loss, rnnt_loss_autodiff], ids=["custom_vjp", "autodiff"])
def test_gradient_matches_finite_differences_of_the_dp(fn):
    logits, labels, logit_lengths, label_lengths = random_case(1)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    loss, grad = loss_and_grad(fn, logits, labels, **kw)
    np.testing.assert_allclose(
        loss, ref_losses(logits, labels, logit_lengths, label_lengths).sum(), rtol=1e-5
    )
    expected = ref_grad(logits, labels, logit_lengths, label_lengths)
    np.testing.assert_allclose(grad, expected, atol=2e-5)
    # nodes past a row's lengths get exactly zero
    assert np.all(np.asarray(grad)[1, 3:] == 0) and np.all(np.asarray(grad)[2, :, 1:] == 0)


def test_float64_is_exact_and_check_grads():
    with jax.enable_x64(True):
        logits, labels, logit_lengths, label_lengths = random_case(2, batch=2, time=3)
        logits = logits.astype(np.float64)
        kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
        got = rnnt_loss(logits, labels, **kw)
        assert got.dtype == jnp.float64
        expected = ref_losses(logits, labels, logit_lengths, label_lengths)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        x = jnp.asarray(logits)
        check_grads(lambda z: rnnt_loss(z, labels, **kw), (x,), order=1, modes=("rev",))
        check_grads(lambda z: rnnt_loss_autodiff(z, labels, **kw), (x,), order=1)


def test_long_lattice_float32_accuracy():
    """Per-diagonal normalisation keeps float32 gradients accurate at a large |log-likelihood|."""
    rng = np.random.default_rng(3)
    logits = (rng.normal(size=(1, 40, 11, 6)) * 3).astype(np.float32)
    labels = rng.integers(1, 6, size=(1, 10)).astype(np.int32)
    with jax.enable_x64(True):
        _, exact = loss_and_grad(rnnt_loss, logits.astype(np.float64), labels)
    loss, grad = loss_and_grad(rnnt_loss, logits, labels)
    np.testing.assert_allclose(loss, ref_losses(logits, labels, [40], [10]).sum(), rtol=1e-6)
    assert float(loss) > 60  # a large log-likelihood
    np.testing.assert_allclose(grad, exact, atol=2e-6)


def test_normaliser_fallback_when_a_class_beats_blank_and_label_by_far():
    """The one-read normaliser is shifted by the blank's or the label's logit; a class 150 nats
    above both overflows that sum, and the two-pass fallback must give the exact values."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 6, 4, 7)).astype(np.float32)
    labels = np.array([[1, 2, 1], [3, 3, 2]], np.int32)
    logits[0, 2, 1, 6] = 150.0  # class 6 is no label: it only enters the normaliser
    logits[1, 4, 3, 5] = 200.0
    lengths = dict(logit_lengths=[6, 6], label_lengths=[3, 3])
    with jax.enable_x64(True):
        _, exact = loss_and_grad(rnnt_loss, logits.astype(np.float64), labels)
    _, grad = loss_and_grad(rnnt_loss, logits, labels)
    per_row = rnnt_loss(jnp.asarray(logits), labels)
    np.testing.assert_allclose(
        per_row,
        ref_losses(logits, labels, lengths["logit_lengths"], lengths["label_lengths"]),
        rtol=1e-6,
    )
    # exp(150 - max(blank, label)) overflows float32: the fast path cannot have served this
    assert np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(grad, exact, atol=2e-6)


# ------------------------------------------------------------------------------------------------
# Edge cases
# ------------------------------------------------------------------------------------------------


def test_empty_target_is_all_blanks_and_no_frames_is_infeasible():
    logits, labels, _, _ = random_case(4)
    logit_lengths = np.array([4, 0, 3], np.int32)
    label_lengths = np.array([0, 2, 0], np.int32)
    loss, grad = loss_and_grad(
        rnnt_loss, logits, labels, logit_lengths=logit_lengths, label_lengths=label_lengths
    )
    per_row = rnnt_loss(logits, labels, logit_lengths=logit_lengths, label_lengths=label_lengths)
    logp = np_log_softmax(logits)
    np.testing.assert_allclose(per_row[0], -logp[0, :, 0, 0].sum(), rtol=1e-6)
    np.testing.assert_allclose(per_row[2], -logp[2, :3, 0, 0].sum(), rtol=1e-6)
    assert np.isposinf(per_row[1]) and np.isposinf(loss)
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0)


def test_every_path_through_a_masked_logit_is_infeasible_with_zero_gradient():
    logits, labels, logit_lengths, label_lengths = random_case(5)
    logits[0, :, :, 0] = -np.inf  # row 0 can never emit the blank, so no path ends
    logits[1, :, :, 3] = -np.inf  # a masked class that row 1's labels do not use
    labels[1] = [1, 2]
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    per_row = rnnt_loss(logits, labels, **kw)
    assert np.isposinf(per_row[0])
    expected = ref_losses(logits[1:], labels[1:], logit_lengths[1:], label_lengths[1:])
    np.testing.assert_allclose(per_row[1:], expected, rtol=1e-5)
    _, grad = loss_and_grad(rnnt_loss, logits, labels, **kw)
    assert np.all(np.asarray(grad)[0] == 0) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(
        grad[1:], ref_grad(logits[1:], labels[1:], logit_lengths[1:], label_lengths[1:]), atol=2e-5
    )


def test_out_of_range_label_gives_nan_in_its_row_only():
    logits, labels, logit_lengths, label_lengths = random_case(6)
    labels[0, 1] = 9
    labels[2, 1] = -5  # past row 2's label length: ignored
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    _loss, grad = loss_and_grad(rnnt_loss, logits, labels, **kw)
    per_row = rnnt_loss(logits, labels, **kw)
    assert np.isnan(per_row[0]) and np.all(np.asarray(grad)[0] == 0)
    expected = ref_losses(logits[1:], labels[1:], logit_lengths[1:], label_lengths[1:])
    np.testing.assert_allclose(per_row[1:], expected, rtol=1e-5)
    assert np.all(np.isfinite(np.asarray(grad)[1:]))


def test_clamp_clips_each_sequences_gradient_before_the_cotangent():
    logits, labels, logit_lengths, label_lengths = random_case(7)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    weights = jnp.array([2.0, -1.0, 0.5])
    grad = jax.grad(lambda x: (rnnt_loss(x, labels, clamp=0.1, **kw) * weights).sum())(
        jnp.asarray(logits)
    )
    expected = np.clip(ref_grad(logits, labels, logit_lengths, label_lengths), -0.1, 0.1)
    expected = expected * np.asarray(weights)[:, None, None, None]
    np.testing.assert_allclose(grad, expected, atol=2e-5)
    assert np.abs(ref_grad(logits, labels, logit_lengths, label_lengths)).max() > 0.3
    # the value is unaffected
    np.testing.assert_allclose(
        rnnt_loss(logits, labels, clamp=0.1, **kw), rnnt_loss(logits, labels, **kw)
    )


def test_no_logits_sized_temporary_for_float32_or_bfloat16():
    """The backward builds the gradient and nothing else of the logits' size; bfloat16 logits are
    upcast inside the fused loops, never copied to float32 (the autodiff twin needs both)."""
    labels = jnp.ones((2, 10), jnp.int32)
    for dtype in (jnp.float32, jnp.bfloat16):
        logits = jnp.zeros((2, 20, 11, 512), dtype)
        f32_copy = logits.size * 4

        def temp(fn, logits=logits):
            step = jax.value_and_grad(lambda z: fn(z, labels).sum())
            return jax.jit(step).lower(logits).compile().memory_analysis().temp_size_in_bytes

        assert temp(rnnt_loss) < 0.25 * f32_copy, dtype
        assert temp(rnnt_loss_autodiff) > 0.9 * f32_copy, dtype


def test_bfloat16_logits_compute_in_float32():
    logits, labels, logit_lengths, label_lengths = random_case(8)
    low = jnp.asarray(logits, jnp.bfloat16)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    loss = rnnt_loss(low, labels, **kw)
    assert loss.dtype == jnp.float32
    upcast = np.asarray(low.astype(jnp.float32))
    np.testing.assert_allclose(
        loss, ref_losses(upcast, labels, logit_lengths, label_lengths), rtol=1e-5
    )
    _, grad = loss_and_grad(rnnt_loss, low, labels, **kw)
    assert grad.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(grad, np.float32),
        ref_grad(upcast, labels, logit_lengths, label_lengths),
        atol=1e-2,
    )


# ------------------------------------------------------------------------------------------------
# Transformations
# ------------------------------------------------------------------------------------------------


def test_jit_and_vmap_equal_the_eager_loop():
    logits, labels, logit_lengths, label_lengths = random_case(9)
    stacked = np.stack([logits, logits[::-1] * 0.5])
    labels2 = np.stack([labels, labels[::-1]])
    lengths2 = np.stack([logit_lengths, logit_lengths[::-1]])
    label_lengths2 = np.stack([label_lengths, label_lengths[::-1]])

    def per(x, y, a, b):
        return jax.value_and_grad(
            lambda z: rnnt_loss(z, y, logit_lengths=a, label_lengths=b).sum()
        )(x)

    batched = jax.jit(jax.vmap(per))(stacked, labels2, lengths2, label_lengths2)
    for i in range(2):
        looped = per(stacked[i], labels2[i], lengths2[i], label_lengths2[i])
        np.testing.assert_allclose(batched[0][i], looped[0], rtol=1e-6)
        np.testing.assert_allclose(batched[1][i], looped[1], atol=1e-6)


def test_autodiff_variant_supports_forward_mode():
    logits, labels, logit_lengths, label_lengths = random_case(10)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    x = jnp.asarray(logits)
    tangent = jnp.asarray(np.random.default_rng(11).normal(size=logits.shape), jnp.float32)
    _, jvp_out = jax.jvp(lambda z: rnnt_loss_autodiff(z, labels, **kw), (x,), (tangent,))
    vjp_grad = jax.grad(lambda z: rnnt_loss(z, labels, **kw).sum())(x)
    np.testing.assert_allclose(jvp_out.sum(), jnp.vdot(vjp_grad, tangent), rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError):
        jax.jvp(lambda z: rnnt_loss(z, labels, **kw), (x,), (tangent,))


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 host devices (tests/conftest.py)")
def test_shard_map_over_the_batch_equals_the_global_batch():
    rng = np.random.default_rng(12)
    logits = rng.normal(size=(8, 4, 3, 5)).astype(np.float32)
    labels = rng.integers(1, 5, size=(8, 2)).astype(np.int32)
    logit_lengths = rng.integers(1, 5, size=8).astype(np.int32)
    label_lengths = rng.integers(0, 3, size=8).astype(np.int32)
    mesh = Mesh(np.array(jax.devices()[:8]), ("batch",))

    def local(x, y, a, b):
        def total(z):
            return rnnt_loss(z, y, logit_lengths=a, label_lengths=b).sum()

        value, grad = jax.value_and_grad(total)(x)
        return jax.lax.psum(value, "batch"), grad

    sharded = jax.jit(
        jax.shard_map(local, mesh=mesh, in_specs=(P("batch"),) * 4, out_specs=(P(), P("batch")))
    )
    value, grad = sharded(logits, labels, logit_lengths, label_lengths)
    ref_value, ref_grad_ = loss_and_grad(
        rnnt_loss, logits, labels, logit_lengths=logit_lengths, label_lengths=label_lengths
    )
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(grad, ref_grad_, atol=1e-7)
    np.testing.assert_allclose(
        value, ref_losses(logits, labels, logit_lengths, label_lengths).sum(), rtol=1e-5
    )


def test_matches_torchaudio_when_installed():
    torch = pytest.importorskip("torch")
    torchaudio_functional = pytest.importorskip("torchaudio.functional")
    logits, labels, logit_lengths, label_lengths = random_case(13)
    x = torch.tensor(logits, requires_grad=True)
    theirs = torchaudio_functional.rnnt_loss(
        x,
        torch.tensor(labels),
        torch.tensor(logit_lengths),
        torch.tensor(label_lengths),
        blank=0,
        reduction="sum",
    )
    theirs.backward()
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    loss, grad = loss_and_grad(rnnt_loss, logits, labels, **kw)
    np.testing.assert_allclose(loss, theirs.item(), rtol=1e-5)
    np.testing.assert_allclose(grad, x.grad.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


def test_bad_static_input_raises():
    logits = np.zeros((2, 4, 3, 5), np.float32)
    labels = np.ones((2, 2), np.int32)
    with pytest.raises(ValueError, match=r"rnnt_loss: `logits` must have shape .*; got shape"):
        rnnt_loss(logits[0], labels)
    with pytest.raises(TypeError, match="rnnt_loss: `logits` must be a float array; got dtype"):
        rnnt_loss(logits.astype(np.int32), labels)
    with pytest.raises(TypeError, match="rnnt_loss: `labels` must be an integer array; got"):
        rnnt_loss(logits, labels.astype(np.float32))
    with pytest.raises(ValueError, match=r"rnnt_loss: `labels` must have shape \[batch, U\]"):
        rnnt_loss(logits, np.ones((2, 3), np.int32))
    with pytest.raises(ValueError, match="rnnt_loss: `labels` must have batch size 2"):
        rnnt_loss(logits, np.ones((3, 2), np.int32))
    with pytest.raises(ValueError, match="rnnt_loss: `blank_id` must be in"):
        rnnt_loss(logits, labels, blank_id=5)
    with pytest.raises(TypeError, match="rnnt_loss: `blank_id` must be a Python int"):
        rnnt_loss(logits, labels, blank_id=0.0)
    with pytest.raises(TypeError, match="rnnt_loss: `logit_lengths` must be an integer array"):
        rnnt_loss(logits, labels, logit_lengths=np.ones(2, np.float32))
    with pytest.raises(ValueError, match="rnnt_loss: `label_lengths` must have rank 1"):
        rnnt_loss(logits, labels, label_lengths=np.ones((2, 1), np.int32))
    for bad in (0.0, -1, True, "1", float("inf")):
        with pytest.raises(ValueError, match="rnnt_loss: `clamp` must be None or a float > 0"):
            rnnt_loss(logits, labels, clamp=bad)
    with pytest.raises(ValueError, match="rnnt_loss_autodiff: `clamp` must be None"):
        rnnt_loss_autodiff(logits, labels, clamp=1.0)


def test_loss_handles_report_the_kernels_checks_under_their_own_name():
    y_true, y_pred = np.array([[1, 2], [3, 0]], np.int32), np.zeros((2, 4, 3, 5), np.float32)
    with pytest.raises(ValueError, match=r"^rnnt: `y_pred` must have max_label_length \+ 1 = 3"):
        jaxloss.rnnt(y_true, y_pred[:, :, :2])
    with pytest.raises(ValueError, match=r"^rnnt: `label_lengths` must have rank 1"):
        jaxloss.RNNT()(y_true, y_pred, label_lengths=np.ones((2, 1), np.int32))
    with pytest.raises(TypeError, match=r"^rnnt: `logit_lengths` must be an integer array"):
        jaxloss.RNNT()(y_true, y_pred, logit_lengths=np.full(2, 4.0))
    with pytest.raises(ValueError, match=r"^rnnt: `blank_id` must be in \[-5, 5\)"):
        jaxloss.rnnt(y_true, y_pred, blank_id=5)


def test_unrolled_recursions_match_the_dp(monkeypatch):
    # the lengths are chosen so that 4 steps per iteration divide neither scan's length; a GPU
    # takes XLA's exp in the gradient pass, not the CPU's polynomial
    monkeypatch.setattr(rnnt_module, "use_polynomials", lambda dtype: False)
    case = random_case(3, time=5)
    assert_unrolled_matches_reference(monkeypatch, rnnt_loss, case, ref_losses, ref_grad)


def test_both_softmax_forms_match_the_dp(monkeypatch):
    """The gradient pass's softmax with the float32 polynomial (XLA:CPU) and with XLA's exp
    (other backends, float64) gives the float64 DP's gradient. The second form gets a shape of its
    own, so that its program is traced afresh with the setting (not taken from the cache)."""
    for polynomial, time in ((True, 4), (False, 6)):
        monkeypatch.setattr(rnnt_module, "use_polynomials", lambda dtype, p=polynomial: p)
        logits, labels, logit_lengths, label_lengths = case = random_case(7, time=time)
        kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)

        def total(x, labels=labels, kw=kw):
            return rnnt_loss(x, labels, **kw).sum()

        program = str(jax.make_jaxpr(jax.grad(total))(logits))
        assert ("bitcast_convert_type" in program) == polynomial  # 2**floor(x) of exp2_neg
        loss, grad = loss_and_grad(rnnt_loss, logits, labels, **kw)
        np.testing.assert_allclose(loss, ref_losses(*case).sum(), rtol=1e-5)
        np.testing.assert_allclose(grad, ref_grad(*case), atol=2e-5)
