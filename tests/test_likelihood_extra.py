"""Log-space likelihoods and robust regression: options, edge cases, identities, peers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from tests.reference import likelihood_extra as ref


def _rng(seed):
    return np.random.default_rng(seed)


def test_negative_log_likelihood_options_and_masked_mean():
    rng = _rng(0)
    log_p = np.log(rng.dirichlet(np.ones(4), size=(3, 2))).astype(np.float32)  # [3, 2, 4]
    labels = np.array([[0, 3], [-100, 1], [2, -100]])
    weights = (0.5, 1.0, 2.0, 1.5)
    options = {"ignore_class": -100, "class_weight": weights}
    got = jaxloss.negative_log_likelihood(labels, log_p, **options)
    np.testing.assert_allclose(
        got, ref.np_negative_log_likelihood(labels, log_p, **options), rtol=1e-6
    )
    moved = jaxloss.negative_log_likelihood(labels, np.moveaxis(log_p, -1, 1), axis=1, **options)
    np.testing.assert_allclose(moved, got, rtol=1e-6)
    # The class masks ignored elements: the mean is over the 4 valid ones.
    mean = jaxloss.NegativeLogLikelihood(**options)(labels, log_p)
    np.testing.assert_allclose(mean, np.asarray(got).sum() / 4, rtol=1e-6)
    grad = jax.grad(lambda z: jaxloss.negative_log_likelihood(labels, z, **options).sum())(log_p)
    assert np.all(np.asarray(grad)[1, 0] == 0) and np.all(np.asarray(grad)[2, 1] == 0)
    out_of_range = jaxloss.negative_log_likelihood(np.array([7, 1]), log_p[0])
    assert np.isnan(out_of_range[0]) and np.isfinite(out_of_range[1])


@pytest.mark.parametrize(
    "var_shape", [(3, 4), (3,), (3, 1), ()], ids=["full", "per-sample", "trailing-1", "scalar"]
)
def test_gaussian_nll_variance_shapes(var_shape):
    rng = _rng(1)
    mean = rng.normal(size=(3, 4)).astype(np.float32)
    target = rng.normal(size=(3, 4)).astype(np.float32)
    var = rng.uniform(0.2, 2.0, size=var_shape).astype(np.float32)
    for full in (False, True):
        got = jaxloss.gaussian_nll(target, mean, var=var, full=full)
        np.testing.assert_allclose(
            got, ref.np_gaussian_nll(target, mean, var=var, full=full), rtol=1e-5
        )
    with pytest.raises(ValueError, match="`var` must have"):
        jaxloss.gaussian_nll(target, mean, var=np.ones((4,)))


def test_gaussian_nll_matches_the_normal_log_density():
    rng = _rng(2)
    mean, target = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    var = rng.uniform(0.5, 3.0, size=(2, 3))
    log_density = jax.scipy.stats.norm.logpdf(target, mean, np.sqrt(var))
    got = jaxloss.GaussianNLL(full=True, reduction="none")(target, mean, var=var)
    np.testing.assert_allclose(got, -np.mean(log_density, -1), rtol=1e-5)


def test_poisson_nll_full_is_the_exact_log_likelihood_up_to_stirling():
    rng = _rng(3)
    log_rate = rng.normal(size=(2, 5)).astype(np.float32)
    counts = rng.poisson(3.0, size=(2, 5)).astype(np.float32)
    for options in ({}, {"full": True}, {"log_input": False, "eps": 1e-6}):
        pred = np.exp(log_rate) if options.get("log_input") is False else log_rate
        np.testing.assert_allclose(
            jaxloss.poisson_nll(counts, pred, **options),
            ref.np_poisson_nll(counts, pred, **options),
            rtol=1e-5,
        )
    exact = -jax.scipy.stats.poisson.logpmf(counts, np.exp(log_rate)).mean(-1)
    approx = jaxloss.poisson_nll(counts, log_rate, full=True)
    # Stirling's series without the 1/(12 y) term: within 0.1 nats per element for y >= 2.
    np.testing.assert_allclose(approx, exact, atol=0.1)


def test_log_kl_divergence_agrees_with_keras_kl_and_handles_zero_targets():
    rng = _rng(4)
    p = rng.dirichlet(np.ones(5), size=3).astype(np.float32)
    q = rng.dirichlet(np.ones(5), size=3).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.log_kl_divergence(q, np.log(p)), jaxloss.kl_divergence(q, p), rtol=1e-4
    )
    np.testing.assert_allclose(
        jaxloss.log_kl_divergence(np.log(q), np.log(p), log_target=True),
        jaxloss.kl_divergence(q, p),
        rtol=1e-4,
    )
    zero = np.array([[0.0, 1.0]], np.float32)
    np.testing.assert_allclose(jaxloss.log_kl_divergence(zero, np.log([[0.5, 0.5]])), [np.log(2)])
    grad = jax.grad(lambda t: jaxloss.log_kl_divergence(t, jnp.zeros((1, 2))).sum())(zero)
    assert np.all(np.isfinite(grad[0, 1]))
    where = np.array([[True, False, True, True, False]] * 3)
    np.testing.assert_allclose(
        jaxloss.log_kl_divergence(q, np.log(p), where=where),
        ref.np_log_kl_divergence(q, np.log(p), where=where),
        rtol=1e-5,
    )


def test_generalized_kl_is_zero_at_the_target_and_positive_elsewhere():
    rng = _rng(5)
    t = rng.uniform(0.0, 3.0, size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.generalized_kl_divergence(t, np.log(t)), np.zeros(3), atol=1e-5
    )
    other = rng.normal(size=(3, 4)).astype(np.float32)
    got = jaxloss.generalized_kl_divergence(t, other)
    np.testing.assert_allclose(got, ref.np_generalized_kl_divergence(t, other), rtol=1e-5)
    assert np.all(np.asarray(got) > 0)


def test_smooth_l1_is_huber_over_beta_and_l1_at_zero():
    rng = _rng(6)
    t, p = (3 * rng.normal(size=(4, 5))).astype(np.float32), rng.normal(size=(4, 5))
    np.testing.assert_allclose(
        jaxloss.smooth_l1(t, p, beta=0.5), jaxloss.huber(t, p, delta=0.5) / 0.5, rtol=1e-5
    )
    np.testing.assert_allclose(
        jaxloss.smooth_l1(t, p, beta=0.0), jaxloss.mean_absolute_error(t, p), rtol=1e-6
    )
    grad = jax.grad(lambda q: jaxloss.smooth_l1(t, q, beta=0.0).sum())(jnp.asarray(p))
    assert np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="`beta` must be"):
        jaxloss.SmoothL1(beta=-1.0)


def test_pinball_minimiser_is_the_quantile():
    rng = _rng(7)
    samples = rng.normal(size=(1, 401)).astype(np.float32)
    candidates = np.linspace(-2, 2, 161, dtype=np.float32)
    for tau in (0.1, 0.5, 0.9):
        grid = np.broadcast_to(candidates[:, None], (161, 401))
        losses = jaxloss.pinball_loss(np.broadcast_to(samples, grid.shape), grid, tau)
        best = candidates[int(np.argmin(losses))]
        assert abs(best - np.quantile(samples, tau)) < 0.05
    np.testing.assert_allclose(
        jaxloss.pinball_loss(samples, 0 * samples, tau=0.5),
        0.5 * jaxloss.mean_absolute_error(samples, 0 * samples),
        rtol=1e-6,
    )
    assert jaxloss.get("quantile_loss") is jaxloss.pinball_loss


def test_cosine_distance_zero_vectors_axes_and_masks():
    np.testing.assert_allclose(jaxloss.cosine_distance([[0.0, 0.0]], [[1.0, 2.0]]), [1.0])
    grad = jax.grad(lambda x: jaxloss.cosine_distance(x, [[1.0, 2.0]]).sum())(jnp.zeros((1, 2)))
    assert np.all(np.isfinite(grad))
    rng = _rng(8)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    np.testing.assert_allclose(
        jaxloss.cosine_distance(a, b, axis=(1, 2)),
        ref.np_cosine_distance(a, b, axis=(1, 2)),
        rtol=1e-5,
    )
    where = rng.random((2, 3, 4)) > 0.4
    np.testing.assert_allclose(
        jaxloss.cosine_distance(a, b, where=where),
        ref.np_cosine_distance(a, b, where=where),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jaxloss.cosine_distance(a, b), 1.0 + jaxloss.cosine_similarity(a, b), rtol=1e-5
    )


@pytest.mark.parametrize(
    "fn, cls, option, bad, error",
    [
        (jaxloss.gaussian_nll, jaxloss.GaussianNLL, "eps", 0.0, ValueError),
        (jaxloss.gaussian_nll, jaxloss.GaussianNLL, "full", "yes", TypeError),
        (jaxloss.poisson_nll, jaxloss.PoissonNLL, "log_input", 1, TypeError),
        (jaxloss.pinball_loss, jaxloss.PinballLoss, "tau", 1.5, ValueError),
        (jaxloss.cosine_distance, jaxloss.CosineDistance, "epsilon", -1.0, ValueError),
        (jaxloss.log_kl_divergence, jaxloss.LogKLDivergence, "axis", 1.0, TypeError),
    ],
    ids=["eps-0", "full-str", "log_input-int", "tau-1.5", "epsilon-neg", "axis-float"],
)
def test_bad_options_raise_the_same_error_from_function_and_class(fn, cls, option, bad, error):
    with pytest.raises(error, match=f"`{option}` must be"):
        fn(np.ones((2, 3)), np.ones((2, 3)), **{option: bad})
    with pytest.raises(error, match=f"`{option}` must be"):
        cls(**{option: bad})
