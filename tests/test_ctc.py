"""CTC loss: ``jaxloss.ops.ctc_loss`` against float64 references, Keras 3, and its edge cases.

References written here, independent of the library: a brute-force sum over every alignment (tiny
T), a float64 NumPy forward DP, and central finite differences of that DP for the gradient.
"""

import itertools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from jaxloss.ops import ctc as ctc_module
from jaxloss.ops import ctc_loss, ctc_loss_jvp
from jaxloss.ops._common import exp2_neg
from tests._recursions import assert_unrolled_matches_reference

RNG = np.random.default_rng(1234)


# ------------------------------------------------------------------------------------------------
# float64 references
# ------------------------------------------------------------------------------------------------


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def collapse(path, blank):
    out, prev = [], None
    for p in path:
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return out


def brute_force_nll(logp, target, blank=0):
    """-log of the summed probability of every alignment of ``target`` (logp: [T, C])."""
    time, classes = logp.shape
    total = -np.inf
    for path in itertools.product(range(classes), repeat=time):
        if collapse(path, blank) == list(target):
            total = np.logaddexp(total, sum(logp[t, p] for t, p in enumerate(path)))
    return -total


def dp_nll(logp, target, blank=0):
    """Textbook log-space forward DP over the blank-extended target (Graves et al. 2006)."""
    ext = [blank]
    for c in target:
        ext += [c, blank]
    s_len, time = len(ext), logp.shape[0]
    alpha = np.full(s_len, -np.inf)
    if time == 0:
        return 0.0 if not target else np.inf
    alpha[0] = logp[0, ext[0]]
    if s_len > 1:
        alpha[1] = logp[0, ext[1]]
    for t in range(1, time):
        new = np.full(s_len, -np.inf)
        for s in range(s_len):
            acc = alpha[s]
            if s >= 1:
                acc = np.logaddexp(acc, alpha[s - 1])
            if s % 2 == 1 and s >= 2 and ext[s] != ext[s - 2]:  # a label, not after its twin
                acc = np.logaddexp(acc, alpha[s - 2])
            new[s] = acc + logp[t, ext[s]]
        alpha = new
    ll = alpha[-1] if s_len == 1 else np.logaddexp(alpha[-1], alpha[-2])
    return -ll


def ref_losses(logits, labels, logit_lengths, label_lengths, blank=0):
    logp = np_log_softmax(logits)
    return np.array(
        [
            dp_nll(logp[b, : logit_lengths[b]], list(labels[b, : label_lengths[b]]), blank)
            for b in range(len(labels))
        ]
    )


def ref_grad(logits, labels, logit_lengths, label_lengths, blank=0, eps=1e-5):
    """Central differences of the summed float64 DP losses w.r.t. the logits."""
    logits = np.asarray(logits, np.float64)
    grad = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        b = idx[0]
        plus, minus = logits.copy(), logits.copy()
        plus[idx] += eps
        minus[idx] -= eps
        lo = (plus[b : b + 1], labels[b : b + 1], logit_lengths[b : b + 1])
        hi = (minus[b : b + 1], labels[b : b + 1], logit_lengths[b : b + 1])
        f_plus = ref_losses(*lo, label_lengths[b : b + 1], blank)[0]
        f_minus = ref_losses(*hi, label_lengths[b : b + 1], blank)[0]
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def random_case(batch=3, time=6, classes=5, max_len=3, blank=0, seed=None):
    """Most tests share this shape, so the compiled programs are reused across them."""
    rng = RNG if seed is None else np.random.default_rng(seed)
    logits = rng.normal(size=(batch, time, classes)).astype(np.float32) * 2
    non_blank = [c for c in range(classes) if c != blank]
    labels = rng.choice(non_blank, size=(batch, max_len)).astype(np.int32)
    label_lengths = rng.integers(0, max_len + 1, batch).astype(np.int32)
    logit_lengths = rng.integers(max(1, time - 2), time + 1, batch).astype(np.int32)
    return logits, labels, logit_lengths, label_lengths


def loss_and_grad(logits, labels, **kw):
    return jax.value_and_grad(lambda x: ctc_loss(x, labels, **kw).sum())(jnp.asarray(logits))


