"""jaxloss.compat.optax: optax.losses' names, signatures and values; our kernels behind them.

Three kinds of check: every function against optax itself on random inputs; the expectations of
optax's own loss tests (re-expressed, with their published numbers); and the departures, where
optax's result is a defect, against float64 NumPy formulas.
"""

import inspect

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxloss import _embedding_pairs, _likelihood, _margin, _regression, _sparsemax
from jaxloss.compat import optax as ours
from tests.reference.margin import np_sparsemax

# Every optax.losses name that this face provides; the rest are listed with their reason.
NOT_PROVIDED: set[str] = set()
SEGMENTATION_AND_CONTRASTIVE = {
    "dice_loss",
    "binary_dice_loss",
    "multiclass_generalized_dice_loss",
    "ntxent",
    "ranking_softmax_loss",
}


def _public(module):
    return {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))}


def test_every_optax_loss_is_provided_with_optax_signature():
    names = _public(optax.losses) - NOT_PROVIDED
    missing = names - set(ours.__all__)
    assert not missing, missing
    for name in names:
        theirs_sig = inspect.signature(getattr(optax.losses, name))
        ours_sig = inspect.signature(getattr(ours, name))
        theirs_params = [(p.name, p.kind, p.default) for p in theirs_sig.parameters.values()]
        ours_params = [(p.name, p.kind, p.default) for p in ours_sig.parameters.values()]
        if name == "ranking_softmax_loss":  # optax's default reduce_fn is its own jnp.mean
            theirs_params, ours_params = theirs_params[:-1], ours_params[:-1]
        assert ours_params == theirs_params, name


def _rng_cases():
    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
    probs = lambda *shape: rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(np.float32)
    pm1 = lambda *shape: rng.choice([-1.0, 1.0], size=shape).astype(np.float32)
    labels = rng.integers(0, 5, size=(3, 4))
    mask = rng.random((3, 4, 5)) > 0.3
    return [
        ("softmax_cross_entropy", (f32(3, 4, 5), probs(3, 4, 5)), {}),
        ("softmax_cross_entropy", (f32(3, 4, 5), probs(3, 4, 5)), {"where": mask}),
        ("softmax_cross_entropy", (f32(3, 4, 5), probs(3, 4, 5)), {"axis": (1, 2)}),
        ("softmax_cross_entropy", (f32(3, 4, 5), probs(3, 4, 5)), {"axis": 0}),
        ("safe_softmax_cross_entropy", (f32(3, 5), probs(3, 5)), {}),
        ("softmax_cross_entropy_with_integer_labels", (f32(3, 4, 5), labels), {}),
        ("softmax_cross_entropy_with_integer_labels", (f32(3, 5, 4), labels), {"axis": 1}),
        (
            "softmax_cross_entropy_with_integer_labels",
            (f32(3, 2, 5), rng.integers(0, 10, size=(3,))),
            {"axis": (1, 2)},
        ),
        (
            "softmax_cross_entropy_with_integer_labels",
            (f32(3, 4, 5), labels),
            {"where": mask | (np.arange(5) == labels[..., None])},
        ),
        ("sigmoid_binary_cross_entropy", (f32(3, 4), rng.random((3, 4)).astype(np.float32)), {}),
        ("sigmoid_focal_loss", (f32(3, 4), (rng.random((3, 4)) > 0.5) * 1.0), {}),
        (
            "sigmoid_focal_loss",
            (f32(3, 4), (rng.random((3, 4)) > 0.5) * 1.0),
            {"alpha": 0.3, "gamma": 1.5},
        ),
        ("poly_loss_cross_entropy", (f32(3, 5), probs(3, 5)), {"epsilon": 1.5}),
        ("poly_loss_cross_entropy", (f32(3, 5), probs(3, 5)), {"where": mask[:, 0]}),
        ("hinge_loss", (f32(3, 4), pm1(3, 4)), {}),
        ("perceptron_loss", (f32(3, 4), pm1(3, 4)), {}),
        ("multiclass_hinge_loss", (f32(3, 4, 5), labels), {}),
        ("multiclass_perceptron_loss", (f32(3, 4, 5), labels), {}),
        ("sparsemax_loss", (f32(3, 4), rng.integers(0, 2, size=(3, 4))), {}),
        ("multiclass_sparsemax_loss", (f32(3, 5), labels[:, 0]), {}),
        ("kl_divergence", (np.log(probs(3, 5)), probs(3, 5)), {}),
        ("kl_divergence", (np.log(probs(3, 5)), probs(3, 5)), {"where": mask[:, 0]}),
        ("kl_divergence_with_log_targets", (np.log(probs(3, 5)), np.log(probs(3, 5))), {}),
        ("generalized_kl_divergence", (f32(3, 5), rng.random((3, 5)).astype(np.float32)), {}),
        ("squared_error", (f32(3, 4), f32(3, 4)), {}),
        ("squared_error", (f32(3, 4),), {}),
        ("l2_loss", (f32(3, 4), f32(3, 4)), {}),
        ("huber_loss", (f32(3, 4), f32(3, 4)), {"delta": 0.5}),
        ("log_cosh", (f32(3, 4), f32(3, 4)), {}),
        ("cosine_similarity", (f32(3, 4), f32(3, 4)), {"epsilon": 1e-6}),
        ("cosine_distance", (f32(3, 4, 5), f32(3, 4, 5)), {"axis": (1, 2)}),
        ("cosine_distance", (f32(3, 5), f32(3, 5)), {"where": mask[:, 0]}),
        ("smooth_labels", (probs(3, 5), 0.1), {}),
        ("smooth_labels", (probs(3, 5), 0.1), {"where": mask[:, 0]}),
    ]


