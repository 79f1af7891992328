"""Float64 NumPy references for the box losses, one box at a time, from the papers' definitions."""

import math

import numpy as np


def _yxyx(box, fmt):
    a, b, p, q = (float(v) for v in box)
    if fmt == "yxyx":
        return a, b, p, q
    if fmt == "xyxy":
        return b, a, q, p
    if fmt == "xywh":
        return b, a, b + q, a + p
    return b - q / 2, a - p / 2, b + q / 2, a + p / 2


def _ratio(num, den):
    return 0.0 if den == 0 else num / den


def _terms(t, p, fmt):
    ty1, tx1, ty2, tx2 = _yxyx(t, fmt)
    py1, px1, py2, px2 = _yxyx(p, fmt)
    th, tw = max(0.0, ty2 - ty1), max(0.0, tx2 - tx1)
    ph, pw = max(0.0, py2 - py1), max(0.0, px2 - px1)
    inter = max(0.0, min(ty2, py2) - max(ty1, py1)) * max(0.0, min(tx2, px2) - max(tx1, px1))
    union = th * tw + ph * pw - inter
    eh = max(0.0, max(ty2, py2) - min(ty1, py1))
    ew = max(0.0, max(tx2, px2) - min(tx1, px1))
    rho2 = ((ty1 + ty2 - py1 - py2) / 2) ** 2 + ((tx1 + tx2 - px1 - px2) / 2) ** 2
    angle_t = 0.0 if th == tw == 0 else math.atan2(tw, th)
    angle_p = 0.0 if ph == pw == 0 else math.atan2(pw, ph)
    return {
        "iou": _ratio(inter, union),
        "union": union,
        "enclosing": eh * ew,
        "distance": _ratio(rho2, eh * eh + ew * ew),
        "v": 4 / math.pi**2 * (angle_t - angle_p) ** 2,
    }


def _per_box(fn):
    def reference(y_true, y_pred, box_format="yxyx"):
        t = np.asarray(y_true, np.float64)
        p = np.asarray(y_pred, np.float64)
        t = np.broadcast_to(t, p.shape)
        out = [
            fn(_terms(a, b, box_format))
            for a, b in zip(t.reshape(-1, 4), p.reshape(-1, 4), strict=True)
        ]
        return np.array(out, np.float64).reshape(p.shape[:-1])

    return reference


np_iou = _per_box(lambda g: 1 - g["iou"])
np_giou = _per_box(lambda g: 1 - g["iou"] + _ratio(g["enclosing"] - g["union"], g["enclosing"]))
np_diou = _per_box(lambda g: 1 - g["iou"] + g["distance"])
np_ciou = _per_box(
    lambda g: 1 - g["iou"] + g["distance"] + _ratio(g["v"], 1 - g["iou"] + g["v"]) * g["v"]
)

REFERENCES = {"iou": np_iou, "giou": np_giou, "diou": np_diou, "ciou": np_ciou}