# ------------------------------------------------------------------------------------------------
# Values and gradients against the references
# ------------------------------------------------------------------------------------------------


def test_matches_brute_force_sum_over_alignments():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    logits[:, :, 3:] = -np.inf  # three live classes keep the enumeration at 3**6 paths
    labels = np.array([[1, 2, 0], [1, 1, 0], [2, 2, 1]], np.int32)
    label_lengths = np.array([2, 2, 3], np.int32)
    logit_lengths = np.array([6, 5, 6], np.int32)
    got = ctc_loss(logits, labels, logit_lengths=logit_lengths, label_lengths=label_lengths)
    logp = np_log_softmax(logits)[:, :, :3]
    expected = [
        brute_force_nll(logp[b, : logit_lengths[b]], labels[b, : label_lengths[b]])
        for b in range(3)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # The DP reference agrees with the brute force too.
    np.testing.assert_allclose(
        ref_losses(logits[:, :, :3], labels, logit_lengths, label_lengths), expected, rtol=1e-12
    )


@pytest.mark.parametrize("blank", [0, -2])
def test_loss_and_gradient_match_float64_dp(blank):
    classes = 5
    blank_index = blank % classes
    logits, labels, logit_lengths, label_lengths = random_case(blank=blank_index)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths, blank_id=blank)
    loss, grad = loss_and_grad(logits, labels, **kw)
    expected = ref_losses(logits, labels, logit_lengths, label_lengths, blank_index)
    np.testing.assert_allclose(loss, expected.sum(), rtol=1e-5)
    np.testing.assert_allclose(ctc_loss(logits, labels, **kw), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        grad,
        ref_grad(logits, labels, logit_lengths, label_lengths, blank_index),
        atol=2e-5,
    )
    # softmax and the state occupancies both sum to 1 on every frame (each occupancy carries a
    # relative error of about |log-likelihood| * eps)
    np.testing.assert_allclose(grad.sum(-1), 0.0, atol=1e-6)


def test_float64_logits_are_exact_and_check_grads():
    with jax.enable_x64(True):
        logits, labels, logit_lengths, label_lengths = random_case(seed=7)
        logits = logits.astype(np.float64)
        kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
        got = ctc_loss(logits, labels, **kw)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(
            got, ref_losses(logits, labels, logit_lengths, label_lengths), rtol=1e-12
        )
        _, grad = loss_and_grad(logits, labels, **kw)
        np.testing.assert_allclose(
            grad, ref_grad(logits, labels, logit_lengths, label_lengths), atol=1e-8
        )
        f = lambda x: ctc_loss(x, labels, **kw)
        check_grads(f, (jnp.asarray(logits),), order=1, modes=("rev",))


def np_ctc_grad(logits, labels):
    """float64 d loss / d logits for full-length rows: softmax minus the occupancy of each class,
    the occupancies from a log-space alpha-beta pass over the blank-extended target (blank 0)."""
    logp = np_log_softmax(logits)
    grad = np.exp(logp)
    for b in range(logp.shape[0]):
        ext = [0]
        for c in labels[b]:
            ext += [int(c), 0]
        s_len, time = len(ext), logp.shape[1]
        skip = [s % 2 == 1 and s >= 2 and ext[s] != ext[s - 2] for s in range(s_len)]
        alpha = np.full((time, s_len), -np.inf)
        beta = np.full((time, s_len), -np.inf)
        alpha[0, :2] = logp[b, 0, ext[:2]]
        beta[-1, -2:] = logp[b, -1, ext[-2:]]
        for t in range(1, time):
            for s in range(s_len):
                acc = alpha[t - 1, s]
                acc = np.logaddexp(acc, alpha[t - 1, s - 1]) if s >= 1 else acc
                acc = np.logaddexp(acc, alpha[t - 1, s - 2]) if skip[s] else acc
                alpha[t, s] = acc + logp[b, t, ext[s]]
        for t in range(time - 2, -1, -1):
            for s in range(s_len):
                acc = beta[t + 1, s]
                acc = np.logaddexp(acc, beta[t + 1, s + 1]) if s + 1 < s_len else acc
                if s + 2 < s_len and skip[s + 2]:
                    acc = np.logaddexp(acc, beta[t + 1, s + 2])
                beta[t, s] = acc + logp[b, t, ext[s]]
        ll = np.logaddexp(alpha[-1, -1], alpha[-1, -2])
        # alpha and beta both include the emission at t: divide it out once.
        occ = np.exp(alpha + beta - logp[b][:, ext] - ll)
        for s in range(s_len):
            grad[b, :, ext[s]] -= occ[:, s]
    return grad


