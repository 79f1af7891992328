"""Language-model head losses: the fused linear + cross-entropy as a Keras-style loss.

:class:`LinearCrossEntropy` (class handle) and :func:`linear_crossentropy` (function handle) wrap
:func:`jaxloss.ops.linear_cross_entropy`, the kernel that never builds the ``[tokens, vocab]``
logits. Because the logits are never built, the "prediction" is the pair that would produce them:

    y_pred = (hidden, weight)          or   (hidden, weight, bias)
    hidden: [..., D]    weight: [D, V]     bias: [V]     y_true: integer labels [...]

so that the Keras calling convention ``loss(y_true, y_pred, sample_weight=None)`` is kept::

    loss_fn = jaxloss.LinearCrossEntropy(ignore_class=-100, z_loss=1e-4)
    loss = loss_fn(labels, (hidden, params["lm_head"]))

The reduction is the shared one (:func:`jaxloss.reduce_weighted_values`): tokens whose label is
``ignore_class`` are masked out and ``"sum_over_batch_size"`` divides by the number of *valid*
tokens, exactly as Keras' ``SparseCategoricalCrossentropy(ignore_class=...)`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops.linear_cross_entropy import linear_cross_entropy

_BLOCK_SIZE = c.POSITIVE_INT.optional()
_SMOOTHING_STYLE = c.one_of("uniform", "others")
_LAYOUT = c.one_of("hv", "vh")
_STRATEGY = c.one_of("recompute", "in_forward")
_SOFT_CAP = c.POSITIVE.optional()
_AXIS_NAME = c.AXIS_NAME


def _unpack(owner: str, y_pred: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """``y_pred`` as ``(hidden, weight, bias_or_None)``, or a ``TypeError`` naming the loss."""
    if isinstance(y_pred, Sequence) and not isinstance(y_pred, str) and len(y_pred) in (2, 3):
        hidden, weight, *rest = y_pred
        bias = rest[0] if rest else None
        return (
            c.as_input_array(owner, "y_pred", hidden),
            c.as_input_array(owner, "y_pred", weight),
            None if bias is None else c.as_input_array(owner, "y_pred", bias),
        )
    raise TypeError(
        f"{owner}: `y_pred` must be a tuple (hidden, weight) or (hidden, weight, bias) -- the "
        f"inputs of the projection, since the logits are never built; got {type(y_pred).__name__}"
        f"{'' if not hasattr(y_pred, 'shape') else ' of shape ' + str(tuple(y_pred.shape))}."
    )


def linear_crossentropy(
    y_true: ArrayLike,
    y_pred: tuple[ArrayLike, ...],
    *,
    ignore_class: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    block_size: int | None = None,
    label_smoothing_style: str = "uniform",
    weight_layout: str = "hv",
    logit_soft_cap: float | None = None,
    strategy: str = "recompute",
    vocab_axis_name: str | tuple[str, ...] | None = None,
) -> jax.Array:
    """Per-token sparse cross-entropy of ``hidden @ weight (+ bias)``, never building the logits.

    Args:
      y_true: integer labels ``[...]``.
      y_pred: ``(hidden, weight)`` or ``(hidden, weight, bias)`` with ``hidden: [..., D]``,
        ``weight: [D, V]``, ``bias: [V]``.
      ignore_class: label whose tokens get loss 0 and zero gradient (Keras' ``ignore_class``).
      label_smoothing: in ``[0, 1]``; the target is ``(1 - ls) * onehot + ls / V``.
      z_loss: ``>= 0``; adds ``z_loss * logsumexp(logits)**2``.
      block_size: vocabulary columns per block (``None``: a measured default).
      label_smoothing_style: ``"uniform"`` (``ls / V`` on every class: PyTorch, Keras) or
        ``"others"`` (``ls / (V - 1)`` on the other classes, minus the target's entropy so the
        minimum loss is 0: T5X, praxis).
      weight_layout: ``"hv"`` for ``weight: [D, V]``, ``"vh"`` for ``[V, D]`` (tied input
        embeddings, read in place).
      logit_soft_cap: ``None`` or ``cap > 0``: the logits are ``cap * tanh(logits / cap)``
        (Gemma 2), in the forward and the backward.
      strategy: ``"recompute"`` (the default, least memory: the backward recomputes each
        logit block, 4 matmuls) or ``"in_forward"`` (the gradients are computed in the forward,
        3 matmuls, faster with its default ``[512, V]``-sized logits chunk; a ``sample_weight``
        that varies across tokens makes its backward recompute, exact but slower); see
        :func:`jaxloss.ops.linear_cross_entropy`.
      vocab_axis_name: inside ``shard_map``, the mesh axis that splits the weight's vocabulary
        (labels stay global ids); the partial logsumexps are combined across it.

    Returns:
      The per-token loss, shape ``y_true.shape``, float32 (the kernel accumulates in float32 for
      bfloat16 operands).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> hidden, weight = jnp.ones((2, 4)), jnp.zeros((4, 8))
      >>> print(jaxloss.linear_crossentropy(jnp.array([1, 7]), (hidden, weight)).round(4))
      [2.0794 2.0794]

    Notes:
      Bad values: NaN in a sample's hidden states makes that sample's loss NaN; the other samples
      are exact (NaN in the shared weight reaches every sample). A label outside ``[0, V)`` that is
      not ``ignore_class`` makes its token NaN; an ignored token costs 0 with a zero gradient even
      if its hidden state is NaN.
    """
    name = "linear_crossentropy"
    ignore_class = c.check_option(name, "ignore_class", ignore_class, c.OPTIONAL_INT)
    label_smoothing = c.check_option(name, "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    z_loss = c.check_option(name, "z_loss", z_loss, c.NON_NEGATIVE)
    block_size = c.check_option(name, "block_size", block_size, _BLOCK_SIZE)
    label_smoothing_style = c.check_option(
        name, "label_smoothing_style", label_smoothing_style, _SMOOTHING_STYLE
    )
    weight_layout = c.check_option(name, "weight_layout", weight_layout, _LAYOUT)
    logit_soft_cap = c.check_option(name, "logit_soft_cap", logit_soft_cap, _SOFT_CAP)
    strategy = c.check_option(name, "strategy", strategy, _STRATEGY)
    vocab_axis_name = c.check_option(name, "vocab_axis_name", vocab_axis_name, _AXIS_NAME)
    labels = c.as_input_array(name, "y_true", y_true)
    c.check_integer(name, "y_true", labels)
    hidden, weight, bias = _unpack(name, y_pred)
    try:
        return linear_cross_entropy(  # type: ignore[return-value]  # no aux requested
            hidden,
            weight,
            labels,
            bias=bias,
            ignore_index=ignore_class,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            block_size=block_size,
            label_smoothing_style=label_smoothing_style,
            weight_layout=weight_layout,
            logit_soft_cap=logit_soft_cap,
            strategy=strategy,
            vocab_axis_name=vocab_axis_name,
        )
    except ValueError as error:
        # The kernel's mesh-axis check can only run here; name the loss the user called.
        kernel = "linear_cross_entropy: "
        if str(error).startswith(kernel):
            raise ValueError(f"{name}: {str(error)[len(kernel) :]}") from None
        raise


class LinearCrossEntropy(
    Loss, function=linear_crossentropy, inputs="linear_head", default_name="linear_cross_entropy"
):
    """Fused language-model-head loss: ``hidden @ weight (+ bias)`` then sparse cross-entropy.

    Equal to ``SparseCategoricalCrossentropy(from_logits=True)`` on ``hidden @ weight + bias``
    (plus the optional z-loss), with a memory cost of a few ``[tokens, block_size]`` buffers
    instead of the ``[tokens, vocab]`` logits and their softmax.

    Call it as ``loss(y_true, (hidden, weight[, bias]), sample_weight=None)``.

    Args:
      ignore_class: label of tokens to skip (padding, e.g. ``-100``): they are masked out of the
        reduction, so ``"sum_over_batch_size"`` divides by the number of valid tokens.
      label_smoothing: in ``[0, 1]``.
      z_loss: ``>= 0``, coefficient of ``logsumexp(logits)**2``.
      block_size: vocabulary block of the kernel; ``None`` picks a measured default.
      label_smoothing_style, weight_layout, logit_soft_cap, strategy, vocab_axis_name: as for
        :func:`linear_crossentropy`. With ``vocab_axis_name`` (the weight's vocabulary split over
        that mesh axis) and ``axis_name`` (the tokens split over the data axis) together, the
        class computes the exact token mean on a ``data x model`` mesh.
      name, reduction, axis_name: as for :class:`jaxloss.Loss`.
      dtype: ``None`` (default) leaves the operands as they are -- the kernel already computes in
        float32 (float32 matmul accumulation, logsumexp and loss), so a bfloat16 ``weight`` is
        never copied to float32. A dtype or policy name casts the floating operands to that
        compute dtype and returns the loss in it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxloss
      >>> hidden = jnp.ones((2, 3, 4))            # [batch, time, D]
      >>> weight = jnp.zeros((4, 10))             # [D, V]
      >>> labels = jnp.array([[1, 2, 3], [4, -100, -100]])
      >>> loss = jaxloss.LinearCrossEntropy(ignore_class=-100)
      >>> print(f"{float(loss(labels, (hidden, weight))):.4f}")  # log(10) over 4 valid tokens
      2.3026
      >>> grads = jax.grad(lambda w: loss(labels, (hidden, w)))(weight)
      >>> grads.shape
      (4, 10)
    """

    ignore_class: int | None = option(default=None, check=c.OPTIONAL_INT)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)
    z_loss: float = option(default=0.0, check=c.NON_NEGATIVE)
    block_size: int | None = option(default=None, check=_BLOCK_SIZE)
    label_smoothing_style: str = option(default="uniform", check=_SMOOTHING_STYLE)
    weight_layout: str = option(default="hv", check=_LAYOUT)
    logit_soft_cap: float | None = option(default=None, check=_SOFT_CAP)
    strategy: str = option(default="recompute", check=_STRATEGY)
    vocab_axis_name: str | tuple[str, ...] | None = option(default=None, check=_AXIS_NAME)

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> Any:
        del y_pred, values, inputs
        if self.ignore_class is None:
            return None
        return jnp.asarray(y_true) != self.ignore_class

    def cast_inputs(self, y_true: ArrayLike, y_pred: Any) -> tuple[jax.Array, tuple]:
        """Validate the ``(hidden, weight[, bias])`` pair; cast it only when ``dtype`` is set.

        With ``dtype=None`` bf16 operands stay bf16: the kernel accumulates in float32 anyway, and
        upcasting would copy the whole ``[D, V]`` weight.
        """
        operands = _unpack(type(self).__name__, y_pred)
        if self.dtype is not None:
            operands = tuple(None if x is None else x.astype(self.compute_dtype) for x in operands)
        hidden, weight, bias = operands
        labels = c.as_input_array(type(self).__name__, "y_true", y_true)
        return labels, (hidden, weight) if bias is None else (hidden, weight, bias)
