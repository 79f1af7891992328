"""jaxloss.compat.torch: torch.nn.functional's loss names, signatures and values.

Every function is checked against a float64 NumPy formula written here (with torch's reduction
rules), and, where PyTorch is installed, against torch itself on the same inputs. The adapters'
use of the jaxloss kernels is checked on their jaxprs.
"""

import inspect

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss.compat import torch as F
from tests.reference.margin import np_multi_margin, np_multilabel_margin

# --- float64 references, torch's definitions ---


def _reduce(per, reduction):
    per = np.asarray(per, np.float64)
    return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_cross_entropy(
    input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    x = np.float64(input)
    axis = 1 if x.ndim >= 2 else 0
    logp = np.moveaxis(_log_softmax(x, axis), axis, -1)
    c = logp.shape[-1]
    w = np.ones(c) if weight is None else np.float64(weight)
    ls = label_smoothing
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        t = np.moveaxis(np.float64(target), axis, -1) * (1 - ls) + ls / c
        return _reduce(-(t * w * logp).sum(-1), reduction)
    y = np.asarray(target)
    valid = y != ignore_index
    safe = np.where(valid, y, 0)
    picked = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    per = (1 - ls) * w[safe] * -picked + ls / c * -(w * logp).sum(-1)
    per = np.where(valid, per, 0.0)
    if reduction == "mean":
        return per.sum() / np.where(valid, w[safe], 0.0).sum()
    return _reduce(per, reduction)


def np_nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    x = np.float64(input)
    axis = 1 if x.ndim >= 2 else 0
    logp = np.moveaxis(x, axis, -1)
    w = np.ones(logp.shape[-1]) if weight is None else np.float64(weight)
    y = np.asarray(target)
    valid = y != ignore_index
    safe = np.where(valid, y, 0)
    per = np.where(valid, -w[safe] * np.take_along_axis(logp, safe[..., None], -1)[..., 0], 0.0)
    if reduction == "mean":
        return per.sum() / np.where(valid, w[safe], 0.0).sum()
    return _reduce(per, reduction)


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def np_bce(input, target, weight=None, reduction="mean"):
    p, t = np.float64(input), np.float64(target)
    per = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    return _reduce(per * (1.0 if weight is None else np.float64(weight)), reduction)


def np_bce_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    x, t = np.float64(input), np.float64(target)
    pw = 1.0 if pos_weight is None else np.float64(pos_weight)
    per = -(pw * t * _log_sigmoid(x) + (1 - t) * _log_sigmoid(-x))
    return _reduce(per * (1.0 if weight is None else np.float64(weight)), reduction)


def np_kl_div(input, target, reduction="mean", log_target=False):
    x, t = np.float64(input), np.float64(target)
    if log_target:
        per = np.exp(t) * (t - x)
    else:
        per = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0) - t * x
    if reduction == "batchmean":
        return per.sum() / x.shape[0]
    return _reduce(per, reduction)