@pytest.mark.parametrize(
    "case", ["random", "one_alignment"], ids=["random", "one_alignment_50_frames"]
)
def test_gradient_error_is_no_worse_than_optax(case):
    """The blank's occupancy is summed from its own states, so its gradient keeps float32's
    relative accuracy even when the label states hold nearly all of the mass."""
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(11)
    if case == "random":
        logits = rng.normal(size=(4, 50, 6)).astype(np.float32) * 2
        labels = rng.integers(1, 6, size=(4, 12)).astype(np.int32)
    else:  # 50 distinct-neighbour labels in 50 frames: one alignment, no blank anywhere
        logits = rng.normal(size=(2, 50, 5)).astype(np.float32) * 2
        labels = (np.arange(50)[None, :] % 4 + 1 + np.arange(2)[:, None]) % 4 + 1
        labels = labels.astype(np.int32)
    expected = np_ctc_grad(logits, labels)
    _, ours = loss_and_grad(logits, labels)

    def optax_loss(x):
        pads = (jnp.zeros(x.shape[:2]), jnp.zeros(labels.shape))
        return optax.ctc_loss(x, pads[0], labels, pads[1]).sum()

    theirs = jax.grad(optax_loss)(jnp.asarray(logits))
    err_ours = np.abs(np.asarray(ours, np.float64) - expected).max()
    err_optax = np.abs(np.asarray(theirs, np.float64) - expected).max()
    # within two float32 ulps of 1 of optax's error: at the one-alignment case both are at the
    # rounding floor of the softmax itself
    assert err_ours <= err_optax + 2 * np.finfo(np.float32).eps, (err_ours, err_optax)
    if case == "one_alignment":
        # the blank's exact gradient is its softmax alone: no alignment visits it
        blank_err = np.abs(np.asarray(ours)[..., 0] - expected[..., 0]).max()
        assert blank_err < 5e-7


def test_long_sequence_matches_dp():
    """Float32 accuracy over a few hundred frames (where log-likelihoods reach hundreds)."""
    logits, labels, _, _ = random_case(batch=2, time=200, classes=6, max_len=40, seed=3)
    lengths = np.array([200, 150], np.int32)
    label_lengths = np.array([40, 25], np.int32)
    got = ctc_loss(logits, labels, logit_lengths=lengths, label_lengths=label_lengths)
    np.testing.assert_allclose(got, ref_losses(logits, labels, lengths, label_lengths), rtol=2e-6)