CASES = _rng_cases()


@pytest.mark.parametrize(
    "name, args, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_matches_optax_on_random_inputs(name, args, kwargs):
    expected = getattr(optax.losses, name)(*args, **kwargs)
    got = getattr(ours, name)(*args, **kwargs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def test_ctc_matches_optax_with_paddings():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 8, 5)).astype(np.float32)
    labels = rng.integers(1, 5, size=(3, 3))
    logit_paddings = (np.arange(8) >= np.array([[8], [6], [7]])).astype(np.float32)
    label_paddings = (np.arange(3) >= np.array([[3], [2], [1]])).astype(np.float32)
    args = (logits, logit_paddings, labels, label_paddings)
    np.testing.assert_allclose(ours.ctc_loss(*args), optax.losses.ctc_loss(*args), rtol=1e-5)
    np.testing.assert_allclose(
        jax.grad(lambda x: ours.ctc_loss(x, *args[1:]).sum())(logits),
        jax.grad(lambda x: optax.losses.ctc_loss(x, *args[1:]).sum())(logits),
        atol=1e-5,
    )


def _signature(f):
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]


def test_ctc_loss_with_forward_probs_matches_optax():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 7, 4)).astype(np.float32)
    labels = np.array([[1, 1, 2], [3, 2, 0], [2, 0, 0]])  # a repeat; paddings on the last two
    logit_paddings = (np.arange(7) >= np.array([[7], [5], [6]])).astype(np.float32)
    label_paddings = (np.arange(3) >= np.array([[3], [2], [1]])).astype(np.float32)
    args = (logits, logit_paddings, labels, label_paddings)
    theirs = optax.losses.ctc_loss_with_forward_probs(*args)
    got = ours.ctc_loss_with_forward_probs(*args)
    assert [g.shape for g in got] == [t.shape for t in theirs] == [(3,), (7, 3, 4), (7, 3, 3)]
    np.testing.assert_allclose(got[0], theirs[0], rtol=1e-5)
    # Compared where optax's states lie on each row's lattice: states past the row's last label
    # depend on optax's padding values. Unreachable states are ~log_epsilon in both.
    n_label = np.array([3, 2, 1])[None, :, None]
    lattices = (np.arange(4) <= n_label, np.arange(3) < n_label)
    masks = []
    for g, t, lattice in zip(got[1:], theirs[1:], lattices, strict=True):
        g, t = np.asarray(g), np.asarray(t)
        masks.append((t > -1e4) & lattice)
        np.testing.assert_allclose(g[masks[-1]], t[masks[-1]], rtol=1e-5, atol=1e-5)
        assert np.all(g[(t < -5e4) & lattice] < -5e4)

    def masked_total_grad(fn):  # the forward probabilities are differentiable, as optax's are
        def total(x):
            _, blank, label = fn(x, *args[1:])
            return jnp.sum(jnp.where(masks[0], blank, 0)) + jnp.sum(jnp.where(masks[1], label, 0))

        return jax.grad(total)(logits)

    np.testing.assert_allclose(
        masked_total_grad(ours.ctc_loss_with_forward_probs),
        masked_total_grad(optax.losses.ctc_loss_with_forward_probs),
        rtol=1e-4,
        atol=1e-4,
    )
    assert _signature(ours.ctc_loss_with_forward_probs) == _signature(
        optax.losses.ctc_loss_with_forward_probs
    )


