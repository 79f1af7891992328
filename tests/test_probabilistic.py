"""Probabilistic family against Keras 3 (every option, reduction and sample-weight form) and
against float64 NumPy formulas; edge inputs, bf16, and the beyond-Keras options."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxloss

RNG = np.random.default_rng(3)
B, C = 4, 5


def _probs(shape, axis=-1):
    x = RNG.uniform(0.05, 1.0, size=shape)
    return (x / x.sum(axis=axis, keepdims=True)).astype(np.float32)


def _onehot(shape):
    labels = RNG.integers(0, shape[-1], size=shape[:-1])
    return np.eye(shape[-1], dtype=np.float32)[labels]


def _binary(shape):
    return RNG.integers(0, 2, size=shape).astype(np.float32)


def _logits(shape, scale=2.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


# (jaxloss class name, options, (y_true, y_pred) maker)
def _cases():
    cases = []
    for fl in (False, True):
        pred = (lambda s: _logits(s)) if fl else (lambda s: RNG.uniform(0.02, 0.98, s).astype("f4"))
        for ls in (0.0, 0.2):
            cases.append(
                (
                    "BinaryCrossentropy",
                    {"from_logits": fl, "label_smoothing": ls},
                    lambda pred=pred: (_binary((B, C)), pred((B, C))),
                )
            )
            for bal in (False, True):
                cases.append(
                    (
                        "BinaryFocalCrossentropy",
                        {
                            "from_logits": fl,
                            "label_smoothing": ls,
                            "apply_class_balancing": bal,
                            "alpha": 0.3,
                            "gamma": 1.5,
                        },
                        lambda pred=pred: (_binary((B, C)), pred((B, C))),
                    )
                )
            cpred = (lambda s: _logits(s)) if fl else _probs
            cases.append(
                (
                    "CategoricalCrossentropy",
                    {"from_logits": fl, "label_smoothing": ls},
                    lambda cpred=cpred: (_onehot((B, C)), cpred((B, C))),
                )
            )
            for alpha in (0.25, [0.1, 0.2, 0.3, 0.2, 0.2]):
                cases.append(
                    (
                        "CategoricalFocalCrossentropy",
                        {"from_logits": fl, "label_smoothing": ls, "alpha": alpha, "gamma": 2.0},
                        lambda cpred=cpred: (_onehot((B, C)), cpred((B, C))),
                    )
                )
        spred = (lambda s: _logits(s)) if fl else _probs
        for ignore in (None, 2):
            cases.append(
                (
                    "SparseCategoricalCrossentropy",
                    {"from_logits": fl, "ignore_class": ignore},
                    lambda spred=spred: (RNG.integers(0, C, size=(B,)), spred((B, C))),
                )
            )
            cases.append(
                (  # segmentation: [B, H, W] labels, [B, H, W, C] predictions
                    "SparseCategoricalCrossentropy",
                    {"from_logits": fl, "ignore_class": ignore},
                    lambda spred=spred: (RNG.integers(0, C, size=(2, 3, 3)), spred((2, 3, 3, C))),
                )
            )
    cases.append(
        (
            "Poisson",
            {},
            lambda: (
                RNG.poisson(2.0, (B, C)).astype("f4"),
                RNG.uniform(0.1, 4, (B, C)).astype("f4"),
            ),
        )
    )
    cases.append(("KLDivergence", {}, lambda: (_probs((B, C)), _probs((B, C)))))
    for q in (0.3, 0.7):
        cases.append(
            (
                "CategoricalGeneralizedCrossEntropy",
                {"q": q},
                lambda: (RNG.integers(0, C, size=(B,)), _probs((B, C))),
            )
        )
    for rd in (True, False):
        cases.append(
            (
                "Circle",
                {"gamma": 4.0, "margin": 0.25, "remove_diagonal": rd},
                lambda: (np.array([0, 1, 0, 1, 2, 2]), _unit((6, 3))),
            )
        )
    return cases


def _unit(shape):
    x = RNG.normal(size=shape)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


CASES = _cases()
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None]


def _ids():
    return [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def _weights(values_shape):
    n = values_shape[0]
    yield None
    yield 0.7  # scalar
    yield RNG.uniform(0, 2, size=(n,)).astype("f4")  # [batch]
    if len(values_shape) > 1:
        yield RNG.uniform(0, 2, size=values_shape).astype("f4")  # per element


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_function_and_class_match_keras(case):
    name, options, make = case
    y_true, y_pred = make()
    ours_cls, keras_cls = getattr(jaxloss, name), getattr(keras.losses, name)
    values = np.asarray(ours_cls(reduction="none", **options)(y_true, y_pred))
    expected = np.asarray(keras_cls(reduction=None, **options)(y_true, y_pred))
    np.testing.assert_allclose(values, expected, rtol=2e-5, atol=2e-6)
    for reduction in REDUCTIONS:
        ours, theirs = (
            ours_cls(reduction=reduction, **options),
            keras_cls(reduction=reduction, **options),
        )
        for weight in _weights(values.shape):
            if (
                reduction == "mean_with_sample_weight"
                and weight is not None
                and np.ndim(weight) < len(values.shape)
            ):
                continue  # documented departure: jaxloss divides by the weights as broadcast
            if weight is not None and 0 < np.ndim(weight) < len(values.shape):
                continue  # documented departure: a [batch] weight on a [batch, ...] loss
            run = jax.jit(ours) if reduction == "sum_over_batch_size" else ours
            got = run(y_true, y_pred, sample_weight=weight)
            want = theirs(y_true, y_pred, sample_weight=weight)
            np.testing.assert_allclose(
                got, want, rtol=2e-5, atol=2e-6, err_msg=f"{reduction=} {weight=}"
            )


def test_keras_functions_match():
    y, p = _binary((B, C)), RNG.uniform(0.02, 0.98, (B, C)).astype("f4")
    for fl, pred in ((False, p), (True, _logits((B, C)))):
        np.testing.assert_allclose(
            jaxloss.binary_crossentropy(y, pred, from_logits=fl, label_smoothing=0.1, axis=0),
            keras.losses.binary_crossentropy(y, pred, from_logits=fl, label_smoothing=0.1, axis=0),
            rtol=2e-5,
            atol=2e-6,
        )
        np.testing.assert_allclose(
            jaxloss.binary_focal_crossentropy(y, pred, True, 0.4, 3.0, fl, 0.1),
            keras.losses.binary_focal_crossentropy(y, pred, True, 0.4, 3.0, fl, 0.1),
            rtol=2e-5,
            atol=2e-6,
        )
    # categorical along axis=1 of [B, C, T] (no smoothing: Keras counts the last axis there)
    t = np.moveaxis(_onehot((B, 3, C)), -1, 1)
    for fl, pred in ((False, np.moveaxis(_probs((B, 3, C)), -1, 1)), (True, _logits((B, C, 3)))):
        np.testing.assert_allclose(
            jaxloss.categorical_crossentropy(t, pred, from_logits=fl, axis=1),
            keras.losses.categorical_crossentropy(t, pred, from_logits=fl, axis=1),
            rtol=2e-5,
            atol=2e-6,
        )
    yi, pp = RNG.integers(0, C, size=(B, 1)), _probs((B, C))
    np.testing.assert_allclose(  # [batch, 1] labels are squeezed
        jaxloss.sparse_categorical_crossentropy(yi, pp),
        keras.losses.sparse_categorical_crossentropy(yi, pp),
        rtol=2e-5,
        atol=2e-6,
    )
    np.testing.assert_allclose(
        jaxloss.categorical_generalized_cross_entropy(yi[:, 0], pp, q=0.4),
        keras.losses.categorical_generalized_cross_entropy(yi[:, 0], pp, q=0.4),
        rtol=2e-5,
    )
    emb, ref = _unit((6, 3)), _unit((5, 3))
    lab, ref_lab = np.array([0, 1, 0, 1, 2, 2]), np.array([0, 1, 2, 0, 1])
    np.testing.assert_allclose(
        jaxloss.circle(
            lab, emb, ref_labels=ref_lab, ref_embeddings=ref, gamma=8.0, remove_diagonal=False
        ),
        keras.losses.circle(
            lab, emb, ref_labels=ref_lab, ref_embeddings=ref, gamma=8.0, remove_diagonal=False
        ),
        rtol=2e-5,
        atol=2e-6,
    )
    got = jaxloss.Circle(gamma=8.0)(lab, emb, ref_labels=ref_lab, ref_embeddings=ref)
    np.testing.assert_allclose(
        got, np.mean(jaxloss.circle(lab, emb, ref_lab, ref, gamma=8.0)), rtol=1e-6
    )


def test_float64_formulas():
    y, p = _binary((B, C)), RNG.uniform(0.02, 0.98, (B, C))
    y64 = y.astype(np.float64)
    bce = -(y64 * np.log(p) + (1 - y64) * np.log(1 - p)).mean(-1)
    np.testing.assert_allclose(jaxloss.binary_crossentropy(y, p.astype("f4")), bce, rtol=1e-5)
    x = _logits((B, C)).astype(np.float64)
    s = 1 / (1 + np.exp(-x))
    pt = y64 * s + (1 - y64) * (1 - s)
    focal = ((1 - pt) ** 2 * -(y64 * np.log(s) + (1 - y64) * np.log(1 - s))).mean(-1)
    np.testing.assert_allclose(
        jaxloss.binary_focal_crossentropy(y, x.astype("f4"), from_logits=True), focal, rtol=1e-5
    )
    t, q = _onehot((B, C)), _probs((B, C)).astype(np.float64)
    np.testing.assert_allclose(
        jaxloss.categorical_crossentropy(t, q.astype("f4")), -(t * np.log(q)).sum(-1), rtol=1e-5
    )
    lsm = x - np.log(np.exp(x).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        jaxloss.categorical_focal_crossentropy(t, x.astype("f4"), from_logits=True, alpha=0.5),
        (0.5 * (1 - np.exp(lsm)) ** 2 * -t * lsm).sum(-1),
        rtol=1e-5,
        atol=1e-7,
    )
    labels = t.argmax(-1)
    np.testing.assert_allclose(
        jaxloss.sparse_categorical_crossentropy(
            labels, x.astype("f4"), from_logits=True, label_smoothing=0.1
        ),
        -(0.9 * lsm[np.arange(B), labels] + 0.1 * lsm.mean(-1)),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jaxloss.poisson(y, p.astype("f4")), (p - y64 * np.log(p + 1e-7)).mean(-1), rtol=1e-5
    )
    np.testing.assert_allclose(
        jaxloss.kl_divergence(q.astype("f4"), t),
        (q * np.log(q / np.clip(t, 1e-7, 1))).sum(-1),
        rtol=1e-5,
    )
    pl = q[np.arange(B), labels]
    np.testing.assert_allclose(
        jaxloss.categorical_generalized_cross_entropy(labels, q.astype("f4"), q=0.3),
        (1 - pl**0.3) / 0.3,
        rtol=1e-5,
    )


def test_beyond_keras_options():
    x, labels = _logits((B, C)), RNG.integers(0, C, size=(B,))
    onehot = np.eye(C, dtype="f4")[labels]
    # SparseCategoricalCrossentropy(label_smoothing) == CategoricalCrossentropy on one-hot
    np.testing.assert_allclose(
        jaxloss.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.2)(labels, x),
        keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)(onehot, x),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jaxloss.SparseCategoricalCrossentropy(label_smoothing=0.2)(labels, _probs((B, C))) > 0, True
    )
    # class_weight multiplies each sample by its label's weight (Keras fit(class_weight=) rule)
    cw = [1.0, 2.0, 0.5, 3.0, 0.0]
    base = np.asarray(jaxloss.sparse_categorical_crossentropy(labels, x, from_logits=True))
    for fl, pred in ((True, x), (False, _probs((B, C)))):
        b = np.asarray(jaxloss.sparse_categorical_crossentropy(labels, pred, from_logits=fl))
        got = jaxloss.SparseCategoricalCrossentropy(
            from_logits=fl, class_weight=cw, reduction=None
        )(labels, pred)
        np.testing.assert_allclose(got, b * np.asarray(cw)[labels], rtol=1e-6)
        got = jaxloss.CategoricalCrossentropy(from_logits=fl, class_weight=cw, reduction=None)(
            onehot, pred
        )
        np.testing.assert_allclose(got, b * np.asarray(cw)[labels], rtol=1e-5)
    assert base.shape == (B,)
    # BinaryCrossentropy(pos_weight) == the torch formula
    y = _binary((B, C))
    pw = np.array([1.0, 2.0, 3.0, 0.5, 1.0], "f4")
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    want = (-(pw * y * np.log(sig) + (1 - y) * np.log(1 - sig))).mean(-1)
    for fl, pred in ((True, x), (False, sig.astype("f4"))):
        got = jaxloss.BinaryCrossentropy(from_logits=fl, pos_weight=pw, reduction=None)(y, pred)
        np.testing.assert_allclose(got, want, rtol=1e-4)
    loss = jaxloss.BinaryCrossentropy(pos_weight=[1.0, 2.0])
    assert hash(loss) == hash(jaxloss.BinaryCrossentropy.from_config(loss.get_config()))


def test_ignore_class_mask_semantics_on_segmentation_and_axis():
    labels = RNG.integers(0, C, size=(2, 4, 4))
    labels[0, :2] = 255
    x = _logits((2, 4, 4, C))
    for fl, pred in ((True, x), (False, np.asarray(jax.nn.softmax(x)))):
        ours = jaxloss.SparseCategoricalCrossentropy(from_logits=fl, ignore_class=255)
        theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=fl, ignore_class=255)
        np.testing.assert_allclose(ours(labels, pred), theirs(labels, pred), rtol=1e-5)
        valid = labels != 255
        per = jaxloss.sparse_categorical_crossentropy(
            labels, pred, from_logits=fl, ignore_class=255
        )
        np.testing.assert_allclose(ours(labels, pred), np.asarray(per)[valid].mean(), rtol=1e-5)
        # channels-first with axis=1 and [B, 1, H, W] labels
        cf = jaxloss.SparseCategoricalCrossentropy(from_logits=fl, ignore_class=255, axis=1)
        np.testing.assert_allclose(
            cf(labels[:, None], np.moveaxis(pred, -1, 1)), ours(labels, pred), rtol=1e-5
        )
    # nothing valid: 0, and a zero gradient
    all_void = np.full((2, 3), 255)
    loss = jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    val, grad = jax.value_and_grad(lambda p: loss(all_void, p))(_logits((2, 3, C)))
    assert val == 0 and np.all(grad == 0)


def test_edge_inputs_give_finite_values_and_gradients():
    y = np.array([[0.0, 1.0, 1.0, 0.0]], "f4")
    p = np.array([[0.0, 1.0, 0.0, 1.0]], "f4")
    onehot = np.array([[0.0, 1.0, 0.0, 0.0]], "f4")
    big = np.array([[1e4, -1e4, 0.0, 1e4]], "f4")
    checks = [
        (jaxloss.BinaryCrossentropy(), y, p),
        (jaxloss.BinaryCrossentropy(from_logits=True), y, big),
        (jaxloss.BinaryFocalCrossentropy(), y, p),
        (jaxloss.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=True), y, big),
        (jaxloss.CategoricalCrossentropy(), onehot, p),
        (jaxloss.CategoricalCrossentropy(), onehot, np.zeros_like(p)),
        (jaxloss.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), onehot, big),
        (jaxloss.CategoricalFocalCrossentropy(), onehot, p),
        (jaxloss.CategoricalFocalCrossentropy(from_logits=True), onehot, big),
        (jaxloss.SparseCategoricalCrossentropy(), np.array([1]), p),
        (jaxloss.SparseCategoricalCrossentropy(from_logits=True), np.array([1]), big),
        (jaxloss.Poisson(), y, p),
        (jaxloss.KLDivergence(), onehot, p),
        (jaxloss.CategoricalGeneralizedCrossEntropy(q=0.3), np.array([0]), p),
    ]
    for loss, t, pred in checks:
        val, grad = jax.value_and_grad(lambda q, loss=loss, t=t: loss(t, q))(jnp.asarray(pred))
        assert np.isfinite(val) and np.all(np.isfinite(grad)), type(loss).__name__
    # Circle: a sample without positives is masked out, with a zero, finite gradient
    emb = _unit((3, 2))
    val, grad = jax.value_and_grad(lambda e: jaxloss.Circle()(np.array([0, 0, 1]), e))(emb)
    assert np.isfinite(val) and np.all(np.isfinite(grad))
    # GCE at p = 0 is exactly 1 / q (as in Keras)
    np.testing.assert_allclose(
        jaxloss.categorical_generalized_cross_entropy(np.array([0]), p, q=0.5), [2.0]
    )


def test_bfloat16_inputs():
    x = _logits((8, C))
    labels = RNG.integers(0, C, size=(8,))
    xb = jnp.asarray(x, jnp.bfloat16)
    for loss in (
        jaxloss.SparseCategoricalCrossentropy(from_logits=True),
        jaxloss.CategoricalCrossentropy(from_logits=True),
    ):
        t = labels if isinstance(loss, jaxloss.SparseCategoricalCrossentropy) else np.eye(C)[labels]
        val, grad = jax.value_and_grad(lambda z, loss=loss, t=t: loss(t, z))(xb)
        assert val.dtype == jnp.float32 and grad.dtype == jnp.bfloat16
        np.testing.assert_allclose(val, loss(t, np.asarray(xb.astype(jnp.float32))), rtol=1e-6)
        low = type(loss)(from_logits=True, dtype="bfloat16")(t, xb)
        assert low.dtype == jnp.bfloat16
    yb = jnp.asarray(_binary((8, C)), jnp.bfloat16)
    val = jaxloss.BinaryCrossentropy(from_logits=True)(yb, xb)
    assert val.dtype == jnp.float32 and np.isfinite(val)


def test_options_are_validated_and_configs_round_trip():
    with pytest.raises(ValueError, match="`label_smoothing` must be"):
        jaxloss.BinaryCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="`q` must be"):
        jaxloss.CategoricalGeneralizedCrossEntropy(q=1.0)
    with pytest.raises(ValueError, match="`alpha` must be"):
        jaxloss.BinaryFocalCrossentropy(alpha=2.0)
    with pytest.raises(ValueError, match="`gamma` must be"):
        jaxloss.CategoricalFocalCrossentropy(gamma=-1.0)
    with pytest.raises(TypeError, match="`class_weight` must be"):
        jaxloss.SparseCategoricalCrossentropy(class_weight=[[1.0]])
    with pytest.raises(TypeError, match="`ignore_class` must be"):
        jaxloss.SparseCategoricalCrossentropy(ignore_class=1.5)
    with pytest.raises(TypeError, match="`y_true` must hold integer"):
        jaxloss.sparse_categorical_crossentropy(np.array([0.0, 1.0]), _probs((2, C)))
    with pytest.raises(ValueError, match="`alpha` must be a scalar or have one value per class"):
        jaxloss.categorical_focal_crossentropy(_onehot((2, C)), _probs((2, C)), alpha=[1.0, 2.0])
    for loss in (
        jaxloss.CategoricalFocalCrossentropy(alpha=[0.1, 0.2, 0.7]),
        jaxloss.SparseCategoricalCrossentropy(class_weight=np.ones(3), ignore_class=-1),
        jaxloss.Circle(gamma=3.0, remove_diagonal=False),
    ):
        assert type(loss).from_config(loss.get_config()) == loss
        assert jaxloss.deserialize(jaxloss.serialize(loss)) == loss
        hash(loss)
    assert jaxloss.get("bce") is jaxloss.binary_crossentropy
    assert jaxloss.get("KLD") is jaxloss.kl_divergence
    assert jaxloss.get("kullback_leibler_divergence") is jaxloss.kl_divergence


def test_to_categorical_matches_keras_and_is_jit_safe():
    labels = np.array([0, 2, 1, 3])
    np.testing.assert_array_equal(
        jaxloss.to_categorical(labels, 4), keras.utils.to_categorical(labels, 4)
    )
    np.testing.assert_array_equal(
        jaxloss.to_categorical(labels[:, None]), keras.utils.to_categorical(labels[:, None])
    )
    out = jax.jit(jaxloss.to_categorical, static_argnums=1)(jnp.asarray(labels), 5)
    assert out.shape == (4, 5) and out.dtype == jnp.float32
    np.testing.assert_array_equal(jaxloss.to_categorical([7], 3), [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"`num_classes` must be given under jax\.jit"):
        jax.jit(jaxloss.to_categorical)(jnp.asarray(labels))


def test_forward_mode_works_through_the_classes_as_in_keras():
    x = _logits((3, C))
    labels = RNG.integers(0, C, size=(3,))
    onehot = np.eye(C, dtype="f4")[labels]
    y = _binary((3, C))
    pairs = [
        (
            jaxloss.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
            labels,
            lambda z: keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
                onehot, z
            ),
        ),
        (
            jaxloss.CategoricalCrossentropy(from_logits=True),
            onehot,
            lambda z: keras.losses.CategoricalCrossentropy(from_logits=True)(onehot, z),
        ),
        (
            jaxloss.BinaryCrossentropy(from_logits=True),
            y,
            lambda z: keras.losses.BinaryCrossentropy(from_logits=True)(y, z),
        ),
    ]
    for ours, t, theirs in pairs:
        h = jax.jit(jax.hessian(lambda z, ours=ours, t=t: ours(t, z)))(x)
        np.testing.assert_allclose(h, jax.hessian(theirs)(x), rtol=1e-4, atol=1e-6)