def test_default_lengths_are_full():
    logits, labels, _, _ = random_case()
    full = ctc_loss(
        logits, labels, logit_lengths=np.array([6, 6, 6]), label_lengths=np.array([3, 3, 3])
    )
    np.testing.assert_allclose(ctc_loss(logits, labels), full, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Keras 3
# ------------------------------------------------------------------------------------------------


def test_matches_keras_ctc_loss_and_gradient():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    y_true = np.array([[1, 2, 3], [4, 4, 0], [2, 0, 0]], np.int32)  # 0 is the padding
    lengths = (y_true != 0).sum(1).astype(np.int32)
    keras_loss, keras_grad = jax.jit(
        jax.value_and_grad(lambda x: keras.losses.ctc(y_true, x).sum())
    )(jnp.asarray(logits))
    ours_loss, ours_grad = loss_and_grad(logits, y_true, label_lengths=lengths)
    np.testing.assert_allclose(ours_loss, keras_loss, rtol=2e-5)
    np.testing.assert_allclose(ours_grad, keras_grad, atol=2e-5)


# ------------------------------------------------------------------------------------------------
# Edge cases
# ------------------------------------------------------------------------------------------------


def test_repeated_labels_need_a_blank_between():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    labels = np.array([[1, 1, 0], [1, 2, 0], [1, 1, 0]], np.int32)
    logit_lengths = np.array([2, 2, 3], np.int32)
    kw = dict(logit_lengths=logit_lengths, label_lengths=np.array([2, 2, 2], np.int32))
    loss, grad = loss_and_grad(logits, labels, **kw)
    got = ctc_loss(logits, labels, **kw)
    # [1, 1] in 2 frames is impossible (it needs 1, blank, 1); [1, 2] in 2 frames is fine.
    assert np.isposinf(got[0])
    assert np.isfinite(got[1]) and np.isfinite(got[2])
    np.testing.assert_allclose(
        got[1:], ref_losses(logits, labels, logit_lengths, [2, 2, 2])[1:], rtol=1e-5
    )
    assert np.isposinf(loss)
    assert np.all(np.isfinite(grad)) and np.all(grad[0] == 0)
    # The third row's only alignment is 1, blank, 1.
    logp = np_log_softmax(logits[2])
    np.testing.assert_allclose(got[2], -(logp[0, 1] + logp[1, 0] + logp[2, 1]), rtol=1e-5)


def test_empty_target_is_all_blanks():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    labels = np.zeros((3, 3), np.int32)
    got = ctc_loss(
        logits, labels, label_lengths=np.array([0, 0, 0]), logit_lengths=np.array([6, 3, 0])
    )
    logp = np_log_softmax(logits)
    np.testing.assert_allclose(got, [-logp[0, :, 0].sum(), -logp[1, :3, 0].sum(), 0.0], rtol=1e-5)
    # Zero-width labels, and a non-empty target for an empty input.
    np.testing.assert_allclose(
        ctc_loss(logits, np.zeros((3, 0), np.int32)), -logp[:, :, 0].sum(1), rtol=1e-5
    )
    empty = ctc_loss(
        logits, labels, logit_lengths=np.array([0, 0, 6]), label_lengths=np.array([0, 1, 0])
    )
    assert empty[0] == 0 and np.isposinf(empty[1])


def test_infeasible_targets_give_inf_with_zero_finite_gradient_or_zero():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    labels = np.array([[1, 2, 3], [1, 2, 0], [3, 3, 0]], np.int32)
    # row 0: 3 labels > 2 frames; row 2: [3, 3] needs 3 frames, has 2
    kw = dict(
        logit_lengths=np.array([2, 6, 2], np.int32), label_lengths=np.array([3, 2, 2], np.int32)
    )
    got = ctc_loss(logits, labels, **kw)
    assert np.isposinf(got[0]) and np.isfinite(got[1]) and np.isposinf(got[2])
    grad = jax.grad(lambda x: ctc_loss(x, labels, **kw).sum())(jnp.asarray(logits))
    assert np.all(np.isfinite(grad))
    assert np.all(grad[0] == 0) and np.all(grad[2] == 0) and np.any(grad[1] != 0)
    zeroed = ctc_loss(logits, labels, zero_infinity=True, **kw)
    np.testing.assert_array_equal(np.asarray(zeroed)[[0, 2]], [0.0, 0.0])
    np.testing.assert_allclose(zeroed[1], got[1])
    grad_z = jax.grad(lambda x: ctc_loss(x, labels, zero_infinity=True, **kw).sum())(
        jnp.asarray(logits)
    )
    np.testing.assert_array_equal(grad_z, grad)
    # The autodiff path agrees.
    grad_a = jax.grad(lambda x: ctc_loss_jvp(x, labels, **kw).sum())(jnp.asarray(logits))
    np.testing.assert_allclose(grad_a, grad, atol=1e-6)


def test_loss_is_never_negative():
    # One frame, one label, a logit of 40: the exact loss is ~4e-18, below float32's resolution.
    logits = np.full((3, 6, 5), -20.0, np.float32)
    logits[:, 0, 1] = 20.0
    labels = np.ones((3, 3), np.int32)
    got = ctc_loss(
        logits, labels, logit_lengths=np.ones(3, np.int32), label_lengths=np.ones(3, np.int32)
    )
    assert np.all(got >= 0) and np.all(got < 1e-6)
    for seed in range(4):
        confident = np.random.default_rng(seed).normal(size=(3, 6, 5)).astype(np.float32) * 30
        labels = np.argmax(confident, -1)[:, ::2].astype(np.int32)
        assert np.all(np.asarray(ctc_loss(confident, labels)) >= 0)


def test_frames_past_logit_lengths_get_zero_gradient():
    logits, labels, _, label_lengths = random_case(seed=5)
    label_lengths = np.minimum(label_lengths, 2)
    lengths = np.array([4, 6, 6], np.int32)
    kw = dict(logit_lengths=lengths, label_lengths=label_lengths)
    _, grad = loss_and_grad(logits, labels, **kw)
    assert np.all(grad[0, 4:] == 0)
    assert np.all(np.abs(grad[0, :4]).sum(-1) > 0)
    # Garbage past the length changes nothing.
    noisy = logits.copy()
    noisy[0, 4:] = 1e4
    np.testing.assert_allclose(ctc_loss(noisy, labels, **kw), ctc_loss(logits, labels, **kw))


def test_extreme_and_masked_logits_stay_finite():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32) * 1e4
    labels = np.array([[1, 2, 1], [3, 3, 3], [4, 2, 1]], np.int32)
    loss, grad = loss_and_grad(logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(
        ctc_loss(logits, labels), ref_losses(logits, labels, [6] * 3, [3] * 3), rtol=1e-5
    )
    # A class masked with -inf: fine unless the target needs it, then +inf with zero gradient.
    masked = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    masked[:, :, 4] = -np.inf
    labels = np.array([[1, 2, 3], [4, 1, 2], [1, 1, 2]], np.int32)
    loss, grad = loss_and_grad(masked, labels)
    got = ctc_loss(masked, labels)
    assert np.isfinite(got[0]) and np.isposinf(got[1]) and np.isfinite(got[2])
    assert np.all(np.isfinite(grad)) and np.all(grad[1] == 0) and np.all(grad[0, :, 4] == 0)


def test_bfloat16_logits_compute_in_float32():
    logits, labels, lengths, label_lengths = random_case(seed=11)
    bf16 = jnp.asarray(logits, jnp.bfloat16)
    kw = dict(logit_lengths=lengths, label_lengths=label_lengths)
    got = ctc_loss(bf16, labels, **kw)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(
        got,
        ref_losses(np.asarray(bf16.astype(jnp.float32)), labels, lengths, label_lengths),
        rtol=1e-5,
    )
    grad = jax.grad(lambda x: ctc_loss(x, labels, **kw).sum())(bf16)
    assert grad.dtype == jnp.bfloat16
    expected = jax.grad(lambda x: ctc_loss(x, labels, **kw).sum())(bf16.astype(jnp.float32))
    np.testing.assert_allclose(grad.astype(np.float32), expected, atol=1e-2)


def test_out_of_range_label_gives_nan_in_its_row_only():
    logits, labels, _, _ = random_case(seed=2)
    labels = labels.copy()
    labels[1, 0] = 9  # >= classes
    labels[2, 1] = -1  # negative: inside the length
    label_lengths = np.array([2, 2, 2], np.int32)
    got = ctc_loss(logits, labels, label_lengths=label_lengths)
    assert np.isfinite(got[0]) and np.isnan(got[1]) and np.isnan(got[2])
    np.testing.assert_allclose(got[0], ref_losses(logits[:1], labels[:1], [6], [2])[0], rtol=1e-5)
    # Padding past the label length may hold anything.
    padded = np.array([[1, -1, -1], [2, 3, 99], [4, 9, 9]], np.int32)
    np.testing.assert_allclose(
        ctc_loss(logits, padded, label_lengths=np.array([1, 2, 1])),
        ref_losses(logits, np.array([[1, 0], [2, 3], [4, 0]]), [6] * 3, [1, 2, 1]),
        rtol=1e-5,
    )
    grad = jax.grad(lambda x: jnp.nansum(ctc_loss(x, labels, label_lengths=label_lengths)))(
        jnp.asarray(logits)
    )
    assert np.all(np.isfinite(grad)) and np.all(grad[1:] == 0)


# ------------------------------------------------------------------------------------------------
# Transformations and autodiff modes
# ------------------------------------------------------------------------------------------------


def test_jit_and_vmap():
    logits, labels, lengths, label_lengths = random_case(seed=4)
    kw = dict(logit_lengths=lengths, label_lengths=label_lengths)
    eager = ctc_loss(logits, labels, **kw)
    jitted = jax.jit(lambda x, y, a, b: ctc_loss(x, y, logit_lengths=a, label_lengths=b))
    np.testing.assert_allclose(jitted(logits, labels, lengths, label_lengths), eager, rtol=1e-6)
    # vmap over an extra leading axis equals a loop, for the loss and the gradient.
    stacked = np.stack([logits, logits[::-1] * 0.5])
    labels2 = np.stack([labels, labels[::-1]])
    lengths2 = np.stack([lengths, lengths[::-1]])
    label_lengths2 = np.stack([label_lengths, label_lengths[::-1]])

    def per(x, y, a, b):
        return jax.value_and_grad(lambda z: ctc_loss(z, y, logit_lengths=a, label_lengths=b).sum())(
            x
        )

    batched = jax.jit(jax.vmap(per))(stacked, labels2, lengths2, label_lengths2)
    for i in range(2):
        looped = per(stacked[i], labels2[i], lengths2[i], label_lengths2[i])
        np.testing.assert_allclose(batched[0][i], looped[0], rtol=1e-6)
        np.testing.assert_allclose(batched[1][i], looped[1], atol=1e-6)


def test_custom_vjp_false_supports_forward_mode_and_second_order():
    logits, labels, lengths, label_lengths = random_case(seed=6)
    kw = dict(logit_lengths=lengths, label_lengths=label_lengths)
    x = jnp.asarray(logits)
    tangent = jnp.asarray(RNG.normal(size=logits.shape).astype(np.float32))
    f_custom = lambda z: ctc_loss(z, labels, **kw)
    f_auto = lambda z: ctc_loss_jvp(z, labels, **kw)
    np.testing.assert_allclose(f_auto(x), f_custom(x), rtol=1e-6)
    _, jvp_out = jax.jvp(f_auto, (x,), (tangent,))
    vjp_grad = jax.grad(lambda z: f_custom(z).sum())(x)
    np.testing.assert_allclose(jvp_out.sum(), jnp.vdot(vjp_grad, tangent), rtol=1e-4, atol=1e-5)
    # Second order (what jax.hessian vmaps): a Hessian-vector product, forward over reverse,
    # against central differences of the custom gradient.
    grad_auto = jax.grad(lambda z: f_auto(z).sum())
    _, hvp = jax.jvp(grad_auto, (x,), (tangent,))
    grad_custom = jax.grad(lambda z: f_custom(z).sum())
    eps = 1e-2
    fd = (grad_custom(x + eps * tangent) - grad_custom(x - eps * tangent)) / (2 * eps)
    np.testing.assert_allclose(hvp, fd, atol=2e-3)
    with pytest.raises(TypeError):
        jax.jvp(f_custom, (x,), (tangent,))


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


def test_bad_static_input_raises():
    logits = np.zeros((2, 4, 3), np.float32)
    labels = np.ones((2, 2), np.int32)
    with pytest.raises(ValueError, match="ctc_loss: `logits` must have shape"):
        ctc_loss(logits[0], labels)
    with pytest.raises(TypeError, match="ctc_loss: `logits` must be a float"):
        ctc_loss(logits.astype(np.int32), labels)
    with pytest.raises(TypeError, match="ctc_loss: `labels` must be an integer"):
        ctc_loss(logits, labels.astype(np.float32))
    with pytest.raises(ValueError, match="ctc_loss: `labels` must have batch size 2"):
        ctc_loss(logits, np.ones((3, 2), np.int32))
    with pytest.raises(ValueError, match="ctc_loss: `blank_id` must be in"):
        ctc_loss(logits, labels, blank_id=3)
    with pytest.raises(TypeError, match="ctc_loss: `blank_id` must be a Python int"):
        ctc_loss(logits, labels, blank_id=1.0)
    with pytest.raises(ValueError, match="ctc_loss: `logit_lengths` must have rank 1"):
        ctc_loss(logits, labels, logit_lengths=np.ones((2, 1), np.int32))
    with pytest.raises(TypeError, match="ctc_loss: `label_lengths` must be an integer"):
        ctc_loss(logits, labels, label_lengths=np.ones(2, np.float32))


# ------------------------------------------------------------------------------------------------
# The Keras layer: jaxloss.ctc / jaxloss.CTC
# ------------------------------------------------------------------------------------------------

KERAS_Y_TRUE = np.array([[1, 2, 3], [4, 4, 0], [2, 0, 0]], np.int32)  # 0 pads and is the blank


def test_keras_function_and_class_match_keras():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.ctc(KERAS_Y_TRUE, logits), keras.losses.ctc(KERAS_Y_TRUE, logits), rtol=2e-5
    )
    weight = np.array([0.5, 2.0, 1.0], np.float32)
    for reduction in ["sum_over_batch_size", "sum", None]:
        ours = jaxloss.CTC(reduction=reduction)(KERAS_Y_TRUE, logits, sample_weight=weight)
        theirs = keras.losses.CTC(reduction=reduction)(KERAS_Y_TRUE, logits, sample_weight=weight)
        np.testing.assert_allclose(ours, theirs, rtol=2e-5)
    loss = jaxloss.CTC()
    assert loss.name == "ctc" and loss.get_config()["blank_id"] == 0
    assert jaxloss.CTC.from_config(loss.get_config()) == loss
    assert jaxloss.get("ctc") is jaxloss.ctc and jaxloss.get("CTC") == loss