def np_poisson_nll(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    x, t = np.float64(input), np.float64(target)
    per = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        stirling = t * np.log(np.maximum(t, 1)) - t + 0.5 * np.log(2 * np.pi * np.maximum(t, 1))
        per = per + np.where(t > 1, stirling, 0.0)
    return _reduce(per, reduction)


def np_gaussian_nll(input, target, var, full=False, eps=1e-6, reduction="mean"):
    mu, t, v = np.float64(input), np.float64(target), np.float64(var)
    if v.ndim and v.shape == mu.shape[:-1]:
        v = v[..., None]
    v = np.maximum(v, eps)
    per = 0.5 * (np.log(v) + (mu - t) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0.0)
    return _reduce(np.broadcast_to(per, mu.shape), reduction)


def _pointwise(fn):
    def ref(input, target, reduction="mean", weight=None, **options):
        per = fn(np.float64(input), np.float64(target), **options)
        return _reduce(per * (1.0 if weight is None else np.float64(weight)), reduction)

    return ref


np_mse = _pointwise(lambda x, t: (x - t) ** 2)
np_l1 = _pointwise(lambda x, t: np.abs(x - t))
np_huber = _pointwise(
    lambda x, t, delta=1.0: np.where(
        np.abs(x - t) < delta, 0.5 * (x - t) ** 2, delta * (np.abs(x - t) - 0.5 * delta)
    )
)
np_smooth_l1 = _pointwise(
    lambda x, t, beta=1.0: np.where(
        np.abs(x - t) < beta, 0.5 * (x - t) ** 2 / beta, np.abs(x - t) - 0.5 * beta
    )
)
np_soft_margin = _pointwise(lambda x, t: np.log1p(np.exp(-t * x)))


def np_multilabel_soft_margin(input, target, weight=None, reduction="mean"):
    x, t = np.float64(input), np.float64(target)
    w = 1.0 if weight is None else np.float64(weight)
    per = -(w * (t * _log_sigmoid(x) + (1 - t) * _log_sigmoid(-x))).mean(-1)
    return _reduce(per, reduction)


def np_hinge_embedding(input, target, margin=1.0, reduction="mean"):
    x, y = np.float64(input), np.float64(target)
    return _reduce(np.where(y == 1, x, np.maximum(0.0, margin - x)), reduction)


def np_cosine_embedding(input1, input2, target, margin=0.0, reduction="mean"):
    a, b, y = np.float64(input1), np.float64(input2), np.float64(target)
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    return _reduce(np.where(y == 1, 1 - cos, np.maximum(0.0, cos - margin)), reduction)


def np_margin_ranking(input1, input2, target, margin=0.0, reduction="mean"):
    a, b, y = np.float64(input1), np.float64(input2), np.float64(target)
    return _reduce(np.maximum(0.0, -y * (a - b) + margin), reduction)


def _pdist(x, y, p=2.0, eps=1e-6):
    return (np.abs(x - y + eps) ** p).sum(-1) ** (1 / p)


def np_triplet(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    a, pos, neg = np.float64(anchor), np.float64(positive), np.float64(negative)
    d_ap, d_an = _pdist(a, pos, p, eps), _pdist(a, neg, p, eps)
    if swap:
        d_an = np.minimum(d_an, _pdist(pos, neg, p, eps))
    return _reduce(np.maximum(d_ap - d_an + margin, 0.0), reduction)


def np_ctc(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean"):
    """The CTC forward recursion over the blank-extended label sequence, float64."""
    lp = np.float64(log_probs)
    out = []
    for n in range(lp.shape[1]):
        t_len, lab = int(input_lengths[n]), list(np.asarray(targets)[n][: target_lengths[n]])
        ext = [blank]
        for c in lab:
            ext += [c, blank]
        alpha = np.full(len(ext), -np.inf)
        alpha[0] = lp[0, n, blank]
        if len(ext) > 1:
            alpha[1] = lp[0, n, ext[1]]
        for t in range(1, t_len):
            new = np.full(len(ext), -np.inf)
            for s in range(len(ext)):
                terms = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    terms.append(alpha[s - 2])
                new[s] = np.logaddexp.reduce(terms) + lp[t, n, ext[s]]
            alpha = new
        out.append(-np.logaddexp.reduce(alpha[-2:] if len(ext) > 1 else alpha[-1:]))
    out = np.array(out)
    if reduction == "mean":
        return np.mean(out / np.maximum(np.asarray(target_lengths), 1))
    return _reduce(out, reduction)


# --- cases: (name, args, kwargs, reference) ---


def _cases():
    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
    u32 = lambda *shape: rng.uniform(0.05, 0.95, size=shape).astype(np.float32)
    pm1 = lambda *shape: rng.choice([-1.0, 1.0], size=shape).astype(np.float32)
    probs = rng.dirichlet(np.ones(5), size=(4,)).astype(np.float32)
    labels = rng.integers(0, 5, size=(4,))
    labels_ignored = np.array([1, -100, 3, 0])
    spatial = rng.integers(0, 5, size=(2, 3, 2))
    weight = rng.uniform(0.5, 2.0, size=5).astype(np.float32)
    multilabel = np.array([[3, 0, -1, 1, 2], [4, -1, 0, 0, 0], [0, 1, 2, 3, 4], [-1, 2, 2, 2, 2]])
    distances = rng.uniform(0, 2, size=(4, 3)).astype(np.float32)
    log_probs = np.asarray(jax.nn.log_softmax(f32(6, 3, 4)))
    ctc_targets = np.array([[1, 2, 2], [3, 1, 0], [2, 0, 0]])
    return [
        ("cross_entropy", (f32(4, 5), labels), {}, np_cross_entropy),
        ("cross_entropy", (f32(4, 5), labels_ignored), {"reduction": "sum"}, np_cross_entropy),
        ("cross_entropy", (f32(4, 5), labels_ignored), {"weight": weight}, np_cross_entropy),
        (
            "cross_entropy",
            (f32(4, 5), labels_ignored),
            {"weight": weight, "label_smoothing": 0.2},
            np_cross_entropy,
        ),
        ("cross_entropy", (f32(4, 5), labels), {"label_smoothing": 0.1}, np_cross_entropy),
        ("cross_entropy", (f32(2, 5, 3, 2), spatial), {"reduction": "none"}, np_cross_entropy),
        ("cross_entropy", (f32(4, 5), probs), {"weight": weight}, np_cross_entropy),
        ("cross_entropy", (f32(4, 5), probs), {"label_smoothing": 0.3}, np_cross_entropy),
        ("cross_entropy", (f32(5), np.array(2)), {}, np_cross_entropy),
        ("nll_loss", (np.log(probs), labels_ignored), {"weight": weight}, np_nll_loss),
        ("nll_loss", (np.log(probs), labels), {"reduction": "none"}, np_nll_loss),
        ("binary_cross_entropy", (u32(4, 3), u32(4, 3)), {}, np_bce),
        ("binary_cross_entropy", (u32(4, 3), u32(4, 3)), {"weight": u32(3)}, np_bce),
        (
            "binary_cross_entropy_with_logits",
            (f32(4, 3), u32(4, 3)),
            {"weight": u32(3), "pos_weight": 2 * u32(3)},
            np_bce_logits,
        ),
        ("kl_div", (np.log(probs), probs[::-1]), {"reduction": "batchmean"}, np_kl_div),
        ("kl_div", (np.log(probs), np.log(probs[::-1])), {"log_target": True}, np_kl_div),
        ("kl_div", (np.log(probs), probs[::-1]), {"reduction": "none"}, np_kl_div),
        ("poisson_nll_loss", (f32(4, 3), rng.poisson(2.0, (4, 3)) * 1.0), {}, np_poisson_nll),
        (
            "poisson_nll_loss",
            (u32(4, 3) * 3, rng.poisson(2.0, (4, 3)) * 1.0),
            {"log_input": False, "full": True, "reduction": "sum"},
            np_poisson_nll,
        ),
        ("gaussian_nll_loss", (f32(4, 3), f32(4, 3), u32(4, 3)), {}, np_gaussian_nll),
        ("gaussian_nll_loss", (f32(4, 3), f32(4, 3), u32(4)), {"full": True}, np_gaussian_nll),
        (
            "gaussian_nll_loss",
            (f32(4, 3), f32(4, 3), u32(4, 1) * 1e-8),
            {"reduction": "none"},
            np_gaussian_nll,
        ),
        ("mse_loss", (f32(4, 3), f32(4, 3)), {}, np_mse),
        ("mse_loss", (f32(4, 3), f32(4, 3)), {"weight": u32(4, 3), "reduction": "sum"}, np_mse),
        ("l1_loss", (f32(4, 3), f32(4, 3)), {"reduction": "none"}, np_l1),
        ("huber_loss", (3 * f32(4, 3), f32(4, 3)), {"delta": 0.7}, np_huber),
        ("smooth_l1_loss", (3 * f32(4, 3), f32(4, 3)), {"beta": 0.5}, np_smooth_l1),
        ("smooth_l1_loss", (3 * f32(4, 3), f32(4, 3)), {"beta": 0.0}, np_smooth_l1),
        ("soft_margin_loss", (f32(4, 3), pm1(4, 3)), {}, np_soft_margin),
        (
            "multilabel_soft_margin_loss",
            (f32(4, 5), (u32(4, 5) > 0.5) * 1.0),
            {"weight": weight},
            np_multilabel_soft_margin,
        ),
        ("multilabel_margin_loss", (f32(4, 5), multilabel), {}, None),
        ("multi_margin_loss", (f32(4, 5), labels), {}, None),
        (
            "multi_margin_loss",
            (f32(4, 5), labels),
            {"p": 2, "margin": 0.5, "weight": weight, "reduction": "none"},
            None,
        ),
        ("hinge_embedding_loss", (distances, pm1(4, 3)), {"margin": 1.5}, np_hinge_embedding),
        (
            "cosine_embedding_loss",
            (f32(4, 6), f32(4, 6), pm1(4)),
            {"margin": 0.2},
            np_cosine_embedding,
        ),
        ("margin_ranking_loss", (f32(4), f32(4), pm1(4)), {"margin": 0.3}, np_margin_ranking),
        ("triplet_margin_loss", (f32(4, 6), f32(4, 6), f32(4, 6)), {}, np_triplet),
        (
            "triplet_margin_loss",
            (f32(4, 6), f32(4, 6), f32(4, 6)),
            {"p": 1, "swap": True, "margin": 2.0, "reduction": "none"},
            np_triplet,
        ),
        (
            "ctc_loss",
            (log_probs, ctc_targets, np.array([6, 5, 4]), np.array([3, 2, 1])),
            {},
            np_ctc,
        ),
        (
            "ctc_loss",
            (log_probs, ctc_targets, np.array([6, 5, 4]), np.array([3, 2, 1])),
            {"reduction": "none"},
            np_ctc,
        ),
    ]


CASES = _cases()
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def _reference(name, ref, args, kwargs):
    if name == "multilabel_margin_loss":
        return _reduce(np_multilabel_margin(args[1], args[0]), kwargs.get("reduction", "mean"))
    if name == "multi_margin_loss":
        options = {k: kwargs[k] for k in ("p", "margin") if k in kwargs}
        per = np_multi_margin(args[1], args[0], class_weight=kwargs.get("weight"), **options)
        return _reduce(per, kwargs.get("reduction", "mean"))
    return ref(*args, **kwargs)


@pytest.mark.parametrize("name, args, kwargs, ref", CASES, ids=IDS)
def test_matches_float64_reference(name, args, kwargs, ref):
    got = getattr(F, name)(*args, **kwargs)
    expected = _reference(name, ref, args, kwargs)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def _to_torch(torch, x):
    if isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
        return torch.from_numpy(arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.copy())
    return x


@pytest.mark.parametrize("name, args, kwargs, ref", CASES, ids=IDS)
def test_matches_torch(name, args, kwargs, ref):
    torch = pytest.importorskip("torch")
    del ref
    torch_args = [_to_torch(torch, a) for a in args]
    torch_kwargs = {k: _to_torch(torch, v) for k, v in kwargs.items()}
    expected = getattr(torch.nn.functional, name)(*torch_args, **torch_kwargs)
    got = getattr(F, name)(*args, **kwargs)
    np.testing.assert_allclose(got, expected.numpy(), rtol=2e-5, atol=2e-5)


def test_signatures_match_torch():
    torch = pytest.importorskip("torch")
    compared = 0
    for name in F.__all__:
        if not hasattr(torch.nn.functional, name):  # linear_cross_entropy is new in torch 2.13
            continue
        compared += 1
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        ours = inspect.signature(getattr(F, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
    assert compared >= len(F.__all__) - 1


def test_all_targets_ignored_is_nan_as_in_torch():
    logits = np.zeros((2, 3), np.float32)
    ignored = np.array([-100, -100])
    assert np.isnan(F.cross_entropy(logits, ignored))
    assert np.isnan(F.nll_loss(logits, ignored))
    assert float(F.cross_entropy(logits, ignored, reduction="sum")) == 0.0


def test_out_of_range_class_is_nan_in_its_row_only():
    logits = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]], np.float32)
    got = F.cross_entropy(logits, np.array([5, 1]), reduction="none")
    assert np.isnan(got[0]) and np.isfinite(got[1])
    got = F.nll_loss(logits, np.array([5, 1]), reduction="none")
    assert np.isnan(got[0]) and float(got[1]) == pytest.approx(1.0)


def test_legacy_size_average_and_reduce_flags():
    x, t = np.array([1.0, 3.0]), np.array([0.0, 1.0])
    assert float(F.mse_loss(x, t, size_average=False)) == pytest.approx(5.0)
    np.testing.assert_allclose(F.mse_loss(x, t, reduce=False), [1.0, 4.0])
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        F.mse_loss(x, t, reduction="batchmean")


def test_gaussian_nll_variance_clamp_passes_the_gradient_through():
    mean, target = np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)
    var = np.array([[1e-9, 2.0]], np.float32)
    grad = jax.grad(lambda v: F.gaussian_nll_loss(mean, target, v, eps=1e-6))(var)
    # d/dv of 0.5 (log v + 1 / v), evaluated at the clamped v = eps, divided by the 2 elements.
    expected = 0.5 * (1 / 1e-6 - 1 / 1e-12) / 2
    np.testing.assert_allclose(grad[0, 0], expected, rtol=1e-4)
    with pytest.raises(ValueError, match="`var` must have"):
        F.gaussian_nll_loss(mean, target, np.ones((3,)))


def test_ctc_concatenated_targets_and_zero_infinity():
    log_probs = np.asarray(jax.nn.log_softmax(jnp.zeros((3, 2, 3))))
    padded = F.ctc_loss(log_probs, np.array([[1, 2], [1, 0]]), [3, 3], [2, 1], reduction="none")
    concatenated = F.ctc_loss(log_probs, np.array([1, 2, 1]), [3, 3], [2, 1], reduction="none")
    np.testing.assert_allclose(padded, concatenated)
    infeasible = (log_probs, np.array([[1, 1], [1, 0]]), [2, 3], [2, 1])
    assert np.isinf(F.ctc_loss(*infeasible, reduction="none")[0])
    zeroed = F.ctc_loss(*infeasible, reduction="none", zero_infinity=True)
    assert float(zeroed[0]) == 0.0


def test_triplet_with_distance_function_and_default():
    rng = np.random.default_rng(7)
    a, p, n = (rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3))
    l1 = lambda x, y: abs(x - y).sum(-1)
    got = F.triplet_margin_with_distance_loss(a, p, n, distance_function=l1, margin=0.5)
    d_ap, d_an = np.abs(a - p).sum(-1), np.abs(a - n).sum(-1)
    np.testing.assert_allclose(got, np.maximum(d_ap - d_an + 0.5, 0).mean(), rtol=1e-5)
    np.testing.assert_allclose(
        F.triplet_margin_with_distance_loss(a, p, n), np_triplet(a, p, n), rtol=1e-5
    )


