"""The contract every registered loss must meet; a loss added later is checked automatically.

For each registry entry: a float64 reference exists (``tests/reference/<family>.py``) and the
function handle equals it; the class with every reduction agrees with a NumPy reduction of the
reference values; jit equals eager; vmap equals a loop; gradients are finite; the config
round-trips through JSON; the registry resolves its names (the default ``name`` included); Keras 3
gives the same value wherever it has the loss; bad options and weights raise the same exception
from the function and the class.

Each loss is compiled once: one jitted program computes the function, every reduction, the
gradient and the vmapped class together, and every test of that loss reads from it.
"""

import dataclasses
import functools
import json
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jaxloss
from jaxloss._registry import registered
from tests._inputs import GENERATORS
from tests.reference import OWNERS, REFERENCES, np_reduce

ENTRIES = {entry.cls.__name__: entry for entry in registered()}
NAMES = list(ENTRIES)
REDUCTIONS = ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None]
BASE_FIELDS = ("name", "reduction", "dtype", "axis_name")

# Keras 3 losses whose class value (default options, the contract inputs) jaxloss deliberately
# does not reproduce, each with its reason; every other loss Keras has must match it.
KERAS_DEPARTURES: dict[str, str] = {}


def _inputs(entry, seed=0):
    if entry.inputs not in GENERATORS:
        pytest.fail(
            f"{entry.cls.__name__}: no input generator for kind {entry.inputs!r}; add one to "
            "tests/_inputs.py GENERATORS."
        )
    return GENERATORS[entry.inputs](jax.random.PRNGKey(seed))


def _numpy(tree):
    return jax.tree.map(np.asarray, tree)


@functools.cache
def _computed(name):
    """Everything the contract checks for one loss, from a single compilation."""
    entry = ENTRIES[name]
    y_true, y_pred = _inputs(entry)
    y_true2, y_pred2 = _inputs(entry, seed=1)
    eager_function = entry.function(y_true, y_pred)
    eager_class = entry.cls()(y_true, y_pred)
    weight = None
    if np.ndim(eager_function) >= 1:
        weight = jnp.linspace(0.0, 2.0, np.shape(eager_function)[0])
    stacked_true = jnp.stack([y_true, y_true2])
    stacked_pred = jax.tree.map(lambda a, b: jnp.stack([a, b]), y_pred, y_pred2)

    def run(y_true, y_pred, weight, y_true2, y_pred2, stacked_true, stacked_pred):
        loss = entry.cls()
        out = {
            "function": entry.function(y_true, y_pred),
            "default": loss(y_true, y_pred),
            "default2": loss(y_true2, y_pred2),
            "vmap": jax.vmap(loss)(stacked_true, stacked_pred),
            "grad": jax.grad(lambda p: loss(y_true, p))(y_pred),
        }
        for reduction in REDUCTIONS:
            reduced = entry.cls(reduction=reduction)(y_true, y_pred, sample_weight=weight)
            out[f"reduction={reduction}"] = reduced
        return out

    jitted = jax.jit(run)(y_true, y_pred, weight, y_true2, y_pred2, stacked_true, stacked_pred)
    return {
        "inputs": (y_true, y_pred),
        "weight": weight,
        "eager_function": eager_function,
        "eager_class": eager_class,
        **jitted,
    }


def _reference_values(name):
    entry = ENTRIES[name]
    reference = REFERENCES.get(entry.name)
    if reference is None:
        pytest.fail(
            f"{name}: the registered loss {entry.name!r} has no float64 reference. Add "
            f'"{entry.name}": np_fn to REFERENCES in tests/reference/<family>.py '
            "(np_fn(y_true, y_pred, **options) -> per-sample float64 values)."
        )
    y_true, y_pred = _computed(name)["inputs"]
    return np.asarray(reference(np.asarray(y_true), _numpy(y_pred)), np.float64)


def test_registry_is_not_empty_and_every_kind_has_a_generator():
    assert len(ENTRIES) >= 12
    assert {e.inputs for e in registered()} <= set(GENERATORS)


