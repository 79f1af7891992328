"""Sequence losses: Connectionist Temporal Classification (``keras.losses.ctc`` / ``CTC``).

The kernel is :func:`jaxloss.ops.ctc_loss` (log-space alpha scan with a hand-written beta-recursion
gradient); this module adds Keras 3's input conventions and the class handle. The module is named
``sequence`` so that ``jaxloss.ctc`` is the function, as in Keras.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops import ctc as _ctc
from jaxloss.ops import rnnt as _rnnt

_CLAMP = c.POSITIVE.optional()


def ctc(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    blank_id: int = 0,
    pad_id: int | None = None,
    zero_infinity: bool = False,
    normalize_by_target_length: bool = False,
    logit_lengths: ArrayLike | None = None,
    label_lengths: ArrayLike | None = None,
) -> jax.Array:
    """CTC (Connectionist Temporal Classification) loss, with Keras 3's conventions.

    Keras 3 semantics by default: class ``0`` is the blank, ``y_true`` is padded with ``0``, each
    row's label length is its number of non-padding entries (so the padding must come last), and
    every input frame is used.

    Args:
      y_true: ``[batch, max_label_length]`` integer labels, padded with ``pad_id``.
      y_pred: ``[batch, time, num_classes]`` logits (unnormalised: log-softmax is applied here).
      blank_id: class index of the blank in ``y_pred`` (beyond Keras; Keras fixes it at 0).
      pad_id: the value that pads ``y_true``; defaults to ``blank_id`` (Keras: both are 0). Use
        e.g. ``-1`` when 0 is a real class.
      zero_infinity: give ``0`` instead of ``+inf`` to targets too long for the input (beyond
        Keras, whose loss is a large finite number there). Their gradient is zero either way.
      normalize_by_target_length: divide each sequence's loss by its label length (at least 1),
        so that the class's mean is PyTorch's ``CTCLoss(reduction="mean")`` (beyond Keras).
      logit_lengths: ``[batch]`` valid frames per row (beyond Keras, which uses all frames).
      label_lengths: ``[batch]`` labels per row (beyond Keras); ``None`` counts the entries that
        are not ``pad_id``. Both lengths may be passed to the class at call time:
        ``CTC()(y_true, y_pred, logit_lengths=..., label_lengths=...)``.

    Returns:
      Per-sample negative log-likelihood, shape ``[batch]``, float32 (float64 for float64 logits).

    Raises:
      ValueError: ``y_true`` not of rank 2, ``y_pred`` not of rank 3, or batch sizes that differ;
        ``blank_id`` out of range for ``num_classes``.
      TypeError: ``y_true`` not integer (cast whole-number floats with ``.astype(jnp.int32)``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> y_true = jnp.array([[1, 2, 0], [3, 0, 0]])  # 0 pads (and is the blank)
      >>> y_pred = jnp.zeros((2, 4, 4))  # uniform logits
      >>> jaxloss.ctc(y_true, y_pred)  # -log(15 / 4**4) and -log(10 / 4**4)
      Array([2.837, 3.243], dtype=float32)

    Notes:
      Keras gives a target that cannot fit its input (more labels, plus one blank per repeated
      pair, than frames) a finite loss of about ``1e5`` and a non-zero gradient; here it is
      ``+inf`` with a zero gradient (or ``0`` with ``zero_infinity``). The loss is never negative.
      Labels outside ``[0, num_classes)`` within a row's length give that row a NaN loss.

      Bad values: NaN in a sample's logits makes that sample's loss NaN; the other samples are
      exact. A label outside ``[0, num_classes)`` within a row's length makes that row NaN; a
      target too long for its input is ``+inf`` with a zero gradient (0 with ``zero_infinity``).
    """
    name = "ctc"
    blank_id = c.check_option(name, "blank_id", blank_id, c.INT)
    pad_id = c.check_option(name, "pad_id", pad_id, c.OPTIONAL_INT)
    zero_infinity = c.check_option(name, "zero_infinity", zero_infinity, c.BOOL)
    normalize_by_target_length = c.check_option(
        name, "normalize_by_target_length", normalize_by_target_length, c.BOOL
    )
    y_true = c.as_input_array(name, "y_true", y_true)
    y_pred = c.as_float(y_pred, loss=name)
    c.check_integer(name, "y_true", y_true)
    if y_true.ndim != 2:
        raise ValueError(
            f"{name}: `y_true` must have shape (batch_size, max_length) with integer labels; "
            f"got shape {tuple(y_true.shape)}."
        )
    if y_pred.ndim != 3:
        raise ValueError(
            f"{name}: `y_pred` must have shape (batch_size, max_length, num_classes); got shape "
            f"{tuple(y_pred.shape)}."
        )
    c.check_classes(name, "y_pred", y_pred, -1)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"{name}: `y_true` and `y_pred` must have the same batch size; got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}."
        )
    y_true = y_true.astype(jnp.int32)
    pad = blank_id if pad_id is None else pad_id
    if label_lengths is None:
        label_lengths = jnp.sum(y_true != pad, axis=-1).astype(jnp.int32)
    # the kernel's own checks (lengths, blank_id's range) report under this loss's name
    loss = _ctc._ctc_entry(
        name,
        y_pred,
        y_true,
        logit_lengths,
        label_lengths,
        blank_id,
        zero_infinity,
        custom_vjp=True,
    )
    if normalize_by_target_length:
        length = jnp.maximum(jnp.asarray(label_lengths), 1).astype(loss.dtype)
        loss = loss / length
    return loss


class CTC(Loss, function=ctc, inputs="ctc"):
    """Class handle of :func:`ctc` (``keras.losses.CTC``).

    Args:
      blank_id: class index of the blank (default 0, as in Keras).
      pad_id: the value padding ``y_true``; ``None`` (default) means ``blank_id``.
      zero_infinity: ``0`` instead of ``+inf`` for targets too long for their input.
      reduction, name, dtype, axis_name: as for :class:`jaxloss.Loss`; ``name`` defaults to
        ``"ctc"``.

    Raises:
      ValueError: ``blank_id`` or ``pad_id`` not an int, ``zero_infinity`` not a bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> y_true = jnp.array([[1, 2, 0], [3, 0, 0]])
      >>> y_pred = jnp.zeros((2, 4, 4))
      >>> print(f"{float(jaxloss.CTC()(y_true, y_pred)):.4f}")
      3.0399
      >>> print(f"{float(jaxloss.CTC(reduction='sum')(y_true, y_pred)):.4f}")
      6.0797
    """

    blank_id: int = option(default=0, check=c.INT)
    pad_id: int | None = option(default=None, check=c.OPTIONAL_INT)
    zero_infinity: bool = option(default=False, check=c.BOOL)
    normalize_by_target_length: bool = option(default=False, check=c.BOOL)


def rnnt(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    blank_id: int = 0,
    pad_id: int | None = None,
    clamp: float | None = None,
    normalize_by_target_length: bool = False,
    logit_lengths: ArrayLike | None = None,
    label_lengths: ArrayLike | None = None,
) -> jax.Array:
    """RNN-T (transducer) loss on joiner outputs, with the conventions of :func:`ctc`.

    ``loss = -log sum over monotonic alignments of prod P(emission)`` on the ``(t, u)`` lattice,
    through :func:`jaxloss.ops.rnnt_loss` (log-space recursion, hand-written backward).

    Args:
      y_true: ``[batch, max_label_length]`` integer labels, padded with ``pad_id``.
      y_pred: ``[batch, time, max_label_length + 1, num_classes]`` joiner logits.
      blank_id: class index of the blank.
      pad_id: the value that pads ``y_true``; defaults to ``blank_id``.
      clamp: ``None`` or ``> 0``: the gradient with respect to the logits is clipped to
        ``[-clamp, clamp]`` (torchaudio's ``clamp``).
      normalize_by_target_length: divide each sequence's loss by its label length (at least 1):
        torchaudio's ``reduction="mean"`` is the class's mean with this option.
      logit_lengths: ``[batch]`` valid frames (default: all).
      label_lengths: ``[batch]`` labels per row (default: the entries that are not ``pad_id``).

    Returns:
      Per-sequence negative log-likelihood ``[batch]``; ``+inf`` with a zero gradient for an
      infeasible pair (e.g. no frames).

    Raises:
      TypeError: non-integer labels or options of the wrong type.
      ValueError: shapes that do not line up; options out of range.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[1, 0]])          # one label, padded
      >>> y_pred = jnp.zeros((1, 2, 3, 3))      # uniform joiner: every emission is 1/3
      >>> print(jaxloss.rnnt(y_true, y_pred).round(4))  # 2 alignments of 3 emissions: -log(2/27)
      [2.6027]

    Notes:
      Bad values: NaN in a sample's logits makes that sample's loss NaN; the other samples are
      exact. A label outside ``[0, C)`` within a row's length makes that row's loss NaN.
    """
    name = "rnnt"
    blank_id = c.check_option(name, "blank_id", blank_id, c.INT)
    pad_id = c.check_option(name, "pad_id", pad_id, c.OPTIONAL_INT)
    clamp = c.check_option(name, "clamp", clamp, _CLAMP)
    normalize_by_target_length = c.check_option(
        name, "normalize_by_target_length", normalize_by_target_length, c.BOOL
    )
    y_true = c.as_input_array(name, "y_true", y_true)
    y_pred = c.as_float(y_pred, loss=name)
    c.check_integer(name, "y_true", y_true)
    if y_true.ndim != 2 or y_pred.ndim != 4 or y_pred.shape[:1] != y_true.shape[:1]:
        raise ValueError(
            f"{name}: expected `y_true` [batch, max_label_length] and `y_pred` [batch, time, "
            f"max_label_length + 1, classes]; got y_true {tuple(y_true.shape)} and y_pred "
            f"{tuple(y_pred.shape)}."
        )
    c.check_classes(name, "y_pred", y_pred, -1)
    pad = blank_id if pad_id is None else pad_id
    if label_lengths is None:
        label_lengths = jnp.sum(y_true != pad, axis=-1).astype(jnp.int32)
    if logit_lengths is None:
        logit_lengths = jnp.full(y_true.shape[:1], y_pred.shape[1], jnp.int32)
    if y_pred.shape[2] != y_true.shape[1] + 1:
        raise ValueError(
            f"{name}: `y_pred` must have max_label_length + 1 = {y_true.shape[1] + 1} entries on "
            f"axis 2 (from y_true); got y_true {tuple(y_true.shape)} and y_pred "
            f"{tuple(y_pred.shape)}."
        )
    # the kernel's own checks (lengths, blank_id's range) report under this loss's name
    loss = _rnnt._rnnt_entry(
        name, y_pred, y_true.astype(jnp.int32), logit_lengths, label_lengths, blank_id, clamp
    )
    if normalize_by_target_length:
        loss = loss / jnp.maximum(jnp.asarray(label_lengths), 1).astype(loss.dtype)
    return loss


class RNNT(Loss, function=rnnt, inputs="rnnt"):
    """Class handle of :func:`rnnt`; lengths may be passed at call time.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> y_true = jnp.array([[1, 0], [2, 1]])
      >>> y_pred = jnp.zeros((2, 3, 3, 3))
      >>> loss = jaxloss.RNNT(normalize_by_target_length=True)  # torchaudio's "mean"
      >>> print(f"{float(loss(y_true, y_pred)):.4f}")
      2.5732
    """

    blank_id: int = option(default=0, check=c.INT)
    pad_id: int | None = option(default=None, check=c.OPTIONAL_INT)
    clamp: float | None = option(default=None, check=_CLAMP)
    normalize_by_target_length: bool = option(default=False, check=c.BOOL)