def test_linear_cross_entropy_equals_cross_entropy_of_the_logits():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    w = rng.normal(size=(7, 4)).astype(np.float32)
    b = rng.normal(size=(7,)).astype(np.float32)
    y = np.array([0, 3, 6, -100, 2, 2])
    logits = x @ w.T + b
    for kwargs in ({}, {"label_smoothing": 0.1, "reduction": "sum"}, {"weight": np.ones(7) * 2}):
        got = F.linear_cross_entropy(x, w, y, linear_bias=b, **kwargs)
        np.testing.assert_allclose(got, np_cross_entropy(logits, y, **kwargs), rtol=1e-5)
    jaxpr = str(jax.make_jaxpr(lambda h: F.linear_cross_entropy(h, w, y))(x))
    assert "custom_vjp_call" in jaxpr
    with pytest.raises(ValueError, match="linear_weight"):
        F.linear_cross_entropy(x, w[None], y)


@pytest.mark.parametrize(
    "name, args",
    [
        ("cross_entropy", (np.zeros((2, 3), np.float32), np.zeros(2, int))),
        ("cross_entropy", (np.zeros((2, 3), np.float32), np.full((2, 3), 1 / 3, np.float32))),
        ("binary_cross_entropy_with_logits", (np.zeros((2, 3), np.float32), np.ones((2, 3)))),
        (
            "ctc_loss",
            (np.zeros((4, 1, 3), np.float32), np.ones((1, 2), int), np.array([4]), np.array([2])),
        ),
    ],
    ids=["sparse-ce", "dense-ce", "sigmoid-ce", "ctc"],
)
def test_faces_run_the_custom_vjp_kernels(name, args):
    assert "custom_vjp_call" in str(jax.make_jaxpr(getattr(F, name))(*args))


def test_family_functions_are_behind_the_margin_faces(monkeypatch):
    from jaxloss import _margin

    calls = []
    original = _margin.multi_margin
    monkeypatch.setattr(
        _margin, "multi_margin", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    F.multi_margin_loss(np.zeros((2, 3)), np.zeros(2, int))
    assert calls == [1]