def test_keras_layer_options_beyond_keras():
    logits = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    # Blank 4 and -1 padding: 0 becomes an ordinary class.
    y_true = np.array([[0, 2, 3], [1, 1, -1], [0, -1, -1]], np.int32)
    got = jaxloss.ctc(y_true, logits, blank_id=4, pad_id=-1)
    np.testing.assert_allclose(
        got,
        ref_losses(logits, np.maximum(y_true, 0), [6, 6, 6], [3, 2, 1], blank=4),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jaxloss.CTC(blank_id=4, pad_id=-1, reduction=None)(y_true, logits), got
    )
    # Input lengths, and targets that cannot fit: Keras' loss is a finite ~1e5 there.
    lengths = np.array([6, 2, 6], np.int32)
    short = jaxloss.ctc(KERAS_Y_TRUE, logits, logit_lengths=lengths)
    assert np.isposinf(short[1]) and np.all(np.isfinite(np.asarray(short)[[0, 2]]))
    assert float(jaxloss.CTC(zero_infinity=True)(np.array([[1, 1, 1, 1]]), logits[:1])) == 0.0
    # an option of the wrong type is a TypeError
    with pytest.raises(TypeError, match=r"CTC: `blank_id` must be an int; got 1\.5"):
        jaxloss.CTC(blank_id=1.5)
    with pytest.raises(TypeError, match="CTC: `zero_infinity` must be True or False; got 1"):
        jaxloss.CTC(zero_infinity=1)


