"""Keras 3 reduction semantics in float64, written from the documented rules."""

import numpy as np


def np_reduce(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """Reduce per-sample ``values`` as a Keras 3 loss does.

    A lower-rank ``sample_weight`` scales whole samples (aligned on the leading axes); masked
    elements contribute 0 and are not counted by the mean reductions; a zero divisor gives 0.
    """
    values = np.asarray(values, np.float64)
    weight = np.ones_like(values)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, np.float64)
        if sw.ndim == values.ndim + 1 and sw.shape[-1] == 1:
            sw = sw[..., 0]
        sw = sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim))
        weight = weight * sw
    valid = np.ones(values.shape, bool) if mask is None else np.broadcast_to(mask, values.shape)
    weighted = np.where(valid, values * weight, 0.0)
    if reduction in (None, "none"):
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = np.where(valid, weight, 0.0).sum()
    else:
        divisor = valid.sum()
    return 0.0 if divisor == 0 else total / divisor
