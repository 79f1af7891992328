"""Keras 3 adapters: any jaxloss loss as a ``keras.losses.Loss`` (compile, fit, save, load).

``keras.Model.compile(loss=...)`` wraps a plain callable in Keras' own ``LossFunctionWrapper``,
which would reduce and sample-weight the jaxloss class's *already reduced* scalar a second time. The
adapter hands Keras a real ``keras.losses.Loss`` whose ``__call__`` is the jaxloss loss itself, so
``fit(..., sample_weight=...)``, masks (``ignore_class``) and reductions follow jaxloss' (Keras 3)
semantics exactly once. Integer-label losses get ``y_true`` back as integers (Keras feeds targets
as float32). The adapter is registered with Keras' serialization, so ``model.save`` then
``keras.models.load_model`` needs no ``custom_objects`` once :mod:`jaxloss.keras` is imported.

Keras is optional: importing this module without it raises an ``ImportError`` saying so. It works
on Keras' JAX backend (``KERAS_BACKEND=jax``).

Examples:
  >>> import jaxloss, jaxloss.keras
  >>> loss = jaxloss.keras.KerasLoss(jaxloss.SparseCategoricalCrossentropy(from_logits=True))
  >>> loss.name
  'sparse_categorical_crossentropy'
  >>> print(f"{float(loss([1.0, 0.0], [[0.0, 2.0], [1.0, 0.0]])):.4f}")
  0.2201
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

try:
    import keras
except ImportError as error:  # pragma: no cover - exercised only without keras
    raise ImportError(
        "jaxloss.keras needs Keras 3 (`pip install keras`) on the JAX backend."
    ) from error

from jaxloss import _registry
from jaxloss._loss import Loss, LossFunctionWrapper

__all__ = ["KerasLoss", "INTEGER_LABEL_INPUTS"]

INTEGER_LABEL_INPUTS = frozenset(
    {"sparse_categorical", "ctc", "metric_learning", "linear_head", "sequence_labels"}
)
"""Registry input kinds whose ``y_true`` are integer labels. Keras' ``fit`` feeds targets as
floats, so :class:`KerasLoss` casts ``y_true`` back to int32 for losses of these kinds."""


def _as_jaxloss(loss: Any) -> Loss:
    if isinstance(loss, (str, dict)):
        loss = _registry.deserialize(loss)
    if isinstance(loss, Loss):
        return loss
    if callable(loss):
        return LossFunctionWrapper(loss)
    raise TypeError(
        f"KerasLoss: `loss` must be a jaxloss loss object, a loss function or a registered name; "
        f"got {loss!r}."
    )


def _integer_labels(loss: Loss) -> bool:
    for entry in _registry.registered():
        if isinstance(loss, entry.cls):
            return entry.inputs in INTEGER_LABEL_INPUTS
    return False


@keras.saving.register_keras_serializable(package="jaxloss", name="KerasLoss")
class KerasLoss(keras.losses.Loss):
    """A jaxloss loss as a Keras 3 loss, for ``model.compile(loss=KerasLoss(...))``.

    Args:
      loss: a jaxloss loss object (``jaxloss.Huber(2.0)``), a function handle (wrapped in
        :class:`jaxloss.LossFunctionWrapper`), a registered name or a ``jaxloss.serialize`` dict.
      integer_labels: cast a floating ``y_true`` to int32 before calling the loss; ``None``
        (default) decides from the loss's registered input kind (sparse labels, CTC, ...).

    The loss's own ``reduction`` and ``name`` are used; Keras' ``sample_weight`` is passed to it.
    """

    def __init__(self, loss: Any, integer_labels: bool | None = None, **kwargs: Any) -> None:
        self.jaxloss = _as_jaxloss(loss)
        self.integer_labels = (
            _integer_labels(self.jaxloss) if integer_labels is None else bool(integer_labels)
        )
        kwargs.setdefault("name", self.jaxloss.name)
        kwargs.setdefault("reduction", self.jaxloss.reduction)
        super().__init__(**kwargs)

    def _labels(self, y_true: Any) -> Any:
        y_true = jnp.asarray(y_true)
        if self.integer_labels and jnp.issubdtype(y_true.dtype, jnp.floating):
            return y_true.astype(jnp.int32)
        return y_true

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample losses (what Keras' default ``__call__`` would reduce)."""
        import dataclasses

        per_sample = dataclasses.replace(self.jaxloss, reduction="none")
        return per_sample(self._labels(y_true), y_pred)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The jaxloss loss with its reduction and masks, the sample weight applied once."""
        return self.jaxloss(self._labels(y_true), y_pred, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "loss": _registry.serialize(self.jaxloss),
            "integer_labels": self.integer_labels,
            "name": self.name,
            "reduction": self.reduction,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KerasLoss:
        config = dict(config)
        return cls(_registry.deserialize(config.pop("loss")), **config)
