"""Utilities around the losses: ``to_categorical`` (Keras' one-hot helper), jit-safe."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["to_categorical"]


def to_categorical(
    x: ArrayLike, num_classes: int | None = None, dtype: Any = jnp.float32
) -> jax.Array:
    """One-hot encode integer class labels, the class axis last (Keras' ``to_categorical``).

    A trailing axis of size 1 is dropped first (``[batch, 1]`` gives ``[batch, num_classes]``).

    Args:
      x: integer labels (a float array of whole numbers is accepted, as in Keras).
      num_classes: the number of classes. Pass it under ``jax.jit`` (it fixes the output shape);
        if ``None`` it is inferred as ``max(x) + 1``, which needs a concrete ``x``.
      dtype: the output dtype (float32 by default, as in Keras).

    Returns:
      ``x.shape (without a trailing 1) + (num_classes,)`` array of zeros and ones. A label outside
      ``[0, num_classes)`` gives an all-zero row (never an error, never a wrapped index).

    Raises:
      ValueError: ``num_classes=None`` with a traced ``x``, or ``num_classes < 1``.

    Examples:
      >>> import jax, jaxloss
      >>> print(jaxloss.to_categorical([0, 1, 2, 3], num_classes=4))
      [[1. 0. 0. 0.]
       [0. 1. 0. 0.]
       [0. 0. 1. 0.]
       [0. 0. 0. 1.]]
      >>> jax.jit(jaxloss.to_categorical, static_argnums=1)(jax.numpy.array([[2], [0]]), 3).shape
      (2, 3)
    """
    x = jnp.asarray(x)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if num_classes is None:
        if isinstance(x, jax.core.Tracer):
            raise ValueError(
                "to_categorical: `num_classes` must be given under jax.jit (it fixes the output "
                "shape); got None with a traced `x`."
            )
        num_classes = int(np.max(np.asarray(x))) + 1 if x.size else 0
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"to_categorical: `num_classes` must be an int >= 1; got {num_classes!r}.")
    return jax.nn.one_hot(x.astype(jnp.int32), int(num_classes), dtype=dtype)
