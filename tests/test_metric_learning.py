"""Metric-learning losses: float64 references on uneven batches, TFA/optax/PyTorch semantics,
masking of anchors without pairs, and global-batch equality under ``shard_map``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import jaxloss
from jaxloss.ops import metric_learning as mops
from tests.reference import metric_learning as ref

IN_BATCH = ["triplet_hard", "triplet_semihard", "contrastive", "lifted_struct", "npairs"]
IN_BATCH += ["ntxent", "circle"]
DISTANCE_OPTION = ["triplet_hard", "triplet_semihard", "contrastive", "lifted_struct"]
# class 3 has one member (no positive), class 0 three (more positives than the others)
UNEVEN = np.array([0, 0, 0, 1, 1, 2, 3, 2])


def _embeddings(seed, n=8, dim=4, normalize=False):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x


@pytest.mark.parametrize("name", IN_BATCH)
def test_in_batch_losses_match_the_float64_reference(name):
    emb = _embeddings(0, normalize=name == "circle")
    fn, np_fn = getattr(jaxloss, name), ref.REFERENCES[name]
    np.testing.assert_allclose(fn(UNEVEN, emb), np_fn(UNEVEN, emb), rtol=2e-5, atol=2e-5)
    # separate references: the self-pair rule only removes index-equal positives
    ref_lab, ref_emb = np.array([0, 1, 2, 0, 4]), _embeddings(1, 5, normalize=name == "circle")
    np.testing.assert_allclose(
        fn(UNEVEN, emb, ref_lab, ref_emb),
        np_fn(UNEVEN, emb, ref_lab, ref_emb),
        rtol=2e-5,
        atol=2e-5,
    )


@pytest.mark.parametrize("metric", ["squared-L2", "angular", "callable"])
@pytest.mark.parametrize("name", DISTANCE_OPTION)
def test_distance_metrics(name, metric):
    emb = _embeddings(2)
    if metric == "callable":
        metric = lambda x, y: jnp.abs(x[:, None, :] - y[None, :, :]).sum(-1)
        np_metric = lambda x, y: np.abs(x[:, None, :] - y[None, :, :]).sum(-1)
    else:
        np_metric = metric
    got = getattr(jaxloss, name)(UNEVEN, emb, distance_metric=metric)
    want = ref.REFERENCES[name](UNEVEN, emb, distance_metric=np_metric)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_soft_and_margin_options():
    emb = _embeddings(3)
    np.testing.assert_allclose(
        jaxloss.triplet_hard(UNEVEN, emb, soft=True),
        ref.np_triplet_hard(UNEVEN, emb, soft=True),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jaxloss.triplet_semihard(UNEVEN, emb, margin=0.3),
        ref.np_triplet_semihard(UNEVEN, emb, margin=0.3),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        jaxloss.circle(
            UNEVEN, _embeddings(3, normalize=True), gamma=8.0, margin=0.1, remove_diagonal=False
        ),
        ref.np_circle(
            UNEVEN, _embeddings(3, normalize=True), gamma=8.0, margin=0.1, remove_diagonal=False
        ),
        rtol=1e-5,
    )


def test_tfa_batch_means_on_balanced_batches():
    # every anchor has one positive: the per-anchor means average to TFA's pair means
    labels, emb = np.array([0, 0, 1, 1, 2, 2]), _embeddings(4, 6, normalize=True)
    np.testing.assert_allclose(
        np.mean(jaxloss.triplet_semihard(labels, emb)),
        ref.np_triplet_semihard_tfa(labels, emb),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        np.mean(jaxloss.lifted_struct(labels, emb)),
        ref.np_lifted_struct_tfa(labels, emb),
        rtol=1e-5,
    )
    # TFA's npairs_loss(labels, anchors @ positives.T): positives as references, no self-pairs
    anchors, positives = _embeddings(5, 4), _embeddings(6, 4)
    lab = np.array([0, 1, 2, 1])
    got = jaxloss.npairs(lab, anchors, lab, positives, remove_diagonal=False)
    np.testing.assert_allclose(
        np.mean(got), ref.np_npairs_tfa(lab, np.float64(anchors) @ positives.T), rtol=1e-5
    )


def test_npairs_multilabel_reference():
    labels = (np.random.default_rng(7).random((8, 3)) < 0.5).astype(np.int32)
    emb = _embeddings(7)
    np.testing.assert_allclose(
        jaxloss.npairs_multilabel(labels, emb),
        ref.np_npairs_multilabel(labels, emb),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        jaxloss.npairs_multilabel(labels, emb, labels, emb[::-1] * 0.5, remove_diagonal=False),
        ref.np_npairs_multilabel(labels, emb, labels, emb[::-1] * 0.5, remove_diagonal=False),
        rtol=1e-5,
        atol=1e-6,
    )


def test_ntxent_matches_optax():
    emb = jnp.asarray(_embeddings(8))
    for labels in (UNEVEN, np.array([0, 1, 2, 3, 0, 1, 2, 3])):
        labels = jnp.asarray(labels)
        want = optax.losses.ntxent(emb, labels, temperature=0.3)
        np.testing.assert_allclose(mops.ntxent(emb, labels, temperature=0.3), want, rtol=1e-5)
        np.testing.assert_allclose(
            mops.ntxent(emb, labels, 0.3), ref.np_ntxent_optax(labels, emb, 0.3), rtol=1e-5
        )
    # two views per sample: the per-anchor mean is optax's mean over pairs
    labels = jnp.array([0, 1, 2, 3, 0, 1, 2, 3])
    np.testing.assert_allclose(
        jnp.mean(jaxloss.ntxent(labels, emb)), optax.losses.ntxent(emb, labels), rtol=1e-5
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"swap": True},
        {"p": 1.0},
        {"p": 3.0, "eps": 0.1},
        {"soft": True},
        {"distance_metric": "angular"},
        {"distance_metric": "squared-L2", "swap": True},
    ],
    ids=["default", "swap", "p1", "p3_eps", "soft", "angular", "sqL2_swap"],
)
def test_triplet_margin_torch_semantics(options):
    a, p, n = (_embeddings(s, 6) for s in (9, 10, 11))
    np.testing.assert_allclose(
        jaxloss.triplet_margin(None, (a, p, n), **options),
        ref.np_triplet_margin(None, (a, p, n), **options),
        rtol=1e-5,
        atol=1e-6,
    )
    if not options:
        kernel = mops.triplet_margin_loss(a, p, n)
        np.testing.assert_allclose(kernel, ref.np_triplet_margin(None, (a, p, n)), rtol=1e-5)


def test_triplet_margin_matches_optax_without_eps():
    a, p, n = (_embeddings(s, 6) for s in (12, 13, 14))
    np.testing.assert_allclose(
        jaxloss.triplet_margin(None, (a, p, n), eps=0.0, margin=0.5),
        optax.losses.triplet_margin_loss(a, p, n, margin=0.5, eps=0.0),
        rtol=1e-5,
    )


def test_pair_losses_torch_semantics():
    x1, x2 = _embeddings(15, 6), _embeddings(16, 6)
    target = np.array([1, -1, 1, -1, 0, 1])  # a 0 target costs nothing (PyTorch)
    np.testing.assert_allclose(
        jaxloss.cosine_embedding(target, (x1, x2), margin=0.2),
        ref.np_cosine_embedding(target, (x1, x2), margin=0.2),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        mops.cosine_embedding_loss(x1, x2, target, margin=0.2),
        ref.np_cosine_embedding(target, (x1, x2), margin=0.2),
        rtol=1e-5,
        atol=1e-6,
    )
    dist, signs = np.abs(x1), np.where(x2 > 0, 1.0, -1.0)
    signs[0, 0] = 0.0  # neither 1 nor -1: both terms apply (PyTorch)
    np.testing.assert_allclose(
        jaxloss.hinge_embedding(signs, dist, margin=0.7),
        ref.np_hinge_embedding(signs, dist, margin=0.7),
        rtol=1e-6,
    )


def test_tfa_documented_examples():
    y_true, y_pred = jnp.array([0, 0]), jnp.array([[0.0, 1.0], [1.0, 0.0]])
    dot = lambda x, y: x @ y.T
    assert float(jnp.mean(jaxloss.triplet_hard(y_true, y_pred))) == pytest.approx(1.0)
    assert float(jnp.mean(jaxloss.triplet_hard(y_true, y_pred, distance_metric=dot))) == 0.0
    assert float(jnp.mean(jaxloss.triplet_semihard(y_true, y_pred))) == pytest.approx(2.4142137)
    semihard_dot = jaxloss.triplet_semihard(y_true, y_pred, distance_metric=dot)
    assert float(jnp.mean(semihard_dot)) == pytest.approx(1.0)
    # the class handles leave these anchors (no negative) out: nothing is left, the mean is 0
    assert float(jaxloss.TripletHard()(y_true, y_pred)) == 0.0


@pytest.mark.parametrize(
    "cls",
    [
        jaxloss.TripletHard,
        jaxloss.TripletSemiHard,
        jaxloss.LiftedStruct,
        jaxloss.NTXent,
        jaxloss.Circle,
        jaxloss.Npairs,
    ],
    ids=lambda c: c.__name__,
)
def test_anchors_without_pairs_are_masked_with_finite_gradients(cls):
    emb = jnp.asarray(_embeddings(17, normalize=True))
    labels = jnp.asarray(UNEVEN)  # anchor 6 (class 3) has no positive
    values = np.asarray(cls(reduction="none")(labels, emb), np.float64)
    valid = np.array([i != 6 for i in range(8)])
    value, grad = jax.value_and_grad(lambda e: cls()(labels, e))(emb)
    np.testing.assert_allclose(value, values[valid].mean(), rtol=1e-5)
    assert np.all(np.isfinite(grad))
    # distinct labels: no positives; one class: no negatives (N-pairs needs none). Every anchor
    # is masked: the loss is 0, never NaN, with a finite gradient.
    cases = [jnp.arange(8)] + ([] if cls is jaxloss.Npairs else [jnp.zeros(8, jnp.int32)])
    for labels in cases:
        value, grad = jax.value_and_grad(lambda e, lab=labels: cls()(lab, e))(emb)
        assert float(value) == 0.0
        assert np.all(np.isfinite(grad))


def test_contrastive_masks_anchors_without_any_pair():
    # anchor 0's only reference is itself (removed), anchor 1 pairs with it as a negative
    emb = jnp.asarray(_embeddings(23, 2))
    labels, ref_labels = jnp.array([0, 1]), jnp.array([0])
    loss = jaxloss.Contrastive(margin=5.0)
    value = loss(labels, emb, ref_labels=ref_labels, ref_embeddings=emb[:1], anchor_offset=0)
    want = ref.np_contrastive(np.array([1]), emb[1:], np.array([0]), emb[:1], margin=5.0)
    np.testing.assert_allclose(value, want[0], rtol=1e-5)


def test_bad_inputs_raise():
    emb = _embeddings(18)
    with pytest.raises(ValueError, match="triplet_hard: `distance_metric` must be"):
        jaxloss.triplet_hard(UNEVEN, emb, distance_metric="L1")
    with pytest.raises(ValueError, match="TripletHard: `distance_metric` must be"):
        jaxloss.TripletHard(distance_metric="cosine")
    with pytest.raises(TypeError, match="triplet_semihard: `y_true` must hold integer"):
        jaxloss.triplet_semihard(UNEVEN.astype(np.float32), emb)
    with pytest.raises(ValueError, match="contrastive: `y_true` must hold one label per row"):
        jaxloss.contrastive(UNEVEN[:5], emb)
    with pytest.raises(ValueError, match="npairs: `ref_embeddings` must be"):
        jaxloss.npairs(UNEVEN, emb, UNEVEN[:3], emb)
    with pytest.raises(TypeError, match="triplet_margin: `y_pred` must be a tuple"):
        jaxloss.triplet_margin(None, emb)
    with pytest.raises(ValueError, match="cosine_embedding: `y_true` must be"):
        jaxloss.cosine_embedding(np.ones(3), (emb, emb))
    with pytest.raises(TypeError, match="NTXent: `temperature` must be a float > 0"):
        jaxloss.NTXent(temperature="0.1")


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
@pytest.mark.parametrize(
    "loss",
    [
        jaxloss.TripletSemiHard(),
        jaxloss.TripletHard(soft=True),
        jaxloss.NTXent(temperature=0.5),
        jaxloss.Circle(gamma=4.0),
        jaxloss.LiftedStruct(),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_sharded_mining_equals_the_global_batch(loss):
    # 16 samples, 2 per device; class 5 is alone (masked) and sits on a different device than
    # the rest of its neighbours, so local mining would pick other negatives and positives
    labels = jnp.array([0, 1, 2, 0, 3, 1, 4, 2, 5, 3, 0, 4, 1, 2, 3, 4])
    emb = jnp.asarray(_embeddings(19, 16, 5, normalize=True))
    mesh = Mesh(np.array(jax.devices()[:8]), ("d",))
    sharded = jax.tree_util.tree_map(lambda x: x, loss)
    sharded = type(loss)(**{**loss.get_config(), "axis_name": "d"})
    local = jax.shard_map(
        lambda lab, e: sharded(lab, e), mesh=mesh, in_specs=(P("d"), P("d")), out_specs=P()
    )
    value, grad = jax.jit(jax.value_and_grad(local, argnums=1))(labels, emb)
    want, want_grad = jax.value_and_grad(lambda e: loss(labels, e))(emb)
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


def test_kernels_match_torch_when_installed():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    a, p, n = (_embeddings(s, 6) for s in (20, 21, 22))
    t = lambda x: torch.from_numpy(np.asarray(x))
    for options in ({}, {"swap": True, "margin": 0.5}, {"p": 1.0, "eps": 0.0}):
        want = F.triplet_margin_loss(t(a), t(p), t(n), reduction="none", **options)
        np.testing.assert_allclose(
            mops.triplet_margin_loss(a, p, n, **options), want.numpy(), rtol=1e-5, atol=1e-6
        )
    target = np.array([1, -1, 1, -1, 1, -1])
    want = F.cosine_embedding_loss(t(a), t(p), t(target), margin=0.1, reduction="none")
    np.testing.assert_allclose(
        mops.cosine_embedding_loss(a, p, target, margin=0.1), want.numpy(), rtol=1e-5, atol=1e-6
    )
    signs = np.where(n > 0, 1.0, -1.0).astype(np.float32)
    want = F.hinge_embedding_loss(t(np.abs(a)), t(signs), margin=0.7, reduction="none")
    np.testing.assert_allclose(
        mops.hinge_embedding_loss(np.abs(a), signs, margin=0.7), want.numpy(), rtol=1e-6
    )


def _np_lifted_struct_stable(labels, emb, margin=1.0):
    # The shared reference sums exp(margin - d) directly, which underflows to 0 in float64 once
    # distances pass ~745; this one shifts by the maximum.
    e = np.float64(emb)
    d = np.sqrt(np.maximum(((e[:, None] - e[None]) ** 2).sum(-1), 0.0))
    out = []
    for i in range(len(e)):
        terms = []
        for j in range(len(e)):
            if j == i or labels[j] != labels[i]:
                continue
            a = [margin - d[i, k] for k in range(len(e)) if labels[k] != labels[i]]
            a += [margin - d[j, k] for k in range(len(e)) if labels[k] != labels[j]]
            big_j = (ref._lse(a) if a else -np.inf) + d[i, j]
            terms.append(0.5 * max(big_j, 0.0) ** 2)
        out.append(np.mean(terms) if terms else 0.0)
    return np.array(out)


# the in-batch losses that exponentiate distances or scores
@pytest.mark.parametrize("name", ["lifted_struct", "npairs", "ntxent", "circle"])
def test_unnormalised_embeddings_eager_equals_jit_equals_float64(name):
    # Circle at norm 100 reaches logits ~1e10: under jit XLA fused the product into the
    # max-shifted exponent (an FMA) and the largest entry came out as exp(+-hundreds).
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 3])
    unit = _embeddings(31, normalize=True)
    fn = getattr(jaxloss, name)
    np_fn = _np_lifted_struct_stable if name == "lifted_struct" else ref.REFERENCES[name]
    jitted = jax.jit(fn)
    for norm in (1.0, 100.0, 1e3):
        emb = (unit * np.float32(norm)).astype(np.float32)
        want = np_fn(labels, np.float64(emb))
        assert np.all(np.isfinite(want.astype(np.float32)))
        atol = 1e-5 * max(1.0, float(np.abs(want).max()))
        for got in (fn(labels, emb), jitted(labels, emb)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=atol, err_msg=f"norm {norm}")


@pytest.mark.parametrize("norm", [1.0, 100.0, 1e3], ids=["norm1", "norm100", "norm1000"])
def test_circle_gradient_of_unnormalised_embeddings_matches_finite_differences(norm):
    labels = np.array([0, 0, 1, 1, 2, 0])
    emb = (_embeddings(32, 6, 3, normalize=True) * np.float32(norm)).astype(np.float32)
    grad = jax.jit(jax.grad(lambda e: jnp.sum(jaxloss.circle(labels, e))))(emb)
    x = np.float64(emb)
    want = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        h = 1e-6 * max(abs(x[idx]), 1.0)
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        want[idx] = (ref.np_circle(labels, up).sum() - ref.np_circle(labels, down).sum()) / (2 * h)
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("temperature", [0.5, 1e-3, 1e-5], ids=["t0.5", "t1e-3", "t1e-5"])
def test_ntxent_at_tiny_temperatures_matches_a_shifted_float64_reference(temperature):
    # at a tiny temperature every negative can sit thousands below a positive: each pair's
    # term must be formed from its own logit and the log-sum of the negatives, never log(0)
    rng = np.random.default_rng(7)
    e = rng.normal(size=(8, 4))
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = unit @ unit.T / temperature
    terms = []
    for i in range(8):
        neg = s[i, labels != labels[i]]
        log_neg = neg.max() + np.log(np.sum(np.exp(neg - neg.max())))
        terms += [
            np.logaddexp(0.0, log_neg - s[i, j])
            for j in range(8)
            if j != i and labels[j] == labels[i]
        ]
    x = jnp.asarray(e, jnp.float32)
    got = mops.ntxent(x, jnp.asarray(labels), temperature=temperature)
    np.testing.assert_allclose(got, np.mean(terms), rtol=2e-5)
    grad = jax.grad(lambda q: mops.ntxent(q, jnp.asarray(labels), temperature=temperature))(x)
    assert np.all(np.isfinite(grad))


def test_p_norm_keeps_nan_instead_of_reading_it_as_zero():
    x = jnp.array([[np.nan, 1.0], [0.0, 0.0]])
    for p in (2.0, 3.0):
        got = np.asarray(mops.p_norm(x, p))
        assert np.isnan(got[0]) and got[1] == 0.0, (p, got)
    grad = jax.grad(lambda q: mops.p_norm(q, 3.0).sum())(jnp.zeros((1, 2)))
    np.testing.assert_array_equal(grad, 0.0)