def test_keras_layer_bad_input_raises():
    logits = np.zeros((3, 6, 5), np.float32)
    with pytest.raises(ValueError, match=r"ctc: `y_true` must have shape \(batch_size"):
        jaxloss.ctc(KERAS_Y_TRUE[0], logits)
    with pytest.raises(ValueError, match=r"ctc: `y_pred` must have shape \(batch_size"):
        jaxloss.ctc(KERAS_Y_TRUE, logits[0])
    with pytest.raises(ValueError, match="ctc: `y_true` and `y_pred` must have the same batch"):
        jaxloss.ctc(KERAS_Y_TRUE[:2], logits)
    with pytest.raises(TypeError, match="ctc: `y_true` must hold integer class indices"):
        jaxloss.CTC()(KERAS_Y_TRUE.astype(np.float32), logits)
    # what only the kernel checks is reported under the handle's name
    with pytest.raises(TypeError, match=r"^ctc: `logit_lengths` must be an integer array"):
        jaxloss.CTC()(KERAS_Y_TRUE, logits, logit_lengths=np.full(3, 6.0))
    with pytest.raises(ValueError, match=r"^ctc: `label_lengths` must have batch size 3"):
        jaxloss.CTC()(KERAS_Y_TRUE, logits, label_lengths=np.ones(2, np.int32))
    with pytest.raises(ValueError, match=r"^ctc: `blank_id` must be in \[-5, 5\)"):
        jaxloss.ctc(KERAS_Y_TRUE, logits, blank_id=5)


