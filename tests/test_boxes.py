"""Box losses: float64 references in every box format, degenerate boxes, gradients, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from tests.reference.boxes import REFERENCES

NAMES = ["iou", "giou", "diou", "ciou"]


def _yxyx(seed, n=12):
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 5, (2, n, 2))
    size = rng.uniform(0.5, 4, (2, n, 2))
    t, p = np.concatenate([low, low + size], -1)
    return t.astype(np.float32), p.astype(np.float32)


def _convert(b, fmt):
    y1, x1, y2, x2 = np.moveaxis(b, -1, 0)
    return np.stack(
        {
            "yxyx": (y1, x1, y2, x2),
            "xyxy": (x1, y1, x2, y2),
            "xywh": (x1, y1, x2 - x1, y2 - y1),
            "cxcywh": ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1),
        }[fmt],
        -1,
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fmt", ["yxyx", "xyxy", "xywh", "cxcywh"])
def test_matches_float64_reference_in_every_format(name, fmt):
    t, p = _yxyx(0)
    t, p = _convert(t, fmt), _convert(p, fmt)
    got = getattr(jaxloss, name)(t, p, box_format=fmt)
    np.testing.assert_allclose(got, REFERENCES[name](t, p, box_format=fmt), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_format_does_not_change_the_loss_and_extra_batch_axes_are_kept(name):
    t, p = _yxyx(1)
    fn = getattr(jaxloss, name)
    base = fn(t, p)
    for fmt in ("xyxy", "xywh", "cxcywh"):
        np.testing.assert_allclose(
            fn(_convert(t, fmt), _convert(p, fmt), box_format=fmt), base, rtol=2e-5, atol=1e-6
        )
    assert fn(t.reshape(3, 4, 4), p.reshape(3, 4, 4)).shape == (3, 4)


DEGENERATE = {
    "identical": ([1.0, 1.0, 3.0, 4.0], [1.0, 1.0, 3.0, 4.0]),
    "identical_points": ([2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]),
    "point_vs_box": ([2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
    "distinct_points": ([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 1.0, 2.0]),
    "flat_lines": ([0.0, 0.0, 0.0, 3.0], [0.0, 1.0, 0.0, 2.0]),
    "disjoint": ([0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 7.0, 6.0]),
    "touching": ([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]),
    "inverted": ([3.0, 3.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]),
}


@pytest.mark.parametrize("name", NAMES)
def test_degenerate_boxes_give_finite_losses_and_gradients(name):
    t = np.array([v[0] for v in DEGENERATE.values()], np.float32)
    p = np.array([v[1] for v in DEGENERATE.values()], np.float32)
    fn = getattr(jaxloss, name)
    values = fn(t, p)
    grads = jax.grad(lambda q: jnp.sum(fn(t, q)))(jnp.asarray(p))
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    np.testing.assert_allclose(values, REFERENCES[name](t, p), rtol=1e-5, atol=1e-6)
    assert float(values[0]) == pytest.approx(0.0, abs=1e-6)  # identical boxes
    assert float(values[1]) == 1.0  # two empty boxes: every ratio is 0/0 -> 0


def test_giou_pulls_disjoint_boxes_together_where_iou_is_flat():
    t = jnp.array([[0.0, 0.0, 1.0, 1.0]])
    p = jnp.array([[3.0, 3.0, 4.0, 4.0]])
    g_iou = jax.grad(lambda q: jnp.sum(jaxloss.iou(t, q)))(p)
    np.testing.assert_array_equal(g_iou, 0.0)
    for name in ("giou", "diou", "ciou"):
        g = jax.grad(lambda q, name=name: jnp.sum(getattr(jaxloss, name)(t, q)))(p)
        assert np.all(np.asarray(g)[0, :2] > 0), name  # moving the box towards the target helps


@pytest.mark.parametrize("name", ["iou", "giou", "diou"])
def test_gradients_match_finite_differences(name):
    t, p = _yxyx(2, n=3)
    fn = getattr(jaxloss, name)
    check_grads(
        lambda q: fn(t, q),
        (jnp.asarray(p),),
        order=1,
        modes=["rev"],
        eps=1e-2,
        atol=1e-2,
        rtol=1e-2,
    )


def test_ciou_alpha_is_constant_in_the_gradient():
    # with alpha held fixed, d(alpha v)/dp = alpha dv/dp: compare against that by autodiff
    t = jnp.array([[0.0, 0.0, 2.0, 2.0]])
    p = jnp.array([[0.5, 0.2, 2.5, 3.7]])
    g = jax.grad(lambda q: jnp.sum(jaxloss.ciou(t, q) - jaxloss.diou(t, q)))(p)
    iou = 1.0 - jaxloss.iou(t, p)

    def v_of(q):
        w, h = q[0, 3] - q[0, 1], q[0, 2] - q[0, 0]
        return 4 / np.pi**2 * (jnp.arctan2(2.0, 2.0) - jnp.arctan2(w, h)) ** 2

    v = v_of(p)
    alpha = v / (1 - iou[0] + v)
    np.testing.assert_allclose(g, alpha * jax.grad(v_of)(p), rtol=1e-5, atol=1e-7)


def test_bad_box_format_and_shapes_raise():
    box = [[0.0, 0.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match="giou: `box_format` must be one of 'yxyx'"):
        jaxloss.giou(box, box, box_format="xyhw")
    with pytest.raises(TypeError, match="iou: `box_format` must be one of"):
        jaxloss.iou(box, box, box_format=4)
    with pytest.raises(ValueError, match="CIoU: `box_format` must be one of"):
        jaxloss.CIoU(box_format="XYXY")
    with pytest.raises(ValueError, match="diou: `y_pred` must hold boxes on a last axis of size 4"):
        jaxloss.diou([[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="ciou: `y_true` and `y_pred` must have the same shape"):
        jaxloss.ciou(np.zeros((2, 4)), np.zeros((3, 4)))
