"""Distillation losses: ``y_true`` the teacher's logits, ``y_pred`` the student's, ``[..., V]``.

One value per token (``[...]``), the generalized Jensen-Shannon divergence of GKD (Agarwal et al.)
between the teacher's distribution ``P`` and the student's ``Q``: ``beta=0`` is the forward KL
``KL(P || Q)`` (classic distillation), ``beta=1`` the reverse KL ``KL(Q || P)``. A teacher known
only by its top ``k`` classes passes ``teacher_indices=`` at call time, with ``y_true`` holding its
values at those classes. Tokens are masked with ``where=`` or with ``labels=`` and
``ignore_index``; the class handle's mean then divides by the valid tokens. The kernels are
:func:`jaxloss.ops.distillation_divergence` (a custom VJP that keeps no ``[tokens, V]`` array) and
:func:`jaxloss.ops.topk_distillation_divergence`.

>>> import jax.numpy as jnp, jaxloss
>>> teacher = jnp.log(jnp.array([[0.25, 0.75, 0.0]]))
>>> student = jnp.log(jnp.array([[0.5, 0.5, 0.0]]))
>>> print(f"{float(jaxloss.KnowledgeDistillation()(teacher, student)):.5f}")
0.13081
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops import distillation as kernels

TEMPERATURE = c.Check(c.is_real, "a finite float > 0", float, lambda x: 0 < x < math.inf)
TAIL = c.Check(
    lambda x: isinstance(x, str),
    '"renormalize" or "residual"',
    range_ok=lambda x: x in kernels.TAILS,
)
_NAME = "knowledge_distillation"
# The kernels' argument names, as this loss calls them.
_ARGS = {
    "student_logits": "y_pred",
    "teacher_logits": "y_true",
    "teacher_values": "y_true",
    "teacher_indices": "teacher_indices",
    "where": "where",
}


def _named(kernel: Any, *args: Any, **kwargs: Any) -> jax.Array:
    """Call ``kernel``; an input error it raises is re-raised naming this loss and its arguments.

    The checks below catch what they know first; this covers whatever else the kernel refuses.
    """
    try:
        return kernel(*args, **kwargs)
    except (TypeError, ValueError) as error:
        message = str(error)
        prefix = f"{kernel.__name__}: "
        if not message.startswith(prefix):
            raise
        message = f"{_NAME}: " + message[len(prefix) :]
        for arg, ours in _ARGS.items():
            message = message.replace(f"`{arg}`", f"`{ours}`")
        raise type(error)(message) from None


def _token_mask(
    name: str,
    shape: tuple[int, ...],
    labels: ArrayLike | None,
    ignore_index: int | None,
    where: ArrayLike | None,
) -> jax.Array | None:
    """The valid tokens: ``where`` and ``labels != ignore_index`` (``None``: all valid)."""
    mask = None
    if where is not None:
        mask = c.as_input_array(name, "where", where)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{name}: `where` must be a boolean array; got dtype {mask.dtype}.")
    if ignore_index is not None and labels is not None:
        labels = c.as_input_array(name, "labels", labels)
        c.check_integer(name, "labels", labels)
        valid = labels != ignore_index
        mask = valid if mask is None else mask & valid
    if mask is not None and jnp.broadcast_shapes(mask.shape, shape) != shape:
        raise ValueError(
            f"{name}: `where` and `labels` must broadcast to the tokens' shape {shape}; got "
            f"shape {tuple(mask.shape)}."
        )
    return mask


def knowledge_distillation(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    beta: float = 0.0,
    temperature: float = 1.0,
    scale_by_temperature_squared: bool = False,
    tail: str = "renormalize",
    ignore_index: int | None = None,
    *,
    teacher_indices: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Per-token distillation divergence of the student ``y_pred`` from the teacher ``y_true``.

    With ``P = softmax(y_true / T)``, ``Q = softmax(y_pred / T)``, ``M = beta P + (1 - beta) Q``::

        loss = beta * KL(P || M) + (1 - beta) * KL(Q || M)       0 < beta < 1
        loss = KL(P || Q)  (beta = 0, forward KL)      loss = KL(Q || P)  (beta = 1, reverse KL)

    times ``T ** 2`` when ``scale_by_temperature_squared``. TRL's ``generalized_jsd_loss`` gives
    the same values (its ``beta`` has the same meaning, endpoints included).

    Args:
      y_true: the teacher's logits or log-probabilities ``[..., V]``; with ``teacher_indices``,
        its values ``[..., k]`` at those classes (logits for ``tail="renormalize"``,
        log-probabilities for ``tail="residual"``).
      y_pred: the student's logits or log-probabilities ``[..., V]``.
      beta: mixing weight in ``[0, 1]``.
      temperature: ``T``, a finite float > 0.
      scale_by_temperature_squared: multiply by ``T ** 2`` (Hinton et al.'s gradient scaling).
      tail: what a top-k teacher does with the rest of its mass: ``"renormalize"`` (the top
        ``k`` renormalised; exact over the vocabulary) or ``"residual"`` (one extra class holding
        ``1 - sum(exp(values))``); see :func:`jaxloss.ops.topk_distillation_divergence`.
      ignore_index: tokens whose ``labels`` equal it get a loss of 0 (and no gradient).
      teacher_indices: call-time input, integer ``[..., k]``: the teacher is top-k.
      labels: call-time input, integer ``[...]``, compared with ``ignore_index``.
      where: call-time input, boolean ``[...]``: tokens where it is False get a loss of 0.

    Returns:
      The per-token divergence ``[...]``, float32 (float64 for float64 inputs).

    Raises:
      TypeError: options of the wrong kind, non-integer labels or indices, non-floating logits.
      ValueError: options out of range, mismatched shapes.

    Notes:
      ``0 * log 0 = 0``: ``-inf`` logits and zero probabilities give no NaN in the value or the
      gradient. Masked tokens get exactly 0 and a zero gradient even if their logits are NaN. The
      class handle's mean divides by the number of valid tokens.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> teacher = jnp.log(jnp.array([[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]]))
      >>> student = jnp.log(jnp.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]))
      >>> print(jaxloss.knowledge_distillation(teacher, student, beta=1.0).round(5))
      [0.14384 0.     ]
      >>> values = jnp.array([[3.0, 1.0], [0.0, 0.0]])  # top-2 teacher logits
      >>> idx = jnp.array([[1, 0], [0, 1]])
      >>> kl = jaxloss.knowledge_distillation(values, student, teacher_indices=idx)
      >>> print(kl.round(5))
      [0.32781 0.     ]
    """
    beta = c.check_option(_NAME, "beta", beta, c.UNIT_INTERVAL, array_ok=False)
    temperature = c.check_option(_NAME, "temperature", temperature, TEMPERATURE)
    scale = c.check_option(
        _NAME, "scale_by_temperature_squared", scale_by_temperature_squared, c.BOOL
    )
    tail = c.check_option(_NAME, "tail", tail, TAIL)
    ignore_index = c.check_option(_NAME, "ignore_index", ignore_index, c.OPTIONAL_INT)
    student = c.as_float(y_pred, loss=_NAME, arg="y_pred")
    teacher = c.as_float(y_true, loss=_NAME, arg="y_true")
    c.check_rank(_NAME, "y_pred", student, 1)
    c.check_classes(_NAME, "y_pred", student, -1)
    mask = _token_mask(_NAME, tuple(student.shape[:-1]), labels, ignore_index, where)
    options = dict(
        beta=beta,
        temperature=temperature,
        scale_by_temperature_squared=scale,
        where=mask,
    )
    if teacher_indices is None:
        if teacher.shape != student.shape:
            raise ValueError(
                f"{_NAME}: `y_true` and `y_pred` must have the same shape [..., V] (or pass "
                f"`teacher_indices` for a top-k teacher); got {tuple(teacher.shape)} and "
                f"{tuple(student.shape)}."
            )
        return _named(kernels.distillation_divergence, student, teacher, **options)
    indices = c.as_input_array(_NAME, "teacher_indices", teacher_indices)
    c.check_integer(_NAME, "teacher_indices", indices)
    k = teacher.shape[-1] if teacher.ndim else 0
    if indices.shape != teacher.shape or teacher.shape[:-1] != student.shape[:-1] or k < 1:
        raise ValueError(
            f"{_NAME}: `teacher_indices` and `y_true` (the top-k teacher) must both have shape "
            f"[..., k], k >= 1, with the leading axes of `y_pred` {tuple(student.shape[:-1])}; "
            f"got {tuple(indices.shape)} and {tuple(teacher.shape)}."
        )
    if k > student.shape[-1]:
        raise ValueError(
            f"{_NAME}: `teacher_indices` must hold at most as many classes as `y_pred` has "
            f"({student.shape[-1]}); got k = {k}."
        )
    return _named(
        kernels.topk_distillation_divergence, student, indices, teacher, tail=tail, **options
    )


