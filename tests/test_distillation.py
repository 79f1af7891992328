"""Distillation divergences against float64 references from GKD's formula: the endpoints, the
custom VJP's gradients, zero probabilities, masks, the top-k teacher and the kernel's memory."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from jaxloss import ops
from tests.reference.distillation import (
    np_jsd,
    np_kl,
    np_knowledge_distillation,
    np_softmax,
)


def _logits(seed, shape=(2, 3, 7), scale=2.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(shape)).astype(np.float32)


CASES = [
    pytest.param(0.0, 1.0, False, id="forward_kl"),
    pytest.param(1.0, 1.0, False, id="reverse_kl"),
    pytest.param(0.5, 1.0, False, id="jsd_half"),
    pytest.param(0.2, 2.0, True, id="jsd_0.2_T2_scaled"),
    pytest.param(0.0, 3.0, True, id="forward_kl_T3_scaled"),
]


@pytest.mark.parametrize("beta, temperature, scaled", CASES)
def test_values_match_the_float64_reference(beta, temperature, scaled):
    teacher, student = _logits(0), _logits(1)
    options = dict(beta=beta, temperature=temperature, scale_by_temperature_squared=scaled)
    expected = np_knowledge_distillation(teacher, student, **options)
    got = jaxloss.knowledge_distillation(teacher, student, **options)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
    twin = ops.distillation_divergence_autodiff(student, teacher, **options)
    np.testing.assert_allclose(twin, expected, rtol=2e-5, atol=1e-6)


def test_beta_endpoints_are_forward_and_reverse_kl_as_limits_of_the_jsd():
    teacher, student = _logits(2, (4, 9)), _logits(3, (4, 9))
    p, q = np_softmax(teacher), np_softmax(student)
    forward = ops.distillation_divergence(student, teacher, beta=0.0)
    reverse = ops.distillation_divergence(student, teacher, beta=1.0)
    np.testing.assert_allclose(forward, np_kl(p, q), rtol=1e-5)  # KL(teacher || student)
    np.testing.assert_allclose(reverse, np_kl(q, p), rtol=1e-5)  # KL(student || teacher)
    # JSD_beta / beta -> KL(P || Q) as beta -> 0; JSD_beta / (1 - beta) -> KL(Q || P) as beta -> 1.
    eps = 1e-6
    np.testing.assert_allclose(np_jsd(p, q, eps) / eps, forward, rtol=1e-3)
    np.testing.assert_allclose(np_jsd(p, q, 1 - eps) / eps, reverse, rtol=1e-3)
    # jsd of nearly-equal mixing weights interpolates: beta = 0.5 is symmetric in (P, Q).
    a = ops.distillation_divergence(student, teacher, beta=0.5)
    b = ops.distillation_divergence(teacher, student, beta=0.5)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_log_probabilities_give_the_same_value_as_logits():
    teacher, student = _logits(4), _logits(5)
    lt, ls = jax.nn.log_softmax(teacher), jax.nn.log_softmax(student)
    for beta in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(
            ops.distillation_divergence(ls, lt, beta=beta, temperature=2.0),
            ops.distillation_divergence(student, teacher, beta=beta, temperature=2.0),
            rtol=1e-5,
            atol=1e-7,
        )


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0], ids=["forward", "jsd", "reverse"])
def test_check_grads_on_the_custom_vjp_and_autodiff_agrees(beta):
    with jax.enable_x64(True):
        teacher = jnp.asarray(_logits(6, (3, 5)), jnp.float64)
        student = jnp.asarray(_logits(7, (3, 5)), jnp.float64)
        weights = jnp.array([1.0, -2.0, 0.5])

        def f(s, t):
            v = ops.distillation_divergence(
                s, t, beta=beta, temperature=1.5, scale_by_temperature_squared=True
            )
            return jnp.sum(weights * v)

        check_grads(jax.jit(f), (student, teacher), order=1, modes=("rev",))

        def g(s, t):
            v = ops.distillation_divergence_autodiff(
                s, t, beta=beta, temperature=1.5, scale_by_temperature_squared=True
            )
            return jnp.sum(weights * v)

        ours = jax.grad(f, argnums=(0, 1))(student, teacher)
        auto = jax.grad(g, argnums=(0, 1))(student, teacher)
        for a, b in zip(ours, auto, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        # the student gradient of the forward KL is (softmax(s / T) - softmax(t / T)) * T
        if beta == 0.0:
            expected = (np_softmax(student / 1.5) - np_softmax(teacher / 1.5)) * 1.5
            np.testing.assert_allclose(ours[0], weights[:, None] * expected, rtol=1e-10)


def test_minus_infinity_logits_and_exact_zeros_give_finite_values_and_gradients():
    ninf = -np.inf
    # a masked vocabulary (both -inf in column 3), a top-p-filtered teacher (-inf in column 0)
    # and exact zeros passed as log(0) probabilities.
    teacher = np.array([[ninf, 1.0, 0.5, ninf, 2.0], [0.0, 0.0, ninf, ninf, 1.0]], np.float32)
    student = np.array([[0.3, -1.0, 0.5, ninf, 1.0], [1.0, 2.0, 0.0, ninf, -1.0]], np.float32)
    with np.errstate(divide="ignore"):
        probs = np.log(np.array([[0.0, 0.5, 0.5, 0.0, 0.0]], np.float32))
    for beta in (0.0, 0.5, 1.0):
        for kernel in (ops.distillation_divergence, ops.distillation_divergence_autodiff):
            values, grads = jax.jit(
                jax.vmap(
                    jax.value_and_grad(
                        lambda s, t, kernel=kernel, beta=beta: kernel(s, t, beta=beta),
                        argnums=(0, 1),
                    )
                )
            )(student, teacher)
            if beta < 1:  # reverse KL is infinite where the teacher is 0 and the student not
                np.testing.assert_allclose(
                    values, np_knowledge_distillation(teacher, student, beta=beta), rtol=1e-5
                )
                assert np.all(np.isfinite(grads[0])) and np.all(np.isfinite(grads[1]))
            else:  # really infinite: huge (custom VJP) or +inf (autodiff), never NaN
                assert np.all(values > 1e30)
        # identical distributions with zeros: exactly 0, zero gradient
        value, grad = jax.value_and_grad(
            lambda s, beta=beta: ops.distillation_divergence(s, probs, beta=beta).sum()
        )(probs)
        assert float(value) == pytest.approx(0.0, abs=1e-7)
        assert np.all(np.isfinite(grad)) and np.max(np.abs(grad)) < 1e-6


def test_masked_tokens_are_zero_with_zero_gradient_even_when_nan_and_the_mean_skips_them():
    teacher, student = _logits(8, (2, 3, 5)), _logits(9, (2, 3, 5))
    student[0, 1] = np.nan
    teacher[1, 2] = np.nan
    labels = np.array([[4, -100, 1], [0, 2, -100]], np.int32)
    valid = labels != -100
    loss = jaxloss.KnowledgeDistillation(beta=0.5, ignore_index=-100)
    value, grad = jax.value_and_grad(lambda s: loss(teacher, s, labels=labels))(student)
    per_token = np_knowledge_distillation(np.nan_to_num(teacher), np.nan_to_num(student), beta=0.5)
    np.testing.assert_allclose(value, per_token[valid].mean(), rtol=1e-5)
    assert np.all(np.isfinite(grad)) and np.all(grad[~valid] == 0)
    where = jnp.asarray(valid)
    fn_values = jaxloss.knowledge_distillation(teacher, student, beta=0.5, where=where)
    np.testing.assert_allclose(fn_values, np.where(valid, per_token, 0.0), rtol=1e-5, atol=1e-7)
    # top-k teacher, masked rows with NaN student logits
    idx = np.argsort(-np.nan_to_num(teacher), axis=-1)[..., :2].astype(np.int32)
    vals = np.take_along_axis(teacher, idx, -1)
    grad = jax.grad(
        lambda s: jaxloss.knowledge_distillation(vals, s, teacher_indices=idx, where=where).sum()
    )(student)
    assert np.all(np.isfinite(grad)) and np.all(grad[~valid] == 0)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0], ids=["forward", "jsd", "reverse"])
def test_topk_renormalize_is_exact_against_a_dense_teacher_that_is_minus_inf_elsewhere(beta):
    teacher, student = _logits(10, (3, 8)), _logits(11, (3, 8))
    idx = np.argsort(-teacher, axis=-1)[:, :3].astype(np.int32)
    vals = np.take_along_axis(teacher, idx, -1)
    dense_teacher = np.full_like(teacher, -np.inf)
    np.put_along_axis(dense_teacher, idx, vals, -1)
    topk = ops.topk_distillation_divergence(student, idx, vals, beta=beta, temperature=2.0)
    dense = np_knowledge_distillation(dense_teacher, student, beta=beta, temperature=2.0)
    if beta == 1.0:
        assert np.all(np.isinf(topk)) and np.all(np.isinf(dense))
    else:
        np.testing.assert_allclose(topk, dense, rtol=1e-5)
        expected = np_knowledge_distillation(
            vals, student, beta=beta, temperature=2.0, teacher_indices=idx
        )
        np.testing.assert_allclose(topk, expected, rtol=1e-5)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0], ids=["forward", "jsd", "reverse"])
def test_topk_residual_bucket_matches_the_reference_and_passes_check_grads(beta):
    teacher, student = _logits(12, (3, 8)), _logits(13, (3, 8))
    logp = jax.nn.log_softmax(teacher)
    idx = np.argsort(-teacher, axis=-1)[:, :4].astype(np.int32)
    vals = np.take_along_axis(np.asarray(logp), idx, -1)
    for temperature in (1.0, 2.0):
        got = jaxloss.knowledge_distillation(
            vals, student, beta=beta, temperature=temperature, tail="residual", teacher_indices=idx
        )
        expected = np_knowledge_distillation(
            vals, student, beta, temperature, tail="residual", teacher_indices=idx
        )
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-7)
    with jax.enable_x64(True):
        s, v = jnp.asarray(student, jnp.float64), jnp.asarray(vals, jnp.float64)

        def f(s, v):
            out = ops.topk_distillation_divergence(
                s, idx, v, beta=beta, temperature=1.5, tail="residual"
            )
            return jnp.sum(out * jnp.array([1.0, 2.0, -1.0]))

        check_grads(f, (s, v), order=1, modes=("rev",))


def test_the_kernel_keeps_no_tokens_by_vocab_temporary():
    n, v = 64, 1024
    s = jnp.zeros((n, v), jnp.float32)
    one_buffer = n * v * 4
    for beta in (0.0, 0.5, 1.0):
        step = jax.value_and_grad(
            lambda s, t, beta=beta: ops.distillation_divergence(s, t, beta=beta).mean()
        )
        memory = jax.jit(step).lower(s, s).compile().memory_analysis()
        assert memory.temp_size_in_bytes < one_buffer / 4, (beta, memory.temp_size_in_bytes)


def test_bad_options_and_inputs_raise_clear_errors():
    t, s = _logits(14, (2, 5)), _logits(15, (2, 5))
    with pytest.raises(ValueError, match="knowledge_distillation: `beta` must be a float in"):
        jaxloss.knowledge_distillation(t, s, beta=1.5)
    with pytest.raises(ValueError, match="KnowledgeDistillation: `beta` must be"):
        jaxloss.KnowledgeDistillation(beta=-0.1)
    with pytest.raises(ValueError, match="`temperature` must be a finite float > 0"):
        jaxloss.knowledge_distillation(t, s, temperature=0.0)
    with pytest.raises(TypeError, match="`temperature` must be"):
        jaxloss.KnowledgeDistillation(temperature="hot")
    with pytest.raises(ValueError, match="`tail` must be"):
        jaxloss.KnowledgeDistillation(tail="bucket")
    with pytest.raises(ValueError, match="must have the same shape"):
        jaxloss.knowledge_distillation(t[:, :4], s)
    with pytest.raises(TypeError, match="`teacher_indices` must hold integer"):
        jaxloss.knowledge_distillation(t[:, :2], s, teacher_indices=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="distillation_divergence: `beta` must be"):
        ops.distillation_divergence(s, t, beta=2.0)
    assert math.isfinite(float(jaxloss.KnowledgeDistillation(beta=np.float32(0.5))(t, s)))


def test_bfloat16_logits_compute_in_float32_and_get_a_bfloat16_gradient():
    teacher, student = _logits(16, (3, 9)), _logits(17, (3, 9))
    t16, s16 = jnp.asarray(teacher, jnp.bfloat16), jnp.asarray(student, jnp.bfloat16)
    value, grad = jax.value_and_grad(lambda s: ops.distillation_divergence(s, t16, beta=0.5).sum())(
        s16
    )
    assert value.dtype == jnp.float32 and grad.dtype == jnp.bfloat16
    rounded = np_knowledge_distillation(
        np.asarray(t16, np.float32), np.asarray(s16, np.float32), beta=0.5
    )
    np.testing.assert_allclose(value, rounded.sum(), rtol=1e-5)


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0], ids=["forward", "jsd", "reverse"])
def test_streaming_chunks_give_the_reference_values_and_gradients(beta):
    # 300 classes in chunks of 128 (two full steps and a ragged tail), of 7 (a long scan) and in
    # one piece; -inf logits in the first and last chunks; the student's logits shifted by 40 so
    # that the running sums must be kept relative to their shifts.
    rng = np.random.default_rng(20)
    teacher = (2.0 * rng.standard_normal((2, 3, 300))).astype(np.float32)
    student = (2.0 * rng.standard_normal((2, 3, 300)) + 40.0).astype(np.float32)
    teacher[0, 0, :130] = -np.inf
    teacher[:, :, 299] = student[:, :, 299] = -np.inf  # a masked class
    student[1, 2, 290:] = -np.inf
    teacher[1, 2, 290:] = -np.inf
    expected = np_knowledge_distillation(teacher, student, beta=beta, temperature=1.5)
    finite = np.isfinite(expected)
    with jax.enable_x64(True):  # the gradient of the autodiff twin in float64
        s64, t64 = jnp.asarray(student, jnp.float64), jnp.asarray(teacher, jnp.float64)
        twin = jax.grad(
            lambda s: ops.distillation_divergence_autodiff(s, t64, beta=beta, temperature=1.5)[
                finite
            ].sum()
        )(s64)
        twin = np.asarray(twin)[finite]
    for chunk in (128, 7, 300):

        def f(s, chunk=chunk):
            options = dict(beta=beta, temperature=1.5, vocab_chunk=chunk)
            values = ops.distillation_divergence(s, teacher, **options)
            return values.sum(), values

        grad, values = jax.jit(jax.grad(f, has_aux=True))(student)
        # (one piece, the reverse KL sums q (s - t) over logits 40 apart: float32 cancellation)
        np.testing.assert_allclose(values[finite], expected[finite], rtol=1e-4, atol=2e-6)
        # reverse KL is really infinite where the teacher's -inf faces student mass
        assert np.all(values[~finite] > 1e30) and np.sum(~finite) == (beta == 1.0)
        np.testing.assert_allclose(np.asarray(grad)[finite], twin, rtol=1e-3, atol=1e-5)


def test_the_streaming_forward_keeps_only_chunk_sized_temporaries():
    n, v, chunk = 64, 4096, 256
    s = jnp.zeros((n, v), jnp.float32)
    one_buffer = n * v * 4
    for beta in (0.0, 0.5, 1.0):
        step = jax.value_and_grad(
            lambda s, t, beta=beta: ops.distillation_divergence(
                s, t, beta=beta, vocab_chunk=chunk
            ).mean()
        )
        memory = jax.jit(step).lower(s, s).compile().memory_analysis()
        # a step's slices and exponentials: a few [n, chunk] arrays, never an [n, v] one
        assert memory.temp_size_in_bytes < one_buffer / 2, (beta, memory.temp_size_in_bytes)


def test_input_errors_name_the_loss_not_the_kernel():
    t, s = _logits(21, (2, 3, 5)), _logits(22, (2, 3, 5))
    idx = np.zeros((2, 3, 2), np.int32)
    loss = jaxloss.KnowledgeDistillation()
    for call in (
        lambda: jaxloss.knowledge_distillation(t[..., :3], s, teacher_indices=idx),
        lambda: loss(t[..., :3], s, teacher_indices=idx),
        lambda: jaxloss.knowledge_distillation(t[:1, :, :2], s, teacher_indices=idx[:1]),
    ):
        with pytest.raises(
            ValueError, match=r"knowledge_distillation: `teacher_indices` and `y_true` \(the top-k"
        ):
            call()
    wide = np.zeros((2, 3, 6), np.int32)
    with pytest.raises(ValueError, match="knowledge_distillation: `teacher_indices` must hold at"):
        jaxloss.knowledge_distillation(_logits(23, (2, 3, 6)), s, teacher_indices=wide)
    # whatever else the kernel refuses is reported under the loss's name and argument names
    from jaxloss._distillation import _named

    with pytest.raises(TypeError, match="knowledge_distillation: `y_pred` must be a floating"):
        _named(ops.distillation_divergence, np.ones((2, 5), np.int32), t[0])
    with pytest.raises(ValueError, match="knowledge_distillation: `vocab_chunk` must be None or"):
        _named(ops.distillation_divergence, s, t, vocab_chunk=0)


def test_every_token_masked_gives_zero_with_a_zero_gradient():
    teacher, student = _logits(24, (2, 3, 5)), _logits(25, (2, 3, 5))
    student[0, 0, 1] = -np.inf
    labels = np.full((2, 3), -100, np.int32)
    for beta in (0.0, 0.5, 1.0):
        loss = jaxloss.KnowledgeDistillation(beta=beta, ignore_index=-100)
        value, grad = jax.value_and_grad(lambda s, loss=loss: loss(teacher, s, labels=labels))(
            student
        )
        assert float(value) == 0.0
        np.testing.assert_array_equal(grad, 0.0)


def test_default_chunks_are_whole_rows_on_cpu_and_four_steps_on_accelerators():
    from jaxloss.ops.distillation import _cpu_chunk, _vocab_chunk

    assert _vocab_chunk(4096, 32768, None, "cpu") == 32768
    assert _vocab_chunk(4096, 32768, 1000, "cpu") == 1000
    # a cache-sized CPU chunk: about 2 MiB of float32 rows, at least 128 classes, at most V
    assert _cpu_chunk(4096, 32768) == 128
    assert _cpu_chunk(256, 32768) == 2048
    assert _cpu_chunk(64, 1024) == 1024
    # accelerators: four steps of at least 2048 classes (a multiple of 128)
    assert _vocab_chunk(4096, 32768, None, "gpu") == 8192
    assert _vocab_chunk(4096, 128256, None, "gpu") == 32128
    assert _vocab_chunk(4096, 4000, None, "tpu") == 2048
    assert _vocab_chunk(4096, 32768, 1000, "gpu") == 1000