def test_fenchel_young_with_logsumexp_is_the_softmax_cross_entropy():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(4, 6)).astype(np.float32)
    one_hot = np.eye(6, dtype=np.float32)[rng.integers(0, 6, size=4)]
    loss = ours.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    theirs = optax.losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    np.testing.assert_allclose(loss(scores, one_hot), theirs(scores, one_hot), rtol=1e-5)
    np.testing.assert_allclose(
        loss(scores, one_hot), ours.softmax_cross_entropy(scores, one_hot), rtol=1e-5
    )
    # Extra arguments reach max_fun, as in optax.
    scaled = ours.make_fenchel_young_loss(lambda s, t: t * jax.scipy.special.logsumexp(s / t))
    np.testing.assert_allclose(
        scaled(scores, one_hot, 2.0),
        2.0 * jax.scipy.special.logsumexp(scores / 2.0, axis=-1) - np.sum(one_hot * scores, -1),
        rtol=1e-5,
    )


# --- optax's own expectations (values published in its loss tests) ---


def test_softmax_cross_entropy_published_values_and_masks():
    ys = np.array([[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]], np.float32)
    ts = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    expected = np.array([9.00013, 3.0696733])
    np.testing.assert_allclose(jax.jit(ours.softmax_cross_entropy)(ys, ts), expected, atol=1e-4)
    np.testing.assert_allclose(ours.softmax_cross_entropy(ys[0], ts[0]), expected[0], atol=1e-4)
    per_logit = np.array([[1, 0, 0], [0, 0, 0]], bool)
    out = ours.softmax_cross_entropy(ys, ts, where=per_logit)
    assert float(out[1]) == 0.0  # a row with every logit masked scores 0
    grads = jax.grad(lambda x: ours.softmax_cross_entropy(x, ts, where=per_logit).sum())(ys)
    assert np.all(np.isfinite(grads))
    rng = np.random.default_rng(3)
    preds, targets = rng.normal(size=7), rng.dirichlet(np.ones(7))
    keep = np.array([1, 0, 1, 1, 0, 1, 0], bool)
    np.testing.assert_allclose(
        ours.softmax_cross_entropy(preds, targets, where=keep),
        ours.softmax_cross_entropy(preds[keep], targets[keep]),
        atol=1e-4,
    )


def test_integer_labels_agree_with_one_hot_and_flatten_tuple_axes():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 4, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(3, 4))
    np.testing.assert_allclose(
        ours.softmax_cross_entropy_with_integer_labels(logits, labels),
        ours.softmax_cross_entropy(logits, np.eye(5, dtype=np.float32)[labels]),
        atol=1e-5,
    )
    flat_labels = rng.integers(0, 20, size=(3,))
    moved = np.moveaxis(logits, 0, -1)  # [4, 5, 3]: class axes (0, 1)
    np.testing.assert_allclose(
        ours.softmax_cross_entropy_with_integer_labels(moved, flat_labels, axis=(0, 1)),
        ours.softmax_cross_entropy_with_integer_labels(logits.reshape(3, 20), flat_labels),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="axis"):
        ours.softmax_cross_entropy_with_integer_labels(logits, labels, axis=[0])