class KnowledgeDistillation(Loss, function=knowledge_distillation, inputs="distillation"):
    """Class handle of :func:`knowledge_distillation`: ``loss(teacher_logits, student_logits)``.

    Call-time inputs: ``teacher_indices=`` (top-k teacher), ``labels=`` (with ``ignore_index``)
    and ``where=``; masked tokens are left out of the mean.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> teacher = jnp.log(jnp.array([[[0.25, 0.75], [0.5, 0.5]]]))
      >>> student = jnp.log(jnp.array([[[0.5, 0.5], [0.9, 0.1]]]))
      >>> loss = jaxloss.KnowledgeDistillation(ignore_index=-100)
      >>> labels = jnp.array([[1, -100]])
      >>> print(f"{float(loss(teacher, student, labels=labels)):.5f}")  # the first token only
      0.13081
    """

    beta: float = option(default=0.0, check=c.UNIT_INTERVAL)
    temperature: float = option(default=1.0, check=TEMPERATURE)
    scale_by_temperature_squared: bool = option(default=False, check=c.BOOL)
    tail: str = option(default="renormalize", check=TAIL)
    ignore_index: int | None = option(default=None, check=c.OPTIONAL_INT)

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> Any:
        return _token_mask(
            type(self).__name__,
            tuple(values.shape),
            inputs.get("labels"),
            self.ignore_index,
            inputs.get("where"),
        )