def test_unrolled_recursions_match_the_dp(monkeypatch):
    # the lengths are chosen so that 4 steps per iteration divide neither scan's length; a GPU
    # runs the steps with XLA's exp2 and log2, not the CPU's polynomials
    monkeypatch.setattr(ctc_module, "use_polynomials", lambda dtype: False)
    case = random_case(batch=2, time=7, seed=5)
    assert_unrolled_matches_reference(monkeypatch, ctc_loss, case, ref_losses, ref_grad)


def test_both_step_forms_match_the_dp(monkeypatch):
    """The recursion with the float32 polynomials (XLA:CPU) and with XLA's exp2 and log2 (other
    backends, float64) give the float64 DP's losses and gradients. The second form gets a shape
    of its own, so that its program is traced afresh with the setting (not taken from the cache)."""
    for polynomials, time in ((True, 6), (False, 5)):
        monkeypatch.setattr(ctc_module, "use_polynomials", lambda dtype, p=polynomials: p)
        logits, labels, logit_lengths, label_lengths = case = random_case(time=time, seed=21)
        kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
        program = str(jax.make_jaxpr(ctc_loss)(logits, labels, **kw))
        assert ("bitcast_convert_type" in program) == polynomials  # 2**floor(x) of exp2_neg
        loss, grad = loss_and_grad(logits, labels, **kw)
        np.testing.assert_allclose(ctc_loss(logits, labels, **kw), ref_losses(*case), rtol=1e-5)
        np.testing.assert_allclose(loss, ref_losses(*case).sum(), rtol=1e-5)
        np.testing.assert_allclose(grad, ref_grad(*case), atol=2e-5)