@pytest.mark.parametrize(
    "preds, labels, expected",
    [
        ([-1e9, -1e-9], [1.0, 0.0], 5e8),
        ([-1e9, -1e-9], [0.0, 1.0], 0.3465736),
        ([1e9, 1e-9], [0.0, 1.0], 5e8),
        ([0.0, 0.0], [1.0, 0.0], 0.6931472),
    ],
    ids=["huge-positive-label", "huge-negative-label", "huge-wrong", "zero-logits"],
)
def test_sigmoid_cross_entropy_published_values(preds, labels, expected):
    got = jnp.mean(ours.sigmoid_binary_cross_entropy(np.array(preds), np.array(labels)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "eps, expected", [(2.0, 4.5317), (1.0, 3.7153), (-1.0, 2.0827), (0.0, 2.8990)]
)
def test_poly_loss_published_values(eps, expected):
    logits = np.array([0.14, 1.456, 2.356, -0.124, -2.47])
    labels = np.array([0.1, 0.15, 0.2, 0.25, 0.3])
    got = jax.jit(ours.poly_loss_cross_entropy)(logits, labels, epsilon=eps)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    batched = ours.poly_loss_cross_entropy(
        np.array([[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]]),
        np.array([[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]]),
        epsilon=2.0,
    )
    np.testing.assert_allclose(batched, [0.4823, 1.2567], atol=1e-4)


def test_hinge_perceptron_and_multiclass_published_values():
    scores = np.array([[0.6, -0.4, 1.2], [-2.0, 0.5, 0.3]])
    labels = np.array([2, 1])
    # Crammer-Singer by hand: max(0, max_{i != y} 1 + s_i - s_y).
    np.testing.assert_allclose(ours.multiclass_hinge_loss(scores, labels), [0.4, 0.8], atol=1e-6)
    np.testing.assert_allclose(ours.multiclass_perceptron_loss(scores, labels), [0.0, 0.0])
    np.testing.assert_allclose(ours.multiclass_hinge_loss(scores[0], labels[0]), 0.4, atol=1e-6)
    np.testing.assert_allclose(
        ours.hinge_loss(np.array([0.3, -0.8, 2.0]), np.array([1.0, -1.0, -1.0])), [0.7, 0.2, 3.0]
    )
    np.testing.assert_allclose(
        ours.perceptron_loss(np.array([0.3, -0.8, 2.0]), np.array([1.0, -1.0, -1.0])),
        [0.0, 0.0, 2.0],
    )
    with pytest.raises(ValueError, match="shape"):
        ours.perceptron_loss(np.zeros(3), np.zeros(2))


def test_sparsemax_zero_loss_and_gradient():
    # The loss is 0 when sparsemax(scores) is the one-hot label; its gradient is sparsemax - y.
    scores = np.array([[-1.0, 3.0, -2.0], [0.2, 0.1, 0.4]], np.float32)
    labels = np.array([1, 2])
    loss = ours.multiclass_sparsemax_loss(scores, labels)
    assert float(loss[0]) == pytest.approx(0.0, abs=1e-6)
    grad = jax.grad(lambda s: ours.multiclass_sparsemax_loss(s, labels).sum())(scores)
    expected = np.stack([np_sparsemax(np.float64(s)) for s in scores]) - np.eye(3)[labels]
    np.testing.assert_allclose(grad, expected, atol=1e-5)
    # Binary: 0 exactly when sparse_sigmoid(logit) equals the 0/1 label.
    np.testing.assert_allclose(
        ours.sparsemax_loss(np.array([1.5, -2.0, 0.0]), np.array([1, 0, 1])), [0.0, 0.0, 0.25]
    )


def test_kl_divergences_published_properties():
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
    expected = np.sum(q * (np.log(q) - np.log(p)))
    np.testing.assert_allclose(ours.kl_divergence(np.log(p), q), expected, rtol=1e-5)
    np.testing.assert_allclose(
        ours.kl_divergence_with_log_targets(np.log(p), np.log(q)), expected, rtol=1e-5
    )
    # Generalized KL of distributions is the KL; it stays >= 0 for unnormalised measures.
    np.testing.assert_allclose(ours.generalized_kl_divergence(np.log(p), q), expected, rtol=1e-4)
    assert float(ours.generalized_kl_divergence(np.log(2 * p), q)) > 0
    with pytest.warns(DeprecationWarning):
        ours.convex_kl_divergence(np.log(p), q)
    keep = np.array([1, 1, 0, 1, 0, 1], bool)
    np.testing.assert_allclose(
        ours.kl_divergence(np.log(p), q, where=keep),
        ours.kl_divergence(np.log(p[keep]), q[keep]),
        rtol=1e-5,
    )


def test_regression_published_values():
    np.testing.assert_allclose(ours.squared_error(np.array([2.0]), np.array([0.5])), [2.25])
    np.testing.assert_allclose(ours.l2_loss(np.array([2.0]), np.array([0.5])), [1.125])
    np.testing.assert_allclose(ours.huber_loss(np.array([-3.0, 0.5])), [2.5, 0.125])
    np.testing.assert_allclose(
        ours.log_cosh(np.array([1.0, -20.0])), np.log(np.cosh([1.0, -20.0])), rtol=1e-6
    )
    a, b = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.0]])
    np.testing.assert_allclose(ours.cosine_similarity(a, b), [1.0], atol=1e-6)
    np.testing.assert_allclose(ours.cosine_distance(a, -b), [2.0], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        ours.squared_error(np.zeros(3), np.zeros(2))


@pytest.mark.parametrize(
    "shape, axis, degree",
    [((4, 3), -1, 2), ((3, 5, 2), 1, 2), ((4, 3), 0, 1), ((4, 3), -1, 4)],
    ids=["rows-l2", "middle-axis", "axis0-degree1", "degree4"],
)
def test_triplet_margin_loss_float64_reference_and_optax(shape, axis, degree):
    rng = np.random.default_rng(3)
    a, p, n = (rng.normal(size=shape) for _ in range(3))

    def distance(x, y):  # optax's definition: eps inside the root, signed powers
        return (np.sum((x - y) ** degree, axis=axis) + 1e-6) ** (1.0 / degree)

    expected = np.maximum(distance(a, p) - distance(a, n) + 0.7, 0.0)
    args = [x.astype(np.float32) for x in (a, p, n)]
    kwargs = dict(axis=axis, norm_degree=degree, margin=0.7)
    got = ours.triplet_margin_loss(*args, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, optax.losses.triplet_margin_loss(*args, **kwargs), rtol=1e-6)
    theirs = jax.grad(lambda q: optax.losses.triplet_margin_loss(q, *args[1:], **kwargs).sum())
    mine = jax.grad(lambda q: ours.triplet_margin_loss(q, *args[1:], **kwargs).sum())
    np.testing.assert_allclose(mine(args[0]), theirs(args[0]), rtol=1e-5, atol=1e-6)


def test_smooth_labels_published_values():
    labels = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        jax.jit(ours.smooth_labels)(labels, 0.1),
        [[0.025, 0.925, 0.025, 0.025], [0.925, 0.025, 0.025, 0.025]],
        atol=1e-6,
    )


