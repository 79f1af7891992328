"""Float64 NumPy references for the image-text contrastive losses, from the papers' formulas."""

import numpy as np


def _unit(x):
    x = np.float64(x)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


def _logits(pair, normalize, scale):
    x, y = (_unit(v) if normalize else np.float64(v) for v in pair)
    return scale * x @ y.T


def np_clip_loss(
    _, pair, normalize=True, chunk_size=None, collective="all_gather", logit_scale=1.0 / 0.07
):
    """Per pair: (CE of row i against i + CE of column i against i) / 2, CLIP's symmetric loss."""
    logits = _logits(pair, normalize, logit_scale)
    out = []
    for i in range(len(logits)):
        row, col = logits[i], logits[:, i]
        ce_row = np.log(np.exp(row - row.max()).sum()) + row.max() - logits[i, i]
        ce_col = np.log(np.exp(col - col.max()).sum()) + col.max() - logits[i, i]
        out.append(0.5 * (ce_row + ce_col))
    return np.array(out)


def np_siglip_loss(
    _,
    pair,
    normalize=True,
    chunk_size=None,
    collective="all_gather",
    logit_scale=10.0,
    logit_bias=-10.0,
):
    """Per image: sum over texts of -log sigmoid(z * logit), z = +1 on the matching pair."""
    logits = _logits(pair, normalize, logit_scale) + logit_bias
    out = []
    for i in range(len(logits)):
        z = np.where(np.arange(len(logits)) == i, 1.0, -1.0)
        out.append(np.sum(np.logaddexp(0.0, -z * logits[i])))
    return np.array(out)


REFERENCES = {"clip_loss": np_clip_loss, "siglip_loss": np_siglip_loss}
