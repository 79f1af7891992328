"""Bad inputs to every registered loss raise a clear error naming the loss; a loss added later is
swept automatically.

For the function handle and the class handle alike: ``None``, a string or a complex array as
``y_true`` / ``y_pred`` is a ``TypeError``; scalars where a batch is needed and a batch size that
does not line up are ``ValueError`` s; an empty batch reduces to 0 with the mean reductions (never
NaN; a batch statistic such as ``Dice(axis=None)`` gives its formula's finite value instead), and
an empty class axis is a ``ValueError``. A loss that legitimately cannot follow a rule is
listed in ``EXEMPT`` with its reason, never skipped silently.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss._registry import registered
from tests._inputs import BATCH, GENERATORS
from tests.reference import REFERENCES

ENTRIES = {entry.cls.__name__: entry for entry in registered()}
NAMES = list(ENTRIES)

# Losses that ignore ``y_true`` (the targets are implied by the pairing of the predictions:
# matched image/text rows, anchor/positive/negative triplets, chosen/rejected pairs): any
# placeholder, ``None`` included, is accepted, and no ``y_true`` batch can mismatch.
_IGNORES_Y_TRUE = ("ClipLoss", "SigLipLoss", "TripletMargin", "SimPO", "ORPO")

# (class name, case) -> (the handles the rule does not apply to, why).
EXEMPT: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    (name, case): (("function", "class"), "y_true is ignored by this loss")
    for name in _IGNORES_Y_TRUE
    for case in ("y_true-None", "y_true-string", "y_true-complex", "mismatch")
}

# Input kinds whose y_pred has a class (or vocabulary) axis last, in the leaf that carries it.
CLASS_AXIS_KINDS = {
    "categorical",
    "sparse_categorical",
    "sequence_logits",
    "segmentation_multiclass",
    "ctc",
    "distillation",
    "sparse_log_probs",
}


def _inputs(entry):
    return GENERATORS[entry.inputs](jax.random.PRNGKey(0))


def _owner_pattern(entry):
    # a message names the loss, as "<name>: ...", by its function, class or default name
    names = {entry.name, entry.cls.__name__, entry.cls().name}
    return rf"\b({'|'.join(re.escape(n) for n in sorted(names))}):"


def _callers(entry, case):
    handles, _ = EXEMPT.get((entry.cls.__name__, case), ((), ""))
    callers = {"function": entry.function, "class": entry.cls()}
    if set(handles) >= set(callers):
        pytest.skip(EXEMPT[(entry.cls.__name__, case)][1])
    return {kind: call for kind, call in callers.items() if kind not in handles}


def _assert_raises(entry, case, exception, y_true, y_pred):
    for kind, call in _callers(entry, case).items():
        with pytest.raises(exception) as info:
            call(y_true, y_pred)
        assert re.search(_owner_pattern(entry), str(info.value)), (
            f"{kind} handle of {entry.name}: the {exception.__name__} must name the loss; got "
            f"{str(info.value)!r}"
        )


def _complex(tree):
    """The first floating leaf as complex64 (a complex prediction, or complex targets)."""
    leaves, treedef = jax.tree.flatten(tree)
    index = next((i for i, x in enumerate(leaves) if jnp.issubdtype(x.dtype, jnp.floating)), 0)
    leaves[index] = leaves[index].astype(jnp.complex64)
    return jax.tree.unflatten(treedef, leaves)


NON_ARRAYS = {"None": None, "string": "bad"}
TYPE_CASES = [
    (name, f"{arg}-{what}")
    for name in NAMES
    for arg in ("y_true", "y_pred")
    for what in ("None", "string", "complex")
]


@pytest.mark.parametrize(("name", "case"), TYPE_CASES, ids=[f"{n}-{c}" for n, c in TYPE_CASES])
def test_none_string_and_complex_inputs_are_type_errors(name, case):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    arg, what = case.split("-")
    original = y_true if arg == "y_true" else y_pred
    bad = _complex(original) if what == "complex" else NON_ARRAYS[what]
    args = (bad, y_pred) if arg == "y_true" else (y_true, bad)
    _assert_raises(entry, case, TypeError, *args)


@pytest.mark.parametrize("name", NAMES)
def test_scalars_where_a_batch_is_needed_are_value_errors(name):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    scalar_pred = jax.tree.map(lambda x: x.reshape(-1)[0], y_pred)
    _assert_raises(entry, "scalar", ValueError, y_true.reshape(-1)[0], scalar_pred)


@pytest.mark.parametrize("name", NAMES)
def test_batch_sizes_that_do_not_broadcast_are_value_errors(name):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    _assert_raises(entry, "mismatch", ValueError, y_true[: BATCH - 1], y_pred)


def _empty_batch(tree):
    # the leaves that carry the batch (leading axis BATCH) lose it; shared leaves (a projection
    # weight, CRF transitions) stay as they are
    return jax.tree.map(lambda x: x[:0] if x.ndim and x.shape[0] == BATCH else x, tree)


MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight", "sum")


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_reduces_to_zero(name):
    entry = ENTRIES[name]
    full_true, full_pred = _inputs(entry)
    y_true, y_pred = _empty_batch(full_true), _empty_batch(full_pred)

    # one program per loss: the per-sample values and every mean reduction, with and without
    # an empty weight
    def everything(full_true, full_pred, y_true, y_pred):
        out = {"values": entry.function(y_true, y_pred)}
        out["full"] = entry.function(full_true, full_pred)
        for reduction in MEAN_REDUCTIONS:
            loss = entry.cls(reduction=reduction)
            out[reduction] = loss(y_true, y_pred)
            out[f"{reduction}, weighted"] = loss(y_true, y_pred, sample_weight=jnp.zeros((0,)))
        return out

    out = jax.jit(everything)(full_true, full_pred, y_true, y_pred)
    values = np.asarray(out["values"])
    statistic = np.ndim(out["full"]) == 0
    if statistic:
        # one ratio (or average) over the whole batch has no mean reduction to fall back on:
        # its empty-batch value is the formula's, as the float64 reference computes it
        assert np.shape(values) == () and np.isfinite(values), f"{name}: got {values}"
        try:
            expected = REFERENCES[entry.name](np.asarray(y_true), jax.tree.map(np.asarray, y_pred))
        except (ValueError, IndexError, ZeroDivisionError):
            expected = None  # the reference's loops cannot express an empty batch
        if expected is not None:
            np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    else:
        assert np.shape(values)[:1] == (0,), f"{name}: per-sample values of an empty batch"
    want = values if statistic else 0.0
    for key in (k for k in out if k not in ("values", "full")):
        got = out[key]
        assert got.shape == () and np.allclose(got, want, rtol=1e-5, atol=1e-6), (
            f"{name}(reduction={key!r}) of an empty batch: got {got}, expected {want}"
        )


def _empty_class_axis(tree):
    leaves, treedef = jax.tree.flatten(tree)
    index = next(i for i, x in enumerate(leaves) if jnp.issubdtype(x.dtype, jnp.floating))
    leaves[index] = leaves[index][..., :0]
    return jax.tree.unflatten(treedef, leaves)


CLASS_AXIS_NAMES = [n for n in NAMES if ENTRIES[n].inputs in CLASS_AXIS_KINDS]


@pytest.mark.parametrize("name", CLASS_AXIS_NAMES)
def test_an_empty_class_axis_is_a_value_error(name):
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    if entry.inputs in ("categorical", "segmentation_multiclass", "distillation"):
        y_true = y_true[..., :0]
    _assert_raises(entry, "empty_class_axis", ValueError, y_true, _empty_class_axis(y_pred))
