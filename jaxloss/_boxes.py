"""Box regression losses: ``y_true`` and ``y_pred`` boxes, same shape ``[..., 4]``.

The last axis holds one box in ``box_format``: ``"yxyx"`` (default, TensorFlow Addons'
``[y_min, x_min, y_max, x_max]``), ``"xyxy"`` (torchvision's ``[x_min, y_min, x_max, y_max]``),
``"xywh"`` (COCO's ``[x_min, y_min, width, height]``) or ``"cxcywh"`` (``[x_center, y_center,
width, height]``). Each function returns one loss per box (``[...]``).

Degenerate boxes are allowed: a side with ``max < min`` (or a negative size) counts as length 0,
every ratio whose denominator is 0 is 0 (TensorFlow's ``div_no_nan``), so zero-area, identical and
disjoint boxes give finite losses and finite gradients::

    >>> import jaxloss
    >>> y_true = [[4.0, 3.0, 7.0, 5.0], [5.0, 6.0, 10.0, 7.0]]
    >>> y_pred = [[3.0, 4.0, 6.0, 8.0], [14.0, 14.0, 15.0, 15.0]]
    >>> print(jaxloss.giou(y_true, y_pred))
    [1.075     1.9333334]
    >>> print(jaxloss.iou([[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]))
    [1.]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option

BOX_FORMATS = ("yxyx", "xyxy", "xywh", "cxcywh")
BOX_FORMAT = c.Check(
    lambda x: isinstance(x, str),
    "one of 'yxyx', 'xyxy', 'xywh', 'cxcywh'",
    str,
    lambda x: x in BOX_FORMATS,
)


class _Corners(NamedTuple):
    y1: jax.Array
    x1: jax.Array
    y2: jax.Array
    x2: jax.Array


def _corners(boxes: jax.Array, box_format: str) -> _Corners:
    a, b, p, q = (boxes[..., k] for k in range(4))
    if box_format == "yxyx":
        return _Corners(a, b, p, q)
    if box_format == "xyxy":
        return _Corners(b, a, q, p)
    if box_format == "xywh":
        return _Corners(b, a, b + q, a + p)
    return _Corners(b - q / 2, a - p / 2, b + q / 2, a + p / 2)


def _div_no_nan(num: jax.Array, den: jax.Array) -> jax.Array:
    # The inner where keeps the unused branch's gradient finite (no 0/0 in the backward pass).
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num), num / safe)


class _Geometry(NamedTuple):
    iou: jax.Array
    union: jax.Array
    enclosing: jax.Array  # area of the smallest enclosing box
    center_dist2: jax.Array  # squared distance between the centres
    diagonal2: jax.Array  # squared diagonal of the smallest enclosing box
    t: _Corners
    p: _Corners


def _geometry(loss: str, y_true: ArrayLike, y_pred: ArrayLike, box_format: str) -> _Geometry:
    box_format = c.check_option(loss, "box_format", box_format, BOX_FORMAT)
    y_true, y_pred = c.match_shapes(loss, y_true, y_pred)
    if y_pred.shape[-1] != 4:
        raise ValueError(
            f"{loss}: `y_pred` must hold boxes on a last axis of size 4 ({box_format}); "
            f"got shape {tuple(y_pred.shape)}."
        )
    y_true = jnp.broadcast_to(y_true, y_pred.shape)
    t, p = _corners(y_true, box_format), _corners(y_pred, box_format)
    relu = jax.nn.relu
    area_t = relu(t.y2 - t.y1) * relu(t.x2 - t.x1)
    area_p = relu(p.y2 - p.y1) * relu(p.x2 - p.x1)
    inter_h = relu(jnp.minimum(t.y2, p.y2) - jnp.maximum(t.y1, p.y1))
    inter_w = relu(jnp.minimum(t.x2, p.x2) - jnp.maximum(t.x1, p.x1))
    inter = inter_h * inter_w
    union = area_t + area_p - inter
    enc_h = relu(jnp.maximum(t.y2, p.y2) - jnp.minimum(t.y1, p.y1))
    enc_w = relu(jnp.maximum(t.x2, p.x2) - jnp.minimum(t.x1, p.x1))
    dy = (t.y1 + t.y2 - p.y1 - p.y2) / 2
    dx = (t.x1 + t.x2 - p.x1 - p.x2) / 2
    return _Geometry(
        _div_no_nan(inter, union),
        union,
        enc_h * enc_w,
        dy * dy + dx * dx,
        enc_h * enc_h + enc_w * enc_w,
        t,
        p,
    )


def iou(y_true: ArrayLike, y_pred: ArrayLike, box_format: str = "yxyx") -> jax.Array:
    """IoU loss: ``1 - |A ∩ B| / |A ∪ B|`` (TFA's ``giou_loss(mode="iou")``).

    Args:
      y_true: target boxes ``[..., 4]`` in ``box_format``.
      y_pred: predicted boxes, same shape.
      box_format: ``"yxyx"`` (default), ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
      One loss per box, shape ``[...]``, in ``[0, 1]``.

    Raises:
      TypeError: non-numeric boxes; a ``box_format`` that is not a string.
      ValueError: a last axis other than 4; an unknown ``box_format``; shapes that differ.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.iou([[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 3.0]]))
      [0.85714287]

    Notes:
      Disjoint boxes give 1 and a zero gradient (IoU has no signal there; GIoU, DIoU and CIoU
      do). Two empty boxes give 1.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Coordinates are not checked: inverted or infinite boxes give the formula's value, not
      an error.
    """
    return 1.0 - _geometry("iou", y_true, y_pred, box_format).iou


def giou(y_true: ArrayLike, y_pred: ArrayLike, box_format: str = "yxyx") -> jax.Array:
    """GIoU loss (TFA's ``giou_loss``): ``1 - IoU + (|C| - |A ∪ B|) / |C|``.

    ``C`` is the smallest box enclosing both; the loss lies in ``[0, 2]`` and still pulls
    disjoint boxes together.

    Args:
      y_true: target boxes ``[..., 4]`` in ``box_format``.
      y_pred: predicted boxes, same shape.
      box_format: ``"yxyx"`` (default, TFA's order), ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
      One loss per box, shape ``[...]``.

    Raises:
      TypeError: non-numeric boxes; a ``box_format`` that is not a string.
      ValueError: a last axis other than 4; an unknown ``box_format``; shapes that differ.

    Examples:
      TensorFlow Addons' documented example (its class handle prints the mean, 1.5041667):

      >>> import jaxloss
      >>> boxes1 = [[4.0, 3.0, 7.0, 5.0], [5.0, 6.0, 10.0, 7.0]]
      >>> boxes2 = [[3.0, 4.0, 6.0, 8.0], [14.0, 14.0, 15.0, 15.0]]
      >>> print(f"{float(jaxloss.GIoU()(boxes1, boxes2)):.7f}")
      1.5041667

    Notes:
      Two empty boxes at one point give 1 (all ratios are 0/0, taken as 0).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Coordinates are not checked: inverted or infinite boxes give the formula's value, not
      an error.
    """
    g = _geometry("giou", y_true, y_pred, box_format)
    return 1.0 - g.iou + _div_no_nan(g.enclosing - g.union, g.enclosing)


def diou(y_true: ArrayLike, y_pred: ArrayLike, box_format: str = "yxyx") -> jax.Array:
    """Distance-IoU loss: ``1 - IoU + rho^2 / c^2``.

    ``rho`` is the distance between the box centres and ``c`` the diagonal of the smallest
    enclosing box (Zheng et al., 2020).

    Args:
      y_true: target boxes ``[..., 4]`` in ``box_format``.
      y_pred: predicted boxes, same shape.
      box_format: ``"yxyx"`` (default), ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
      One loss per box, shape ``[...]``, in ``[0, 2)``.

    Raises:
      TypeError: non-numeric boxes; a ``box_format`` that is not a string.
      ValueError: a last axis other than 4; an unknown ``box_format``; shapes that differ.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.diou([[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 3.0]], box_format="xyxy"))
      [0.96825397]

    Notes:
      Two identical points give 1 (``0 / 0`` is taken as 0).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Coordinates are not checked: inverted or infinite boxes give the formula's value, not
      an error.
    """
    g = _geometry("diou", y_true, y_pred, box_format)
    return 1.0 - g.iou + _div_no_nan(g.center_dist2, g.diagonal2)


def _aspect_angle(b: _Corners) -> jax.Array:
    """``atan(width / height)``, with an empty box (no width, no height) at angle 0."""
    w, h = jax.nn.relu(b.x2 - b.x1), jax.nn.relu(b.y2 - b.y1)
    empty = (w == 0) & (h == 0)
    return jnp.where(empty, 0.0, jnp.arctan2(jnp.where(empty, 1.0, w), jnp.where(empty, 1.0, h)))


def ciou(y_true: ArrayLike, y_pred: ArrayLike, box_format: str = "yxyx") -> jax.Array:
    """Complete-IoU loss: ``1 - IoU + rho^2 / c^2 + alpha v``.

    ``v = (4 / pi^2) (atan(w_true / h_true) - atan(w_pred / h_pred))^2`` measures the aspect
    ratio mismatch and ``alpha = v / (1 - IoU + v)``, held constant in the gradient as in
    torchvision and the authors' code.

    Args:
      y_true: target boxes ``[..., 4]`` in ``box_format``.
      y_pred: predicted boxes, same shape.
      box_format: ``"yxyx"`` (default), ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
      One loss per box, shape ``[...]``.

    Raises:
      TypeError: non-numeric boxes; a ``box_format`` that is not a string.
      ValueError: a last axis other than 4; an unknown ``box_format``; shapes that differ.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.ciou([[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 5.0]], box_format="xyxy"))
      [1.0580007]

    Notes:
      A box with zero width and height has aspect angle 0; ``alpha`` is 0 where ``1 - IoU + v``
      is 0 (identical boxes).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Coordinates are not checked: inverted or infinite boxes give the formula's value, not
      an error.
    """
    g = _geometry("ciou", y_true, y_pred, box_format)
    v = (4.0 / math.pi**2) * jnp.square(_aspect_angle(g.t) - _aspect_angle(g.p))
    alpha = lax.stop_gradient(_div_no_nan(v, 1.0 - g.iou + v))
    return 1.0 - g.iou + _div_no_nan(g.center_dist2, g.diagonal2) + alpha * v


class IoU(Loss, function=iou, aliases=("iou_loss",), inputs="boxes"):
    """Class handle of :func:`iou`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.IoU(box_format="xyxy")
      >>> print(f"{float(loss([[0., 0., 2., 2.], [0., 0., 1., 1.]], [[1., 1., 3., 3.]] * 2)):.6f}")
      0.928571
    """

    box_format: str = option(default="yxyx", check=BOX_FORMAT)


class GIoU(Loss, function=giou, aliases=("giou_loss",), inputs="boxes"):
    """Class handle of :func:`giou` (TFA's ``GIoULoss``).

    Examples:
      >>> import jaxloss
      >>> boxes1 = [[4.0, 3.0, 7.0, 5.0], [5.0, 6.0, 10.0, 7.0]]
      >>> boxes2 = [[3.0, 4.0, 6.0, 8.0], [14.0, 14.0, 15.0, 15.0]]
      >>> print(f"{float(jaxloss.GIoU()(boxes1, boxes2)):.7f}")
      1.5041667
    """

    box_format: str = option(default="yxyx", check=BOX_FORMAT)


class DIoU(Loss, function=diou, aliases=("diou_loss",), inputs="boxes"):
    """Class handle of :func:`diou`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.DIoU(box_format="xyxy", reduction="none")
      >>> print(loss([[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 3.0]]))
      [0.96825397]
    """

    box_format: str = option(default="yxyx", check=BOX_FORMAT)


class CIoU(Loss, function=ciou, aliases=("ciou_loss",), inputs="boxes"):
    """Class handle of :func:`ciou`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.CIoU(box_format="xyxy", reduction="none")
      >>> print(loss([[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 5.0]]))
      [1.0580007]
    """

    box_format: str = option(default="yxyx", check=BOX_FORMAT)
