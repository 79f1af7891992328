"""Value problems jit cannot refuse are documented per loss, and the documentation is true.

Every registered loss carries a ``Bad values:`` paragraph in the Notes of its function's docstring
(the docs build renders them as one table in ``docs/concepts/bad-input.md``). The sentences it
uses for NaN, out-of-range labels, renormalised and clipped probabilities are checked here against
the loss itself, so a new loss is checked as soon as it documents itself.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss._registry import registered
from tests._inputs import GENERATORS

ENTRIES = {e.name: e for e in registered()}
# Losses exempt from the paragraph (none today): a name listed here must not have one, so the
# list cannot go stale.
UNDOCUMENTED: set[str] = set()
DOCUMENTED = sorted(n for n in ENTRIES if n not in UNDOCUMENTED)

_PARAGRAPH = re.compile(r"^\s*Bad values:\s*(.*?)(?:\n\s*\n|\Z)", re.S | re.M)

ROW_LOCAL = "the other samples are exact"
IN_BATCH = "makes the loss NaN for every anchor that meets it"
BATCH_STATISTIC = "NaN anywhere makes the loss NaN"
OUT_OF_RANGE = "A label outside ``[0, C)`` makes that sample's loss NaN"
RENORMALISED = "renormalised to sum to 1 along the class axis"
CLIPPED = "clipped to ``[1e-7, 1 - 1e-7]`` (Keras): values outside ``[0, 1]`` and ``inf``"


def _bad_values(name):
    match = _PARAGRAPH.search(ENTRIES[name].function.__doc__ or "")
    return " ".join(match.group(1).split()) if match else None


def _inputs(name, seed=0):
    y_true, y_pred = GENERATORS[ENTRIES[name].inputs](jax.random.PRNGKey(seed))
    return jax.tree.map(np.asarray, (y_true, y_pred))


def _set_first_row(tree, value):
    """``tree`` with the first sample of its first float leaf set to ``value`` (None: no float)."""
    leaves, treedef = jax.tree.flatten(tree)
    index = next((i for i, x in enumerate(leaves) if np.issubdtype(x.dtype, np.floating)), None)
    if index is None:
        return None
    leaf = np.array(leaves[index], copy=True)
    leaf[0] = value
    leaves[index] = leaf
    return jax.tree.unflatten(treedef, leaves)


@functools.cache
def _jitted(name):
    # one compilation per loss for all the probes of a test (same shapes)
    return jax.jit(ENTRIES[name].cls(reduction="none"))


def _per_sample(name, y_true, y_pred):
    values = np.asarray(_jitted(name)(y_true, y_pred), np.float64)
    return values.reshape(len(values) if values.ndim else 1, -1)


def test_every_registered_loss_documents_its_bad_values():
    missing = [n for n in DOCUMENTED if not _bad_values(n)]
    assert not missing, f"no 'Bad values:' paragraph in the Notes of {missing}"
    # the skip list only holds losses that exist and still lack the paragraph
    assert set(ENTRIES) >= UNDOCUMENTED
    stale = sorted(n for n in UNDOCUMENTED if _bad_values(n))
    assert not stale, f"documented now, remove from UNDOCUMENTED: {stale}"


NAN_CLAIMS = [
    n
    for n in DOCUMENTED
    if any(claim in _bad_values(n) for claim in (ROW_LOCAL, IN_BATCH, BATCH_STATISTIC))
]


@pytest.mark.parametrize("name", NAN_CLAIMS)
def test_nan_in_one_sample_is_as_documented(name):
    text = _bad_values(name)
    y_true, y_pred = _inputs(name)
    base = _per_sample(name, y_true, y_pred)
    cases = [("y_pred", y_true, _set_first_row(y_pred, np.nan))]
    if "sample's inputs" in text and _set_first_row(y_true, np.nan) is not None:
        cases.append(("y_true", _set_first_row(y_true, np.nan), y_pred))
    for arg, bad_true, bad_pred in cases:
        got = _per_sample(name, bad_true, bad_pred)
        if base.shape[0] == 1 and np.shape(y_pred)[:1] != (1,):
            # one value for the whole batch (the default of the batch statistics)
            assert BATCH_STATISTIC in text, f"{name}: a batch statistic must say so"
            assert np.isnan(got).all(), f"{name}: NaN in sample 0's {arg} is silent: {got}"
            continue
        assert np.isnan(got[0]).any(), f"{name}: NaN in sample 0's {arg} is silent: {got[0]}"
        if ROW_LOCAL in text:
            np.testing.assert_allclose(got[1:], base[1:], rtol=1e-6, err_msg=f"{name}: {arg}")


@pytest.mark.parametrize("name", ["dice", "tversky", "binary_dice"])
def test_overlap_losses_with_per_sample_axes_keep_nan_in_its_sample(name):
    y_true, y_pred = _inputs(name)
    fn = getattr(jaxloss, name)
    base = np.asarray(fn(y_true, y_pred, axis=(1, 2, 3)))
    bad = np.array(y_pred, copy=True)
    bad[0] = np.nan
    got = np.asarray(fn(y_true, bad, axis=(1, 2, 3)))
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], base[1:], rtol=1e-6)


SPARSE = [n for n in DOCUMENTED if OUT_OF_RANGE in _bad_values(n)]


@pytest.mark.parametrize("name", SPARSE)
def test_a_label_out_of_range_makes_only_its_sample_nan(name):
    y_true, y_pred = _inputs(name)
    num_classes = np.shape(jax.tree.leaves(y_pred)[0])[-1]
    base = _per_sample(name, y_true, y_pred)
    for bad in (num_classes, -1, 10 * num_classes):
        labels = np.array(y_true, copy=True)
        labels[0] = bad
        got = _per_sample(name, labels, y_pred)
        assert np.isnan(got[0]).all(), f"{name}: label {bad} gives {got[0]}"
        np.testing.assert_allclose(got[1:], base[1:], rtol=1e-6, err_msg=f"{name}: label {bad}")


@pytest.mark.parametrize("name", [n for n in DOCUMENTED if RENORMALISED in _bad_values(n)])
def test_probabilities_that_do_not_sum_to_one_are_renormalised(name):
    y_true, y_pred = _inputs(name)
    scaled = np.array(y_pred, copy=True)
    scaled[0] *= 3.0
    np.testing.assert_allclose(
        _per_sample(name, y_true, scaled), _per_sample(name, y_true, y_pred), rtol=1e-5
    )


@pytest.mark.parametrize("name", [n for n in DOCUMENTED if CLIPPED in _bad_values(n)])
def test_probabilities_outside_the_unit_interval_are_clipped(name):
    y_true, y_pred = _inputs(name)
    loss = ENTRIES[name].cls(reduction="none")
    for value in (1.5, -0.5, np.inf):
        bad = np.array(y_pred, copy=True)
        bad[0] = value
        got = np.asarray(loss(y_true, bad))
        assert np.all(np.isfinite(got)), f"{name}: y_pred {value} gives {got}"
        # clipping means the same loss as the nearest end of the interval
        edge = np.array(y_pred, copy=True)
        edge[0] = 1.0 if value > 1 else 0.0
        np.testing.assert_allclose(got, loss(y_true, edge), rtol=1e-6, err_msg=f"{value}")
        grad = jax.grad(lambda p: jnp.sum(loss(y_true, p)))(jnp.asarray(bad))
        assert np.all(np.asarray(grad)[0] == 0.0), f"{name}: gradient through the clip"


def test_hinge_keeps_every_label_as_given_once_one_is_outside_zero_one():
    # the documented batch-wide rule: {0, 1} labels become -1/+1 only if all of them are 0 or 1
    rng = np.random.default_rng(0)
    y_pred = rng.normal(size=(3, 4)).astype(np.float32)
    y_true = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]], np.float32)
    want = np.maximum(1.0 - (2.0 * y_true - 1.0) * y_pred, 0.0).mean(-1)
    np.testing.assert_allclose(jaxloss.hinge(y_true, y_pred), want, rtol=1e-6)
    y_true[0, 0] = 2.0
    as_given = np.maximum(1.0 - np.float64(y_true) * y_pred, 0.0).mean(-1)
    np.testing.assert_allclose(jaxloss.hinge(y_true, y_pred), as_given, rtol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True], ids=["probabilities", "logits"])
def test_an_ignored_sample_with_nan_inputs_costs_nothing(from_logits):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    y_pred = logits if from_logits else np.asarray(jax.nn.softmax(logits))
    labels = np.array([2, 0, 4, 1])
    bad_pred, bad_labels = y_pred.copy(), labels.copy()
    bad_pred[1], bad_labels[1] = np.nan, 3
    loss = jaxloss.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=3)
    value, grad = jax.value_and_grad(lambda p: loss(bad_labels, p))(jnp.asarray(bad_pred))
    # float64 reference: the mean over the three kept rows
    p = np.float64(logits)
    log_p = p - p.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    kept = [0, 2, 3]
    want = -np.mean(log_p[kept, labels[kept]])
    np.testing.assert_allclose(value, want, rtol=1e-5)
    assert np.all(np.asarray(grad)[1] == 0.0)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_a_nan_text_embedding_reaches_every_siglip_sample():
    y_true, (image, text) = _inputs("siglip_loss")
    text = np.array(text, copy=True)
    text[2] = np.nan
    got = np.asarray(jaxloss.SigLipLoss(reduction="none")(y_true, (image, text)))
    assert np.isnan(got).all()


def test_a_tag_out_of_range_makes_only_its_sequence_nan():
    tags, (potentials, transitions) = _inputs("linear_chain_crf")
    base = np.asarray(jaxloss.linear_chain_crf(tags, (potentials, transitions)))
    for bad in (potentials.shape[-1], -1):
        bad_tags = np.array(tags, copy=True)
        bad_tags[0, 1] = bad
        got = np.asarray(jaxloss.linear_chain_crf(bad_tags, (potentials, transitions)))
        assert np.isnan(got[0])
        np.testing.assert_allclose(got[1:], base[1:], rtol=1e-6)
        # past the sequence's length the tag is not read
        short = np.asarray(
            jaxloss.linear_chain_crf(bad_tags, (potentials, transitions), lengths=[1, 4, 4, 4])
        )
        assert np.isfinite(short[0])


def test_pair_targets_other_than_plus_minus_one_follow_torch_formulas():
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=(2, 3, 4)).astype(np.float32)
    odd = np.array([0.0, 2.0, np.nan])
    # cosine embedding: each term needs its exact target, so any other target costs 0
    np.testing.assert_array_equal(jaxloss.cosine_embedding(odd, (x1, x2)), np.zeros(3))
    # hinge embedding: each term is skipped only by the other target, so both apply
    d = np.abs(x1[:, :2])
    want = (d + np.maximum(1.0 - d, 0.0)).mean(-1)
    got = jaxloss.hinge_embedding(np.broadcast_to(odd[:, None], d.shape), d)
    np.testing.assert_allclose(got, want, rtol=1e-6)