def test_ctc_one_to_one_alignment():
    # T == label length and no repeats: the only alignment emits each label once.
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(2, 4, 5)).astype(np.float32)
    labels = np.array([[1, 2, 3, 4], [4, 3, 2, 1]])
    log_p = jax.nn.log_softmax(np.float64(logits))
    expected = -np.take_along_axis(np.asarray(log_p), labels[..., None], -1)[..., 0].sum(-1)
    got = ours.ctc_loss(logits, np.zeros((2, 4)), labels, np.zeros((2, 4)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# --- departures, against float64 formulas ---


def test_impossible_ctc_target_is_inf_not_a_large_finite_number():
    logits = np.zeros((1, 2, 3), np.float32)
    labels = np.array([[1, 1]])  # needs 3 frames (a blank between the repeats)
    got = ours.ctc_loss(logits, np.zeros((1, 2)), labels, np.zeros((1, 2)))
    assert np.isinf(got[0])
    assert float(optax.losses.ctc_loss(logits, np.zeros((1, 2)), labels, np.zeros((1, 2)))[0]) < 1e6


def test_out_of_range_labels_give_nan_only_in_their_row():
    logits = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]], np.float32)
    for fn in (
        ours.softmax_cross_entropy_with_integer_labels,
        ours.multiclass_hinge_loss,
        ours.multiclass_perceptron_loss,
    ):
        got = fn(logits, np.array([-1, 1]))
        assert np.isnan(got[0]) and np.isfinite(got[1]), fn.__name__
    ce = ours.softmax_cross_entropy_with_integer_labels(logits, np.array([-1, 1]))
    lse = np.log(np.exp(np.float64(logits[1])).sum())
    np.testing.assert_allclose(ce[1], lse - logits[1, 1], rtol=1e-6)