def test_every_reference_names_a_registered_loss():
    # a reference keyed by a misspelled or renamed loss would never be used
    names = {e.name for e in registered()}
    stale = {k: f"tests/reference/{OWNERS[k]}.py" for k in REFERENCES if k not in names}
    assert not stale, f"references for names that are not registered: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_function_matches_the_float64_reference(name):
    expected = _reference_values(name)
    got = _computed(name)["eager_function"]
    assert np.shape(got) == expected.shape, f"{name}: per-sample shape differs from the reference"
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_class_reductions_equal_numpy_reductions_of_the_reference(name):
    expected_values = _reference_values(name)
    results = _computed(name)
    weight = None if results["weight"] is None else np.asarray(results["weight"])
    for reduction in REDUCTIONS:
        got = results[f"reduction={reduction}"]
        expected = np_reduce(expected_values, weight, reduction=reduction)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=str(reduction))
        if reduction not in ("none", None):
            assert got.shape == () and got.dtype == jnp.float32


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager_and_vmap_equals_loop(name):
    results = _computed(name)
    # atol: a GPU's jit fuses differently from its eager ops, and a per-sample value near 0 that
    # comes out of a cancellation of O(1) terms keeps only their float32 rounding (1e-7).
    np.testing.assert_allclose(results["function"], results["eager_function"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results["default"], results["eager_class"], rtol=1e-5, atol=1e-6)
    looped = np.stack([results["default"], results["default2"]])
    np.testing.assert_allclose(results["vmap"], looped, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_are_finite(name):
    results = _computed(name)
    grads, preds = jax.tree.leaves(results["grad"]), jax.tree.leaves(results["inputs"][1])
    for grad, pred in zip(grads, preds, strict=True):
        assert grad.shape == pred.shape
        assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips_through_json(name):
    entry = ENTRIES[name]
    loss = entry.cls(reduction="sum", name="custom_name", dtype="bfloat16")
    config = loss.get_config()
    assert hash(loss) == hash(entry.cls.from_config(config))
    assert entry.cls.from_config(config) == loss
    assert entry.cls.from_config(json.loads(json.dumps(config))) == loss
    assert jaxloss.deserialize(json.loads(json.dumps(jaxloss.serialize(loss)))) == loss
    default = entry.cls()
    assert entry.cls.from_config(json.loads(json.dumps(default.get_config()))) == default


@pytest.mark.parametrize("name", NAMES)
def test_registry_resolves_every_name(name):
    entry = ENTRIES[name]
    assert jaxloss.get(name) == entry.cls()
    assert jaxloss.get(entry.function.__name__) is entry.function
    for alias in entry.aliases:
        assert jaxloss.get(alias) is entry.function
        assert jaxloss.get(alias.upper()) is entry.function
    assert getattr(jaxloss, name) is entry.cls
    assert getattr(jaxloss, entry.function.__name__) is entry.function
    assert name in jaxloss.__all__ and entry.function.__name__ in jaxloss.__all__
    # a loss's default name (what Keras logs and saves) must lead back to the same loss
    resolved = jaxloss.get(entry.cls().name)
    assert resolved is entry.function or resolved == entry.cls(), (
        f"{name}: its default name {entry.cls().name!r} resolves to {resolved!r}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_bad_reduction_and_bad_sample_weight_raise(name):
    entry = ENTRIES[name]
    with pytest.raises(ValueError, match=f"{name}: `reduction` must be one of"):
        entry.cls(reduction="average")
    results = _computed(name)
    values_shape = np.shape(results["eager_function"])
    if values_shape:
        bad = np.ones((values_shape[0] + 3,))
        with pytest.raises(ValueError, match="sample_weight"):
            entry.cls()(*results["inputs"], sample_weight=bad)


@pytest.mark.parametrize("name", NAMES)
def test_function_and_class_are_documented_with_examples(name):
    entry = ENTRIES[name]
    for obj in (entry.function, entry.cls):
        assert obj.__doc__ and ">>>" in obj.__doc__, f"{obj.__name__} needs a doctest example"


# --- Keras parity ----------------------------------------------------------------------------


def _keras_class(entry):
    return getattr(keras.losses, entry.cls.__name__, None)


def _keras_function(entry):
    try:
        return keras.losses.get(entry.name)
    except ValueError:
        return None


KERAS_NAMES = [n for n in NAMES if _keras_class(ENTRIES[n]) or _keras_function(ENTRIES[n])]


def test_keras_departures_are_keras_losses():
    assert set(KERAS_DEPARTURES) <= set(KERAS_NAMES)


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_class_and_function_match_keras(name):
    entry = ENTRIES[name]
    keras_cls, keras_fn = _keras_class(entry), _keras_function(entry)
    assert keras_cls is not None, f"Keras has {entry.name!r} but no class named {name!r}"
    assert entry.cls().name == keras_cls().name, "the default name differs from Keras'"
    if name in KERAS_DEPARTURES:
        pytest.skip(KERAS_DEPARTURES[name])
    results = _computed(name)

    # Keras 3 on the JAX backend traces like any JAX code: one compiled program instead of an
    # op-by-op eager run of Keras' implementation
    def keras_values(y_true, y_pred):
        out = {"class": keras_cls()(y_true, y_pred)}
        out["none"] = keras_cls(reduction="none")(y_true, y_pred)
        if keras_fn is not None:
            out["function"] = keras_fn(y_true, y_pred)
        return out

    theirs = jax.jit(keras_values)(*results["inputs"])
    np.testing.assert_allclose(results["default"], theirs["class"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results["eager_function"], theirs["none"], rtol=1e-5, atol=1e-6)
    if keras_fn is not None:
        np.testing.assert_allclose(
            results["eager_function"], theirs["function"], rtol=1e-5, atol=1e-6
        )


# --- bad options: the function and the class refuse the same values the same way ----------


def _option_fields(entry):
    return [
        f
        for f in dataclasses.fields(entry.cls)
        if f.init and f.name not in BASE_FIELDS and f.metadata.get("check") is not None
    ]


OPTIONS = [(n, f.name) for n in NAMES for f in _option_fields(ENTRIES[n])]
# Values of the right kind that fall outside many ranges; the first one a check's own kind rule
# accepts and its range refuses is fed as the out-of-range value.
OUT_OF_RANGE_CANDIDATES = (-1.0, -1, 0.0, 0, 2.0, 1.5, float("nan"), float("inf"), (1, 1), (-1.0,))


def _field(name, option):
    return next(f for f in dataclasses.fields(ENTRIES[name].cls) if f.name == option)


def _is_numeric(check, default):
    if isinstance(default, (bool, np.bool_)):
        return False
    if isinstance(default, (int, float)):
        return True
    return check.kind_ok(1.0) or check.kind_ok(1)


def _raises_same_way(name, option, value, exception):
    """``value`` for ``option`` is refused by the function and the class with ``exception``."""
    entry = ENTRIES[name]
    y_true, y_pred = _computed(name)["inputs"]
    owners = {entry.name: lambda: entry.function(y_true, y_pred, **{option: value})}
    owners[name] = lambda: entry.cls(**{option: value})
    for owner, attempt in owners.items():
        with pytest.raises(exception) as info:
            attempt()
        message = str(info.value)
        assert re.match(rf"{re.escape(owner)}: `{re.escape(option)}`", message), (
            f"{owner} refusing {option}={value!r}: the message must start with "
            f"'{owner}: `{option}`'; got {message!r}"
        )


@pytest.mark.parametrize(("name", "option"), OPTIONS, ids=[f"{n}-{o}" for n, o in OPTIONS])
def test_bad_option_values_raise_the_same_error_from_function_and_class(name, option):
    field = _field(name, option)
    check, default = field.metadata["check"], field.default
    # a string where the check wants another kind is a TypeError; a string of the right kind
    # (an enumerated option) that is not one of the choices is a ValueError
    accepts_any_string = check.kind_ok("bad") and (
        check.range_ok is None or check.range_ok(check.convert("bad"))
    )
    # a mesh axis name can only be checked where the mesh is bound, so "bad" is a valid value
    if not accepts_any_string:
        _raises_same_way(name, option, "bad", ValueError if check.kind_ok("bad") else TypeError)
    if _is_numeric(check, default):
        _raises_same_way(name, option, True, TypeError)
    if not check.kind_ok(None):
        _raises_same_way(name, option, None, TypeError)
    if check.range_ok is not None:
        for value in OUT_OF_RANGE_CANDIDATES:
            if check.kind_ok(value) and not check.range_ok(check.convert(value)):
                _raises_same_way(name, option, value, ValueError)
                break


def _numpy_scalar(check, default):
    if isinstance(default, (bool, np.bool_)):
        return np.bool_(default)
    if isinstance(default, int):
        return np.int64(default)
    if isinstance(default, float):
        return np.float64(default)
    return next((v for v in (np.float64(0.5), np.int64(1)) if check.kind_ok(v)), None)


NUMPY_OPTIONS = [
    (n, o)
    for n, o in OPTIONS
    if _numpy_scalar(_field(n, o).metadata["check"], _field(n, o).default) is not None
]


@pytest.mark.parametrize(
    ("name", "option"), NUMPY_OPTIONS, ids=[f"{n}-{o}" for n, o in NUMPY_OPTIONS]
)
def test_numpy_scalar_options_are_accepted_and_converted(name, option):
    entry = ENTRIES[name]
    field = _field(name, option)
    value = _numpy_scalar(field.metadata["check"], field.default)
    loss = entry.cls(**{option: value})
    stored = getattr(loss, option)
    assert type(stored) in (bool, int, float) and stored == value.item()
    assert loss == entry.cls(**{option: value.item()})
    json.dumps(loss.get_config())
    # the function treats the NumPy scalar exactly as the Python value, errors included (a
    # valid option may still not fit the contract inputs, e.g. a num_classes)
    y_true, y_pred = _computed(name)["inputs"]
    outcomes = []
    for v in (value, value.item()):
        try:
            outcomes.append(np.asarray(entry.function(y_true, y_pred, **{option: v})))
        except (TypeError, ValueError) as error:
            outcomes.append(f"{type(error).__name__}: {error}".replace(repr(v), "<value>"))
    if isinstance(outcomes[1], str):
        assert outcomes[0] == outcomes[1]
    else:
        np.testing.assert_array_equal(outcomes[0], outcomes[1])


FROM_LOGITS = [n for n, o in OPTIONS if o == "from_logits"]


@pytest.mark.parametrize("name", FROM_LOGITS)
def test_from_logits_as_a_string_is_a_type_error(name):
    # "False" is truthy: accepting it would silently treat probabilities as logits
    _raises_same_way(name, "from_logits", "False", TypeError)