def test_polynomials_match_float64():
    """The CPU recursion's exp2 and log2(1 + u) against NumPy in float64, over their domains."""
    x = -np.concatenate([np.linspace(0, 1, 20001), np.linspace(1, 125, 20001)]).astype(np.float32)
    got = np.asarray(jax.jit(exp2_neg)(x), np.float64)
    want = np.exp2(x.astype(np.float64))
    assert np.max(np.abs(got - want) / want) < 1.5e-7
    assert np.all(np.asarray(exp2_neg(jnp.float32(-200.0))) == 0)
    u = np.linspace(2.0**-30, 1, 20001).astype(np.float32)
    a = np.zeros_like(u)
    lae, weight, _ = jax.jit(ctc_module._lae_and_weight)(a, np.log2(u), jnp.zeros((2, u.size)))
    u64 = u.astype(np.float64)
    np.testing.assert_allclose(lae, np.log2(1 + u64), atol=3e-7)
    np.testing.assert_allclose(weight, 1 / (1 + u64), atol=3e-7)


def test_a_per_frame_offset_changes_nothing():
    """The kernel shifts each frame by its largest logit, not its logsumexp, and adds the
    difference back: an offset per frame (the softmax is blind to it) leaves loss and gradient."""
    logits, labels, logit_lengths, label_lengths = random_case(seed=22)
    kw = dict(logit_lengths=logit_lengths, label_lengths=label_lengths)
    offset = np.random.default_rng(22).uniform(-50, 50, size=(*logits.shape[:2], 1))
    moved = (logits + offset).astype(np.float32)
    loss, grad = loss_and_grad(logits, labels, **kw)
    loss_moved, grad_moved = loss_and_grad(moved, labels, **kw)
    np.testing.assert_allclose(loss_moved, loss, rtol=1e-5)
    np.testing.assert_allclose(grad_moved, grad, atol=2e-5)
    np.testing.assert_allclose(
        ctc_loss(moved, labels, **kw),
        ref_losses(logits, labels, logit_lengths, label_lengths),
        rtol=1e-5,
    )