def test_label_on_a_masked_class_is_infinite():
    logits = np.array([[1.0, 2.0, 0.5]], np.float32)
    where = np.array([[True, False, True]])
    got = ours.softmax_cross_entropy_with_integer_labels(logits, np.array([1]), where=where)
    assert np.isposinf(got[0])


# --- the kernels and family functions behind the face ---


def _primitive_names(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jaxpr.jaxpr)
    return names


_Z = np.zeros((2, 3), np.float32)
_P = np.full((2, 3), 1 / 3, np.float32)
_I = np.zeros(2, int)


@pytest.mark.parametrize(
    "name, args",
    [
        ("softmax_cross_entropy", (_Z, _P)),
        ("softmax_cross_entropy_with_integer_labels", (_Z, _I)),
        ("sigmoid_binary_cross_entropy", (_Z, _P)),
        (
            "ctc_loss",
            (np.zeros((1, 4, 3), np.float32), np.zeros((1, 4)), np.ones((1, 2), int), _Z[:1, :2]),
        ),
    ],
    ids=["softmax-ce", "sparse-ce", "sigmoid-ce", "ctc"],
)
def test_cross_entropy_and_ctc_faces_run_the_custom_vjp_kernels(name, args):
    assert "custom_vjp_call" in _primitive_names(getattr(ours, name), *args)


@pytest.mark.parametrize(
    "name, module, target, args",
    [
        ("multiclass_hinge_loss", _margin, "multiclass_hinge", (_Z, _I)),
        ("perceptron_loss", _margin, "perceptron", (_Z, _P)),
        ("sparsemax_loss", _margin, "binary_sparsemax_loss", (_Z, _P)),
        ("multiclass_sparsemax_loss", _sparsemax, "sparsemax_loss", (_Z, _I)),
        ("poly_loss_cross_entropy", _sparsemax, "poly1_crossentropy", (_Z, _P)),
        ("kl_divergence", _likelihood, "log_kl_divergence", (_Z, _P)),
        ("generalized_kl_divergence", _likelihood, "generalized_kl_divergence", (_Z, _P)),
        ("cosine_distance", _regression, "cosine_distance", (_P, _P)),
        ("huber_loss", _regression, "huber", (_P, _Z)),
        ("triplet_margin_loss", _embedding_pairs, "triplet_margin", (_P, _Z, _P)),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_adapters_call_the_family_functions(monkeypatch, name, module, target, args):
    calls = []
    original = getattr(module, target)

    def spy(*a, **k):
        calls.append(target)
        return original(*a, **k)

    monkeypatch.setattr(module, target, spy)
    getattr(ours, name)(*args)
    assert calls == [target]
