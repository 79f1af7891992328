"""Preference losses against float64 references from the papers, their logged metrics, edge cases
(equal pairs, log-ratios of +-1e4, empty masks) and sequence_log_probs through the fused head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from tests.reference.preference import (
    np_dpo,
    np_ipo,
    np_kto,
    np_orpo,
    np_robust_dpo,
    np_sequence_log_probs,
    np_simpo,
    np_slic_hinge,
)

PAIRED = [
    pytest.param(jaxloss.dpo, np_dpo, {}, id="dpo"),
    pytest.param(jaxloss.dpo, np_dpo, {"beta": 0.5, "label_smoothing": 0.2}, id="cdpo"),
    pytest.param(jaxloss.robust_dpo, np_robust_dpo, {"beta": 0.3}, id="robust_dpo"),
    pytest.param(jaxloss.ipo, np_ipo, {"beta": 0.4}, id="ipo"),
    pytest.param(jaxloss.slic_hinge, np_slic_hinge, {"beta": 0.7}, id="slic_hinge"),
]


def _pairs(seed, shape=(2, 3, 2)):
    rng = np.random.default_rng(seed)
    reference = -rng.uniform(5.0, 30.0, shape)
    policy = reference + rng.normal(0.0, 2.0, shape)
    return reference.astype(np.float32), policy.astype(np.float32)


@pytest.mark.parametrize("fn, reference, options", PAIRED)
def test_paired_losses_and_metrics_match_the_papers(fn, reference, options):
    ref, pol = _pairs(0)
    loss, metrics = fn(ref, pol, **options, return_metrics=True)
    np.testing.assert_allclose(loss, reference(ref, pol, **options), rtol=2e-5, atol=1e-5)
    beta = options.get("beta", 0.1)
    rewards = beta * (pol.astype(np.float64) - ref)
    np.testing.assert_allclose(metrics["chosen_rewards"], rewards[..., 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(metrics["rejected_rewards"], rewards[..., 1], rtol=1e-5, atol=1e-5)
    margins = rewards[..., 0] - rewards[..., 1]
    np.testing.assert_allclose(metrics["reward_margins"], margins, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(metrics["reward_accuracies"], (margins > 0).astype(np.float32))


def test_dpo_gradient_is_the_papers():
    # d/d pi_c of -log sigmoid(beta h) is -beta sigmoid(-beta h); the rejected gets the opposite.
    ref, pol = _pairs(1, (4, 2))
    grad = jax.grad(lambda p: jaxloss.dpo(ref, p, beta=0.3).sum())(pol)
    h = (pol[:, 0] - ref[:, 0]) - (pol[:, 1] - ref[:, 1]).astype(np.float64)
    expected = -0.3 / (1 + np.exp(0.3 * h))
    np.testing.assert_allclose(grad[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(grad[:, 1], -expected, rtol=1e-5)


def test_simpo_and_orpo_with_lengths_match_the_papers():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 20, (5, 2))
    pol = (-rng.uniform(0.2, 3.0, (5, 2)) * lengths).astype(np.float32)
    ref = np.zeros_like(pol)
    got, m = jaxloss.simpo(None, pol, beta=2.5, gamma=1.0, lengths=lengths, return_metrics=True)
    np.testing.assert_allclose(got, np_simpo(ref, pol, 2.5, 1.0, lengths), rtol=1e-5)
    np.testing.assert_allclose(m["chosen_rewards"], 2.5 * pol[:, 0] / lengths[:, 0], rtol=1e-5)
    got, m = jaxloss.orpo(None, pol, beta=0.2, lengths=lengths, return_metrics=True)
    np.testing.assert_allclose(got, np_orpo(ref, pol, 0.2, lengths), rtol=1e-5)
    avg = pol / lengths
    log_odds = np.log(np.exp(avg) / (1 - np.exp(avg)))
    np.testing.assert_allclose(m["log_odds_ratio"], log_odds[:, 0] - log_odds[:, 1], rtol=1e-4)
    # the class handles take y_true=None and the lengths at call time
    weights = np.array([1.0, 0.0, 2.0, 1.0, 1.0])
    value = jaxloss.ORPO(beta=0.2)(None, pol, sample_weight=weights, lengths=lengths)
    np.testing.assert_allclose(value, (np_orpo(ref, pol, 0.2, lengths) * weights).mean(), rtol=1e-5)


def test_kto_matches_the_paper_and_its_reference_point_has_no_gradient():
    rng = np.random.default_rng(3)
    x = -rng.uniform(5.0, 30.0, (6, 4)).astype(np.float32)
    x[:, 2] = x[:, 3] + rng.uniform(0.0, 2.0, 6)  # a positive KL estimate
    label = np.array([1, 0, 1, 1, 0, 0])
    options = {"beta": 0.3, "desirable_weight": 1.5, "undesirable_weight": 0.5}
    loss, m = jaxloss.kto(label, x, **options, return_metrics=True)
    np.testing.assert_allclose(loss, np_kto(label, x, **options), rtol=1e-5, atol=1e-6)
    z0 = float(np.mean(x[:, 2].astype(np.float64) - x[:, 3]))
    assert float(m["kl"]) == pytest.approx(z0, rel=1e-5)
    r = x[:, 0].astype(np.float64) - x[:, 1]
    assert float(m["chosen_rewards"]) == pytest.approx(0.3 * r[label == 1].mean(), rel=1e-5)
    np.testing.assert_array_equal(m["reward_accuracies"], ((r > z0) == (label == 1)))
    grad = jax.grad(lambda y: jaxloss.KTO(**options)(label, y))(x)
    np.testing.assert_array_equal(grad[:, 2:], 0.0)
    # a negative KL estimate is clamped to 0
    x[:, 2] = x[:, 3] - 1.0
    np.testing.assert_allclose(jaxloss.kto(label, x), np_kto(label, x), rtol=1e-5)


LOSSES = {
    "dpo": lambda r, p: jaxloss.dpo(r, p, label_smoothing=0.1),
    "robust_dpo": jaxloss.robust_dpo,
    "ipo": jaxloss.ipo,
    "slic_hinge": jaxloss.slic_hinge,
    "simpo": lambda r, p: jaxloss.simpo(None, p),
    "orpo": lambda r, p: jaxloss.orpo(None, p),
    "kto": lambda r, p: jaxloss.kto(
        jnp.array([1.0, 0.0, 1.0]), jnp.concatenate([p, r, p, r], axis=-1)[:, [0, 2, 4, 6]]
    ),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_equal_pairs_and_extreme_log_ratios_give_finite_values_and_gradients(name):
    fn = LOSSES[name]
    equal = jnp.full((3, 2), -7.0)
    extreme_pol = jnp.array([[-1.0, -1e4], [-1e4, -1.0], [-5e3, -5e3]])
    extreme_ref = jnp.array([[-1e4, -1.0], [-1.0, -1e4], [-1.0, -1e4]])
    for ref, pol in ((equal, equal), (extreme_ref, extreme_pol)):
        value, grad = jax.value_and_grad(lambda p, ref=ref: fn(ref, p).sum())(pol)
        assert np.isfinite(float(value)), name
        assert np.all(np.isfinite(grad)), name
    if name == "dpo":
        np.testing.assert_allclose(fn(equal, equal), np.log(2.0), rtol=1e-6)


@pytest.mark.parametrize("name", ["dpo", "robust_dpo", "ipo", "simpo", "orpo"])
def test_check_grads(name):
    with jax.enable_x64(True):
        ref, pol = (jnp.asarray(a, jnp.float64) for a in _pairs(4, (3, 2)))
        check_grads(lambda p: LOSSES[name](ref, p / 10.0), (pol,), order=2, modes=("rev",))


def _tokens(seed, batch=2, length=5, dim=4, vocab=11):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(batch, length, dim)).astype(np.float32)
    weight = rng.normal(size=(dim, vocab)).astype(np.float32)
    labels = rng.integers(0, vocab, (batch, length)).astype(np.int32)
    return hidden, weight, labels


def test_sequence_log_probs_from_logits_and_from_the_fused_head_agree_with_the_reference():
    hidden, weight, labels = _tokens(5)
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], bool)
    labels = np.where(mask, labels, -100)  # out of range where masked: must not matter
    logits = hidden @ weight
    for average in (False, True):
        expected = np_sequence_log_probs(logits, labels, mask, average)
        from_logits = jaxloss.sequence_log_probs(logits, labels, mask=mask, average=average)
        from_head = jaxloss.sequence_log_probs(
            (hidden, weight), labels, ignore_index=-100, average=average, block_size=4
        )
        np.testing.assert_allclose(from_logits, expected, rtol=1e-5)
        np.testing.assert_allclose(from_head, expected, rtol=1e-5)


def test_a_dpo_step_through_the_fused_head_has_the_gradient_of_the_unfused_one():
    hidden, weight, labels = _tokens(6, batch=4)
    ref = jnp.asarray(np_sequence_log_probs(hidden @ weight * 0.9, labels)).reshape(2, 2)

    def step(w, fused):
        head = (hidden, w) if fused else hidden @ w
        logps = jaxloss.sequence_log_probs(head, labels, block_size=4).reshape(2, 2)
        return jaxloss.DPO(beta=0.2)(ref, logps)

    fused = jax.value_and_grad(step)(weight, True)
    plain = jax.value_and_grad(step)(weight, False)
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-5)
    np.testing.assert_allclose(fused[1], plain[1], rtol=1e-4, atol=1e-6)


def test_empty_masks_give_zero_with_a_zero_gradient():
    hidden, weight, labels = _tokens(7)
    mask = np.zeros(labels.shape, bool)
    for head in ((hidden, weight), hidden @ weight):
        for average in (False, True):
            value, grad = jax.value_and_grad(
                lambda h, average=average: jaxloss.sequence_log_probs(
                    h, labels, mask=mask, average=average
                ).sum()
            )(head)
            assert float(value) == 0.0
            assert all(np.all(g == 0) for g in jax.tree.leaves(grad))


def test_bad_options_and_shapes_raise_clear_errors():
    ref, pol = _pairs(8, (3, 2))
    with pytest.raises(ValueError, match=r"robust_dpo: `label_smoothing` must be a float in \[0"):
        jaxloss.robust_dpo(ref, pol, label_smoothing=0.5)
    with pytest.raises(ValueError, match="RobustDPO: `label_smoothing` must be"):
        jaxloss.RobustDPO(label_smoothing=0.7)
    with pytest.raises(ValueError, match="dpo: `beta` must be a float > 0"):
        jaxloss.dpo(ref, pol, beta=0.0)
    with pytest.raises(TypeError, match="DPO: `beta` must be"):
        jaxloss.DPO(beta="big")
    with pytest.raises(ValueError, match=r"`y_pred` must have shape \[..., 2\]"):
        jaxloss.dpo(ref, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="must have the same shape"):
        jaxloss.ipo(ref[:2], pol)
    with pytest.raises(ValueError, match=r"kto: `y_pred` must have shape \[..., 4\]"):
        jaxloss.kto(np.ones(3), pol)
    with pytest.raises(TypeError, match="sequence_log_probs: `labels` must hold integer"):
        jaxloss.sequence_log_probs(np.zeros((2, 3, 4)), np.zeros((2, 3)))


def _token_logps(seed, pairs, length):
    """Per-token log-probabilities of chosen and rejected completions with ragged masks."""
    rng = np.random.default_rng(seed)
    logps = -rng.uniform(0.05, 2.0, (pairs, 2, length))
    lengths = rng.integers(1, length + 1, (pairs, 2))
    mask = np.arange(length) < lengths[..., None]
    return logps, mask, lengths


def test_orpo_nll_is_the_mean_over_the_batch_chosen_tokens_as_in_the_paper_and_trl():
    beta = 0.3
    logps, mask, lengths = _token_logps(10, 6, 9)
    sums = np.where(mask, logps, 0.0).sum(-1)
    avg = sums / lengths
    log_odds = avg - np.log1p(-np.exp(avg))
    odds_term = -np.logaddexp(0.0, -(log_odds[:, 0] - log_odds[:, 1]))
    # The SFT term: causal-LM NLL averaged over every chosen token of the batch.
    token_nll = -np.where(mask[:, 0], logps[:, 0], 0.0).sum() / mask[:, 0].sum()
    expected = token_nll - beta * odds_term.mean()
    got = jaxloss.ORPO(beta=beta)(None, sums.astype(np.float32), lengths=lengths)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # "sequences": every chosen completion averaged on its own first.
    expected = -avg[:, 0].mean() - beta * odds_term.mean()
    orpo = jaxloss.ORPO(beta=beta, nll_average="sequences")
    np.testing.assert_allclose(orpo(None, sums.astype(np.float32), lengths=lengths), expected, 1e-5)
    per_pair = jaxloss.orpo(None, sums, beta=beta, lengths=lengths, nll_average="sequences")
    np.testing.assert_allclose(
        per_pair, np_orpo(None, sums, beta, lengths, nll_average="sequences"), rtol=1e-5
    )
    # Without lengths the inputs are averages and both modes agree.
    tokens = jaxloss.orpo(None, avg, beta=beta)
    np.testing.assert_allclose(tokens, jaxloss.orpo(None, avg, beta=beta, nll_average="sequences"))
    with pytest.raises(ValueError, match="orpo: `nll_average` must be one of 'tokens'"):
        jaxloss.orpo(None, avg, nll_average="batch")
    with pytest.raises(ValueError, match="ORPO: `nll_average` must be"):
        jaxloss.ORPO(nll_average="pairs")


def _shard(fn, n_args):
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    spec = PartitionSpec("data")
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=(spec,) * n_args, out_specs=(PartitionSpec(), spec))
    )


def test_kto_reference_point_is_the_global_batch_estimate_inside_shard_map():
    rng = np.random.default_rng(11)
    x = -rng.uniform(5.0, 30.0, (16, 4))
    # Uneven KL estimates across shards: a local mean would differ from the global one on every
    # device, and one shard's local mean is negative (clamped to 0 locally, not globally).
    x[:, 2] = x[:, 3] + np.repeat(np.linspace(-1.5, 3.0, 8), 2)
    label = np.array([1, 0, 0, 1] * 4, np.float32)
    options = {"beta": 0.4, "desirable_weight": 1.3, "undesirable_weight": 0.7}
    expected = np_kto(label, x, **options)
    x32 = x.astype(np.float32)

    def local(t, y):
        loss = jaxloss.KTO(**options, axis_name="data")
        value, grad = jax.value_and_grad(lambda y: loss(t, y))(y)
        return value, grad

    value, grad = _shard(local, 2)(label, x32)
    np.testing.assert_allclose(value, expected.mean(), rtol=1e-5)
    # The gradient flows through r only: d/d pi of the global mean, computed in float64.
    z0 = max(0.0, float(np.mean(x[:, 2] - x[:, 3])))
    r = x[:, 0] - x[:, 1]
    sig = 1 / (1 + np.exp(-options["beta"] * np.where(label > 0.5, r - z0, z0 - r)))
    weight = np.where(label > 0.5, -1.3, 0.7)
    d_pi = weight * options["beta"] * sig * (1 - sig) / len(x)
    # atol: 1e-6 of the largest entry (4e-3), a few float32 ulps of the sigmoids it comes from.
    np.testing.assert_allclose(grad[:, 0], d_pi, rtol=1e-4, atol=4e-9)
    np.testing.assert_allclose(grad[:, 1], -d_pi, rtol=1e-4, atol=4e-9)
    np.testing.assert_array_equal(grad[:, 2:], 0.0)

    def metrics(t, y):
        m = jaxloss.kto(t, y, **options, axis_name="data", return_metrics=True)[1]
        return m["kl"], m["rewards"]

    kl, rewards = _shard(metrics, 2)(label, x32)
    assert float(kl) == pytest.approx(z0, rel=1e-5)
    np.testing.assert_allclose(rewards, 0.4 * r, rtol=1e-5)


def test_orpo_token_mean_inside_shard_map_equals_the_global_batch():
    logps, mask, lengths = _token_logps(12, 16, 7)
    sums = np.where(mask, logps, 0.0).sum(-1)
    expected = np_orpo(None, sums, 0.2, lengths).mean()
    pol, lens = sums.astype(np.float32), lengths.astype(np.int32)

    def local(y, n):
        loss = jaxloss.ORPO(beta=0.2, axis_name="data")
        return jax.value_and_grad(lambda y: loss(None, y, lengths=n))(y)

    value, grad = _shard(local, 2)(pol, lens)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    whole = jax.grad(lambda y: jaxloss.ORPO(beta=0.2)(None, y, lengths=lens))(pol)
    np.testing.assert_allclose(grad, whole, rtol=1e-5, atol=1e-8)


def test_empty_completions_and_one_sided_kto_batches_give_finite_values_and_gradients():
    hidden, weight, labels = _tokens(13, batch=4)
    mask = np.ones(labels.shape, bool)
    mask[1] = False  # the first pair's rejected completion is empty
    lengths = mask.sum(-1).reshape(2, 2)

    def losses(w):
        logps = jaxloss.sequence_log_probs((hidden, w), labels, mask=mask, block_size=4)
        logps = logps.reshape(2, 2)
        ref = jnp.zeros_like(logps)
        return jnp.stack(
            [
                jaxloss.DPO()(ref, logps),
                jaxloss.SimPO()(None, logps, lengths=lengths),
                jaxloss.ORPO()(None, logps - 1.0, lengths=lengths),  # keep the odds finite
            ]
        )

    grad = jax.grad(lambda w: losses(w).sum())(weight)
    values = losses(weight)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))
    logps = np.asarray(np_sequence_log_probs(hidden @ weight, labels, mask)).reshape(2, 2)
    np.testing.assert_allclose(values[0], np_dpo(np.zeros((2, 2)), logps).mean(), rtol=1e-5)
    # KTO with only desirable completions: no undesirable mean to log, no NaN anywhere
    x = -np.random.default_rng(14).uniform(1.0, 9.0, (4, 4)).astype(np.float32)
    loss, m = jaxloss.kto(np.ones(4), x, return_metrics=True)
    np.testing.assert_allclose(loss, np_kto(np.ones(4), x), rtol=1e-5)
    assert float(m["rejected_rewards"]) == 0.0
    assert all(np.all(np.isfinite(v)) for v in m.values())
    grad = jax.grad(lambda y: jaxloss.KTO()(np.zeros(4), y))(x)
    assert np.all(np.isfinite(grad))
